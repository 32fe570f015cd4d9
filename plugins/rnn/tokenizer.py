"""A small word-level tokenizer for tweets and other short English text, saved as JSON.

Rules, applied in this order (documented because the trained models depend on them):

1. HTML entities are decoded (``&amp;`` -> ``&``) and the text is lowercased.
2. URLs (``http://...``, ``https://...``, ``www....``) become ``<url>``; @mentions become
   ``<user>``; numbers become ``<num>``.
3. Emoticons (``:)``, ``:-(``, ``;D``, ``<3``, ``:/``...) and emoji are kept as one token each.
4. A hashtag gives its word (``#fail`` -> ``fail``), so a tag and the plain word share an id.
5. Words keep inner apostrophes (``don't``); letters repeated 3+ times shrink to two
   (``soooo`` -> ``soo``); runs of ``!``/``?``/``.`` become one token (``!!!`` -> ``!``).
6. Any other punctuation is one token per character; everything else is dropped.

Ids: 0 is ``<pad>``, 1 is ``<unk>``; then the vocabulary, most frequent first. The JSON
file (``{"format": "zoo-word-vocab", "version": 1, "tokens": [...], ...}``) lists tokens
in id order, so the file alone rebuilds the tokenizer. Nothing here imports torch unless a
tensor is asked for.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, WeightsError

PAD, UNK = "<pad>", "<unk>"
SPECIALS = (PAD, UNK)
FORMAT = "zoo-word-vocab"
VERSION = 1

_EMOTICON = (r"(?:[<>]?[:;=8xX][\-o\*']?[\)\]\(\[dDpP/\\|@3\}\{]+"   # :) ;-D =P xD >:(
             r"|[\)\]\(\[/\\|\}\{]+[\-']?[:;=]"                      # (: ):
             r"|<3+|</3+)")                                         # <3 </3
_TOKEN_RE = re.compile(
    r"(?P<url>(?:https?://|www\.)\S+)"
    r"|(?P<user>@\w+)"
    r"|(?P<emo>" + _EMOTICON + r")(?=\s|$|[^\w])"
    r"|(?P<num>\d+(?:[.,:]\d+)*)"
    r"|#(?P<tag>[^\W_][\w']*)"
    r"|(?P<word>[^\W\d_]+(?:['’][^\W\d_]+)*)"
    r"|(?P<rep>[!?.])(?P=rep)*"
    r"|(?P<emoji>[\U0001F000-\U0001FAFF\u2600-\u27BF])"
    r"|(?P<punct>[^\w\s])",
)
_REPEAT_RE = re.compile(r"(.)\1{2,}")


def tokenize(text: str) -> list[str]:
    """Split ``text`` into normalised word tokens (see the module docstring for the rules)."""
    text = html.unescape(text)
    out: list[str] = []
    # Emoticons are matched before lowercasing (":D" and ":d" differ), words after.
    for m in _TOKEN_RE.finditer(text):
        kind = m.lastgroup
        if kind == "url":
            out.append("<url>")
        elif kind == "user":
            out.append("<user>")
        elif kind == "num":
            out.append("<num>")
        elif kind == "emo":
            out.append(m.group("emo").upper() if m.group("emo")[-1] in "dpDP" else m.group("emo"))
        elif kind in ("tag", "word"):
            out.append(_REPEAT_RE.sub(r"\1\1", m.group(kind).lower().replace("’", "'")))
        elif kind == "rep":
            out.append(m.group("rep"))
        else:
            out.append(m.group(0))
    return out


class WordTokenizer:
    """Map text to ids with a fixed vocabulary; unknown words get ``<unk>`` (id 1).

    Example:
        >>> tok = WordTokenizer.train(["I love it", "I hate it"], max_size=100)
        >>> tok.encode("I LOVE it!!!")
        [2, 5, 3, 6]
    """

    def __init__(self, tokens: Iterable[str], *, max_length: int = 64):
        self.tokens: list[str] = list(tokens)
        if tuple(self.tokens[:2]) != SPECIALS:
            raise UsageError(f"a vocabulary must start with {list(SPECIALS)}, got "
                             f"{self.tokens[:2]}; rebuild it with WordTokenizer.train")
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise UsageError("the vocabulary lists a token twice; rebuild it")
        self.max_length = max_length
        self.pad_id, self.unk_id = 0, 1

    def __len__(self) -> int:
        return len(self.tokens)

    def __repr__(self) -> str:
        return f"WordTokenizer({len(self)} tokens, max_length={self.max_length})"

    @classmethod
    def train(cls, texts: Iterable[str], *, max_size: int = 12000, min_freq: int = 2,
              max_length: int = 64) -> WordTokenizer:
        """Build a vocabulary of the ``max_size`` most frequent tokens (specials included)
        seen at least ``min_freq`` times; ties break alphabetically, so it is deterministic."""
        counts = Counter(t for text in texts for t in tokenize(text))
        for s in SPECIALS:
            counts.pop(s, None)
        ranked = sorted((t for t, c in counts.items() if c >= min_freq),
                        key=lambda t: (-counts[t], t))
        return cls([*SPECIALS, *ranked[:max(0, max_size - len(SPECIALS))]],
                   max_length=max_length)

    def encode(self, text: str, *, max_length: int | None = None) -> list[int]:
        """Token ids of ``text``, cut to ``max_length`` (the tokenizer's by default).

        Very long input is cut *before* tokenizing (at 20 characters per allowed token),
        so a 100 kB paste costs no more than a tweet.
        """
        if not isinstance(text, str):
            raise UsageError(f"expected text (str), got {type(text).__name__}")
        n = max_length or self.max_length
        toks = tokenize(text[: n * 20])[:n]
        return [self.index.get(t, self.unk_id) for t in toks]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids`` (padding dropped); the inverse of :meth:`encode` up to ``<unk>``."""
        return [self.tokens[i] for i in ids if i != self.pad_id]

    def batch(self, texts: list[str], *, max_length: int | None = None):
        """``(ids, lengths)`` tensors for a padded batch; empty texts get one ``<unk>``
        so that every sequence has length >= 1 (packing refuses zero lengths)."""
        import torch

        rows = [self.encode(t, max_length=max_length) or [self.unk_id] for t in texts]
        width = max(len(r) for r in rows) if rows else 1
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r, dtype=torch.long)
        lengths = torch.tensor([len(r) for r in rows], dtype=torch.long)
        return ids, lengths

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "lowercase": True,
                "max_length": self.max_length, "specials": list(SPECIALS),
                "tokens": self.tokens}

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the vocabulary JSON (compact, one token list in id order)."""
        p = Path(path)
        p.write_text(json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":")),
                     encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> WordTokenizer:
        """Read a vocabulary JSON written by :meth:`save`.

        Raises:
            WeightsError: the file is missing or is not a zoo word vocabulary.
        """
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WeightsError(f"{p}: no such vocabulary file; check the 'vocab' path") from None
        except (OSError, ValueError) as e:
            raise WeightsError(f"{p}: not a readable vocabulary JSON ({e})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT \
                or not isinstance(data.get("tokens"), list):
            raise WeightsError(f"{p}: not a {FORMAT} file (needs 'format' and 'tokens'); "
                               "write it with WordTokenizer.save")
        if data.get("version", VERSION) > VERSION:
            raise WeightsError(f"{p}: vocabulary format version {data['version']} is newer "
                               f"than this zoo reads ({VERSION}); upgrade zoo")
        try:
            return cls(data["tokens"], max_length=int(data.get("max_length", 64)))
        except UsageError as e:
            raise WeightsError(f"{p}: {e}") from None


def resolve_vocab(vocab: str | os.PathLike[str]) -> Path:
    """A vocabulary location -> a local file: ``package:IMPORT/PATH``, ``file:PATH`` or a path."""
    from zoo.loading.paths import local_path

    return local_path(vocab)
