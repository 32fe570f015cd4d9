"""zoo.loading.weights.save_weights: atomic writes (a failed save keeps the previous file and leaves
no temp file behind) and a plain round trip."""

from __future__ import annotations

import errno
import os
import stat

import pytest
import safetensors.torch
import torch
from helpers import snapshot, tiny

from zoo.loading.weights import load_weights, save_weights


def _enospc(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _half_written_then_enospc(model, filename, *args, **kwargs):
    """What a full disk does to safetensors: part of the file is on disk, then it fails."""
    with open(filename, "wb") as fh:
        fh.write(b"\x40\x00\x00\x00\x00\x00\x00\x00{\"partial")
    _enospc()


def _interrupted(model, filename, *args, **kwargs):
    with open(filename, "wb") as fh:
        fh.write(b"\x00" * 16)
    raise KeyboardInterrupt


# where the save fails, and what it raises
FAILURES = {
    "disk full while writing": (safetensors.torch, "save_model", _half_written_then_enospc,
                                OSError),
    "disk full at fsync": (os, "fsync", _enospc, OSError),
    "rename refused": (os, "replace", _enospc, OSError),
    "Ctrl-C while writing": (safetensors.torch, "save_model", _interrupted, KeyboardInterrupt),
}


@pytest.mark.parametrize("failure", FAILURES)
def test_failed_save_keeps_the_previous_file_and_leaves_no_temp(tmp_path, monkeypatch, failure):
    path = tmp_path / "model.safetensors"
    old = tiny(seed=0)
    save_weights(old, path)
    before = path.read_bytes()

    owner, attr, replacement, raised = FAILURES[failure]
    with monkeypatch.context() as m:
        m.setattr(owner, attr, replacement)
        with pytest.raises(raised) as e:
            save_weights(tiny(seed=1), path)
    if raised is OSError:
        assert e.value.errno == errno.ENOSPC  # the real error, not one from the clean-up

    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    assert path.read_bytes() == before
    fresh = load_weights(tiny(seed=2), path)
    for k, v in snapshot(old).items():
        assert torch.equal(fresh.state_dict()[k], v), k


def test_save_round_trips_overwrites_and_is_readable_by_everyone(tmp_path):
    path = tmp_path / "sub" / "model.safetensors"
    path.parent.mkdir()
    first, second = tiny(seed=0), tiny(seed=1)
    assert save_weights(first, path) == path
    assert save_weights(second, path) == path  # over an existing file

    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.safetensors"]
    loaded = load_weights(tiny(seed=2), path)
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(loaded(x), second(x))
        assert not torch.equal(loaded(x), first(x))
    for k, v in snapshot(second).items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_save_syncs_the_file_before_renaming_it(tmp_path, monkeypatch):
    """The data reaches the disk before the rename publishes it: after a power cut the
    name points at the whole new file or the old one, never at an empty one."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", os.fspath(src)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    path = save_weights(tiny(), tmp_path / "model.safetensors")

    kinds = [kind for kind, _ in events]
    assert "replace" in kinds and "fsync" in kinds[:kinds.index("replace")], events
    synced = {target for kind, target in events[:kinds.index("replace")] if kind == "fsync"}
    renamed = events[kinds.index("replace")][1]
    assert renamed in synced and os.path.dirname(renamed) == str(tmp_path), events
    assert path.is_file()
