"""Fetch a file over HTTPS into a cache: streamed to a temp file, hashed, renamed into place.

Only ``https://`` is fetched, plus ``http://`` to the loopback interface (test servers); a
redirect may not leave those. Nothing is fetched when ``ZOO_OFFLINE=1``: the caller gets
one line naming the URL, the cache path where the file would be found, and how to put it
there. A network failure is one line too, never a traceback. A file lands in the cache
only once it is complete and its hash checked, so an interrupted download leaves nothing
a later run could mistake for the real file.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import os
import re
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from zoo.errors import WeightsError

OFFLINE_ENV = "ZOO_OFFLINE"
TIMEOUT = 30.0                      # seconds without data before a download is abandoned
_TRUE = {"1", "true", "yes", "on"}
# torch.hub and torchvision name files "<stem>-<first hex digits of the sha256>.<ext>"
HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,64})\.")


def offline() -> bool:
    """True when ``ZOO_OFFLINE`` is set to 1/true/yes/on: zoo never touches the network."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE


def file_name(url: str) -> str:
    """The last path component of ``url`` (what the cached file is called)."""
    name = Path(urllib.parse.urlparse(url).path).name
    return name or "download"


def check_url(url: str) -> None:
    """Refuse anything but ``https://`` and loopback ``http://`` (one-line WeightsError)."""
    u = urllib.parse.urlparse(url)
    if u.scheme == "https" and u.hostname:
        return
    if u.scheme == "http" and _is_loopback(u.hostname):
        return
    raise WeightsError(f"{url}: only https:// URLs are fetched (http:// only from 127.0.0.1 "
                       "or localhost); fix the source in the catalog")


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def offline_error(what: str, dest: Path, url: str | None = None) -> WeightsError:
    """The one-line error for a file that is not cached while offline."""
    named = f"{what} ({url})" if url and url not in what else what
    return WeightsError(f"{named}: not in the cache and {OFFLINE_ENV}=1 forbids the network; "
                        f"place the file at {dest}, or unset {OFFLINE_ENV} to download it")


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects only to URLs that :func:`check_url` accepts (no https->http)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        check_url(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def download(url: str, dest: str | os.PathLike[str], *, sha256: str | None = None,
             sha256_prefix: str | None = None, what: str | None = None) -> Path:
    """Download ``url`` to ``dest`` atomically; return ``dest``.

    The body is streamed into a temp file next to ``dest`` while being hashed. The file is
    renamed into place only if it is complete (Content-Length) and its sha256 equals
    ``sha256`` (or starts with ``sha256_prefix``, torch.hub's file-name convention).

    Raises:
        WeightsError: offline, refused URL, network or HTTP failure, short body or wrong
            hash; one line naming ``what`` (default: the URL) and what to do.
    """
    what = what or url
    dest = Path(dest)
    check_url(url)
    if offline():
        raise offline_error(what, dest, url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    handlers: list = [_SafeRedirects()]
    if _is_loopback(urllib.parse.urlparse(url).hostname):
        handlers.append(urllib.request.ProxyHandler({}))  # a proxy cannot reach our loopback
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(url, headers={"User-Agent": "zoo-weights"})
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    h = hashlib.sha256()
    size = 0
    try:
        try:
            with os.fdopen(fd, "wb") as out, opener.open(req, timeout=TIMEOUT) as resp:
                expected = resp.headers.get("Content-Length")
                for chunk in iter(lambda: resp.read(1 << 20), b""):
                    out.write(chunk)
                    h.update(chunk)
                    size += len(chunk)
        except urllib.error.HTTPError as e:
            raise WeightsError(f"{what}: download failed (HTTP {e.code} {e.reason}); check the "
                               f"URL, or place the file at {dest} and set {OFFLINE_ENV}=1"
                               ) from None
        except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", None) or e
            raise WeightsError(f"{what}: download failed ({one_line(reason)}); check your "
                               f"network, or work offline: place the file at {dest} and set "
                               f"{OFFLINE_ENV}=1") from None
        if expected is not None and expected.isdigit() and int(expected) != size:
            raise WeightsError(f"{what}: download stopped after {size} of {expected} bytes; "
                               "try again")
        got = h.hexdigest()
        if sha256 and got != sha256.lower():
            raise WeightsError(f"{what}: downloaded file has sha256 {got[:16]}..., expected "
                               f"{sha256.lower()[:16]}...; the server holds other weights than "
                               "the catalog says. Fix the sha256 or the URL")
        if sha256_prefix and not got.startswith(sha256_prefix.lower()):
            raise WeightsError(f"{what}: downloaded file has sha256 {got[:16]}..., but its name "
                               f"promises {sha256_prefix}...; the download is corrupt, try again")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def cached_download(url: str, dest: str | os.PathLike[str], *, sha256: str | None = None,
                    sha256_prefix: str | None = None, what: str | None = None) -> Path:
    """``dest`` if it already exists (no network), else :func:`download` it there.

    The cached file's hash is not checked here: the caller reads it with
    :func:`zoo.loading.weights.read_state_dict`, which checks ``sha256`` on every load.
    """
    dest = Path(dest)
    if dest.is_file():
        return dest
    return download(url, dest, sha256=sha256, sha256_prefix=sha256_prefix, what=what)


def one_line(e: object) -> str:
    """``Type: first line of the message`` (at most 200 characters), for error messages."""
    text = str(e).strip()
    name = type(e).__name__ if isinstance(e, BaseException) else ""
    first = text.splitlines()[0][:200] if text else ""
    return f"{name}: {first}" if name and first else (first or name)
