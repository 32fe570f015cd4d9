"""Vision Transformers: torchvision's and timm's built by name, the in-house ViT and its
shipped digits weights (evaluated, not retrained), and the training script's smoke run."""

from __future__ import annotations

import pytest
import torch
from helpers import load_script, step_losses

import zoo
from zoo.loading.build import builder_of, merged_kwargs, summarize


@pytest.mark.parametrize(("name", "reference"), [
    ("vit_b_16", 86_567_656), ("vit_b_32", 88_224_232), ("vit_l_16", 304_326_632)])
def test_torchvision_vits_build_with_torchvisions_parameter_count(name, reference):
    # Big models are built once, on the meta device: real builders, no weight memory.
    spec, _ = zoo.spec(name)
    with torch.device("meta"):
        model = builder_of(spec)(**merged_kwargs(spec, None, {}))
        out = model(torch.randn(2, 3, 224, 224))
    assert tuple(out.shape) == (2, 1000)
    assert sum(p.numel() for p in model.parameters()) == spec.params == reference


def test_timm_vit_tiny_builds_offline_and_matches_timm():
    import timm

    model = zoo.get("vit_tiny_patch16_224")
    spec, _ = zoo.spec("vit_tiny_patch16_224")
    ref = timm.create_model("vit_tiny_patch16_224", pretrained=False)
    n = sum(p.numel() for p in model.parameters())
    assert n == sum(p.numel() for p in ref.parameters()) == spec.params
    model.eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 224, 224))
    assert tuple(out.shape) == (1, 1000) and torch.isfinite(out).all()


def test_inhouse_vit_summary_matches_catalog():
    spec, _ = zoo.spec("vit")
    info = summarize(zoo.get("vit"), spec)
    assert info["params"] == spec.params
    assert info["output_shape"] == [1, 10]
    assert info["gflops"] == pytest.approx(spec.gflops, rel=0.2)


def test_vit_rejects_patch_size_that_does_not_tile_the_image():
    from zoo.plugins.transformer.vit import vit

    with pytest.raises(ValueError, match="multiple of patch_size"):
        vit(image_size=32, patch_size=5)


def test_one_training_step_reduces_loss_on_a_tiny_batch():
    torch.manual_seed(0)
    model = zoo.get("vit")
    x, y = torch.randn(8, 1, 32, 32), torch.arange(8) % 10
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    before, after = step_losses(opt, lambda: torch.nn.functional.cross_entropy(model(x), y))
    assert after < before


def test_lora_targets_exist_in_the_inhouse_vit():
    spec, _ = zoo.spec("vit")
    names = [n for n, _ in zoo.get("vit").named_modules()]
    for target in spec.finetune["lora_targets"]:
        assert any(n.endswith(target) for n in names), target


def test_shipped_vit_digits_reaches_its_stated_accuracy():
    spec, _ = zoo.spec("vit.digits")
    model = zoo.get("vit.digits")
    mod = load_script("train_vit_digits")
    images, target, _, idx_te = mod.split_indices(0)
    idx = idx_te[:mod.TEST_SUBSET]      # preprocess only the digits evaluated
    x, y = mod.to_tensor(images[idx]), torch.as_tensor(target[idx])
    with torch.inference_mode():
        acc = float((model(x).argmax(1) == y).float().mean())
    stated = spec.pretrained["digits"].metrics["accuracy-first200"]
    assert acc == pytest.approx(stated, abs=0.006)
    assert acc >= 0.95


def test_vit_digits_predicts_an_uploaded_dark_on_light_digit():
    import numpy as np
    from sklearn.datasets import load_digits

    d = load_digits()
    idx = int(np.flatnonzero(d.target == 3)[0])
    # a user's drawing: dark ink on white, larger, off centre
    glyph = np.kron(d.images[idx] * (255 / 16), np.ones((12, 12)))
    canvas = np.zeros((160, 200))
    canvas[20:116, 70:166] = glyph
    image = (255 - canvas).astype(np.uint8)
    top = zoo.predict("vit.digits", image, top_k=3)
    assert top[0][0] == "3"
    assert top[0][1] > 0.5


def test_training_script_smoke(tmp_path):
    out = tmp_path / "vit.safetensors"
    train = load_script("train_vit_digits")
    metrics = train.main(["--epochs", "1", "--limit", "64", "--out", str(out)])
    assert out.is_file() and out.stat().st_size < 3_000_000
    assert 0.0 <= metrics["accuracy"] <= 1.0
    from zoo.loading.weights import apply_state_dict, read_state_dict

    apply_state_dict(zoo.get("vit"), read_state_dict(out), origin=str(out))
