"""The built-in pretrained loaders, one URI scheme at a time, against real local stand-ins.

https:/http: weights come from a real HTTP server on 127.0.0.1 (tests/hubserver.py);
hf-hub: and timm: from a folder laid out like huggingface_hub's cache (offline) or from the
stand-in Hub over HTTP (online, in a subprocess because huggingface_hub reads HF_ENDPOINT
at import); torchvision: from a file pre-seeded in torch.hub's cache. Catalog entries are
made here (ModelSpec, or a user catalog TOML through ZOO_CATALOG), never the shared one.
Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import isolate_caches, one_line, snapshot, tiny
from hubserver import HubServer, self_signed_cert
from torch import nn

import zoo
from zoo.errors import WeightsError
from zoo.loading import build
from zoo.loading.loaders import labels_of, load_source
from zoo.loading.sources import parse_hf_hub, torch_hub_checkpoints, url_cache_path
from zoo.loading.weights import save_weights, sha256_of
from zoo.registry import reset_default
from zoo.registry.spec import ModelSpec, PretrainedSpec


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every cache in tmp_path; no offline switches unless a test sets them."""
    isolate_caches(tmp_path, monkeypatch)


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def tiny_spec(source: str, sha256: str | None = None, labels=None) -> ModelSpec:
    pre = PretrainedSpec(tag="t", source=source, sha256=sha256,
                         labels=tuple(labels) if labels else None)
    return ModelSpec(name="tiny", family="cnn", task="image-classification", builder=tiny,
                     pretrained={"t": pre})


@pytest.fixture
def served(tmp_path):
    """A tiny model's weights served over HTTP on 127.0.0.1: (server, url, sha256, state)."""
    root = tmp_path / "www"
    (root / "w").mkdir(parents=True)
    src = tiny(seed=1)
    path = save_weights(src, root / "w" / "tiny.safetensors")
    with HubServer(root) as hub:
        yield hub, f"{hub.url}/w/tiny.safetensors", sha256_of(path), snapshot(src)


# -- https:/http: ---------------------------------------------------------------------------

def test_http_downloads_once_then_loads_from_cache_without_server(served):
    hub, url, sha, state = served
    model = build.build(tiny_spec(url, sha, labels=["yes", "no"]), "t")
    assert_same(snapshot(model), state)
    assert not model.training and labels_of(model) == ["yes", "no"]
    cached = url_cache_path(url, sha)
    assert cached.is_file() and sha256_of(cached) == sha
    assert not [p for p in cached.parent.iterdir() if p != cached]  # no temp files left
    assert hub.requests == [("GET", "/w/tiny.safetensors")]
    hub.stop()
    again = build.build(tiny_spec(url, sha), "t")
    assert_same(snapshot(again), state)
    out = again(torch.ones(1, 4))
    assert out.shape == (1, 2) and torch.equal(out, tiny(seed=1)(torch.ones(1, 4)))


def test_real_https_with_a_trusted_certificate(served, tmp_path, monkeypatch):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    hub, url, sha, state = served
    cert, key = self_signed_cert(tmp_path / "tls")
    with HubServer(hub.root, certfile=cert, keyfile=key) as tls:
        https_url = f"{tls.url}/w/tiny.safetensors"
        assert https_url.startswith("https://127.0.0.1:")
        # not trusted yet: one line, nothing cached
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "no-such-bundle.pem"))
        with pytest.raises(WeightsError, match="CERTIFICATE_VERIFY_FAILED|certificate") as e:
            load_source(tiny(), https_url, sha256=sha)
        one_line(e)
        assert not url_cache_path(https_url, sha).exists()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert_same(snapshot(load_source(tiny(), https_url, sha256=sha)), state)
        assert tls.requests == [("GET", "/w/tiny.safetensors")]
    assert url_cache_path(https_url, sha).is_file()


def test_http_wrong_sha256_is_refused_and_nothing_is_cached(served):
    hub, url, sha, _ = served
    bad = "f" * 64
    model = tiny(seed=5)
    before = snapshot(model)
    with pytest.raises(WeightsError, match="sha256") as e:
        load_source(model, url, sha256=bad)
    msg = one_line(e)
    assert url in msg and sha[:16] in msg
    assert_same(snapshot(model), before)
    assert not url_cache_path(url, bad).parent.exists() or \
        not any(url_cache_path(url, bad).parent.iterdir())


def test_https_source_needs_a_sha256(served):
    _, url, _, _ = served
    with pytest.raises(WeightsError, match="needs the file's sha256"):
        load_source(tiny(), url)


def test_plain_http_is_refused_off_loopback():
    # refused before any connection is attempted: no traffic leaves the machine
    with pytest.raises(WeightsError, match="only https://"):
        load_source(tiny(), "http://example.com/w.safetensors", sha256="0" * 64)


def test_offline_missing_download_is_one_line_naming_url_and_cache_path(served, monkeypatch):
    hub, url, sha, _ = served
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(WeightsError) as e:
        load_source(tiny(), url, sha256=sha)
    msg = one_line(e)
    assert url in msg and str(url_cache_path(url, sha)) in msg
    assert "ZOO_OFFLINE=1" in msg and "place the file at" in msg
    assert hub.requests == []


def test_offline_uses_a_file_placed_in_the_cache(served, monkeypatch):
    hub, url, sha, state = served
    dest = url_cache_path(url, sha)
    dest.parent.mkdir(parents=True)
    shutil.copy(hub.root / "w" / "tiny.safetensors", dest)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    assert_same(snapshot(load_source(tiny(), url, sha256=sha)), state)
    assert hub.requests == []


def test_network_failures_are_one_line(served):
    hub, url, sha, _ = served
    hub.fail(503, path="tiny")
    with pytest.raises(WeightsError, match="HTTP 503") as e:
        load_source(tiny(), url, sha256=sha)
    assert url in one_line(e)
    with pytest.raises(WeightsError, match="HTTP 404"):
        load_source(tiny(), url.replace("tiny", "nope"), sha256=sha)
    hub.stop()  # nothing listens on the port any more
    with pytest.raises(WeightsError, match="download failed") as e:
        load_source(tiny(), url, sha256=sha)
    msg = one_line(e)
    assert "refused" in msg.lower() and "ZOO_OFFLINE=1" in msg


def test_truncated_download_is_refused_and_not_cached(served):
    hub, url, sha, _ = served
    data = (hub.root / "w" / "tiny.safetensors").read_bytes()

    def cut_short(server, request):  # promise every byte, send half, hang up
        return 200, {"Content-Length": str(len(data)), "Connection": "close"}, data[:100]

    hub.add_route("GET", r"^/w/tiny.safetensors$", cut_short)
    model = tiny(seed=5)
    before = snapshot(model)
    with pytest.raises(WeightsError, match=rf"stopped after 100 of {len(data)} bytes") as e:
        load_source(model, url, sha256=sha)
    assert url in one_line(e)
    assert_same(snapshot(model), before)
    folder = url_cache_path(url, sha).parent
    assert not folder.exists() or not any(folder.iterdir())  # no partial file left


def test_hash_prefix_in_a_file_name_is_checked_on_download(served, tmp_path):
    from zoo.loading.download import download

    hub, url, sha, _ = served
    good = download(url, tmp_path / "a" / f"tiny-{sha[:8]}.safetensors", sha256_prefix=sha[:8])
    assert sha256_of(good) == sha
    bad = tmp_path / "b" / "tiny-deadbeef.safetensors"
    with pytest.raises(WeightsError, match="its name promises deadbeef") as e:
        download(url, bad, sha256_prefix="deadbeef")
    one_line(e)
    assert not any(bad.parent.iterdir())


def test_corrupt_cached_file_is_reported_with_its_path(served):
    hub, url, sha, _ = served
    load_source(tiny(), url, sha256=sha)
    cached = url_cache_path(url, sha)
    data = bytearray(cached.read_bytes())
    data[-1] ^= 0xFF
    cached.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="corrupt or was replaced") as e:
        load_source(tiny(), url, sha256=sha)
    assert str(cached) in one_line(e)


def test_user_catalog_entry_loads_through_zoo_get(served, tmp_path, monkeypatch):
    _, url, sha, _ = served
    lin = nn.Linear(4, 3)
    torch.nn.init.constant_(lin.weight, 0.25)
    torch.nn.init.constant_(lin.bias, -1.0)
    weights = save_weights(lin, tmp_path / "lin.safetensors")
    catalog = tmp_path / "mine.toml"
    catalog.write_text(textwrap.dedent(f"""
        [models.tiny-linear]
        family = "cnn"
        task = "image-classification"
        builder = "torch.nn:Linear"
        kwargs = {{ in_features = 4, out_features = 3 }}
        input = {{ size = [4] }}

        [models.tiny-linear.pretrained.local]
        source = "file:{weights}"
        sha256 = "{sha256_of(weights)}"
        labels = ["a", "b", "c"]
    """))
    monkeypatch.setenv("ZOO_CATALOG", str(catalog))
    reset_default()
    try:
        model = zoo.get("tiny-linear.local")
        assert model(torch.ones(1, 4)).tolist() == [[0.0, 0.0, 0.0]]
        assert labels_of(model) == ["a", "b", "c"]
        assert labels_of(zoo.get("tiny-linear")) is None
    finally:
        reset_default()


def test_unknown_scheme_is_left_to_other_plugins():
    from zoo.loading.loaders import zoo_load_pretrained

    assert zoo_load_pretrained(model=tiny(), source="s3://bucket/w.pt", tag=None) is None


# -- hf-hub: and timm: through huggingface_hub's cache ----------------------------------------

def seed_hub_cache(cache: Path, repo: str, files: dict[str, bytes], commit: str = "a" * 40,
                   ref: str = "main") -> Path:
    """Lay ``files`` out as huggingface_hub's cache does: blobs, snapshots, refs."""
    base = cache / ("models--" + repo.replace("/", "--"))
    snap = base / "snapshots" / commit
    for name, data in files.items():
        import hashlib

        blob = base / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        (snap / name).symlink_to(os.path.relpath(blob, (snap / name).parent))
    (base / "refs").mkdir(parents=True, exist_ok=True)
    (base / "refs" / ref).write_text(commit)
    return snap


def test_parse_hf_hub_forms():
    assert parse_hf_hub("org/repo") == ("org/repo", None, "model.safetensors")
    assert parse_hf_hub("org/repo@v1") == ("org/repo", "v1", "model.safetensors")
    assert parse_hf_hub("org/repo@abc/sub/w.pt") == ("org/repo", "abc", "sub/w.pt")
    assert parse_hf_hub("org/repo/w.bin") == ("org/repo", None, "w.bin")
    with pytest.raises(WeightsError, match="ORG/REPO"):
        parse_hf_hub("justrepo")


def test_hf_hub_loads_offline_from_a_seeded_cache(tmp_path, monkeypatch):
    src = tiny(seed=7)
    blob = tmp_path / "m.safetensors"
    save_weights(src, blob)
    other = tmp_path / "w.pt"
    torch.save(tiny(seed=8).state_dict(), other)
    config = json.dumps({"id2label": {"1": "dog", "0": "cat"}}).encode()
    commit = "1234567890abcdef1234567890abcdef12345678"
    seed_hub_cache(tmp_path / "hf-home" / "hub", "org/tiny",
                   {"model.safetensors": blob.read_bytes(), "ckpt/w.pt": other.read_bytes(),
                    "config.json": config}, commit=commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = build.build(tiny_spec("hf-hub:org/tiny"), "t")
    assert_same(snapshot(model), snapshot(src))
    assert labels_of(model) == ["cat", "dog"]  # from the snapshot's config.json
    pinned = load_source(tiny(), f"hf-hub:org/tiny@{commit}/ckpt/w.pt", labels=["x", "y"])
    assert_same(snapshot(pinned), snapshot(tiny(seed=8)))
    assert labels_of(pinned) == ["x", "y"]  # the catalog's labels win


def test_hf_hub_offline_missing_file_is_one_line_naming_repo_file_and_cache(monkeypatch,
                                                                             tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError) as e:
        load_source(tiny(), "hf-hub:org/absent@v2/weights.safetensors")
    msg = one_line(e)
    cache = tmp_path / "hf-home" / "hub" / "models--org--absent"
    for part in ("org/absent@v2", "weights.safetensors", str(cache), "HF_HUB_OFFLINE=1",
                 "HF_HUB_CACHE"):
        assert part in msg, part


def test_zoo_offline_also_keeps_the_hub_loaders_offline(monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(WeightsError, match="ZOO_OFFLINE=1 forbids the network"):
        load_source(tiny(), "hf-hub:org/absent")


def test_hf_hub_shape_mismatch_names_the_cached_file(tmp_path, monkeypatch):
    wrong = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 9))
    blob = save_weights(wrong, tmp_path / "m.safetensors")
    snap = seed_hub_cache(tmp_path / "hf-home" / "hub", "org/nine",
                          {"model.safetensors": blob.read_bytes()})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = tiny()
    before = snapshot(model)
    with pytest.raises(WeightsError, match=r"2.weight: file \[9, 3\], model \[2, 3\]") as e:
        load_source(model, "hf-hub:org/nine")
    msg = one_line(e)
    assert "hf-hub:org/nine" in msg and str(snap / "model.safetensors") in msg
    assert_same(snapshot(model), before)


# no torch in the child: it only fetches; the parent loads what it fetched
ONLINE_SCRIPT = """
import sys, time
if "--no-backoff" in sys.argv:  # huggingface_hub retries for real, without the 23 s of waits
    time.sleep = lambda seconds: None
from zoo.errors import WeightsError
from zoo.loading.sources import fetch
try:
    print(fetch(sys.argv[1]))
except WeightsError as e:
    print("WeightsError:", e)
"""


def test_hf_hub_downloads_from_the_stand_in_hub_then_works_offline(tmp_path, monkeypatch):
    root = tmp_path / "hub-root"
    (root / "org" / "tiny").mkdir(parents=True)
    src = tiny(seed=11)
    served = save_weights(src, root / "org" / "tiny" / "model.safetensors")
    (root / "org" / "tiny" / "config.json").write_text("{}")
    cache = tmp_path / "hf-home" / "hub"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "ZOO_OFFLINE"))}
    with HubServer(root) as hub:
        # HF_ENDPOINT must be set before huggingface_hub is imported: a fresh process
        env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"), HF_HUB_CACHE=str(cache),
                   HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1",
                   NO_PROXY="*")
        out = subprocess.run([sys.executable, "-c", ONLINE_SCRIPT, "hf-hub:org/tiny"],
                             env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr[-2000:]
        assert ("HEAD", "/org/tiny/resolve/main/model.safetensors") in hub.requests
        assert ("GET", "/org/tiny/resolve/main/model.safetensors") in hub.requests
        commit = hub.commit_of("org/tiny")
    fetched = Path(out.stdout.strip().splitlines()[-1])
    assert fetched == cache / "models--org--tiny" / "snapshots" / commit / "model.safetensors"
    assert sha256_of(fetched) == sha256_of(served)
    # the server is gone: a file that is not cached gives one line naming repo and cache
    out = subprocess.run([sys.executable, "-c", ONLINE_SCRIPT, "hf-hub:org/tiny/other.bin",
                          "--no-backoff"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 and not out.stderr.strip(), out.stderr  # one line, no retry noise
    assert lines[0].startswith("WeightsError: hf-hub:org/tiny/other.bin: could not reach the "
                               f"Hub ({env['HF_ENDPOINT']})")
    assert str(cache / "models--org--tiny") in lines[0]
    # ... and the cached copy is enough offline
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert_same(snapshot(load_source(tiny(), "hf-hub:org/tiny")), snapshot(src))


def test_timm_loads_offline_through_the_hub_cache_with_labels(tmp_path, monkeypatch):
    timm = pytest.importorskip("timm")
    name = "test_resnet.r160_in1k"
    cfg = timm.models.get_pretrained_cfg(name)
    assert cfg.hf_hub_id == f"timm/{name}"
    torch.manual_seed(3)
    src = timm.create_model("test_resnet", pretrained=False)
    blob = save_weights(src, tmp_path / "model.safetensors")
    seed_hub_cache(tmp_path / "hf-home" / "hub", cfg.hf_hub_id,
                   {"model.safetensors": blob.read_bytes()})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = ModelSpec(name="timm-test-resnet", family="cnn", task="image-classification",
                     builder=timm.create_model, kwargs={"model_name": "test_resnet"},
                     pretrained={"in1k": PretrainedSpec(tag="in1k", source=f"timm:{name}")})
    model = build.build(spec, "in1k")
    assert_same(snapshot(model), snapshot(src))
    x = torch.randn(1, 3, 160, 160, generator=torch.Generator().manual_seed(0))
    src.eval()
    with torch.inference_mode():
        assert torch.allclose(model(x), src(x))
    labels = labels_of(model)
    assert len(labels) == 1000 and labels[0].startswith("tench")


def test_timm_offline_missing_names_repo_and_both_files(monkeypatch):
    pytest.importorskip("timm")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError) as e:
        load_source(tiny(), "timm:test_vit.r160_in1k")
    msg = one_line(e)
    assert "timm/test_vit.r160_in1k" in msg
    assert "model.safetensors or pytorch_model.bin" in msg


def test_timm_unknown_weights_suggest_close_names():
    pytest.importorskip("timm")
    with pytest.raises(WeightsError, match="did you mean.*timm:test_resnet.r160_in1k"):
        load_source(tiny(), "timm:test_resnet.r161_in1k")


# -- torchvision: through torch.hub's cache ---------------------------------------------------

def test_torchvision_loads_a_preseeded_cache_file_offline_with_categories(monkeypatch):
    from torchvision.models import ResNet18_Weights, resnet18

    url = ResNet18_Weights.IMAGENET1K_V1.url
    dest = torch_hub_checkpoints() / Path(url).name
    assert dest.name == "resnet18-f37072fd.pth"
    torch.manual_seed(5)
    src = resnet18()
    dest.parent.mkdir(parents=True)
    torch.save(src.state_dict(), dest)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    spec = ModelSpec(name="rn18", family="cnn", task="image-classification",
                     builder="torchvision.models:resnet18",
                     pretrained={"imagenet": PretrainedSpec(
                         tag="imagenet", source="torchvision:ResNet18_Weights.IMAGENET1K_V1")})
    model = build.build(spec, "imagenet")
    assert_same(snapshot(model), snapshot(src))
    src.eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert torch.equal(model(x), src(x))
    labels = labels_of(model)
    assert labels == list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])
    assert labels[0] == "tench"


def test_torchvision_densenet_files_with_old_key_names_load(monkeypatch):
    from torchvision.models import DenseNet121_Weights, densenet121

    torch.manual_seed(6)
    src = densenet121()
    # the published files still say "denselayer1.norm.1.weight" for today's "norm1", and
    # predate BatchNorm's num_batches_tracked
    old = {k.replace(".norm1.", ".norm.1.").replace(".conv1.", ".conv.1.")
           .replace(".norm2.", ".norm.2.").replace(".conv2.", ".conv.2."): v
           for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old
    dest = torch_hub_checkpoints() / Path(DenseNet121_Weights.IMAGENET1K_V1.url).name
    dest.parent.mkdir(parents=True)
    torch.save(old, dest)
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    model = load_source(densenet121(), "torchvision:DenseNet121_Weights.IMAGENET1K_V1")
    assert_same(snapshot(model), snapshot(src))


def test_torchvision_offline_missing_names_url_and_torch_hub_path(monkeypatch):
    monkeypatch.setenv("ZOO_OFFLINE", "1")
    with pytest.raises(WeightsError) as e:
        load_source(tiny(), "torchvision:ResNet18_Weights.IMAGENET1K_V1")
    msg = one_line(e)
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in msg
    assert str(torch_hub_checkpoints() / "resnet18-f37072fd.pth") in msg
    assert "ZOO_OFFLINE=1" in msg


def test_torchvision_unknown_member_lists_the_real_ones():
    with pytest.raises(WeightsError, match="has no member 'IMAGENET9K'.*IMAGENET1K_V1"):
        load_source(tiny(), "torchvision:ResNet18_Weights.IMAGENET9K")
    with pytest.raises(WeightsError, match="no weights enum 'ResNet19_Weights'"):
        load_source(tiny(), "torchvision:ResNet19_Weights.IMAGENET1K_V1")


# -- the real internet (skipped unless asked for) ---------------------------------------------

@pytest.mark.network
@pytest.mark.skipif(os.environ.get("ZOO_TEST_NETWORK") != "1",
                    reason="needs the internet; set ZOO_TEST_NETWORK=1 to run")
def test_torchvision_downloads_for_real_and_checks_the_hash_in_the_name():
    from torchvision.models import resnet18

    model = load_source(resnet18(), "torchvision:ResNet18_Weights.IMAGENET1K_V1")
    assert (torch_hub_checkpoints() / "resnet18-f37072fd.pth").is_file()
    assert labels_of(model)[0] == "tench"


@pytest.mark.network
@pytest.mark.skipif(os.environ.get("ZOO_TEST_NETWORK") != "1",
                    reason="needs the internet; set ZOO_TEST_NETWORK=1 to run")
def test_timm_downloads_for_real_from_the_hub():
    timm = pytest.importorskip("timm")
    model = load_source(timm.create_model("test_resnet"), "timm:test_resnet.r160_in1k")
    assert len(labels_of(model)) == 1000

