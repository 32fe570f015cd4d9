"""Supervised fine-tuning (SFT) of GPT-family models on prompt/response pairs.

Each example is ``<bos> prompt response <eos>``; the loss is masked to the response (and
the closing ``<eos>``): prompt positions get label ``-100``, so the model learns to answer,
not to reproduce the prompts. Data: a ``.jsonl``/``.csv`` file with ``prompt`` and
``response`` columns. Models: GPT-2 built by :func:`zoo.plugins.transformer.gpt.gpt2` with
a character/word vocabulary (``model.tokenizer``); a model without one gets a character
vocabulary learned from the data (saved next to the weights as ``vocab.json``).

SFT is the text-generation task's recipe (:class:`zoo.finetune.recipes.text.TextGeneration`)
on paired data: ``finetune(MODEL, DATA, technique="sft")`` and a plain ``finetune`` of a
text-generation model run the same code. Validation reports the response-token loss and
the response-token accuracy (teacher-forced next-token accuracy).
"""

from __future__ import annotations

from typing import Any


def finetune_sft(model, data, *, out, val_fraction: float = 0.1, max_length: int = 128,
                 text_column: str = "prompt", label_column: str = "response",
                 batch_size: int = 16, **options: Any):
    """SFT entry point (same outputs as ``finetune(..., technique="sft")``)."""
    from zoo.finetune.recipes.text import TextGeneration

    return TextGeneration().run(model, data, out=out, technique="sft",
                                val_fraction=val_fraction, max_length=max_length,
                                text_column=text_column, label_column=label_column,
                                batch_size=batch_size, **options)
