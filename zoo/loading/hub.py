"""The Hugging Face Hub, read side: endpoint, token, errors, and a published model's snapshot.

The write side (whoami, one-commit uploads) is :mod:`zoo.publish.upload`.

Everything goes through huggingface_hub, imported inside the functions. The endpoint
(``HF_ENDPOINT``), cache (``HF_HUB_CACHE``/``HF_HOME``), offline switch (``HF_HUB_OFFLINE``,
``ZOO_OFFLINE``) and token (``HF_TOKEN``, else the ``hf auth login`` token) are read at
each call, not when huggingface_hub was imported, and passed explicitly.

Errors a user can meet become one line (:class:`HubError` or
:class:`~zoo.errors.UsageError`); the token is scrubbed from every message.

:func:`snapshot` lists a repo once, works out its layout (:mod:`zoo.loading.native`: a
repo zoo published with ``zoo.json``, one in zoo's older ``config.json`` layout, a
transformers or a timm repo) and downloads only the files that layout needs, checking
those ``zoo.json`` lists with a sha256; :func:`zoo.loading.native_build.load_directory`
builds the model from the folder it returns.
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


def snapshot(ref: str, *, weights: bool = True) -> Path:
    """Download ``ORG/NAME[@REV]`` through huggingface_hub's cache; return a model folder.

    ``weights=False`` fetches only the files that describe the model (its configs and
    card), for ``zoo info``.

    Lists the repo's files at REV (one API call, which also pins the commit), works out
    its layout (:mod:`zoo.loading.native`: zoo's ``zoo.json``, today's zoo
    ``config.json``, transformers' or timm's) and fetches, at that commit, only the files
    that layout needs: never code (``*.py``), never another framework's weights. Files that
    zoo.json or a zoo config.json lists with a sha256 are checked. With
    ``HF_HUB_OFFLINE=1`` only the cache is read.

    Raises:
        WeightsError: not reachable and not cached, no such repo or revision, a layout
            zoo does not read (saying what was found), or a file that does not match its
            hash; one line.
    """
    from zoo.loading import native
    from zoo.loading.sources import hf_offline, hub_file

    repo, rev = parse_ref(ref)
    what = f"hf-hub:{ref}"
    if hf_offline():
        snap = _cached_snapshot(repo, rev, what)
        files, commit = native.files_in(snap), snap.name
    else:
        files, commit = _listing(repo, rev, what)

    def fetch(names: list[str], at: str | None = None, pinned: bool = True) -> Path:
        """Fetch each file at the commit; return the snapshot folder they land in."""
        snap = None
        for name in names:
            path = hub_file(repo, [name], commit if pinned else at, what=what)
            snap = path.parents[len(Path(name).parts) - 1]
        return snap

    present = set(files)
    first = native.ZOO_FILE if native.ZOO_FILE in present else native.CONFIG_FILE
    if first not in present:
        raise native.unknown_layout(what, None, files)
    # the first file at the revision the user named, so that the cache records where
    # that revision points (offline use finds the snapshot through it)
    snap = fetch([first], at=rev, pinned=False)
    if snap.name != commit:          # the branch moved since the listing: list again
        files, commit = _listing(repo, snap.name, what)
        present = set(files)
    config = native.read_json(snap / first, first)
    layout = ("zoo" if isinstance(config, dict) else None) if first == native.ZOO_FILE \
        else native.layout_of(config)
    if layout is None:
        raise native.unknown_layout(what, config, files)
    readme = [native.README] if native.README in present else []
    if not weights:
        extra = ["preprocessor_config.json"] if layout == "transformers" \
            and "preprocessor_config.json" in present else []
        return fetch(readme + extra) if readme or extra else snap
    if layout in ("zoo", "zoo-legacy"):
        weights_file = config.get("weights") or "model.safetensors"
        assets = config.get("assets") or {}
        if not isinstance(weights_file, str) or not isinstance(assets, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in assets.items()):
            raise WeightsError(f"{what}: its config's 'weights' must be a file name and "
                               "'assets' a table of file names to sha256 strings; the repo is "
                               "damaged, publish it again")
        wanted = [weights_file, *assets, *readme]
        missing = [f for f in wanted if f not in present]
        if missing:
            raise WeightsError(f"{what}: its config names {missing[0]}, which the repo does "
                               "not have; the repo is damaged, publish it again")
        snap = fetch(wanted)
        _check_assets(snap, assets, what)
        return snap
    wanted = list(readme)
    if layout == "transformers":
        wanted += [f for f in native.TRANSFORMERS_FILES if f in present]
        wanted += _weight_files(present, repo, commit, what)
    else:
        found = next((f for f in native.WEIGHT_FILES if f in present), None)
        wanted += [found] if found else []
    return fetch(wanted) if wanted else snap


def _check_assets(snap: Path, assets: dict, what: str) -> None:
    from zoo.loading.weights import sha256_of

    for rel, sha in assets.items():
        p = snap / rel
        if sha and sha256_of(p) != sha:
            raise WeightsError(f"{what}: {rel} does not match the sha256 in its config "
                               f"({p}); delete it from the cache and download again")


def _weight_files(present: set[str], repo: str, commit: str, what: str) -> list[str]:
    """The weight files of a transformers repo: one file, or an index and its shards."""
    from zoo.loading import native
    from zoo.loading.sources import hub_file

    for single in native.WEIGHT_FILES:
        if single in present:
            return [single]
    for index in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if index in present:
            path = hub_file(repo, [index], commit, what=what)
            data = native.read_json(path, index)
            shards = sorted(set((data.get("weight_map") or {}).values())) \
                if isinstance(data, dict) else []
            bad = [s for s in shards if not isinstance(s, str) or s not in present]
            if bad or not shards:
                raise WeightsError(f"{what}: {index} names shards the repo does not have "
                                   f"({bad[0] if bad else 'none'})")
            return [index, *shards]
    return []


def _listing(repo: str, rev: str | None, what: str) -> tuple[list[str], str]:
    """The repo's files and commit at ``rev`` (one ``model_info`` call)."""
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    from zoo.loading.download import one_line

    try:
        with quiet_hub_logs():
            info = client(get_token()).model_info(repo, revision=rev)
    except RepositoryNotFoundError:
        raise WeightsError(f"{what}: the Hub has no repo '{repo}' (or it is private or "
                           "gated); check the name, or log in with 'hf auth login'") from None
    except RevisionNotFoundError:
        raise WeightsError(f"{what}: repo '{repo}' has no revision '{rev}'; check the "
                           "@revision") from None
    except Exception as e:  # noqa: BLE001 - httpx/OS errors: all mean "could not list"
        raise WeightsError(f"{what}: could not reach the Hub ({endpoint()}) to list {repo}"
                           f"@{rev or 'main'} ({one_line(e)}); check your network or "
                           "HF_ENDPOINT, or work offline with HF_HUB_OFFLINE=1 and a cache "
                           "that holds it") from None
    files = sorted(s.rfilename for s in (info.siblings or []))
    return files, str(info.sha)


def _cached_snapshot(repo: str, rev: str | None, what: str) -> Path:
    """The cached snapshot folder of ``repo@rev`` (offline), found through a file in it."""
    from zoo.loading.sources import hub_file

    path = hub_file(repo, ["zoo.json", "config.json"], rev, what=what)
    return path.parent
