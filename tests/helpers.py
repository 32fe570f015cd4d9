"""Helpers several test files share (``from helpers import ...``; tests/ is on sys.path).

Fixtures stay in conftest.py; this module holds plain functions.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
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
