"""Ship trained weights: the file, its sha256, a JSON record, and the catalog lines to paste.

What every training script (and a plugin author with a freshly trained model) does at the
end of a run::

    from zoo.shipping import ship

    shipped = ship(model, "zoo/trained/lenet5-digits.safetensors", name="lenet5",
                   tag="digits", kwargs={"num_classes": 10}, labels=[str(i) for i in range(10)],
                   dataset="sklearn-digits", metrics={"accuracy": 0.9889})
    shipped.sha256, shipped.bytes      # also printed, with the TOML block below

prints::

    wrote zoo/trained/lenet5-digits.safetensors (248 kB); add to zoo/registry.toml:
    [models.lenet5.pretrained.digits]
    source = "package:zoo/trained/lenet5-digits.safetensors"
    sha256 = "6e4b37c0..."
    kwargs = { num_classes = 10 }
    labels = ["0", "1", ...]
    dataset = "sklearn-digits"
    metrics = { accuracy = 0.9889 }

The block is checked with the catalog's own validation before it is printed, so what is
pasted loads. A plugin author's weights work the same way: for a file inside their package
(``zoo_vae/weights/mlp-digits.safetensors``) the source is ``package:zoo_vae/weights/...``
and the message names their catalog (the ``.toml`` in the package that holds the model).
Two more things the training scripts share live here: :func:`run_script`
(their command line, read off ``main``'s signature) and :func:`warmup_cosine` (the
learning-rate schedule of the ViT and DETR recipes). Nothing here imports torch until
weights are written or a schedule is made.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from zoo.errors import UsageError

__all__ = ["Shipped", "catalog_block", "run_script", "ship", "ship_file", "warmup_cosine"]

_BARE_HEADER_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_BARE_INLINE_KEY = re.compile(r"^[A-Za-z0-9_]+$")   # the catalog quotes "upload-accuracy"


@dataclass(frozen=True)
class Shipped:
    """What :func:`ship` wrote: the weights file, its digest and size, the catalog block
    and the JSON record (``None`` when none was asked for). ``str()`` is the block."""

    path: Path
    sha256: str
    bytes: int
    toml: str
    record: dict[str, Any] | None = field(default=None, compare=False)

    def __str__(self) -> str:
        return self.toml


def ship(model: Any, path: str | os.PathLike[str], *, name: str, tag: str,
         metrics: Mapping[str, float], labels: Sequence[str] | None = None,
         kwargs: Mapping[str, Any] | None = None, dataset: str | None = None,
         description: str | None = None, fields: Mapping[str, Any] | None = None,
         source: str | None = None, sidecar: Mapping[str, Any] | None = None,
         echo: bool = True) -> Shipped:
    """Write ``model``'s weights to ``path`` and describe them for the catalog.

    Saves with :func:`zoo.loading.weights.save_weights` (safetensors, tied weights once, mode
    0644), creating the folder, then does what :func:`ship_file` does.

    Args:
        model: the trained ``nn.Module``.
        path: where the ``.safetensors`` go (``zoo/trained/FILE.safetensors`` to ship
            with zoo; a tmp dir in smoke tests).
        name, tag: the catalog entry, ``[models.NAME.pretrained.TAG]``.
        metrics: the numbers the catalog states (held-out figures).
        labels: class names in index order.
        kwargs: builder kwargs these weights need (the tag's ``kwargs``).
        dataset, description: the tag's ``dataset`` and ``description``.
        fields: any other keys of the tag table (``input``, ``license``, ``default``...).
        source: the URI to print. By default ``package:PKG/PATH`` for a file inside an
            importable package (``PKG`` is the outermost folder with an ``__init__.py``
            above it: ``zoo``, or the plugin's own), else ``file:`` and its absolute path.
        sidecar: write a JSON record next to the weights (``PATH`` with ``.json``)
            holding ``model``, ``dataset``, ``kwargs``, ``labels``, these fields,
            ``metrics``, ``sha256`` and ``bytes``; a key given here replaces the default
            (``metrics`` with training figures added, say). ``None``: no record.
        echo: print where the weights went and the catalog block.

    Returns:
        :class:`Shipped`; ``str(result)`` is the TOML block.

    Raises:
        UsageError: a name, tag or value the catalog would refuse (checked before
            anything is written).
    """
    from zoo.loading.weights import save_weights

    p = Path(path)
    # Refuse bad catalog values before training output is written, not after.
    catalog_block(name, tag, source=source or _default_source(p), sha256="0" * 64,
                  kwargs=kwargs, labels=labels, dataset=dataset, metrics=metrics,
                  description=description, fields=fields)
    p.parent.mkdir(parents=True, exist_ok=True)
    save_weights(model, p)
    return ship_file(p, name=name, tag=tag, metrics=metrics, labels=labels, kwargs=kwargs,
                     dataset=dataset, description=description, fields=fields, source=source,
                     sidecar=sidecar, echo=echo)


def ship_file(path: str | os.PathLike[str], *, name: str, tag: str,
              metrics: Mapping[str, float], labels: Sequence[str] | None = None,
              kwargs: Mapping[str, Any] | None = None, dataset: str | None = None,
              description: str | None = None, fields: Mapping[str, Any] | None = None,
              source: str | None = None, sidecar: Mapping[str, Any] | None = None,
              echo: bool = True) -> Shipped:
    """Describe weights already written (an adapter file, say): hash them, write the JSON
    record if ``sidecar`` is given, print and return the catalog block.

    Takes the arguments of :func:`ship` but the model.
    """
    from zoo.loading.weights import sha256_of

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: no such weights file; write the weights first")
    sha, size = sha256_of(p), p.stat().st_size
    block = catalog_block(name, tag, source=source or _default_source(p), sha256=sha,
                          kwargs=kwargs, labels=labels, dataset=dataset, metrics=metrics,
                          description=description, fields=fields)
    record = None
    if sidecar is not None:
        base = {"model": f"{name}.{tag}", "dataset": dataset,
                "kwargs": dict(kwargs) if kwargs else None,
                "labels": list(labels) if labels is not None else None}
        record = {k: v for k, v in {**base, **sidecar}.items() if v is not None}
        record.setdefault("metrics", dict(metrics))
        record.update(sha256=sha, bytes=size)
        p.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    if echo:
        print(f"wrote {p} ({size / 1e3:.0f} kB); add to {_catalog_of(p, name)}:\n{block}",
              flush=True)
    return Shipped(path=p, sha256=sha, bytes=size, toml=block, record=record)


def catalog_block(name: str, tag: str, *, source: str, sha256: str | None = None,
                  kwargs: Mapping[str, Any] | None = None,
                  labels: Sequence[str] | None = None, dataset: str | None = None,
                  metrics: Mapping[str, float] | None = None, description: str | None = None,
                  fields: Mapping[str, Any] | None = None) -> str:
    """The ``[models.NAME.pretrained.TAG]`` table as TOML, checked as the catalog checks it.

    Raises:
        UsageError: a value TOML cannot hold (None), or one the catalog refuses (bad
            name, tag, source or sha256, metrics that are not numbers, unknown keys).
    """
    table: dict[str, Any] = {"source": source, "sha256": sha256,
                             "kwargs": dict(kwargs) if kwargs else None,
                             "labels": list(labels) if labels is not None else None,
                             "dataset": dataset, "metrics": dict(metrics) if metrics else None,
                             "description": description}
    table = {k: v for k, v in table.items() if v is not None}
    table.update(fields or {})
    lines = [f"[models.{_key(name, _BARE_HEADER_KEY)}.pretrained.{_key(tag, _BARE_HEADER_KEY)}]"]
    lines += [f"{_key(k, _BARE_INLINE_KEY)} = {_value(v, k)}" for k, v in table.items()]
    text = "\n".join(lines) + "\n"
    _check(text)
    return text


def run_script(main: Callable[..., Any], argv: Sequence[str] | None = None) -> Any:
    """Call a training script's ``main(out, *, option=default, ...)`` from the command line.

    ``--out`` sets the first parameter; each keyword-only parameter whose default is an
    int, float or str becomes ``--option-name`` of that type with that default (others,
    such as ``verbose=True`` or ``limit=None``, keep their default). The defaults thus live
    only in ``main``'s signature, and the help's summary is the script docstring's first
    line. Returns what ``main`` returns::

        if __name__ == "__main__":
            run_script(main)
    """
    import argparse
    import inspect

    first, *rest = inspect.signature(main).parameters.values()
    doc = (main.__globals__.get("__doc__") or "").strip()
    ap = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    ap.add_argument("--out", dest=first.name, default=str(first.default),
                    help="where the weights go (default: %(default)s)")
    for p in rest:
        if p.kind is p.KEYWORD_ONLY and type(p.default) in (int, float, str):
            ap.add_argument("--" + p.name.replace("_", "-"), dest=p.name, type=type(p.default),
                            default=p.default, help="default: %(default)s")
    options = vars(ap.parse_args(argv))
    return main(options.pop(first.name), **options)


def warmup_cosine(optimizer: Any, steps: int, *, warmup: float = 0.05):
    """Linear warmup over the first ``warmup`` share of ``steps`` (at least one step),
    then cosine decay to zero at ``steps``; a ``LambdaLR``, stepped once per batch."""
    import torch

    warm = max(1, int(steps * warmup))

    def factor(s: int) -> float:
        if s < warm:
            return (s + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * (s - warm) / max(1, steps - warm)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _package_root(path: Path) -> Path | None:
    """The outermost package folder (with ``__init__.py``) holding ``path``, or None."""
    top = None
    for folder in path.resolve().parents:
        if (folder / "__init__.py").is_file():
            top = folder
        elif top is not None:
            break
    return top


def _default_source(path: Path) -> str:
    """``package:PKG/REL`` for a file inside a package, else ``file:ABSOLUTE``."""
    top = _package_root(path)
    if top is None:
        return f"file:{path.resolve()}"
    return f"package:{path.resolve().relative_to(top.parent).as_posix()}"


def _catalog_of(path: Path, name: str) -> str:
    """Where the block goes: the package's catalog that declares ``name``, else its only
    catalog; a file outside any package could go to any catalog."""
    import tomllib

    top = _package_root(path)
    if top is None:
        return "the catalog that declares it (zoo's registry.toml, or your plugin's)"
    found = []
    for toml in sorted(top.rglob("*.toml")):
        try:
            models = tomllib.loads(toml.read_text(encoding="utf-8")).get("models", {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue
        if isinstance(models, dict) and models:
            found.append((name in models, toml))
    if not found:
        return f"your catalog (in {top.name}/)"
    toml = next((t for has, t in found if has), found[0][1] if len(found) == 1 else None)
    if toml is None:
        return f"your catalog (in {top.name}/)"
    return toml.resolve().relative_to(top.parent).as_posix()


def _check(text: str) -> None:
    import tomllib

    from zoo.errors import CatalogError
    from zoo.registry.catalog import validate_catalog

    data = tomllib.loads(text)
    # A stand-in model table around the tag, so the catalog's own checks run on it.
    for entry in data["models"].values():
        entry.update(family="x", task="x", builder="x:x")
    try:
        validate_catalog(data, path="<shipped weights>")
    except CatalogError as e:
        raise UsageError(f"the catalog would refuse these weights' entry: {e}") from None


def _key(k: Any, bare: re.Pattern[str]) -> str:
    k = str(k)
    return k if bare.match(k) else _string(k)


def _string(s: str) -> str:
    # JSON string escapes are TOML basic-string escapes; TOML also forbids a raw DEL.
    return json.dumps(s, ensure_ascii=False).replace("\x7f", "\\u007f")


def _value(v: Any, where: str) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, Integral):
        return str(int(v))
    if isinstance(v, Real):
        f = float(v)
        return ("nan" if math.isnan(f) else ("inf" if f > 0 else "-inf")) \
            if not math.isfinite(f) else repr(f)
    if isinstance(v, str | os.PathLike):
        return _string(os.fspath(v))
    if isinstance(v, Mapping):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{_key(k, _BARE_INLINE_KEY)} = {_value(x, f'{where}.{k}')}"
                                for k, x in v.items()) + " }"
    if isinstance(v, Sequence):
        return "[" + ", ".join(_value(x, f"{where}[{i}]") for i, x in enumerate(v)) + "]"
    if v is None:
        raise UsageError(f"'{where}' is None and TOML has no null; leave the key out")
    raise UsageError(f"'{where}' is a {type(v).__name__}, which the catalog cannot hold; "
                     "give a number, string, list or table")
