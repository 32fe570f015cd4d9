"""zoo.loading.weights: safe reading of weight files, and all-or-nothing copying into a model.

Every bad checkpoint must give one WeightsError line naming the file and what differs,
and must leave the model exactly as it was.
"""

from __future__ import annotations

import os
import pickle

import pytest
import torch
from helpers import one_line, snapshot, tiny
from safetensors.torch import save_file
from torch import nn

from zoo.errors import WeightsError
from zoo.loading.weights import (
    apply_state_dict,
    load_weights,
    read_state_dict,
    save_weights,
    sha256_of,
    verify_sha256,
    weights_cache_dir,
)


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def trained(tmp_path):
    """A tiny model's weights as safetensors, and the state they hold."""
    src = tiny(seed=1)
    path = save_weights(src, tmp_path / "tiny.safetensors")
    return path, snapshot(src)


def refuse(model: nn.Module, path, match: str, **kw) -> str:
    """Loading ``path`` into ``model`` fails with ``match``; the model is unchanged."""
    before = snapshot(model)
    with pytest.raises(WeightsError, match=match) as e:
        load_weights(model, path, **kw)
    assert same(before, snapshot(model)), "a failed load changed the model"
    msg = one_line(e)
    assert str(path) in msg
    return msg


def test_safetensors_round_trip_loads_every_tensor(trained):
    path, state = trained
    model = tiny(seed=2)
    assert not same(state, snapshot(model))
    load_weights(model, path, sha256=sha256_of(path))
    assert same(state, snapshot(model))
    x = torch.ones(1, 4)
    ref = tiny(seed=1)
    assert torch.equal(model(x), ref(x))


def test_torch_checkpoint_with_state_dict_wrapper_is_unwrapped(tmp_path):
    src = tiny(seed=3)
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": src.state_dict(), "epoch": 7}, path)
    model = load_weights(tiny(seed=4), path)
    assert same(snapshot(src), snapshot(model))


def test_safetensors_without_suffix_is_recognised(trained, tmp_path):
    path, state = trained
    blob = tmp_path / "f65f5b650b3fecea80ff"  # how a Hub cache blob is named
    blob.write_bytes(path.read_bytes())
    assert same(read_state_dict(blob), state)


def test_tied_weights_are_saved_once_and_load_back(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    model[1].weight = model[0].weight
    path = save_weights(model, tmp_path / "tied.safetensors")
    assert not list(tmp_path.glob("*.tmp"))
    fresh = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 10, bias=False))
    fresh[1].weight = fresh[0].weight
    load_weights(fresh, path)
    assert torch.equal(fresh[0].weight, model[0].weight)
    assert fresh[1].weight is fresh[0].weight


def test_wrong_sha256_is_refused_before_parsing(trained):
    path, _ = trained
    msg = refuse(tiny(), path, "sha256", sha256="0" * 64)
    assert sha256_of(path)[:16] in msg and "0" * 16 in msg


def test_truncated_safetensors_is_refused(trained):
    path, _ = trained
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 10])
    refuse(tiny(), path, "truncated or corrupt")


def test_truncated_torch_checkpoint_is_refused(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save(tiny(seed=1).state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    refuse(tiny(), path, "truncated or corrupt")


def test_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    refuse(tiny(), path, "empty")


def test_bit_flip_in_header_is_refused(trained):
    path, _ = trained
    data = bytearray(path.read_bytes())
    header_len = int.from_bytes(data[:8], "little")
    # flip a bit inside the JSON header: it no longer describes the data
    i = data.index(b"shape", 8, 8 + header_len) + 1
    data[i] ^= 0x01
    path.write_bytes(bytes(data))
    refuse(tiny(), path, "truncated or corrupt")


def test_bit_flip_in_tensor_data_is_caught_by_sha256(trained):
    path, state = trained
    good = sha256_of(path)
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x10  # inside the last tensor's bytes: still parses, values differ
    path.write_bytes(bytes(data))
    assert not same(read_state_dict(path), state)  # why the hash matters
    refuse(tiny(), path, "corrupt or was replaced", sha256=good)


def test_missing_and_unexpected_keys_are_named(tmp_path):
    state = tiny(seed=1).state_dict()
    state["extra.weight"] = state.pop("2.bias")
    path = tmp_path / "keys.safetensors"
    save_file(state, path)
    msg = refuse(tiny(), path, "does not fit the model")
    assert "1 missing key(s) (2.bias)" in msg
    assert "1 unexpected key(s) (extra.weight)" in msg


def test_wrong_shapes_are_named_with_both_shapes(tmp_path):
    other = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 5))  # 5 classes, not 2
    path = tmp_path / "shapes.safetensors"
    save_weights(other, path)
    msg = refuse(tiny(), path, "shape mismatch")
    assert "2.weight: file [5, 3], model [2, 3]" in msg


def test_checkpoints_without_batchnorm_counters_load(tmp_path):
    torch.manual_seed(0)
    src = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    state = {k: v for k, v in src.state_dict().items() if "num_batches_tracked" not in k}
    path = tmp_path / "old.pt"
    torch.save(state, path)  # what torch < 0.4.1 wrote
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    load_weights(model, path)
    assert torch.equal(model[0].weight, src[0].weight)
    assert int(model[1].num_batches_tracked) == 0


class _Payload:
    """Unpickling this would create a marker file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_that_would_run_code_is_refused_and_never_run(tmp_path, writer):
    marker = tmp_path / "PWNED"
    state = dict(tiny().state_dict())
    state["0.weight"] = _Payload(marker)
    path = tmp_path / "evil.pt"
    if writer == "torch.save":
        torch.save(state, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump(state, fh)
    msg = refuse(tiny(), path, "refused to unpickle")
    assert "no code is run" in msg
    assert not marker.exists()


@pytest.mark.parametrize("obj, what", [
    (torch.zeros(3), "holds a Tensor"),
    ([torch.zeros(3)], "holds a list"),
    ({"0.weight": 3, "0.bias": "x"}, "not tensors"),
    ({1: torch.zeros(3)}, "holds a dict"),
])
def test_pt_that_is_not_a_state_dict_is_refused(tmp_path, obj, what):
    path = tmp_path / "odd.pt"
    torch.save(obj, path)
    refuse(tiny(), path, what)


def test_apply_state_dict_refuses_non_tensor_values():
    model = tiny()
    state = dict(model.state_dict())
    state["0.bias"] = [0.0, 0.0, 0.0]
    with pytest.raises(WeightsError, match="not tensor"):
        apply_state_dict(model, state, origin="memory")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(WeightsError, match="no such weights file") as e:
        read_state_dict(tmp_path / "nope.safetensors")
    assert "nope.safetensors" in one_line(e)


def test_verify_sha256_skips_when_unknown_and_checks_case_insensitively(trained):
    path, _ = trained
    verify_sha256(path, None)
    verify_sha256(path, sha256_of(path).upper())


def test_weights_cache_dir_follows_zoo_home(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zh"))
    assert weights_cache_dir() == tmp_path / "zh" / "weights"
    monkeypatch.delenv("ZOO_HOME")
    monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path / "cc"))
    assert weights_cache_dir() == tmp_path / "cc" / "weights"
