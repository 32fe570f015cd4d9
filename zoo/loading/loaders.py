"""Built-in pretrained loaders: the ``zoo_load_pretrained`` hook for every built-in scheme.

Schemes: ``file:``, ``package:``, ``https:`` (``http:`` to loopback only), ``torchvision:``,
``timm:``, ``hf-hub:``; :mod:`zoo.loading.sources` documents each one, where its files are cached
and how offline mode works. The hook answers ``None`` for any other scheme (firstresult),
and is registered ``trylast`` so that a plugin can take over a scheme.

Loading is safe and all-or-nothing: the file is found (fetched into a cache if allowed),
its sha256 checked when the catalog gives one, read with safetensors or
``torch.load(weights_only=True)``, and its keys and shapes compared with the model's
before anything is copied. Every failure is one :class:`zoo.errors.WeightsError` line.

Labels: when the catalog tag lists ``labels``, or the weights carry their own class names
(torchvision's ``meta["categories"]``, timm's ImageNet label tables, ``id2label`` in a Hub
snapshot's ``config.json``), the loaded model gets them as a plain list attribute
``model.zoo_labels`` (index order); the catalog's list wins. The model stays the plain
``nn.Module``. :func:`labels_of` reads the list back (``None`` when unknown).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from zoo.errors import WeightsError
from zoo.hookspecs import hookimpl
from zoo.loading.paths import local_path, resolve_package_path
from zoo.loading.weights import apply_state_dict, read_state_dict

__all__ = ["labels_of", "load_source", "local_path", "resolve_package_path",
           "zoo_load_pretrained"]



@hookimpl(trylast=True)
def zoo_load_pretrained(model, source, tag):
    """Load ``source`` into ``model`` if its scheme is a built-in one; else ``None``."""
    from zoo.loading.sources import SCHEMES, scheme_of

    if scheme_of(source) not in SCHEMES:
        return None
    return load_source(model, source, sha256=getattr(tag, "sha256", None),
                       labels=getattr(tag, "labels", None))


def load_source(model: Any, source: str, *, sha256: str | None = None,
                labels: Sequence[str] | None = None) -> Any:
    """Load the weights at ``source`` into ``model`` safely; return ``model``.

    Args:
        model: the built ``nn.Module``.
        source: a pretrained source URI (see :mod:`zoo.loading.sources`).
        sha256: expected hash of the file (the catalog's), checked before parsing.
        labels: class names to attach as ``model.zoo_labels`` (over the weights' own).

    Raises:
        WeightsError: one line naming the file and what is wrong; ``model`` is unchanged.
    """
    from zoo.loading.sources import resolve

    found = resolve(source, sha256=sha256, model=model)
    state = read_state_dict(found.path, sha256=found.sha256)
    origin = f"{source} ({found.path})" if str(found.path) not in source else source
    try:
        apply_state_dict(model, state, origin=origin)
    except WeightsError:
        converted = _convert(found.convert, state, model)
        if converted is None:
            raise
        # a converted checkpoint that still does not fit reports the file's own keys
        try:
            apply_state_dict(model, converted, origin=origin)
        except WeightsError:
            apply_state_dict(model, state, origin=origin)
    names = list(labels) if labels else found.labels
    if names:
        model.zoo_labels = list(names)
    return model


def _convert(fn, state: dict, model: Any) -> dict | None:
    if fn is None:
        return None
    try:
        out = fn(state, model)
    except Exception:  # noqa: BLE001 - a failed conversion means "it did not fit"
        return None
    return out if isinstance(out, dict) else None


def labels_of(model: Any) -> list[str] | None:
    """Class names a loader attached to ``model`` (``model.zoo_labels``), or ``None``."""
    names = getattr(model, "zoo_labels", None)
    return list(names) if names else None
