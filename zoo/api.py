"""The Python API, mirroring the CLI: ``list_models``, ``info``, ``get``, ``finetune_hooks``.

:func:`resolve_ref` is the one place a model reference becomes a model: a catalog
``NAME[.TAG]``, a saved or fine-tuned directory, or ``hf-hub:ORG/NAME[@REV]`` (a repo zoo
published, or a native transformers or timm repo). ``zoo.get``, ``zoo.info``,
``zoo.predict``, ``zoo get`` and the demos all go through it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import UsageError
from zoo.registry import default_registry
from zoo.registry.spec import (
    GFLOPS_CONVENTION,
    NAME_RE,
    InputSpec,
    ModelSpec,
    split_name_tag,
    thaw,
)

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
    A directory or ``hf-hub:`` repo is described from its own files (``layout`` says
    which: zoo, zoo-legacy, transformers, timm); a repo's weights are not downloaded.
    """
    text = os.fspath(name)
    if text.startswith(HUB_PREFIX) or (text.strip() and _looks_like_dir(text)):
        return _ref_info(resolve_ref(text, weights=False))
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
    reg = default_registry()      # once: it checks the environment on every call
    if text.startswith(HUB_PREFIX) or _looks_like_dir(text, reg):
        if kwargs:
            raise UsageError(f"{text}: a saved or published model is rebuilt from its own "
                             "config; builder arguments cannot be changed here")
        return resolve_ref(text).build()
    s, tag = reg.resolve(text)
    return build.build(s, tag, **kwargs)


@dataclass(frozen=True)
class ModelRef:
    """A model reference, resolved without building the model (no torch for catalog names
    and directories; a repo's files are downloaded).

    For a directory or repo, ``spec`` is the catalog's when the folder names a known zoo
    model, else one made from the folder's files; its single tag ``tag`` holds the
    folder's labels, input spec, task and kwargs, so callers read those the same way for
    every kind of reference.
    """

    label: str                      # what to call it: the user's text, or the model's name
    spec: ModelSpec
    tag: str | None
    directory: Path | None = None   # the folder it is built from (a Hub snapshot for hf-hub:)
    layout: str | None = None       # zoo, zoo-legacy, transformers, timm (folders only)

    @property
    def task(self) -> str:
        """What the model does; an encoder whose tag names classes is a classifier."""
        task = self.spec.task_for(self.tag)
        return "text-classification" if task == "feature-extraction" and self.labels else task

    @property
    def labels(self) -> tuple[str, ...] | None:
        pre = self.spec.pretrained.get(self.tag) if self.tag else None
        return tuple(pre.labels) if pre is not None and pre.labels else None

    @property
    def input(self) -> InputSpec | None:
        return self.spec.input_for(self.tag)

    def build(self):
        """The model, with its weights (imports torch and the model's library)."""
        from zoo.loading import build

        if self.directory is not None:
            from zoo.loading.native_build import load_directory

            return load_directory(self.directory, self.label)
        return build.build(self.spec, self.tag)


def resolve_ref(ref: str | os.PathLike[str], *, default_tag: bool = False,
                weights: bool = True) -> ModelRef:
    """Resolve ``NAME[.TAG]``, a model directory or ``hf-hub:ORG/NAME[@REV]``.

    Args:
        ref: what the user named.
        default_tag: for a bare catalog ``NAME``, pick its default trained tag (demos do;
            ``zoo.get`` builds the random-weights architecture).
        weights: for ``hf-hub:``, also download the weights (``False``: only the files
            that describe the model, for ``zoo info``).

    Raises:
        UnknownModelError: no such catalog model or tag (with close names).
        UsageError / WeightsError: a folder or repo zoo cannot read, in one line saying
            what it found; the Hub unreachable and the repo not cached.
    """
    from zoo.loading import native

    text = os.fspath(ref)
    reg = default_registry()
    if text.startswith(HUB_PREFIX):
        from zoo.loading.hub import snapshot

        folder = snapshot(text[len(HUB_PREFIX):], weights=weights)
        d = native.describe(folder, what=text)
        return ModelRef(text, d.spec, d.tag, folder, d.layout)
    if _looks_like_dir(text, reg):
        d = native.describe(Path(text))
        return ModelRef(d.label, d.spec, d.tag, Path(text), d.layout)
    s, tag = reg.resolve(text)
    if tag is None and default_tag and s.pretrained:
        tag = s.default_tag
    return ModelRef(text, s, tag)


def _ref_info(ref: ModelRef) -> dict[str, Any]:
    """``info`` of a directory or repo, with the catalog-info keys the CLI shows."""
    from zoo.loading.native import safetensors_params

    s, tag = ref.spec, ref.tag
    out = s.to_dict()
    weights = ref.directory / "model.safetensors" if ref.directory else None
    params = safetensors_params(weights) if weights is not None else None
    for pre in out["pretrained"].values():
        pre["params"] = params or s.params_for(tag)
        pre["gflops"] = s.gflops_for(tag)
        if ref.label.startswith(HUB_PREFIX):
            pre["source"] = ref.label        # not the cache folder it was read from
    out["params"] = params or s.params
    out["finetune"] = finetune_hooks(s) if s.name in default_registry() else {}
    out["demo"] = ref.task
    out["task"] = ref.task
    out["labels"] = list(ref.labels) if ref.labels else None
    fam = default_registry().families.get(s.family)
    out["family_description"] = fam.description if fam else None
    out["selected"] = out["pretrained"][tag]
    if s.name not in default_registry():
        # a model of its own (a native repo): its reference is its name, it has no tags
        out["name"], out["tag"], out["origin"] = ref.label, None, ref.label
    else:
        out["tag"] = tag
    out["layout"] = ref.layout
    out["source"] = ref.label
    return out


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

