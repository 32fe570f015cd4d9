"""Guards around huggingface_hub downloads: no answer of the server's choosing becomes a path.

huggingface_hub 2.4 and 2.5 (the newest, checked 2026-12-07) name a cached blob after the
server's ``ETag`` (``blobs/<etag>``) without checking it, and a snapshot folder after
``X-Repo-Commit`` (kept inside ``snapshots/``, not checked to be a commit hash): an
endpoint answering ``ETag: "../../../x"`` makes it write a file outside its cache. zoo
fixes that at two points:

* before anything is written: a response hook on huggingface_hub's own HTTP client
  (:func:`huggingface_hub.get_session`, public API) refuses any ``/resolve/`` answer whose
  ``ETag``/``X-Linked-Etag`` is not a plain name or whose ``X-Repo-Commit`` is not a commit
  hash, so the download stops before the blob path is built;
* after each download: :func:`check_in_cache` resolves the returned file (links followed)
  and refuses one that does not lie in the repo's cache folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from zoo.errors import WeightsError

# What a Hub ETag looks like: a git blob sha1 or an LFS sha256, sometimes with a suffix
# ("-gzip"). Any name without a separator or ".." is accepted; nothing else.
_SAFE_ETAG = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


class UnsafeHubAnswer(WeightsError):
    """The Hub endpoint answered with a header that would place a file outside the cache."""


def _normalized_etag(raw: str) -> str:
    return raw.lstrip("W/").strip('"')      # as huggingface_hub.file_download does


def check_headers(url: str, headers: Any) -> None:
    """Refuse a ``/resolve/`` answer whose ETag or commit could become a path (one line)."""
    if "/resolve/" not in url:
        return
    for name in ("X-Linked-Etag", "ETag"):
        raw = headers.get(name)
        if raw is None:
            continue
        etag = _normalized_etag(raw)
        if not _SAFE_ETAG.match(etag) or ".." in etag:
            raise UnsafeHubAnswer(
                f"{_strip_query(url)}: the Hub endpoint sent {name} {_show(raw)}, which "
                "huggingface_hub would use as a file name outside its cache; refused "
                "before anything was written (check HF_ENDPOINT: this is not the real Hub)")
        break                                # huggingface_hub prefers X-Linked-Etag
    commit = headers.get("X-Repo-Commit")
    if commit is not None and not _COMMIT.match(commit):
        raise UnsafeHubAnswer(
            f"{_strip_query(url)}: the Hub endpoint sent X-Repo-Commit {_show(commit)}, which "
            "is not a commit hash; refused before anything was written (check HF_ENDPOINT)")


def _strip_query(url: str) -> str:
    return url.split("?", 1)[0][:200]


def _show(value: str) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _response_hook(response: Any) -> None:
    check_headers(str(response.request.url), response.headers)


def guard_session() -> None:
    """Add the header check to huggingface_hub's shared HTTP client (once per client).

    Called before each zoo download or upload: a client that huggingface_hub (or the user,
    with ``set_client_factory``) made since then gets the hook too.
    """
    try:
        from huggingface_hub import get_session
    except ImportError:
        return
    client = get_session()
    hooks = client.event_hooks
    if _response_hook not in hooks.get("response", []):
        client.event_hooks = {**hooks, "response": [*hooks.get("response", []),
                                                    _response_hook]}


def check_in_cache(path: str | Path, cache: Path, repo: str, what: str) -> Path:
    """``path`` as returned by huggingface_hub, refused unless it resolves (links
    followed) inside ``repo``'s folder of the cache ``cache``."""
    storage = cache / ("models--" + repo.replace("/", "--"))
    p = Path(path)
    try:
        real, top = p.resolve(), storage.resolve()
    except (OSError, RuntimeError) as e:
        raise UnsafeHubAnswer(f"{what}: {p} cannot be resolved ({e}); delete {storage} and "
                              "download again") from None
    if top not in real.parents:
        raise UnsafeHubAnswer(f"{what}: huggingface_hub returned {p}, which leads to {real}, "
                              f"outside the repo's cache folder {storage}; refused (delete that "
                              "folder and check HF_ENDPOINT)")
    return p
