"""Issue 14, items 4, 12 and 14: a cache is data, never code; what zoo is pointed at is read
only if it is a regular file of bounded size; a cache never outlives an edit.

Each test performs the attack on a real zoo command or API call and checks a canary file:
what the attacker wanted to happen (a file created by unpickling or by a planted builder)
did not.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import stat
import zlib
from pathlib import Path

import pytest

import zoo
import zoo.registry
from conftest import ROOT, run_zoo
from zoo.registry import cache, catalog

REGISTRY_TEXT = (ROOT / "registry.toml").read_text(encoding="utf-8")
VICTIM = "lenet5"       # a model of the catalog the attacker re-points


def big_catalog(tmp_path: Path) -> Path:
    """A user catalog large enough to be cached: the built-in one under another name."""
    path = tmp_path / "team.toml"
    path.write_text(REGISTRY_TEXT.replace("[models.", "[models.team-"), encoding="utf-8")
    assert path.stat().st_size >= cache.MIN_CACHED_BYTES
    return path


def fresh_process_state(monkeypatch) -> None:
    monkeypatch.setattr(catalog, "_MEMO", {})
    monkeypatch.setattr(catalog, "_RAW_MEMO", {})
    monkeypatch.setattr(cache, "_REFUSED", set())
    zoo.registry.reset_default()


def cache_file_of(path: Path) -> Path:
    """The cache file of the catalog at ``path`` (the built-in catalog has its own)."""
    [found] = [f for f in (Path(os.environ["ZOO_CACHE_DIR"]) / "catalogs").glob("*.json")
               if json.loads(f.read_bytes().split(b"\n", 1)[0])["head"][2]
               == str(path.resolve())]
    return found


def plant_builder(cache_path: Path, model: str, builder: str, kwargs: dict) -> None:
    """Re-point ``model`` in a cache file, checksum and all (what an attacker who can
    write the file does)."""
    meta_line, columns_line, *records = cache_path.read_bytes().split(b"\n")
    columns = json.loads(columns_line)          # names first, records' offsets last
    i = columns[0].index(model)
    record = json.loads(records[i])
    record.update(builder=builder, kwargs=kwargs)
    records[i] = json.dumps(record).encode()
    at = 0
    for j, line in enumerate(records):
        columns[-1][j], at = at, at + len(line) + 1
    body = b"\n".join([json.dumps(columns).encode(), *records])
    meta = json.loads(meta_line)
    meta["crc"] = zlib.crc32(body)
    mode = stat.S_IMODE(cache_path.stat().st_mode)
    cache_path.write_bytes(json.dumps(meta).encode() + b"\n" + body)
    cache_path.chmod(mode)


class Canary:
    """Unpickling this creates the canary file."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


SHARED = ["world-writable dir", "world-writable file"]
if hasattr(os, "getuid") and os.getuid() == 0:   # only root can hand files to another user
    SHARED += ["dir of another user", "file of another user", "dir of another group"]


def share(cache_root: Path, cache_path: Path, how: str) -> None:
    """Make the cache what a shared ZOO_CACHE_DIR looks like to the attacker."""
    catalogs = cache_root / "catalogs"
    if how == "world-writable dir":
        for d in (cache_root, catalogs):
            d.chmod(0o777)
    elif how == "world-writable file":
        cache_path.chmod(0o666)
    elif how == "dir of another user":
        os.chown(catalogs, 65534, -1)
    elif how == "file of another user":
        os.chown(cache_path, 65534, -1)
    elif how == "dir of another group":
        os.chown(catalogs, -1, 65534)
        catalogs.chmod(0o770)


@pytest.mark.parametrize("how", SHARED)
def test_issue14_item4_a_builder_planted_in_a_shared_cache_never_runs(tmp_path, monkeypatch,
                                                                      capsys, how):
    root = tmp_path / "shared-cache"
    monkeypatch.setenv("ZOO_CACHE_DIR", str(root))
    monkeypatch.delenv("ZOO_NO_CACHE", raising=False)
    path = big_catalog(tmp_path)
    monkeypatch.setenv("ZOO_CATALOG", str(path))
    fresh_process_state(monkeypatch)
    zoo.list_models()                                   # the user's own run fills the cache
    canary = tmp_path / "canary"
    plant_builder(cache_file_of(path), f"team-{VICTIM}", "builtins:open",
                  {"file": str(canary), "mode": "w"})
    share(root, cache_file_of(path), how)
    fresh_process_state(monkeypatch)
    model = zoo.get(f"team-{VICTIM}")                   # the catalog's builder, not open()
    assert type(model).__name__ == "LeNet5"
    assert not canary.exists(), "the planted builder ran"
    err = capsys.readouterr().err
    assert f"zoo: warning: not using the cache in {root}" in err
    assert "set ZOO_CACHE_DIR to a directory of your own" in err


def test_issue14_item4_control_the_planted_builder_is_what_a_private_cache_would_run(
        tmp_path, monkeypatch):
    """Why the check matters: the cache's content steers the builder. The same planted
    file in the user's own cache is used (so the test above can fail)."""
    root = tmp_path / "own-cache"
    monkeypatch.setenv("ZOO_CACHE_DIR", str(root))
    monkeypatch.delenv("ZOO_NO_CACHE", raising=False)
    path = big_catalog(tmp_path)
    monkeypatch.setenv("ZOO_CATALOG", str(path))
    fresh_process_state(monkeypatch)
    zoo.list_models()
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert stat.S_IMODE(cache_file_of(path).stat().st_mode) == 0o600
    canary = tmp_path / "canary"
    plant_builder(cache_file_of(path), f"team-{VICTIM}", "builtins:open",
                  {"file": str(canary), "mode": "w"})
    fresh_process_state(monkeypatch)
    with contextlib.suppress(zoo.ZooError):   # open() gives no module, refused or not
        zoo.get(f"team-{VICTIM}")
    assert canary.exists(), "the planted builder did not run: the test above proves nothing"


@pytest.mark.parametrize("private", [True, False])
def test_issue14_item4_a_pickle_in_the_cache_is_never_unpickled(tmp_path, private):
    """The old cache format was pickle.load-ed before any check; a pickle where the cache
    file is (or where the old one was) is now only data that fails to parse."""
    root = tmp_path / "cache"
    env = {"ZOO_CACHE_DIR": str(root), "ZOO_CATALOG": str(big_catalog(tmp_path))}
    assert run_zoo("list", env=env, timeout=120).returncode == 0
    canary = tmp_path / "canary"
    for target in [*(root / "catalogs").glob("*.json"),
                   *(p.with_suffix(".pickle") for p in (root / "catalogs").glob("*.json"))]:
        target.write_bytes(pickle.dumps((6, "0.1.0")) + pickle.dumps(Canary(canary)))
        target.chmod(0o600 if private else 0o666)
    proc = run_zoo("list", env=env, timeout=120)
    assert proc.returncode == 0 and f"team-{VICTIM}" in proc.stdout, proc.stderr
    assert not canary.exists(), "a pickle from the cache was loaded"


def test_issue14_item4_plugin_discovery_in_a_shared_cache_is_not_trusted(tmp_path):
    """The discovery cache names modules to import: a planted entry point must not load."""
    root = tmp_path / "shared-cache"
    env = {"ZOO_CACHE_DIR": str(root)}
    assert run_zoo("list", env=env, timeout=120).returncode == 0
    disc = root / "plugins" / "discovery.json"
    doc = json.loads(disc.read_text())
    canary = tmp_path / "canary"
    (tmp_path / "zp_planted.py").write_text(f"open({str(canary)!r}, 'w').close()\n")
    for record in doc["paths"].values():
        if record["dists"]:
            record["dists"].insert(0, ["zp-planted", "zp-planted", "1", str(tmp_path),
                                       None, [["planted", "zp_planted"]]])
            break
    disc.write_text(json.dumps(doc))
    for d in (root, root / "plugins"):
        d.chmod(0o777)
    proc = run_zoo("plugins", "--json", env={**env, "PYTHONPATH": str(tmp_path)},
                   timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "planted" not in {p["name"] for p in json.loads(proc.stdout)}
    assert not canary.exists(), "a module named only by the shared cache was imported"
    assert "not using the cache in" in proc.stderr


# -- item 12: FIFOs, devices and huge files -------------------------------------------------

@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "catalog.toml"
    os.mkfifo(path)
    return path


@pytest.mark.parametrize("target", ["fifo", "/dev/zero", "sparse 300 MiB", "directory"])
def test_issue14_item12_a_catalog_that_is_no_regular_file_is_refused_at_once(
        tmp_path, fifo, target):
    if target == "fifo":
        path = fifo                      # nobody writes to it: a read would wait forever
    elif target == "sparse 300 MiB":
        path = tmp_path / "huge.toml"
        with open(path, "wb") as fh:
            fh.truncate(300 * 2**20)     # reading it would cost 300 MiB and then some
    elif target == "directory":
        path = tmp_path
    else:
        path = Path(target)              # endless zeros
    for args, env in ((["list"], {"ZOO_CATALOG": str(path)}),
                      (["--catalog", str(path), "info", "lenet5"], {})):
        proc = run_zoo(*args, env=env, timeout=60)      # a hang fails here
        assert proc.returncode == 2, proc.stderr
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith(f"Error: {path}: cannot read catalog: ")
        assert ("not a regular file" in line) != (target == "sparse 300 MiB")


def test_issue14_item12_a_config_json_that_is_a_fifo_or_dev_zero_is_refused(tmp_path):
    saved = tmp_path / "saved"          # what 'zoo get lenet5 --save' leaves, config aside
    saved.mkdir()
    (saved / "model.safetensors").write_bytes(b"")
    config = saved / "config.json"
    for kind in ("fifo", "/dev/zero"):
        config.unlink(missing_ok=True)
        if kind == "fifo":
            os.mkfifo(config)
        else:
            config.symlink_to("/dev/zero")
        proc = run_zoo("get", str(saved), timeout=120)
        assert proc.returncode == 2, proc.stderr
        [line] = proc.stderr.strip().splitlines()
        assert "config.json: unreadable (it is a" in line and "not a regular file" in line


def test_issue14_item12_read_regular_checks_the_file_it_opened(tmp_path, fifo):
    from zoo.atomic import NotARegularFile, read_regular

    with pytest.raises(NotARegularFile, match="FIFO"):
        read_regular(fifo, 1000)
    small = tmp_path / "small"
    small.write_bytes(b"x" * 10)
    assert read_regular(small, 10) == b"x" * 10
    with pytest.raises(NotARegularFile, match="more than"):
        read_regular(small, 9)


# -- item 14: an edit that keeps the size and puts the mtime back ---------------------------

def test_issue14_item14_a_same_size_edit_with_the_mtime_restored_is_seen(tmp_path,
                                                                         monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("ZOO_CACHE_DIR", str(root))
    monkeypatch.delenv("ZOO_NO_CACHE", raising=False)
    path = big_catalog(tmp_path)
    env = {"ZOO_CACHE_DIR": str(root), "ZOO_CATALOG": str(path)}
    first = json.loads(run_zoo("info", f"team-{VICTIM}", "--json", env=env).stdout)
    old = first["description"]
    new = "".join(chr(ord(c) ^ 1) if c.isalpha() else c for c in old)   # same length
    assert new != old and len(new.encode()) == len(old.encode())
    before = path.stat()
    path.write_text(path.read_text(encoding="utf-8").replace(old, new, 1), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    # a new command ...
    again = json.loads(run_zoo("info", f"team-{VICTIM}", "--json", env=env).stdout)
    assert again["description"] == new, "the cache served the catalog as it was"
    # ... and a long-lived process (a demo server) that had read it before
    monkeypatch.setenv("ZOO_CATALOG", str(path))
    fresh_process_state(monkeypatch)
    zoo.registry.default_registry()
    path.write_text(path.read_text(encoding="utf-8").replace(new, old, 1), encoding="utf-8")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    zoo.registry.reset_default()
    assert zoo.info(f"team-{VICTIM}")["description"] == old
