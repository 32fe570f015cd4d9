"""`zoo recommend`: the ranking's logic on hand-worked cases, from catalog metadata only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_zoo
from zoo.errors import UsageError
from zoo.recommend import parse_count, recommend
from zoo.registry import Registry


def model(name, params, *, tags=(), dataset=None, top1=None, task="image-classification"):
    fields = dict(family="cnn", task=task, builder="m.o:d", params=params, tags=list(tags),
                  input={"size": [3, 224, 224]})
    if dataset:
        fields["pretrained"] = {"imagenet" if "imagenet" in dataset else "toy": {
            "source": "file:/w.safetensors", "dataset": dataset,
            "metrics": {"top1": top1} if top1 else {}}}
    return name, fields


@pytest.fixture
def registry():
    reg = Registry()
    reg.add_family("cnn")
    reg.begin("test")
    for name, fields in [
        model("tinynet", 2_000_000, tags=["mobile"], dataset="imagenet-1k", top1=70.0),
        model("bignet", 60_000_000, tags=["deep"], dataset="imagenet-1k", top1=82.0),
        model("hugenet", 140_000_000, dataset="imagenet-1k", top1=75.0),
        model("scratchnet", 1_000_000, tags=["small"]),
        model("toynet", 60_000, tags=["small"], dataset="toy-digits", top1=0.99),
        model("textnet", 1_000_000, task="text-classification"),
    ]:
        reg.add_model(name=name, **fields)
    reg.commit()
    return reg


def by_model(recs):
    return {r.model: r for r in recs}


def test_small_data_on_cpu_prefers_a_small_pretrained_model_and_feature_extraction(registry):
    recs = recommend("image-classification", data_size=500, compute="cpu", registry=registry,
                     top=None)
    assert recs[0].name == "tinynet.imagenet"
    assert recs[0].technique == "feature-extract"
    assert any("little data" in r for r in recs[0].reasons)
    ranks = [r.model for r in recs]
    # weights from broad data beat weights from a toy set, which beat no weights at all
    assert ranks.index("toynet") > ranks.index("tinynet")
    assert ranks.index("scratchnet") == len(ranks) - 1
    assert by_model(recs)["scratchnet"].technique == "full"


def test_large_model_on_small_compute_gets_lora(registry):
    recs = by_model(recommend("image-classification", data_size=20_000, compute="cpu",
                              registry=registry, top=None))
    assert recs["bignet"].technique == "lora"
    assert recs["hugenet"].technique == "lora"
    assert recs["tinynet"].technique == "full"


def test_large_data_and_a_large_gpu_fine_tune_the_best_model_fully(registry):
    recs = recommend("image-classification", data_size=500_000, compute="large-gpu",
                     registry=registry, top=None)
    assert recs[0].name == "bignet.imagenet" and recs[0].technique == "full"


def test_medium_data_freezes_early_layers(registry):
    recs = by_model(recommend("image-classification", data_size=5_000, compute="small-gpu",
                              registry=registry, top=None))
    assert recs["bignet"].technique == "freeze"


def test_max_params_and_task_filter(registry):
    recs = recommend("image-classification", max_params=5_000_000, registry=registry, top=None)
    assert {r.model for r in recs} == {"tinynet", "scratchnet", "toynet"}
    assert [r.model for r in recommend("text-classification", registry=registry)] == ["textnet"]


def test_bad_inputs_are_usage_errors(registry):
    with pytest.raises(UsageError, match="did you mean 'image-classification'"):
        recommend("image-clasification", registry=registry)
    with pytest.raises(UsageError, match="unknown compute"):
        recommend("image-classification", compute="tpu", registry=registry)
    with pytest.raises(UsageError, match="not a count"):
        parse_count("lots")
    assert parse_count("1.5M") == 1_500_000 and parse_count("20k") == 20_000


def test_cli_json_and_no_torch_import():
    proc = run_zoo("recommend", "--task", "image-classification", "--data-size", "800", "--json")
    assert proc.returncode == 0, proc.stderr
    recs = json.loads(proc.stdout)
    assert recs and {"name", "technique", "reasons", "score"} <= set(recs[0])
    assert recs == sorted(recs, key=lambda r: -r["score"])
    proc = run_zoo("recommend", "--task", "nope")
    assert proc.returncode == 2 and proc.stderr.startswith("Error: unknown task")


# -- encoders: feature-extraction weights offered for a classification task -------------------
#
# Hand-worked scores (cpu: 15M parameters train comfortably; the score is
# 3.0 x (1.0 broad data | 0.4 other) for weights when data < 10k (1.5 x ... above),
# - 1.5 log10(params / 15M) when larger, - 0.5 log10(params / 1M) on a CPU, + 1 when tagged
# small, - 2 for random weights on < 1k examples). At 800 examples on a CPU:
#   enc.sentence      3.0 - 1.5 log10(20/15) - 0.5 log10(20) + 1 = 3.0 - 0.187 - 0.651 + 1 = 3.162
#   rnnpre.sentiment  1.2 (toy data) + 1 = 2.2  (the tag's 700K, not the architecture's 3M:
#                     with 3M it would lose 0.5 log10(3) = 0.239)
#   enc.sentiment     1.2 - 0.187 - 0.651 + 1 = 1.362
#   noevid.cls        1.2 - 0.5 log10(4) = 0.899
#   headedenc.cls     1.2 - 0.5 log10(5) = 0.851
#   scratch           -2 + 1 = -1.0
# Before encoders were offered, enc.sentence was missing and rnnpre.sentiment led.

def text_model(name, params, *, task="text-classification", tags=(), kwargs=None, **tags_):
    fields = dict(family="txt", task=task, builder="m.o:d", params=params, tags=list(tags))
    if kwargs:
        fields["kwargs"] = kwargs
    fields["pretrained"] = {t: {"source": "file:/w.safetensors", **pre} for t, pre in tags_.items()}
    return name, fields


@pytest.fixture
def text_registry():
    reg = Registry()
    reg.add_family("txt")
    reg.begin("test")
    for name, fields in [
        # a sentence encoder; another tag shows its builder makes a classifier (num_classes)
        text_model("enc", 20_000_000, task="feature-extraction", tags=["small"],
                   sentence={"dataset": "1B sentence pairs", "default": True},
                   sentiment={"task": "text-classification", "kwargs": {"num_classes": 3},
                              "dataset": "tweets", "metrics": {"accuracy": 0.73}}),
        # a trained RNN whose tag's kwargs shrink it to 700K
        text_model("rnnpre", 3_000_000, tags=["small"],
                   sentiment={"dataset": "tweets", "metrics": {"accuracy": 0.74},
                              "kwargs": {"vocab_size": 1000}, "params": 700_000}),
        text_model("scratch", 1_000_000, tags=["small"]),
        # encoder weights, but no sign that num_classes builds a classifier: not offered
        text_model("noevid", 4_000_000, task="feature-extraction",
                   sentence={"dataset": "sentence pairs"},
                   cls={"task": "text-classification", "dataset": "tweets"}),
        # the architecture already sets a class count: zoo finetune would not add a head
        text_model("headedenc", 5_000_000, task="feature-extraction",
                   kwargs={"num_classes": 2}, sentence={"dataset": "sentence pairs"},
                   cls={"task": "text-classification", "kwargs": {"num_classes": 2}}),
    ]:
        reg.add_model(name=name, **fields)
    reg.commit()
    return reg


def test_little_text_data_gets_a_frozen_sentence_encoder_first(text_registry):
    recs = recommend("text-classification", data_size=800, compute="cpu",
                     registry=text_registry, top=None)
    assert [(r.name, r.score, r.technique) for r in recs] == [
        ("enc.sentence", 3.162, "feature-extract"),
        ("rnnpre.sentiment", 2.2, "feature-extract"),
        ("enc.sentiment", 1.362, "lora"),
        ("noevid.cls", 0.899, "feature-extract"),
        ("headedenc.cls", 0.851, "feature-extract"),
        ("scratch", -1.0, "full"),
    ]
    enc = recs[0]
    assert enc.model == "enc" and enc.params == 20_000_000
    assert enc.reasons[0] == "encoder weights 'enc.sentence' on 1B sentence pairs"
    assert enc.reasons[1] == "zoo finetune builds it with a new text-classification head " \
                             "(num_classes)"
    assert enc.reasons[-1].startswith("800 examples is little data: keep the encoder frozen")
    # a trained model is judged, and shown, by its own size
    assert recs[1].params == 700_000
    assert "700.0K parameters fits cpu comfortably" in recs[1].reasons


def test_encoder_technique_follows_data_size_and_compute(text_registry):
    def enc(**kw):
        recs = recommend("text-classification", registry=text_registry, top=None, **kw)
        [r] = [r for r in recs if r.name == "enc.sentence"]
        return r

    unknown = enc(compute="cpu")
    assert unknown.technique == "feature-extract"
    assert unknown.reasons[-1].startswith("data size unknown: keep the encoder frozen")
    # 5,000 on a CPU: 20M is over the comfortable 15M, so adapters (never 'freeze', which
    # zoo finetune refuses on an encoder inside its new classifier)
    r = enc(data_size=5_000, compute="cpu")
    assert (r.score, r.technique) == (3.162, "lora")
    assert "large for this compute" in r.reasons[-1]
    # on a small GPU nothing is large: 3.0 (no size penalty, no CPU bonus)
    r = enc(data_size=5_000, compute="small-gpu")
    assert (r.score, r.technique) == (3.0, "lora")
    assert r.reasons[-1].startswith("5,000 examples: LoRA adapters tune the encoder lightly")
    r = enc(data_size=50_000, compute="small-gpu")
    assert (r.score, r.technique) == (1.5, "full")
    assert r.reasons[-1].startswith("50,000 examples is enough to fine-tune the encoder")


def test_encoders_are_offered_only_for_what_finetune_can_build(text_registry):
    names = {r.name for r in recommend("text-classification", data_size=800,
                                       registry=text_registry, top=None)}
    assert "noevid.sentence" not in names and "headedenc.sentence" not in names
    # for feature extraction itself the encoder is the plain trained model, once
    recs = recommend("feature-extraction", data_size=800, registry=text_registry, top=None)
    assert sorted(r.name for r in recs) == ["enc.sentence", "headedenc.sentence",
                                            "noevid.sentence"]
    assert all(r.reasons[0].startswith("pretrained weights") for r in recs)


def test_max_params_judges_a_trained_model_by_its_own_size(text_registry):
    recs = recommend("text-classification", max_params=1_000_000, registry=text_registry,
                     top=None)
    assert {r.name for r in recs} == {"rnnpre.sentiment", "scratch"}


def test_real_catalog_offers_minilm_sentence_for_little_text_data():
    recs = recommend("text-classification", data_size=800, compute="cpu", top=None)
    assert recs[0].name == "minilm.sentence" and recs[0].technique == "feature-extract"
    by_name = {r.name: r for r in recs}
    assert by_name["minilm.sentiment"].technique == "lora"      # still offered as well
    # trained models carry their own (tag) sizes: the GRU's 665K, not 2.7M
    assert by_name["gru.sentiment"].params == 665_155
    assert "minilm.sentence" not in {r.name for r in recommend("image-classification",
                                                                data_size=800, top=None)}


def test_cli_offers_the_sentence_encoder():
    proc = run_zoo("recommend", "--task", "text-classification", "--data-size", "800",
                   "--json")
    assert proc.returncode == 0, proc.stderr
    top = json.loads(proc.stdout)[0]
    assert (top["name"], top["technique"]) == ("minilm.sentence", "feature-extract")
    proc = run_zoo("recommend", "--task", "text-classification", "--data-size", "800")
    assert proc.returncode == 0, proc.stderr
    first = proc.stdout.splitlines()[1].split()
    assert first[:4] == ["1", "minilm.sentence", "22.7M", "feature-extract"]


@pytest.mark.slow
def test_finetune_does_what_is_recommended_for_the_encoder(tmp_path):
    """zoo finetune really runs each technique advised for minilm.sentence on text
    classification: a new 3-class head on the real encoder (tiny run: 32 tweets)."""
    import torch

    from zoo.finetune import finetune

    advised = {}
    for size in (800, 5_000):
        [r] = [r for r in recommend("text-classification", data_size=size, top=None)
               if r.name == "minilm.sentence"]
        advised[r.technique] = size
    assert set(advised) == {"feature-extract", "lora"}
    torch.set_num_threads(1)
    for technique in advised:
        res = finetune("minilm.sentence", "sentiment", out=tmp_path / technique,
                       technique=technique, epochs=1, limit=32, val_limit=16, batch_size=16,
                       progress=False)
        out = res.model.eval()(torch.randint(1, 1000, (2, 12)))
        logits = out.logits if hasattr(out, "logits") else out
        assert logits.shape == (2, 3), technique
        if technique == "feature-extract":   # only the new head trains: 384 x 3 + 3
            assert res.trainable_params == 384 * 3 + 3
        assert 0 < res.trainable_params < res.total_params


# -- domain similarity: the user's answer, or a probe of the data ------------------------------
#
# tinynet (2M, mobile, imagenet top1 70) at 500 examples on a CPU, hand-worked:
#   weights 3.0 x breadth 1.0 x domain (similar 1.3 | unknown 1.0 | different 0.5)
#   + metric 2 x 0.70 x min(domain, 1) - 0.5 log10(2) + 1 (mobile)
#   similar 3.9 + 1.4 - 0.151 + 1 = 6.149; unknown 5.249; different 1.5 + 0.7 - 0.151 + 1 = 3.049

def test_domain_answer_moves_the_score_and_the_technique(registry):
    def tiny(**kw):
        return by_model(recommend("image-classification", compute="cpu", registry=registry,
                                  top=None, **kw))["tinynet"]

    assert [tiny(data_size=500, domain=d).score for d in ("similar", None, "different")] == \
        [6.149, 5.249, 3.049]
    assert tiny(data_size=500, domain="similar").technique == "feature-extract"
    # little data from another domain: the last features fit the old data; tune past them
    other = tiny(data_size=500, domain="different")
    assert other.technique == "freeze" and other.domain == "different"
    assert "as you said" in " ".join(other.reasons)
    assert tiny(data_size=5_000, domain="similar").technique == "freeze"
    assert tiny(data_size=5_000, domain="different").technique == "full"
    # random weights do not care about domains
    assert by_model(recommend("image-classification", data_size=500, domain="different",
                              registry=registry, top=None))["scratchnet"].score == \
        by_model(recommend("image-classification", data_size=500, registry=registry,
                           top=None))["scratchnet"].score
    with pytest.raises(UsageError, match="unknown domain 'alike'"):
        recommend("image-classification", domain="alike", registry=registry)


def test_encoder_on_another_domain_gets_adapters_not_a_frozen_encoder(text_registry):
    [r] = [r for r in recommend("text-classification", data_size=800, domain="different",
                                registry=text_registry, top=None) if r.name == "enc.sentence"]
    assert r.technique == "lora"


def _image_folder(root: Path, *, mode: str, size: int, per_class: int = 6) -> Path:
    from PIL import Image

    for c in ("cat", "dog"):
        (root / c).mkdir(parents=True)
        for i in range(per_class):
            Image.new(mode, (size, size), color=i * 20 if mode == "L" else (i * 20, 9, 9)) \
                .save(root / c / f"{i}.png")
    return root


def test_probe_counts_a_folder_and_finds_a_distant_domain(registry, tmp_path):
    from zoo.recommend import probe

    grey = _image_folder(tmp_path / "grey", mode="L", size=8)
    profile = probe(grey)
    assert (profile.kind, profile.examples, profile.classes, profile.channels, profile.side) \
        == ("image", 12, 2, 1, 8)
    assert profile.describe() == "12 images in 2 classes, greyscale, ~8 px a side"
    recs = by_model(recommend("image-classification", data=grey, registry=registry, top=None))
    tiny = recs["tinynet"]
    # the data size comes from the folder (12 is little data), the domain from the headers
    assert tiny.domain == "different" and tiny.technique == "freeze"
    assert any("your images are greyscale" in r for r in tiny.reasons), tiny.reasons
    # colour photos about the size ImageNet weights saw: no evidence either way
    photos = _image_folder(tmp_path / "photos", mode="RGB", size=160)
    tiny = by_model(recommend("image-classification", data=photos, registry=registry,
                              top=None))["tinynet"]
    assert tiny.domain is None and tiny.technique == "feature-extract"
    # the user's own answer wins over the probe
    tiny = by_model(recommend("image-classification", data=grey, domain="similar",
                              registry=registry, top=None))["tinynet"]
    assert tiny.domain == "similar"


def test_probe_reads_csv_and_jsonl_as_finetune_does(tmp_path):
    from zoo.recommend import probe

    csv_file = tmp_path / "reviews.csv"
    csv_file.write_text("text,label\ngood,pos\nbad,neg\nmeh,neu\nfine,pos\n")
    assert (probe(csv_file).examples, probe(csv_file).classes) == (4, 3)
    jl = tmp_path / "r.jsonl"
    jl.write_text('{"text": "a", "label": 1}\n\n{"text": "b", "label": 2}\n')
    assert (probe(jl).kind, probe(jl).examples, probe(jl).classes) == ("text", 2, 2)
    with pytest.raises(UsageError, match="no such file or folder"):
        probe(tmp_path / "nope")
    (tmp_path / "x.parquet").write_text("x")
    with pytest.raises(UsageError, match="give an image folder"):
        probe(tmp_path / "x.parquet")


def test_real_catalog_puts_weights_of_the_users_own_sample_set_first():
    recs = recommend("image-classification", data="digits", compute="cpu", top=None)
    assert recs[0].name in ("lenet5.digits", "vit.digits")
    assert recs[0].domain == "similar"
    # greyscale 8x8 digits are far from ImageNet's colour photos
    imagenet = [r for r in recs if r.name.endswith(".imagenet")]
    assert imagenet and all(r.domain == "different" for r in imagenet)


# -- tasks without a classifier head: advise what trains them ----------------------------------

def test_generation_and_detection_never_get_head_techniques():
    reg = Registry()
    reg.add_family("g")
    reg.begin("test")
    pre = {"digits": {"source": "file:/w.safetensors", "dataset": "digits", "metrics": {"fd": 1}}}
    for name, task in [("gen", "image-generation"), ("det", "object-detection"),
                       ("i2i", "image-to-image"), ("mt", "translation"),
                       ("lm", "text-generation"), ("seg", "semantic-segmentation")]:
        reg.add_model(name=name, family="g", task=task, builder="m.o:d", params=100_000,
                      pretrained=pre)
        reg.add_model(name=name + "_arch", family="g", task=task, builder="m.o:d",
                      params=100_000)
    reg.commit()
    for task in ("image-generation", "object-detection", "image-to-image", "translation",
                 "text-generation", "semantic-segmentation"):
        for size in (None, 200, 5_000, 100_000):
            for domain in (None, "different"):
                recs = recommend(task, data_size=size, domain=domain, registry=reg, top=None)
                assert len(recs) == 2
                want = "sft" if task == "text-generation" else "full"
                assert {r.technique for r in recs} == {want}, (task, size)
    [det] = [r for r in recommend("object-detection", data_size=200, registry=reg)
             if r.name == "det.digits"]
    assert "fine-tune the whole detector" in " ".join(det.reasons)
    assert "low learning rate" in " ".join(det.reasons)


def test_real_catalog_advises_no_head_technique_for_headless_tasks():
    from zoo.recommend import HEAD_TASKS
    from zoo.registry import default_registry

    tasks = {s.task for s in default_registry()} - HEAD_TASKS
    assert {"image-generation", "object-detection", "image-to-image"} <= tasks
    for task in tasks:
        for size in (None, 300, 50_000):
            for r in recommend(task, data_size=size, top=None):
                assert r.technique in ("full", "sft"), (task, size, r)


def test_cli_similar_different_data_and_offline(tmp_path):
    from typer.testing import CliRunner

    from zoo.cli import app

    grey = _image_folder(tmp_path / "grey", mode="L", size=8)
    res = CliRunner().invoke(app, ["recommend", "--task", "image-classification", "--data",
                                   str(grey), "--json"])
    assert res.exit_code == 0, res.output
    recs = json.loads(res.stdout)
    assert {"why", "domain", "runs_offline"} <= set(recs[0])
    assert any(r["domain"] == "different" for r in recs)
    res = CliRunner().invoke(app, ["recommend", "--task", "image-classification", "--data",
                                   str(grey), "--similar"])
    assert res.exit_code == 0 and "Data: 12 images in 2 classes" in res.stderr
    assert "similar domain" in res.stdout
    res = CliRunner().invoke(app, ["recommend", "--task", "image-classification",
                                   "--different", "--offline", "--json"])
    assert res.exit_code == 0
    assert all(r["runs_offline"] and r["domain"] in ("different", None)
               for r in json.loads(res.stdout))
    res = CliRunner().invoke(app, ["recommend", "--task", "image-classification", "--data",
                                   str(tmp_path / "nope")])
    assert res.exit_code == 2 and "no such file or folder" in res.stderr


def test_recommend_with_data_and_offline_imports_no_heavy_library(tmp_path):
    import subprocess
    import sys

    grey = _image_folder(tmp_path / "grey", mode="L", size=8)
    code = ("import sys\nfrom zoo.recommend import recommend\n"
            f"recommend('image-classification', data={str(grey)!r}, offline=True)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'torchvision', 'timm', 'transformers', 'huggingface_hub')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
