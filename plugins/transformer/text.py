"""Text predictors for transformers models that carry a transformers tokenizer.

The Hub's trained models (``bert_base.uncased``, ``gpt2.openai``, ``marian.en-de``)
come with their repo's tokenizer as ``model.tokenizer`` (see :mod:`.hub`); these helpers
encode with it, run the model, and decode, as transformers' own pipelines do (GPT-2's
sampling is :func:`zoo.plugins.transformer.gpt.predict_text`'s):

* :func:`fill_mask` -- ``zoo.predict`` for "fill-mask": the words that fit ``[MASK]``;
* :func:`translate` -- beam or greedy decoding with the model's generation settings.
"""

from __future__ import annotations

from typing import Any

import torch

from zoo.errors import UsageError

#: longest input the predictors pass on (tokens); longer texts are cut, as pipelines do
MAX_TOKENS = 512


def hf_tokenizer(model: Any):
    """``model.tokenizer`` when it is a transformers tokenizer, else ``None``."""
    tok = getattr(model, "tokenizer", None)
    for cls in type(tok).__mro__:
        if cls.__module__.startswith("transformers.") and cls.__name__ == \
                "PreTrainedTokenizerBase":
            return tok
    return None


def _need_tokenizer(model: Any, example: str):
    tok = hf_tokenizer(model)
    if tok is None:
        raise UsageError(f"this model has no tokenizer (random-weights architecture); load a "
                         f"trained tag such as '{example}'")
    return tok


def fill_mask(model, spec, tag, text: str, *, top_k: int = 5) -> list[dict[str, Any]]:
    """The ``top_k`` tokens that best fill the first mask token of ``text``, best first.

    Each answer is ``{"token": str, "score": float, "sequence": str}`` (transformers'
    fill-mask pipeline says the same, as ``token_str``/``score``/``sequence``). Write the
    tokenizer's mask token (``[MASK]`` for BERT) where the word is missing.
    """
    if not isinstance(text, str):
        raise UsageError(f"expected one text (str), got {type(text).__name__}")
    tok = _need_tokenizer(model, "bert_base.uncased")
    mask = tok.mask_token
    if not mask or mask not in text:
        raise UsageError(f"write {mask or '[MASK]'} where the missing word goes, e.g. "
                         f"'Paris is the {mask or '[MASK]'} of France.'")
    enc = tok(text, return_tensors="pt", truncation=True, max_length=MAX_TOKENS)
    where = (enc["input_ids"][0] == tok.mask_token_id).nonzero()
    if not len(where):
        raise UsageError(f"the text is too long: its {mask} falls past the first "
                         f"{MAX_TOKENS} tokens; shorten it")
    pos = int(where[0])
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            logits = model(**enc).logits[0, pos]
    finally:
        model.train(was)
    probs = logits.float().softmax(-1)
    values, ids = probs.topk(min(int(top_k), probs.numel()))
    out = []
    for p, i in zip(values.tolist(), ids.tolist(), strict=True):
        filled = enc["input_ids"][0].clone()
        filled[pos] = i
        out.append({"token": tok.decode([i]).strip(), "score": float(p),
                    "sequence": tok.decode(filled, skip_special_tokens=True)})
    return out


def translate(model, text: str | list[str], *, beam: int | None = None,
              max_new_tokens: int = 128) -> str | list[str]:
    """Translate with the repo's tokenizer and generation settings (its ``num_beams``
    unless ``beam`` is given; beam 1 is greedy)."""
    tok = _need_tokenizer(model, "marian.en-de")
    texts = [text] if isinstance(text, str) else list(text)
    if not texts:
        return []
    positions = int(getattr(model.config, "max_position_embeddings", 0) or MAX_TOKENS)
    enc = tok(texts, return_tensors="pt", padding=True, truncation=True,
              max_length=min(MAX_TOKENS, positions))
    # the decoder starts from one token and has as many positions as the encoder
    opts: dict[str, Any] = {"max_new_tokens": max(1, min(int(max_new_tokens), positions - 1)),
                            "do_sample": False}
    if beam is not None:
        opts["num_beams"] = int(beam)
    was = model.training
    model.eval()
    try:
        with torch.inference_mode():
            out = model.generate(**enc, **opts)
    finally:
        model.train(was)
    decoded = tok.batch_decode(out, skip_special_tokens=True)
    return decoded[0] if isinstance(text, str) else decoded
