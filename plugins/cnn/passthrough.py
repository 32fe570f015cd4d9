"""Pass-through namespaces: every timm and torchvision model as ``timm/NAME``, ``torchvision/NAME``.

The CNN plugin registers these namespaces lazily (``Registry.add_namespace``): nothing
here is imported until a user names a ``timm/...`` or ``torchvision/...`` model or lists
one of those namespaces. A resolved model is an ordinary :class:`~zoo.registry.spec.ModelSpec`
whose builder is the library's own factory, so ``zoo.get("timm/resnet18")`` returns
exactly what ``timm.create_model("resnet18")`` returns.

Pretrained weights become tags: ``timm/resnet18.a1_in1k`` has source
``timm:resnet18.a1_in1k`` and ``torchvision/resnet18.imagenet1k_v1`` has source
``torchvision:ResNet18_Weights.IMAGENET1K_V1``; the built-in loaders fetch them.
"""

from __future__ import annotations

import functools
from typing import Any

from zoo.registry.spec import TAG_RE, InputSpec, ModelSpec, PretrainedSpec, freeze

# Model-name prefixes of attention-based image models, listed as family "transformer".
_TRANSFORMER_PREFIXES = (
    "vit", "deit", "beit", "swin", "eva", "cait", "xcit", "levit", "pvt", "twins", "crossvit",
    "mvit", "convit", "tnt", "volo", "coat", "maxvit", "maxxvit", "efficientformer", "flexivit",
    "samvit", "gcvit", "davit", "nest", "pit", "sequencer", "tiny_vit", "fastvit", "hiera",
    "next_vit", "vitamin", "mambaout", "aimv2", "naflexvit", "rdnet_vit",
)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def family_of(name: str) -> str:
    """``"transformer"`` for ViT-like model names, else ``"cnn"``."""
    return "transformer" if name.startswith(_TRANSFORMER_PREFIXES) else "cnn"


# -- timm ----------------------------------------------------------------------------------

def timm_names() -> list[str]:
    """Every architecture timm can build (imports timm: several seconds)."""
    import timm

    return list(timm.list_models())


@functools.cache
def _timm_tags() -> dict[str, list[str]]:
    """Architecture -> its pretrained tags, default first (one pass over timm's table;
    ``timm.list_pretrained(name + ".*")`` per model makes listing quadratic)."""
    import timm

    out: dict[str, list[str]] = {}
    for full in timm.list_pretrained():
        arch, _, tag = full.partition(".")
        out.setdefault(arch, []).append(tag)
    return out


def timm_spec(name: str) -> ModelSpec | None:
    """The ModelSpec of ``timm/NAME``, or ``None`` if timm has no such architecture."""
    import timm
    from timm.models import get_pretrained_cfg

    if not timm.is_model(name):
        return None
    cfg = get_pretrained_cfg(name)    # the default tag's config: local, no network
    inp = _timm_input(cfg.to_dict() if cfg is not None else {})
    pretrained: dict[str, PretrainedSpec] = {}
    # The arch's own config equals its default tag's: that tells which tag is default.
    for tag in _timm_tags().get(name, []):
        full = f"{name}.{tag}"
        if not TAG_RE.match(tag):
            continue
        tcfg_obj = get_pretrained_cfg(full)
        tcfg = tcfg_obj.to_dict() if tcfg_obj is not None else {}
        kwargs = {"num_classes": tcfg["num_classes"]} if tcfg.get("num_classes") else {}
        tag_input = _timm_input(tcfg)
        pretrained[tag] = PretrainedSpec(
            tag=tag, source=f"timm:{full}", kwargs=freeze(kwargs),
            input=tag_input if tag_input != inp else None,
            license=tcfg.get("license"), default=tcfg_obj is not None and tcfg_obj == cfg,
        )
    cfg_d = cfg.to_dict() if cfg is not None else {}
    return ModelSpec(
        name=f"timm/{name}", family=family_of(name), task="image-classification",
        builder="timm:create_model", kwargs=freeze({"model_name": name}), input=inp,
        description=f"timm's {name}", paper_url=_first(cfg_d.get("paper_ids")),
        license=cfg_d.get("license"), tags=("timm", "imagenet"),
        demo="image-classification", pretrained=freeze(pretrained),
        origin="zoo.plugins.cnn.passthrough:timm_spec",
    )


def _first(value: Any) -> str | None:
    if isinstance(value, list | tuple):
        value = value[0] if value else None
    if isinstance(value, str) and value.startswith("arXiv:"):
        return "https://arxiv.org/abs/" + value[6:]
    return value if isinstance(value, str) and value.startswith("http") else None


def _timm_input(cfg: dict[str, Any]) -> InputSpec:
    size = tuple(cfg.get("input_size") or (3, 224, 224))
    return InputSpec(size=size, mean=tuple(cfg.get("mean") or _IMAGENET_MEAN),
                     std=tuple(cfg.get("std") or _IMAGENET_STD),
                     interpolation=cfg.get("interpolation") or None)


# -- torchvision ---------------------------------------------------------------------------

_TV_TASKS = {
    "torchvision.models.detection": "object-detection",
    "torchvision.models.segmentation": "image-segmentation",
    "torchvision.models.video": "video-classification",
    "torchvision.models.optical_flow": "optical-flow",
    "torchvision.models.quantization": "image-classification",
}


def torchvision_names() -> list[str]:
    """Every model torchvision registers (imports torchvision.models: seconds)."""
    import torchvision.models

    return list(torchvision.models.list_models())


def torchvision_model(*, model_name: str, **kwargs: Any):
    """``torchvision.models.get_model(model_name, **kwargs)``: torchvision's own module."""
    import torchvision.models

    return torchvision.models.get_model(model_name, **kwargs)


def torchvision_spec(name: str) -> ModelSpec | None:
    """The ModelSpec of ``torchvision/NAME``, or ``None`` if torchvision has no such model."""
    import torchvision.models as tvm

    if name not in tvm.list_models():
        return None
    fn = tvm.get_model_builder(name)
    task = next((t for mod, t in _TV_TASKS.items() if fn.__module__.startswith(mod)),
                "image-classification")
    try:
        enum = tvm.get_model_weights(name)
    except (ValueError, KeyError):
        enum = None
    inp: InputSpec | None = None
    params = None
    pretrained: dict[str, PretrainedSpec] = {}
    for member in list(enum) if enum is not None else []:
        meta = member.meta
        metrics = {}
        for dataset, values in (meta.get("_metrics") or {}).items():
            for k, v in values.items():
                if isinstance(v, int | float):
                    metrics[f"{dataset.lower()}-{k.replace('@', '')}"] = float(v)
        cats = meta.get("categories")
        kwargs: dict[str, Any] = {"num_classes": len(cats)} if cats and task != "optical-flow" \
            else {}
        if name.startswith("quantized_") and meta.get("backend"):
            kwargs["quantize"] = True       # int8 weights need the quantized graph
        pretrained[member.name.lower()] = PretrainedSpec(
            tag=member.name.lower(), source=f"torchvision:{type(member).__name__}.{member.name}",
            kwargs=freeze(kwargs),
            metrics=freeze(metrics), default=member is enum.DEFAULT,
        )
        if member is enum.DEFAULT:
            params = meta.get("num_params")
            if task == "image-classification":
                inp = _tv_input(member)
    if inp is None and task == "image-classification":
        inp = InputSpec(size=(3, 224, 224), mean=_IMAGENET_MEAN, std=_IMAGENET_STD)
    return ModelSpec(
        name=f"torchvision/{name}", family=family_of(name), task=task,
        builder="zoo.plugins.cnn.passthrough:torchvision_model",
        kwargs=freeze({"model_name": name}), input=inp,
        description=f"torchvision's {name}", license="bsd-3-clause", params=params,
        tags=("torchvision",), demo=task, pretrained=freeze(pretrained),
        origin="zoo.plugins.cnn.passthrough:torchvision_spec",
    )


def _tv_input(member: Any) -> InputSpec | None:
    try:
        t = member.transforms()
        crop = t.crop_size[0]
        return InputSpec(size=(3, crop, crop), mean=tuple(t.mean), std=tuple(t.std),
                         interpolation=t.interpolation.value)
    except (AttributeError, IndexError, TypeError):
        return None
