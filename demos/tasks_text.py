"""Text tasks: classification, generation, translation, fill-mask, feature extraction (similarity).

Each uses its task adapter's predictor (:mod:`zoo.tasks`) (which owns the tokenizer the
model was trained with). Without one, a model that ships a tokenizer in its config
directory uses it; anything else gets a byte-level stand-in, fine for checking shapes of
random-weight architectures and labelled as such in the demo's description.
"""

from __future__ import annotations

import hashlib
from typing import Any

from zoo.errors import UsageError

from .base import (
    Adapter,
    DemoInputError,
    call_helper,
    check_text,
    gradio,
    task_helper,
)
from .tasks_image import to_label

POSITIVE = "What a wonderful day, I love this and everything went great!"
NEGATIVE = "This is awful. I hate it, the worst experience ever, totally broken."
STAND_IN = ("No tokenizer ships with this model, so a byte-level stand-in is used: "
            "answers only show that the model runs.")
#: temperatures below this decode greedily (as 0 does)
MIN_TEMPERATURE = 1e-3


def _seq_len(adapter: Adapter, default: int = 64) -> int:
    inp = adapter.target.input
    return int(inp.size[0]) if inp is not None and len(inp.size) == 1 else default


def _vocab(adapter: Adapter, model: Any) -> int:
    cfg = getattr(model, "config", None)
    if cfg is not None and getattr(cfg, "vocab_size", None):
        return int(cfg.vocab_size)
    emb = getattr(model, "embedding", None)
    if emb is not None and hasattr(emb, "num_embeddings"):
        return int(emb.num_embeddings)
    return int(adapter.target.kwargs.get("vocab_size", 256))


def hashed_ids(text: str, *, vocab: int, length: int):
    """Word ids by hashing (1..vocab-1; 0 is padding): a tokenizer stand-in, shape only."""
    import torch

    words = text.lower().split()[:length]
    ids = [1 + int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "big")
           % max(1, vocab - 1) for w in words] or [1]
    return torch.tensor([ids], dtype=torch.long)


def byte_ids(text: str, *, vocab: int, length: int):
    import torch

    ids = [3 + b % max(1, vocab - 3) for b in text.encode()[:length]] or [3]
    return torch.tensor([ids], dtype=torch.long)


def byte_text(ids) -> str:
    return bytes(max(0, min(255, int(i) - 3)) for i in ids).decode("utf-8", "replace")


def local_tokenizer(model: Any):
    """The tokenizer saved next to a transformers model's weights, if it has one locally."""
    import os

    path = getattr(getattr(model, "config", None), "_name_or_path", "") or ""
    if path and os.path.isdir(path):
        try:
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(path)
        except Exception:  # no tokenizer files there: fall back to the stand-in
            return None
    return None


class _TextAdapter(Adapter):
    helper_names: tuple[str, ...] = ()

    def description(self) -> str:
        text = super().description()
        if self.target is not None and (self.target.tag is None
                                        or task_helper(self.target, *self.helper_names) is None):
            text += " " + STAND_IN
        return text

    def helper(self, model: Any, inputs: Any, **options: Any) -> tuple[bool, Any]:
        """``(True, answer)`` from the family's helper, or ``(False, None)`` to use the stand-in.

        Helpers need the tokenizer a trained tag carries; a random-weights architecture
        without one falls back to the byte-level stand-in instead of failing.
        """
        fn = task_helper(self.target, *self.helper_names)
        if fn is None:
            return False, None
        try:
            return True, call_helper(fn, self.target, model, inputs, **options)
        except UsageError:
            if self.target.tag is None and getattr(model, "tokenizer", None) is None:
                return False, None
            raise


class TextClassification(_TextAdapter):
    """Text in, class probabilities out."""

    task = "text-classification"

    def inputs(self):
        gr = gradio()
        return [gr.Textbox(lines=3, label="text", placeholder="Type a sentence")]

    def outputs(self):
        gr = gradio()
        labels = self.target.labels
        return [gr.Label(num_top_classes=min(5, len(labels)) if labels else 3,
                         label="prediction")]

    def examples(self):
        return [[POSITIVE], [NEGATIVE]]

    def run(self, model, text):
        import torch

        text = check_text(text)
        done, ranked = self.helper(model, text, top_k=5)
        if done:
            return to_label(ranked)
        tok = local_tokenizer(model)
        if tok is not None:
            enc = tok(text, truncation=True, max_length=_seq_len(self), return_tensors="pt")
            out = model(**enc)
        else:
            ids = hashed_ids(text, vocab=_vocab(self, model), length=_seq_len(self))
            out = model(ids)
        logits = getattr(out, "logits", out)
        probs = torch.softmax(logits.float(), dim=-1)[0]
        labels = self.target.labels or [str(i) for i in range(probs.numel())]
        return {labels[i]: float(p) for i, p in enumerate(probs.tolist())}


class TextGeneration(_TextAdapter):
    """Prompt, max new tokens, temperature -> the prompt continued."""

    task = "text-generation"

    def inputs(self):
        gr = gradio()
        return [gr.Textbox(lines=3, label="prompt", placeholder="Once upon a time"),
                gr.Slider(1, 256, value=40, step=1, label="max new tokens"),
                gr.Slider(0.0, 2.0, value=0.8, step=0.05, label="temperature (0 = greedy)")]

    def outputs(self):
        gr = gradio()
        return [gr.Textbox(label="generated text", lines=6)]

    def examples(self):
        return [["Once upon a time", 40, 0.8], ["The model zoo", 20, 0.0]]

    def run(self, model, prompt, max_tokens=40, temperature=0.8):
        import torch

        prompt = check_text(prompt, what="prompt", max_chars=4000)
        try:
            max_tokens, temperature = int(max_tokens), float(temperature)
        except (TypeError, ValueError):
            raise DemoInputError("max new tokens and temperature must be numbers") from None
        if not 1 <= max_tokens <= 1024:
            raise DemoInputError(f"max new tokens must be 1..1024, got {max_tokens}")
        if not 0 <= temperature <= 5:
            raise DemoInputError(f"temperature must be 0..5, got {temperature}")
        if temperature < MIN_TEMPERATURE:
            # logits / 1e-300 overflow to inf and sampling fails on NaN probabilities;
            # this close to 0 sampling is greedy decoding anyway
            temperature = 0.0
        done, out = self.helper(model, prompt, **{"max_new_tokens|max_tokens": max_tokens,
                                                  "temperature": temperature})
        if done:
            return out if isinstance(out, str) else str(out)
        torch.manual_seed(0)
        sample = temperature > 0
        opts = {"do_sample": sample, "max_new_tokens": max_tokens, "pad_token_id": 0}
        if sample:
            opts["temperature"] = temperature
        tok = local_tokenizer(model)
        if tok is not None:
            enc = tok(prompt, return_tensors="pt")
            ids = model.generate(**enc, **opts)[0]
            return tok.decode(ids, skip_special_tokens=True)
        ids = byte_ids(prompt, vocab=_vocab(self, model), length=512)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), **opts)[0]
        return prompt + byte_text(out[ids.shape[1]:].tolist())


class Translation(_TextAdapter):
    """Text in the source language -> text in the target language."""

    task = "translation"

    def inputs(self):
        gr = gradio()
        return [gr.Textbox(lines=3, label="source text")]

    def outputs(self):
        gr = gradio()
        return [gr.Textbox(lines=3, label="translation")]

    def examples(self):
        pre = self.target.spec.pretrained.get(self.target.tag) if self.target.tag else None
        if pre is not None and "date" in (pre.dataset or ""):
            return [["March 3, 2021"], ["3rd of July 1999"], ["12/25/2049"]]
        return [["the cat sat on the mat"], ["a small model for a small machine"]]

    def check_length(self, model, text: str) -> None:
        """Refuse a source longer than the model's positions, counted with its own tokenizer.

        A model with a vocabulary of its own (``model.src_vocab``, the seq2seq family)
        reads at most ``max_len`` tokens; past that the family's error tells a developer
        to rebuild the model, which a demo user cannot do.
        """
        vocab = getattr(model, "src_vocab", None)
        limit = self.target.kwargs.get("max_len")
        if vocab is None or not hasattr(vocab, "split") or not limit:
            return
        n = len(vocab.split(text))
        if n > int(limit):
            raise DemoInputError(f"the text is {n:,} tokens long; this model reads at most "
                                 f"{int(limit):,}. Shorten it")

    def run(self, model, text):
        import torch

        text = check_text(text, max_chars=2000)
        self.check_length(model, text)
        done, out = self.helper(model, text)
        if done:
            return out if isinstance(out, str) else " ".join(map(str, out))
        tok = local_tokenizer(model)
        if tok is not None:
            enc = tok(text, return_tensors="pt", truncation=True)
            return tok.decode(model.generate(**enc, max_new_tokens=64)[0],
                              skip_special_tokens=True)
        ids = byte_ids(text, vocab=_vocab(self, model), length=_seq_len(self, 128))
        if hasattr(model, "greedy") and not hasattr(model, "generate"):
            return byte_text(model.greedy(ids, max_len=32)[0])
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=32,
                             do_sample=False)[0]
        return byte_text(out.tolist())


class FeatureExtraction(_TextAdapter):
    """Two texts -> the cosine similarity of their embeddings."""

    task = "feature-extraction"
    helper_names = ("sentence-similarity",)
    hint = "1 means the same meaning; near 0 unrelated."

    def inputs(self):
        gr = gradio()
        return [gr.Textbox(lines=2, label="text A"), gr.Textbox(lines=2, label="text B")]

    def outputs(self):
        gr = gradio()
        return [gr.Number(label="cosine similarity", precision=4)]

    def examples(self):
        return [["A man is playing a guitar.", "Someone plays an instrument."],
                ["A man is playing a guitar.", "The stock market fell sharply today."]]

    def embed(self, model, texts: list[str]):
        import torch

        done, out = self.helper(model, texts)
        if done:
            return torch.as_tensor(out, dtype=torch.float32)
        tok = local_tokenizer(model)
        if tok is not None:
            enc = tok(texts, padding=True, truncation=True, max_length=_seq_len(self, 128),
                      return_tensors="pt")
            mask = enc["attention_mask"]
        else:
            rows = [hashed_ids(t, vocab=_vocab(self, model), length=_seq_len(self))[0]
                    for t in texts]
            width = max(len(r) for r in rows)
            ids = torch.zeros(len(rows), width, dtype=torch.long)
            for i, r in enumerate(rows):
                ids[i, :len(r)] = r
            mask = (ids != 0).long()
            enc = {"input_ids": ids, "attention_mask": mask}
        out = model(**enc)
        hidden = getattr(out, "last_hidden_state", None)
        if hidden is None:
            hidden = out[0] if isinstance(out, tuple | list) else out
        if hidden.dim() == 2:
            return hidden
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)   # mean pooling

    def run(self, model, a, b):
        import torch

        a = check_text(a, what="text A", max_chars=5000)
        b = check_text(b, what="text B", max_chars=5000)
        e = self.embed(model, [a, b])
        if e.dim() != 2 or e.shape[0] != 2:
            raise ValueError(f"embeddings have shape {list(e.shape)}, expected [2, D]")
        return round(float(torch.nn.functional.cosine_similarity(e[0:1], e[1:2])[0]), 4)


class FillMask(_TextAdapter):
    """A sentence with ``[MASK]`` -> the words that fit there, and the sentence filled in."""

    task = "fill-mask"
    hint = "Write [MASK] where a word is missing."

    def inputs(self):
        gr = gradio()
        return [gr.Textbox(lines=2, label="text with [MASK]",
                           placeholder="Paris is the [MASK] of France.")]

    def outputs(self):
        gr = gradio()
        return [gr.Label(num_top_classes=5, label="words that fit"),
                gr.Textbox(label="best guess filled in")]

    def examples(self):
        return [["Paris is the [MASK] of France."], ["The man worked as a [MASK]."]]

    def run(self, model, text):
        text = check_text(text, max_chars=2000)
        done, out = self.helper(model, text, top_k=5)
        if not done or not out:
            raise DemoInputError("this model has no tokenizer, so it cannot read text; "
                                 "load a trained tag such as bert_base.uncased")
        return to_label([(d["token"], d["score"]) for d in out]), out[0]["sequence"]
