"""GPT-2 decoder-only language models built from transformers' ``GPT2Config``.

:func:`gpt2` builds ``GPT2LMHeadModel`` (random weights unless a tag loads some); given a
``vocab`` JSON it also attaches that character vocabulary as ``model.tokenizer``, which
is how the small trained generators ship. :func:`generate_text` samples text from such a
model with a seeded generator; :func:`predict_text` is its ``zoo.predict`` entry.
"""

from __future__ import annotations

from typing import Any

import torch

from zoo.errors import UsageError

from .seq2seq import SPECIALS, Tokenizer, check_vocab_size, read_vocab


def gpt2(*, vocab: str | None = None, **config: Any):
    """A GPT-2 language model from ``GPT2Config(**config)``; use ``.generate()`` to sample.

    ``vocab`` (a ``package:``/``file:`` path of a vocabulary JSON) fixes ``vocab_size``,
    sets the special token ids and is attached as ``model.tokenizer``.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = None
    if vocab is not None:
        tok, _ = read_vocab(vocab)
        config["vocab_size"] = check_vocab_size(tok, config.get("vocab_size"), key="vocab_size")
        for key, value in (("bos_token_id", tok.bos_id), ("eos_token_id", tok.eos_id),
                           ("pad_token_id", tok.pad_id)):
            config.setdefault(key, value)
    from .hub import construct

    model = construct(GPT2LMHeadModel, GPT2Config(**config))
    model.tokenizer = tok
    return model


@torch.no_grad()
def generate_ids(model, ids: list[int], *, max_new_tokens: int, temperature: float = 0.8,
                 seed: int = 0, top_k: int | None = None,
                 banned: tuple[int, ...] = ()) -> list[int]:
    """Sample ``max_new_tokens`` ids after ``ids`` with a KV cache and a seeded generator.

    Past the model's context (``n_positions``) the window slides: the cache is rebuilt
    from the last half of the context. ``temperature=0`` is greedy. ``banned`` ids are
    never produced.
    """
    if max_new_tokens < 0:
        raise UsageError(f"max_new_tokens must be >= 0, got {max_new_tokens}")
    if temperature < 0:
        raise UsageError(f"temperature must be >= 0, got {temperature}")
    n_pos = int(model.config.n_positions)
    gen = torch.Generator().manual_seed(seed)
    context = list(ids)[-n_pos:] or [model.config.bos_token_id or 0]
    step_input, past, cached, out = context, None, 0, []
    cache_arg = _cache_arg(type(model))
    was = model.training
    model.eval()
    try:
        for _ in range(max_new_tokens):
            if cached + len(step_input) > n_pos:
                # context full: restart the cache from the most recent half
                context = context[-(n_pos // 2):]
                step_input, past, cached = context, None, 0
            res = model(input_ids=torch.tensor([step_input]), use_cache=True,
                        **{cache_arg: past})
            past, cached = getattr(res, cache_arg), cached + len(step_input)
            logits = res.logits[0, -1].float()
            if banned:
                logits[list(banned)] = float("-inf")
            if temperature < 1e-3:      # logits / 1e-300 overflows: near zero is greedy
                nxt = int(logits.argmax())
            else:
                logits = logits / temperature
                if top_k:
                    kth = logits.topk(min(top_k, logits.numel())).values[-1]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                nxt = int(torch.multinomial(logits.softmax(-1), 1, generator=gen))
            out.append(nxt)
            context.append(nxt)
            step_input = [nxt]
    finally:
        model.train(was)
    return out


def _cache_arg(cls) -> str:
    """transformers 5 renamed ``past_key_values`` to ``cache`` (the old name warns)."""
    import inspect

    return "cache" if "cache" in inspect.signature(cls.forward).parameters \
        else "past_key_values"


def generate_text(model, prompt: str, *, max_new_tokens: int = 200, temperature: float = 0.8,
                  seed: int = 0, top_k: int | None = None) -> str:
    """Continue ``prompt`` with ``max_new_tokens`` sampled characters; return only the new text.

    Deterministic for a given ``seed`` (a private ``torch.Generator``: the global RNG is
    untouched). Special tokens are never sampled, so the result has exactly
    ``max_new_tokens`` characters for a character-level vocabulary.
    """
    tok: Tokenizer | None = getattr(model, "tokenizer", None)
    if tok is None:
        raise UsageError("this model has no tokenizer (random-weights architecture); load a "
                         "trained tag such as 'gpt_tiny.pydoc'")
    ids = tok.encode(prompt, bos=True)
    new = generate_ids(model, ids, max_new_tokens=max_new_tokens, temperature=temperature,
                       seed=seed, top_k=top_k, banned=tuple(range(len(SPECIALS))))
    return tok.decode(new)


def predict_text(model, spec, tag, inputs: str, *, max_new_tokens: int = 200,
                 temperature: float = 0.8, seed: int = 0, top_k: int | None = None,
                 **_options) -> str:
    """``zoo.predict`` entry for ("transformer", "text-generation"): prompt + continuation.

    A model with a transformers tokenizer (``gpt2.openai``) counts ``max_new_tokens`` in
    its BPE tokens; the character-level ones in characters.
    """
    from .text import MAX_TOKENS, hf_tokenizer

    tok = hf_tokenizer(model)
    if tok is not None:
        new = generate_ids(model, tok.encode(inputs)[-MAX_TOKENS:],
                           max_new_tokens=max_new_tokens, temperature=temperature, seed=seed,
                           top_k=top_k, banned=tuple(tok.all_special_ids))
        return inputs + tok.decode(new, skip_special_tokens=True)
    return inputs + generate_text(model, inputs, max_new_tokens=max_new_tokens,
                                  temperature=temperature, seed=seed, top_k=top_k)
