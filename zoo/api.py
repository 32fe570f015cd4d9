"""The Python API, mirroring the CLI: ``list_models``, ``info``, ``get``, ``finetune_hooks``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from zoo.errors import UsageError
from zoo.registry import default_registry
from zoo.registry.spec import GFLOPS_CONVENTION, NAME_RE, ModelSpec, split_name_tag, thaw

HUB_PREFIX = "hf-hub:"


def list_models(patterns: str | list[str] | tuple[str, ...] = (), *, family: str | None = None,
                task: str | None = None, pretrained: bool = False) -> list[str]:
    """Names of matching models, sorted; with ``pretrained=True``, trained ``NAME.TAG`` names.

    Example:
        >>> zoo.list_models("resnet*")
        ['resnet50', ...]
    """
    pats = [patterns] if isinstance(patterns, str) else list(patterns)
    reg = default_registry()
    if pretrained:
        return [f"{s.name}.{t}" for s, t in reg.trained(pats, family=family, task=task)]
    return [s.name for s in reg.list(pats, family=family, task=task)]


def spec(name: str) -> tuple[ModelSpec, str | None]:
    """The ``(ModelSpec, tag)`` of ``NAME[.TAG]``; raises UnknownModelError with suggestions."""
    return default_registry().resolve(name)


def finetune_hooks(model: str | ModelSpec) -> dict[str, Any]:
    """Fine-tuning hints for a model: the catalog's ``finetune`` table over plugin hooks."""
    from zoo.registry.plugins import get_plugins

    s = spec(model)[0] if isinstance(model, str) else model
    merged: dict[str, Any] = {}
    fam = default_registry().families.get(s.family)
    if fam is not None:
        merged.update(thaw(fam.finetune))
    for _plugin, answer in reversed(get_plugins().collect("zoo_finetune_hooks", spec=s)):
        if isinstance(answer, dict):
            merged.update(answer)
    merged.update(thaw(s.finetune))
    return merged


def info(name: str) -> dict[str, Any]:
    """Everything the catalog knows about ``NAME[.TAG]``, as a JSON-ready dict.

    Top-level ``params`` and ``gflops`` are the architecture's; each entry of
    ``pretrained`` (and ``selected``, the one ``NAME.TAG`` names) carries the trained
    model's own, which are the architecture's unless the tag's kwargs change its size.
    ``gflops_convention`` says how GFLOPs are counted (a multiply-add is 2 FLOPs).
    """
    s, tag = spec(name)
    out = s.to_dict()
    for t, pre in out["pretrained"].items():
        pre["params"] = s.params_for(t)
        pre["gflops"] = s.gflops_for(t)
    out["finetune"] = finetune_hooks(s)
    out["demo"] = s.demo_task
    fam = default_registry().families.get(s.family)
    out["family_description"] = fam.description if fam else None
    out["tag"] = tag
    if tag is not None:
        out["selected"] = out["pretrained"][tag]
    out["gflops_convention"] = GFLOPS_CONVENTION
    return out


def get(name: str | os.PathLike[str], **kwargs: Any):
    """Build a model by name and return the plain ``nn.Module``.

    ``NAME`` gives random weights; ``NAME.TAG`` loads that tag's trained weights; a
    directory written by ``zoo get --save`` or ``zoo finetune`` is rebuilt from its
    config; ``hf-hub:ORG/REPO[@REV]`` is downloaded through huggingface_hub's cache.
    Keyword arguments go to the builder (``num_classes=5``).

    Raises:
        UnknownModelError: no such model or tag (with suggestions).
        WeightsError: weights missing, corrupt or not fitting the model.
    """
    from zoo.loading import build

    text = os.fspath(name)
    if text.startswith(HUB_PREFIX):
        return build.load_dir(_hub_snapshot(text[len(HUB_PREFIX):]))
    reg = default_registry()      # once: it checks the environment on every call
    if _looks_like_dir(text, reg):
        if kwargs:
            raise UsageError(f"{text}: a saved model is rebuilt from its config; builder "
                             "arguments cannot be changed here")
        return build.load_dir(text)
    s, tag = reg.resolve(text)
    return build.build(s, tag, **kwargs)


def _looks_like_dir(text: str, reg=None) -> bool:
    """A saved-model directory, as opposed to a catalog name (``timm/resnet18`` is a name).

    Catalog names win over a folder of the same name in the working directory; write
    ``./gcn`` for the folder. A slashed text that is no folder but could be a model name
    (``vae/beta_vaee``) is a name, so the error suggests ``vae/beta_vae`` rather than
    saying it is not a model directory.
    """
    reg = reg if reg is not None else default_registry()
    name = split_name_tag(text)[0]
    prefix, slash, _ = name.partition("/")
    if name in reg or (slash and prefix in reg.namespaces):
        return False
    path = Path(text)
    if text.startswith((".", "~")) or path.is_absolute() or path.exists():
        return True
    return (os.sep in text or "/" in text) and NAME_RE.match(name) is None


def _hub_snapshot(ref: str) -> Path:
    """Download ``ORG/REPO[@REV]`` through huggingface_hub's cache; return the local folder.

    See :func:`zoo.loading.hub.snapshot`: config.json first, then the weights and bundled files at
    that commit, each checked; ``HF_HUB_OFFLINE=1`` reads the cache only.
    """
    from zoo.loading.hub import snapshot

    return snapshot(ref)

