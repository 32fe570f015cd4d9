"""The write side of the stand-in Hub: repos, branches and commits that huggingface_hub makes.

:class:`WritableHub` extends :class:`hubserver.HubServer` (which serves downloads) with the
endpoints huggingface_hub 2.4 calls to publish, each answering as the real Hub does for
what the client reads:

==========================================================  ===================================
``GET  /api/whoami-v2``                                     whoami (401 on a missing/bad token)
``POST /api/repos/create``                                  create_repo, models and spaces
                                                            (409 + ``url`` when it exists, 403
                                                            outside the user's namespaces)
``POST /api/validate-yaml``                                 README front-matter check
``POST /api/{type}s/ORG/NAME/preupload/REV``                upload mode per file (always
                                                            ``regular``) and the ``oid`` (git
                                                            blob sha1) of the file already there
``POST /api/{type}s/ORG/NAME/commit/REV``                   NDJSON commit: ``header``, ``file``
                                                            (base64), ``deletedFile``
``POST /api/{type}s/ORG/NAME/branch/BRANCH``                create_branch (409 if it exists)
``DELETE /api/repos/delete``                                delete_repo (404 if missing)
``GET  /api/{type}s/ORG/NAME[/revision/REV]``, ``/tree``,   read back, from hubserver.HubServer,
``HEAD/GET [/spaces]/ORG/NAME/resolve/REV/FILE``            at any branch or commit
==========================================================  ===================================

Not implemented: LFS/Xet uploads (preupload says ``regular`` for every file, so the client
sends contents inside the commit), pull requests, refs listing.

Native repos (the layouts transformers and timm write) are served under their real ids:
``hub.add_folder("timm/resnet18.a1_in1k", folder)`` commits a local folder (made with
the library's own ``save_pretrained`` / ``save_for_hf``) as that repo's main branch.

Users and tokens: ``WritableHub(root, tokens={"hf_abc": "alice"}, orgs={"alice": ["team"]})``;
a user may write to their own name and their orgs. ``hub.add_repo("other/taken", owner=...)``
makes a repo someone else owns. ``hub.commits("org/name")`` lists a branch's commits, oldest
first; ``hub.files("org/name")`` gives ``{path: bytes}`` at a branch.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from hubserver import HubServer, Request, Response, _error, _git_sha1, _json, is_response

GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
TOKEN = "hf_zooTestSecretToken0123456789abcdef"


@dataclass
class Commit:
    oid: str
    parent: str | None
    message: str
    files: dict[str, str]                   # path -> git blob sha1


@dataclass
class Repo:
    repo_id: str
    repo_type: str
    owner: str
    private: bool = False
    sdk: str | None = None
    branches: dict[str, str] = field(default_factory=dict)   # name -> commit oid
    commits: dict[str, Commit] = field(default_factory=dict)


class WritableHub(HubServer):
    """A stand-in Hub that huggingface_hub can create repos in and commit to."""

    def __init__(self, root: str | Path, *, tokens: dict[str, str] | None = None,
                 orgs: dict[str, list[str]] | None = None, **kwargs):
        super().__init__(root, **kwargs)
        self.tokens = dict(tokens or {})
        self.orgs = {k: list(v) for k, v in (orgs or {}).items()}
        self.repos: dict[tuple[str, str], Repo] = {}
        self._write_lock = threading.Lock()
        self._blobs = self.root / ".blobs"
        self._trees = self.root / ".trees"
        kind = r"(?P<type>model|space|dataset)s"
        repo = r"(?P<repo>[^/]+/[^/]+)"
        self.add_route("GET", r"^/api/whoami-v2$", WritableHub._whoami)
        self.add_route("POST", r"^/api/repos/create$", WritableHub._create)
        self.add_route("POST", r"^/api/validate-yaml$", WritableHub._validate_yaml)
        self.add_route("POST", rf"^/api/{kind}/{repo}/preupload/(?P<rev>[^/]+)$",
                       WritableHub._preupload)
        self.add_route("POST", rf"^/api/{kind}/{repo}/commit/(?P<rev>[^/]+)$",
                       WritableHub._commit)
        self.add_route("POST", rf"^/api/{kind}/{repo}/branch/(?P<branch>[^/]+)$",
                       WritableHub._branch)
        self.add_route("DELETE", r"^/api/repos/delete$", WritableHub._delete)

    # -- test helpers ------------------------------------------------------------------

    def add_repo(self, repo_id: str, *, owner: str, repo_type: str = "model",
                 private: bool = False) -> Repo:
        """Create a repo directly (e.g. one that another user owns)."""
        with self._write_lock:
            return self._new_repo(repo_id, repo_type, owner, private, None)

    def add_folder(self, repo_id: str, folder: str | Path, *, owner: str | None = None,
                   message: str = "Upload folder") -> Repo:
        """Make ``repo_id`` (created if missing) hold exactly ``folder``'s files on main."""
        folder = Path(folder)
        changes: dict[str, bytes | None] = {
            p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}
        with self._write_lock:
            r = self.repos.get(("model", repo_id)) or self._new_repo(
                repo_id, "model", owner or repo_id.split("/")[0], False, None)
            self._store_commit(r, "main", r.branches["main"], message, changes)
        return r

    def commits(self, repo_id: str, branch: str = "main", repo_type: str = "model") -> list[Commit]:
        """The commits reachable from ``branch``, oldest first."""
        r = self.repos[(repo_type, repo_id)]
        out, oid = [], r.branches.get(branch)
        while oid:
            out.append(r.commits[oid])
            oid = r.commits[oid].parent
        return out[::-1]

    def files(self, repo_id: str, revision: str = "main",
              repo_type: str = "model") -> dict[str, bytes]:
        """``{path: content}`` of the repo at a branch or commit."""
        r = self.repos[(repo_type, repo_id)]
        c = r.commits[r.branches.get(revision, revision)]
        return {p: (self._blobs / sha).read_bytes() for p, sha in c.files.items()}

    # -- auth --------------------------------------------------------------------------

    def _user(self, req: Request) -> str | None:
        auth = req.headers.get("Authorization") or req.headers.get("authorization") or ""
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
        return self.tokens.get(token) if token else None

    def _may_write(self, user: str, namespace: str) -> bool:
        return namespace == user or namespace in self.orgs.get(user, [])

    def _auth(self, req: Request, repo: Repo | None, namespace: str) -> Response | str:
        user = self._user(req)
        if user is None:
            return _error(401, None, "Invalid credentials in Authorization header")
        if repo is not None and repo.private and not self._may_write(user, repo.owner) \
                and repo.owner != user:
            return _error(404, "RepoNotFound", f"Repository {repo.repo_id} not found")
        if not self._may_write(user, namespace) or (repo is not None and not (
                repo.owner == user or self._may_write(user, repo.owner))):
            return _error(403, None, f"You don't have the rights to write to {namespace}")
        return user

    # -- store -------------------------------------------------------------------------

    def _new_repo(self, repo_id: str, repo_type: str, owner: str, private: bool,
                  sdk: str | None) -> Repo:
        r = Repo(repo_id, repo_type, owner, private, sdk)
        self.repos[(repo_type, repo_id)] = r
        # the real Hub starts every repo with a commit holding .gitattributes
        self._store_commit(r, "main", None, "initial commit", {".gitattributes": GITATTRIBUTES})
        return r

    def _store_commit(self, r: Repo, branch: str, parent: str | None, message: str,
                      changes: dict[str, bytes | None]) -> Commit:
        files = dict(r.commits[parent].files) if parent else {}
        for path, data in changes.items():
            if data is None:
                files.pop(path, None)
                continue
            sha = _git_sha1(data)
            self._blobs.mkdir(parents=True, exist_ok=True)
            (self._blobs / sha).write_bytes(data)
            files[path] = sha
        h = hashlib.sha1(f"{parent}\n{message}\n".encode())
        h.update(json.dumps(sorted(files.items())).encode())
        h.update(str(len(r.commits)).encode())
        c = Commit(h.hexdigest(), parent, message, files)
        r.commits[c.oid] = c
        r.branches[branch] = c.oid
        tree = self._trees / c.oid
        for path, sha in files.items():
            (tree / path).parent.mkdir(parents=True, exist_ok=True)
            (tree / path).write_bytes((self._blobs / sha).read_bytes())
        tree.mkdir(parents=True, exist_ok=True)
        return c

    def snapshot(self, req: Request, repo: str, rev: str | None,
                 repo_type: str = "model") -> Response | tuple[Path, str]:
        r = self.repos.get((repo_type, repo))
        if r is None:
            return super().snapshot(req, repo, rev, repo_type)
        if r.private:
            user = self._user(req)
            if user is None or not (user == r.owner or self._may_write(user, r.owner)):
                return _error(404, "RepoNotFound", f"Repository {repo} not found")
        oid = r.branches.get(rev or "main", rev if rev in r.commits else None)
        if oid is None:
            return _error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return self._trees / oid, oid

    # -- routes ------------------------------------------------------------------------

    def _whoami(self, req: Request) -> Response:
        user = self._user(req)
        if user is None:
            return _error(401, None, "Invalid credentials in Authorization header")
        return _json({"type": "user", "name": user, "fullname": user,
                      "orgs": [{"name": o, "type": "org"} for o in self.orgs.get(user, [])],
                      "auth": {"type": "access_token",
                               "accessToken": {"displayName": "test", "role": "write"}}})

    def _create(self, req: Request) -> Response:
        body = json.loads(req.body or b"{}")
        namespace = body.get("organization") or self._user(req) or ""
        repo_id = f"{namespace}/{body['name']}"
        repo_type = body.get("type") or "model"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        with self._write_lock:
            existing = self.repos.get((repo_type, repo_id))
            who = self._auth(req, None, namespace)
            if not isinstance(who, str):
                return who
            if existing is not None:
                status, headers, payload = _error(409, None, "You already created this repo")
                payload = json.dumps({"error": "You already created this repo",
                                      "url": f"{self.url}/{prefix}{repo_id}"}).encode()
                return status, headers, payload
            if repo_type == "space" and body.get("sdk") not in ("gradio", "docker", "static"):
                return _error(400, None, "A Space needs an sdk")
            private = body.get("private") or body.get("visibility") == "private"
            self._new_repo(repo_id, repo_type, namespace, bool(private), body.get("sdk"))
        return _json({"url": f"{self.url}/{prefix}{repo_id}", "name": repo_id})

    def _validate_yaml(self, req: Request) -> Response:
        content = json.loads(req.body or b"{}").get("content", "")
        if content.startswith("---\n") and "\n---\n" not in content[3:]:
            return 400, {"Content-Type": "application/json"}, json.dumps(
                {"errors": [{"message": "unterminated YAML front matter"}]}).encode()
        return _json({"errors": [], "warnings": []})

    def _writable(self, req: Request) -> Response | tuple[Repo, str]:
        repo_id, repo_type = req.match["repo"], req.match["type"]
        rev = urllib.parse.unquote(req.match["rev"])
        r = self.repos.get((repo_type, repo_id))
        who = self._auth(req, r, repo_id.split("/")[0])
        if not isinstance(who, str):
            return who
        if r is None:
            return _error(404, "RepoNotFound", f"Repository {repo_id} not found")
        if rev not in r.branches:
            return _error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return r, rev

    def _preupload(self, req: Request) -> Response:
        found = self._writable(req)
        if is_response(found):
            return found
        r, rev = found
        have = r.commits[r.branches[rev]].files
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                  "oid": have.get(f["path"])} for f in json.loads(req.body)["files"]]
        return _json({"files": files, "commitOid": r.branches[rev]})

    def _commit(self, req: Request) -> Response:
        with self._write_lock:
            found = self._writable(req)
            if is_response(found):
                return found
            r, rev = found
            header: dict = {}
            changes: dict[str, bytes | None] = {}
            for line in req.body.splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    header = value
                elif key == "file":
                    changes[value["path"]] = base64.b64decode(value["content"])
                elif key == "deletedFile":
                    changes[value["path"]] = None
                else:
                    return _error(400, None, f"the stand-in Hub does not take '{key}' entries")
            parent = r.branches[rev]
            if header.get("parentCommit") not in (None, parent):
                return _error(412, None, "A commit has happened since; pull and retry")
            c = self._store_commit(r, rev, parent, header.get("summary", ""), changes)
        prefix = "" if r.repo_type == "model" else f"{r.repo_type}s/"
        return _json({"success": True, "commitOid": c.oid,
                      "commitUrl": f"{self.url}/{prefix}{r.repo_id}/commit/{c.oid}",
                      "hookOutput": ""})

    def _delete(self, req: Request) -> Response:
        body = json.loads(req.body or b"{}")
        namespace = body.get("organization") or self._user(req) or ""
        repo_id, repo_type = f"{namespace}/{body.get('name')}", body.get("type") or "model"
        with self._write_lock:
            r = self.repos.get((repo_type, repo_id))
            who = self._auth(req, r, namespace)
            if not isinstance(who, str):
                return who
            if r is None:
                return _error(404, "RepoNotFound", f"Repository {repo_id} not found")
            del self.repos[(repo_type, repo_id)]
        return _json({})

    def _branch(self, req: Request) -> Response:
        repo_id, repo_type = req.match["repo"], req.match["type"]
        branch = urllib.parse.unquote(req.match["branch"])
        with self._write_lock:
            r = self.repos.get((repo_type, repo_id))
            who = self._auth(req, r, repo_id.split("/")[0])
            if not isinstance(who, str):
                return who
            if r is None:
                return _error(404, "RepoNotFound", f"Repository {repo_id} not found")
            if branch in r.branches:
                return _error(409, None, f"Reference refs/heads/{branch} already exists")
            start = json.loads(req.body or b"{}").get("startingPoint") or "main"
            oid = r.branches.get(start, start if start in r.commits else None)
            if oid is None:
                return _error(404, "RevisionNotFound", f"Invalid rev id: {start}")
            r.branches[branch] = oid
        return _json({})


@contextlib.contextmanager
def serving(tmp_path: Path, monkeypatch, **kwargs) -> Iterator[WritableHub]:
    """A started WritableHub; HF_* variables point at it, at a private cache and a token.

    ``kwargs`` go to :class:`WritableHub` (default: user alice with token
    :data:`TOKEN`, member of org zoo-org).
    """
    kwargs.setdefault("tokens", {TOKEN: "alice"})
    kwargs.setdefault("orgs", {"alice": ["zoo-org"]})
    server = WritableHub(tmp_path / "hub", **kwargs)
    with server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_TOKEN", next(iter(kwargs["tokens"])))
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-home" / "hub"))
        monkeypatch.setenv("ZOO_HOME", str(tmp_path / "zoo-home"))
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        for var in ("HF_HUB_OFFLINE", "ZOO_OFFLINE", "HUGGING_FACE_HUB_TOKEN",
                    "TRANSFORMERS_OFFLINE"):
            monkeypatch.delenv(var, raising=False)
        from zoo.loading.sources import sync_hf_settings

        sync_hf_settings()          # libraries called directly (transformers, timm) follow it
        yield server


def fetched(server: HubServer, repo: str) -> set[str]:
    """The files of ``repo`` that clients downloaded (GET .../resolve/REV/FILE)."""
    prefix = f"/{repo}/resolve/"
    return {p[len(prefix):].split("/", 1)[1] for m, p in server.requests
            if m == "GET" and p.startswith(prefix)}
