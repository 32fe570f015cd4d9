"""Parse and validate catalog files (``registry.toml`` and users' own) into ModelSpecs.

Parsing uses :mod:`tomllib` only, never torch. Every problem becomes one
:class:`~zoo.errors.CatalogError` naming the file, the line, the model and the fix.
Validated catalogs are cached on disk (:mod:`zoo.registry.cache`), so a large user
catalog costs its parse once.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.errors import CatalogError
from zoo.registry.cache import read_cached, store
from zoo.registry.spec import (
    NAME_RE,
    TAG_RE,
    InputSpec,
    ModelSpec,
    PretrainedSpec,
    freeze,
    thaw,
)

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
              "invert": bool, "center": bool}
FINETUNE_KEYS = {"head", "lora_targets", "layer_groups", "backbone", "no_decay",
                 "target_parameters", "notes"}
DTYPES = {"float32", "float16", "bfloat16", "int64", "int32"}

SCHEMES = ("hf-hub", "timm", "torchvision", "file", "package", "https", "http")
_SOURCE_FORMS = {
    "hf-hub": (re.compile(r"^[\w.\-]+/[\w.\-]+(@[^/\s]+)?(/\S+)?$"),
               "hf-hub:ORG/REPO[@REV][/FILE]"),
    "timm": (re.compile(r"^[\w\-]+(\.[\w\-]+)?$"), "timm:MODEL_NAME[.TAG]"),
    "torchvision": (re.compile(r"^[A-Za-z_]\w*\.[A-Za-z_]\w*$"), "torchvision:WeightsEnum.MEMBER"),
    "file": (re.compile(r"^\S.*$"), "file:PATH"),
    "package": (re.compile(r"^[A-Za-z_][\w.]*/\S.*$"), "package:IMPORT_NAME/PATH/IN/PACKAGE"),
    "https": (re.compile(r"^//[^/\s]+/\S*$"), "https://HOST/PATH (with sha256)"),
    "http": (re.compile(r"^//(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/\S*$"),
             "http://127.0.0.1:PORT/PATH (plain http only on loopback; use https)"),
}
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_BUILDER_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

#: The catalog of built-in models, shared by the built-in family plugins.
BUILTIN_CATALOG = Path(__file__).parent.parent / "registry.toml"

# Work already done in this process: the built-in plugins share one file.
_RAW_MEMO: dict[tuple[str, int, int], list[tuple[str, dict[str, Any]]]] = {}
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
        close = difflib.get_close_matches(scheme, SCHEMES, n=1, cutoff=0.7)
        if close:
            return f"unknown source scheme '{scheme}:'; did you mean '{close[0]}:'?"
        if not re.match(r"^[a-z][a-z0-9+.\-]*$", scheme):
            return f"source scheme '{scheme}' is not a valid URI scheme"
        return None
    if not form[0].match(rest):
        return f"source '{source}' is malformed; expected {form[1]}"
    if scheme in ("https", "http") and not sha256:
        return f"source '{source}' needs a sha256 so the download can be verified"
    return None


class _Lines:
    """Find the line of a table or key in the TOML text, only when an error needs it."""

    def __init__(self, text: str):
        self.lines = text.splitlines()

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
    memo_key = (str(p), st.st_size, st.st_mtime_ns, plugin, family)
    specs = _MEMO.get(memo_key)
    if specs is None:
        with _no_gc():
            specs = _load(p, st, memo_key, plugin=plugin, family=family, cache=cache)
    return list(specs)


def _load(p: Path, st: os.stat_result, memo_key: tuple[Any, ...], *, plugin: str | None,
          family: str | None, cache: bool) -> list[ModelSpec]:
    specs = read_cached(p, st, plugin, family) if cache else None
    if specs is None:
        raw = _RAW_MEMO.get(memo_key[:3])
        if raw is None:
            raw = _RAW_MEMO[memo_key[:3]] = _parse(p)
        specs = [_to_spec(name, fields, plugin) for name, fields in raw
                 if family is None or fields["family"] == family]
        if cache:
            store(p, st, plugin, family, specs)
    _MEMO[memo_key] = specs
    return specs


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
    try:
        text = p.read_text(encoding="utf-8-sig")   # editors on Windows add a BOM
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
        entry = _validate_model(name, fields, fail, where, base)
        entry["_origin"] = path
        out.append((name, entry))
    return out


def _one_line(text: str) -> str:
    """Escape line breaks and other control characters so a message stays one line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


def _check_keys(fields: Mapping[str, Any], allowed: Mapping[str, Any] | set[str], what: str,
                fail, where, model: str, prefix: tuple[str, ...] = ()):
    for key, value in fields.items():
        if key not in allowed:
            close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else \
                "allowed: " + ", ".join(sorted(allowed))
            raise fail(f"unknown key '{key}' in {what}; {hint}", model=model,
                       line=where(*prefix, key))
        if isinstance(allowed, Mapping):
            typ = allowed[key]
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


def _validate_model(name: str, fields: Mapping[str, Any], fail, where, base: Path):
    _check_keys(fields, MODEL_KEYS, "model table", fail, where, name)
    for key in REQUIRED_MODEL_KEYS:
        if key not in fields or not fields[key]:
            raise fail(f"missing required key '{key}'"
                       + (" (a lazy 'module:callable' path)" if key == "builder" else ""),
                       model=name, line=where())
    if not _BUILDER_RE.match(fields["builder"]):
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
        if sha is not None and not _SHA256_RE.match(sha):
            raise fail(f"pretrained '{tag}': sha256 must be 64 lowercase hex digits",
                       model=name, line=where(*pwhere, "sha256"))
        problem = check_source(pre["source"], sha256=sha)
        if problem:
            raise fail(f"pretrained '{tag}': {problem}", model=name,
                       line=where(*pwhere, "source"))
        p = dict(pre)
        if pre["source"].startswith("file:"):
            try:
                fp = Path(pre["source"][5:]).expanduser()
                p["source"] = "file:" + str(fp if fp.is_absolute() else (base / fp).resolve())
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


def _input(d: Mapping[str, Any] | None) -> InputSpec | None:
    if not d:
        return None
    return InputSpec(
        size=tuple(d["size"]), dtype=d.get("dtype") or "float32",
        mean=tuple(d["mean"]) if d.get("mean") is not None else None,
        std=tuple(d["std"]) if d.get("std") is not None else None,
        interpolation=d.get("interpolation"), invert=d.get("invert"),
        center=d.get("center"),
    )


def _to_spec(name: str, f: dict[str, Any], plugin: str | None) -> ModelSpec:
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
    origin = f.get("_origin")
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
    return _to_spec(name, entry, plugin)

