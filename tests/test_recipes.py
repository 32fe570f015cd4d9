"""Every built-in task fine-tunes on a user's own files: each recipe trains for real on
small data made here (seconds) and its metric moves the right way; the output directory
rebuilds with ``zoo get OUT``."""

from __future__ import annotations

import json
import os
import random

import pytest

torch = pytest.importorskip("torch")

import zoo  # noqa: E402
from conftest import run_zoo  # noqa: E402
from zoo.errors import UsageError  # noqa: E402

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)

QUIET = dict(progress=False, overwrite=True)


def _ft(*args, **kwargs):
    from zoo.finetune import finetune

    return finetune(*args, **{**QUIET, **kwargs})


def _digit_folder(root, keep=(0, 1), n=240):
    """PNG digits of the classes ``keep`` in one folder (no class sub-folders)."""
    from PIL import Image

    from zoo.finetune.data import _digits

    x, y, _ = _digits()
    root.mkdir(parents=True, exist_ok=True)
    count = 0
    for i in range(len(y)):
        if y[i] in keep and count < n:
            Image.fromarray((x[i, 0].numpy() * 255).astype("uint8")).save(root / f"{i}.png")
            count += 1
    return root


def _coco(root, n=240, size=96, classes=("circle", "square", "triangle")):
    """Synthetic shapes saved as PNG files plus a COCO-style boxes.json next to them."""
    from PIL import Image

    from zoo.plugins.cnn.shapes import CLASSES, make_shapes

    (root / "img").mkdir(parents=True, exist_ok=True)
    images, targets = make_shapes(n, size=64, seed=5)
    ids = {c: i + 1 for i, c in enumerate(classes)}
    doc = {"images": [], "annotations": [],
           "categories": [{"id": i, "name": c} for c, i in ids.items()]}
    scale = size / 64
    for i, (im, t) in enumerate(zip(images, targets, strict=True)):
        Image.fromarray(im.permute(1, 2, 0).numpy()).resize((size, size)).save(
            root / "img" / f"{i}.png")
        doc["images"].append({"id": i, "file_name": f"img/{i}.png", "width": size,
                              "height": size})
        for b, lab in zip(t["boxes"].tolist(), t["labels"].tolist(), strict=True):
            if CLASSES[lab] in ids:
                x0, y0, x1, y1 = (v * scale for v in b)
                doc["annotations"].append({"image_id": i, "bbox": [x0, y0, x1 - x0, y1 - y0],
                                           "category_id": ids[CLASSES[lab]]})
    (root / "boxes.json").write_text(json.dumps(doc))
    return root / "boxes.json"


# -- generation ----------------------------------------------------------------------------------

@pytest.mark.parametrize("model, epochs, lr", [("gan.digits", 3, 5e-4),
                                               ("dcgan.digits", 3, 5e-4)])
def test_gans_learn_a_users_image_folder(tmp_path, model, epochs, lr):
    folder = _digit_folder(tmp_path / "zeros-and-ones")
    result = _ft(model, str(folder), out=tmp_path / "out", epochs=epochs, lr=lr,
                 batch_size=16)
    before, after = result.extra["initial"]["fd"], result.metrics["fd"]
    # Samples move towards the new images: the Frechet distance to held-out ones falls.
    assert after < 0.9 * before, (before, result.history)
    again = zoo.get(str(tmp_path / "out"))
    grid = zoo.tasks.generation.generate(again, zoo.api.spec(model)[0], None, 3, n=4)
    assert grid.dtype.name == "uint8" and grid.ndim == 3
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["metric"] == "fd" and saved["final"]["fd"] == after


def test_zoo_finetune_gan_digits_on_digits_runs_from_the_cli(tmp_path):
    proc = run_zoo("finetune", "gan.digits", "--data", "digits", "--out", str(tmp_path / "o"),
                   "--epochs", "1", "--limit", "200", "--json",
                   env={"OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "fd" in json.loads(proc.stdout)


def test_cyclegan_learns_two_folders(tmp_path):
    from PIL import Image

    from zoo.finetune.data import _digits

    x, _, _ = _digits()
    for i in range(120):   # domain A: digits; domain B: the same digits, inverted
        for name, img in (("A", x[i, 0]), ("B", 1 - x[i + 120, 0])):
            (tmp_path / "pairs" / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray((img.numpy() * 255).astype("uint8")).save(
                tmp_path / "pairs" / name / f"{i}.png")
    result = _ft("cyclegan.digits-edges", str(tmp_path / "pairs"), out=tmp_path / "out",
                 epochs=2, batch_size=16)
    assert result.metrics["cycle"] < 0.9 * result.extra["initial"]["cycle"], result.history


def test_a_recipe_run_resumes_exactly_after_ctrl_c(tmp_path):
    from zoo.finetune.outputs import TrainingInterrupted

    run = dict(epochs=2, limit=200, val_limit=60, batch_size=32)
    whole = _ft("gan.digits", "digits", out=tmp_path / "whole", **run)

    def ctrl_c(epoch, step, model):
        if (epoch, step) == (2, 2):
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="holds epoch 1: rerun the same command "
                                                  "with --resume"):
        _ft("gan.digits", "digits", out=tmp_path / "cut", on_step=ctrl_c, **run)
    again = _ft("gan.digits", "digits", out=tmp_path / "cut", resume=True, **run)
    assert again.metrics == whole.metrics          # the noise, too, comes back as it was
    assert all(torch.equal(a, b) for a, b in zip(whole.model.state_dict().values(),
                                                 again.model.state_dict().values(),
                                                 strict=True))


def test_techniques_and_metrics_a_recipe_lacks_are_refused_before_training(tmp_path):
    with pytest.raises(UsageError, match="--technique lora is not available for "
                                         "image-generation models; use full or freeze"):
        _ft("gan", "digits", out=tmp_path / "o", technique="lora")
    with pytest.raises(UsageError, match="unknown --metric 'accuracy' for image-generation; "
                                         "use one of fd, loss"):
        _ft("gan", "digits", out=tmp_path / "o", metric="accuracy")
    assert not (tmp_path / "o").exists()


# -- detection -----------------------------------------------------------------------------------

def test_yolo_learns_coco_boxes_and_gets_a_head_for_the_files_classes(tmp_path):
    data = _coco(tmp_path / "coco", classes=("circle", "square"))
    result = _ft("yolo", str(data), out=tmp_path / "out", epochs=4, lr=3e-3)
    assert result.extra["initial"]["map50"] < 0.05
    assert result.metrics["map50"] > 0.2, result.history
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["labels"] == ["circle", "square"] and config["kwargs"]["num_classes"] == 2
    model = zoo.get(str(tmp_path / "out"))
    assert model.head.out_channels == 5 + 2


def test_detr_learns_coco_boxes(tmp_path):
    data = _coco(tmp_path / "coco", n=200)
    result = _ft("detr_compact", str(data), out=tmp_path / "out", epochs=3, lr=1e-3)
    # DETR's matching takes long to pay off in mAP; its set loss falls from the start
    assert result.metrics["val_loss"] < 0.85 * result.extra["initial"]["val_loss"], \
        result.history


def test_coco_file_names_outside_the_folder_are_refused(tmp_path):
    data = _coco(tmp_path / "coco", n=4)
    doc = json.loads(data.read_text())
    (tmp_path / "secret.png").write_bytes(b"")
    doc["images"][0]["file_name"] = "../secret.png"
    data.write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="points outside the JSON file's folder"):
        _ft("yolo", str(data), out=tmp_path / "o", epochs=1)


# -- text ----------------------------------------------------------------------------------------

def test_translation_learns_text_pairs(tmp_path):
    from zoo.loading.build import save
    from zoo.plugins.transformer.seq2seq import translate

    rng = random.Random(0)
    words = ["".join(rng.choice("abcdefgh") for _ in range(rng.randint(2, 6)))
             for _ in range(400)]
    data = tmp_path / "pairs.jsonl"
    data.write_text("".join(json.dumps({"source": w, "target": w.upper()}) + "\n"
                            for w in words))
    small = dict(d_model=32, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                 dim_feedforward=64, dropout=0.0, vocab_size=20)
    save(zoo.get("transformer", **small), tmp_path / "tiny", spec=zoo.api.spec("transformer")[0],
         tag=None, kwargs=small)
    result = _ft(str(tmp_path / "tiny"), str(data), out=tmp_path / "out", epochs=6, lr=3e-3)
    assert result.extra["initial"]["exact_match"] == 0.0
    assert result.metrics["exact_match"] > 0.1, result.history
    again = zoo.get(str(tmp_path / "out"))     # the learned vocabularies travel along
    assert translate(again, "abc").isupper()


def test_text_generation_learns_plain_lines(tmp_path):
    lines = [f"the {c} is {c}" for c in ("red", "blue", "green", "black", "white")] * 8
    (tmp_path / "lines.txt").write_text("\n".join(lines) + "\n")
    result = _ft("gpt_tiny", str(tmp_path / "lines.txt"), out=tmp_path / "out", epochs=4,
                 lr=3e-3, batch_size=8)
    assert result.metrics["val_loss"] < 0.6 * result.extra["initial"]["val_loss"]
    assert zoo.get(str(tmp_path / "out")).tokenizer is not None


def test_token_classification_learns_tagged_sentences(tmp_path):
    rng = random.Random(0)
    rows = []
    for _ in range(200):
        words = [rng.choice(["the", "a"]), rng.choice(["cat", "dog", "bird"]),
                 rng.choice(["runs", "eats", "sees"])]
        rows.append({"tokens": words, "tags": ["DET", "NOUN", "VERB"]})
    (tmp_path / "tags.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = _ft("lstm_tagger", str(tmp_path / "tags.jsonl"), out=tmp_path / "out",
                 epochs=2, lr=3e-3)
    assert result.metrics["accuracy"] > max(0.9, result.extra["initial"]["accuracy"])


def test_text_recipes_hold_out_rows_and_honour_both_limits():
    """Translation, text generation and token classification split their rows alike
    (token classification ignored --val-limit before they shared the split)."""
    from zoo.finetune.recipes.base import DataOptions
    from zoo.finetune.recipes.text import _split

    rows = list(range(50))
    train, val = _split(rows, None, DataOptions(val_fraction=0.2, limit=30, val_limit=4))
    assert len(train) == 30 and len(val) == 4
    assert not set(val) & {rows[i] for i in train}          # held out, not trained on
    assert _split(rows, None, DataOptions(val_fraction=0.2)) == _split(
        rows, None, DataOptions(val_fraction=0.2))           # the same split every run
    train, val = _split(rows, ["v"] * 9, DataOptions(val_limit=5))
    assert train == rows and val == ["v"] * 5               # --val-data: every row trains


# -- graphs --------------------------------------------------------------------------------------

def test_node_classification_learns_a_graph_file(tmp_path):
    rng = random.Random(0)
    n = 60     # two communities: dense inside, sparse across
    edges = [[a, b] for a in range(n) for b in range(a + 1, n)
             if rng.random() < (0.2 if (a < 30) == (b < 30) else 0.01)]
    labels = [("left" if i < 30 else "right") if i % 3 else None for i in range(n)]
    (tmp_path / "g.json").write_text(json.dumps({"edges": edges, "labels": labels}))
    result = _ft("gcn", str(tmp_path / "g.json"), out=tmp_path / "out", epochs=10, lr=1e-2)
    assert result.metrics["accuracy"] >= 0.9, result.history    # chance: 0.5
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["kwargs"]["in_channels"] == n and config["labels"] == ["left", "right"]


def test_graph_classification_learns_a_graph_file(tmp_path):
    from zoo.plugins.gnn.datasets import SHAPES, make_shapes

    graphs = [{"edges": g.edge_index.t().tolist(), "num_nodes": int(g.num_nodes),
               "label": SHAPES[int(g.y)]} for g in make_shapes(160, seed=3)]
    (tmp_path / "g.json").write_text(json.dumps({"graphs": graphs}))
    result = _ft("gin", str(tmp_path / "g.json"), out=tmp_path / "out", epochs=6, lr=1e-2)
    assert result.metrics["accuracy"] > 0.7, result.history    # chance: 0.25
    model = zoo.get(str(tmp_path / "out"))
    assert model.head[-1].out_features == 4


def test_graph_file_mistakes_are_one_line(tmp_path):
    (tmp_path / "g.json").write_text(json.dumps({"edges": [[0, 9]], "labels": ["a", "b"]}))
    with pytest.raises(UsageError, match="'labels' has 2 entries for 10 nodes"):
        _ft("gcn", str(tmp_path / "g.json"), out=tmp_path / "o", epochs=1)
