"""The Hugging Face Hub, read side: endpoint, token, errors, and a published model's snapshot.

The write side (whoami, one-commit uploads) is :mod:`zoo.publish.upload`.

Everything goes through huggingface_hub, imported inside the functions. The endpoint
(``HF_ENDPOINT``), cache (``HF_HUB_CACHE``/``HF_HOME``), offline switch (``HF_HUB_OFFLINE``,
``ZOO_OFFLINE``) and token (``HF_TOKEN``, else the ``hf auth login`` token) are read at
each call, not when huggingface_hub was imported, and passed explicitly.

Errors a user can meet become one line (:class:`HubError` or
:class:`~zoo.errors.UsageError`); the token is scrubbed from every message.

A published repo (see :mod:`zoo.publish`) holds ``config.json`` (as written by
:func:`zoo.loading.build.save`), ``model.safetensors``, and under ``files/`` the files its builder
arguments point at (vocabularies, tokenizers). ``config["files"]`` maps each such builder
argument to its repo-relative path, ``config["assets"]`` maps every such file to its
sha256. :func:`snapshot` downloads exactly those files, checks them, and returns a folder
that :func:`zoo.loading.build.load_dir` rebuilds.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

from zoo.errors import UsageError, WeightsError, ZooError
from zoo.loading.sources import quiet_hub_logs

DEFAULT_ENDPOINT = "https://huggingface.co"
REPO_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


class HubError(ZooError):
    """The Hub refused or could not be reached; nothing past the failing step happened."""


# -- settings read now -------------------------------------------------------------------

def endpoint() -> str:
    """The Hub's base URL: ``HF_ENDPOINT`` now, else huggingface.co (no trailing slash)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def get_token() -> str | None:
    """``HF_TOKEN`` (or ``HUGGING_FACE_HUB_TOKEN``) now, else the ``hf auth login`` token."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        env = os.environ.get(var)
        if env and env.strip():
            return _printable_token(env.strip(), var)
    try:
        from huggingface_hub import constants
    except ImportError:
        return None
    home = os.environ.get("HF_HOME")
    path = Path(os.environ.get("HF_TOKEN_PATH") or (Path(home) / "token" if home else
                                                    constants.HF_TOKEN_PATH)).expanduser()
    try:
        token = path.read_text().strip()
    except OSError:
        return None
    return _printable_token(token, str(path)) if token else None


def _printable_token(token: str, where: str) -> str:
    """A token with a newline, space or control character in it was pasted with more than
    the token: refuse it before any request quotes it (without showing it)."""
    if not token.isprintable() or any(c.isspace() for c in token):
        raise UsageError(f"the Hugging Face token in {where} holds a newline, space or other "
                         "non-printable character; set it again to just the token "
                         "(https://huggingface.co/settings/tokens)")
    return token


def check_repo_id(repo: str, what: str = "--repo") -> str:
    """``ORG/NAME`` or a UsageError saying what a repo id looks like."""
    if not REPO_RE.match(repo or "") or ".." in repo or repo.endswith((".git", ".")):
        raise UsageError(f"{what} '{repo}' is not a Hub repo id; write ORG/NAME "
                         "(letters, digits, '-', '_', '.')")
    return repo


def scrub(text: str, token: str | None) -> str:
    """``text`` with the token (and anything that looks like an HF token) masked.

    Error messages quote a token in many spellings: as it is, as a Python or JSON string
    (``hf_ab\\ncd``), as bytes, or cut in pieces by its own newline. Each spelling, and each
    printable run of six or more characters of the token, is masked; characters that could
    break or rewrite the line (newlines, terminal escapes) come back escaped.
    """
    text = _mask(text, token)
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text


def _mask(text: str, token: str | None) -> str:
    if token:
        spellings = {token, repr(token)[1:-1], json.dumps(token)[1:-1],
                     repr(token.encode("utf-8", "backslashreplace"))[2:-1]}
        for s in sorted(spellings, key=len, reverse=True):
            text = text.replace(s, "hf_***")
        pieces = {p for p in re.split(r"[^\x21-\x7e]+", token) if len(p) >= 6}
        for s in sorted(pieces | {repr(p)[1:-1] for p in pieces}, key=len, reverse=True):
            text = text.replace(s, "***")
    return re.sub(r"\bhf_[A-Za-z0-9]{8,}\b", "hf_***", text)


def _first_line(e: BaseException, token: str | None) -> str:
    # scrub first: a token holding a newline would otherwise leave its tail on line two
    # and its head, unrecognised, on line one
    text = _mask(str(e).strip(), token)
    line = text.splitlines()[0] if text else ""
    return scrub(f"{type(e).__name__}: {line}" if line else type(e).__name__, None)


# -- errors ------------------------------------------------------------------------------

@contextlib.contextmanager
def hub_errors(action: str, *, repo: str | None, token: str | None,
               done: str = "nothing was published") -> Iterator[None]:
    """Turn huggingface_hub/httpx failures inside the block into one zoo error line.

    ``action`` says what was being done ("create the repo"), ``done`` what state that
    leaves things in, so a failure never reads as success.
    """
    from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError

    hub = endpoint()
    on = f" for '{repo}'" if repo else ""
    try:
        with quiet_hub_logs():
            yield
    except ZooError:
        raise
    except LocalTokenNotFoundError:
        raise UsageError(_no_token()) from None
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else None
        server = ""
        if e.response is not None:
            server = (e.response.headers.get("X-Error-Message") or "").strip()
        server = scrub(server.splitlines()[0], token) if server else ""
        if status == 401:
            raise UsageError(f"the Hub ({hub}) refused the Hugging Face token (401) while trying "
                             f"to {action}; set a valid write token in HF_TOKEN or run "
                             f"'hf auth login --force'; {done}") from None
        if status == 403 and repo:
            owner = repo.split("/")[0]
            raise UsageError(f"not allowed to write to '{repo}' (403 from {hub}): '{owner}' is "
                             "not you or one of your organisations, or the token is read-only; "
                             f"publish under your own name or use a write token; {done}"
                             ) from None
        why = f" ({server})" if server else ""
        raise HubError(f"the Hub ({hub}) answered {status} while trying to {action}{on}{why}; "
                       f"{done}; run the command again (re-publishing skips files that are "
                       "already there)") from None
    except ValueError as e:  # the client refused the answer, or the card's metadata
        raise HubError(f"could not {action}{on} ({_first_line(e, token)}); {done}") from None
    except OSError as e:
        raise HubError(f"could not {action}{on}: the Hub ({hub}) did not answer "
                       f"({_first_line(e, token)}); check your network or HF_ENDPOINT; {done}"
                       ) from None
    except Exception as e:  # noqa: BLE001 - httpx errors do not share an OSError base
        if type(e).__module__.startswith(("httpx", "httpcore", "h11", "ssl")):
            raise HubError(f"could not {action}{on}: the Hub ({hub}) did not answer "
                           f"({_first_line(e, token)}); check your network or HF_ENDPOINT; "
                           f"{done}") from None
        raise


def _no_token() -> str:
    return ("no Hugging Face token: set HF_TOKEN to a write token "
            "(https://huggingface.co/settings/tokens) or run 'hf auth login'; "
            "nothing was published")


# -- upload ------------------------------------------------------------------------------

def client(token: str | None):
    """An ``HfApi`` for the endpoint and token given now."""
    from huggingface_hub import HfApi

    from zoo.loading.sources import sync_hf_settings

    sync_hf_settings()
    return HfApi(endpoint=endpoint(), token=token if token else False,
                 library_name="zoo", library_version=_zoo_version())


def _zoo_version() -> str:
    from zoo.version import __version__

    return __version__





def parse_ref(ref: str) -> tuple[str, str | None]:
    """``"ORG/NAME[@REV]"`` -> ``("ORG/NAME", "REV" or None)``."""
    text = ref.strip()
    repo, _, rev = text.partition("@")
    if "/" in rev:
        raise UsageError(f"hf-hub:{ref}: a zoo model is a whole repo; write "
                         "hf-hub:ORG/NAME[@REVISION] (no file part)")
    if repo.count("/") != 1:
        raise UsageError(f"hf-hub:{ref}: expected hf-hub:ORG/NAME[@REVISION]"
                         + ("; a zoo model is a whole repo (no file part)"
                            if repo.count("/") > 1 else ""))
    check_repo_id(repo, what=f"hf-hub:{ref}:")
    return repo, rev or None


def snapshot(ref: str) -> Path:
    """Download ``ORG/NAME[@REV]`` through huggingface_hub's cache; return a model folder.

    Fetches ``config.json`` first and then, at that commit, the weights and the files the
    config lists, checking each file's sha256 (the weights' own check happens when
    :func:`zoo.loading.build.load_dir` reads them). With ``HF_HUB_OFFLINE=1`` only the cache
    is read.

    Raises:
        WeightsError: not reachable and not cached, no such repo or revision, not a zoo
            model, or a file that does not match its hash; one line.
    """
    from zoo.loading.sources import hub_file
    from zoo.loading.weights import sha256_of

    repo, rev = parse_ref(ref)
    what = f"hf-hub:{ref}"
    cfg_path = hub_file(repo, ["config.json"], rev, what=what)
    snap = cfg_path.parent
    commit = snap.name                      # snapshots/<commit>/config.json
    from zoo.loading.build import read_config

    try:
        config = read_config(snap)
    except UsageError as e:
        if "missing 'builder'" not in str(e) and "missing 'kwargs'" not in str(e):
            raise WeightsError(f"{what}: {e}") from None
        config = None
    if config is None:
        raise WeightsError(f"{what}: not a zoo model (its config.json has no 'builder'); "
                           "publish it with 'zoo publish', or load its weights through a "
                           f"catalog entry with source = \"hf-hub:{repo}/FILE\"")
    weights = config.get("weights") or "model.safetensors"
    assets = config.get("assets") or {}
    if not isinstance(weights, str) or not isinstance(assets, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in assets.items()):
        raise WeightsError(f"{what}: config.json's 'weights' must be a file name and 'assets' "
                           "a table of file names to sha256 strings; the repo is damaged")
    hub_file(repo, [weights], commit, what=what)
    for rel, sha in assets.items():
        p = hub_file(repo, [rel], commit, what=what)
        if sha and sha256_of(p) != sha:
            raise WeightsError(f"{what}: {rel} does not match the sha256 in config.json "
                               f"({p}); delete it from the cache and download again")
    return snap


