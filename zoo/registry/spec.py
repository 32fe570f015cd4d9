"""Immutable records for the catalog: one ``ModelSpec`` per model, one ``PretrainedSpec`` per tag.

An *architecture* (``resnet50``) builds with random weights; a *trained model*
(``resnet50.imagenet``) is the architecture plus one of its pretrained tags. Parsing and
validation live in :mod:`zoo.registry.catalog`; this module only holds the records and the one
name parser every command uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: How zoo counts GFLOPs, for ``zoo info``, ``zoo get`` and model cards to say beside the figure.
GFLOPS_CONVENTION = ("GFLOPs of one forward pass as torch's FlopCounterMode counts them: a "
                     "multiply-add is 2 FLOPs, so torchvision's and timm's tables, which count "
                     "multiply-adds (MACs), show half these figures")
#: The same, short enough for a table cell.
GFLOPS_NOTE = "1 multiply-add = 2 FLOPs; MAC tables show half"

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*(/[a-z0-9][a-z0-9_\-]*)?$")
TAG_RE = re.compile(r"^[a-z0-9][a-z0-9_\-]*$")

class FrozenDict(dict):
    """A dict that refuses changes after creation; picklable, unlike MappingProxyType."""

    def _readonly(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("catalog records are read-only; copy with dict(...) to change")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _readonly  # type: ignore[assignment]
    __ior__ = _readonly  # type: ignore[assignment]

    def __reduce__(self):
        return (FrozenDict, (dict(self),))

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items(), key=repr)))


_EMPTY: Mapping[str, Any] = FrozenDict()


def _empty() -> Mapping[str, Any]:
    return _EMPTY


def split_name_tag(text: str) -> tuple[str, str | None]:
    """Split ``"resnet50.imagenet"`` into ``("resnet50", "imagenet")``; no tag gives ``None``."""
    name, dot, tag = text.strip().partition(".")
    return name.lower(), (tag.lower() if dot and tag else None)


def freeze(value: Any) -> Any:
    """Return a read-only copy of nested dicts/lists (dicts become FrozenDict, lists tuples)."""
    if isinstance(value, Mapping):
        return FrozenDict({k: freeze(v) if isinstance(v, Mapping | list | tuple) else v
                           for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze(v) if isinstance(v, Mapping | list | tuple) else v for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of :func:`freeze`: plain dicts and lists, for JSON and builder kwargs."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True, kw_only=True)
class InputSpec:
    """What one sample fed to the model looks like, and how to normalise it."""

    size: tuple[int, ...]                       # one sample's shape, batch excluded
    dtype: str = "float32"                      # "int64" for token ids
    mean: tuple[float, ...] | None = None       # per-channel normalisation for images
    std: tuple[float, ...] | None = None
    interpolation: str | None = None            # resize method for images (bilinear, bicubic)
    invert: bool | None = None                  # True: the model wants light ink on dark ground
    # True: crop to the ink and pad square before resizing (digit models); None: decided
    # by zoo.loading.preprocess.model_input from the tags
    center: bool | None = None


@dataclass(frozen=True, kw_only=True)
class PretrainedSpec:
    """One trained variant of a model: where its weights live and what it achieves."""

    tag: str
    # weight location
    source: str                     # URI: hf-hub: timm: torchvision: file: package: https:
    sha256: str | None = None                   # checked before loading when given
    # what changes in the architecture for these weights
    kwargs: Mapping[str, Any] = field(default_factory=_empty)  # builder kwargs the weights need
    labels: tuple[str, ...] | None = None       # class names, index order
    input: InputSpec | None = None              # overrides the model's input spec
    # provenance and results
    dataset: str | None = None
    metrics: Mapping[str, float] = field(default_factory=_empty)
    license: str | None = None                  # overrides the model's licence
    description: str | None = None
    default: bool = False                       # the recommended tag when several exist
    # size of the model these weights need, when their kwargs change it (else the model's)
    params: int | None = None
    gflops: float | None = None
    # what the trained model does, when it differs from the architecture's task
    task: str | None = None                     # e.g. a classifier head on an encoder
    demo: str | None = None


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One model of the catalog: how to build it and what is known about it."""

    name: str
    family: str
    task: str
    # how to build
    builder: str | Callable[..., Any]           # lazy "module:callable", or a callable
    kwargs: Mapping[str, Any] = field(default_factory=_empty)
    input: InputSpec | None = None
    # paper and licence
    description: str | None = None
    paper: str | None = None
    paper_url: str | None = None
    year: int | None = None
    license: str | None = None
    # size, precomputed so that listing never builds a model
    params: int | None = None
    gflops: float | None = None
    tags: tuple[str, ...] = ()
    # what fine-tuning and demos need
    finetune: Mapping[str, Any] = field(default_factory=_empty)  # head, lora_targets, ...
    demo: str | None = None                     # demo task; defaults to ``task``
    pretrained: Mapping[str, PretrainedSpec] = field(default_factory=_empty)
    # where it came from
    plugin: str | None = None                   # plugin that registered it
    origin: str | None = None                   # "file:line" or "module" that declared it

    @property
    def builder_path(self) -> str:
        """The builder as a ``module:callable`` string, for configs and display."""
        b = self.builder
        if isinstance(b, str):
            return b
        return f"{b.__module__}:{b.__qualname__}"

    @property
    def demo_task(self) -> str:
        return self.demo or self.task

    @property
    def default_tag(self) -> str | None:
        """The tag marked ``default``, else the only tag, else ``None``."""
        for tag, pre in self.pretrained.items():
            if pre.default:
                return tag
        return next(iter(self.pretrained)) if len(self.pretrained) == 1 else None

    def trained_tags(self) -> tuple[str, ...]:
        """The pretrained tags, in catalog order (cheap on cached specs: see LazySpec)."""
        return tuple(self.pretrained)

    def trained_tasks(self) -> frozenset[str]:
        """Tasks the trained models declare for themselves (cheap on cached specs)."""
        return frozenset(p.task for p in self.pretrained.values() if p.task)

    def task_for(self, tag: str | None) -> str:
        """The task of the architecture, or of a trained model whose tag declares its own."""
        if tag and self.pretrained[tag].task:
            return self.pretrained[tag].task
        return self.task

    def demo_task_for(self, tag: str | None) -> str:
        """The demo task of the architecture or of one of its trained models."""
        if tag:
            pre = self.pretrained[tag]
            if pre.demo or pre.task:
                return pre.demo or pre.task
        return self.demo_task

    def params_for(self, tag: str | None) -> int | None:
        """Parameters of the architecture, or of a trained model (its own figure when its
        kwargs change the size, else the architecture's)."""
        if tag and self.pretrained[tag].params is not None:
            return self.pretrained[tag].params
        return self.params

    def gflops_for(self, tag: str | None) -> float | None:
        """GFLOPs of one forward pass of the architecture or of a trained model (as
        :meth:`params_for`: the tag's figure, else the architecture's)."""
        if tag and self.pretrained[tag].gflops is not None:
            return self.pretrained[tag].gflops
        return self.gflops

    def input_for(self, tag: str | None) -> InputSpec | None:
        """Input spec for the architecture or one of its tags."""
        if tag and self.pretrained[tag].input is not None:
            return self.pretrained[tag].input
        return self.input

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field (the builder as a string)."""
        from dataclasses import asdict, fields

        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "builder":
                v = self.builder_path
            elif f.name == "pretrained":
                v = {t: _pretrained_dict(p) for t, p in v.items()}
            elif f.name == "input":
                v = asdict(v) if v else None
            out[f.name] = thaw(v)
        return out


def _pretrained_dict(p: PretrainedSpec) -> dict[str, Any]:
    from dataclasses import fields

    out = {}
    for f in fields(p):
        v = getattr(p, f.name)
        if f.name == "input" and v is not None:
            from dataclasses import asdict

            v = asdict(v)
        out[f.name] = thaw(v)
    return out


@dataclass(frozen=True, kw_only=True)
class FamilySpec:
    """An architecture family (cnn, rnn, ...) and the defaults its models share."""

    name: str
    description: str = ""
    example_input: str | Callable[..., Any] | None = None   # "module:fn"(spec, tag) -> args
    finetune: Mapping[str, Any] = field(default_factory=_empty)
    plugin: str | None = None


# Fields a listing needs (JSON values, in this order); a LazySpec holds these, its plugin
# and origin, and unpacks everything else on first use.
LISTING_FIELDS = ("name", "family", "task", "params", "gflops", "description", "_tags",
                  "_tasks")
_NO_TASKS: frozenset[str] = frozenset()


class LazySpec(ModelSpec):
    """A ModelSpec from a catalog file: listing fields now, everything else on first use.

    Building 10,000 full specs (frozen mappings, input and pretrained records) took longer
    than listing them; a listing reads five fields of each. Any other attribute unpacks the
    full record once: each such field is a non-data descriptor (dataclass defaults are
    class attributes, so ``__getattr__`` would never run), and once the record is in
    ``__dict__`` the instance's values win. The record (``_blob``: an entry's validated
    fields, or where their JSON is in the parse cache) becomes a ModelSpec through
    ``_unpack``,
    given by :mod:`zoo.registry.catalog`, which made it. Equal to, hashable like and
    picklable as its ModelSpec.
    """

    def _hydrate(self) -> None:
        d = self.__dict__
        blob, unpack = d.get("_blob"), d.get("_unpack")
        if blob is None or unpack is None:
            return
        for k, v in unpack(d).__dict__.items():
            d.setdefault(k, v)
        d.pop("_blob", None)     # another thread may have hydrated it meanwhile
        d.pop("_unpack", None)

    @classmethod
    def make(cls, row: list[Any], plugin: str | None, origin: str | None, blob: Any,
             unpack: Callable[[dict[str, Any]], ModelSpec]) -> LazySpec:
        """A record from its listing row (``LISTING_FIELDS``' values, tags and tasks as
        lists), plugin, origin, and the record ``unpack`` turns into the full ModelSpec."""
        # One dict literal per record: a 10,000-entry listing makes 10,000 of these. (A
        # row read from the cache has one more value, its record's offset: ignored here.)
        obj = object.__new__(cls)
        tasks = row[7]
        object.__setattr__(obj, "__dict__", {
            "name": row[0], "family": row[1], "task": row[2], "params": row[3],
            "gflops": row[4], "description": row[5], "_tags": tuple(row[6]),
            "_tasks": frozenset(tasks) if tasks else _NO_TASKS, "plugin": plugin,
            "origin": origin, "_blob": blob, "_unpack": unpack})
        return obj

    def full(self) -> ModelSpec:
        """The plain ModelSpec this stands for."""
        from dataclasses import fields

        return ModelSpec(**{f.name: getattr(self, f.name) for f in fields(ModelSpec)})

    def trained_tags(self) -> tuple[str, ...]:
        return self.__dict__["_tags"] if "_tags" in self.__dict__ else tuple(self.pretrained)

    def trained_tasks(self) -> frozenset[str]:
        d = self.__dict__
        return d["_tasks"] if "_tasks" in d else ModelSpec.trained_tasks(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelSpec):
            return NotImplemented
        a = self.full()
        return a == (other.full() if isinstance(other, LazySpec) else other)

    def __hash__(self) -> int:
        return hash(self.full())

    def __repr__(self) -> str:
        return repr(self.full())

    def __reduce__(self):
        return (_plain_spec, (self.full().__dict__,))


class _Hydrating:
    """A LazySpec field that unpacks the full record on first read."""

    def __init__(self, name: str):
        self.name = name

    def __get__(self, obj: LazySpec | None, owner: type) -> Any:
        if obj is None:
            return getattr(ModelSpec, self.name, self)
        obj._hydrate()
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None


for _f in ModelSpec.__dataclass_fields__:
    if _f not in LISTING_FIELDS and _f not in ("plugin", "origin"):
        setattr(LazySpec, _f, _Hydrating(_f))


def _plain_spec(fields: dict[str, Any]) -> ModelSpec:
    obj = object.__new__(ModelSpec)
    obj.__dict__.update(fields)
    return obj
