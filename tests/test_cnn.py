"""CNN family: catalog entries build and run, YOLO detects shapes, LeNet-5 reads digits,
and the timm/ and torchvision/ pass-through namespaces build the libraries' own modules."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import zoo
from zoo.api import spec as resolve
from zoo.errors import UnknownModelError
from zoo.loading import build
from zoo.registry import default_registry

ROOT = Path(__file__).resolve().parents[1]
_REG = default_registry()
CNN = sorted(s.name for s in _REG if s.family == "cnn" and s.task == "image-classification")
# Big or costly entries: parameters counted on the meta device, and one of each kind
# built for real with random weights (initialising 60-140 M parameters is what costs
# time). Every other entry builds and runs a forward pass on its declared input.
HEAVY = sorted(n for n in CNN if (_REG.spec(n).params or 0) > 30_000_000
               or (_REG.spec(n).gflops or 0) > 8.5)
BUILT_FOR_REAL = ("vgg19_bn", "resnet152", "efficientnet_b7", "inception_v3")
SMALL = [n for n in CNN if n not in HEAVY]


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread: on a shared 2-core runner, more threads spin against the other
    processes and run several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- catalog entries -------------------------------------------------------------------------

def test_catalog_has_the_cnn_family():
    expected = {"lenet5", "alexnet", "vgg16", "vgg19", "vgg16_bn", "vgg19_bn", "resnet18",
                "resnet34", "resnet50", "resnet101", "resnet152", "inception_v3",
                "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
                *(f"efficientnet_b{i}" for i in range(8))}
    assert expected <= set(CNN)
    for name in expected - {"lenet5"}:
        spec = _REG.spec(name)
        assert spec.builder_path == f"torchvision.models:{name}"
        tag = spec.pretrained["imagenet"]
        assert tag.source.startswith("torchvision:") and tag.default
        assert 50 < tag.metrics["imagenet-top1"] < tag.metrics["imagenet-top5"] < 100
        assert dict(tag.kwargs)["num_classes"] == 1000 and tag.labels is None
        assert spec.params and spec.gflops and spec.paper_url and spec.year and spec.tags
    assert _REG.spec("inception_v3").input.size == (3, 299, 299)
    assert _REG.spec("resnet50").params == 25_557_032
    assert _REG.spec("vgg16").params == 138_357_544


def test_imagenet_metrics_match_torchvision_weights_meta():
    import torchvision.models as tvm

    for name in CNN:
        tag = _REG.spec(name).pretrained.get("imagenet")
        if tag is None:
            continue
        enum_name, member = tag.source.removeprefix("torchvision:").split(".")
        meta = tvm.get_model_weights(name)[member].meta
        assert type(tvm.get_model_weights(name)[member]).__name__ == enum_name
        assert tag.metrics["imagenet-top1"] == meta["_metrics"]["ImageNet-1K"]["acc@1"]
        assert tag.metrics["imagenet-top5"] == meta["_metrics"]["ImageNet-1K"]["acc@5"]
        assert _REG.spec(name).params == meta["num_params"], name


@pytest.mark.parametrize("name", SMALL)
def test_small_model_builds_and_classifies_its_declared_input(name):
    spec = _REG.spec(name)
    model = zoo.get(name).eval()
    assert _num_params(model) == spec.params
    x = build.tensor_for(spec.input)
    with torch.inference_mode():
        out = model(x)
    num_classes = dict(spec.kwargs).get("num_classes", 1000)
    assert out.shape == (1, num_classes)
    assert torch.isfinite(out).all()


@pytest.mark.slow
def test_heavy_models_build_with_random_weights():
    """Every heavy entry's parameter count matches (meta device: shapes, no memory); one
    of each architecture is built for real and a small input runs through it."""
    assert {"vgg19", "vgg19_bn", "efficientnet_b6", "efficientnet_b7", "resnet152"} <= set(HEAVY)
    assert set(BUILT_FOR_REAL) <= set(HEAVY)
    for name in HEAVY:
        with torch.device("meta"):
            model = build.build(_REG.spec(name))
        assert _num_params(model) == _REG.spec(name).params, name
    torch.manual_seed(0)
    for name in BUILT_FOR_REAL:
        spec = _REG.spec(name)
        model = zoo.get(name).eval()
        assert _num_params(model) == spec.params, name
        assert all(p.device.type == "cpu" and p.abs().sum() > 0 for p in model.parameters()
                   if p.dim() > 1), name                   # real, initialised weights
        with torch.inference_mode():   # 96 x 96 is enough to prove the graph runs end to end
            out = model(torch.randn(1, 3, 96, 96))
        assert out.shape == (1, 1000) and torch.isfinite(out).all(), name
        del model


def _peft_matches(name: str, key: str) -> bool:
    # peft's rule for a list of target_modules: exact name or a ".key" suffix.
    return name == key or name.endswith("." + key)


@pytest.mark.parametrize("name", sorted(s.name for s in _REG if s.family == "cnn"))
def test_finetune_hints_name_real_modules(name):
    """head, LoRA targets and layer groups point at modules that exist and fit LoRA."""
    spec = _REG.spec(name)
    with torch.device("meta"):
        model = build.build(spec)
    modules = dict(model.named_modules())
    ft = dict(spec.finetune)
    assert isinstance(modules[ft["head"]], nn.Linear | nn.Conv2d)
    for key in ft["lora_targets"]:
        hits = [m for n, m in modules.items() if _peft_matches(n, key)]
        assert hits, f"{name}: lora target {key!r} matches nothing"
        for m in hits:
            assert isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.groups == 1), \
                f"{name}: {key!r} matches a {type(m).__name__} LoRA cannot wrap"
    params = [n for n, _ in model.named_parameters()]
    for group in ft["layer_groups"]:
        assert any(p.startswith(group + ".") for p in params), f"{name}: group {group!r}"


# -- YOLO ------------------------------------------------------------------------------------

def test_make_shapes_is_deterministic_and_well_formed():
    from zoo.plugins.cnn.shapes import CLASSES, make_shapes

    a, ta = make_shapes(6, size=64, seed=7)
    b, tb = make_shapes(6, size=64, seed=7)
    c, _ = make_shapes(6, size=64, seed=8)
    assert a.dtype == torch.uint8 and a.shape == (6, 3, 64, 64)
    assert torch.equal(a, b) and not torch.equal(a, c)
    for t, u in zip(ta, tb, strict=True):
        assert torch.equal(t["boxes"], u["boxes"]) and torch.equal(t["labels"], u["labels"])
        assert t["boxes"].dtype == torch.float32 and t["labels"].dtype == torch.int64
        assert 1 <= len(t["boxes"]) <= 3
        assert (t["boxes"][:, :2] >= 0).all() and (t["boxes"][:, 2:] <= 64).all()
        assert (t["boxes"][:, 2:] > t["boxes"][:, :2]).all()
        assert ((t["labels"] >= 0) & (t["labels"] < len(CLASSES))).all()
    # The box is tight: the shape's colour differs from the background inside it.
    img, box = a[0].float(), ta[0]["boxes"][0].round().long()
    inside = img[:, box[1]:box[3], box[0]:box[2]]
    assert (inside.std(dim=(1, 2)) > 10).any() or inside.mean() > img.mean()


def test_mean_average_precision_by_hand():
    from zoo.plugins.cnn.shapes import mean_average_precision

    gt = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
           "labels": torch.tensor([0, 1])}]
    perfect = [{"boxes": gt[0]["boxes"], "scores": torch.tensor([0.9, 0.8]),
                "labels": torch.tensor([0, 1])}]
    assert mean_average_precision(perfect, gt)["map"] == pytest.approx(1.0)
    # Class 0: a false positive ranked above the hit -> precision 1/2 at recall 1.
    # Class 1: labelled wrong -> no hit at all.
    mixed = [{"boxes": torch.tensor([[40.0, 40, 50, 50], [0, 0, 10, 11], [20, 20, 30, 30]]),
              "scores": torch.tensor([0.9, 0.8, 0.7]), "labels": torch.tensor([0, 0, 0])}]
    result = mean_average_precision(mixed, gt)
    assert result["ap"] == {0: pytest.approx(0.5), 1: 0.0}
    assert result["map"] == pytest.approx(0.25)
    empty = [{"boxes": torch.zeros(0, 4), "scores": torch.zeros(0),
              "labels": torch.zeros(0, dtype=torch.long)}]
    assert mean_average_precision(empty, gt)["map"] == 0.0


def test_yolo_output_format_train_and_eval():
    from zoo.plugins.cnn.yolo import yolo

    torch.manual_seed(0)
    model = yolo(num_classes=3)
    x = torch.randn(2, 3, 64, 64)
    model.train()
    raw = model(x)
    assert raw.shape == (2, 8, 8, 5 + 3)
    model.eval()
    model.score_threshold = 0.0           # keep every box, to exercise NMS
    with torch.inference_mode():
        dets = model(x)
    assert isinstance(dets, list) and len(dets) == 2
    for d in dets:
        assert set(d) == {"boxes", "scores", "labels"}
        n = len(d["scores"])
        assert 0 < n <= model.max_detections
        assert d["boxes"].shape == (n, 4) and d["labels"].shape == (n,)
        assert d["labels"].dtype == torch.int64
        assert (d["scores"][:-1] >= d["scores"][1:]).all()          # best first
        assert (d["boxes"][:, 2:] > d["boxes"][:, :2]).all()        # xyxy
        from torchvision.ops import box_iou

        for c in d["labels"].unique():
            b = d["boxes"][d["labels"] == c]
            iou = box_iou(b, b).fill_diagonal_(0)
            assert (iou <= model.iou_threshold + 1e-6).all()        # NMS did its job


def test_yolo_decode_puts_boxes_in_input_pixels():
    from zoo.plugins.cnn.yolo import decode

    preds = torch.zeros(1, 8, 8, 8)
    preds[0, 2, 5, 3] = np.log(2.0)       # cell (row 2, col 5), twice the anchor's width
    boxes, obj, probs = decode(preds, stride=8, anchor=16.0)
    cx, cy = (5 + 0.5) * 8, (2 + 0.5) * 8
    assert boxes[0, 2 * 8 + 5].tolist() == pytest.approx([cx - 16, cy - 8, cx + 16, cy + 8])
    assert obj.shape == (1, 64) and probs.shape == (1, 64, 3)
    assert probs.sum(-1).allclose(torch.ones(1, 64))


def test_yolo_training_step_reduces_loss():
    from zoo.plugins.cnn.shapes import make_shapes
    from zoo.plugins.cnn.yolo import preprocess, yolo

    torch.manual_seed(0)
    images, targets = make_shapes(8, seed=5)
    model = yolo().train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    x = preprocess(images)
    first = model.loss(model(x), targets).item()
    for _ in range(15):
        loss = model.loss(model(x), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.loss(model(x), targets).item() < 0.7 * first


def test_shipped_yolo_reaches_its_stated_map_on_fresh_shapes():
    from zoo.plugins.cnn.shapes import make_shapes
    from zoo.plugins.cnn.yolo import YOLO, evaluate

    spec, tag = resolve("yolo.shapes")
    stated = spec.pretrained[tag].metrics["map50"]
    assert stated >= 0.5
    model = zoo.get("yolo.shapes")
    assert isinstance(model, YOLO) and not model.training
    images, targets = make_shapes(300, seed=424242)   # never seen in training or validation
    result = evaluate(model, images, targets)
    assert result["map"] >= stated - 0.03, result


def test_yolo_detect_returns_boxes_in_the_uploaded_images_pixels(tmp_path):
    from PIL import Image

    from zoo.plugins.cnn.shapes import CLASSES, make_shapes

    images, targets = make_shapes(1, seed=99, min_objects=1, max_objects=1)
    path = tmp_path / "shape.png"
    Image.fromarray(images[0].permute(1, 2, 0).numpy()).resize((256, 256)).save(path)
    found = zoo.predict("yolo.shapes", str(path))        # zoo.plugins.cnn.yolo:detect
    assert found and found[0]["label"] == CLASSES[int(targets[0]["labels"][0])]
    from torchvision.ops import box_iou

    truth = targets[0]["boxes"] * 4                      # the upload is 4x larger
    assert box_iou(torch.tensor([found[0]["box"]]), truth).item() > 0.6


# -- LeNet-5 on digits ------------------------------------------------------------------------

def test_lenet5_digits_held_out_accuracy():
    train = _script("train_lenet5_digits")
    _, x_test, _, y_test = train.split(0)
    model = zoo.get("lenet5.digits")
    acc = train.accuracy(model, train.to_tensors([train.digit_image(d) for d in x_test]),
                         torch.from_numpy(y_test).long())
    spec, tag = resolve("lenet5.digits")
    assert acc >= 0.97
    assert acc == pytest.approx(spec.pretrained[tag].metrics["accuracy"], abs=1e-3)
    assert spec.pretrained[tag].labels == tuple(str(i) for i in range(10))


def test_lenet5_digits_reads_uploaded_pngs_either_polarity(tmp_path):
    """Held-out digits drawn the way users upload them: blocky upscale to 140 px, dark ink on
    light paper or light on dark, off-centre on a larger canvas, saved as PNG."""
    from PIL import Image

    train = _script("train_lenet5_digits")
    _, x_test, _, y_test = train.split(0)
    rng = np.random.default_rng(2024)
    right = 0
    picks = rng.choice(len(x_test), 10, replace=False)
    for k, i in enumerate(picks):
        glyph = np.kron(x_test[i] * (255 / 16), np.ones((18, 18)))[2:142, 2:142]  # 140 x 140
        canvas = np.zeros((260, 320))
        y0, x0 = rng.integers(0, 260 - 140), rng.integers(0, 320 - 140)
        canvas[y0:y0 + 140, x0:x0 + 140] = glyph
        if k % 2 == 0:
            canvas = 255 - canvas                       # dark ink on white paper
        path = tmp_path / f"digit{k}.png"
        Image.fromarray(canvas.astype(np.uint8)).convert("RGB").save(path)
        top = zoo.predict("lenet5.digits", str(path))
        right += top[0][0] == str(y_test[i])
    assert right >= 9


# -- pass-through namespaces ------------------------------------------------------------------

def test_timm_namespace_builds_timms_own_module():
    import timm

    spec, tag = resolve("timm/resnet18")
    assert tag is None and spec.family == "cnn" and spec.input.size == (3, 224, 224)
    model = build.build(spec)
    reference = timm.create_model("resnet18")
    assert type(model) is type(reference)
    assert _num_params(model) == _num_params(reference) == 11_689_512
    assert spec.pretrained["a1_in1k"].source == "timm:resnet18.a1_in1k"
    assert spec.default_tag == "a1_in1k"
    assert resolve("timm/vit_tiny_patch16_224")[0].family == "transformer"


def test_torchvision_namespace_builds_torchvisions_own_module():
    import torchvision.models as tvm

    spec, tag = resolve("torchvision/resnet18.imagenet1k_v1")
    assert tag == "imagenet1k_v1"
    assert spec.pretrained[tag].source == "torchvision:ResNet18_Weights.IMAGENET1K_V1"
    model = build.build(spec)
    assert type(model) is tvm.ResNet
    assert _num_params(model) == _num_params(tvm.resnet18()) == spec.params
    det = resolve("torchvision/fasterrcnn_resnet50_fpn")[0]
    assert det.task == "object-detection"


def test_unknown_passthrough_name_suggests_close_ones():
    with pytest.raises(UnknownModelError, match="torchvision/resnet18"):
        resolve("torchvision/resnet181")


def test_listing_never_imports_timm_or_torchvision_unless_asked():
    code = ("import sys, zoo; names = zoo.list_models(); "
            "assert 'resnet50' in names and not any(n.startswith('timm/') for n in names); "
            "bad = [m for m in ('torch', 'timm', 'torchvision') if m in sys.modules]; "
            "assert not bad, bad")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "timm/resnet18" in zoo.list_models("timm/resnet1*")


# -- training scripts: one-epoch smoke tests ---------------------------------------------------

def test_train_yolo_shapes_smoke(tmp_path):
    train = _script("train_yolo_shapes")
    out = tmp_path / "yolo.safetensors"
    metrics = train.main(out, epochs=1, train_size=64, val_size=16, verbose=False)
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert 0.0 <= metrics["map50"] <= 1.0 and len(metrics["sha256"]) == 64
    assert metrics["bytes"] <= 2_000_000
    from zoo.loading.weights import apply_state_dict, read_state_dict
    from zoo.plugins.cnn.yolo import yolo

    model = yolo()

    apply_state_dict(model, read_state_dict(out, sha256=metrics["sha256"]), origin=str(out))


def test_train_lenet5_digits_smoke(tmp_path):
    train = _script("train_lenet5_digits")
    out = tmp_path / "lenet.safetensors"
    metrics = train.main(out, epochs=1, copies=1, limit=200, verbose=False)
    assert out.is_file() and out.with_suffix(".json").is_file()
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["config"]["train_size"] == 200


@pytest.mark.parametrize("mode", ["I;16", "F"])
def test_predict_reads_16_bit_and_float_images_by_their_range(tmp_path, mode):
    """convert('L') clips 16-bit and float pixels to white; zoo scales them instead."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    right = 0
    for i in range(10):
        a = np.kron(x[i].reshape(8, 8), np.ones((4, 4))) / 16.0
        a = (a * 65535).astype(np.uint16) if mode == "I;16" else a.astype(np.float32)
        path = tmp_path / f"{i}.{'png' if mode == 'I;16' else 'tiff'}"
        Image.fromarray(a).save(path)
        assert Image.open(path).mode in ("I;16", "I", "F")
        right += int(zoo.predict("lenet5.digits", str(path))[0][0]) == y[i]
    assert right >= 9
