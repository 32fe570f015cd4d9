"""Validate parsed catalog tables: every key known and of its type, every name, tag, builder
and source URI well formed, relative ``file:`` sources resolved against the catalog's
folder. Every problem becomes one :class:`~zoo.errors.CatalogError` naming the file, the
line (found in the text only when an error needs it), the model and the fix.

:mod:`zoo.registry.catalog` reads files through this; ``registry.add_model`` (through
``spec_from_fields``) and ``zoo.shipping`` validate tables given in code the same way.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from zoo.errors import CatalogError
from zoo.registry.spec import NAME_RE, TAG_RE
from zoo.registry.tasks import check_task

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
    for key in ("task", "demo"):
        problem = check_task(fields[key], key=key) if key in fields else None
        if problem:
            raise fail(problem, model=name, line=where(key))
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
        for key in ("task", "demo"):
            problem = check_task(pre[key], key=key) if key in pre else None
            if problem:
                raise fail(f"pretrained '{tag}': {problem}", model=name,
                           line=where(*pwhere, key))
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
