"""The catalog's real trained models, loaded from their real homes, offline.

Hub-backed tags (bert_base.uncased, distilbert.sst2, gpt2.openai, gpt2_medium.openai,
detr.coco, marian.en-de) are fetched from a stand-in Hub on 127.0.0.1 that serves each
real repo id in the real repo's layout (tests/hub_repos.py: the real config class with
shrunk sizes, saved by the library's own save_pretrained). Each must equal what the
library's own loader (``AutoModelFor...from_pretrained``) makes of the same repo, and
zoo.predict must answer as transformers' pipelines do. torchvision tags load a state
dict saved under the real file name in torch.hub's cache, compared with torchvision's
own builder reading that file. Then every new kind of demo answers over HTTP.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import free_port, one_line
from hub_repos import DECOYS, MAKERS, coco_labels, seed_torchvision
from hubserver import HubServer

import zoo
from zoo.errors import UsageError, WeightsError
from zoo.loading import build
from zoo.registry import default_registry

BERT = "google-bert/bert-base-uncased"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """Every stand-in repo, served; yields ``(server, {repo id: folder})``."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    root = tmp_path_factory.mktemp("hub")
    repos = {repo: make(root) for repo, make in MAKERS.items()}
    with HubServer(root) as server:
        yield server, repos


@pytest.fixture(scope="module")
def caches(tmp_path_factory):
    """One Hugging Face and torch.hub cache for the module: each repo downloads once."""
    return tmp_path_factory.mktemp("caches")


@pytest.fixture(autouse=True)
def online(hub, caches, monkeypatch):
    server, _ = hub
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(caches / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(caches / "hf" / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(caches / "torch"))
    monkeypatch.setenv("ZOO_HOME", str(caches / "zoo"))
    for var in ("ZOO_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    # the same weights and inputs through the same kernels: equal up to float rounding
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# -- transformers repos ----------------------------------------------------------------------

def test_bert_base_uncased_is_transformers_own_masked_lm_with_its_tokenizer(hub):
    from transformers import AutoModelForMaskedLM, AutoTokenizer, pipeline

    server, repos = hub
    model = zoo.get("bert_base.uncased")
    ref = AutoModelForMaskedLM.from_pretrained(repos[BERT]).eval()
    assert type(model) is type(ref) and not model.training
    assert model.config._name_or_path == BERT
    tok = AutoTokenizer.from_pretrained(repos[BERT])
    enc = tok(["paris is the [MASK] of france.", "a small [MASK]"], padding=True,
              return_tensors="pt")
    with torch.inference_mode():
        close(model(**enc).logits, ref(**enc).logits)
    # zoo.predict fills the mask as transformers' fill-mask pipeline does
    got = zoo.predict("bert_base.uncased", "paris is the [MASK] of france.", top_k=5)
    want = pipeline("fill-mask", model=ref, tokenizer=tok)("paris is the [MASK] of france.",
                                                           top_k=5)
    assert [g["token"] for g in got] == [w["token_str"] for w in want]
    assert [g["sequence"] for g in got] == [w["sequence"] for w in want]
    close(torch.tensor([g["score"] for g in got]), torch.tensor([w["score"] for w in want]))
    # only what transformers reads was fetched: no other framework's weights
    fetched = {p.rsplit("/", 1)[-1] for _, p in server.requests if f"/{BERT}/resolve/" in p}
    assert {"config.json", "model.safetensors", "tokenizer.json", "vocab.txt"} <= fetched
    assert not fetched & {*DECOYS, "README.md"}


def test_fill_mask_without_a_mask_says_where_to_write_it():
    with pytest.raises(UsageError, match=r"write \[MASK\] where the missing word goes") as e:
        zoo.predict("bert_base.uncased", "no mask here")
    one_line(e)


def test_distilbert_sst2_classifies_with_the_repos_labels(hub):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    _, repos = hub
    repo = repos["distilbert/distilbert-base-uncased-finetuned-sst-2-english"]
    model = zoo.get("distilbert.sst2")
    ref = AutoModelForSequenceClassification.from_pretrained(repo).eval()
    assert model.zoo_labels == ["NEGATIVE", "POSITIVE"] == list(ref.config.id2label.values())
    tok = AutoTokenizer.from_pretrained(repo)
    text = "What a wonderful day, I love it!"
    with torch.inference_mode():
        probs = ref(**tok(text, return_tensors="pt")).logits.softmax(-1)[0]
    got = dict(zoo.predict("distilbert.sst2", text))
    close(torch.tensor([got["NEGATIVE"], got["POSITIVE"]]), probs)


@pytest.mark.parametrize("name,repo", [("gpt2.openai", "openai-community/gpt2"),
                                       ("gpt2_medium.openai", "openai-community/gpt2-medium")])
def test_gpt2_generates_what_transformers_generates(hub, name, repo):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, repos = hub
    model = zoo.get(name)
    ref = AutoModelForCausalLM.from_pretrained(repos[repo]).eval()
    tok = AutoTokenizer.from_pretrained(repos[repo])
    ids = tok("the cat sat on", return_tensors="pt")
    with torch.inference_mode():
        close(model(**ids).logits, ref(**ids).logits)
        want = ref.generate(**ids, max_new_tokens=6, do_sample=False,
                            suppress_tokens=tok.all_special_ids, pad_token_id=tok.eos_token_id)
    got = zoo.predict(name, "the cat sat on", max_new_tokens=6, temperature=0)
    assert got == "the cat sat on" + tok.decode(want[0, ids["input_ids"].shape[1]:])
    assert zoo.predict(name, "the cat", max_new_tokens=5, seed=3) == \
        zoo.predict(name, "the cat", max_new_tokens=5, seed=3)      # seeded sampling


def test_marian_translates_as_transformers_does_with_the_repos_settings(hub):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    _, repos = hub
    repo = repos["Helsinki-NLP/opus-mt-en-de"]
    model = zoo.get("marian.en-de")
    assert type(model).__name__ == "MarianMTModel" and model.generation_config.num_beams == 4
    ref = AutoModelForSeq2SeqLM.from_pretrained(repo).eval()
    tok = AutoTokenizer.from_pretrained(repo)
    enc = tok(["the cat sat on the mat"], return_tensors="pt")
    with torch.inference_mode():
        want = tok.decode(ref.generate(**enc, max_new_tokens=63)[0], skip_special_tokens=True)
    assert zoo.predict("marian.en-de", "the cat sat on the mat") == want


def test_detr_coco_detects_as_transformers_with_the_repos_processor_and_labels(hub):
    from PIL import Image
    from transformers import AutoImageProcessor, AutoModelForObjectDetection

    _, repos = hub
    repo = repos["facebook/detr-resnet-50"]
    model = zoo.get("detr.coco")
    assert model.zoo_labels == coco_labels() and model.zoo_labels[1] == "person"
    ref = AutoModelForObjectDetection.from_pretrained(repo).eval()
    proc = AutoImageProcessor.from_pretrained(repo)
    img = Image.new("RGB", (120, 80), (200, 30, 30))
    img.paste((20, 20, 220), (20, 10, 70, 60))
    with torch.inference_mode():
        out = ref(**proc(images=img, return_tensors="pt"))
    want = proc.post_process_object_detection(out, threshold=0.0, target_sizes=[(80, 120)])[0]
    got = zoo.predict("detr.coco", img, threshold=0.0)
    order = want["scores"].argsort(descending=True)
    assert [d["label"] for d in got] == [ref.config.id2label[int(i)]
                                         for i in want["labels"][order]]
    close(torch.tensor([d["score"] for d in got]), want["scores"][order])
    # zoo rounds boxes to 0.1 pixel
    torch.testing.assert_close(torch.tensor([d["box"] for d in got]), want["boxes"][order],
                               rtol=0, atol=0.051)


def test_cached_repos_load_offline_and_missing_ones_say_what_to_do(hub, monkeypatch):
    zoo.get("distilbert.sst2")                          # online once: now cached
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")     # nothing listens there
    assert zoo.get("distilbert.sst2").zoo_labels == ["NEGATIVE", "POSITIVE"]
    monkeypatch.setenv("HF_HUB_CACHE", str(Path(os.environ["HF_HOME"]) / "empty"))
    with pytest.raises(WeightsError) as e:
        zoo.get("distilbert.sst2")
    msg = one_line(e)
    assert "distilbert/distilbert-base-uncased-finetuned-sst-2-english" in msg
    assert "HF_HUB_OFFLINE=1 forbids the network" in msg and "HF_HUB_CACHE" in msg


def _spec(source: str, head: str = "sequence-classification"):
    """bert_base built with ``head``, loading ``source``."""
    from zoo.registry.spec import PretrainedSpec

    base = default_registry().spec("bert_base")
    return replace(base, pretrained={"t": PretrainedSpec(tag="t", source=source,
                                                         kwargs={"head": head})})


def test_a_repo_missing_weights_the_class_needs_is_refused_not_filled_at_random():
    """transformers would start a sentiment head on bert-base-uncased from random numbers
    and only log it; zoo refuses, naming the repo and the missing weights."""
    with pytest.raises(WeightsError, match="lacks or mis-sizes weights") as e:
        build.build(_spec(f"hf-hub:{BERT}"), "t")
    msg = one_line(e)
    assert BERT in msg and "classifier" in msg


def test_a_repo_of_another_architecture_is_refused():
    with pytest.raises(WeightsError, match="holds a 'gpt2' model, not the 'bert'") as e:
        build.build(_spec("hf-hub:openai-community/gpt2", head="masked-lm"), "t")
    one_line(e)


def test_repo_code_is_never_fetched_or_run(tmp_path, monkeypatch):
    """A repo asking for remote code (auto_map, a tokenizer module that would drop a
    canary file when imported) loads as the catalog's own class, or not at all."""
    import json
    import shutil

    root = tmp_path / "hub"
    d = MAKERS[BERT](root)
    canary = tmp_path / "canary"
    (d / "tokenization_evil.py").write_text(f"open({str(canary)!r}, 'w').write('ran')\n")
    (d / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "x/y"}))
    cfg = json.loads((d / "tokenizer_config.json").read_text())
    cfg["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", None]}
    (d / "tokenizer_config.json").write_text(json.dumps(cfg))
    with HubServer(root) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
        try:
            model = zoo.get("bert_base.uncased")
        except WeightsError as e:
            assert "\n" not in str(e)
        else:
            assert type(model).__name__ == "BertForMaskedLM"
        paths = [p for _, p in server.requests]
    assert not canary.exists()
    assert not any(p.endswith(("tokenization_evil.py", "adapter_config.json")) for p in paths)
    shutil.rmtree(root)


# -- torchvision weights through torch.hub's cache --------------------------------------------

def _image():
    from PIL import Image

    img = Image.new("RGB", (160, 120), (240, 240, 230))
    img.paste((30, 60, 200), (30, 20, 110, 100))
    return img


def test_ssdlite_detects_with_coco_labels_as_torchvision_does(monkeypatch):
    import torchvision.models.detection as tvd
    from torchvision.transforms.functional import pil_to_tensor

    weights = tvd.SSDLite320_MobileNet_V3_Large_Weights.COCO_V1
    seed_torchvision(weights, seed=1)
    monkeypatch.setenv("ZOO_OFFLINE", "1")          # the cache is all it needs
    model = zoo.get("ssdlite320_mobilenet_v3_large.coco")
    ref = tvd.ssdlite320_mobilenet_v3_large(weights=weights).eval()
    assert model.zoo_labels == list(weights.meta["categories"])
    x = pil_to_tensor(_image()).float() / 255
    with torch.inference_mode():
        want = ref([x])[0]
    got = zoo.predict("ssdlite320_mobilenet_v3_large.coco", _image(), threshold=0.0)
    keep = want["scores"] >= 0.0
    assert [d["label"] for d in got] == [weights.meta["categories"][int(i)]
                                         for i in want["labels"][keep]]
    close(torch.tensor([d["score"] for d in got]), want["scores"][keep])


def test_fasterrcnn_320_loads_torchvisions_file_layout_frozen_batch_norms_and_all():
    """torchvision's trained Faster R-CNN files have no num_batches_tracked (the backbone's
    batch norms are frozen); zoo builds that layout, so the file loads strictly."""
    import torchvision.models.detection as tvd
    from torchvision.ops.misc import FrozenBatchNorm2d
    from torchvision.transforms.functional import pil_to_tensor

    weights = tvd.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1
    dest = seed_torchvision(weights, seed=2)
    state = torch.load(dest, weights_only=True)
    torch.save({k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}, dest)
    model = zoo.get("fasterrcnn_mobilenet_v3_large_320_fpn.coco")
    ref = tvd.fasterrcnn_mobilenet_v3_large_320_fpn(weights=weights).eval()
    assert any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    spec = default_registry().spec("fasterrcnn_mobilenet_v3_large_320_fpn")
    assert sum(p.numel() for p in model.parameters()) == spec.params_for("coco") \
        == weights.meta["num_params"]
    x = pil_to_tensor(_image()).float() / 255
    for m in (model, ref):          # random weights score low: keep every box
        m.roi_heads.score_thresh = 0.0
    with torch.inference_mode():
        a, b = model([x])[0], ref([x])[0]
    assert len(b["scores"]) > 0
    close(a["scores"], b["scores"])
    assert torch.equal(a["labels"], b["labels"])


@pytest.mark.slow
def test_vit_b_16_imagenet_names_imagenet_categories():
    """86 M parameters: a 330 MB state dict saved and read once."""
    import torchvision.models as tvm

    weights = tvm.ViT_B_16_Weights.IMAGENET1K_V1
    seed_torchvision(weights, seed=3)
    model = zoo.get("vit_b_16.imagenet")
    ref = tvm.vit_b_16(weights=weights).eval()
    got = zoo.predict("vit_b_16.imagenet", _image(), top_k=3)
    x = weights.transforms()(_image()).unsqueeze(0)
    with torch.inference_mode():
        probs = ref(x).softmax(-1)[0]
        close(model(x), ref(x))
    top = probs.topk(3)
    cats = weights.meta["categories"]
    assert [name for name, _ in got] == [cats[i] for i in top.indices.tolist()]
    assert all(isinstance(name, str) and not name.isdigit() for name, _ in got)


# -- demos ----------------------------------------------------------------------------------

def test_demos_of_the_new_tags_answer_over_http(hub):
    """fill-mask (a new task), and the text-classification, generation, translation and
    detection demos on the Hub's models, as a gallery on 127.0.0.1."""
    gradio_client = pytest.importorskip("gradio_client")
    from zoo.demos.app import adapter_for, launch
    from zoo.demos.gallery import build_gallery
    from zoo.demos.targets import resolve

    names = ["bert_base.uncased", "distilbert.sst2", "gpt2.openai", "marian.en-de",
             "detr.coco"]
    adapters = {n: adapter_for(resolve(n)).load(n, lazy=True) for n in names}
    demo = build_gallery(adapters=list(adapters.values()))
    url = launch(demo, port=free_port(), block=False)
    try:
        client = gradio_client.Client(url, verbose=False)

        def ask(name, *args):
            return client.predict(*args, api_name=f"/predict_{adapters[name].target.slug}")

        label, filled = ask("bert_base.uncased", "paris is the [MASK] of france.")
        best = zoo.predict("bert_base.uncased", "paris is the [MASK] of france.")[0]
        assert label["label"] == best["token"] and filled == best["sequence"]
        assert ask("distilbert.sst2", "I love it")["label"] in ("NEGATIVE", "POSITIVE")
        assert ask("gpt2.openai", "the cat", 4, 0.0) == \
            zoo.predict("gpt2.openai", "the cat", max_new_tokens=4, temperature=0)
        assert ask("marian.en-de", "hello world") == zoo.predict("marian.en-de", "hello world")
        tmp = Path(os.environ["ZOO_HOME"]) / "street.png"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        _image().save(tmp)
        annotated, table = ask("detr.coco", gradio_client.handle_file(str(tmp)), 0.0)
        assert table["data"] and all(row[0] in coco_labels() for row in table["data"])
        with pytest.raises(Exception, match="write \\[MASK\\]"):
            ask("bert_base.uncased", "no mask at all")
    finally:
        demo.close(verbose=False)


# -- the listing --------------------------------------------------------------------------------

def test_zoo_list_pretrained_shows_the_real_tags_with_their_sources():
    from conftest import run_zoo

    proc = run_zoo("list", "--pretrained", "bert_base.*", "distilbert.*", "gpt2*.*", "vit_*",
                   "detr.*", "marian.*", "ssdlite*", "fasterrcnn*")
    assert proc.returncode == 0, proc.stderr
    header, *rows = proc.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "TASK", "PARAMS", "SOURCE"]
    sources = {r.split()[0]: r.split()[3] for r in rows}
    assert sources == {
        "bert_base.uncased": f"hf-hub:{BERT}",
        "distilbert.sst2": "hf-hub:distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        "gpt2.openai": "hf-hub:openai-community/gpt2",
        "gpt2_medium.openai": "hf-hub:openai-community/gpt2-medium",
        "vit_b_16.imagenet": "torchvision:ViT_B_16_Weights.IMAGENET1K_V1",
        "vit_b_32.imagenet": "torchvision:ViT_B_32_Weights.IMAGENET1K_V1",
        "vit_l_16.imagenet": "torchvision:ViT_L_16_Weights.IMAGENET1K_V1",
        "detr.coco": "hf-hub:facebook/detr-resnet-50",
        "marian.en-de": "hf-hub:Helsinki-NLP/opus-mt-en-de",
        "ssdlite320_mobilenet_v3_large.coco":
            "torchvision:SSDLite320_MobileNet_V3_Large_Weights.COCO_V1",
        "fasterrcnn_mobilenet_v3_large_320_fpn.coco":
            "torchvision:FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1",
    }
    reg = default_registry()
    for full in sources:
        spec, tag = reg.resolve(full)
        pre = spec.pretrained[tag]
        assert (pre.license or spec.license) and pre.dataset and pre.metrics, full
        # each metric names where it is quoted from: the model card or the paper's table
        assert any(w in (pre.description or "").lower() for w in ("card", "table")), full
        assert spec.demo_task_for(tag) in ("fill-mask", "text-classification",
                                           "text-generation", "image-classification",
                                           "object-detection", "translation"), full
