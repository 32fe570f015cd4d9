"""The original encoder-decoder Transformer (Vaswani et al., 2017), with its decoding methods.

``Seq2SeqTransformer`` wraps ``torch.nn.Transformer`` with what the paper puts around it:
token embeddings scaled by sqrt(d_model), fixed sinusoidal positional encodings, shared or
separate vocabularies, and an output projection (tied to the target embedding when the
vocabulary is shared). Decoding: :meth:`Seq2SeqTransformer.greedy` and
:meth:`Seq2SeqTransformer.beam_search` (length-normalised). :class:`Tokenizer` is the
character- or word-level vocabulary that trained models ship as JSON next to their weights.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import BuildError, UsageError

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)


_WORD_RE = re.compile(r"[^\W\d_]+|\d|\S")


class Tokenizer:
    """A character- or word-level vocabulary; ids 0-3 are ``<pad> <bos> <eos> <unk>``.

    ``level="char"``: one token per character. ``level="word"``: runs of letters are one
    token, every digit and every other non-space character is its own token (so numbers
    need no vocabulary). Unknown tokens encode to ``<unk>``. Saved as JSON
    (``{"level": ..., "tokens": [...], "lowercase": bool}``).
    """

    def __init__(self, tokens: list[str] | str, *, level: str = "char", lowercase: bool = False):
        if level not in ("char", "word"):
            raise ValueError(f"level must be 'char' or 'word', got {level!r}")
        self.tokens, self.level, self.lowercase = list(tokens), level, lowercase
        self.itos = list(SPECIALS) + self.tokens
        self.stoi = {s: i for i, s in enumerate(self.itos)}
        if len(self.stoi) != len(self.itos):
            raise ValueError("tokens must be unique and not special tokens")
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = range(4)

    def __len__(self) -> int:
        return len(self.itos)

    def split(self, text: str) -> list[str]:
        """The token strings of ``text`` (before the vocabulary lookup)."""
        if self.lowercase:
            text = text.lower()
        return list(text) if self.level == "char" else _WORD_RE.findall(text)

    @classmethod
    def from_texts(cls, texts, *, level: str = "char", lowercase: bool = False,
                   min_count: int = 1) -> Tokenizer:
        """Build a vocabulary of every token seen at least ``min_count`` times."""
        from collections import Counter

        probe = cls([], level=level, lowercase=lowercase)
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(probe.split(t))
        return cls(sorted(c for c, n in counts.items() if n >= min_count and c not in SPECIALS),
                   level=level, lowercase=lowercase)

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Ids of ``text``'s tokens, optionally framed by ``<bos>``/``<eos>``."""
        ids = [self.stoi.get(c, self.unk_id) for c in self.split(text)]
        return ([self.bos_id] if bos else []) + ids + ([self.eos_id] if eos else [])

    def decode(self, ids) -> str:
        """Text of ``ids``, stopping at ``<eos>`` and skipping the other special tokens."""
        out = []
        for i in (ids.tolist() if hasattr(ids, "tolist") else ids):
            if i == self.eos_id:
                break
            if i >= len(SPECIALS):
                out.append(self.itos[i])
        return "".join(out) if self.level == "char" else " ".join(out)

    def batch(self, texts: list[str], *, bos: bool = False, eos: bool = False) -> torch.Tensor:
        """A ``(batch, longest)`` int64 tensor of encoded texts, right-padded with ``<pad>``."""
        seqs = [self.encode(t, bos=bos, eos=eos) for t in texts]
        out = torch.full((len(seqs), max([1, *map(len, seqs)])), self.pad_id, dtype=torch.long)
        for i, s in enumerate(seqs):
            out[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"level": self.level, "lowercase": self.lowercase, "tokens": self.tokens}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer:
        return cls(data["tokens"], level=data.get("level", "char"),
                   lowercase=bool(data.get("lowercase", False)))


def save_vocab(path: str | os.PathLike[str], src: Tokenizer, tgt: Tokenizer | None = None) -> Path:
    """Write one vocabulary, or a source/target pair, as JSON (same vocabulary, same bytes)."""
    data = src.to_dict() if tgt is None else {"src": src.to_dict(), "tgt": tgt.to_dict()}
    p = Path(path)
    p.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return p


def read_vocab(path: str | os.PathLike[str]) -> tuple[Tokenizer, Tokenizer | None]:
    """Read :func:`save_vocab`'s JSON; ``package:IMPORT_NAME/PATH`` looks inside a package.

    Returns ``(src, tgt)``; ``tgt`` is ``None`` for a single (shared) vocabulary.
    """
    from zoo.loading.paths import local_path

    p = local_path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
        if "src" in data:
            return Tokenizer.from_dict(data["src"]), Tokenizer.from_dict(data["tgt"])
        return Tokenizer.from_dict(data), None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise BuildError(f"{p}: not a readable vocabulary JSON ({type(e).__name__}: {e}); "
                         "reinstall zoo-models or re-run the training script that writes "
                         "it") from None


def check_vocab_size(tok: Tokenizer, vocab_size: int | None, *, key: str) -> int:
    """``len(tok)``, after checking it agrees with an explicit ``vocab_size`` kwarg."""
    if vocab_size is not None and vocab_size != len(tok):
        raise BuildError(f"the vocabulary has {len(tok)} entries but {key}={vocab_size}; "
                         f"drop {key} or make it match the vocabulary")
    return len(tok)


class PositionalEncoding(nn.Module):
    """Fixed sinusoidal position encodings (section 3.5), added to the scaled embeddings."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        pos = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32)
                        * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(pos * div)
        pe[:, 1::2] = torch.cos(pos * div[: d_model // 2])
        # a buffer, not a parameter, and not saved: it is a function of the shape only
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[0]:
            raise UsageError(f"sequence of {x.shape[1]} tokens is longer than max_len="
                             f"{self.pe.shape[0]}; shorten it or build with a larger max_len")
        return x + self.pe[: x.shape[1]]


class Seq2SeqTransformer(nn.Module):
    """Encoder-decoder Transformer: ``forward(src_ids, tgt_ids) -> (batch, tgt_len, vocab)``.

    ``tgt_ids`` is the decoder input (``<bos>`` then the target shifted right); padding id
    is 0 on both sides. With ``tgt_vocab_size=None`` source and target share one vocabulary,
    one embedding table and the output projection's weights (as in the paper).
    """

    def __init__(self, *, vocab_size: int = 37000, tgt_vocab_size: int | None = None,
                 d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048,
                 dropout: float = 0.1, max_len: int = 512, pad_id: int = 0, bos_id: int = 1,
                 eos_id: int = 2):
        super().__init__()
        self.shared = tgt_vocab_size is None
        self.d_model, self.pad_id, self.bos_id, self.eos_id = d_model, pad_id, bos_id, eos_id
        self.src_embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
        self.tgt_embed = self.src_embed if self.shared else nn.Embedding(
            tgt_vocab_size, d_model, padding_idx=pad_id)
        self.pos = PositionalEncoding(d_model, max_len)
        self.dropout = nn.Dropout(dropout)
        self.transformer = nn.Transformer(
            d_model=d_model, nhead=nhead, num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers, dim_feedforward=dim_feedforward,
            dropout=dropout, batch_first=True)
        # No fused inference fast path (nested tensors, native attention kernels): it hides
        # FLOPs from FlopCounterMode and makes batched and one-by-one decoding differ in the
        # last bits, so beam=1 could drift from greedy. See also _no_fastpath.
        self.transformer.encoder.enable_nested_tensor = False
        self.transformer.encoder.use_nested_tensor = False
        out_vocab = vocab_size if self.shared else tgt_vocab_size
        self.generator = nn.Linear(d_model, out_vocab)
        if self.shared:
            self.generator.weight = self.tgt_embed.weight
        # vocabularies: set by the builder when a trained tag ships them
        self.src_vocab: Tokenizer | None = None
        self.tgt_vocab: Tokenizer | None = None
        self._init_weights()

    def _init_weights(self) -> None:
        for name, p in self.named_parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)
            elif name.endswith("bias") and "norm" not in name:
                nn.init.zeros_(p)
        with torch.no_grad():
            self.src_embed.weight[self.pad_id].zero_()
            self.tgt_embed.weight[self.pad_id].zero_()

    @property
    def tokenizer(self) -> Tokenizer | None:
        """The source-side vocabulary (what users' text goes through)."""
        return self.src_vocab

    def _embed(self, table: nn.Embedding, ids: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.pos(table(ids) * math.sqrt(self.d_model)))

    def encode(self, src_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder memory ``(batch, src_len, d_model)`` and the source padding mask."""
        src_mask = src_ids == self.pad_id
        with _no_fastpath():
            memory = self.transformer.encoder(self._embed(self.src_embed, src_ids),
                                              src_key_padding_mask=src_mask)
        return memory, src_mask

    def decode(self, tgt_ids: torch.Tensor, memory: torch.Tensor,
               src_mask: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``(batch, tgt_len, vocab)`` for every decoder position."""
        t = tgt_ids.shape[1]
        # boolean like the padding masks: mixing float and bool masks is deprecated in torch
        causal = torch.ones(t, t, dtype=torch.bool, device=tgt_ids.device).triu(1)
        with _no_fastpath():
            out = self.transformer.decoder(
                self._embed(self.tgt_embed, tgt_ids), memory, tgt_mask=causal,
                tgt_is_causal=True, tgt_key_padding_mask=tgt_ids == self.pad_id,
                memory_key_padding_mask=src_mask)
        return self.generator(out)

    def forward(self, src_ids: torch.Tensor, tgt_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits. Without ``tgt_ids`` a decoder input as long as the source
        is made from the source ids (modulo the target vocabulary): one-tensor summaries
        count the cost of that pass."""
        memory, src_mask = self.encode(src_ids)
        if tgt_ids is None:
            tgt_ids = src_ids % self.generator.out_features
        return self.decode(tgt_ids, memory, src_mask)

    @torch.no_grad()
    def greedy(self, src_ids: torch.Tensor, *, max_len: int = 64) -> list[list[int]]:
        """Greedy decoding of a batch; returns each output's ids without ``<bos>``/``<eos>``."""
        memory, src_mask = self.encode(src_ids)
        b = src_ids.shape[0]
        ys = torch.full((b, 1), self.bos_id, dtype=torch.long, device=src_ids.device)
        done = torch.zeros(b, dtype=torch.bool, device=src_ids.device)
        for _ in range(max_len):
            nxt = self.decode(ys, memory, src_mask)[:, -1].argmax(-1)
            nxt = nxt.masked_fill(done, self.pad_id)
            ys = torch.cat([ys, nxt[:, None]], dim=1)
            done |= nxt == self.eos_id
            if bool(done.all()):
                break
        return [_strip(row, self.eos_id, self.pad_id) for row in ys[:, 1:].tolist()]

    @torch.no_grad()
    def beam_search(self, src_ids: torch.Tensor, *, beam: int = 4, max_len: int = 64,
                    alpha: float = 1.0) -> list[list[int]]:
        """Beam search per example; hypotheses are ranked by log-probability / length**alpha.

        Returns the best hypothesis' ids for each example. ``beam=1`` is greedy decoding.
        """
        if beam < 1:
            raise UsageError(f"beam must be at least 1, got {beam}")
        results = []
        for i in range(src_ids.shape[0]):
            row = src_ids[i: i + 1]
            row = row[:, : max(1, int((row != self.pad_id).sum()))]
            results.append(self._beam_one(row, beam, max_len, alpha))
        return results

    def _beam_one(self, src: torch.Tensor, beam: int, max_len: int, alpha: float) -> list[int]:
        memory, src_mask = self.encode(src)
        alive = [([self.bos_id], 0.0)]
        finished: list[tuple[list[int], float]] = []
        for _ in range(max_len):
            ys = torch.tensor([seq for seq, _ in alive], dtype=torch.long, device=src.device)
            n = len(alive)
            logp = self.decode(ys, memory.expand(n, -1, -1), src_mask.expand(n, -1))[:, -1]
            logp = logp.log_softmax(-1)
            total = logp + torch.tensor([s for _, s in alive], device=logp.device)[:, None]
            top, idx = total.flatten().topk(min(beam, total.numel()))
            vocab = logp.shape[-1]
            alive = []
            for score, flat in zip(top.tolist(), idx.tolist(), strict=True):
                seq = ys[flat // vocab].tolist() + [flat % vocab]
                (finished if flat % vocab == self.eos_id else alive).append((seq, score))
            # stop when `beam` hypotheses have ended and the best of them already beats
            # every live one (a longer live one could still win: the usual heuristic)
            if not alive or (len(finished) >= beam and _best(finished, alpha)[1]
                             >= max(_norm(s, len(q) - 1, alpha) for q, s in alive)):
                break
        pool = finished or alive
        return _strip(_best(pool, alpha)[0][1:], self.eos_id, self.pad_id)


@contextlib.contextmanager
def _no_fastpath():
    """Run torch's attention layers on their plain (counted, batch-independent) path."""
    mha = torch.backends.mha
    prev = mha.get_fastpath_enabled()
    mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        mha.set_fastpath_enabled(prev)


def _norm(score: float, length: int, alpha: float) -> float:
    return score / (length ** alpha)


def _best(pool: list[tuple[list[int], float]], alpha: float) -> tuple[list[int], float]:
    seq, score = max(pool, key=lambda h: _norm(h[1], len(h[0]) - 1, alpha))
    return seq, _norm(score, len(seq) - 1, alpha)


def _strip(ids: list[int], eos: int, pad: int) -> list[int]:
    out = []
    for i in ids:
        if i in (eos, pad):
            break
        out.append(i)
    return out


def transformer(*, vocab: str | None = None, vocab_size: int | None = None,
                tgt_vocab_size: int | None = None, **kwargs: Any) -> Seq2SeqTransformer:
    """Build the encoder-decoder Transformer (base configuration unless kwargs say otherwise).

    ``vocab`` is a ``package:``/``file:`` path of a vocabulary JSON (:func:`save_vocab`):
    one vocabulary means shared embeddings, a ``src``/``tgt`` pair means separate ones. It
    fixes the vocabulary sizes and is attached as ``model.src_vocab``/``model.tgt_vocab``
    (``model.tokenizer`` is the source side).
    """
    src = tgt = None
    if vocab is not None:
        src, tgt = read_vocab(vocab)
        vocab_size = check_vocab_size(src, vocab_size, key="vocab_size")
        if tgt is not None:
            tgt_vocab_size = check_vocab_size(tgt, tgt_vocab_size, key="tgt_vocab_size")
    model = Seq2SeqTransformer(vocab_size=vocab_size or 37000, tgt_vocab_size=tgt_vocab_size,
                               **kwargs)
    model.src_vocab, model.tgt_vocab = src, tgt or src
    return model


def translate(model: Seq2SeqTransformer, text: str | list[str], *, beam: int = 1,
              max_len: int = 64, alpha: float = 1.0) -> str | list[str]:
    """Translate one text (or a list) with the model's own vocabularies; ``beam=1`` is greedy."""
    src_vocab, tgt_vocab = getattr(model, "src_vocab", None), getattr(model, "tgt_vocab", None)
    if src_vocab is None or tgt_vocab is None:
        raise UsageError("this model has no vocabulary (random-weights architecture); load a "
                         "trained tag such as 'transformer.dates'")
    texts = [text] if isinstance(text, str) else list(text)
    if not texts:
        return []
    src = src_vocab.batch(texts)
    was = model.training
    model.eval()
    try:
        ids = (model.greedy(src, max_len=max_len) if beam == 1
               else model.beam_search(src, beam=beam, max_len=max_len, alpha=alpha))
    finally:
        model.train(was)
    outs = [tgt_vocab.decode(i) for i in ids]
    return outs[0] if isinstance(text, str) else outs


def predict_translation(model, spec, tag, inputs, *, beam: int | None = None, max_len: int = 64,
                        **_options) -> str | list[str]:
    """``zoo.predict`` entry for ("transformer", "translation"): text(s) in, text(s) out.

    ``beam`` 1 (the default for zoo's own models) is greedy. transformers translation
    models (``marian.en-de``) decode with their repo's tokenizer and generation settings
    (:func:`zoo.plugins.transformer.text.translate`; their ``num_beams`` unless ``beam``
    is given).
    """
    from .text import hf_tokenizer
    from .text import translate as hf_translate

    if hf_tokenizer(model) is not None:
        return hf_translate(model, inputs, beam=beam)
    return translate(model, inputs, beam=beam or 1, max_len=max_len)


def example_input(spec, tag=None) -> tuple:
    """Forward args for summaries: ``(src_ids, tgt_ids)`` for this module's models, else the
    one token tensor the input spec describes (so the whole family can use this)."""
    from zoo.loading.build import tensor_for

    inp = spec.input_for(tag)
    if inp is None:
        raise UsageError(f"model '{spec.name}' declares no input; cannot run a forward pass")
    kw = dict(spec.kwargs) | (dict(spec.pretrained[tag].kwargs) if tag else {})
    vocab = int(kw.get("vocab_size", 100))
    src = tensor_for(inp, high=vocab)
    if spec.builder_path.startswith(__name__ + ":"):
        return (src, tensor_for(inp, high=int(kw.get("tgt_vocab_size") or vocab)))
    if spec.builder_path.endswith(".hf:marian"):   # transformers' (ids, mask, decoder ids)
        return (src, torch.ones_like(src), tensor_for(inp, high=vocab))
    return (src,)
