"""A stand-in Hugging Face Hub (and plain file server) on 127.0.0.1, for tests.

``HubServer(root)`` serves a directory over real HTTP from a thread:

* ``root/ORG/REPO/...`` is model repo ``ORG/REPO`` at revision ``main``; its commit hash
  is a sha1 of the file names and contents, so it changes when a file does. Routes that
  huggingface_hub 2.4 uses to read are implemented: ``HEAD``/``GET
  /ORG/REPO/resolve/REV/FILE`` (with ``X-Repo-Commit``, ``ETag`` and ``Range``),
  ``GET /api/models/ORG/REPO[/revision/REV]`` and
  ``GET /api/models/ORG/REPO/tree/REV[/PATH]``. Missing repos, revisions and files answer
  404 with the ``X-Error-Code`` huggingface_hub maps to its exceptions.
* any other ``GET``/``HEAD /PATH`` serves ``root/PATH`` as a plain file (for ``https:``-style
  URL tests).
* with ``certfile``/``keyfile`` it speaks https; :func:`self_signed_cert` makes a pair with
  the openssl command, and ``SSL_CERT_FILE=cert`` makes Python clients trust it.

The write side (create_repo, preupload, commit, branches, whoami, Spaces) is
``hub_api.WritableHub``, a subclass: it overrides :meth:`HubServer.snapshot`, which maps
``(repo, revision, repo type)`` to a folder and commit hash for the read routes above
(which also answer under ``/api/spaces/...`` and ``/spaces/ORG/REPO/resolve/...``).

Extending it: ``server.add_route("POST", r"^/api/repos/create$", fn)``
where ``fn(server, request)`` returns ``(status, headers, body)``; routes added later win.
``server.fail(503, times=1, path=r"resolve")`` makes the next matching request(s) fail.
Every request is logged in ``server.requests`` as ``(method, path)``.

huggingface_hub reads ``HF_ENDPOINT`` when it is imported: pass ``endpoint=server.url``
explicitly, or run the client in a subprocess with ``HF_ENDPOINT`` set.

Example::

    with HubServer(tmp_path) as hub:
        hf_hub_download("org/repo", "model.safetensors", endpoint=hub.url, cache_dir=...)
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
import subprocess
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

Response = tuple[int, dict[str, str], bytes]


@dataclass
class Request:
    """One request as route handlers see it."""

    method: str
    path: str                               # URL path, percent-decoded
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    match: re.Match | None = None           # the route pattern's match
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Failure:
    status: int
    times: int
    method: str | None
    path: re.Pattern | None
    message: str


class HubServer:
    """A threaded HTTP server on 127.0.0.1 serving ``root`` as Hub repos and plain files."""

    def __init__(self, root: str | Path, *, host: str = "127.0.0.1", port: int = 0,
                 certfile: str | Path | None = None, keyfile: str | Path | None = None):
        self.root = Path(root)
        self.host, self.port = host, port
        self.certfile, self.keyfile = certfile, keyfile   # both given: serve https
        self.requests: list[tuple[str, str]] = []
        self._routes: list[tuple[str, re.Pattern, Callable[[HubServer, Request], Response]]] = []
        self._failures: list[_Failure] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        repo = r"(?P<repo>[^/]+/[^/]+)"
        kind = r"(?P<type>model|space|dataset)s"
        self.add_route("GET", rf"^/api/{kind}/{repo}(?:/revision/(?P<rev>[^/]+))?$",
                       HubServer._model_info)
        self.add_route("GET", rf"^/api/{kind}/{repo}/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?$",
                       HubServer._tree)
        resolve = rf"^/(?:(?P<type>space|dataset)s/)?{repo}/resolve/(?P<rev>[^/]+)/(?P<file>.+)$"
        self.add_route("GET", resolve, HubServer._resolve)
        self.add_route("HEAD", resolve, HubServer._resolve)

    # -- life cycle --------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:41234`` (no trailing slash)."""
        if self._httpd is None:
            raise RuntimeError("server not started")
        scheme = "https" if self.certfile else "http"
        return f"{scheme}://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> HubServer:
        server = self

        class Handler(_Handler):
            hub = server

        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        if self.certfile:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(self.certfile), str(self.keyfile) if self.keyfile else None)
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- extension points --------------------------------------------------------------

    def add_route(self, method: str, pattern: str,
                  handler: Callable[[HubServer, Request], Response]) -> None:
        """Answer ``method`` requests whose path matches ``pattern`` with ``handler``."""
        self._routes.insert(0, (method.upper(), re.compile(pattern), handler))

    def fail(self, status: int, *, times: int = 1, method: str | None = None,
             path: str | None = None, message: str = "injected failure") -> None:
        """Answer the next ``times`` matching requests with ``status`` instead."""
        with self._lock:
            self._failures.append(_Failure(status, times, method and method.upper(),
                                           re.compile(path) if path else None, message))

    # -- repos -------------------------------------------------------------------------

    def repo_dir(self, repo: str) -> Path:
        return self.root / repo

    def repo_files(self, repo: str) -> list[str]:
        d = self.repo_dir(repo)
        return sorted(p.relative_to(d).as_posix() for p in d.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

    def commit_of(self, repo: str) -> str:
        """The repo's commit hash: sha1 over its file names and contents."""
        h = hashlib.sha1()
        for rel in self.repo_files(repo):
            h.update(rel.encode() + b"\0" + _sha256(self.repo_dir(repo) / rel).encode())
        return h.hexdigest()

    def _check_repo(self, repo: str, rev: str | None) -> Response | str:
        if not self.repo_dir(repo).is_dir():
            return _error(404, "RepoNotFound", f"Repository {repo} not found")
        commit = self.commit_of(repo)
        if rev not in (None, "main", commit):
            return _error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return commit

    def snapshot(self, req: Request, repo: str, rev: str | None,
                 repo_type: str = "model") -> Response | tuple[Path, str]:
        """``(folder holding the files, commit hash)`` of ``repo`` at ``rev``, or an error.

        Here a repo is the folder ``root/ORG/REPO`` at revision ``main`` (models only);
        subclasses (tests/hub_api.py) serve repos that clients wrote, with branches.
        """
        if repo_type != "model":
            return _error(404, "RepoNotFound", f"Repository {repo} not found")
        commit = self._check_repo(repo, rev)
        if not isinstance(commit, str):
            return commit
        return self.repo_dir(repo), commit

    @staticmethod
    def _files_in(d: Path) -> list[str]:
        return sorted(p.relative_to(d).as_posix() for p in d.rglob("*")
                      if p.is_file() and not p.name.startswith("."))

    def _located(self, req: Request) -> Response | tuple[Path, str]:
        rev = req.match["rev"]
        return self.snapshot(req, req.match["repo"], rev and urllib.parse.unquote(rev),
                             req.match["type"] or "model")

    def _model_info(self, req: Request) -> Response:
        found = self._located(req)
        if is_response(found):
            return found
        d, commit = found
        repo = req.match["repo"]
        siblings = [{"rfilename": f} for f in self._files_in(d)]
        info = {"_id": repo, "id": repo, "modelId": repo, "sha": commit, "private": False,
                "disabled": False, "gated": False, "tags": [], "siblings": siblings}
        return _json(info)

    def _tree(self, req: Request) -> Response:
        found = self._located(req)
        if is_response(found):
            return found
        d, _commit = found
        sub = req.match["sub"] or ""
        out = []
        for rel in self._files_in(d):
            if sub and not rel.startswith(sub.rstrip("/") + "/"):
                continue
            p = d / rel
            data = p.read_bytes()
            out.append({"type": "file", "oid": _git_sha1(data), "size": len(data), "path": rel,
                        "lfs": {"oid": _sha256(p), "size": len(data), "pointerSize": 134}})
        return _json(out)

    def _resolve(self, req: Request) -> Response:
        found = self._located(req)
        if is_response(found):
            return found
        d, commit = found
        rel, rev = req.match["file"], req.match["rev"]
        p = d / rel
        if not p.is_file():
            return _error(404, "EntryNotFound", f"{rel} does not exist on {rev}")
        status, headers, body = _file_response(p, req)
        headers.update({"X-Repo-Commit": commit, "ETag": f'"{_sha256(p)}"'})
        return status, headers, body

    def _static(self, req: Request) -> Response:
        p = (self.root / req.path.lstrip("/")).resolve()
        if not p.is_file() or self.root.resolve() not in p.parents:
            return 404, {"Content-Type": "text/plain"}, b"not found\n"
        return _file_response(p, req)

    # -- dispatch ----------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        with self._lock:
            self.requests.append((req.method, req.path))
            for f in self._failures:
                if f.times > 0 and (f.method in (None, req.method)) \
                        and (f.path is None or f.path.search(req.path)):
                    f.times -= 1
                    return _error(f.status, None, f.message)
        for method, pattern, handler in self._routes:
            if method == req.method:
                m = pattern.match(req.path)
                if m:
                    req.match = m
                    return handler(self, req)
        if req.method in ("GET", "HEAD"):
            return self._static(req)
        return 405, {"Content-Type": "text/plain"}, b"method not allowed\n"


def is_response(x: Any) -> bool:
    """True for a ``(status, headers, body)`` answer (route helpers return it on errors)."""
    return isinstance(x, tuple) and len(x) == 3 and isinstance(x[0], int)


def self_signed_cert(directory: str | Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """Make a throwaway certificate for ``host`` with the openssl command: (cert, key).

    Trust it in a client with ``SSL_CERT_FILE=cert`` (Python's default context reads it).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", f"/CN={host}", "-addext",
                    f"subjectAltName=IP:{host},DNS:localhost"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = Request(self.command, urllib.parse.unquote(url.path),
                      urllib.parse.parse_qs(url.query), dict(self.headers.items()), body)
        try:
            status, headers, payload = self.hub.handle(req)
        except Exception as e:  # noqa: BLE001 - a test server reports, never dies
            status, headers, payload = _error(500, None, f"{type(e).__name__}: {e}")
        self.send_response(status)
        headers.setdefault("Content-Length", str(len(payload)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass


def _file_response(p: Path, req: Request) -> Response:
    data = p.read_bytes()
    headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
    m = re.fullmatch(r"bytes=(\d+)-(\d*)", req.headers.get("Range", "") or "")
    if m:
        start = int(m[1])
        end = int(m[2]) if m[2] else len(data) - 1
        headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        return 206, headers, data[start:end + 1]
    if req.method == "HEAD":
        headers["Content-Length"] = str(len(data))
        return 200, headers, b""
    return 200, headers, data


def _json(obj: Any) -> Response:
    return 200, {"Content-Type": "application/json"}, json.dumps(obj).encode()


def _error(status: int, code: str | None, message: str) -> Response:
    headers = {"Content-Type": "application/json",
               "X-Error-Message": message.encode("ascii", "replace").decode().splitlines()[0]}
    if code:
        headers["X-Error-Code"] = code
    return status, headers, json.dumps({"error": message}).encode()


def _sha256(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
