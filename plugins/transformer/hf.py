"""BERT and GPT-2 built from transformers configs (random weights unless a tag loads some)."""

from __future__ import annotations


def bert(*, num_classes: int = 2, **config):
    """A BERT encoder with a sequence-classification head, from ``BertConfig(**config)``."""
    from transformers import BertConfig, BertForSequenceClassification

    return BertForSequenceClassification(BertConfig(num_labels=num_classes, **config))


def gpt2(**config):
    """A GPT-2 language model, from ``GPT2Config(**config)``; use ``.generate()`` to sample."""
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(**config))
