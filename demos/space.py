"""Export a model's demo as a Hugging Face Space folder: ``zoo space NAME[.TAG] --out DIR``.

The folder holds ``app.py`` (a few lines around :func:`zoo.demos.app.build_demo`),
``requirements.txt``, ``README.md`` with the Spaces front matter, and the model: a
``model/`` directory written by :func:`zoo.loading.build.save` (weights + config.json), or with
``hub_model`` a pointer to a Hub repo holding such a directory. ``python app.py`` in the
folder runs the demo with nothing but the installed zoo package.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from zoo.errors import UsageError

from .targets import Target, resolve

MODEL_DIR = "model"

APP_TEMPLATE = '''"""Gradio demo of {label}, exported by `zoo space` (zoo {zoo_version}).

Run it with `python app.py`; on Hugging Face Spaces it starts by itself.
"""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from zoo.demos.app import build_demo, launch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODEL = {model_expr}

demo = build_demo(MODEL)

if __name__ == "__main__":
    # Spaces set GRADIO_SERVER_NAME=0.0.0.0; locally this serves 127.0.0.1 only.
    port = os.environ.get("GRADIO_SERVER_PORT")
    launch(demo, host=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
           port=int(port) if port else None)
'''


def _gradio_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gradio")
    except PackageNotFoundError:
        raise UsageError("gradio is not installed; pip install gradio") from None


def front_matter(target: Target, *, models: list[str]) -> str:
    """The README's YAML header Spaces read (sdk, sdk_version, app_file, licence...)."""
    title = _title(target)
    desc = (target.spec.description or f"{target.task} demo")[:60]
    lines = [
        "---",
        f"title: {json.dumps(title)}",
        "emoji: 🦓",
        "colorFrom: green",
        "colorTo: gray",
        "sdk: gradio",
        f"sdk_version: {_gradio_version()}",
        "app_file: app.py",
        f'python_version: "{sys.version_info.major}.{sys.version_info.minor}"',
        f"license: {target.license or 'other'}",
        f"short_description: {json.dumps(desc)}",
        "pinned: false",
        "models:" + ("" if models else " []"),
        *[f"  - {m}" for m in models],
        "tags:",
        "  - zoo",
        f"  - {target.task}",
        "---",
    ]
    return "\n".join(lines) + "\n"


def _title(target: Target) -> str:
    tag = target.tag if target.tag and target.tag != "saved" else None
    return target.spec.name + (f".{tag}" if tag else "")


def _requirements(target: Target) -> str:
    from zoo.version import __version__

    dist = None
    if target.directory is not None:
        cfg = json.loads((target.directory / "config.json").read_text())
        dist = cfg.get("plugin_distribution")
    else:
        from zoo.registry.plugins import get_plugins

        info = get_plugins().infos.get(target.spec.plugin or "")
        dist = info.distribution if info else None
    lines = [
        "# The Space installs gradio itself (sdk_version in README.md).",
        "# zoo is not on PyPI: point this line at your wheel or repository if needed,",
        "# e.g. zoo @ https://example.org/zoo-" + __version__ + "-py3-none-any.whl",
        f"zoo=={__version__}",
    ]
    if dist and dist != "zoo":
        lines.append(f"{dist}  # the plugin that defines this model")
    return "\n".join(lines) + "\n"


def _readme(target: Target, *, models: list[str], weights: str) -> str:
    spec = target.spec
    pre = spec.pretrained.get(target.tag) if target.tag else None
    body = [f"# {_title(target)}", "", spec.description or "", ""]
    if spec.paper:
        body.append(f"Paper: {spec.paper}" + (f" <{spec.paper_url}>" if spec.paper_url else ""))
    if pre is not None and pre.metrics:
        body.append("Metrics: " + ", ".join(f"{k} = {v:g}" for k, v in pre.metrics.items())
                    + (f" ({pre.dataset})" if pre.dataset else ""))
    body += ["", f"Task: {target.task}. Weights: {weights}.", "",
             "Run locally: `pip install -r requirements.txt gradio && python app.py`.",
             "Exported with `zoo space`."]
    return front_matter(target, models=models) + "\n" + "\n".join(body) + "\n"


def export_space(name_or_dir: str | os.PathLike[str] | Target, out: str | os.PathLike[str],
                 *, hub_model: str | None = None) -> Path:
    """Write a Space folder for ``NAME[.TAG]`` or a saved directory; return its path.

    Raises:
        UnknownModelError: no such model.
        UsageError: no demo for its task, or ``out`` is a non-empty directory.
    """
    from zoo.atomic import write_dir

    from .app import adapter_for

    target = resolve(name_or_dir)
    adapter_for(target)          # refuse undemo-able tasks before writing anything
    dest = Path(out)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest}: exists and is not empty; choose a new --out directory")
    if hub_model is not None and (hub_model.count("/") != 1 or " " in hub_model):
        raise UsageError(f"--hub-model '{hub_model}' must look like ORG/NAME")
    try:
        with write_dir(dest) as tmp:
            _write_space(tmp, target, hub_model=hub_model)
    except OSError as e:
        raise UsageError(f"{dest}: cannot write there ({e.strerror or e}); "
                         "choose another --out directory") from None
    return dest


def _write_space(tmp: Path, target: Target, *, hub_model: str | None) -> None:
    """The Space's files (app, requirements, README and, unless ``hub_model``, the model)."""
    from zoo.loading import build
    from zoo.version import __version__

    if hub_model:
        model_expr, models = repr(f"hf-hub:{hub_model}"), [hub_model]
        weights = f"downloaded from the Hub repo {hub_model} at start-up"
    else:
        if target.directory is not None:
            shutil.copytree(target.directory, tmp / MODEL_DIR)
        else:
            model = target.build()
            build.save(model, tmp / MODEL_DIR, spec=target.spec, tag=target.tag)
        model_expr = f"os.path.join(HERE, {MODEL_DIR!r})"
        models = []
        src = target.spec.pretrained[target.tag].source if target.tag else "random"
        if src.startswith("hf-hub:"):
            models = [src[len("hf-hub:"):].split("@")[0].split("/", 2)[0] + "/"
                      + src[len("hf-hub:"):].split("@")[0].split("/", 2)[1]]
        weights = f"copied into {MODEL_DIR}/ (model.safetensors + config.json)"
    (tmp / "app.py").write_text(APP_TEMPLATE.format(
        label=_title(target), zoo_version=__version__, model_expr=model_expr))
    (tmp / "requirements.txt").write_text(_requirements(target))
    (tmp / "README.md").write_text(_readme(target, models=models, weights=weights))


def read_front_matter(readme: str | os.PathLike[str]) -> dict[str, Any]:
    """The YAML header of a Space README as a dict (simple ``key: value`` and lists)."""
    text = Path(readme).read_text()
    if not text.startswith("---\n"):
        return {}
    head = text[4:].split("\n---\n", 1)[0]
    out: dict[str, Any] = {}
    key = None
    for line in head.splitlines():
        if line.startswith("  - ") and key:
            out.setdefault(key, []).append(line[4:].strip())
            continue
        key, _, value = line.partition(":")
        value = value.strip()
        if value == "[]":
            out[key] = []
        elif value:
            out[key] = json.loads(value) if value.startswith('"') else value
    return out
