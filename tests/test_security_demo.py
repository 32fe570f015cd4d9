"""Issue 14 item 13: what a served demo shows and accepts.

One real ``zoo demo DIR`` server in a fresh interpreter, for a saved model whose folder name
and catalog entry carry HTML: the page shows them as text, a JSON body over the cap is
refused with 413 before it is read, and uploads land in a folder only this user can read,
which gradio cleans.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from helpers import child_env, free_port, stop

from zoo.demos.serving import DELETE_CACHE, MAX_JSON_BYTES

HOSTILE = "<img src=x onerror=alert(1)>"
CATALOG = """
[models.evil-lenet]
family = "cnn"
task = "image-classification"
builder = "zoo.plugins.cnn.lenet:lenet5"
kwargs = {{ num_classes = 10, in_channels = 1 }}
description = "{html}<script>alert(2)</script>"
paper = "A paper <b onmouseover=alert(3)>"
paper_url = "javascript:alert(4)"
input = {{ size = [1, 32, 32], mean = [0.5], std = [0.5] }}
demo = "image-classification"

[models.evil-lenet.pretrained.digits]
source = "package:zoo/trained/lenet5-digits.safetensors"
kwargs = {{ num_classes = 10, in_channels = 1 }}
labels = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
dataset = "digits <iframe src=//evil.example>"
metrics = {{ accuracy = 0.9 }}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """``zoo demo DIR`` on 127.0.0.1, DIR named with HTML and its tag not a tag."""
    import zoo
    from zoo.loading import build

    root = tmp_path_factory.mktemp("demo")
    cat = root / "evil.toml"
    cat.write_text(CATALOG.format(html=HOSTILE.replace('"', '\\"')))
    d = root / HOSTILE
    spec, tag = zoo.api.spec("lenet5.digits")
    build.save(zoo.get("lenet5.digits"), d, spec=spec, tag=tag)
    config = json.loads((d / "config.json").read_text())
    config.update(name="evil-lenet", tag="<b>x</b>")
    (d / "config.json").write_text(json.dumps(config))
    port = free_port()
    env = {k: v for k, v in child_env().items() if k != "GRADIO_TEMP_DIR"}
    env.update(ZOO_CATALOG=str(cat), GRADIO_ANALYTICS_ENABLED="False", TMPDIR=str(root))
    proc = subprocess.Popen([sys.executable, "-m", "zoo", "demo", str(d), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"zoo demo exited: {proc.stdout.read()}")
            try:
                if httpx.get(f"{url}/config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("zoo demo did not answer within 180 s")
        yield url, root, proc
    finally:
        stop(proc)
        proc.stdout.close()


def _texts(config: dict) -> list[str]:
    return [str(c.get("props", {}).get("value")) for c in config["components"]
            if c.get("type") in ("markdown", "html")]


def test_h13_html_in_a_label_or_description_reaches_the_page_escaped(server):
    url, *_ = server
    config = httpx.get(f"{url}/config", timeout=10).json()
    shown = " ".join(_texts(config))
    assert "&lt;img src=x onerror=alert(1)&gt;" in shown, shown          # the folder name
    for raw in ("<img", "<script", "<b onmouseover", "<iframe", "javascript:"):
        assert raw not in shown, (raw, shown)
    assert "<img" not in str(config.get("title")) and "<b>" not in str(config.get("title"))


def test_h13_json_request_bodies_are_capped(server):
    url, *_ = server
    big = json.dumps({"data": ["x" * (MAX_JSON_BYTES + 1)], "fn_index": 0,
                      "session_hash": "abc"}).encode()
    res = httpx.post(f"{url}/gradio_api/queue/join", content=big, timeout=30,
                     headers={"Content-Type": "application/json"})
    assert res.status_code == 413, (res.status_code, res.text[:200])

    def chunks():                               # no Content-Length: counted as it arrives
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    res = httpx.post(f"{url}/gradio_api/queue/join", content=chunks(), timeout=30,
                     headers={"Content-Type": "application/json"})
    assert res.status_code == 413, (res.status_code, res.text[:200])
    small = httpx.post(f"{url}/gradio_api/queue/join", timeout=30, json={
        "data": [None], "fn_index": 0, "session_hash": "abc"})
    assert small.status_code != 413


PNG = Path(__file__).resolve().parents[1] / "demos" / "examples" / "digit_0.png"


def _upload(url: str) -> Path:
    with open(PNG, "rb") as fh:
        res = httpx.post(f"{url}/gradio_api/upload", files={"files": ("d.png", fh)},
                         timeout=30)
    assert res.status_code == 200, res.text
    return Path(res.json()[0])


def test_h13_uploads_are_private_and_cleaned(server):
    url, root, _ = server
    path = _upload(url)
    assert path.is_file() and path.read_bytes() == PNG.read_bytes()
    folder = next(p for p in [path, *path.parents] if p.parent == root)
    assert folder.name.startswith("zoo-demo-uploads-"), path
    assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, oct(folder.stat().st_mode)
    assert str(root) not in os.environ.get("GRADIO_TEMP_DIR", "")
    assert DELETE_CACHE[1] <= 24 * 3600        # uploads are deleted while serving


def test_h13_the_private_upload_folder_goes_when_the_server_stops(tmp_path):
    """The folder :func:`private_upload_dir` makes is removed at exit."""
    code = ("import os; from zoo.demos.serving import private_upload_dir; "
            "print(private_upload_dir())")
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    env["TMPDIR"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60, check=True).stdout.strip()
    assert out.startswith(str(tmp_path)) and not Path(out).exists()
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_h13_sigterm_removes_the_upload_folder_as_ctrl_c_does(server):
    """Last in this file: it stops the module's server as ``kill`` or a service manager
    does. SIGTERM's default action ends the process before ``atexit`` runs, which left
    every upload on disk."""
    url, root, proc = server
    path = _upload(url)
    folder = next(p for p in [path, *path.parents] if p.parent == root)
    assert folder.is_dir()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert not folder.exists() and not list(root.glob("zoo-demo-uploads-*"))
