"""Recurrent text classifiers: token ids -> embedding -> RNN/LSTM/GRU stack -> class logits."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class RecurrentClassifier(nn.Module):
    """Classify a padded batch of token ids; ``lengths`` (optional) packs the sequences.

    Padding id is 0. The sequence summary is the last layer's final hidden state (both
    directions concatenated when bidirectional), read at each sequence's true end.
    """

    def __init__(self, *, cell: str = "lstm", vocab_size: int = 20000, embed_dim: int = 128,
                 hidden_size: int = 128, num_layers: int = 1, num_classes: int = 2,
                 bidirectional: bool = False, dropout: float = 0.0, pad_id: int = 0):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {sorted(CELLS)}, got {cell!r}")
        self.cell = cell
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=pad_id)
        self.rnn = CELLS[cell](embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                               bidirectional=bidirectional,
                               dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), num_classes)
        self.pad_id = pad_id

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        if lengths is None:
            lengths = (ids != self.pad_id).sum(dim=1).clamp(min=1)
        emb = self.embedding(ids)
        packed = pack_padded_sequence(emb, lengths.cpu(), batch_first=True, enforce_sorted=False)
        _, hidden = self.rnn(packed)
        if self.cell == "lstm":
            hidden = hidden[0]
        # hidden: (layers * directions, batch, hidden); keep the last layer's directions
        dirs = 2 if self.rnn.bidirectional else 1
        last = hidden[-dirs:].transpose(0, 1).reshape(ids.shape[0], -1)
        return self.head(self.dropout(last))


def text_classifier(*, cell: str = "lstm", **kwargs) -> RecurrentClassifier:
    """Build a recurrent text classifier (``cell`` is rnn, lstm or gru)."""
    return RecurrentClassifier(cell=cell, **kwargs)
