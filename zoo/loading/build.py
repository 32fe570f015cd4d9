"""Build models from specs, load their weights, summarise them, save and reload them.

Everything here imports torch, lazily: importing this module costs nothing, calling it
does. A model from :func:`build` is the plain ``nn.Module`` the underlying library
builds (no wrapper), in eval mode when trained weights were loaded.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from zoo.atomic import NotARegularFile, read_regular
from zoo.errors import BuildError, UsageError, WeightsError, ZooError
from zoo.registry.lazy import import_object
from zoo.registry.spec import InputSpec, ModelSpec, thaw
from zoo.version import DISTRIBUTION

CONFIG_FILE = "config.json"
MAX_CONFIG_BYTES = 16 * 2**20      # label lists of tens of thousands of classes fit
# what zoo publishes beside a library's own config.json (zoo.loading.native); read first
ZOO_FILE = "zoo.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT_VERSION = 1



_BUILDERS: dict[str, Callable[..., Any]] = {}

# The source of the weights that will replace a builder's random ones (see pending_source).
_PENDING: contextvars.ContextVar[str | None] = contextvars.ContextVar("zoo_pending_source",
                                                                       default=None)


def pending_source() -> str | None:
    """The pretrained source whose weights will be loaded into the model being built now.

    ``None`` while an architecture is built with random weights (``zoo get NAME``). A
    builder may skip its random initialisation when the loader it knows claims this
    source (transformers builders do, for whole ``hf-hub:`` repos, which their loader
    replaces): initialising GPT-2 medium takes seconds that loading then throws away.
    """
    return _PENDING.get()


@contextlib.contextmanager
def building_for(source: str | None) -> Iterator[None]:
    """Builders called inside see :func:`pending_source` return ``source``: they build the
    model as it is for those weights (without loading them; scripts/catalog_stats.py
    measures trained models this way)."""
    token = _PENDING.set(source)
    try:
        yield
    finally:
        _PENDING.reset(token)


def builder_of(spec: ModelSpec) -> Callable[..., Any]:
    """The callable that builds ``spec`` (its lazy ``"module:callable"`` imported once)."""
    b = spec.builder
    if callable(b):
        return b
    fn = _BUILDERS.get(b)
    if fn is None:
        fn = _BUILDERS[b] = import_object(b, what=f"model '{spec.name}' builder")
    return fn


def merged_kwargs(spec: ModelSpec, tag: str | None, overrides: Mapping[str, Any]) -> dict:
    """Builder kwargs: the model's, then the tag's, then the caller's.

    A caller may not change what a tag's weights depend on (its ``kwargs``).
    """
    kwargs = thaw(spec.kwargs)
    if tag is not None:
        fixed = thaw(spec.pretrained[tag].kwargs)
        for k, v in overrides.items():
            if k in fixed and fixed[k] != v:
                raise UsageError(
                    f"{spec.name}.{tag} needs {k}={fixed[k]!r} to fit its weights, got {k}={v!r}; "
                    f"build '{spec.name}' without a tag, or fine-tune to change it")
        kwargs.update(fixed)
    kwargs.update(overrides)
    return kwargs


def build(spec: ModelSpec, tag: str | None = None, **overrides: Any):
    """Build ``spec`` (random weights), or its trained model ``tag`` with weights loaded."""
    kwargs = merged_kwargs(spec, tag, overrides)
    fn = builder_of(spec)
    # With arguments from the caller, a refusal is most likely theirs (a usage error);
    # without, the catalog entry or its plugin is at fault.
    error = UsageError if overrides else BuildError
    try:
        # an untagged build inside building_for() (catalog_stats) keeps the caller's source
        with (building_for(spec.pretrained[tag].source) if tag is not None
              else contextlib.nullcontext()):
            model = fn(**kwargs)
    except TypeError as e:
        raise error(f"model '{spec.name}': builder rejected its arguments "
                    f"({e}); check the kwargs") from None
    except ZooError:
        raise
    except Exception as e:  # a library's own complaint about a value (num_classes=-3)
        msg = " ".join(str(e).split())[:300]
        raise error(f"model '{spec.name}': building failed ({type(e).__name__}: {msg}); "
                    "check the kwargs") from None
    _check_module(model, f"model '{spec.name}': its builder")
    if tag is None:
        return model
    from zoo.registry.plugins import get_plugins

    pre = spec.pretrained[tag]
    loaded, _plugin = get_plugins().first_result(
        "zoo_load_pretrained", spec=spec, model=model, source=pre.source, tag=pre)
    if loaded is None:
        scheme = pre.source.partition(":")[0]
        raise WeightsError(f"{spec.name}.{tag}: no plugin loads '{scheme}:' sources "
                           f"({pre.source}); install the plugin that provides it")
    if hasattr(loaded, "eval"):
        loaded.eval()
    return loaded


# -- one forward pass, for summaries -----------------------------------------------------

def example_input(spec: ModelSpec, tag: str | None = None) -> tuple:
    """Positional args of one forward pass on the model's declared input (batch of 1)."""
    from zoo.registry import default_registry

    fam = default_registry().families.get(spec.family)
    if fam is not None and fam.example_input is not None:
        fn = fam.example_input
        if isinstance(fn, str):
            fn = import_object(fn, what=f"family '{spec.family}' example_input")
        args = fn(spec, tag)
        return args if isinstance(args, tuple) else (args,)
    inp = spec.input_for(tag)
    if inp is None:
        raise UsageError(f"model '{spec.name}' declares no input; cannot run a forward pass")
    vocab = merged_kwargs(spec, tag, {}).get("vocab_size", 100)
    return (tensor_for(inp, high=int(vocab)),)


def tensor_for(inp: InputSpec, *, batch: int = 1, high: int = 100):
    import torch

    g = torch.Generator().manual_seed(0)
    if inp.dtype.startswith("int"):
        return torch.randint(0, high, (batch, *inp.size), generator=g,
                             dtype=getattr(torch, inp.dtype))
    return torch.randn((batch, *inp.size), generator=g, dtype=getattr(torch, inp.dtype))


def _shapes(out: Any) -> Any:
    if hasattr(out, "shape"):
        return list(out.shape)
    if isinstance(out, Mapping):
        return {k: _shapes(v) for k, v in out.items() if v is not None}
    if isinstance(out, list | tuple):
        return [_shapes(v) for v in out]
    return type(out).__name__


def example_shape(spec: ModelSpec, tag: str | None = None) -> Any:
    """The shape(s) of :func:`example_input`, for messages (``"?"`` if it cannot be made)."""
    try:
        args = example_input(spec, tag)
    except Exception:  # noqa: BLE001 - only ever used inside an error message
        return "?"
    return _shapes(args[0]) if len(args) == 1 else _shapes(list(args))


def summarize(model: Any, spec: ModelSpec | None = None, tag: str | None = None,
              args: tuple | None = None) -> dict[str, Any]:
    """Parameter counts, and FLOPs and output shape of one forward pass.

    FLOPs are ``FlopCounterMode``'s: a multiply-add counts 2
    (:data:`zoo.registry.spec.GFLOPS_CONVENTION`). Kernels it cannot see are switched
    off while counting, so every architecture is counted the same way.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out: dict[str, Any] = {"params": total, "trainable_params": trainable,
                           "module": f"{type(model).__module__}.{type(model).__qualname__}"}
    if args is None and spec is not None:
        args = example_input(spec, tag)
    if args is not None:
        was_training = getattr(model, "training", False)
        model.eval()
        counter = FlopCounterMode(display=False)
        # The fused CPU attention kernels are invisible to FlopCounterMode; the math
        # kernel computes the same result and is counted.
        from torch.nn.attention import SDPBackend, sdpa_kernel

        # nn.MultiheadAttention's eval fast path (torch._native_multi_head_attention) is
        # one opaque kernel too: torchvision's ViT-B/16 counted 22.5 GFLOPs with it,
        # 35.1 without (its projections and attention were missing).
        mha = torch.backends.mha
        fastpath = mha.get_fastpath_enabled()
        mha.set_fastpath_enabled(False)
        try:
            with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), counter:
                result = model(*args)
        finally:
            mha.set_fastpath_enabled(fastpath)
            model.train(was_training)
        out["input_shape"] = _shapes(args[0]) if len(args) == 1 else _shapes(list(args))
        out["output_shape"] = _shapes(result)
        out["gflops"] = counter.get_total_flops() / 1e9
    return out


# -- saved-model directories ------------------------------------------------------------

def save(model: Any, directory: str | os.PathLike[str], *, spec: ModelSpec,
         tag: str | None = None, kwargs: Mapping[str, Any] | None = None,
         extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``model.safetensors`` and ``config.json`` so that ``zoo get DIR`` rebuilds it.

    The directory is written in a sibling temp dir and renamed into place, so a failure
    never leaves half a model behind.
    """
    from zoo.atomic import write_dir
    from zoo.loading.weights import save_weights, sha256_of
    from zoo.registry.plugins import get_plugins
    from zoo.version import __version__

    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())) \
            and not (target / CONFIG_FILE).is_file():
        raise UsageError(f"{target}: exists and is not an empty or zoo model directory; "
                         "choose another --save path")
    # An existing zoo model directory may hold more than the model (checkpoints, metrics,
    # an adapter): only the model's own two files are replaced, the weights first, since
    # config.json names their sha256.
    with write_dir(target, files=(WEIGHTS_FILE, CONFIG_FILE)) as tmp:
        save_weights(model, tmp / WEIGHTS_FILE)
        info = get_plugins().infos.get(spec.plugin or "")
        pre = spec.pretrained.get(tag) if tag else None
        inp = spec.input_for(tag)
        config = {
            "format": FORMAT_VERSION,
            "zoo_version": __version__,
            "name": spec.name,
            "tag": tag,
            "family": spec.family,
            "task": spec.task,
            "builder": spec.builder_path,
            "kwargs": thaw(kwargs) if kwargs is not None else merged_kwargs(spec, tag, {}),
            "plugin": spec.plugin,
            "plugin_distribution": info.distribution if info else None,
            "plugin_version": info.version if info else None,
            "labels": list(pre.labels) if pre and pre.labels else None,
            "input": asdict(inp) if inp else None,
            "demo": spec.demo_task,
            "license": (pre.license if pre and pre.license else spec.license),
            "weights": WEIGHTS_FILE,
            "sha256": sha256_of(tmp / WEIGHTS_FILE),
        }
        if extra:
            config.update(thaw(extra))
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return target


def read_config(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """A saved directory's ``config.json`` as a dict, or one line saying what is wrong.

    Only a regular file of bounded size is read (not a FIFO or ``/dev/zero``), and only a
    JSON object with ``builder`` and a ``kwargs`` table is a zoo model's config.
    """
    d = Path(directory)
    cfg_path = d / ZOO_FILE if (d / ZOO_FILE).exists() else d / CONFIG_FILE
    damaged = "the directory is damaged, save or fetch it again"
    try:
        # A regular file of bounded size only: a FIFO would hang, /dev/zero eat the memory.
        config = json.loads(read_regular(cfg_path, MAX_CONFIG_BYTES))
    except NotARegularFile as e:
        why = str(e).replace("more than the ", "more than a model's config (").replace(
            " allowed", " at most)")
        raise UsageError(f"{cfg_path}: unreadable ({why}); {damaged}") from None
    except FileNotFoundError:
        raise UsageError(f"{d}: no {CONFIG_FILE}; not a zoo model directory "
                         "(make one with 'zoo get NAME --save DIR')") from None
    except RecursionError:
        raise UsageError(f"{cfg_path}: nested too deeply to be a model's config; {damaged}"
                         ) from None
    except (OSError, ValueError) as e:
        why = " ".join(str(e).split())[:200]
        raise UsageError(f"{cfg_path}: unreadable ({why}); {damaged}") from None
    if not isinstance(config, dict):
        raise UsageError(f"{cfg_path}: holds a JSON {type(config).__name__}, not an object; "
                         f"{damaged}")
    for key in ("builder", "kwargs"):
        if key not in config:
            raise UsageError(f"{cfg_path}: missing '{key}'; {damaged}")
    if not isinstance(config["kwargs"], dict):
        raise UsageError(f"{cfg_path}: 'kwargs' must be a table, got "
                         f"{type(config['kwargs']).__name__}; {damaged}")
    return config


def trusted_spec(directory: str | os.PathLike[str], config: dict[str, Any]
                 ) -> tuple[ModelSpec, Callable[..., Any]]:
    """The catalog entry a saved directory names, and the builder it may call.

    config.json travels with the directory (a Hub repo, a colleague's folder): calling
    whatever ``builder`` it names would let it run any code (``"os:system"``). zoo only
    calls builders that an installed catalog entry of the same name uses.
    """
    from zoo.loading.trust import install_hint
    from zoo.registry import default_registry

    d = Path(directory)
    cfg = d / CONFIG_FILE
    builder, name = config["builder"], config.get("name")
    if not isinstance(builder, str):
        raise UsageError(f"{cfg}: 'builder' must be a string; the directory is damaged, save "
                         "or fetch it again")
    known = None
    if isinstance(name, str) and name.isprintable() and len(name) <= 200:
        try:
            known = default_registry().spec(name)
        except ZooError:
            known = None
    shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
    if known is not None and known.builder_path == builder:
        return known, builder_of(known)
    dist = config.get("plugin_distribution")
    hint = install_hint(dist)
    plugin = config.get("plugin")
    # "zoo": directories saved before the distribution was renamed
    if known is None and hint and dist not in ("zoo", DISTRIBUTION) \
            and isinstance(plugin, str) and plugin.isidentifier():
        raise BuildError(f"{d}: was made by plugin '{plugin}'; install it first ({hint})")
    if known is None:
        raise BuildError(f"{d}: config.json names model {shown}, which no installed plugin "
                         "or catalog declares; install the plugin that made it")
    raise BuildError(f"{d}: config.json names builder {builder[:80]!r} for model '{name}', "
                     f"whose catalog builder is '{known.builder_path}'; zoo calls only catalog "
                     "builders (re-save the model with this zoo)")


def load_dir(directory: str | os.PathLike[str]):
    """Rebuild a model saved by :func:`save` (or ``zoo finetune``) and load its weights.

    The directory is data: only the builder the catalog declares for the saved model's
    name is called, with the kwargs that entry declares (:func:`zoo.loading.trust.
    checked_kwargs`); files named in config.json must lie inside the directory.
    """
    from zoo.loading.trust import checked_kwargs, inside
    from zoo.loading.weights import apply_state_dict, read_state_dict

    d = Path(directory)
    config = read_config(d)
    spec, fn = trusted_spec(d, config)
    # Files a published model bundles (vocabularies, tokenizers) are named relative to
    # the directory, so that the directory can move (Hub cache, --out folders).
    kwargs = checked_kwargs(d, config, spec, fn)
    weights = inside(d, config.get("weights", WEIGHTS_FILE), "'weights'")
    try:
        model = fn(**kwargs)
    except ZooError:
        raise
    except TypeError as e:
        raise UsageError(f"{d / CONFIG_FILE}: the builder rejected its kwargs ({_brief(e)}); "
                         "the directory is damaged, save or fetch it again") from None
    except Exception as e:
        raise BuildError(f"{d}: building failed ({type(e).__name__}: {_brief(e)}); the "
                         "directory's config.json does not fit this zoo") from None
    _check_module(model, f"{d}: the builder of '{spec.name}'")
    state = read_state_dict(weights, sha256=config.get("sha256"))
    apply_state_dict(model, state, origin=str(weights))
    model.eval()
    return model


def _brief(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]


def _check_module(model: Any, who: str) -> None:
    """A builder must return a torch module; anything else is the plugin's bug."""
    from torch import nn

    if not isinstance(model, nn.Module):
        raise BuildError(f"{who} returned a {type(model).__name__}, not a torch.nn.Module; "
                         "the catalog entry or plugin that declares it is broken (report it "
                         "to its author)")
