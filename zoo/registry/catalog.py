"""Parse and validate catalog files (``registry.toml`` and users' own) into ModelSpecs.

Parsing uses :mod:`tomllib` only, never torch. Every problem becomes one
:class:`~zoo.errors.CatalogError` naming the file, the line, the model and the fix.
Validated catalogs are cached on disk (:mod:`zoo.registry.cache`), so a large user
catalog costs its parse once. Only a regular file of at most ``MAX_CATALOG_BYTES`` is read
(a FIFO or ``/dev/zero`` named as a catalog is refused, not waited on or read forever).

A catalog's models come back as :class:`~zoo.registry.spec.LazySpec` records: the fields a
listing shows, and the validated entry that becomes the full ModelSpec on first use of
any other field. A 10,000-entry catalog is listed without building 10,000 ModelSpecs,
whether it was just parsed or read back from the cache.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.atomic import read_regular, unreadable
from zoo.errors import CatalogError
from zoo.registry.cache import read_catalog, store_catalog
from zoo.registry.spec import (
    NAME_RE,
    TAG_RE,
    InputSpec,
    LazySpec,
    ModelSpec,
    PretrainedSpec,
    freeze,
    thaw,
)

#: The largest catalog file zoo reads (a 100,000-entry catalog is ~40 MB).
MAX_CATALOG_BYTES = 256 * 2**20

MODEL_KEYS = {
    "family": str, "task": str, "builder": str, "kwargs": dict, "input": dict,
    "description": str, "paper": str, "paper_url": str, "year": int, "license": str,
    "params": int, "gflops": (int, float), "tags": list, "finetune": dict, "demo": str,
    "pretrained": dict,
}
REQUIRED_MODEL_KEYS = ("family", "task", "builder")
PRETRAINED_KEYS = {
    "source": str, "sha256": str, "kwargs": dict, "labels": list, "input": dict,
    "dataset": str, "metrics": dict, "license": str, "description": str, "default": bool,
    "task": str, "demo": str, "params": int, "gflops": (int, float),
}
INPUT_KEYS = {"size": list, "dtype": str, "mean": list, "std": list, "interpolation": str,
              "invert": bool}
FINETUNE_KEYS = {"head", "lora_targets", "layer_groups", "backbone", "no_decay",
                 "target_parameters", "notes"}
DTYPES = {"float32", "float16", "bfloat16", "int64", "int32"}

SCHEMES = ("hf-hub", "timm", "torchvision", "file", "package", "https", "http")
# Patterns, compiled by re (and cached there) on first use: a listing served by the cache
# never needs them, and compiling them all took ~1 ms of every command.
_SOURCE_FORMS = {
    "hf-hub": (r"^[\w.\-]+/[\w.\-]+(@[^/\s]+)?(/\S+)?$",
               "hf-hub:ORG/REPO[@REV][/FILE]"),
    "timm": (r"^[\w\-]+(\.[\w\-]+)?$", "timm:MODEL_NAME[.TAG]"),
    "torchvision": (r"^[A-Za-z_]\w*\.[A-Za-z_]\w*$", "torchvision:WeightsEnum.MEMBER"),
    "file": (r"^\S.*$", "file:PATH"),
    "package": (r"^[A-Za-z_][\w.]*/\S.*$", "package:IMPORT_NAME/PATH/IN/PACKAGE"),
    "https": (r"^//[^/\s]+/\S*$", "https://HOST/PATH (with sha256)"),
    "http": (r"^//(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/\S*$",
             "http://127.0.0.1:PORT/PATH (plain http only on loopback; use https)"),
}
_SHA256_RE = r"^[0-9a-f]{64}$"
_BUILDER_RE = r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$"

#: The catalog of built-in models, shared by the built-in family plugins.
BUILTIN_CATALOG = Path(__file__).parent.parent / "registry.toml"

# Work already done in this process: the built-in plugins share one file.
_RAW_MEMO: dict[tuple[Any, ...], list[tuple[str, dict[str, Any]]]] = {}
_MEMO: dict[tuple[Any, ...], list[ModelSpec]] = {}


def check_source(source: str, *, sha256: str | None = None) -> str | None:
    """Return what is wrong with a pretrained source URI, or ``None`` if it is well formed.

    Schemes zoo does not know are accepted (a plugin may claim them) unless they look
    like a typo of a known one.
    """
    scheme, colon, rest = source.partition(":")
    if not colon or not scheme or not rest:
        return (f"source '{source}' has no scheme; write SCHEME:LOCATION with SCHEME one of "
                + ", ".join(SCHEMES))
    form = _SOURCE_FORMS.get(scheme)
    if form is None:
        import difflib  # only for a message (~1.5 ms to import)

        close = difflib.get_close_matches(scheme, SCHEMES, n=1, cutoff=0.7)
        if close:
            return f"unknown source scheme '{scheme}:'; did you mean '{close[0]}:'?"
        if not re.match(r"^[a-z][a-z0-9+.\-]*$", scheme):
            return f"source scheme '{scheme}' is not a valid URI scheme"
        return None
    if not re.match(form[0], rest):
        return f"source '{source}' is malformed; expected {form[1]}"
    if scheme in ("https", "http") and not sha256:
        return f"source '{source}' needs a sha256 so the download can be verified"
    return None


class _Lines:
    """Find the line of a table or key in the TOML text, only when an error needs it."""

    def __init__(self, text: str):
        self.text = text

    @functools.cached_property
    def lines(self) -> list[str]:
        return self.text.splitlines()     # ~20 ms for a 10,000-entry catalog: errors only

    def table(self, *parts: str) -> int | None:
        dotted = r"\.".join(rf"(\"{re.escape(p)}\"|{re.escape(p)})" for p in parts)
        pat = re.compile(rf"^\s*\[\s*{dotted}\s*\]")
        for i, line in enumerate(self.lines):
            if pat.match(line):
                return i + 1
        return None

    def key(self, key: str, *parts: str) -> int | None:
        sub = self.table(*parts, key)   # the "key" may name a sub-table ([a.b.key])
        if sub is not None:
            return sub
        start = self.table(*parts)
        pat = re.compile(rf"^\s*(\"{re.escape(key)}\"|{re.escape(key)})\s*=")
        for i in range(start or 0, len(self.lines)):
            if start is not None and i >= start and self.lines[i].lstrip().startswith("["):
                break
            if pat.match(self.lines[i]):
                return i + 1
        return start


def load_catalog(path: str | os.PathLike[str], *, plugin: str | None = None,
                 family: str | None = None, cache: bool = True) -> list[ModelSpec]:
    """Read a catalog file into validated ModelSpecs.

    Args:
        path: the TOML file.
        plugin: recorded on each spec as the plugin that registered it.
        family: keep only models of this family (built-in plugins share one file).
        cache: reuse the on-disk cache of this file's parse when it is still fresh.

    Raises:
        CatalogError: the file is missing, is not TOML, or an entry is invalid.
    """
    p = Path(path)
    try:
        st = p.stat()
    except OSError as e:
        raise CatalogError(f"cannot read catalog ({e.strerror}); check the path", path=str(p)) \
            from None
    problem = unreadable(st, MAX_CATALOG_BYTES)
    if problem:
        raise CatalogError(f"cannot read catalog: {problem}; name a TOML file of at most "
                           f"{MAX_CATALOG_BYTES // 2**20} MiB", path=str(p))
    # ctime and inode too: an edit that keeps the size and puts the mtime back is an edit.
    memo_key = (str(p), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, plugin, family)
    specs = _MEMO.get(memo_key)
    if specs is None:
        with _no_gc():
            specs = _load(p, st, memo_key, plugin=plugin, family=family, cache=cache)
    return list(specs)


def _load(p: Path, st: os.stat_result, memo_key: tuple[Any, ...], *, plugin: str | None,
          family: str | None, cache: bool) -> list[ModelSpec]:
    origin = str(p)
    cached = read_catalog(p, st, plugin, family) if cache else None
    specs = None
    if cached is not None:
        rows, records = cached
        unpack = functools.partial(_unpack_cached, records)
        try:
            specs = [LazySpec.make(row, plugin, origin, row[8], unpack) for row in rows]
        except (ValueError, TypeError, IndexError):
            specs = None           # rows of another shape: parse again
    if specs is None:
        raw = _RAW_MEMO.get(memo_key[:5])
        if raw is None:
            raw = _RAW_MEMO[memo_key[:5]] = _parse(p)
        chosen = [(name, f) for name, f in raw if family is None or f["family"] == family]
        rows = [_listing(name, f) for name, f in chosen]
        specs = [LazySpec.make(row, plugin, origin, f, _unpack)
                 for row, (_, f) in zip(rows, chosen, strict=True)]
        if cache:
            store_catalog(p, st, plugin, family, rows, [f for _, f in chosen])
    _MEMO[memo_key] = specs
    return specs


def _listing(name: str, f: dict[str, Any]) -> list[Any]:
    """An entry's listing fields (:data:`zoo.registry.spec.LISTING_FIELDS`), as JSON values."""
    pre = f["pretrained"]
    return [name, f["family"], f["task"], f.get("params"),
            float(f["gflops"]) if "gflops" in f else None, f.get("description"),
            list(pre), sorted({p["task"] for p in pre.values() if p.get("task")})]


def _unpack(d: dict[str, Any]) -> ModelSpec:
    """The full ModelSpec of a freshly parsed LazySpec's ``__dict__`` (its record: the
    entry's validated fields)."""
    return _to_spec(d["name"], d["_blob"], d["plugin"], origin=d["origin"])


def _unpack_cached(records: Any, d: dict[str, Any]) -> ModelSpec:
    """The same for a LazySpec read from the cache (its record: an offset in ``records``)."""
    return _to_spec(d["name"], records.at(d["_blob"]), d["plugin"], origin=d["origin"])


@contextlib.contextmanager
def _no_gc():
    """Pause the cyclic GC: building thousands of small records otherwise triggers it
    again and again for nothing (halves the load time of a 10,000-entry catalog)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _parse(p: Path) -> list[tuple[str, dict[str, Any]]]:
    """Parse and validate the file; return ``[(name, normalised fields), ...]``."""
    import tomllib  # not needed when the cache answers (~4 ms)

    try:
        # A regular file of bounded size only, checked on the open file (it may have been
        # swapped for a FIFO since the stat).
        text = read_regular(p, MAX_CATALOG_BYTES).decode("utf-8-sig")   # Windows BOMs
    except (OSError, UnicodeDecodeError) as e:
        raise CatalogError(f"cannot read catalog ({e}); check the path and encoding",
                           path=str(p)) from None
    try:
        data = tomllib.loads(text)
    except RecursionError:
        # tomllib recurses once per nesting level: '[[[[...' would escape as RecursionError
        raise CatalogError("invalid TOML: arrays or tables nested too deeply; fix the file",
                           path=str(p)) from None
    except tomllib.TOMLDecodeError as e:
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        line = int(m.group(1)) if m else None
        if m is None and "(at end of document)" in msg:
            line = max(1, len(text.splitlines()))   # still name a line to look at
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", msg) if m else msg
        raise CatalogError(f"invalid TOML: {msg}; fix the syntax at that line",
                           path=str(p), line=line) from None
    lines = _Lines(text)
    return validate_catalog(data, path=str(p), lines=lines)


def validate_catalog(data: Mapping[str, Any], *, path: str = "<catalog>",
                     lines: Any = None) -> list[tuple[str, dict[str, Any]]]:
    """Validate a parsed catalog mapping; return normalised ``(name, fields)`` pairs."""
    base = Path(path).parent if path != "<catalog>" else Path.cwd()
    resolved: dict[str, str] = {}    # directory -> its real path, for file: sources

    def fail(msg: str, *, model: str | None = None, line: int | None = None) -> CatalogError:
        # Names and values quoted from the file may hold newlines: keep the error one line.
        return CatalogError(_one_line(msg), path=path, line=line,
                            model=_one_line(model) if model is not None else None)

    extra = set(data) - {"models"}
    if extra:
        key = sorted(extra)[0]
        raise fail(f"unknown top-level table '{key}'; catalogs hold only [models.NAME] tables",
                   line=lines.table(key) if lines else None)
    models = data.get("models", {})
    if not isinstance(models, Mapping):
        raise fail("'models' must be a table of [models.NAME] tables")
    out = []
    for name, fields in models.items():
        def where(*keys: str, _name: str = name) -> int | None:
            if lines is None:
                return None
            if keys:
                return lines.key(keys[-1], "models", _name, *keys[:-1])
            return lines.table("models", _name)

        if not isinstance(fields, Mapping):
            raise fail("must be a table ([models.NAME]) not a value", model=name, line=where())
        if not NAME_RE.match(name):
            raise fail("invalid model name; use lowercase letters, digits, '_' and '-' "
                       "(optionally NAMESPACE/NAME), no dots", model=name, line=where())
        out.append((name, _validate_model(name, fields, fail, where, base, resolved)))
    return out


def _one_line(text: str) -> str:
    """Escape line breaks and other control characters so a message stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _check_keys(fields: Mapping[str, Any], allowed: Mapping[str, Any] | set[str], what: str,
                fail, where, model: str, prefix: tuple[str, ...] = ()):
    # The common case, every key known and of its exact type, is checked in bulk (a cold
    # parse of a big catalog does this ~4 times per entry); any problem is then found and
    # reported by the loop below, in the file's order.
    types = allowed if isinstance(allowed, dict) else None
    if not (fields.keys() - allowed):
        if types is None:
            return
        for k, v in fields.items():
            if type(v) is not types[k]:
                break
        else:
            return
    for key, value in fields.items():
        if key not in allowed:
            import difflib

            close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else \
                "allowed: " + ", ".join(sorted(allowed))
            raise fail(f"unknown key '{key}' in {what}; {hint}", model=model,
                       line=where(*prefix, key))
        if types is not None:
            typ = types[key]
            # bool is an int subclass: 'params = true' or 'gflops = true' is no number
            ok = isinstance(value, typ) and not (isinstance(value, bool) and typ is not bool)
            if not ok:
                tname = typ.__name__ if isinstance(typ, type) else "number"
                tname = {"str": "string", "dict": "table", "list": "array",
                         "int": "integer", "bool": "true/false"}.get(tname, tname)
                raise fail(f"'{key}' must be a {tname}, got {value!r}", model=model,
                           line=where(*prefix, key))


def _validate_input(inp: Mapping[str, Any], fail, where, model: str,
                    prefix: tuple[str, ...]) -> dict[str, Any]:
    _check_keys(inp, INPUT_KEYS, "input", fail, where, model, prefix)
    if "size" not in inp:
        raise fail("input needs 'size' (one sample's shape, e.g. [3, 224, 224])",
                   model=model, line=where(*prefix))
    size = inp["size"]
    if not size or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                            for s in size):
        raise fail(f"input.size must be positive integers, got {size!r}", model=model,
                   line=where(*prefix))
    for k in ("mean", "std"):
        if k in inp and not all(isinstance(v, int | float) for v in inp[k]):
            raise fail(f"input.{k} must be numbers, got {inp[k]!r}", model=model,
                       line=where(*prefix))
    if "dtype" in inp and inp["dtype"] not in DTYPES:
        raise fail(f"input.dtype '{inp['dtype']}' unknown; use one of " + ", ".join(sorted(DTYPES)),
                   model=model, line=where(*prefix))
    return dict(inp)


def _validate_model(name: str, fields: Mapping[str, Any], fail, where, base: Path,
                    resolved: dict[str, str]):
    _check_keys(fields, MODEL_KEYS, "model table", fail, where, name)
    for key in REQUIRED_MODEL_KEYS:
        if key not in fields or not fields[key]:
            raise fail(f"missing required key '{key}'"
                       + (" (a lazy 'module:callable' path)" if key == "builder" else ""),
                       model=name, line=where())
    if not re.match(_BUILDER_RE, fields["builder"]):
        raise fail(f"builder '{fields['builder']}' must be 'package.module:callable'",
                   model=name, line=where("builder"))
    out = dict(fields)
    if "input" in fields:
        out["input"] = _validate_input(fields["input"], fail, where, name, ("input",))
    if "finetune" in fields:
        _check_keys(fields["finetune"], FINETUNE_KEYS, "finetune", fail, where, name,
                    ("finetune",))
    if "tags" in fields and not all(isinstance(t, str) for t in fields["tags"]):
        raise fail("tags must be strings", model=name, line=where("tags"))
    pretrained = {}
    for tag, pre in fields.get("pretrained", {}).items():
        pwhere = ("pretrained", tag)
        if not isinstance(pre, Mapping):
            raise fail(f"pretrained '{tag}' must be a table [models.{name}.pretrained.{tag}]",
                       model=name, line=where("pretrained"))
        if not TAG_RE.match(tag):
            raise fail(f"invalid pretrained tag '{tag}'; use lowercase letters, digits, '_', '-'",
                       model=name, line=where(*pwhere))
        _check_keys(pre, PRETRAINED_KEYS, f"pretrained '{tag}'", fail, where, name, pwhere)
        if "source" not in pre:
            raise fail(f"pretrained '{tag}' needs a 'source' URI (e.g. file:weights.safetensors)",
                       model=name, line=where(*pwhere))
        sha = pre.get("sha256")
        if sha is not None and not re.match(_SHA256_RE, sha):
            raise fail(f"pretrained '{tag}': sha256 must be 64 lowercase hex digits",
                       model=name, line=where(*pwhere, "sha256"))
        problem = check_source(pre["source"], sha256=sha)
        if problem:
            raise fail(f"pretrained '{tag}': {problem}", model=name,
                       line=where(*pwhere, "source"))
        p = dict(pre)
        if pre["source"].startswith("file:"):
            try:
                p["source"] = "file:" + _file_path(pre["source"][5:], base, resolved)
            except (RuntimeError, ValueError, OSError) as e:  # ~nosuchuser, NUL byte
                raise fail(f"pretrained '{tag}': source path cannot be used ({e}); "
                           "write file:PATH with a plain path", model=name,
                           line=where(*pwhere, "source")) from None
        if "input" in pre:
            p["input"] = _validate_input(pre["input"], fail, where, name, (*pwhere, "input"))
        metrics = pre.get("metrics", {})
        if not all(isinstance(v, int | float) and not isinstance(v, bool)
                   for v in metrics.values()):
            raise fail(f"pretrained '{tag}': metrics must be numbers", model=name,
                       line=where(*pwhere, "metrics"))
        pretrained[tag] = p
    out["pretrained"] = pretrained
    return out


def _file_path(text: str, base: Path, resolved: dict[str, str]) -> str:
    """A ``file:`` source's path: absolute as written, relative ones against the catalog's
    folder with links resolved (``(base / path).resolve()``, with each folder resolved once:
    a 10,000-entry catalog of weights in one folder otherwise walks it 10,000 times)."""
    if text.startswith("~") or os.path.isabs(text) or "\0" in text:
        fp = Path(text).expanduser()
        return str(fp if fp.is_absolute() else (base / fp).resolve())
    if "//" in text or "/./" in f"/{text}/" or text.endswith("/"):
        joined = str(base / text)               # Path's normalisation, for the odd ones
    else:
        b = str(base)
        joined = text if b == "." else f"{b}/{text}"   # what base / text gives, faster
    folder, _, leaf = joined.rpartition("/")
    if leaf in ("", ".", "..") or not folder:
        return str(Path(joined).resolve())
    real = resolved.get(folder)
    if real is None:
        real = resolved[folder] = str(Path(folder).resolve())
    out = os.path.join(real, leaf)
    return str(Path(out).resolve()) if os.path.islink(out) else out


def _input(d: Mapping[str, Any] | None) -> InputSpec | None:
    if not d:
        return None
    return InputSpec(
        size=tuple(d["size"]), dtype=d.get("dtype") or "float32",
        mean=tuple(d["mean"]) if d.get("mean") is not None else None,
        std=tuple(d["std"]) if d.get("std") is not None else None,
        interpolation=d.get("interpolation"), invert=d.get("invert"),
    )


def _to_spec(name: str, f: Mapping[str, Any], plugin: str | None, *,
             origin: str | None) -> ModelSpec:
    pretrained = {
        tag: PretrainedSpec(
            tag=tag, source=p["source"], sha256=p.get("sha256"),
            kwargs=freeze(p.get("kwargs", {})),
            labels=tuple(p["labels"]) if "labels" in p else None,
            input=_input(p.get("input")), dataset=p.get("dataset"),
            metrics=freeze(p.get("metrics", {})), license=p.get("license"),
            description=p.get("description"), default=p.get("default", False),
            task=p.get("task"), demo=p.get("demo"), params=p.get("params"),
            gflops=float(p["gflops"]) if "gflops" in p else None,
        )
        for tag, p in f["pretrained"].items()
    }
    return ModelSpec(
        name=name, family=f["family"], task=f["task"], builder=f["builder"],
        kwargs=freeze(f.get("kwargs", {})), input=_input(f.get("input")),
        description=f.get("description"), paper=f.get("paper"), paper_url=f.get("paper_url"),
        year=f.get("year"), license=f.get("license"), params=f.get("params"),
        gflops=float(f["gflops"]) if "gflops" in f else None, tags=tuple(f.get("tags", ())),
        finetune=freeze(f.get("finetune", {})), demo=f.get("demo"),
        pretrained=freeze(pretrained), plugin=plugin, origin=origin,
    )



def spec_from_fields(name: str, fields: Mapping[str, Any], *, plugin: str | None,
                     origin: str | None = None) -> ModelSpec:
    """Validate keyword fields given in code (``registry.add_model(name=..., ...)``) exactly
    as a catalog table is validated, and build the ModelSpec.

    ``builder`` may be a callable here; ``input`` and ``pretrained`` may be dicts or
    InputSpec / PretrainedSpec records.

    Raises:
        CatalogError: naming the model and what to fix.
    """
    from dataclasses import asdict
    from dataclasses import fields as dc_fields

    f = dict(fields)
    builder = f.get("builder")
    if callable(builder):
        f["builder"] = "placeholder.module:callable"
    if isinstance(f.get("input"), InputSpec):
        f["input"] = {k: (list(v) if isinstance(v, tuple) else v)
                      for k, v in asdict(f["input"]).items() if v is not None}
    pre = f.get("pretrained")
    if isinstance(pre, Mapping):
        conv = {}
        for tag, p in pre.items():
            if isinstance(p, PretrainedSpec):
                p = {fl.name: getattr(p, fl.name) for fl in dc_fields(p)
                     if fl.name != "tag" and getattr(p, fl.name) not in (None, (), {}, False)}
                if isinstance(p.get("input"), InputSpec):
                    p["input"] = {k: v for k, v in asdict(p["input"]).items() if v is not None}
            conv[tag] = thaw(p)
        f["pretrained"] = conv
    f = thaw(f)
    where_from = origin or plugin or "<code>"
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise CatalogError("invalid model name; use lowercase letters, digits, '_' and '-' "
                           "(optionally NAMESPACE/NAME), no dots", path=where_from, model=name)
    [(_, entry)] = validate_catalog({"models": {name: f}}, path=where_from)
    if callable(builder):
        entry["builder"] = builder
    return _to_spec(name, entry, plugin, origin=where_from)

