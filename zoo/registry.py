"""The Registry: every model and family that plugins and catalogs declared, and queries on it.

Plugins fill it through hooks (see :mod:`zoo.hookspecs`); each plugin's additions are
staged and committed together, so a plugin that fails half-way adds nothing. A name that
is already taken is refused with a message naming both plugins; nothing is overwritten.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from .catalog import load_catalog
from .errors import CatalogError, UnknownModelError, UsageError
from .spec import NAME_RE, FamilySpec, ModelSpec, freeze, split_name_tag

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

    # -- used by plugins ---------------------------------------------------------------

    def add_family(self, name: str, *, description: str = "",
                   example_input: str | Callable[..., Any] | None = None,
                   finetune: Mapping[str, Any] | None = None) -> None:
        """Declare a family. ``example_input`` is a lazy ``"module:fn"`` returning the
        positional args of one forward pass, called as ``fn(spec, tag)``."""
        owner = self._plugin or "<code>"
        if name in self._families:
            prev = self._families[name].plugin
            if prev != owner:
                self._problem(f"family '{name}' is already declared by plugin '{prev}'; "
                              "kept theirs")
            return
        self._families[name] = FamilySpec(name=name, description=description,
                                          example_input=example_input,
                                          finetune=freeze(finetune or {}), plugin=owner)

    def add_model(self, spec: ModelSpec | None = None, /, **fields: Any) -> None:
        """Register one model, given as a ModelSpec or as keyword fields.

        Keyword fields are those of a catalog table (``name``, ``family``, ``task``,
        ``builder`` — a lazy ``"module:callable"`` or a callable —, ``kwargs``, ``input``,
        ``pretrained`` ...) and are validated the same way. A model that is invalid or
        whose name is taken is refused and reported; the plugin's other models stay.
        """
        from .catalog import spec_from_fields

        owner = self._plugin or "<code>"
        try:
            if spec is None:
                name = fields.pop("name", None)
                origin = fields.pop("origin", None)
                spec = spec_from_fields(name, fields, plugin=owner, origin=origin)
            elif not NAME_RE.match(spec.name):
                raise CatalogError("invalid model name; use lowercase letters, digits, '_' and "
                                   "'-' (optionally NAMESPACE/NAME)", model=spec.name, path=owner)
        except CatalogError as e:
            if owner.startswith("catalog:"):
                raise
            self._problem(str(e))
            return
        if spec.plugin != owner:
            spec = replace(spec, plugin=owner)
        self._put(spec)

    def add_namespace(self, prefix: str, *, resolve: str | Callable[[str], ModelSpec | None],
                      names: str | Callable[[], list[str]], description: str = "") -> None:
        """Make every model of a library reachable as ``PREFIX/NAME`` without listing it.

        Args:
            prefix: the namespace, e.g. ``"timm"``.
            resolve: lazy ``"module:fn"``; ``fn(name)`` returns the ModelSpec of
                ``PREFIX/name`` or ``None`` if the library has no such model.
            names: lazy ``"module:fn"``; ``fn()`` returns every model name of the library
                (called only when a user asks to list the namespace).
        """
        owner = self._plugin or "<code>"
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
        """Start staging one plugin's additions."""
        self._plugin, self._staged = plugin, {}

    def commit(self) -> list[str]:
        """Keep what the current plugin staged; return the model names it added."""
        staged = self._staged or {}
        self._models.update(staged)
        self._plugin, self._staged = None, None
        return list(staged)

    def rollback(self) -> None:
        """Drop what the current plugin staged (it failed half-way)."""
        self._plugin, self._staged = None, None

    def _problem(self, message: str) -> None:
        self.problems.setdefault(self._plugin or "<code>", []).append(message)

    def _refuse(self, spec: ModelSpec, message: str) -> None:
        """A user catalog's mistake stops the command; a plugin's is reported and skipped."""
        if (self._plugin or "").startswith("catalog:"):
            raise CatalogError(message, path=spec.origin, model=spec.name)
        self._problem(message)

    def _put(self, spec: ModelSpec) -> None:
        staged = self._staged if self._staged is not None else self._models
        name = spec.name
        prev = self._models.get(name) or staged.get(name)
        if prev is not None:
            where = f" ({prev.origin})" if prev.origin and prev.plugin != spec.plugin else ""
            ns = (spec.plugin or "plugin").split(":")[-1].split("/")[-1].replace(".", "-")
            self._refuse(spec, f"model '{name}' from plugin '{spec.plugin}' clashes with "
                               f"'{name}' from plugin '{prev.plugin}'{where}; kept the first. "
                               f"Rename it or namespace it as '{ns}/{name.split('/')[-1]}'")
            return
        if spec.family not in self._families:
            close = difflib.get_close_matches(spec.family, list(self._families), n=1,
                                              cutoff=0.75)
            if close:
                self._refuse(spec, f"model '{name}' has unknown family '{spec.family}'; did "
                                   f"you mean '{close[0]}'? Families: "
                                   + ", ".join(sorted(self._families)))
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
        raise UnknownModelError(name, self.suggest(name))

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
            close = difflib.get_close_matches(tag, tags, n=3, cutoff=0.5)
            hint = ("Trained tags: " + ", ".join(f"{name}.{t}" for t in tags) + "."
                    if tags else f"'{name}' has no trained weights yet; use '{name}' alone.")
            raise UnknownModelError(f"{name}.{tag}", [f"{name}.{t}" for t in close],
                                    kind="pretrained tag", hint=hint)
        return spec, tag

    def suggest(self, text: str, n: int = 5) -> list[str]:
        """Close names for a mistyped ``NAME[.TAG]``: near spellings, then substrings."""
        text = text.lower()
        names = list(self._models)
        pool = names
        if "." in text:
            pool = [f"{s.name}.{t}" for s in self._models.values() for t in s.pretrained]
        close = difflib.get_close_matches(text, pool, n=n, cutoff=0.6)
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
            from .build import import_object

            fn = self._fns[which] = import_object(fn, what=f"namespace '{self.prefix}/'")
        return fn(*args)


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


_DEFAULT: Registry | None = None
_DEFAULT_KEY: tuple[Any, ...] | None = None


def default_registry(catalogs: Iterable[str | os.PathLike[str]] | None = None) -> Registry:
    """The process-wide registry: built-in and entry-point plugins plus user catalogs.

    ``catalogs`` adds catalog files to those named by ``ZOO_CATALOG``; ``None`` keeps the
    ones the registry was last built with. Rebuilt only when that set or the plugin
    variables change.
    """
    global _DEFAULT, _DEFAULT_KEY
    from . import plugin_loader as plugins

    if catalogs is None:
        catalogs = _DEFAULT_KEY[2] if _DEFAULT is not None and _DEFAULT_KEY else ()
    catalogs = tuple(catalogs)
    paths = user_catalogs(catalogs)
    key = (tuple(paths), plugins.env_key(), catalogs)
    if _DEFAULT is None or key != _DEFAULT_KEY:
        _DEFAULT = plugins.build_registry(paths)
        _DEFAULT_KEY = key
    return _DEFAULT


def reset_default() -> None:
    """Forget the process-wide registry (tests, and after installing a plugin)."""
    global _DEFAULT, _DEFAULT_KEY
    _DEFAULT, _DEFAULT_KEY = None, None
    from . import plugin_loader as plugins

    plugins.reset()
