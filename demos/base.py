"""The adapter contract every demo task implements, and what they share.

An adapter turns one model into a Gradio interface. ``zoo_demo_adapter(task)`` returns a
fresh, unloaded adapter; the app then calls:

- ``load(name_or_dir, lazy=False)``: resolve the model (catalog ``NAME[.TAG]``, a saved
  directory, or a :class:`~zoo.demos.targets.Target`); build it now, or on first use
  when ``lazy`` (the gallery). The model is built once per adapter, under a lock.
- ``inputs()`` / ``outputs()``: fresh Gradio components (a component renders once).
- ``examples()``: rows of shipped example inputs, or ``None``.
- ``predict(*values)``: run under ``torch.inference_mode``; bad input raises ``gr.Error``
  with one line saying what was wrong and what to do, and the server keeps serving.

Subclasses implement ``run(model, *values)`` and raise :class:`DemoInputError` for bad
input. Nothing here imports torch or gradio at module import time.
"""

from __future__ import annotations

import html
import inspect
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, ZooError

from .serving import DELETE_CACHE
from .targets import Target, resolve

EXAMPLES_DIR = Path(__file__).with_name("examples")
#: Requests served at once per event; torch inference in eval mode is thread-safe.
CONCURRENCY_ENV = "ZOO_DEMO_CONCURRENCY"
MAX_IMAGE_PIXELS = 50_000_000       # beyond this, decoding alone takes seconds and GBs
WORK_IMAGE_SIDE = 2048              # larger uploads are shrunk first: models want < 1k px
MAX_TEXT_CHARS = 20_000


class DemoInputError(UsageError):
    """What a user gave the demo cannot be used; the message says what to give instead."""


def gradio():
    """Import gradio with analytics off (no traffic leaves the machine) and uploads in a
    folder only this user can read (:func:`zoo.demos.serving.private_upload_dir`)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from .serving import private_upload_dir

    private_upload_dir()
    import gradio as gr

    return gr


def concurrency() -> int:
    try:
        return max(1, int(os.environ.get(CONCURRENCY_ENV, "4")))
    except ValueError:
        return 4


def task_helper(target: Target, *names: str) -> Callable[..., Any] | None:
    """The predictor of this model's task adapter (:mod:`zoo.tasks`), if it has one.

    Asked for the demo task, then the model's task (``names`` are extra tasks to try).
    """
    from zoo.tasks import predictor_for

    spec = target.spec
    for task in [t for t in dict.fromkeys((target.task, spec.task, *names)) if t]:
        try:
            fn = predictor_for(spec, task)
        except UsageError:        # no plugin handles this task: try the next name
            continue
        if fn is not None:
            return fn
    return None


def call_helper(fn: Callable[..., Any], target: Target, model: Any, inputs: Any,
                **options: Any) -> Any:
    """Call ``fn(model, spec, tag, inputs, **options)``, passing only options it accepts.

    Helpers differ in which knobs they take (a GAN without classes takes no ``label``);
    options under other names are offered under each alias given as ``a|b`` keys.
    """
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs: dict[str, Any] = {}
    for key, value in options.items():
        aliases = key.split("|")
        if takes_any:
            kwargs[aliases[0]] = value
            continue
        for a in aliases:
            if a in params:
                kwargs[a] = value
                break
    return fn(model, target.spec, target.tag, inputs, **kwargs)


class Adapter:
    """Base class: one task's components and decoding around a lazily built model."""

    task = ""
    #: one-line hint under the title
    hint = ""

    def __init__(self) -> None:
        self.target: Target | None = None
        self._model: Any = None
        self._lock = threading.Lock()
        self.build_seconds: float | None = None

    # -- model ------------------------------------------------------------------------

    def load(self, name_or_dir: Any, *, lazy: bool = False) -> Adapter:
        """Resolve the model (and build it unless ``lazy``); returns ``self``."""
        self.target = resolve(name_or_dir)
        self.check(self.target)
        if not lazy:
            self.model()
        return self

    def check(self, target: Target) -> None:
        """Refuse a model this adapter cannot drive (raise UsageError); cheap, no torch."""

    def model(self) -> Any:
        """The built model; built on first call only, whichever thread asks first."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    if self.target is None:
                        raise UsageError("adapter used before load(); call load(NAME) first")
                    t0 = time.perf_counter()
                    m = self.target.build()
                    if hasattr(m, "eval"):
                        m.eval()
                    self.build_seconds = time.perf_counter() - t0
                    self._model = m
        return self._model

    @property
    def loaded(self) -> bool:
        return self._model is not None

    # -- interface --------------------------------------------------------------------

    def inputs(self) -> list[Any]:
        raise NotImplementedError

    def outputs(self) -> list[Any]:
        raise NotImplementedError

    def examples(self) -> list[list[Any]] | None:
        return None

    def title(self) -> str:
        """The page heading. Gradio puts it inside HTML: it is escaped, since a label can
        come from a directory's name or config (``<img onerror=...>``)."""
        assert self.target is not None
        return html.escape(f"{self.target.label} · {self.task}")

    def description(self) -> str:
        t = self.target
        assert t is not None
        parts = []
        if t.spec.description:
            parts.append(_md(t.spec.description) + ".")
        if t.spec.paper:
            url = t.spec.paper_url
            linkable = isinstance(url, str) and url.startswith(("https://", "http://")) \
                and not any(c in url for c in " ()<>\"'")
            parts.append(f"Paper: [{_md(t.spec.paper)}]({url})." if linkable
                         else f"Paper: {_md(t.spec.paper)}.")
        pre = t.spec.pretrained.get(t.tag) if t.tag else None
        if pre is not None and pre.metrics:
            parts.append("Metrics: " + ", ".join(f"{_md(k)} = {v:g}"
                                                 for k, v in pre.metrics.items())
                         + (f" on {_md(pre.dataset)}." if pre.dataset else "."))
        if t.tag is None:
            parts.append("**Random weights** (architecture only): answers are meaningless.")
        if self.hint:
            parts.append(self.hint)
        return " ".join(parts)

    def interface(self, *, api_name: str = "predict"):
        """A ``gr.Interface`` for this adapter (not launched, no queue set)."""
        gr = gradio()
        return gr.Interface(
            fn=self.predict, inputs=[guard_input(c) for c in self.inputs()],
            outputs=self.outputs(),
            examples=self.examples(), cache_examples=False, title=self.title(),
            description=self.description(), flagging_mode="never", api_name=api_name,
            submit_btn="Submit", time_limit=None, delete_cache=DELETE_CACHE)

    # -- requests ---------------------------------------------------------------------

    def predict(self, *values: Any) -> Any:
        """Serve one request: bad input and model errors become one-line ``gr.Error``s."""
        gr = gradio()
        try:
            model = self.model()
            import torch

            with torch.inference_mode():
                return self.run(model, *values)
        except gr.Error:
            raise
        except ZooError as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception as e:
            # A model failing on some input must not take the server down; log the
            # traceback for the operator and show one line to the user.
            traceback.print_exc(file=sys.stderr)
            label = self.target.label if self.target else "the model"
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            raise gr.Error(f"{label} failed on this input ({type(e).__name__}"
                           + (f": {first}" if first else "") + "); try another input",
                           print_exception=False) from None

    def run(self, model: Any, *values: Any) -> Any:
        raise NotImplementedError


def _md(text: Any) -> str:
    """Catalog text shown as Markdown: no HTML, no links or images of its own."""
    out = html.escape(str(text), quote=False)
    for c in "[]!`":
        out = out.replace(c, "\\" + c)
    return out


# -- input components ----------------------------------------------------------------

def _shown(value: Any, limit: int = 40) -> str:
    if hasattr(value, "path") or (isinstance(value, dict) and "path" in value):
        return "the uploaded file"       # not the server's cache path
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _one_line(e: BaseException, limit: int = 160) -> str:
    # gr.Error's str() is the repr of its message; the message itself reads better
    text = str(getattr(e, "message", None) or e).strip()
    return text.splitlines()[0][:limit] if text else type(e).__name__


def _input_error(component: Any, payload: Any, e: Exception) -> str:
    """One line saying which input could not be read and what it takes instead."""
    label = getattr(component, "label", None) or type(component).__name__.lower()
    explain = getattr(component, "zoo_error", None)
    if explain is not None:
        return explain(e)
    if hasattr(component, "minimum"):       # gr.Number, gr.Slider
        lo, hi = component.minimum, component.maximum
        span = f" from {lo:g} to {hi:g}" if lo is not None and hi is not None else ""
        return f"{label}: expected a number{span}, got {_shown(payload)}"
    return (f"{label}: cannot use {_shown(payload)} ({type(e).__name__}: {_one_line(e)}); "
            "give a value of the kind the field shows")


def guard_input(component: Any) -> Any:
    """Make ``component``'s preprocessing fail with a one-line ``gr.Error`` naming it.

    Gradio turns an exception in a component's own preprocessing (a slider sent a string,
    an upload Pillow cannot decode) into a bare "Error" with no message unless the app
    shows every traceback; the user then learns nothing. Gradio's own ``gr.Error``s (a
    value out of a slider's range) keep their text, prefixed with the input's label.
    """
    gr = gradio()
    inner = component.preprocess
    label = getattr(component, "label", None) or type(component).__name__.lower()
    check = getattr(component, "zoo_precheck", None)

    def preprocess(payload: Any) -> Any:
        try:
            if check is not None:
                check(payload)
            return inner(payload)
        except gr.Error as e:
            raise gr.Error(f"{label}: {_one_line(e, 300)}", print_exception=False) from None
        except ZooError as e:
            raise gr.Error(str(e), print_exception=False) from None
        except Exception as e:
            raise gr.Error(_input_error(component, payload, e), print_exception=False) from None

    component.preprocess = preprocess
    return component


def image_input(label: str = "image"):
    """A ``gr.Image`` upload (PIL, any mode) whose unreadable or huge uploads are refused
    with one clear line before Gradio decodes them (Gradio decodes a whole PNG to read
    its EXIF orientation, so a 150-megapixel upload would otherwise cost GBs first)."""
    gr = gradio()
    comp = gr.Image(type="pil", image_mode=None, label=label, sources=["upload", "clipboard"])

    def precheck(payload: Any) -> None:
        path = getattr(payload, "path", None)
        if path is None or str(getattr(payload, "url", "") or "").startswith("data:"):
            return
        open_image_header(path)

    def explain(e: Exception) -> str:
        # Gradio decoded the file and failed: it is cut short or corrupt past its header
        if isinstance(e, OSError | SyntaxError | ValueError):
            return f"{label}: {_damaged(e)}"
        return f"{label}: {NOT_AN_IMAGE}"

    comp.zoo_precheck, comp.zoo_error = precheck, explain
    return comp


def open_image_header(path: str) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header alone, refusing unreadable
    files and images over ``MAX_IMAGE_PIXELS`` with one line (nothing is decoded)."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except Image.DecompressionBombError:
        raise DemoInputError(f"the image is too large (over {Image.MAX_IMAGE_PIXELS:,} pixels); "
                             f"upload one under {MAX_IMAGE_PIXELS // 1_000_000} "
                             "megapixels") from None
    except Exception:  # Pillow raises OSError, SyntaxError, ValueError... for junk bytes
        raise DemoInputError(NOT_AN_IMAGE) from None
    _check_size(w, h)
    return w, h


def _damaged(e: BaseException) -> str:
    """The message for an image that decodes only up to some damage."""
    return f"the image file is damaged ({_one_line(e, 80)}); upload it again or another image"


NOT_AN_IMAGE = ("the upload is not an image this demo can read; upload a PNG, JPEG, GIF, "
                "BMP, TIFF or WEBP file")


def _check_size(w: int, h: int) -> None:
    if w * h > MAX_IMAGE_PIXELS:
        raise DemoInputError(f"the image is {w}x{h} pixels, too large; upload one under "
                             f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels")


# -- shared input checks -------------------------------------------------------------

def check_image(image: Any, *, what: str = "an image", min_side: int = 4):
    """A decoded 8-bit PIL image from a Gradio value, refusing nothing-uploaded, damaged,
    tiny and huge images.

    Large images are shrunk to at most ``WORK_IMAGE_SIDE`` pixels a side, keeping the
    aspect ratio: no model here looks at more, and the upload stays answerable. 16-bit
    and float images are scaled to 8 bits by their range (a plain conversion clips them
    to white).
    """
    from zoo.loading.preprocess import load_image, to_8bit

    if image is None:
        raise DemoInputError(f"no image: upload {what} (or click an example), then Submit")
    img = load_image(image)
    w, h = img.size
    _check_size(w, h)
    if min(w, h) < min_side:
        raise DemoInputError(f"the image is {w}x{h} pixels, too small to read; upload one at "
                             f"least {min_side}x{min_side}")
    try:
        img.load()
    except Exception as e:  # a cut-short or corrupt file decodes only up to the damage
        raise DemoInputError(_damaged(e)) from None
    if max(w, h) > WORK_IMAGE_SIDE:
        img = img.copy()
        img.thumbnail((WORK_IMAGE_SIDE, WORK_IMAGE_SIDE))
    return to_8bit(img)          # after shrinking: the float copy is of the small image


def check_text(text: Any, *, what: str = "text", max_chars: int = MAX_TEXT_CHARS) -> str:
    """Stripped text, refusing empty and overlong input with a message saying the limit."""
    if text is None or not str(text).strip():
        raise DemoInputError(f"no {what}: type some {what} (or click an example), then Submit")
    text = str(text).strip()
    if len(text) > max_chars:
        raise DemoInputError(f"the {what} is {len(text):,} characters; this demo takes at most "
                             f"{max_chars:,}. Paste a shorter passage")
    return text


def example_path(name: str) -> str:
    return str(EXAMPLES_DIR / name)
