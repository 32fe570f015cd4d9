"""Hardening of fine-tuning: a run that cannot fit on disk or write its output directory
fails before training; a disk that fills (or a file-size limit, or Ctrl-C) mid-run leaves
the last good checkpoint intact, no half-written file, and ``--resume`` finishes the run
at the uninterrupted run's metrics.

Everything runs on LeNet-5 and a few hundred digits. Failures are injected in-process
(a write that raises ENOSPC after N calls) and, for realism, through the real CLI in a
subprocess: SIGINT, and RLIMIT_FSIZE lowered on the running process (a real EFBIG from
the kernel, no root needed).
"""

from __future__ import annotations

import errno
import json
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest
from helpers import child_env, finetune_command, stopped_after
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

torch = pytest.importorskip("torch")

from zoo.cli import app  # noqa: E402
from zoo.errors import UsageError  # noqa: E402
from zoo.finetune import outputs  # noqa: E402
from zoo.finetune.outputs import (  # noqa: E402
    OutputEstimate,
    OutputWriteError,
    TrainingInterrupted,
)

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

TINY = dict(epochs=3, limit=96, val_limit=64, batch_size=32, lr=3e-3, seed=1, progress=False)
# The subprocess runs: long enough (a few seconds of training) to be caught mid-run.
RUN = dict(epochs=5, limit=200, val_limit=100, batch_size=32, lr=3e-3, seed=3)


def _ft(out, **kw):
    from zoo.finetune import finetune

    return finetune("lenet5", "digits", out=out, **{**TINY, **kw})


def _files(root: Path) -> dict[str, int]:
    return {str(f.relative_to(root)): f.stat().st_size for f in root.rglob("*") if f.is_file()}


def _leftovers(root: Path) -> list[str]:
    """Temp files and scratch folders a failed write must not leave behind."""
    return [str(p.relative_to(root)) for p in root.rglob("*")
            if p.name.endswith(".tmp") or "model-tmp" in p.name or p.name.startswith(".adapter")]


def _same_weights(a, b, atol=1e-5):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.allclose(sa[k], sb[k], atol=atol), k


@pytest.fixture(scope="module")
def tiny_reference(tmp_path_factory):
    """The uninterrupted TINY run that interrupted and failed runs must end up matching."""
    return _ft(tmp_path_factory.mktemp("ref") / "tiny")


# -- 1. the estimate and the pre-flight check -------------------------------------------------

@pytest.mark.parametrize("kw", [
    {},
    {"technique": "feature-extract"},
    {"technique": "freeze", "freeze_groups": 2},
    {"optimizer": "sgd"},
    {"early_stopping": 5},
    {"technique": "lora"},
], ids=["full", "feature-extract", "freeze", "sgd", "early-stopping", "lora"])
def test_the_estimate_covers_every_file_a_tiny_run_writes_and_is_not_absurd(tmp_path, kw):
    out = tmp_path / "run"
    result = _ft(out, epochs=2, limit=64, **kw)
    est = result.extra["output_bytes"]
    files = _files(out)
    actual = sum(files.values())
    ckpt = files["checkpoints/last.pt"]
    assert est["checkpoint"] >= ckpt and est["checkpoint"] < 1.2 * ckpt + 32_000, (est, files)
    assert est["weights"] >= files["model.safetensors"] < 1.1 * est["weights"]
    if kw.get("technique") == "lora":
        adapter = sum(v for k, v in files.items() if k.startswith("adapter/"))
        assert est["adapter"] >= adapter > 0
    assert est["final"] >= actual, (est, files)
    # The peak counts the checkpoint twice (old and new during a replace).
    assert est["peak"] >= max(actual, 2 * ckpt)
    assert est["peak"] < 3 * actual + 256_000, (est, files)


def test_lighter_techniques_are_estimated_lighter():
    import zoo
    from zoo.finetune.outputs import estimate_outputs

    net = zoo.get("lenet5")
    full = estimate_outputs(net)
    sgd = estimate_outputs(net, optimizer="sgd")
    early = estimate_outputs(net, early_stopping=True)
    for p in net.parameters():
        p.requires_grad_(False)
    net.fc.weight.requires_grad_(True)
    head_only = estimate_outputs(net)
    params = sum(p.numel() * 4 for p in net.parameters())
    assert full.weights >= params
    assert full.checkpoint >= 3 * params             # weights + AdamW's two moments
    assert sgd.checkpoint < full.checkpoint < early.checkpoint
    assert head_only.checkpoint < 1.1 * params + 32_000 < full.checkpoint
    assert head_only.weights == full.weights         # the final model is whole either way


def test_human_bytes():
    h = outputs.human_bytes
    assert [h(0), h(1023), h(1536), h(5 * 2**20), h(3.25 * 2**30), h(2**50)] == [
        "0 B", "1023 B", "1.5 KiB", "5.0 MiB", "3.2 GiB", "1024.0 TiB"]


def test_a_run_that_does_not_fit_is_refused_before_training_with_one_line(tmp_path,
                                                                          monkeypatch):
    steps = []
    est = outputs.estimate_outputs(__import__("zoo").get("lenet5"), epochs=TINY["epochs"])
    # Room for the weights and the reserve, not for the checkpoints: the early check
    # (before the data loads) passes, the full one (before the first step) refuses.
    free = outputs.margin_for(est.peak) + est.weights
    monkeypatch.setattr(outputs, "disk_free", lambda path: free)
    out = tmp_path / "run"
    with pytest.raises(UsageError) as info:
        _ft(out, on_step=lambda **k: steps.append(k))
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{out}: not enough disk space: this run's files (checkpoint ")
    assert f"need about {outputs.human_bytes(est.peak)}" in msg
    assert f"but {out} has {outputs.human_bytes(free)} free" in msg
    assert "choose another --out" in msg and "lora or feature-extract" in msg
    assert steps == []
    assert not (out / "checkpoints").exists() and not (out / "model.safetensors").exists()


def test_the_weights_check_comes_before_the_data_loads(tmp_path, monkeypatch):
    import zoo.finetune.data

    monkeypatch.setattr(outputs, "disk_free", lambda path: 10_000)
    monkeypatch.setattr(zoo.finetune.data, "prepare",
                        lambda *a, **k: pytest.fail("the data was loaded before the check"))
    with pytest.raises(UsageError, match=r"the fine-tuned weights alone need about 2\d\d\.\d "
                                         r"KiB .* has 9\.8 KiB free; free 16\.\d MiB there"):
        _ft(tmp_path / "run")


def test_the_cli_refuses_a_run_that_does_not_fit_with_exit_2_and_one_line(tmp_path,
                                                                          monkeypatch):
    monkeypatch.setattr(outputs, "disk_free", lambda path: 5 * 2**20)
    res = CliRunner().invoke(app, ["finetune", "lenet5", "--data", "digits", "--out",
                                   str(tmp_path / "run"), "--epochs", "1", "--limit", "32"])
    assert res.exit_code == 2, res.output
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "not enough disk" in lines[0]
    assert "Traceback" not in res.output and res.stdout == ""


def test_resuming_counts_the_checkpoint_already_on_disk(tmp_path):
    from zoo.finetune.api import check_run_space

    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.pt").write_bytes(b"x" * 1_000_000)
    est = OutputEstimate(checkpoint=1_000_000, weights=300_000, metadata=100_000)
    fits_resumed = outputs.margin_for(1_000_000) + 1_000_000
    check_run_space(out, est, resume=True, free=fits_resumed)
    with pytest.raises(UsageError, match="need about 1.9 MiB"):
        check_run_space(out, est, resume=False, free=fits_resumed)
    with pytest.raises(UsageError, match="need about 976.6 KiB"):
        check_run_space(out, est, resume=True, free=fits_resumed - 1)


# -- 2. a disk that fills during the run --------------------------------------------------------

def _fail_writes(monkeypatch, *, name: str, nth_file: int = 1, after_calls: int = 2,
                 exc=None):
    """Make the ``nth_file``-th atomic write of a file called ``name`` raise (ENOSPC by
    default) on its ``after_calls``-th write call: a disk that fills mid-file."""
    real = outputs._Sink.write
    # The sinks themselves, not their ids: a finished sink's id can be reused by the next
    # one, which then counted as the same file (the 2nd checkpoint passed, the 3rd failed).
    opened: list = []
    calls: dict[int, int] = {}

    def write(self, data):
        if self.path.name == name:
            nth = next((i for i, sink in enumerate(opened) if sink is self), None)
            if nth is None:
                nth = len(opened)
                opened.append(self)
            calls[nth] = calls.get(nth, 0) + 1
            if nth == nth_file - 1 and calls[nth] >= after_calls:
                failure = exc or OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                self.error = self.error or failure
                raise failure
        return real(self, data)

    monkeypatch.setattr(outputs._Sink, "write", write)


@pytest.mark.parametrize("target, nth, kept", [
    ("last.pt", 2, r"checkpoints/last.pt still holds epoch 1"),
    ("last.pt", 1, r"no checkpoint was written yet"),
    ("metrics.json", 1, r"checkpoints/last.pt holds the last epoch \(3\)"),
    ("curve.png", 1, r"checkpoints/last.pt holds the last epoch \(3\)"),
])
def test_a_disk_that_fills_mid_run_keeps_the_last_checkpoint_and_resume_finishes(
        tmp_path, monkeypatch, tiny_reference, target, nth, kept):
    out = tmp_path / "run"
    # A checkpoint fails part-way (its 2nd write call: a partial temp file exists); the
    # small files on their first write.
    _fail_writes(monkeypatch, name=target, nth_file=nth,
                 after_calls=2 if target == "last.pt" else 1)
    with pytest.raises(OutputWriteError) as info:
        _ft(out)
    msg = str(info.value)
    assert "\n" not in msg and info.value.exit_code == 1
    assert msg.startswith(f"{out}/") and f"{target}: could not write (No space left on " \
        "device); " in msg
    assert __import__("re").search(kept, msg), msg
    assert msg.endswith("Free disk space, then rerun the same command with --resume")
    assert _leftovers(out) == []
    ckpt = out / "checkpoints" / "last.pt"
    if nth == 2 or target != "last.pt":
        done = torch.load(ckpt, weights_only=True)["epoch"]
        assert done == (nth - 1 if target == "last.pt" else TINY["epochs"])
    else:
        assert not ckpt.exists()
    monkeypatch.undo()
    torch.set_num_threads(1)
    resumed = _ft(out, resume=True)
    assert resumed.metrics == pytest.approx(tiny_reference.metrics, abs=1e-6)
    _same_weights(resumed.model, tiny_reference.model)
    assert {"model.safetensors", "config.json", "metrics.json", "curve.png"} <= set(_files(out))
    assert _leftovers(out) == []


def test_a_full_disk_while_saving_the_weights_leaves_no_scratch_and_resume_finishes(
        tmp_path, monkeypatch, tiny_reference):
    import safetensors.torch
    from safetensors import SafetensorError

    def full(*a, **k):
        raise SafetensorError("Error while serializing: I/O error: No space left on device "
                              "(os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_model", full)
    out = tmp_path / "run"
    with pytest.raises(OutputWriteError, match=r"model.safetensors: could not write \(No "
                                               r"space left on device\); .*last epoch \(3\)"):
        _ft(out)
    assert _leftovers(out) == [] and not (out / "config.json").exists()
    monkeypatch.undo()
    resumed = _ft(out, resume=True)
    assert resumed.metrics == pytest.approx(tiny_reference.metrics, abs=1e-6)
    assert __import__("zoo").get(str(out)) is not None


def test_ctrl_c_in_process_says_how_to_resume_and_resume_matches(tmp_path, tiny_reference):
    def stop_at(at_epoch):
        def stop(*, epoch, step, model):
            if epoch == at_epoch and step == 2:
                raise KeyboardInterrupt
        return stop

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt) as info:
        _ft(out, on_step=stop_at(2))
    assert isinstance(info.value, TrainingInterrupted)
    assert str(info.value) == (f"interrupted in epoch 2; {out}/checkpoints/last.pt holds "
                               "epoch 1: rerun the same command with --resume to continue "
                               "from it")
    # Interrupted again after resuming: the message counts from the resumed checkpoint.
    with pytest.raises(TrainingInterrupted, match="in epoch 3; .* holds epoch 2: rerun"):
        _ft(out, on_step=stop_at(3), resume=True)
    resumed = _ft(out, resume=True)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    assert resumed.metrics == pytest.approx(tiny_reference.metrics, abs=1e-6)


def test_ctrl_c_during_a_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _fail_writes(monkeypatch, name="last.pt", nth_file=2, after_calls=3,
                 exc=KeyboardInterrupt())
    with pytest.raises(TrainingInterrupted, match="holds epoch 1: rerun"):
        _ft(out)
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"] == 1
    assert _leftovers(out) == []


def test_temp_files_of_a_killed_run_are_removed_on_resume(tmp_path):
    out = tmp_path / "run"
    _ft(out, epochs=1, limit=32)
    dead = int(Path("/proc/sys/kernel/pid_max").read_text()) + 1  # no process has it
    stale = [out / "checkpoints" / f".last.pt.{dead}.tmp", out / f".metrics.json.{dead}.tmp"]
    for f in stale:
        f.write_bytes(b"half")
    (out / "..model-tmp.abc").mkdir()
    (out / "..model-tmp.abc" / "model.safetensors").write_bytes(b"half")
    _ft(out, epochs=1, limit=32, resume=True)
    assert _leftovers(out) == []


@settings(max_examples=40, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=6),
       fail_at=st.one_of(st.none(), st.integers(0, 6)),
       kind=st.sampled_from(["enospc", "efbig", "interrupt", "bug"]))
def test_atomic_write_leaves_the_old_file_or_the_new_one_never_a_mix(tmp_path, chunks,
                                                                     fail_at, kind):
    path = tmp_path / "file.bin"
    path.write_bytes(b"previous")
    exc = {"enospc": OSError(errno.ENOSPC, "No space left on device"),
           "efbig": OSError(errno.EFBIG, "File too large"),
           "interrupt": KeyboardInterrupt(), "bug": ValueError("not a write error")}[kind]

    def write(f):
        for i, c in enumerate(chunks):
            if i == fail_at:
                raise exc
            f.write(c)

    failed = fail_at is not None and fail_at < len(chunks)
    if failed:
        with pytest.raises(type(exc)):
            outputs.atomic_write(path, write)
        assert path.read_bytes() == b"previous"
    else:
        outputs.atomic_write(path, write)
        assert path.read_bytes() == b"".join(chunks)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.bin"]


def test_a_torch_save_that_fails_mid_write_reports_the_os_error(tmp_path, monkeypatch):
    """torch.save hides a failed write behind RuntimeError('unexpected pos'); the sink
    brings the OSError back."""
    _fail_writes(monkeypatch, name="x.pt", after_calls=2)
    with pytest.raises(OSError) as info:
        outputs.atomic_write(tmp_path / "x.pt",
                             lambda f: torch.save({"w": torch.zeros(50_000)}, f))
    assert info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


# -- 3. unwritable output directories -----------------------------------------------------------

def _refused(tmp_path, out, match):
    t0 = time.perf_counter()
    with pytest.raises(UsageError, match=match) as info:
        _ft(out)
    assert "\n" not in str(info.value)
    assert time.perf_counter() - t0 < 5     # refused before any model or data loads
    res = CliRunner().invoke(app, ["finetune", "lenet5", "--data", "digits", "--out",
                                   str(out), "--epochs", "1"])
    assert res.exit_code == 2 and res.stdout == "" and "Traceback" not in res.output
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_out_under_a_read_only_directory_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        try:
            (ro / "probe").write_bytes(b"")
        except PermissionError:
            pass
        else:
            pytest.skip("running as root: chmod does not stop writes (see the /proc and "
                        "file-parent variants)")
        _refused(tmp_path, ro / "run", r"ro/run: cannot write the output directory in "
                                       r".*/ro \(Permission denied\); choose another --out")
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o700)


def test_out_whose_parent_is_a_file_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    _refused(tmp_path, tmp_path / "notes.txt" / "sub" / "run",
             r"notes.txt/sub/run: .*notes.txt is a file, not a directory; choose another --out")


def test_out_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "run").write_text("x")
    _refused(tmp_path, tmp_path / "run", r"run: is a file, not a directory; choose another")
    assert (tmp_path / "run").read_text() == "x"


def test_out_on_a_file_system_that_cannot_hold_it_is_refused(tmp_path):
    _refused(tmp_path, Path("/proc/zoo-nope/run"), r"^/proc/zoo-nope/run: cannot write the "
                                                   r"output directory in /proc \(")


def test_missing_parents_of_out_are_created(tmp_path):
    out = tmp_path / "a" / "b" / "run"
    _ft(out, epochs=1, limit=32)
    assert (out / "model.safetensors").is_file() and (out / "checkpoints" / "last.pt").is_file()


def test_a_refused_run_removes_the_parents_it_created(tmp_path):
    with pytest.raises(UsageError, match="nosuchdata"):
        from zoo.finetune import finetune

        finetune("lenet5", "nosuchdata", out=tmp_path / "a" / "b" / "run", epochs=1)
    assert list(tmp_path.iterdir()) == []


def test_an_earlier_run_is_not_overwritten_without_resume(tmp_path):
    out = tmp_path / "run"
    _ft(out, epochs=1, limit=32)
    before = _files(out)
    res = CliRunner().invoke(app, ["finetune", "lenet5", "--data", "digits", "--out",
                                   str(out), "--epochs", "1", "--limit", "32"])
    assert res.exit_code == 2 and "--resume" in res.stderr
    assert _files(out) == before


# -- 4. the real CLI: Ctrl-C and a file-size limit mid-run ----------------------------------------

def _child_signals():
    # A shell that starts jobs in the background hands them SIGINT ignored, and Python
    # then installs no KeyboardInterrupt handler: restore the default so Ctrl-C works.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    # Over RLIMIT_FSIZE the kernel sends SIGXFSZ (fatal by default); ignored, the write
    # fails with EFBIG instead (Python ignores it too; say so explicitly).
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _start_and_wait_for_a_checkpoint(out):
    ckpt = out / "checkpoints" / "last.pt"
    proc = subprocess.Popen(finetune_command(out, RUN), env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_child_signals)
    deadline = time.monotonic() + 240
    while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    if proc.poll() is not None:
        pytest.fail(f"training ended before it could be interrupted: {proc.stderr.read()}")
    return proc


def _resume_and_compare(out, reference):
    resumed = subprocess.run([*finetune_command(out, RUN), "--resume", "--json"],
                             env=child_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "epoch 1:" not in resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["accuracy"] == pytest.approx(reference.metrics["accuracy"], abs=1e-6)
    assert summary["macro_f1"] == pytest.approx(reference.metrics["macro_f1"], abs=1e-6)
    history = json.loads((out / "metrics.json").read_text())["epochs"]
    assert [h["epoch"] for h in history] == list(range(1, RUN["epochs"] + 1))
    assert _leftovers(out) == []


@pytest.fixture(scope="module")
def cli_reference(tmp_path_factory):
    from zoo.finetune import finetune

    return finetune("lenet5", "digits", out=tmp_path_factory.mktemp("ref") / "cli",
                    progress=False, **RUN)


def test_ctrl_c_in_the_cli_says_how_to_resume_and_resume_matches(tmp_path, cli_reference):
    out = tmp_path / "run"
    with stopped_after(_start_and_wait_for_a_checkpoint(out)) as proc:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("Interrupted: interrupted"), err
    assert f"{out}/checkpoints/last.pt" in last and "--resume" in last
    done = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"]
    assert 1 <= done < RUN["epochs"] and f"holds epoch {done}:" in last
    assert _leftovers(out) == []
    _resume_and_compare(out, cli_reference)


def test_a_file_size_limit_hit_mid_run_fails_in_one_line_and_resume_matches(tmp_path,
                                                                            cli_reference):
    if not hasattr(resource, "prlimit"):
        pytest.skip("resource.prlimit is Linux-only")
    out = tmp_path / "run"
    with stopped_after(_start_and_wait_for_a_checkpoint(out)) as proc:
        # Lower the running trainer's file-size limit below a checkpoint's size: its next
        # checkpoint write gets a real EFBIG from the kernel, as a full disk gives ENOSPC.
        try:
            resource.prlimit(proc.pid, resource.RLIMIT_FSIZE, (4096, 4096))
        except (PermissionError, ProcessLookupError) as e:
            pytest.skip(f"cannot lower the child's RLIMIT_FSIZE: {e}")
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1, err
    assert f"Error: {out}/" in errors[0]
    assert "could not write (File too large); " in errors[0]
    assert errors[0].endswith("Raise the file-size limit (ulimit -f), then rerun the same "
                              "command with --resume")
    done = torch.load(out / "checkpoints" / "last.pt", weights_only=True)["epoch"]
    assert 1 <= done <= RUN["epochs"]
    assert _leftovers(out) == []
    _resume_and_compare(out, cli_reference)


@pytest.mark.parametrize(("last", "kind", "code", "text"), [
    ("zoo.finetune.outputs.OutputWriteError: run/last.pt: could not write (No space left on "
     "device); rerun with --resume", "OutputWriteError", 1, "rerun with --resume"),
    ("zoo.errors.UsageError: unknown metric 'acc'; use accuracy", "UsageError", 2,
     "unknown metric"),
    ("zoo.errors.UnknownModelError: unknown model 'x'", "UsageError", 2, "unknown model"),
    ("RuntimeError: CUDA out of memory", "ZooError", 1, "rerun with --nproc 1"),
])
def test_a_worker_process_error_comes_back_as_the_same_kind_of_one_line_error(
        last, kind, code, text):
    from zoo.finetune.distributed import worker_error

    err = worker_error(last)
    assert type(err).__name__ == kind and err.exit_code == code
    assert text in str(err) and "\n" not in str(err)
