"""Helpers several test files share (``from helpers import ...``; tests/ is on sys.path).

Fixtures stay in conftest.py; this module holds plain functions.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@cache
def load_script(name: str) -> ModuleType:
    """``scripts/NAME.py`` as a module (scripts are not a package), loaded once per run."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tiny(seed: int = 0):
    """A 4 -> 3 -> 2 MLP with seeded weights: a model small enough to save and load often."""
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))


def snapshot(model) -> dict:
    """A copy of ``model``'s state dict that later changes to the model do not touch."""
    return {k: v.clone() for k, v in model.state_dict().items()}


def one_line(e: pytest.ExceptionInfo) -> str:
    """The raised error's message, asserted to be one line (zoo's errors are)."""
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def refused(res, *names: str, after_settings: bool = False) -> str:
    """A CLI result (typer's CliRunner) that exited 2 with one ``Error:`` line on stderr
    naming each of ``names``, and no traceback; returns the line. ``after_settings``: the
    line ``zoo finetune`` prints with its chosen settings may come first."""
    lines = res.stderr.strip().splitlines()
    if after_settings:
        lines = [ln for ln in lines if not ln.startswith("settings: ")]
    err = "\n".join(lines)
    assert res.exit_code == 2, (res.exit_code, err, repr(res.exception))
    assert len(lines) == 1 and err.startswith("Error: "), err
    assert "Traceback" not in res.output
    for n in names:
        assert n in err, (n, err)
    return err


def isolate_caches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every download cache (zoo's, torch.hub's, huggingface_hub's) inside ``tmp_path``, and
    no offline switch on: a test that wants one sets it. For an autouse fixture of a file
    whose tests fetch or seed weights."""
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo-home"))
    monkeypatch.setenv("ZOO_NO_CACHE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
    for var in ("ZOO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(var, raising=False)


def step_losses(optimizer, loss) -> tuple[float, float]:
    """``loss()`` (a closure over one fixed batch) before and after one ``optimizer`` step."""
    import torch

    before = loss()
    optimizer.zero_grad()
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss()
    return before.item(), after.item()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen, timeout: float = 20) -> int:
    """End a server started with Popen: SIGTERM, then SIGKILL if it has not exited within
    ``timeout`` seconds; returns its exit code. Safe to call on one that already exited."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait()


@contextlib.contextmanager
def stopped_after(proc: subprocess.Popen) -> Iterator[subprocess.Popen]:
    """``with stopped_after(Popen(...)) as proc:`` the process is :func:`stop`-ped when the
    block ends, however it ends (a failed assertion, a skip, a timeout)."""
    try:
        yield proc
    finally:
        stop(proc)


def child_env() -> dict[str, str]:
    """The environment for a ``python -m zoo`` child: this one without ``ZOO_*`` settings
    (a developer's own must not leak into a test), on one OpenMP thread."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZOO_")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def finetune_command(out, run: dict) -> list[str]:
    """``python -m zoo finetune lenet5 --data digits --out OUT`` with ``run``, keyword
    arguments of ``zoo.finetune.finetune`` (epochs, limit, val_limit, batch_size, lr, seed),
    as the CLI flags of the same names, so one ``run`` drives both the API and the CLI."""
    flags = [arg for key, value in run.items()
             for arg in (f"--{key.replace('_', '-')}", str(value))]
    return [sys.executable, "-m", "zoo", "finetune", "lenet5", "--data", "digits",
            "--out", str(out), *flags]
