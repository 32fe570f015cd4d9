"""DETR: Hungarian matching on hand-made cases, the set loss, post-processing to boxes,
the transformers DETR-R50 and the compact in-house DETR, and the training script."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import load_script

import zoo
from zoo.loading.build import builder_of, merged_kwargs, summarize
from zoo.plugins.transformer.detr import hungarian_match, postprocess, set_loss


def _logits(*rows):
    return torch.tensor([[[math.log(p) for p in row] for row in rows]])


def test_hungarian_matching_beats_greedy_on_class_costs():
    # Same boxes everywhere, so only the class probabilities decide. Greedy would pair
    # (q0, t0) (p = 0.6) and leave q1 with p = 0.05; the optimum is q0-t1, q1-t0 (0.9).
    logits = _logits([0.6, 0.35, 0.05], [0.55, 0.05, 0.40])
    boxes = torch.full((1, 2, 4), 0.5)
    targets = [{"labels": torch.tensor([0, 1]), "boxes": torch.full((2, 4), 0.5)}]
    (q, t), = hungarian_match(logits, boxes, targets)
    assert dict(zip(q.tolist(), t.tolist(), strict=True)) == {0: 1, 1: 0}


def test_hungarian_matching_pairs_boxes_by_position_and_leaves_extra_queries():
    logits = torch.zeros(1, 3, 3)
    boxes = torch.tensor([[[0.25, 0.25, 0.2, 0.2], [0.75, 0.75, 0.2, 0.2],
                           [0.5, 0.5, 0.1, 0.1]]])
    targets = [{"labels": torch.tensor([1, 0]),
                "boxes": torch.tensor([[0.74, 0.76, 0.2, 0.2], [0.26, 0.24, 0.2, 0.2]])}]
    (q, t), = hungarian_match(logits, boxes, targets)
    assert dict(zip(q.tolist(), t.tolist(), strict=True)) == {0: 1, 1: 0}
    (q, t), = hungarian_match(logits, boxes, [{"labels": torch.tensor([], dtype=torch.long),
                                               "boxes": torch.zeros(0, 4)}])
    assert len(q) == len(t) == 0


def test_set_loss_prefers_the_right_answer():
    targets = [{"labels": torch.tensor([2]), "boxes": torch.tensor([[0.3, 0.4, 0.2, 0.2]])}]
    right = {"logits": _logits([0.01, 0.01, 0.97, 0.01], [0.01, 0.01, 0.01, 0.97]),
             "pred_boxes": torch.tensor([[[0.3, 0.4, 0.2, 0.2], [0.7, 0.7, 0.1, 0.1]]])}
    wrong = {"logits": _logits([0.97, 0.01, 0.01, 0.01], [0.01, 0.01, 0.01, 0.97]),
             "pred_boxes": torch.tensor([[[0.6, 0.6, 0.3, 0.1], [0.7, 0.7, 0.1, 0.1]]])}
    assert set_loss(right, targets) < 0.2 < set_loss(wrong, targets)


def test_postprocess_gives_pixel_xyxy_boxes_above_threshold():
    out = {"logits": _logits([0.02, 0.02, 0.9, 0.06], [0.1, 0.1, 0.1, 0.7]),
           "pred_boxes": torch.tensor([[[0.5, 0.5, 0.5, 0.25], [0.2, 0.2, 0.1, 0.1]]])}
    (det,) = postprocess(out, (64, 128), threshold=0.5)     # height 64, width 128
    assert det["labels"].tolist() == [2]
    assert det["scores"].tolist() == pytest.approx([0.9])
    assert det["boxes"].tolist() == [pytest.approx([32.0, 24.0, 96.0, 40.0])]


def test_detr_r50_builds_offline_with_the_papers_size():
    spec, _ = zoo.spec("detr")
    with torch.device("meta"):
        model = builder_of(spec)(**merged_kwargs(spec, None, {}))
    assert sum(p.numel() for p in model.parameters()) == spec.params == 41_524_768
    assert model.config.num_queries == 100


def test_detr_r50_forward_and_postprocess():
    # A shallow transformer on the real (random) ResNet-50 backbone keeps this quick.
    model = zoo.get("detr", num_queries=5, encoder_layers=1, decoder_layers=1).eval()
    with torch.inference_mode():
        out = model(torch.randn(1, 3, 128, 128))
    assert tuple(out.logits.shape) == (1, 5, 92)
    assert tuple(out.pred_boxes.shape) == (1, 5, 4)
    assert ((out.pred_boxes >= 0) & (out.pred_boxes <= 1)).all()
    (det,) = postprocess(out, (128, 128), threshold=0.0)
    assert len(det["boxes"]) == 5 and (det["labels"] < 91).all()


def test_compact_detr_summary_and_output_shapes():
    spec, _ = zoo.spec("detr_compact")
    model = zoo.get("detr_compact")
    info = summarize(model, spec)
    assert info["params"] == spec.params
    assert info["output_shape"] == {"logits": [1, 10, 4], "pred_boxes": [1, 10, 4]}
    assert info["gflops"] == pytest.approx(spec.gflops, rel=0.2)
    with pytest.raises(ValueError, match="64-pixel square"):
        model(torch.randn(1, 3, 96, 96))


def test_compact_detr_training_step_reduces_loss():
    from zoo.plugins.cnn.shapes import make_shapes
    from zoo.plugins.transformer.detr import preprocess, to_detr_targets

    torch.manual_seed(0)
    images, targets = make_shapes(4, size=64, seed=3)
    model = zoo.get("detr_compact").train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    tg = to_detr_targets(targets, (64, 64))
    losses = []
    for _ in range(3):
        loss = set_loss(model(preprocess(images)), tg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_detect_returns_labelled_boxes_in_image_pixels():
    from zoo.plugins.cnn.shapes import make_shapes
    from zoo.plugins.transformer.detr import detect

    spec, _ = zoo.spec("detr_compact")
    images, _ = make_shapes(1, size=64, seed=0)
    image = images[0].permute(1, 2, 0).numpy().repeat(2, 0).repeat(2, 1)   # 128 x 128
    dets = detect(zoo.get("detr_compact"), spec, None, image, threshold=0.0)
    assert len(dets) == 10
    assert all(set(d) == {"label", "score", "box"} for d in dets)
    assert all(-1 <= v <= 129 for d in dets for v in d["box"])
    assert [d["score"] for d in dets] == sorted((d["score"] for d in dets), reverse=True)


def test_training_script_smoke(tmp_path):
    out = tmp_path / "detr.safetensors"
    metrics = load_script("train_detr_shapes").main(["--train", "32", "--test", "8",
                                                     "--epochs", "1", "--out", str(out)])
    assert out.is_file() and out.stat().st_size < 3_000_000
    assert 0.0 <= metrics["map50"] <= 1.0
    from zoo.loading.weights import apply_state_dict, read_state_dict

    apply_state_dict(zoo.get("detr_compact"), read_state_dict(out), origin=str(out))
