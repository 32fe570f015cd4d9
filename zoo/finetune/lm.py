"""Prompt/response data and the language-modelling loss that SFT trains with.

Below :mod:`zoo.finetune.loop` (which scores LM batches with it) and
:mod:`zoo.finetune.sft` (the SFT entry point).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from zoo.errors import UsageError
from zoo.finetune.data import Split

IGNORE = -100


def read_pairs(path: str | os.PathLike[str], prompt_column: str = "prompt",
               response_column: str = "response") -> tuple[list[str], list[str]]:
    """Prompts and responses from a ``.jsonl`` or ``.csv`` file."""
    from zoo.finetune.data import _read_table

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: no such file; SFT takes a .jsonl or .csv file with "
                         f"'{prompt_column}' and '{response_column}' columns")
    # _read_table reads two named columns; the "label" slot carries the response.
    return _read_table(p, prompt_column, response_column)


def encode_pairs(tok, prompts: list[str], responses: list[str], max_length: int) -> Split:
    """``input_ids``/``attention_mask`` and labels masked to the response tokens."""
    rows, labels = [], []
    for prompt, response in zip(prompts, responses, strict=True):
        p_ids = tok.encode(prompt, bos=True)
        r_ids = tok.encode(response, eos=True)
        ids = (p_ids + r_ids)[:max_length]
        lab = ([IGNORE] * len(p_ids) + r_ids)[:max_length]
        if all(v == IGNORE for v in lab):
            raise UsageError(f"prompt {prompt[:40]!r} fills all {max_length} tokens; the "
                             "response is cut off. Raise --max-length or shorten prompts")
        rows.append(ids)
        labels.append(lab)
    width = max(len(r) for r in rows)
    ids_t = torch.full((len(rows), width), tok.pad_id, dtype=torch.long)
    lab_t = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, lab) in enumerate(zip(rows, labels, strict=True)):
        ids_t[i, : len(r)] = torch.tensor(r)
        lab_t[i, : len(lab)] = torch.tensor(lab)
        mask[i, : len(r)] = 1
    return Split({"input_ids": ids_t, "attention_mask": mask}, lab_t)


def lm_loss_sum(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample mean response-token cross-entropy, summed over the batch."""
    labels = labels[:, : logits.shape[1]]   # the batch's padding columns were trimmed
    logits, labels = logits[:, :-1], labels[:, 1:]
    tok_loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE,
        reduction="none").view(labels.shape)
    valid = (labels != IGNORE).float()
    return ((tok_loss * valid).sum(1) / valid.sum(1).clamp(min=1)).sum()


@torch.no_grad()
def lm_metrics(logits: torch.Tensor, labels: torch.Tensor) -> tuple[float, int, int]:
    """``(sum of token losses, correct tokens, tokens)`` over response positions."""
    labels = labels[:, : logits.shape[1]]
    logits, labels = logits[:, :-1], labels[:, 1:]
    valid = labels != IGNORE
    loss = torch.nn.functional.cross_entropy(logits[valid], labels[valid], reduction="sum")
    correct = int((logits.argmax(-1)[valid] == labels[valid]).sum())
    return float(loss), correct, int(valid.sum())
