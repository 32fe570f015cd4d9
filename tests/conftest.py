"""Shared fixtures: isolated zoo state per test, the example plugins installed once."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

# The suite never reads or fills the user's own caches: what a developer happens to have
# downloaded (a Hub model, torchvision weights) would change what zoo finds "on this
# machine" and so the answers tests expect. Set before huggingface_hub and torch are
# imported, since both read these variables at import; subprocesses inherit them.
_CACHES = Path(tempfile.mkdtemp(prefix="zoo-test-caches-"))
for _var, _sub in (("HF_HOME", "hf"), ("HF_HUB_CACHE", "hf/hub"), ("TORCH_HOME", "torch")):
    os.environ[_var] = str(_CACHES / _sub)
atexit.register(shutil.rmtree, _CACHES, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_zoo(tmp_path_factory, monkeypatch):
    """Each test starts with a fresh process-wide registry and its own catalog cache."""
    import zoo.registry

    # Offline switches too: one test that sets them (a script run in-process) must not turn
    # every later test offline.
    for var in ("ZOO_CATALOG", "ZOO_PLUGINS", "ZOO_DISABLE_PLUGINS", "ZOO_DEBUG",
                "ZOO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "zoo-cache"))
    zoo.registry.reset_default()
    yield
    zoo.registry.reset_default()


def run_zoo(*args: str, env: dict[str, str] | None = None, cwd: str | Path | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the CLI in a fresh interpreter, as a user would; returns the completed process."""
    full_env = {k: v for k, v in os.environ.items()
                if k not in ("ZOO_CATALOG", "ZOO_PLUGINS", "ZOO_DISABLE_PLUGINS", "ZOO_DEBUG")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=timeout)


@pytest.fixture(scope="session")
def plugin_site(tmp_path_factory) -> Path:
    """The example plugin and the broken plugins, pip-installed (built, not linked) into a
    directory that tests put on PYTHONPATH, so the main environment stays untouched."""
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--target", str(target),
         str(EXAMPLES / "zoo-plugin-example"), str(EXAMPLES / "zoo-plugin-broken")],
        check=True, capture_output=True, text=True, timeout=300)
    return target


@pytest.fixture
def with_plugins(plugin_site, monkeypatch):
    """Make the installed example plugins visible to this process (and reset zoo)."""
    import importlib

    import zoo.registry

    monkeypatch.syspath_prepend(str(plugin_site))
    importlib.invalidate_caches()
    zoo.registry.reset_default()
    yield plugin_site
    ours = ("zoo_plugin_example", "zoo_plugin_broken")
    for mod in [m for m in sys.modules if m.startswith(ours)]:
        del sys.modules[mod]
    zoo.registry.reset_default()
