"""Supervised fine-tuning (SFT) of GPT-family models on prompt/response pairs.

Each example is ``<bos> prompt response <eos>``; the loss is masked to the response (and
the closing ``<eos>``): prompt positions get label ``-100``, so the model learns to answer,
not to reproduce the prompts. Data: a ``.jsonl``/``.csv`` file with ``prompt`` and
``response`` columns. Models: GPT-2 built by :func:`zoo.plugins.transformer.gpt.gpt2` with
a character/word vocabulary (``model.tokenizer``); a model without one gets a character
vocabulary learned from the data (saved next to the weights as ``vocab.json``).

The run shares everything else with classification fine-tuning: AdamW with warmup,
checkpoints, ``resume``, NaN guard, ``nproc``. Validation reports the response-token
loss and the response-token accuracy (teacher-forced next-token accuracy).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

import torch

from zoo.errors import UsageError
from zoo.finetune.data import TaskData
from zoo.finetune.lm import encode_pairs, read_pairs


def finetune_sft(model, data, *, out, epochs: int | None = None, lr: float | None = None,
                 batch_size: int | None = None, seed: int = 0, val_data=None,
                 val_fraction: float = 0.1, limit: int | None = None, max_length: int = 128,
                 text_column: str = "prompt", label_column: str = "response",
                 weight_decay: float = 0.01, warmup: float = 0.1, schedule: str = "linear",
                 optimizer: str = "adamw", clip_grad: float | None = 1.0,
                 resume: bool = False, overwrite: bool = False, progress: bool = True,
                 on_step=None, device: str = "cpu", **_ignored: Any):
    """SFT entry point behind ``finetune(..., technique="sft")`` (same outputs)."""
    from zoo.api import finetune_hooks
    from zoo.finetune import report
    from zoo.finetune.distributed import init_distributed
    from zoo.finetune.loop import CHECKPOINT, TrainConfig, train
    from zoo.finetune.model import load_model
    from zoo.finetune.optim import DEFAULT_NO_DECAY, make_optimizer, make_schedule, param_groups
    from zoo.finetune.outputs import estimate_outputs, writing
    from zoo.finetune.run import (
        Result,
        check_run_space,
        remove_leftovers,
        run_scope,
        save_model,
    )
    from zoo.finetune.techniques import count_params

    out = Path(out)
    if text_column == "text":
        text_column = "prompt"
    if label_column == "label":
        label_column = "response"
    dist, started = init_distributed(device)
    with run_scope(out, started=started):
        if (out / CHECKPOINT).exists() and not (resume or overwrite):
            raise UsageError(f"{out}: holds a checkpoint of an earlier run; pass --resume to "
                             "continue it, or choose another --out")
        out.mkdir(parents=True, exist_ok=True)
        if dist.main:
            remove_leftovers(out)
        torch.manual_seed(seed)
        loaded = load_model(model)
        if not hasattr(loaded.model, "generate") or loaded.spec.task != "text-generation":
            raise UsageError(f"SFT needs a GPT-family text-generation model; "
                             f"'{loaded.ref}' is {loaded.spec.task}")
        prompts, responses = read_pairs(data, text_column, label_column)
        tok = getattr(loaded.model, "tokenizer", None)
        kwargs = dict(loaded.kwargs)
        if tok is None or not hasattr(tok, "encode") or not hasattr(tok, "bos_id"):
            from zoo.plugins.transformer.seq2seq import Tokenizer, save_vocab

            tok = Tokenizer.from_texts(prompts + responses, level="char")
            vocab = save_vocab(out / "vocab.json", tok).resolve()
            kwargs = {k: v for k, v in kwargs.items()
                      if k not in ("vocab_size", "pad_token_id", "bos_token_id",
                                   "eos_token_id")}
            kwargs["vocab"] = str(vocab)
            from zoo.loading.build import builder_of

            torch.manual_seed(seed)
            loaded.model = builder_of(loaded.spec)(**kwargs)
            loaded.trained = False          # a new vocabulary: new embeddings throughout
        net = loaded.model
        n = len(prompts)
        if val_data is not None:
            vp, vr = read_pairs(val_data, text_column, label_column)
            tr_idx = list(range(n))
        else:
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(0)).tolist()
            k = max(1, int(round(n * val_fraction))) if n > 1 else 0
            val_idx, tr_idx = sorted(perm[:k]), sorted(perm[k:])
            vp, vr = [prompts[i] for i in val_idx], [responses[i] for i in val_idx]
        if limit is not None:
            tr_idx = tr_idx[:limit]
        train_split = encode_pairs(tok, [prompts[i] for i in tr_idx],
                                   [responses[i] for i in tr_idx], max_length)
        val_split = encode_pairs(tok, vp, vr, max_length) if vp else None
        task = TaskData("lm", train_split, val_split, [], name=os.fspath(data)).to(device)
        net.to(device)
        hooks = finetune_hooks(loaded.spec)
        from zoo.finetune import defaults

        settings = defaults.choose(technique="sft", family=loaded.spec.family,
                                   params=count_params(net)[1], trained=loaded.trained,
                                   samples=len(train_split), epochs=epochs,
                                   batch_size=batch_size, lr=lr)
        epochs, batch_size, lr = settings.epochs, settings.batch_size, settings.lr
        if progress and dist.main:
            print(settings.describe(samples=len(train_split), technique="sft"),
                  file=sys.stderr)
        estimate = estimate_outputs(net, optimizer=optimizer, epochs=epochs)
        check_run_space(out, estimate, resume=resume, technique="sft")
        groups = param_groups(net, lr=lr, weight_decay=weight_decay,
                              no_decay=list(hooks.get("no_decay") or DEFAULT_NO_DECAY))
        opt = make_optimizer(groups, optimizer, lr=lr)
        sched = make_schedule(opt, epochs * math.ceil(len(train_split) / batch_size),
                              warmup=warmup, kind=schedule)
        cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
                          metric="loss", clip_grad=clip_grad)
        fingerprint = {"model": os.fspath(model), "data": os.fspath(data), "technique": "sft",
                       "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
                       "limit": limit}
        if dist.main:
            report.preload()
        bar = report.Progress(enabled=progress and dist.main)
        try:
            run = train(net, task, cfg, optimizer=opt, scheduler=sched, out=out,
                        resume=resume, fingerprint=fingerprint, dist=dist, progress=bar,
                        on_step=on_step)
        finally:
            bar.close()
        history = run["history"]
        final = {k: history[-1][k] for k in ("accuracy", "val_loss") if k in history[-1]}
        trainable, total = count_params(net)
        if dist.main:
            net.to("cpu")
            info = {"trainable_params": trainable, "total_params": total,
                    "trainable_percent": 100.0 * trainable / max(total, 1),
                    "world_size": dist.world, "loss_masked_to": "response"}
            kept = f"{out / CHECKPOINT} holds the last epoch ({history[-1]['epoch']})"
            with writing(out / "model.safetensors", kept=kept):
                save_model(net, out, spec=loaded.spec, tag=loaded.tag, kwargs=kwargs,
                            extra={"metrics": final, "technique": "sft",
                                   "base_model": os.fspath(model), "dataset": task.name,
                                   "finetune": info})
            with writing(out / report.METRICS_FILE, kept=kept):
                report.write_metrics(out, {"model": os.fspath(model), "data": task.name,
                                           "train_samples": len(train_split), "final": final,
                                           "epochs": history, "technique": "sft", **info,
                                           "config": run["config"]})
            with writing(out / report.CURVE_FILE, kept=kept):
                report.plot_curves(out, history, f"{loaded.spec.name} SFT on {task.name}")
        return Result(out, final, history, trainable, total, model=net,
                      extra={"technique": "sft", "output_bytes": estimate.as_dict()})
