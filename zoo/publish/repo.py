"""Publish a model to the Hugging Face Hub in the layout of the library behind it.

``publish("lenet5.digits", "me/lenet5-digits")`` (or ``zoo publish``) stages a folder:

native files (:mod:`zoo.publish.layouts`)
    transformers' ``save_pretrained`` layout (and the tokenizer) for transformers models,
    timm's ``save_for_hf`` layout for timm models, a PyTorchModelHubMixin-style
    ``config.json`` (the builder's arguments) + ``model.safetensors`` for the rest: Hub
    users load the repo with the library they already have.
``zoo.json``
    zoo's metadata: builder, kwargs, family, task, plugin and its distribution and
    version, labels, input spec, licence, provenance of a fine-tune, and the sha256 of
    the weights and of every other file, so ``zoo get hf-hub:ORG/NAME`` rebuilds the
    exact architecture and checks each file.
``files/<ARG>/...``
    files builder arguments point at (vocabularies): the argument is rewritten to the
    repo-relative path and ``zoo.json["files"]`` records which arguments those are. A
    transformers tokenizer is saved at the repo's root instead, where ``AutoTokenizer``
    looks.
``README.md``
    the model card (:mod:`zoo.publish.card`).

A saved directory must load (the check ``zoo get DIR`` makes) and may only name files
inside itself (:mod:`zoo.publish.staging`); a bare architecture (random weights) is
refused unless ``untrained=True``, and its card says so. The folder is pushed in one
commit (``create_commit``; files the Hub already has are skipped, so re-publishing an
unchanged model makes no commit); a failed first commit removes the repo it created.
``revision`` publishes to a branch; ``space=True`` also pushes a Gradio Space (the folder
:func:`zoo.demos.space.export_space` makes) whose app loads the model from the repo.
``dry_run=True`` only writes the folder, which is exactly what would be pushed.

The token (``HF_TOKEN`` or the ``hf auth login`` one) is checked with whoami first and
never written or printed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import UsageError
from zoo.loading.hub import check_repo_id

ZOO_FILE = "zoo.json"


@dataclass
class Staged:
    """A folder ready to push, and what the card and messages need about it."""

    folder: Path
    label: str                       # what the user named: "lenet5.digits" or a directory
    config: dict[str, Any]
    files: list[tuple[str, int]] = field(default_factory=list)   # (repo path, bytes)


@dataclass
class PublishResult:
    """What :func:`publish` did. ``commit`` is None for a dry run."""

    repo: str
    url: str
    revision: str
    commit: str | None
    changed: bool
    files: list[tuple[str, int]]
    folder: Path | None = None       # the staged folder (dry run / --out)
    space_url: str | None = None
    space_commit: str | None = None
    card_head: str = ""


def publish(model: str | os.PathLike[str], repo: str, *, private: bool = False,
            revision: str | None = None, space: bool = False, dry_run: bool = False,
            out: str | os.PathLike[str] | None = None, token: str | None = None,
            message: str | None = None, untrained: bool = False) -> PublishResult:
    """Publish ``NAME[.TAG]`` or a saved model directory to the Hub repo ``repo``.

    Args:
        model: a trained catalog model (``lenet5.digits``) or a directory from
            ``zoo get --save`` / ``zoo finetune``.
        repo: ``ORG/NAME`` on the Hub (``HF_ENDPOINT`` picks the Hub).
        private: create the repo private (an existing repo keeps its visibility).
        revision: push to this branch (created from main if missing) instead of main.
        space: also create/update the Gradio Space ``ORG/NAME`` serving the model.
        dry_run: write the folder (to ``out``, default ``./hub-NAME``) and push nothing.
        out: keep the staged folder here (it must not exist or be empty).
        token: a Hub token; default ``HF_TOKEN``, else the ``hf auth login`` token.
        message: the commit message.
        untrained: allow random weights (a bare ``NAME``); the card marks them untrained.

    Raises:
        UsageError: bad model/repo/revision, random weights without ``untrained``, no or
            refused token, no write access (403).
        HubError: the Hub failed or could not be reached; says what was (not) published.
    """
    from zoo.loading import hub
    from zoo.publish import upload

    check_repo_id(repo)
    if revision is not None:
        _check_branch(revision)
    if out is None and dry_run:
        out = Path.cwd() / f"hub-{repo.split('/')[1]}"
    scratch = Path(tempfile.mkdtemp(prefix="zoo-publish-"))
    if out is not None:
        folder = Path(out)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            shutil.rmtree(scratch, ignore_errors=True)
            raise UsageError(f"{folder}: exists and is not empty; choose a new --out directory")
    else:
        folder = scratch / "repo"
    try:
        if not dry_run:
            # before any slow work: a missing or refused token fails in a second
            token = token or hub.get_token()
            upload.whoami(token)
        try:
            staged = stage(model, folder, repo=repo, revision=revision, untrained=untrained)
        except OSError as e:
            raise UsageError(f"{folder}: cannot write the repo folder ({e.strerror or e}); "
                             "choose another --out; nothing was published") from None
        head = card_head(folder)
        branch = revision or "main"
        if dry_run:
            return PublishResult(repo, f"{hub.endpoint()}/{repo}", branch, None, False,
                                 staged.files, folder=folder, card_head=head)
        space_dir = None
        if space:
            # exported before anything is pushed: a model without a demo fails here, cleanly
            space_dir = export_space_folder(model, scratch / "space", repo=repo,
                                            revision=revision)
        msg = message or f"Publish {staged.label} with zoo {staged.config.get('zoo_version', '')}"
        pushed = upload.upload_folder(folder, repo, token=token, revision=revision,
                                      private=private, message=msg.strip())
        result = PublishResult(repo, pushed["url"], branch, pushed["commit"], pushed["changed"],
                               staged.files, folder=folder if out is not None else None,
                               card_head=head)
        if space_dir is not None:
            done = (f"the model was published ({repo}@{branch}, commit {pushed['commit'][:8]}) "
                    "but the Space was not")
            sp = upload.upload_folder(space_dir, repo, token=token, repo_type="space",
                                      private=private, space_sdk="gradio",
                                      message=f"Gradio demo of {repo}", done=done)
            result.space_url, result.space_commit = sp["url"], sp["commit"]
        return result
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _check_branch(revision: str) -> None:
    bad = (not revision or revision.startswith(("-", "/", "refs/")) or ".." in revision
           or any(c in revision for c in " ~^:?*[\\") or revision.endswith((".", "/", ".lock"))
           or (len(revision) == 40 and all(c in "0123456789abcdef" for c in revision)))
    if bad:
        raise UsageError(f"--revision '{revision}' is not a branch name; write a name such as "
                         "'v1' or 'experiment-2' (a commit hash cannot be published to)")


# -- staging -----------------------------------------------------------------------------

def stage(model: str | os.PathLike[str], folder: str | os.PathLike[str], *, repo: str,
          revision: str | None = None, untrained: bool = False) -> Staged:
    """Write the repo folder for ``model`` into ``folder`` (created; must be empty).

    Raises:
        UsageError: an ``hf-hub:`` reference, a directory that does not load or names
            files outside itself, or random weights without ``untrained=True``.
    """
    from zoo.api import _looks_like_dir
    from zoo.loading.weights import sha256_of
    from zoo.publish import layouts, staging
    from zoo.publish.card import make_card
    from zoo.version import __version__

    folder = Path(folder)
    text = os.fspath(model)
    if text.startswith("hf-hub:"):
        raise UsageError(f"{text}: already on the Hub; to copy it, 'zoo get' it with --save "
                         "first or publish the catalog name")
    if _looks_like_dir(text) or Path(text).is_dir():
        src = staging.from_directory(Path(text))
    else:
        src = staging.from_catalog(text)
    if not src.trained and not untrained:
        what = (f"{src.label} is an architecture with random weights" if src.directory is None
                else f"zoo cannot tell that the weights in {src.label} were trained (no "
                     "trained tag, no fine-tune record)")
        raise UsageError(f"{what}; publish a trained model (zoo list --pretrained), or pass "
                         "--untrained to publish random weights marked as untrained")
    meta = src.meta
    prior = meta.pop("files_from", {})
    layout = layouts.layout_of(src.model)
    kwargs = dict(meta["kwargs"])
    files: dict[str, str] = {}
    if layout.startswith("transformers") and layouts.has_hf_tokenizer(src.model) \
            and "tokenizer" in kwargs:
        kwargs["tokenizer"] = files["tokenizer"] = "."   # at the root, where AutoTokenizer looks
    files.update(staging.bundle_files(kwargs, folder, prior=prior, base=src.directory,
                                      trusted=src.directory is None, skip=tuple(files)))
    layouts.write(src.model, folder, layout, kwargs=kwargs, labels=meta.get("labels"))
    weights = folder / layouts.WEIGHTS
    meta.update({"format": 2, "zoo_version": __version__, "layout": layout,
                 "library": layouts.LIBRARIES[layout], "kwargs": kwargs,
                 "weights": layouts.WEIGHTS, "sha256": sha256_of(weights),
                 "untrained": not src.trained})
    if files:
        meta["files"] = files
    meta["assets"] = staging.file_hashes(folder, skip=(layouts.WEIGHTS,))
    staging.write_json(folder / ZOO_FILE, meta)
    card = make_card(card_info(meta, src, repo=repo, revision=revision, folder=folder))
    (folder / "README.md").write_text(str(card))
    sizes = sorted((p.relative_to(folder).as_posix(), p.stat().st_size)
                   for p in folder.rglob("*") if p.is_file())
    return Staged(folder, src.label, meta, sizes)


def card_info(meta: dict[str, Any], src, *, repo: str, revision: str | None,
              folder: Path) -> dict[str, Any]:
    """Gather what :func:`zoo.publish.card.make_card` needs from zoo.json and the catalog."""
    from zoo.loading.native import safetensors_params
    from zoo.publish.card import base_model_of, zoo_distribution

    catalog = src.catalog
    tag = meta.get("tag")
    pre = catalog.pretrained.get(tag) if catalog is not None and tag else None
    title = meta.get("name") or repo.split("/")[1]
    if tag:
        title += f".{tag}"
    fine_tuned = bool(meta.get("technique"))
    metrics = dict(meta.get("metrics") or {}) or dict(src.run.get("final") or {}) \
        or (dict(pre.metrics) if pre is not None else {})
    dataset = meta.get("dataset") or src.run.get("data") or (pre.dataset if pre else None)
    base_zoo = meta.get("base_model") if fine_tuned else None
    base = base_model_of(pre.source if pre is not None else None)
    if base_zoo and not base:
        base = _base_of_zoo_name(str(base_zoo))
    parts = [catalog.description if catalog is not None else None,
             f"Weights: {pre.description}" if pre is not None and pre.description else None]
    description = "\n\n".join(p for p in parts if p) or None
    if fine_tuned:
        description = (f"Fine-tuned ({meta['technique']}) on {dataset or 'a dataset'}"
                       + (f" from {base_zoo}" if base_zoo else "") + ". "
                       + (description or "")).strip()
    if catalog is None and tag is None and meta.get("name") is None:
        description = description or "A model saved by zoo."
    return {
        "repo": repo, "revision": revision, "title": title, "config": meta,
        "layout": meta["layout"], "description": description,
        "paper": catalog.paper if catalog is not None else None,
        "paper_url": catalog.paper_url if catalog is not None else None,
        "tags": list(catalog.tags) if catalog is not None else [],
        "license": meta.get("license") or (catalog.license if catalog is not None else None),
        "dataset": dataset, "metrics": metrics,
        "split": "validation" if fine_tuned else getattr(pre, "split", None) or "test",
        "val_samples": src.run.get("val_samples"),
        "base_model": base, "base_zoo": base_zoo, "technique": meta.get("technique"),
        "untrained": bool(meta.get("untrained")),
        "params": safetensors_params(folder / "model.safetensors"),
        "files": meta.get("files") or {}, "distribution": zoo_distribution(),
        "tokenizer": (folder / "tokenizer_config.json").is_file(),
    }


def _base_of_zoo_name(name: str) -> str | None:
    """The Hub repo behind a zoo ``NAME.TAG`` (a fine-tune's base), if it has one."""
    from zoo.publish.card import base_model_of

    if name.startswith("hf-hub:"):
        return base_model_of(name)
    try:
        from zoo.api import spec

        s, tag = spec(name)
    except Exception:  # noqa: BLE001 - a directory or an unknown name: no Hub base
        return None
    if tag is None:
        return None
    return base_model_of(s.pretrained[tag].source)


def card_head(folder: Path, lines: int = 16) -> str:
    """The first lines of the staged README.md (for dry runs)."""
    try:
        return "\n".join((folder / "README.md").read_text().splitlines()[:lines])
    except OSError:
        return ""


# -- the Space ---------------------------------------------------------------------------

def export_space_folder(model: str | os.PathLike[str], out: Path, *, repo: str,
                        revision: str | None = None) -> Path:
    """The Space folder (demos engineer's exporter) whose app loads ``hf-hub:REPO[@REV]``."""
    from zoo.demos.space import export_space

    export_space(model, out, hub_model=repo)
    if revision:
        app = out / "app.py"
        text = app.read_text()
        app.write_text(text.replace(repr(f"hf-hub:{repo}"), repr(f"hf-hub:{repo}@{revision}")))
    return out
