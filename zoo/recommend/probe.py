"""A look at a user's training data for ``zoo recommend --data``, without torch.

It reads what ``zoo finetune --data`` reads (a sample set name, an image folder with one
sub-folder per class, a ``.csv``/``.jsonl`` file with text and label columns) and
reports how many examples and classes there are and, for images, their channels and
size from the file headers of a sample. That is enough to judge domain distance where
it is plain: 8x8 greyscale digits are far from the 224x224 colour photos behind
ImageNet weights. Where it is not plain (text, graphs) the probe says nothing about it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from zoo.errors import UsageError

#: Same suffixes as zoo.finetune.data (which imports torch, so it is not imported here).
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
#: Images whose headers are read (the rest are only counted).
SAMPLE_IMAGES = 32
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


@dataclass(frozen=True)
class DataProfile:
    """What the probe learnt: modality, counts and (images) channels and typical size."""

    source: str
    kind: str                      # "image", "text" or "graph"
    examples: int
    classes: int | None
    channels: int | None = None    # 1 (greyscale) or 3 (colour), images only
    side: int | None = None        # median shorter side in pixels, images only

    def describe(self) -> str:
        """One line for the user: ``1,797 images in 10 classes, 8x8 px greyscale``."""
        unit = {"image": "images", "text": "texts", "graph": "nodes"}[self.kind]
        out = f"{self.examples:,} {unit}"
        if self.classes:
            out += f" in {self.classes} classes"
        if self.channels:
            out += ", greyscale" if self.channels == 1 else ", colour"
        if self.side:
            out += f", ~{self.side} px a side"
        return out


#: The sample sets zoo finetune knows, described without loading them.
SAMPLE_SETS = {
    "digits": DataProfile("digits", "image", 1797, 10, channels=1, side=8),
    "shapes": DataProfile("shapes", "image", 600, 3, channels=3, side=32),
    "sentiment": DataProfile("sentiment", "text", 38158, 3),
    "karate": DataProfile("karate", "graph", 34, 4),
}


def probe(data: str | os.PathLike[str], *, label_column: str = "label") -> DataProfile:
    """Profile ``data`` as ``zoo finetune --data`` would read it.

    Raises:
        UsageError: no such file or folder, or not a format zoo finetune reads.
    """
    text = os.fspath(data)
    if text in SAMPLE_SETS:
        return SAMPLE_SETS[text]
    p = Path(text).expanduser()
    if p.is_dir():
        return _folder(p)
    if not p.is_file():
        raise UsageError(f"--data {text}: no such file or folder, and not a sample set "
                         f"({', '.join(SAMPLE_SETS)})")
    if p.suffix.lower() not in (".csv", ".tsv", ".jsonl", ".json"):
        raise UsageError(f"--data {text}: give an image folder (one sub-folder per class), "
                         "a .csv or a .jsonl file")
    return _table(p, label_column)


def _folder(p: Path) -> DataProfile:
    import statistics

    classes = [d for d in sorted(p.iterdir()) if d.is_dir() and not d.name.startswith(".")]
    files = [f for d in classes for f in sorted(d.rglob("*"))
             if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()]
    if not files:
        raise UsageError(f"--data {p}: no images in class sub-folders (DIR/CLASS/*.png)")
    step = max(1, len(files) // SAMPLE_IMAGES)
    channels, sides = [], []
    try:
        from PIL import Image
    except ImportError:      # counts alone still help
        Image = None
    for f in files[::step][:SAMPLE_IMAGES] if Image is not None else ():
        try:
            with Image.open(f) as im:         # reads the header only
                bands = [b for b in im.getbands() if b != "A"]
                grey = im.mode in GREY_MODES or (im.mode == "P" and _grey_palette(im))
                channels.append(1 if grey or len(bands) == 1 else 3)
                sides.append(min(im.size))
        except Exception:  # noqa: BLE001 - an unreadable image is finetune's to report
            continue
    used = {f.relative_to(p).parts[0] for f in files}
    return DataProfile(str(p), "image", len(files), len(used),
                       channels=statistics.mode(channels) if channels else None,
                       side=int(statistics.median(sides)) if sides else None)


def _grey_palette(im) -> bool:
    pal = im.getpalette() or []
    return all(pal[i] == pal[i + 1] == pal[i + 2] for i in range(0, len(pal) - 2, 3))


def _table(p: Path, label_column: str) -> DataProfile:
    import csv

    labels: set[str] = set()
    rows = 0
    try:
        with open(p, encoding="utf-8-sig", newline="") as fh:
            if p.suffix.lower() in (".jsonl", ".json"):
                for line in fh:
                    if not line.strip():
                        continue
                    rows += 1
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(row, dict) and label_column in row:
                        labels.add(str(row[label_column]).strip())
            else:
                reader = csv.DictReader(fh, delimiter="\t" if p.suffix.lower() == ".tsv"
                                        else ",")
                for row in reader:
                    rows += 1
                    if row.get(label_column) is not None:
                        labels.add(str(row[label_column]).strip())
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"--data {p}: cannot read it ({e}); give a UTF-8 .csv or "
                         ".jsonl file") from None
    if not rows:
        raise UsageError(f"--data {p}: has no rows")
    return DataProfile(str(p), "text", rows, len(labels) or None)
