"""Publish a model to the Hugging Face Hub so that ``zoo get hf-hub:ORG/NAME`` rebuilds it.

``publish("lenet5.digits", "me/lenet5-digits")`` (or ``zoo publish``) stages a folder:

``model.safetensors`` + ``config.json``
    written by :func:`zoo.loading.build.save` (builder, kwargs, family, plugin and its
    distribution and version, labels, input, sha256, zoo version): the exact
    architecture, rebuilt on load, with the weights' hash checked.
``files/<ARG>/...``
    every file a builder argument points at (``package:``, ``file:`` or absolute paths:
    vocabularies, tokenizer folders). The argument is rewritten to the repo-relative
    path, ``config["files"]`` records which arguments those are and ``config["assets"]``
    each file's sha256, so the published model depends on neither zoo's package data
    nor the publisher's disk. Weights-like files inside a folder (``*.safetensors``,
    ``*.bin``...) are left out: tokenizers do not need them.
``README.md``
    the model card (:mod:`zoo.publish.card`).

and pushes it in one commit (``create_repo(exist_ok=True)`` + ``create_commit``; files the
Hub already has are skipped, so re-publishing an unchanged model makes no commit).
``revision`` publishes to a branch; ``space=True`` also pushes a Gradio Space (the folder
:func:`zoo.demos.space.export_space` makes) whose app loads the model from the repo.
``dry_run=True`` only writes the folder.

The token (``HF_TOKEN`` or the ``hf auth login`` one) is checked with whoami first and
never written or printed.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, WeightsError
from zoo.loading.hub import check_repo_id

FILES_DIR = "files"
SKIP_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx",
                 ".ot", ".gguf")
MAX_ASSET_BYTES = 20_000_000


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
            message: str | None = None) -> PublishResult:
    """Publish ``NAME[.TAG]`` or a saved model directory to the Hub repo ``repo``.

    Args:
        model: a catalog model (``lenet5.digits``; a bare ``NAME`` publishes random
            weights) or a directory from ``zoo get --save`` / ``zoo finetune``.
        repo: ``ORG/NAME`` on the Hub (``HF_ENDPOINT`` picks the Hub).
        private: create the repo private (an existing repo keeps its visibility).
        revision: push to this branch (created from main if missing) instead of main.
        space: also create/update the Gradio Space ``ORG/NAME`` serving the model.
        dry_run: write the folder (to ``out``, default ``./hub-NAME``) and push nothing.
        out: keep the staged folder here (it must not exist or be empty).
        token: a Hub token; default ``HF_TOKEN``, else the ``hf auth login`` token.
        message: the commit message.

    Raises:
        UsageError: bad model/repo/revision, no or refused token, no write access (403).
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
            staged = stage(model, folder, repo=repo, revision=revision)
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
          revision: str | None = None) -> Staged:
    """Write the repo folder for ``model`` into ``folder`` (created; must be empty)."""
    from zoo.api import _looks_like_dir, spec
    from zoo.loading import build

    folder = Path(folder)
    text = os.fspath(model)
    if text.startswith("hf-hub:"):
        raise UsageError(f"{text}: already on the Hub; to copy it, 'zoo get' it with --save "
                         "first or publish the catalog name")
    source_dir: Path | None = None
    catalog = None
    extra: dict[str, Any] = {}
    if _looks_like_dir(text) or Path(text).is_dir():
        source_dir = Path(text)
        config = build.read_config(source_dir)
        weights = source_dir / str(config.get("weights") or build.WEIGHTS_FILE)
        _copy_weights(weights, folder, config)
        label = text
        try:
            catalog = spec(config["name"])[0] if config.get("name") else None
        except UsageError:
            catalog = None
        extra = _run_metrics(source_dir)
    else:
        s, tag = spec(text)
        built = build.build(s, tag)
        build.save(built, folder, spec=s, tag=tag)
        config = build.read_config(folder)
        catalog = s
        label = s.name + (f".{tag}" if tag else "")
    config["weights"] = build.WEIGHTS_FILE
    files, assets = _bundle_files(config, folder, source_dir)
    if files:
        config["files"], config["assets"] = files, assets
    else:
        config.pop("files", None)
        config.pop("assets", None)
    if config.get("labels"):
        # label_names: what zoo.loading.sources reads when the weights are a catalog's
        # hf-hub: source
        config["label_names"] = list(config["labels"])
    (folder / build.CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    from zoo.publish.card import make_card

    card = make_card(card_info(config, catalog, repo=repo, revision=revision, extra=extra,
                               folder=folder))
    (folder / "README.md").write_text(str(card))
    sizes = sorted((p.relative_to(folder).as_posix(), p.stat().st_size)
                   for p in folder.rglob("*") if p.is_file())
    return Staged(folder, label, config, sizes)


def _copy_weights(weights: Path, folder: Path, config: dict[str, Any]) -> None:
    from zoo.loading import build
    from zoo.loading.weights import sha256_of

    if not weights.is_file():
        raise UsageError(f"{weights}: missing; the model directory is damaged")
    if config.get("sha256") and sha256_of(weights) != config["sha256"]:
        raise UsageError(f"{weights}: does not match the sha256 in its config.json; the "
                         "directory is damaged (save the model again)")
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, folder / build.WEIGHTS_FILE)


def _run_metrics(directory: Path) -> dict[str, Any]:
    """Final metrics and data of a fine-tune run (``metrics.json``), if the folder has one."""
    try:
        data = json.loads((directory / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    out: dict[str, Any] = {}
    if isinstance(data.get("final"), dict):
        out["metrics"] = data["final"]
    if data.get("data"):
        out["dataset"] = data["data"]
    return out


def _local_path(value: str, relative_ok: bool, base: Path | None) -> Path | None:
    """The local file/folder a builder argument names, or None if it names none."""
    if value.startswith("package:"):
        from zoo.loading.paths import resolve_package_path

        try:
            return resolve_package_path(value[len("package:"):], kind="any")
        except WeightsError:
            pkg = value[len("package:"):].partition("/")[0]
            raise UsageError(f"builder argument '{value}': not found (is package '{pkg}' "
                             "installed?); cannot bundle it with the model") from None
    if value.startswith("file:"):
        p = Path(value[len("file:"):]).expanduser()
    elif relative_ok and base is not None and not os.path.isabs(value):
        p = base / value
    elif os.path.isabs(value):
        p = Path(value)
    else:
        return None
    if not p.exists():
        raise UsageError(f"builder argument '{value}': no such file ({p}); cannot bundle it "
                         "with the model")
    return p


def _bundle_files(config: dict[str, Any], folder: Path,
                  base: Path | None) -> tuple[dict[str, str], dict[str, str]]:
    """Copy files builder arguments point at into ``files/ARG/``; rewrite the arguments."""
    from zoo.loading.weights import sha256_of

    prior = config.get("files") or {}
    kwargs = config["kwargs"]
    files: dict[str, str] = {}
    assets: dict[str, str] = {}
    for key, value in list(kwargs.items()):
        if not isinstance(value, str):
            continue
        src = _local_path(value, key in prior, base)
        if src is None:
            continue
        dest_dir = folder / FILES_DIR / key
        if src.is_file():
            copied = [_copy(src, dest_dir / src.name)]
            files[key] = f"{FILES_DIR}/{key}/{src.name}"
        else:
            copied = [_copy(p, dest_dir / p.relative_to(src)) for p in sorted(src.rglob("*"))
                      if p.is_file() and not p.name.startswith(".")
                      and not p.name.endswith(SKIP_SUFFIXES)
                      and p.stat().st_size <= MAX_ASSET_BYTES]
            if not copied:
                raise UsageError(f"builder argument {key}='{value}': the folder {src} has no "
                                 "files to bundle")
            files[key] = f"{FILES_DIR}/{key}"
        kwargs[key] = files[key]
        for p in copied:
            assets[p.relative_to(folder).as_posix()] = sha256_of(p)
    return files, assets


def _copy(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


# -- the card ----------------------------------------------------------------------------

def card_info(config: dict[str, Any], catalog, *, repo: str, revision: str | None,
              extra: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Gather what :func:`zoo.publish.card.make_card` needs from the config and the catalog."""
    from zoo.publish.card import base_model_of, param_count

    tag = config.get("tag")
    pre = catalog.pretrained.get(tag) if catalog is not None and tag else None
    title = config.get("name") or repo.split("/")[1]
    if tag:
        title += f".{tag}"
    metrics = dict(config.get("metrics") or {}) or dict(extra.get("metrics") or {}) \
        or (dict(pre.metrics) if pre is not None else {})
    dataset = config.get("dataset") or extra.get("dataset") or (pre.dataset if pre else None)
    base_zoo = config.get("base_model")
    base = base_model_of(pre.source if pre is not None else None)
    if base_zoo and not base:
        base = _base_of_zoo_name(str(base_zoo))
    parts = [catalog.description if catalog is not None else None,
             f"Weights: {pre.description}" if pre is not None and pre.description else None]
    description = "\n\n".join(p for p in parts if p) or None
    if config.get("technique"):
        description = (f"Fine-tuned ({config['technique']}) on {dataset or 'a dataset'}"
                       + (f" from {base_zoo}" if base_zoo else "") + ". "
                       + (description or "")).strip()
    if catalog is None and tag is None and config.get("name") is None:
        description = description or "A model saved by zoo."
    return {
        "repo": repo, "revision": revision, "title": title, "config": config,
        "description": description,
        "paper": catalog.paper if catalog is not None else None,
        "paper_url": catalog.paper_url if catalog is not None else None,
        "tags": list(catalog.tags) if catalog is not None else [],
        "license": config.get("license") or (catalog.license if catalog is not None else None),
        "dataset": dataset, "metrics": metrics, "base_model": base, "base_zoo": base_zoo,
        "technique": config.get("technique"),
        "params": param_count(folder / "model.safetensors"),
        "files": config.get("files") or {},
    }


def _base_of_zoo_name(name: str) -> str | None:
    """The Hub repo behind a zoo ``NAME.TAG`` (a fine-tune's base), if it has one."""
    if name.startswith("hf-hub:"):
        from zoo.publish.card import base_model_of

        return base_model_of(name)
    try:
        from zoo.api import spec

        s, tag = spec(name)
    except Exception:  # noqa: BLE001 - a directory or an unknown name: no Hub base
        return None
    if tag is None:
        return None
    from zoo.publish.card import base_model_of

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
