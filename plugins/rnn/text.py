"""Recurrent text models: token ids -> embedding -> RNN/LSTM/GRU stack -> head.

Two models share one recurrent base: :class:`RecurrentClassifier` (one label per text) and
:class:`RecurrentTagger` (one label per token). Padding id is 0; batches are packed with
their true lengths, so padding never changes a sequence's result (checked in the tests,
both directions included). A builder given ``vocab=`` loads a :class:`WordTokenizer` and
attaches it as ``model.tokenizer``, so a trained model carries what turns text into ids.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from zoo.errors import BuildError, UsageError

from .tokenizer import WordTokenizer, resolve_vocab, tokenize

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
POOLING = ("last", "max", "mean")
#: Inputs longer than this many tokens are cut; the models were trained on tweets.
MAX_TOKENS = 256


class _Recurrent(nn.Module):
    """Embedding and a (bi)directional RNN/LSTM/GRU stack over a packed batch.

    Modules are top-level (``embedding``, ``rnn``, ``head``) so fine-tuning recipes can
    name them directly.
    """

    def __init__(self, *, cell: str, vocab_size: int, embed_dim: int, hidden_size: int,
                 num_layers: int, bidirectional: bool, dropout: float, pad_id: int):
        super().__init__()
        if cell not in CELLS:
            raise BuildError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        if num_layers < 1 or hidden_size < 1 or embed_dim < 1 or vocab_size < 2:
            raise BuildError("num_layers, hidden_size and embed_dim must be >= 1 and "
                             f"vocab_size >= 2; got {num_layers}, {hidden_size}, {embed_dim}, "
                             f"{vocab_size}")
        self.cell = cell
        self.pad_id = pad_id
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.rnn = CELLS[cell](embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                               bidirectional=bidirectional,
                               dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        # Kept here, not read from self.rnn: peft's target_parameters wraps ``rnn``.
        self.directions = 2 if bidirectional else 1
        self.out_features = hidden_size * self.directions

    def _lengths(self, ids: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        if ids.dim() != 2:
            raise UsageError(f"expected token ids of shape [batch, seq], got {list(ids.shape)}")
        if lengths is None:
            # Right padding is assumed: the length is the count of non-pad ids.
            lengths = (ids != self.pad_id).sum(dim=1)
        return lengths.clamp(min=1, max=ids.shape[1]).cpu()

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor | None = None):
        """Return ``(outputs [B, T, F], final hidden of the last layer [B, F], lengths)``."""
        lengths = self._lengths(ids, lengths)
        emb = self.dropout(self.embedding(ids))
        packed = pack_padded_sequence(emb, lengths, batch_first=True, enforce_sorted=False)
        out, hidden = self.rnn(packed)
        if self.cell == "lstm":
            hidden = hidden[0]
        # hidden: (layers * directions, batch, hidden), already in the caller's batch order.
        # The backward direction's final state is the one at t=0 (it read the whole
        # sequence), which is what a sentence summary wants; both are concatenated.
        last = hidden[-self.directions:].transpose(0, 1).reshape(ids.shape[0], -1)
        outputs, _ = pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        return outputs, last, lengths


class RecurrentClassifier(_Recurrent):
    """Classify a padded batch of token ids; ``lengths`` (optional) gives true lengths.

    ``pooling`` picks the sequence summary: ``last`` (final hidden state of the last
    layer, both directions), ``max`` or ``mean`` over the valid time steps of the outputs.
    """

    def __init__(self, *, cell: str = "lstm", vocab_size: int = 20000, embed_dim: int = 128,
                 hidden_size: int = 128, num_layers: int = 1, num_classes: int = 2,
                 bidirectional: bool = False, dropout: float = 0.0, pooling: str = "last",
                 pad_id: int = 0):
        if pooling not in POOLING:
            raise BuildError(f"pooling must be one of {list(POOLING)}, got {pooling!r}")
        super().__init__(cell=cell, vocab_size=vocab_size, embed_dim=embed_dim,
                         hidden_size=hidden_size, num_layers=num_layers,
                         bidirectional=bidirectional, dropout=dropout, pad_id=pad_id)
        self.pooling = pooling
        self.head = nn.Linear(self.out_features, num_classes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        outputs, last, lengths = self.encode(ids, lengths)
        if self.pooling == "last":
            summary = last
        else:
            mask = (torch.arange(ids.shape[1])[None, :] < lengths[:, None]).to(outputs.device)
            mask = mask.unsqueeze(-1)
            if self.pooling == "max":
                summary = outputs.masked_fill(~mask, float("-inf")).amax(dim=1)
            else:
                summary = (outputs * mask).sum(1) / lengths.to(outputs.device)[:, None]
        return self.head(self.dropout(summary))


class RecurrentTagger(_Recurrent):
    """Label every token: ``[B, T]`` ids -> ``[B, T, num_tags]`` logits.

    Positions past a sequence's length get zero logits; mask them in the loss (e.g.
    ``ignore_index`` on their targets).
    """

    def __init__(self, *, cell: str = "lstm", vocab_size: int = 20000, embed_dim: int = 128,
                 hidden_size: int = 128, num_layers: int = 1, num_tags: int = 9,
                 bidirectional: bool = True, dropout: float = 0.0, pad_id: int = 0):
        super().__init__(cell=cell, vocab_size=vocab_size, embed_dim=embed_dim,
                         hidden_size=hidden_size, num_layers=num_layers,
                         bidirectional=bidirectional, dropout=dropout, pad_id=pad_id)
        self.head = nn.Linear(self.out_features, num_tags)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        outputs, _, lengths = self.encode(ids, lengths)
        logits = self.head(self.dropout(outputs))
        mask = torch.arange(ids.shape[1])[None, :] < lengths[:, None]
        return logits * mask.unsqueeze(-1).to(logits)


def _attach_vocab(kwargs: dict, vocab: str | os.PathLike[str] | None) -> WordTokenizer | None:
    """Load ``vocab`` and make ``vocab_size`` agree with it (the file decides)."""
    if vocab is None:
        return None
    tok = WordTokenizer.load(resolve_vocab(vocab))
    given = kwargs.get("vocab_size")
    if given is not None and given != len(tok):
        raise BuildError(f"vocab {vocab} has {len(tok)} tokens but vocab_size={given}; pass "
                         f"vocab_size={len(tok)} (or leave it out) with this vocabulary")
    kwargs["vocab_size"] = len(tok)
    return tok


def text_classifier(*, cell: str = "lstm", vocab: str | os.PathLike[str] | None = None,
                    **kwargs) -> RecurrentClassifier:
    """Build a recurrent text classifier (``cell`` is rnn, lstm or gru).

    Args:
        cell: recurrent cell type.
        vocab: optional vocabulary JSON (``package:``/``file:`` URI or path); loaded as
            ``model.tokenizer``, and ``vocab_size`` is taken from it.
        **kwargs: :class:`RecurrentClassifier` arguments (vocab_size, embed_dim,
            hidden_size, num_layers, num_classes, bidirectional, dropout, pooling).
    """
    tok = _attach_vocab(kwargs, vocab)
    model = RecurrentClassifier(cell=cell, **kwargs)
    model.tokenizer = tok
    return model


def sequence_tagger(*, cell: str = "lstm", vocab: str | os.PathLike[str] | None = None,
                    **kwargs) -> RecurrentTagger:
    """Build a recurrent per-token tagger (``[B, T] -> [B, T, num_tags]``); see
    :func:`text_classifier` for ``vocab``."""
    tok = _attach_vocab(kwargs, vocab)
    model = RecurrentTagger(cell=cell, **kwargs)
    model.tokenizer = tok
    return model


def example_input(spec, tag=None) -> tuple[torch.Tensor]:
    """One full-length batch of ids for summaries and FLOP counts.

    Ids stay in ``[2, 100)``: no padding (so FLOPs are for the whole declared length) and
    valid for every vocabulary, including a trained tag's smaller one.
    """
    inp = spec.input_for(tag)
    seq = inp.size[0] if inp is not None else 64
    g = torch.Generator().manual_seed(0)
    return (torch.randint(2, 100, (1, seq), generator=g, dtype=torch.long),)


def classify_text(model, spec, tag, text: str, *, top_k: int = 3) -> list[tuple[str, float]]:
    """Top-k ``(label, probability)`` for one text with a model that carries a tokenizer.

    Empty text is classified from a single ``<unk>``; long text keeps its first
    ``max_length`` tokens (at most :data:`MAX_TOKENS`), and only its first 20 characters
    per token are ever tokenized, so a 100 kB paste costs what a tweet does.

    Raises:
        UsageError: ``text`` is not a string, or the model has no tokenizer.
    """
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        raise UsageError(f"{spec.name}: the model has no tokenizer; build a trained tag "
                         f"(e.g. zoo.get('{spec.name}.TAG')) or pass vocab=PATH to the builder")
    if not isinstance(text, str):
        raise UsageError(f"expected text (str), got {type(text).__name__}")
    ids, lengths = tok.batch([text], max_length=min(tok.max_length, MAX_TOKENS))
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        probs = torch.softmax(model(ids, lengths), dim=-1)[0]
    model.train(was_training)
    labels = spec.pretrained[tag].labels if tag else None
    k = max(1, min(top_k, probs.numel()))
    values, idx = probs.topk(k)
    return [((labels[i] if labels else str(i)), float(v))
            for v, i in zip(values.tolist(), idx.tolist(), strict=True)]


def tag_tokens(model, spec, tag, text: str) -> list[tuple[str, str, float]]:
    """``(token, label, probability)`` for every token of ``text`` with a tagger that
    carries a tokenizer; labels are the tag's ``labels`` (tag ids without them).

    Raises:
        UsageError: ``text`` is not a string, or the model has no tokenizer.
    """
    tok = getattr(model, "tokenizer", None)
    if tok is None:
        raise UsageError(f"{spec.name}: the model has no tokenizer; pass vocab=PATH to the "
                         "builder or build a trained tag")
    if not isinstance(text, str):
        raise UsageError(f"expected text (str), got {type(text).__name__}")
    n = min(tok.max_length, MAX_TOKENS)
    tokens = tokenize(text[: n * 20])[:n]   # the words as written (normalised), not <unk>
    ids = [tok.index.get(t, tok.unk_id) for t in tokens]
    if not ids:
        return []
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        probs = torch.softmax(model(torch.tensor([ids]), torch.tensor([len(ids)])), dim=-1)[0]
    model.train(was_training)
    labels = spec.pretrained[tag].labels if tag else None
    best, idx = probs.max(dim=-1)
    return [(token, labels[i] if labels else str(i), float(p))
            for token, i, p in zip(tokens, idx.tolist(), best.tolist(), strict=True)]
