"""The write side of the Hub: who the token is, and one commit of a folder.

The read side (endpoint, token, errors, snapshots) is :mod:`zoo.loading.hub`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zoo.errors import UsageError, ZooError
from zoo.loading.hub import _no_token, client, hub_errors, scrub
from zoo.loading.sources import quiet_hub_logs


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
        url, created = _create(api, repo, repo_type=repo_type, private=private,
                               space_sdk=space_sdk)
    try:
        if branch != "main":
            with hub_errors(f"create branch '{branch}'", repo=repo, token=token, done=done):
                api.create_branch(repo, branch=branch, repo_type=repo_type, exist_ok=True)
        with hub_errors("read the repo", repo=repo, token=token, done=done):
            before = api.repo_info(repo, repo_type=repo_type, revision=branch).sha
        ops = [CommitOperationAdd(path_in_repo=p.relative_to(folder).as_posix(),
                                  path_or_fileobj=p)
               for p in sorted(folder.rglob("*")) if p.is_file()]
        # one create_commit, no retry: a failed commit leaves the repo as it was, and the
        # user re-runs (upload_folder would silently retry 5xx answers for up to ~25 s)
        with hub_errors("commit the files", repo=repo, token=token, done=done):
            info = api.create_commit(repo, operations=ops, commit_message=message,
                                     repo_type=repo_type, revision=branch)
    except ZooError as e:
        if not created:
            raise
        # the repo is ours and empty: remove it, so that no empty public repo is left
        # behind a message saying nothing was published
        kind = "Space" if repo_type == "space" else "repo"
        try:
            with quiet_hub_logs():
                api.delete_repo(repo, repo_type=repo_type, missing_ok=True)
            note = f"{done} (the empty {kind} zoo had just created was deleted)"
        except Exception:  # noqa: BLE001 - say what is left instead
            note = (f"{done}, but the empty {kind} '{repo}' zoo created is still on the Hub: "
                    f"delete it ({url}/settings) or run the command again to fill it")
        raise type(e)(scrub(str(e).replace(done, note, 1), token)) from None
    return {"url": url, "commit": info.oid, "changed": info.oid != before, "revision": branch}


def _create(api, repo: str, *, repo_type: str, private: bool,
            space_sdk: str | None) -> tuple[str, bool]:
    """Create the repo if it is missing: ``(url, whether this call created it)``."""
    from huggingface_hub.errors import HfHubHTTPError

    try:
        return str(api.create_repo(repo, repo_type=repo_type, private=private,
                                   exist_ok=False, space_sdk=space_sdk)), True
    except HfHubHTTPError as e:
        if e.response is None or e.response.status_code != 409:
            raise
    return str(api.create_repo(repo, repo_type=repo_type, private=private, exist_ok=True,
                               space_sdk=space_sdk)), False
