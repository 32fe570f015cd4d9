"""The Registry: every model and family that plugins and catalogs declared, and queries on it.

Plugins fill it through hooks (see :mod:`zoo.hookspecs`); each plugin's additions
(models, families, namespaces) are staged and committed together, so a plugin that fails
half-way adds nothing. Everything added is checked here: an invalid model, family or
namespace, or a name that is already taken, is refused with one line naming the plugin
(a user catalog's mistake raises CatalogError instead); nothing is overwritten.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from zoo.errors import CatalogError, UnknownModelError, UsageError
from zoo.registry.catalog import load_catalog
from zoo.registry.spec import NAME_RE, FamilySpec, ModelSpec, freeze, split_name_tag

CATALOG_ENV = "ZOO_CATALOG"


class Registry:
    """Models and families by name. Filled by plugins, read by every command."""

    def __init__(self) -> None:
        self._models: dict[str, ModelSpec] = {}
        self._families: dict[str, FamilySpec] = {}
        self._plugin: str | None = None          # plugin whose hooks are running
        self._staged: dict[str, ModelSpec] | None = None
        self.problems: dict[str, list[str]] = {}  # plugin -> messages
        self._namespaces: dict[str, Namespace] = {}
        # Families and namespaces as they were before the current plugin began.
        self._before: tuple[dict[str, FamilySpec], dict[str, Namespace]] | None = None
        #: Plugins that were not loaded (zoo.registry.disabled.DisabledPlugin): an unknown
        #: name one of them declares is told so, with how to enable it.
        self.disabled: list[Any] = []

    # -- used by plugins ---------------------------------------------------------------

    def add_family(self, name: str, *, description: str = "",
                   example_input: str | Callable[..., Any] | None = None,
                   finetune: Mapping[str, Any] | None = None) -> None:
        """Declare a family. ``example_input`` is a lazy ``"module:fn"`` returning the
        positional args of one forward pass, called as ``fn(spec, tag)``.

        A name that is not a plain lowercase word (``cnn``, ``vision-x``), or a field of the
        wrong type, is refused: reported for a plugin, CatalogError for a user catalog.
        """
        owner = self._plugin or "<code>"
        finetune = freeze(finetune or {})
        bad = [what for what, ok in (
            ("name", _plain_name(name)),
            ("description", isinstance(description, str)),
            ("example_input", example_input is None or _lazy(example_input)),
            ("finetune", isinstance(finetune, Mapping))) if not ok]
        if bad:
            # A family named 5 would break every later typo check and every sorted listing.
            self._refuse(f"family {str(name)[:40]!r} has invalid {', '.join(bad)}; refused")
            return
        if name in self._families:
            prev = self._families[name].plugin
            if prev != owner:
                self._problem(f"family '{name}' is already declared by plugin '{prev}'; "
                              "kept theirs")
            return
        self._families[name] = FamilySpec(name=name, description=description,
                                          example_input=example_input,
                                          finetune=finetune, plugin=owner)

    def add_model(self, spec: ModelSpec | Mapping[str, Any] | None = None, /,
                  **fields: Any) -> None:
        """Register one model, given as a ModelSpec, a dict of fields or keyword fields.

        Fields are those of a catalog table (``name``, ``family``, ``task``, ``builder`` — a
        lazy ``"module:callable"`` or a callable —, ``kwargs``, ``input``, ``pretrained``
        ...). Every form is validated the way a catalog table is (a ModelSpec is a plain
        dataclass: anything fits in it), and the model belongs to the plugin adding it,
        whatever its ``plugin`` field says. A model that is invalid or whose name is taken
        is refused and reported (a user catalog's raises); the plugin's other models stay.
        """
        from zoo.registry.catalog import spec_from_fields

        owner = self._plugin or "<code>"
        if isinstance(spec, ModelSpec):
            fields = _spec_fields(spec)
        elif isinstance(spec, Mapping):
            bad = [k for k in spec if not isinstance(k, str)]
            if bad:
                self._refuse(f"a model given as a dict has non-text keys {bad[:3]!r}; refused")
                return
            fields = dict(spec)
        elif spec is not None:
            self._refuse(f"add_model takes a ModelSpec, a dict or keyword fields, not "
                         f"a value of type {type(spec).__name__}; refused")
            return
        name = fields.pop("name", None)
        origin = fields.pop("origin", None)
        try:
            built = spec_from_fields(name, fields, plugin=owner, origin=origin)
        except CatalogError as e:
            if owner.startswith("catalog:"):
                raise
            self._problem(str(e))
            return
        self._put(built)

    def add_namespace(self, prefix: str, *, resolve: str | Callable[[str], ModelSpec | None],
                      names: str | Callable[[], list[str]], description: str = "") -> None:
        """Make every model of a library reachable as ``PREFIX/NAME`` without listing it.

        Args:
            prefix: the namespace, e.g. ``"timm"``.
            resolve: lazy ``"module:fn"``; ``fn(name)`` returns the ModelSpec of
                ``PREFIX/name`` or ``None`` if the library has no such model.
            names: lazy ``"module:fn"``; ``fn()`` returns every model name of the library
                (called only when a user asks to list the namespace).
            description: one line for listings.

        A prefix that is not a plain lowercase word, or a field of the wrong type, is
        refused: reported for a plugin, CatalogError for a user catalog.
        """
        owner = self._plugin or "<code>"
        bad = [what for what, ok in (
            ("prefix", _plain_name(prefix)),
            ("resolve", _lazy(resolve)),
            ("names", _lazy(names)),
            ("description", isinstance(description, str))) if not ok]
        if bad:
            self._refuse(f"namespace {str(prefix)[:40]!r} has invalid {', '.join(bad)}; "
                         "refused")
            return
        if prefix in self._namespaces:
            self._problem(f"namespace '{prefix}/' is already provided by plugin "
                          f"'{self._namespaces[prefix].plugin}'; kept theirs")
            return
        self._namespaces[prefix] = Namespace(prefix, resolve, names, description, owner)

    @property
    def namespaces(self) -> Mapping[str, Namespace]:
        return self._namespaces

    def namespace_specs(self, prefix: str, patterns: Iterable[str] = ()) -> list[ModelSpec]:
        """Models of a pass-through namespace (imports its library), optionally only those
        whose ``PREFIX/NAME`` matches one of the shell patterns."""
        ns = self._namespaces[prefix]
        pats = [p.lower().split(".")[0] for p in patterns]
        out = []
        for n in ns.call("names"):
            if pats and not any(fnmatch.fnmatchcase(f"{prefix}/{n}".lower(), p) for p in pats):
                continue
            s = self._models.get(f"{prefix}/{n}") or ns.call("resolve", n)
            if s is not None:
                out.append(s)
        return out

    def add_catalog(self, path: str | os.PathLike[str], *, family: str | None = None) -> None:
        """Register every model of a TOML catalog (optionally one family's only).

        Raises:
            CatalogError: the file is missing or malformed (the plugin adds nothing).
        """
        for spec in load_catalog(path, plugin=self._plugin or "<code>", family=family):
            self._put(spec)

    # -- used by the plugin loader -----------------------------------------------------

    def begin(self, plugin: str) -> None:
        """Start staging one plugin's additions (a plugin, or ``"catalog:PATH"``).

        Its models are held apart until :meth:`commit`; its families and namespaces are
        usable at once (its own models need them), and :meth:`rollback` takes them out.
        """
        self._plugin, self._staged = plugin, {}
        self._before = (dict(self._families), dict(self._namespaces))

    def commit(self) -> list[str]:
        """Keep what the current plugin staged; return the model names it added."""
        staged = self._staged or {}
        self._models.update(staged)
        self._plugin, self._staged, self._before = None, None, None
        return list(staged)

    def rollback(self) -> None:
        """Drop everything the current plugin added since :meth:`begin` (it failed
        half-way): its models, families and namespaces."""
        if self._before is not None:
            families, namespaces = self._before
            # In place: callers may hold the mappings ``families`` and ``namespaces`` gave.
            self._families.clear()
            self._families.update(families)
            self._namespaces.clear()
            self._namespaces.update(namespaces)
        self._plugin, self._staged, self._before = None, None, None

    def remove_plugin(self, plugin: str) -> None:
        """Take out what ``plugin`` added and committed earlier: its models, its namespaces,
        and the families it declared that no remaining model uses.

        For a plugin that fails in a later hook (``zoo_register_models``) after an earlier
        one (``zoo_register_families``) was committed: it then leaves nothing behind.
        """
        for name in [n for n, s in self._models.items() if s.plugin == plugin]:
            del self._models[name]
        for prefix in [p for p, ns in self._namespaces.items() if ns.plugin == plugin]:
            del self._namespaces[prefix]
        used = {s.family for s in self._models.values()}
        for fam in [f for f, spec in self._families.items()
                    if spec.plugin == plugin and f not in used]:
            del self._families[fam]

    def _problem(self, message: str) -> None:
        self.problems.setdefault(self._plugin or "<code>", []).append(message)

    def _refuse(self, message: str, spec: ModelSpec | None = None) -> None:
        """A user catalog's mistake stops the command; a plugin's is reported and skipped."""
        plugin = self._plugin or ""
        if plugin.startswith("catalog:"):
            raise CatalogError(message, path=spec.origin if spec else plugin[len("catalog:"):],
                               model=spec.name if spec else None)
        self._problem(message)

    def _put(self, spec: ModelSpec) -> None:
        staged = self._staged if self._staged is not None else self._models
        name = spec.name
        prev = self._models.get(name) or staged.get(name)
        if prev is not None:
            where = f" ({prev.origin})" if prev.origin and prev.plugin != spec.plugin else ""
            ns = (spec.plugin or "plugin").split(":")[-1].split("/")[-1].replace(".", "-")
            self._refuse(f"model '{name}' from plugin '{spec.plugin}' clashes with "
                               f"'{name}' from plugin '{prev.plugin}'{where}; kept the first. "
                               f"Rename it or namespace it as '{ns}/{name.split('/')[-1]}'",
                         spec)
            return
        if spec.family not in self._families:
            import difflib  # only for a message: not paid by every listing

            close = difflib.get_close_matches(spec.family, list(self._families), n=1,
                                              cutoff=0.75)
            if close:
                self._refuse(f"model '{name}' has unknown family '{spec.family}'; did "
                             f"you mean '{close[0]}'? Families: "
                             + ", ".join(sorted(self._families)), spec)
                return
            if not _plain_name(spec.family):
                self._refuse(f"model '{name}' has invalid family name '{spec.family}'; use "
                             "lowercase letters, digits, '_' and '-'", spec)
                return
            # A plugin or catalog may bring a family of its own without declaring it first.
            self.add_family(spec.family, description=f"declared by '{spec.plugin}'")
        staged[name] = spec

    # -- queries -----------------------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return name in self._models

    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self) -> Iterator[ModelSpec]:
        return iter(self._models.values())

    @property
    def families(self) -> Mapping[str, FamilySpec]:
        return self._families

    def spec(self, name: str) -> ModelSpec:
        """The spec of an architecture name (no tag). Raises UnknownModelError."""
        try:
            return self._models[name]
        except KeyError:
            pass
        prefix, slash, rest = name.partition("/")
        ns = self._namespaces.get(prefix) if slash else None
        if ns is not None and rest:
            found = ns.call("resolve", rest)
            if found is not None:
                self._models[name] = found
                return found
            import difflib as _d

            close = _d.get_close_matches(rest, ns.call("names"), n=5, cutoff=0.6)
            raise UnknownModelError(name, [f"{prefix}/{c}" for c in close],
                                    hint=f"Run 'zoo list \'{prefix}/*\'' to see them all.")
        raise self._unknown(name)

    def _unknown(self, name: str) -> UnknownModelError:
        """The error for a name no model has: close names, or the disabled plugin that
        declares it, or (for a slashed name) that no directory has that name either."""
        if self.disabled:
            from zoo.registry.disabled import hint, provider

            found = provider(name, self.disabled)
            if found is not None:
                return UnknownModelError(name, hint=hint(name, found) + ".")
        close = self.suggest(name)
        tail = "Run 'zoo list' to see every model."
        if "/" in name:
            tail = "No directory by that name either. " + tail
        if not close and self.disabled:
            tail += " Disabled plugins: " + ", ".join(p.name for p in self.disabled) + "."
        return UnknownModelError(name, close, hint=tail)

    def resolve(self, text: str) -> tuple[ModelSpec, str | None]:
        """Parse ``NAME[.TAG]`` and return ``(spec, tag)``.

        Raises:
            UnknownModelError: unknown name or tag, with close names to suggest.
        """
        name, tag = split_name_tag(text)
        if not name:
            raise UsageError("empty model name; give NAME or NAME.TAG (see 'zoo list')")
        spec = self.spec(name)
        if tag is not None and tag not in spec.pretrained:
            tags = list(spec.pretrained)
            import difflib

            close = difflib.get_close_matches(tag, tags, n=3, cutoff=0.5)
            hint = ("Trained tags: " + ", ".join(f"{name}.{t}" for t in tags) + "."
                    if tags else f"'{name}' has no trained weights yet; use '{name}' alone.")
            raise UnknownModelError(f"{name}.{tag}", [f"{name}.{t}" for t in close],
                                    kind="pretrained tag", hint=hint)
        return spec, tag

    def suggest(self, text: str, n: int = 5) -> list[str]:
        """Close names for a mistyped ``NAME[.TAG]``: near spellings, then substrings.

        Namespaced names (``vae/beta_vae``, a plugin's) are matched whole and by the part
        after the slash, so ``beta_vae`` and ``vae/beta_vaee`` both find ``vae/beta_vae``.
        """
        text = text.lower()
        names = list(self._models)
        pool = names
        if "." in text:
            pool = [f"{s.name}.{t}" for s in self._models.values() for t in s.pretrained]
        import difflib

        close = difflib.get_close_matches(text, pool, n=n, cutoff=0.6)
        # The part after a slash, on either side: a bare name for a namespaced model, or
        # a wrong namespace in front of a right name.
        short = {p.partition("/")[2]: p for p in pool if "/" in p}
        if "/" in text:
            short.update({p: p for p in pool if "/" not in p})
        probe = text.partition("/")[2] if "/" in text else text
        for c in difflib.get_close_matches(probe, list(short), n=n, cutoff=0.75):
            if short[c] not in close and len(close) < n:
                close.append(short[c])
        base = split_name_tag(text)[0]
        if len(close) < n and len(base) >= 3:
            close += sorted(m for m in names if base in m and m not in close)[: n - len(close)]
        return close

    def list(self, patterns: Iterable[str] = (), *, family: str | None = None,
             task: str | None = None, pretrained: bool = False,
             namespaces: bool = False) -> list[ModelSpec]:
        """Models matching any of the shell-style patterns, sorted by name.

        A pattern with a dot (``resnet*.imagenet``) matches trained models ``NAME.TAG``.
        Pass-through namespaces (``timm/...``) are listed when ``namespaces`` is true or a
        pattern starts with their prefix; listing them imports their library.
        """
        pats = [p.lower() for p in patterns]
        pool = dict(self._models)
        for prefix in self._namespaces:
            if namespaces or any(p.startswith(prefix + "/") for p in pats):
                # With --namespaces every pattern may concern the namespace; without it,
                # only those that name it do.
                mine = pats if namespaces else [p for p in pats if p.startswith(prefix + "/")]
                for s in self.namespace_specs(prefix, mine):
                    pool.setdefault(s.name, s)
        out = []
        for spec in pool.values():
            if family and spec.family != family:
                continue
            if task and spec.task != task and task not in spec.trained_tasks():
                continue
            if pretrained and not spec.trained_tags():
                continue
            if pats and not any(_match(spec, p) for p in pats):
                continue
            out.append(spec)
        out.sort(key=lambda s: s.name)
        return out

    def trained(self, patterns: Iterable[str] = (), *, family: str | None = None,
                task: str | None = None,
                namespaces: bool = False) -> list[tuple[ModelSpec, str]]:
        """Trained models as ``(spec, tag)`` pairs, sorted by name, tags in catalog order.

        A dotted pattern (``*.digits``) must match ``NAME.TAG``; a plain one matches
        every tag of the models it names. ``task`` is the trained model's own task.
        """
        pats = [p.lower() for p in patterns]
        dotted = [p for p in pats if "." in p]
        plain = [p for p in pats if "." not in p]
        out = []
        for spec in self.list(pats, family=family, task=task, pretrained=True,
                              namespaces=namespaces):
            for tag in spec.pretrained:
                if task and spec.task_for(tag) != task:
                    continue
                if dotted and not (
                        any(fnmatch.fnmatchcase(f"{spec.name}.{tag}", p) for p in dotted)
                        or any(fnmatch.fnmatchcase(spec.name, p) for p in plain)):
                    continue
                out.append((spec, tag))
        return out


class Namespace:
    """A pass-through namespace: ``PREFIX/NAME`` resolves lazily through its library."""

    def __init__(self, prefix: str, resolve: Any, names: Any, description: str, plugin: str):
        self.prefix, self.description, self.plugin = prefix, description, plugin
        self._fns = {"resolve": resolve, "names": names}

    def call(self, which: str, *args: Any) -> Any:
        fn = self._fns[which]
        if isinstance(fn, str):
            from zoo.registry.lazy import import_object

            fn = self._fns[which] = import_object(fn, what=f"namespace '{self.prefix}/'")
        return fn(*args)


def _plain_name(value: Any) -> bool:
    """A family or namespace name: lowercase letters, digits, '_' and '-' (no '/')."""
    return isinstance(value, str) and "/" not in value and NAME_RE.match(value) is not None


def _lazy(value: Any) -> bool:
    """A lazy ``"module:fn"`` path or a callable."""
    return isinstance(value, str) or callable(value)


def _spec_fields(spec: ModelSpec) -> dict[str, Any]:
    """A ModelSpec as keyword fields of :meth:`Registry.add_model` (unset ones left out),
    so that it is validated like a catalog table."""
    out: dict[str, Any] = {"name": spec.name, "origin": spec.origin}
    for f in dataclass_fields(spec):
        if f.name in ("name", "plugin", "origin"):
            continue
        value = getattr(spec, f.name)
        if value is None or (isinstance(value, Mapping | tuple) and not value):
            continue
        out[f.name] = value
    return out


def _match(spec: ModelSpec, pattern: str) -> bool:
    if "." in pattern:
        return any(fnmatch.fnmatchcase(f"{spec.name}.{t}", pattern)
                   for t in spec.trained_tags())
    return fnmatch.fnmatchcase(spec.name, pattern)


def user_catalogs(extra: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """Catalog files from the ``ZOO_CATALOG`` variable (``os.pathsep``-separated) and options."""
    paths = [p for p in os.environ.get(CATALOG_ENV, "").split(os.pathsep) if p.strip()]
    return [Path(p).expanduser() for p in [*paths, *extra]]


def add_user_catalogs(registry: Registry, paths: Iterable[Path]) -> None:
    """Register users' own catalogs; they may not shadow any plugin's model."""
    for path in paths:
        registry.begin(f"catalog:{path}")
        try:
            registry.add_catalog(path)
        except BaseException:
            registry.rollback()
            raise
        registry.commit()



