"""`zoo recommend`: the ranking's logic on hand-worked cases, from catalog metadata only."""

from __future__ import annotations

import json

import pytest

from conftest import run_zoo
from zoo.errors import UsageError
from zoo.recommend import parse_count, recommend
from zoo.registry import Registry


def model(name, params, *, tags=(), dataset=None, top1=None, task="image-classification"):
    fields = dict(family="cnn", task=task, builder="m.o:d", params=params, tags=list(tags))
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
