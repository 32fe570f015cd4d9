"""Checkpoints: a killed run resumes to the same result; a diverging run keeps its last good
checkpoint; two data-parallel processes match one."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from helpers import child_env, finetune_command, stopped_after

torch = pytest.importorskip("torch")

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

RUN = dict(epochs=6, limit=300, val_limit=200, batch_size=32, lr=3e-3, seed=3)


def test_resume_after_a_kill_ends_at_the_uninterrupted_runs_metrics(tmp_path):
    import zoo
    from zoo.finetune import finetune

    reference = finetune("lenet5", "digits", out=tmp_path / "ref", progress=False, **RUN)

    out = tmp_path / "killed"
    ckpt = out / "checkpoints" / "last.pt"
    proc = subprocess.Popen(finetune_command(out, RUN), env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with stopped_after(proc):
        deadline = time.monotonic() + 240
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "training finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    done = torch.load(ckpt, weights_only=True)["epoch"]
    assert 1 <= done < RUN["epochs"]
    assert not (out / "config.json").exists()  # killed before the end

    resumed = subprocess.run([*finetune_command(out, RUN), "--resume", "--json"],
                             env=child_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert f"epoch {done + 1}:" in resumed.stderr and "epoch 1:" not in resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["accuracy"] == pytest.approx(reference.metrics["accuracy"], abs=1e-6)
    assert summary["macro_f1"] == pytest.approx(reference.metrics["macro_f1"], abs=1e-6)
    history = json.loads((out / "metrics.json").read_text())["epochs"]
    assert [h["epoch"] for h in history] == list(range(1, RUN["epochs"] + 1))
    a, b = zoo.get(str(out)).state_dict(), reference.model.state_dict()
    for k in b:
        assert torch.allclose(a[k], b[k], atol=1e-5), k


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(tmp_path):
    from zoo.finetune import finetune
    from zoo.finetune.loop import TrainingDiverged

    def poison(*, epoch, step, model):
        if epoch == 2 and step == 1:
            with torch.no_grad():
                model.fc.weight.fill_(float("nan"))

    out = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match=r"loss became nan at epoch 2 step 2.*last good "
                                               r"checkpoint .*\(epoch 1\).*--resume"):
        finetune("lenet5", "digits", out=out, epochs=3, limit=128, progress=False,
                 on_step=poison)
    ck = torch.load(out / "checkpoints" / "last.pt", weights_only=True)
    assert ck["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ck["model"].values())
    assert not (out / "config.json").exists()


def test_refuses_to_overwrite_a_run_without_resume(tmp_path):
    from zoo.errors import UsageError
    from zoo.finetune import finetune

    out = tmp_path / "run"
    finetune("lenet5", "digits", out=out, epochs=1, limit=32, progress=False)
    with pytest.raises(UsageError, match="--resume"):
        finetune("lenet5", "digits", out=out, epochs=1, limit=32, progress=False)
    with pytest.raises(UsageError, match="other settings \\(lr\\)"):
        finetune("lenet5", "digits", out=out, epochs=1, limit=32, progress=False,
                 resume=True, lr=0.5)


# Data parallel: 2 x 20 samples of each 40-sample global batch on gloo, gradients averaged by
# DistributedDataParallel. Against one process the only difference is float summation order
# (~1e-7 relative per step); over 16 Adam steps the weights stay within 1e-4 of each other.
DDP_RUN = dict(epochs=8, limit=80, val_limit=100, batch_size=40, lr=3e-3, seed=1)


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    from zoo.finetune import finetune

    return finetune("lenet5", "digits", out=tmp_path_factory.mktemp("ddp") / "one",
                    progress=False, **DDP_RUN)


def _same_weights(a, b, atol=1e-4):
    for k in b:
        assert torch.allclose(a[k], b[k], atol=atol), (k, float((a[k] - b[k]).abs().max()))


def test_two_processes_under_torchrun_match_one_process(tmp_path, one_process):
    import sys

    import zoo

    out = tmp_path / "torchrun"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc-per-node", "2"]
    cli = finetune_command(out, DDP_RUN)
    proc = subprocess.run([*launcher, *cli[1:], "--json"], env=child_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)           # rank 0 alone reports
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["world_size"] == 2
    assert summary["accuracy"] == pytest.approx(one_process.metrics["accuracy"], abs=0.011)
    assert metrics["epochs"][-1]["train_loss"] == pytest.approx(
        one_process.history[-1]["train_loss"], rel=1e-4)
    _same_weights(zoo.get(str(out)).state_dict(), one_process.model.state_dict())


def test_a_run_of_two_processes_resumes_on_one(tmp_path, one_process):
    """``--nproc 2`` (the local launcher), killed after a checkpoint, resumed by one
    process: it ends where the one-process run ends."""
    import zoo
    from zoo.finetune import finetune

    out = tmp_path / "two-then-one"
    ckpt = out / "checkpoints" / "last.pt"
    proc = subprocess.Popen([*finetune_command(out, DDP_RUN), "--nproc", "2"],
                            env=child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    with stopped_after(proc):
        deadline = time.monotonic() + 240
        while not ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "training finished before it could be killed"
        os.killpg(proc.pid, signal.SIGKILL)        # the launcher and both workers
        proc.wait(timeout=30)
    done = torch.load(ckpt, weights_only=True)
    assert done["world"] == 2 and 1 <= done["epoch"] < DDP_RUN["epochs"]
    resumed = finetune("lenet5", "digits", out=out, progress=False, resume=True, **DDP_RUN)
    assert [h["epoch"] for h in resumed.history] == list(range(1, DDP_RUN["epochs"] + 1))
    assert resumed.extra["world_size"] == 1
    assert resumed.metrics["accuracy"] == pytest.approx(one_process.metrics["accuracy"],
                                                        abs=0.011)
    _same_weights(zoo.get(str(out)).state_dict(), one_process.model.state_dict())
