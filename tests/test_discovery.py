"""Plugin discovery as a user meets it: cached between commands yet never stale, a plugin
that hung is waited for once, and the plugin variables take distribution names.

Plugins here are what pip leaves in a folder on ``PYTHONPATH``: a module and a
``.dist-info`` with ``METADATA`` and ``entry_points.txt`` (one test runs pip itself).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import run_zoo
from zoo.registry import discovery

HOOK = '''
from zoo import hookimpl

@hookimpl
def zoo_register_models(registry):
    registry.add_model(name="{name}-m0", family="cnn", task="image-classification",
                       builder="zoo.plugins.cnn.lenet:lenet5")
'''


def add_dist(site: Path, dist: str, plugins: dict[str, str], version: str = "0.1") -> None:
    """A distribution ``dist`` whose entry points are ``plugins`` (name -> module source)."""
    site.mkdir(parents=True, exist_ok=True)
    eps = []
    for name, source in plugins.items():
        (site / f"zp_{name}.py").write_text(source.replace("{name}", name))
        eps.append(f"{name} = zp_{name}")
    meta = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    meta.mkdir()
    (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (meta / "entry_points.txt").write_text("[zoo]\n" + "\n".join(eps) + "\n")


def backdate(path: Path) -> None:
    """Make a folder look untouched for a minute, so a cached scan of it is trusted (a
    folder changed in the last seconds is always scanned again: see discovery._fresh)."""
    old = time.time() - 60
    os.utime(path, (old, old))


def env_for(tmp_path: Path, site: Path, **extra: str) -> dict[str, str]:
    return {"PYTHONPATH": str(site), "ZOO_CACHE_DIR": str(tmp_path / "cache"), **extra}


def plugin_names(env: dict[str, str]) -> dict[str, dict]:
    proc = run_zoo("plugins", "--json", env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return {p["name"]: p for p in json.loads(proc.stdout)}


SCANNED = ("import os, sys, io, contextlib\nsys.argv = ['zoo', 'list']\n"
           "from zoo.registry import discovery\n"
           "scans, scan = [], discovery._scan\n"
           "discovery._scan = lambda entry, group: scans.append(entry) or scan(entry, group)\n"
           "from zoo.cli import main\n"
           "with contextlib.redirect_stdout(io.StringIO()):\n    main()\n"
           "print(os.environ['PYTHONPATH'] in scans, 'importlib.metadata' in sys.modules)")


def scanned(env: dict[str, str]) -> bool:
    """Whether a ``zoo list`` with ``env`` read the distributions in the PYTHONPATH folder
    again (and never importlib.metadata: plain folders are read without it)."""
    proc = subprocess.run([sys.executable, "-c", SCANNED], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    again, imported = proc.stdout.split()
    assert imported == "False", "importlib.metadata was imported"
    return again == "True"


def test_a_plugin_installed_or_removed_is_seen_by_the_next_command(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    env = env_for(tmp_path, site)
    backdate(site)
    assert scanned(env)                       # the first command scans ...
    assert not scanned(env)                   # ... the next ones do not
    assert "fresh" not in plugin_names(env)
    add_dist(site, "zp-fresh", {"fresh": HOOK})
    infos = plugin_names(env)
    assert infos["fresh"]["status"] == "ok" and infos["fresh"]["models"] == ["fresh-m0"]
    backdate(site)
    assert scanned(env) and not scanned(env)  # cached again, with the plugin
    for p in [*site.glob("zp_fresh*"), *site.glob("zp_fresh*/*")][::-1]:
        p.rmdir() if p.is_dir() else p.unlink()
    assert "fresh" not in plugin_names(env)


def test_an_entry_point_edited_in_place_is_seen(tmp_path):
    """An editable install rewrites entry_points.txt where it is (the folder is unchanged)."""
    site = tmp_path / "site"
    add_dist(site, "zp-edited", {"before": HOOK})
    (site / "zp_after.py").write_text(HOOK.replace("{name}", "after"))
    backdate(site)
    env = env_for(tmp_path, site)
    assert "before" in plugin_names(env)
    ep_file = next(site.glob("zp_edited-*.dist-info")) / "entry_points.txt"
    ep_file.write_text("[zoo]\nafter = zp_after\n")
    infos = plugin_names(env)
    assert "after" in infos and "before" not in infos


def test_what_pip_installed_into_a_folder_is_seen_by_the_next_command(tmp_path, plugin_site):
    """pip --target builds in a scratch folder and moves the result in: so does this test,
    with what pip built for the example plugin (the session's plugin_site)."""
    import shutil

    site = tmp_path / "site"
    site.mkdir()
    backdate(site)
    env = env_for(tmp_path, site)
    assert "example" not in plugin_names(env)
    assert not scanned(env)
    for item in plugin_site.iterdir():
        if "example" in item.name:
            shutil.copytree(item, tmp_path / "scratch" / item.name)
            os.replace(tmp_path / "scratch" / item.name, site / item.name)
    infos = plugin_names(env)
    assert infos["example"]["status"] == "ok"
    assert infos["example"]["distribution"] == "zoo-plugin-example"


def test_cached_discovery_finds_what_importlib_finds(tmp_path, monkeypatch, plugin_site):
    from importlib.metadata import entry_points

    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.syspath_prepend(str(plugin_site))
    want = sorted((ep.name, ep.value, ep.dist.name) for ep in entry_points(group="zoo"))
    assert want, "the example plugins should be found"
    for _ in range(2):                        # scanned, then from the cache
        got = sorted((ep.name, ep.value, ep.dist) for ep in discovery.entry_points("zoo"))
        assert got == want


SLEEPER = ("import os, time\n"
           "with open(os.environ['ZP_CANARY'], 'a') as fh:\n    fh.write('imported\\n')\n"
           "time.sleep(60)\n") + HOOK


def test_a_plugin_that_hung_is_waited_for_once_until_it_changes(tmp_path):
    site = tmp_path / "site"
    add_dist(site, "zp-napper", {"napper": SLEEPER, "awake": HOOK})
    canary = tmp_path / "imports.log"
    env = env_for(tmp_path, site, ZOO_PLUGIN_IMPORT_TIMEOUT="1", ZP_CANARY=str(canary))

    def run() -> tuple[float, str]:
        t = time.perf_counter()
        proc = run_zoo("list", "--json", env=env, timeout=120)
        took = time.perf_counter() - t
        assert proc.returncode == 0, proc.stderr
        assert "awake-m0" in {m["name"] for m in json.loads(proc.stdout)}
        return took, proc.stderr

    def imports() -> int:
        return canary.read_text().count("imported") if canary.exists() else 0

    took, err = run()
    assert took >= 1 and imports() == 1
    assert "plugin 'napper': did not finish importing in 1 s" in err
    took, err = run()                         # remembered: not imported, not waited for
    assert imports() == 1, "the hung plugin was imported again"
    lines = [ln for ln in err.splitlines() if "napper" in ln]
    assert len(lines) == 1 and "in an earlier command; skipped until it changes" in lines[0]
    assert "from distribution zp-napper 0.1; pip uninstall zp-napper" in lines[0]
    # its file changes: tried again (and it hangs again)
    module = site / "zp_napper.py"
    module.write_text(module.read_text() + "\n# edited\n")
    run()
    assert imports() == 2
    run()
    assert imports() == 2
    # a longer time limit than it was given: tried again
    env["ZOO_PLUGIN_IMPORT_TIMEOUT"] = "1.5"
    took, err = run()
    assert imports() == 3 and took >= 1.5
    assert "did not finish importing in 1.5 s;" in err


def test_plugin_variables_take_distribution_names(tmp_path):
    site = tmp_path / "site"
    add_dist(site, "zp-twins", {"twin_a": HOOK, "twin_b": HOOK})
    add_dist(site, "zp-single", {"single": HOOK})
    backdate(site)
    env = env_for(tmp_path, site)
    infos = plugin_names({**env, "ZOO_DISABLE_PLUGINS": "zp_twins"})    # either spelling
    assert infos["twin_a"]["status"] == infos["twin_b"]["status"] == "disabled"
    assert infos["single"]["status"] == "ok"
    infos = plugin_names({**env, "ZOO_PLUGINS": "zp-twins"})
    assert infos["twin_a"]["status"] == infos["twin_b"]["status"] == "ok"
    assert infos["single"]["status"] == "disabled"
    proc = run_zoo("list", env={**env, "ZOO_DISABLE_PLUGINS": "twins"}, timeout=120)
    assert proc.returncode == 0
    lines = [ln for ln in proc.stderr.splitlines() if "twins" in ln]
    assert lines == ["zoo: warning: ZOO_DISABLE_PLUGINS names 'twins', which is no installed "
                     "plugin or plugin distribution; plugins: cnn, demos, gan, gnn, loaders, "
                     "rnn, single, tasks, transformer, twin_a, twin_b"]


def test_warnings_about_a_plugin_name_its_distribution(tmp_path):
    site = tmp_path / "site"
    add_dist(site, "zp-broken", {"broken": "import zp_dependency_that_is_missing\n"}, "2.0")
    proc = run_zoo("list", env=env_for(tmp_path, site), timeout=120)
    assert proc.returncode == 0
    [line] = [ln for ln in proc.stderr.splitlines() if "broken" in ln]
    assert line.startswith("zoo: warning: plugin 'broken': failed to import: "
                           "ModuleNotFoundError")
    assert line.endswith("(from distribution zp-broken 2.0; pip uninstall zp-broken "
                         "removes it)")
