"""Data-parallel runs: join the process group a launcher describes, or start N local ones.

See :mod:`zoo.finetune.api` for how to launch under torchrun or a cluster scheduler.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, ZooError
from zoo.finetune.run import Result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned_worker(rank: int, world: int, port: int, entry: Callable[..., Any],
                    kwargs: dict[str, Any]) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    entry(**kwargs)


def init_distributed(device: str):
    """Join the job described by the environment (torchrun, --nproc); (Dist, we_started)."""
    from zoo.finetune.loop import Dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(), False
    import torch.distributed as tdist

    rank = int(os.environ.get("RANK", "0"))
    if tdist.is_initialized():
        return Dist(rank, world), False
    backend = "nccl" if device.startswith("cuda") else "gloo"
    tdist.init_process_group(backend=backend, init_method="env://", rank=rank,
                             world_size=world)
    return Dist(rank, world), True


def spawn(entry: Callable[..., Any], args: dict[str, Any], nproc: int, out: Path) -> Result:
    """Run ``entry(**args)`` in ``nproc`` data-parallel processes on this machine; return
    rank 0's result. ``entry`` is the fine-tuning entry point, passed in so that this
    module stays below it."""
    import json

    import torch.multiprocessing as mp

    if args.get("on_step") is not None:
        raise UsageError("on_step callbacks cannot cross process boundaries; use nproc=1")
    kwargs = {**args, "nproc": 1}
    port = _free_port()
    try:
        mp.start_processes(_spawned_worker, args=(nproc, port, entry, kwargs), nprocs=nproc,
                           join=True, start_method="spawn")
    except mp.ProcessRaisedException as e:
        last = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
        raise worker_error(last) from None
    metrics = json.loads((out / "metrics.json").read_text())
    from zoo.loading.build import load_dir

    print(f"{nproc} processes finished; outputs in {out}", file=sys.stderr)
    return Result(out, metrics["final"], metrics["epochs"], metrics["trainable_params"],
                  metrics["total_params"], model=load_dir(out), extra=metrics)


def worker_error(last: str) -> ZooError:
    """The error a training process raised, as the same one-line error in the parent.

    torch.multiprocessing hands the worker's traceback over as text, whose last line is
    ``module.Class: message``. zoo's own errors come back as themselves (a full disk stays
    an OutputWriteError, exit code 1; a bad option a UsageError, exit 2): their message
    already says what to do. Anything else is reported as a failed worker.
    """
    from zoo import errors
    from zoo.finetune import outputs

    qual, sep, msg = last.partition(": ")
    if sep and qual.startswith("zoo."):
        kind = qual.rsplit(".", 1)[-1]
        cls = getattr(errors, kind, None) or getattr(outputs, kind, None)
        if isinstance(cls, type) and issubclass(cls, errors.ZooError):
            if cls.__init__ is ZooError.__init__:      # built from the message alone
                return cls(msg)
            # built from several fields (a name, a path): keep the message and exit code
            return (UsageError if cls.exit_code == 2 else ZooError)(msg)
    return ZooError(f"a training process failed ({last}); rerun with --nproc 1 "
                           "to see where")
