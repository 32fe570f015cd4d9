"""Hardening: corrupted catalogs and parse caches give one-line CatalogErrors, never crashes.

Catalog texts are slices of the real registry.toml, mangled by hypothesis (lines deleted,
duplicated, swapped; characters inserted; values replaced by other TOML types; keys
renamed; quotes and brackets broken; truncation; unicode; long strings; raw bytes).
``load_catalog`` must either return valid ModelSpecs or raise a CatalogError whose message
is one line, starts with the file path and, for positional errors, names the line.
"""

from __future__ import annotations

import itertools
import pickle
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zoo.registry.catalog as catalog
from conftest import ROOT, run_zoo
from zoo.errors import CatalogError
from zoo.registry.catalog import load_catalog
from zoo.registry.spec import NAME_RE, TAG_RE, ModelSpec

REGISTRY_TEXT = (ROOT / "registry.toml").read_text(encoding="utf-8")
# The catalog cut into its tables (each block starts at a '[...]' header line).
BLOCKS = re.split(r"(?m)^(?=\[)", REGISTRY_TEXT)
BLOCKS = [b for b in BLOCKS if b.strip()]

_BASE = settings(derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])


def HYPO(n: int) -> settings:  # noqa: N802 - reads like a decorator
    """Deterministic settings with ``n`` examples (CI runs must not vary)."""
    return settings(_BASE, max_examples=n)

_COUNTER = itertools.count()

# Values of every TOML type, plus strings that have broken naive code before (newlines,
# NUL, '~user' paths, scheme look-alikes, unicode line separators).
TOML_VALUES = [
    '""', '"x"', "0", "-1", "3.5", "nan", "inf", "true", "false", "[]", "[1, 2]", '["a", 1]',
    "{}", "{a = 1}", '{size = "big"}', "{size = []}", "{size = [0]}", "{size = [true]}",
    "1979-05-27", "1979-05-27T07:32:00Z", "07:32:00", '"\\n"', '"a\\nb"', '"\\u0000"',
    '"file:~nosuchuser_zoo/w.safetensors"', '"file:a\\u0000b"', '"file:"', '"hf-hub:"',
    '"htps://x/y"', '"http://example.com/w"', '"m:f"', '"not a builder"', '"\\u2028"',
    '"ünïcödé ✓ 模型"', '"' + "x" * 5000 + '"', "[[[]]]", "[{a = [{b = 1}]}]",
]
KEYS = ["family", "task", "builder", "kwargs", "input", "size", "source", "sha256", "labels",
        "metrics", "default", "tags", "pretrained", "models", "famliy", "sourc", "", "\"a\nb\"",
        "\"\"", "ü", "x.y", "a b"]
TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


def _slice(data) -> str:
    start = data.draw(st.integers(0, len(BLOCKS) - 1), label="start")
    count = data.draw(st.integers(1, 6), label="count")
    return "".join(BLOCKS[start:start + count])


def _mutate(text: str, data) -> str:
    lines = text.split("\n")
    kind = data.draw(st.sampled_from([
        "delete", "duplicate", "swap", "insert", "truncate", "value", "rename", "quote",
        "bracket", "unicode", "long",
    ]), label="mutation")
    i = data.draw(st.integers(0, max(0, len(lines) - 1)), label="line")
    if kind == "delete" and len(lines) > 1:
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "swap":
        j = data.draw(st.integers(0, len(lines) - 1), label="other")
        lines[i], lines[j] = lines[j], lines[i]
    elif kind == "insert":
        pos = data.draw(st.integers(0, len(text)), label="pos")
        return text[:pos] + data.draw(TEXT, label="chars") + text[pos:]
    elif kind == "truncate":
        return text[:data.draw(st.integers(0, len(text)), label="pos")]
    elif kind == "value":
        assigns = [k for k, line in enumerate(lines) if re.match(r"^\s*[\w\"-]+\s*=", line)]
        if assigns:
            k = data.draw(st.sampled_from(assigns), label="assign")
            key = lines[k].split("=", 1)[0]
            lines[k] = key + "= " + data.draw(st.sampled_from(TOML_VALUES), label="value")
    elif kind == "rename":
        assigns = [k for k, line in enumerate(lines) if "=" in line or line.startswith("[")]
        if assigns:
            k = data.draw(st.sampled_from(assigns), label="assign")
            new = data.draw(st.sampled_from(KEYS), label="key")
            if lines[k].startswith("["):
                lines[k] = re.sub(r"\.[^.\]]+\]", f".{new}]", lines[k], count=1)
            else:
                lines[k] = re.sub(r"^\s*[^=]+=", f"{new} =", lines[k], count=1)
    elif kind in ("quote", "bracket"):
        chars = '"' if kind == "quote" else "[]{}"
        spots = [p for p, c in enumerate(text) if c in chars]
        if spots:
            p = data.draw(st.sampled_from(spots), label="spot")
            return text[:p] + text[p + 1:]
    elif kind == "unicode":
        lines.insert(i, data.draw(st.sampled_from([
            "\u2028", "\ufeff", "é = 1", "[models.ünï]", "\x00", "\x1b[31m", "\r", "#\u202e"]),
            label="unicode"))
    elif kind == "long":
        lines.insert(i, 'description = "' + "a" * 200_000 + '"')
    return "\n".join(lines)


def _write(tmp_path: Path, content: str | bytes) -> Path:
    # A fresh name per example: the in-process memo is keyed by (path, size, mtime).
    path = tmp_path / f"catalog-{next(_COUNTER)}.toml"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def check_load(path: Path) -> list[ModelSpec] | CatalogError:
    """Load ``path``; assert the outcome is valid specs or a well-formed CatalogError."""
    try:
        specs = load_catalog(path, cache=False)
    except CatalogError as e:
        msg = str(e)
        assert len(msg.splitlines()) == 1 and "\n" not in msg and "\r" not in msg, msg[:300]
        assert msg.startswith(str(path)), msg[:300]
        if e.line is not None:
            assert msg.startswith(f"{path}:{e.line}: "), msg[:300]
            assert e.line >= 1
        if "invalid TOML" in msg and "nested too deeply" not in msg:
            assert e.line is not None, f"a syntax error must name its line: {msg[:300]}"
        return e
    assert isinstance(specs, list)
    for s in specs:
        assert isinstance(s, ModelSpec)
        assert NAME_RE.match(s.name), s.name
        for field in (s.family, s.task, s.builder):
            assert isinstance(field, str) and field
        assert all(TAG_RE.match(t) for t in s.pretrained)
        if s.input is not None:
            assert s.input.size and all(isinstance(n, int) and n > 0 for n in s.input.size)
    return specs


def test_the_real_catalog_loads_and_its_slices_are_what_we_mutate(tmp_path):
    specs = check_load(_write(tmp_path, REGISTRY_TEXT))
    assert isinstance(specs, list) and len(specs) >= 50
    assert len(BLOCKS) > len(specs)      # model tables plus their pretrained sub-tables


@HYPO(250)
@given(data=st.data())
def test_random_corruptions_of_catalog_slices(tmp_path, data):
    text = _slice(data)
    for _ in range(data.draw(st.integers(1, 3), label="rounds")):
        text = _mutate(text, data)
    check_load(_write(tmp_path, text))


@HYPO(60)
@given(content=st.binary(max_size=400))
def test_binary_bytes(tmp_path, content):
    check_load(_write(tmp_path, content))


@HYPO(120)
@given(value=st.sampled_from(TOML_VALUES),
       key=st.sampled_from(["family", "task", "builder", "kwargs", "input", "tags", "year",
                            "params", "gflops", "demo", "finetune", "pretrained"]))
def test_every_model_key_with_every_type(tmp_path, key, value):
    fields = {"family": '"cnn"', "task": '"image-classification"', "builder": '"m.n:f"'}
    fields[key] = value
    body = "\n".join(f"{k} = {v}" for k, v in fields.items())
    check_load(_write(tmp_path, f"[models.m]\n{body}\n"))


@HYPO(120)
@given(value=st.sampled_from(TOML_VALUES),
       key=st.sampled_from(["source", "sha256", "kwargs", "labels", "input", "dataset",
                            "metrics", "license", "default", "task", "demo"]))
def test_every_pretrained_key_with_every_type(tmp_path, key, value):
    fields = {"source": '"file:w.safetensors"'}
    fields[key] = value
    body = "\n".join(f"{k} = {v}" for k, v in fields.items())
    text = ('[models.m]\nfamily = "cnn"\ntask = "t"\nbuilder = "m:f"\n'
            f"[models.m.pretrained.t]\n{body}\n")
    check_load(_write(tmp_path, text))


@pytest.mark.parametrize("text, where", [
    ("", None),
    ("\ufeff", None),
    ("x = " + "[" * 20_000 + "]" * 20_000 + "\n", "nested too deeply"),
    ('[models.a]\nfamily = "cnn', "invalid TOML"),         # ends inside a string
    ('[models.a]\nfamily="c"\ntask="t"\nbuilder="m:f"\n[models.a.pretrained.t]\n'
     'source = "file:~nosuchuser_zoo/w"\n', ":6: "),
    ('[models.a]\nfamily="c"\ntask="t"\nbuilder="m:f"\n[models.a.pretrained.t]\n'
     'source = "file:a\\u0000b"\n', ":6: "),
    ('[models.a]\nfamily="c"\ntask="t"\nbuilder="m:f"\n[models.a.pretrained.t]\n'
     'source = "a\\nb"\n', ":6: "),
    ('[models."a\\nb"]\nfamily = "cnn"\n', "invalid model name"),
    ('[models.a]\nfamily="c"\ntask="t"\nbuilder="m:f"\n"x\\u2028y" = 1\n', "unknown key"),
])
def test_known_corner_cases(tmp_path, text, where):
    """Each of these once escaped as RecursionError/RuntimeError/ValueError or a two-line
    message (fixed in zoo/catalog.py)."""
    out = check_load(_write(tmp_path, text))
    if where is None:
        assert out == []
    else:
        assert isinstance(out, CatalogError) and where in str(out), str(out)
    if text.startswith('[models.a]\nfamily = "cnn'):
        assert out.line == 2


def test_missing_and_unreadable_paths(tmp_path):
    for path in (tmp_path / "nope.toml", tmp_path):          # missing; a directory
        with pytest.raises(CatalogError) as e:
            load_catalog(path, cache=False)
        assert str(e.value).startswith(str(path)) and "\n" not in str(e.value)


# -- the same through the CLI (a few subprocesses: what a user sees) ----------------------

@pytest.mark.parametrize("content", [
    b"\xff\xfe\x00binary",
    b'[models.a]\nfamily = "cnn\n',
    b'[models.a]\nfamily = "cnn"\ntask = "t"\nbuilder = "m:f"\nsize = 3\n',
    ("x = " + "[" * 20_000 + "]" * 20_000).encode(),
    None,                                                     # a path that does not exist
])
def test_cli_reports_a_broken_catalog_in_one_line(tmp_path, content):
    path = tmp_path / "broken.toml"
    if content is not None:
        path.write_bytes(content)
    r = run_zoo("--catalog", str(path), "list", timeout=120)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}"), r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


# -- the on-disk parse cache -------------------------------------------------------------

@pytest.fixture
def big_catalog(tmp_path, monkeypatch):
    """A catalog large enough to be cached (registry.toml plus filler models), a private
    cache dir, and a cold in-process memo; returns (path, cache file, fresh specs)."""
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ZOO_NO_CACHE", raising=False)
    filler = "".join(f'[models.filler-{i}]\nfamily = "cnn"\ntask = "t"\nbuilder = "m:f"\n'
                     f'description = "{"padding " * 8}"\n' for i in range(300))
    path = tmp_path / "big.toml"
    path.write_text(REGISTRY_TEXT + filler, encoding="utf-8")
    assert path.stat().st_size >= 64_000
    cold(monkeypatch)
    fresh = load_catalog(path)
    files = list((tmp_path / "cache" / "catalogs").glob("*.json"))
    assert len(files) == 1, "a large catalog is cached on disk"
    return path, files[0], fresh


def cold(monkeypatch):
    monkeypatch.setattr(catalog, "_MEMO", {})
    monkeypatch.setattr(catalog, "_RAW_MEMO", {})


def test_cache_is_used_when_fresh(big_catalog, monkeypatch):
    path, cache_file, fresh = big_catalog
    cold(monkeypatch)
    monkeypatch.setattr(catalog, "_parse", lambda p: pytest.fail("parsed despite the cache"))
    assert load_catalog(path) == fresh


@pytest.mark.parametrize("damage", [
    "truncate-head", "truncate-body", "empty", "garbage", "a-pickle", "directory",
    "wrong-body-type", "wrong-row-shape",
])
def test_damaged_cache_is_rebuilt_silently(big_catalog, monkeypatch, damage):
    path, cache_file, fresh = big_catalog
    raw = cache_file.read_bytes()
    if damage == "truncate-head":
        cache_file.write_bytes(raw[:10])
    elif damage == "truncate-body":
        cache_file.write_bytes(raw[:len(raw) // 2])
    elif damage == "empty":
        cache_file.write_bytes(b"")
    elif damage == "garbage":
        cache_file.write_bytes(b"\x80\x05garbage" * 100)
    elif damage == "a-pickle":            # the old format is never unpickled
        cache_file.write_bytes(pickle.dumps({"not": "a head"}) + pickle.dumps([1, 2]))
    elif damage == "directory":
        cache_file.unlink()
        cache_file.mkdir()
    elif damage in ("wrong-body-type", "wrong-row-shape"):
        # a matching head and checksum over a body of the wrong shape
        import json
        import zlib
        meta = json.loads(raw.split(b"\n", 1)[0])
        body = (b'"not specs"\n{}' if damage == "wrong-body-type" else   # one column only
                json.dumps([["x"] * meta["count"]]).encode() + b"\n{}" * meta["count"])
        meta["crc"] = zlib.crc32(body)
        cache_file.write_bytes(json.dumps(meta).encode() + b"\n" + body)
    cold(monkeypatch)
    assert load_catalog(path) == fresh
    if damage != "directory":          # rewritten, good again
        cold(monkeypatch)
        monkeypatch.setattr(catalog, "_parse", lambda p: pytest.fail("cache not rewritten"))
        assert load_catalog(path) == fresh


@HYPO(25)
@given(data=st.data())
def test_bit_flipped_cache_never_returns_wrong_specs(big_catalog, monkeypatch, data):
    path, cache_file, fresh = big_catalog
    original = cache_file.read_bytes()
    raw = bytearray(original)
    try:
        for _ in range(data.draw(st.integers(1, 3), label="flips")):
            pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
            raw[pos] ^= 1 << data.draw(st.integers(0, 7), label="bit")
        cache_file.write_bytes(bytes(raw))
        cold(monkeypatch)
        assert load_catalog(path) == fresh
    finally:
        cache_file.write_bytes(original)          # the next example starts from a good cache


def test_stale_cache_is_ignored_after_an_edit(big_catalog, monkeypatch):
    path, cache_file, fresh = big_catalog
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("[models.filler-0]", "[models.renamed-0]"), encoding="utf-8")
    cold(monkeypatch)
    names = {s.name for s in load_catalog(path)}
    assert "renamed-0" in names and "filler-0" not in names
    # and an edit that breaks the file is reported, not hidden by the old cache
    path.write_text(text + "\n[models.broken\n", encoding="utf-8")
    cold(monkeypatch)
    with pytest.raises(CatalogError) as e:
        load_catalog(path)
    assert str(e.value).startswith(f"{path}:")


def test_unwritable_cache_dir_does_not_break_loading(tmp_path, monkeypatch):
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(blocker))
    path = tmp_path / "big.toml"
    path.write_text(REGISTRY_TEXT, encoding="utf-8")
    cold(monkeypatch)
    assert len(load_catalog(path)) >= 50
