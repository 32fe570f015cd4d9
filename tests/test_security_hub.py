"""Issue 14 items 5 and 8: a Hub endpoint cannot place files outside huggingface_hub's cache,
and a token never reaches an error line, whatever characters it holds.

The stand-in Hub (tests/hubserver.py) serves real repos on 127.0.0.1; a route added per test
turns it hostile. Commands run in-process through typer's CliRunner.
"""

from __future__ import annotations

import json

import pytest
from canary import files_under, opens_under
from hubserver import HubServer
from typer.testing import CliRunner

import zoo
from zoo.cli import app
from zoo.loading import build
from zoo.loading.hub import scrub

RESOLVE = (r"^/(?:(?P<type>space|dataset)s/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)"
           r"/(?P<file>.+)$")


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """A stand-in Hub serving ``mallory/lenet`` (lenet5 as ``zoo get --save`` writes it),
    with the HF variables pointing at it and at a cache inside ``tmp_path/hf``."""
    spec, _ = zoo.api.spec("lenet5")
    build.save(zoo.get("lenet5"), tmp_path / "hub" / "mallory" / "lenet", spec=spec)
    with HubServer(tmp_path / "hub") as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
        for var in ("HF_HUB_OFFLINE", "ZOO_OFFLINE", "HF_TOKEN"):
            monkeypatch.delenv(var, raising=False)
        yield server


def _one_error_line(res, code: int) -> str:
    err = res.stderr.strip().splitlines()
    err = [ln for ln in err if not ln.startswith("(set ZOO_DEBUG=1")]
    assert res.exit_code == code, (res.exit_code, res.stderr, repr(res.exception))
    assert len(err) == 1 and err[0].startswith("Error: "), res.stderr
    return err[0]


@pytest.mark.parametrize(("header", "value"), [
    ("ETag", '"../../../../outside/evil"'),
    ("X-Linked-Etag", '"../../../../outside/evil"'),
    ("ETag", 'W/"..//..//..//..//outside/evil"'),
    ("X-Repo-Commit", "../../../../outside"),
])
def test_h5_hostile_etag_cannot_place_a_file_outside_the_cache(hub, tmp_path, header, value):
    def hostile(server, req):
        status, headers, body = HubServer._resolve(server, req)
        headers[header] = value
        return status, headers, body

    hub.add_route("HEAD", RESOLVE, hostile)
    before = files_under(tmp_path, skip=(tmp_path / "hf",))
    res = CliRunner().invoke(app, ["get", "hf-hub:mallory/lenet"])
    line = _one_error_line(res, 1)
    assert header in line and "refused before anything was written" in line, line
    assert not (tmp_path / "outside").exists()
    assert files_under(tmp_path, skip=(tmp_path / "hf",)) == before
    cache = tmp_path / "hf" / "hub"
    assert not [p for p in cache.rglob("*") if p.is_file() and "blobs" in p.parts], \
        "a blob was written from the hostile answer"


def test_h5_cached_file_linking_outside_the_cache_is_refused(hub, tmp_path, monkeypatch):
    """A cache someone else could write (a shared HF_HUB_CACHE) whose snapshot links out."""
    res = CliRunner().invoke(app, ["get", "hf-hub:mallory/lenet", "--json"])
    assert res.exit_code == 0, res.stderr
    secret = tmp_path / "outside" / "config.json"
    secret.parent.mkdir()
    secret.write_text((tmp_path / "hub" / "mallory" / "lenet" / "config.json").read_text())
    snap = next((tmp_path / "hf" / "hub" / "models--mallory--lenet" / "snapshots").iterdir())
    (snap / "config.json").unlink()
    (snap / "config.json").symlink_to(secret)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with opens_under(secret.parent) as opened:
        res = CliRunner().invoke(app, ["get", "hf-hub:mallory/lenet"])
    line = _one_error_line(res, 1)
    assert "outside the repo's cache folder" in line, line
    assert opened == []


def test_h5_an_honest_hub_still_serves(hub):
    res = CliRunner().invoke(app, ["get", "hf-hub:mallory/lenet", "--json"])
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["output_shape"] == [1, 10]


# -- item 8: tokens with odd characters ------------------------------------------------------

TOKENS = ["hf_secretToken0123456789\nINJECTED", "hf_secret\rToken0123456789abc",
          "hf_secret\x1b[2JToken0123456789", "hf_secret\tToken\x00012345678"]


GOOD = "hf_zooTestSecretToken0123456789abcdef"


@pytest.mark.parametrize("token", [GOOD + "\nINJECTED", "INJECTED\r" + GOOD,
                                   GOOD[:12] + "\x1b[2J" + GOOD[12:], GOOD + " extra"])
def test_h8_token_with_a_newline_never_reaches_an_error_line(tmp_path, monkeypatch, token):
    """``zoo publish`` with a token pasted with more than the token: one line that names
    the variable, nothing of the token, nothing published."""
    from hub_api import WritableHub

    with WritableHub(tmp_path / "whub", tokens={GOOD: "alice"}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setenv("HF_TOKEN", token)
        res = CliRunner().invoke(app, ["publish", "lenet5", "--repo", "alice/lenet"])
        posts = [r for r in hub.requests if r[0] == "POST"]
    line = _one_error_line(res, 2)
    assert "HF_TOKEN" in line and "non-printable" in line, line
    out = res.stderr + res.stdout
    for piece in [token, repr(token)[1:-1], GOOD, *_pieces(token)]:
        assert piece not in out, (piece, out)
    assert posts == [], "something was sent to the Hub"


def _pieces(token: str) -> list[str]:
    """The printable runs of ``token`` long enough to identify it."""
    import re

    return [p for p in re.split(r"[^\x21-\x7e]+", token) if len(p) >= 6]


@pytest.mark.parametrize("token", TOKENS)
def test_h8_scrub_masks_reprs_and_pieces_of_the_token(token):
    text = (f"Illegal header value b'Bearer {token!r}' / {token} / "
            f"{token.encode()!r} / {json.dumps(token)}")
    clean = scrub(text, token)
    for piece in [token, repr(token)[1:-1], json.dumps(token)[1:-1], *_pieces(token)]:
        assert piece not in clean, (piece, clean)
    assert clean.isprintable(), repr(clean)


def test_h8_scrub_keeps_an_ordinary_message():
    assert scrub("could not reach the Hub (404)", "hf_abcdefghijklmnop") == \
        "could not reach the Hub (404)"
    assert scrub("token hf_abcdefghijklmnop leaked", None) == "token hf_*** leaked"
