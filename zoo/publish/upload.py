"""The write side of the Hub: who the token is, and one commit of a folder.

The read side (endpoint, token, errors, snapshots) is :mod:`zoo.loading.hub`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.errors import UsageError
from zoo.loading.hub import _no_token, client, hub_errors


def whoami(token: str | None) -> str:
    """The user name the token belongs to; UsageError if there is none or it is refused."""
    if not token:
        raise UsageError(_no_token())
    with hub_errors("check the token", repo=None, token=token):
        info = client(token).whoami(token=token)
    return str(info.get("name") or "?")


def upload_folder(folder: Path, repo: str, *, token: str, repo_type: str = "model",
                  revision: str | None = None, private: bool = False,
                  space_sdk: str | None = None, message: str,
                  done: str = "nothing was published") -> dict[str, Any]:
    """Create the repo (and branch) if needed and push ``folder`` in one commit.

    Files the repo already has with the same content are skipped (huggingface_hub compares
    the git blob hashes the server reports); if nothing changed, no commit is made.

    Returns:
        ``{"url", "commit", "changed", "revision"}``.
    """
    from huggingface_hub import CommitOperationAdd

    api = client(token)
    branch = revision or "main"
    with hub_errors("create the repo", repo=repo, token=token, done=done):
        url = str(api.create_repo(repo, repo_type=repo_type, private=private, exist_ok=True,
                                  space_sdk=space_sdk))
    if branch != "main":
        with hub_errors(f"create branch '{branch}'", repo=repo, token=token, done=done):
            api.create_branch(repo, branch=branch, repo_type=repo_type, exist_ok=True)
    with hub_errors("read the repo", repo=repo, token=token, done=done):
        before = api.repo_info(repo, repo_type=repo_type, revision=branch).sha
    ops = [CommitOperationAdd(path_in_repo=p.relative_to(folder).as_posix(), path_or_fileobj=p)
           for p in sorted(folder.rglob("*")) if p.is_file()]
    # one create_commit, no retry: a failed commit leaves the repo as it was, and the user
    # re-runs (upload_folder would silently retry 5xx answers for up to ~25 s)
    with hub_errors("commit the files", repo=repo, token=token, done=done):
        info = api.create_commit(repo, operations=ops, commit_message=message,
                                 repo_type=repo_type, revision=branch)
    return {"url": url, "commit": info.oid, "changed": info.oid != before, "revision": branch}
