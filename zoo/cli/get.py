"""``zoo get``: build a model (or rebuild a saved one), summarise a forward pass, save it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from zoo.cli.app import JsonOpt, _registry, app, handles_errors, heavy
from zoo.cli.render import _json, _table, human_count
from zoo.cli.status import namespace_wait, status
from zoo.errors import UsageError, ZooError
from zoo.registry.spec import GFLOPS_CONVENTION, GFLOPS_NOTE


def _quiet_library_warnings() -> None:
    """Hide deprecation chatter that libraries print at import (not the user's concern)."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.* is deprecated",
                            category=FutureWarning)


def _parse_kwargs(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if not eq or not key.strip():
            raise UsageError(f"--kwarg '{pair}' must look like KEY=VALUE (e.g. num_classes=5)")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def _check_writable_dir(path: Path, *, overwrite: bool = False) -> None:
    """Fail early when ``path`` cannot become a directory (a file in the way, no parent),
    or already holds a model that only ``--overwrite`` may replace."""
    from zoo.loading.build import CONFIG_FILE, WEIGHTS_FILE

    held = [n for n in (CONFIG_FILE, WEIGHTS_FILE) if (path / n).exists()] \
        if path.is_dir() else []
    if held and not overwrite:
        raise UsageError(f"--save {path}: already holds a saved model ({', '.join(held)}); "
                         "pass --overwrite to replace it, or choose another --save path")
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise UsageError(f"--save {path}: '{probe}' is not a directory; choose another path")
    if not os.access(probe, os.W_OK):
        raise UsageError(f"--save {path}: '{probe}' is not writable; choose another path")


def _summary(build, model, spec, tag, label: str, *, blame_user: bool,
             args: tuple | None = None) -> dict[str, Any]:
    """One forward pass on the declared input; a model that fails it is one line, and
    nothing is saved."""
    from zoo.errors import BuildError

    try:
        return build.summarize(model, spec, tag, args=args)
    except ZooError:
        raise
    except Exception as e:  # noqa: BLE001 - the model's own complaint, shown in one line
        why = " ".join(str(e).split())[:200]
        shape = build.example_shape(spec, tag)
        hint = ("the --kwarg values change what the model takes; build it without them or "
                "feed it yourself with zoo.get()" if blame_user else
                "the model does not fit its catalog entry's input; report it to its plugin")
        error = UsageError if blame_user else BuildError
        raise error(f"{label}: built, but one forward pass on its declared input {shape} "
                    f"failed ({type(e).__name__}: {why}); {hint}; nothing was saved"
                    ) from None


@app.command("get")
@handles_errors
def get_cmd(
    name: Annotated[str, typer.Argument(
        help="NAME, NAME.TAG, a saved model DIR, or hf-hub:ORG/REPO.")],
    save: Annotated[Path | None, typer.Option(
        "--save", help="Write model.safetensors + config.json to this directory.",
        metavar="DIR")] = None,
    kwarg: Annotated[list[str] | None, typer.Option(
        "--kwarg", "-k", help="Builder argument KEY=VALUE (repeatable).",
        metavar="KEY=VALUE")] = None,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Let --save replace the model already in DIR.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build a model (with weights for NAME.TAG) and summarise one forward pass.

    NAME is the architecture with random weights; NAME.TAG loads that trained model.

    Examples:
      zoo get lenet5
      zoo get lenet5.digits --save out/lenet
      zoo get out/lenet
      zoo get timm/resnet18
    """
    from zoo.api import HUB_PREFIX, _looks_like_dir, resolve_ref
    from zoo.loading import build

    heavy()
    _quiet_library_warnings()
    kwargs = _parse_kwargs(kwarg or [])
    if save is not None:
        _check_writable_dir(save, overwrite=overwrite)  # before building, which takes a while
    reg = _registry()
    args = None
    if name.startswith(HUB_PREFIX) or _looks_like_dir(name):
        if save is not None or kwargs:
            raise UsageError(f"{name} is a saved model: it is rebuilt from its config, so "
                             "--save and --kwarg do not apply")
        # zoo's layouts, and native transformers/timm folders and repos (zoo.api.resolve_ref)
        if name.startswith(HUB_PREFIX):
            status(f"Fetching {name} (from the Hub, or huggingface_hub's cache)...")
        ref = resolve_ref(name)
        if ref.layout in ("zoo", "zoo-legacy") and ref.spec.name in reg:
            from zoo.loading.trust import saved_tag

            # zoo get rebuilds a catalog model: a tag it names must be one of the entry's
            cfg = ref.directory / (build.ZOO_FILE if (ref.directory / build.ZOO_FILE).exists()
                                   else build.CONFIG_FILE)
            saved_tag(build.read_config(ref.directory), reg.spec(ref.spec.name), str(cfg))
        status(f"Loading the saved model {name} and running one forward pass...")
        model = ref.build()
        spec, tag = ref.spec, ref.tag
        label = name
        weights = f"{name} ({ref.layout} layout)" if name.startswith(HUB_PREFIX) \
            else f"{name} (saved)"
        try:
            args = build.example_input(spec, tag)
        except UsageError:      # declares no input: parameters only, no forward pass
            spec = None
    else:
        namespace_wait(reg, [name])
        spec, tag = reg.resolve(name)
        size = spec.params_for(tag)
        status(f"Building {spec.name}" + (f" ({human_count(size)} parameters)" if size else "")
               + (f" with its {tag} weights" if tag else " with random weights")
               + " and running one forward pass...")
        model = build.build(spec, tag, **kwargs)
        label = spec.name + (f".{tag}" if tag else "")
        weights = spec.pretrained[tag].source if tag else "random"
    summary = _summary(build, model, spec, tag, label, blame_user=bool(kwargs), args=args)
    summary["name"] = label
    summary["weights"] = weights
    if save is not None:
        try:
            out = build.save(model, save, spec=spec, tag=tag,
                             kwargs=build.merged_kwargs(spec, tag, kwargs))
        except OSError as e:
            raise UsageError(f"--save {save}: cannot write there ({e.strerror or e}); "
                             "choose a writable directory") from None
        summary["saved_to"] = str(out)
    if "gflops" in summary:
        summary["gflops_convention"] = GFLOPS_CONVENTION
    if as_json:
        return _json(summary)
    rows = [["module", summary["module"]],
            ["weights", summary["weights"]],
            ["params", f"{summary['params']:,}"],
            ["trainable", f"{summary['trainable_params']:,}"]]
    if "gflops" in summary:
        rows += [["input", str(summary["input_shape"])],
                 ["output", str(summary["output_shape"])],
                 ["gflops", f"{summary['gflops']:.4g}  [{GFLOPS_NOTE}]"]]
    if save is not None:
        rows.append(["saved to", summary["saved_to"]])
    _table(["FIELD", label], rows)
