"""Data-parallel runs: join the process group a launcher describes (torchrun, SLURM through
torchrun or srun, ``--nproc``), and ``--nproc N``, a thin local launcher.

``--nproc N`` starts the N processes with torch's own launcher (the engine behind
``torchrun --standalone``: a c10d rendezvous on 127.0.0.1, the same ``RANK``,
``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` variables), so a run
started either way is the same run. See :mod:`zoo.finetune.api` for launch commands.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, ZooError
from zoo.finetune.run import Result


def init_distributed(device: str):
    """Join the job described by the environment (torchrun, --nproc); (Dist, we_started).

    The backend is nccl for CUDA devices and gloo otherwise; under SLURM without torchrun
    (``srun python -m zoo finetune ...``), ``SLURM_PROCID``/``SLURM_NTASKS`` stand in for
    ``RANK``/``WORLD_SIZE`` (``MASTER_ADDR``/``MASTER_PORT`` must still be exported).
    """
    from zoo.finetune.loop import Dist

    env = _job_env()
    world = int(env.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), False
    import torch.distributed as tdist

    rank = int(env.get("RANK", "0"))
    if tdist.is_initialized():
        return Dist(tdist.get_rank(), tdist.get_world_size()), False
    missing = [k for k in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(k)]
    if missing:
        raise UsageError(f"WORLD_SIZE is {world} but {' and '.join(missing)} is not set; "
                         "launch with torchrun (or export MASTER_ADDR and MASTER_PORT)")
    backend = "nccl" if device.startswith("cuda") else "gloo"
    tdist.init_process_group(backend=backend, init_method="env://", rank=rank,
                             world_size=world)
    return Dist(rank, world), True


def _job_env() -> dict[str, str]:
    """``RANK``/``WORLD_SIZE``/``LOCAL_RANK``, from SLURM's names when torchrun's are absent."""
    env = dict(os.environ)
    if "WORLD_SIZE" not in env and "SLURM_NTASKS" in env and "SLURM_PROCID" in env:
        env.update(WORLD_SIZE=env["SLURM_NTASKS"], RANK=env["SLURM_PROCID"],
                   LOCAL_RANK=env.get("SLURM_LOCALID", "0"))
        for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
            os.environ.setdefault(k, env[k])
    return env


def local_rank() -> int:
    """This process's index on its machine (its GPU under torchrun)."""
    return int(_job_env().get("LOCAL_RANK", "0"))


def _worker(entry: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    entry(**kwargs)


def launch(entry: Callable[..., Any], args: dict[str, Any], nproc: int, out: Path) -> Result:
    """Run ``entry(**args)`` in ``nproc`` processes on this machine, as ``torchrun
    --standalone --nproc-per-node nproc`` would; return rank 0's result (read back from
    ``out``). ``entry`` is the fine-tuning entry point, passed in so that this module stays
    below it."""
    import json
    import uuid

    if args.get("on_step") is not None:
        raise UsageError("on_step callbacks cannot cross process boundaries; use nproc=1")
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc,
                          run_id=str(uuid.uuid4()), rdzv_backend="c10d",
                          rdzv_endpoint="127.0.0.1:0", local_addr="127.0.0.1",
                          max_restarts=0, monitor_interval=0.1)
    try:
        with _quiet_launcher():
            elastic_launch(config, _worker)(entry, {**args, "nproc": 1})
    except ChildFailedError as e:
        raise _first_failure(e) from None
    except KeyboardInterrupt:
        from zoo.finetune.outputs import TrainingInterrupted
        from zoo.finetune.run import _interrupted_outside_training

        raise TrainingInterrupted(_interrupted_outside_training(out)) from None
    except Exception as e:
        if type(e).__name__ == "SignalException":      # SIGTERM/SIGHUP to the launcher
            from zoo.finetune.outputs import TrainingInterrupted
            from zoo.finetune.run import _interrupted_outside_training

            raise TrainingInterrupted(_interrupted_outside_training(out)) from None
        raise
    metrics = json.loads((out / "metrics.json").read_text())
    from zoo.loading.build import load_dir

    print(f"{nproc} processes finished; outputs in {out}", file=sys.stderr)
    return Result(out, metrics["final"], metrics["epochs"], metrics["trainable_params"],
                  metrics["total_params"], model=load_dir(out), extra=metrics)


@contextlib.contextmanager
def _quiet_launcher():
    """torch's launcher logs each worker's traceback and its own progress; zoo reports a
    failure in one line (``--debug``/``ZOO_DEBUG=1`` keeps torch's logs)."""
    if os.environ.get("ZOO_DEBUG", "") not in ("", "0"):
        yield
        return
    log = logging.getLogger("torch.distributed.elastic")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _first_failure(e) -> ZooError:
    """The lowest failing rank's error, as :func:`worker_error` words it."""
    rank = min(e.failures) if e.failures else None
    failure = e.failures.get(rank) if rank is not None else None
    message = getattr(failure, "message", None)
    if isinstance(message, dict):
        message = message.get("message")
    if not isinstance(message, str) or not message.strip():
        code = getattr(failure, "exitcode", "?")
        return ZooError(f"a training process exited with code {code}; rerun with --nproc 1 "
                        "to see where")
    return worker_error(message.strip().splitlines()[-1])


def worker_error(last: str) -> ZooError:
    """The error a training process raised, as the same one-line error in the parent.

    The launcher hands the worker's error over as text, ``Class: message`` (or
    ``module.Class: message``). zoo's own errors come back as themselves (a full disk stays
    an OutputWriteError, exit code 1; a bad option a UsageError, exit 2): their message
    already says what to do. Anything else is reported as a failed worker.
    """
    from zoo import errors
    from zoo.finetune import loop, outputs

    qual, sep, msg = last.partition(": ")
    kind = qual.rsplit(".", 1)[-1] if sep and " " not in qual else ""
    if kind and (qual.startswith("zoo.") or "." not in qual):
        cls = getattr(errors, kind, None) or getattr(outputs, kind, None) \
            or getattr(loop, kind, None)
        if isinstance(cls, type) and issubclass(cls, errors.ZooError):
            if cls.__init__ is ZooError.__init__:      # built from the message alone
                return cls(msg)
            # built from several fields (a name, a path): keep the message and exit code
            return (UsageError if cls.exit_code == 2 else ZooError)(msg)
    return ZooError(f"a training process failed ({last}); rerun with --nproc 1 "
                    "to see where")
