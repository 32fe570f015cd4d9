"""What goes into a repo folder: the model (built, or loaded from a directory that must
load first), the files its builder arguments name, and zoo's metadata for ``zoo.json``.

A saved directory is data (DESIGN "Boundaries and trust"): from it, only files inside the
directory after resolving symbolic links are staged, plus ``package:`` files of installed
packages (zoo's own vocabularies, a tokenizer package), which are no one's private files.
A catalog entry is code the user installed: its ``file:`` and absolute paths are bundled.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, WeightsError

FILES_DIR = "files"
SKIP_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx",
                 ".ot", ".gguf")
MAX_ASSET_BYTES = 20_000_000
#: zoo.json keys taken from a saved directory's config.json (nothing else leaves the disk)
KEPT_KEYS = ("name", "tag", "family", "task", "demo", "builder", "kwargs", "plugin",
             "plugin_distribution", "plugin_version", "labels", "input", "license",
             "technique", "metrics", "dataset", "base_model")
_ZOO_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]*(/[a-z0-9][a-z0-9_\-]*)?(\.[a-z0-9][a-z0-9_\-]*)?$")


@dataclass
class Source:
    """A model to publish, built, with what is known about it."""

    model: Any
    meta: dict[str, Any]            # zoo.json so far (KEPT_KEYS)
    catalog: Any                    # the catalog ModelSpec, if the model is a known one
    label: str                      # what the user named
    trained: bool
    directory: Path | None = None   # the saved directory it came from
    run: dict[str, Any] = field(default_factory=dict)   # metrics.json of a fine-tune


def from_catalog(name: str) -> Source:
    """Build ``NAME[.TAG]`` and gather its metadata from the catalog."""
    from dataclasses import asdict

    from zoo.api import spec
    from zoo.loading import build
    from zoo.registry.plugins import get_plugins
    from zoo.registry.spec import thaw

    s, tag = spec(name)
    model = build.build(s, tag)
    info = get_plugins().infos.get(s.plugin or "")
    pre = s.pretrained.get(tag) if tag else None
    inp = s.input_for(tag)
    meta = {
        "name": s.name, "tag": tag, "family": s.family, "task": s.task_for(tag),
        "demo": s.demo_task_for(tag), "builder": s.builder_path,
        "kwargs": thaw(build.merged_kwargs(s, tag, {})), "plugin": s.plugin,
        "plugin_distribution": info.distribution if info else None,
        "plugin_version": info.version if info else None,
        "labels": list(pre.labels) if pre and pre.labels else _source_labels(pre),
        "input": asdict(inp) if inp else None,
        "license": (pre.license if pre and pre.license else s.license),
    }
    return Source(model, meta, s, s.name + (f".{tag}" if tag else ""), trained=tag is not None)


def _source_labels(pre: Any) -> list[str] | None:
    """Class names the weights come with (torchvision's categories, timm's ImageNet
    names) when the catalog lists none; the file is already fetched by the build."""
    if pre is None:
        return None
    from zoo.loading.sources import resolve

    try:
        labels = resolve(pre.source, sha256=pre.sha256).labels
    except WeightsError:
        return None
    return list(labels) if labels else None


def from_directory(directory: Path) -> Source:
    """Load a saved or fine-tuned directory (the check ``zoo get DIR`` makes) and gather
    its metadata; every file it names must lie inside it.

    Raises:
        UsageError: a file named outside the directory, a folder zoo does not publish, or
            one that does not load (the loader's own one-line error).
    """
    from zoo.api import spec
    from zoo.loading import build, native

    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory; give NAME[.TAG] or a directory "
                         "made by 'zoo get NAME --save DIR' or 'zoo finetune'")
    layout, config = native.detect(directory)
    if layout != "zoo-legacy":
        raise UsageError(f"{directory}: a {layout} folder, not one zoo saved; publish a "
                         "directory from 'zoo get NAME --save DIR' or 'zoo finetune --out DIR'"
                         + (" (push this one with its library's push_to_hub)"
                            if layout in ("transformers", "timm") else ""))
    _check_named_files(directory, config)
    model = build.load_dir(directory)          # nothing is staged from a folder that fails
    meta = {k: config.get(k) for k in KEPT_KEYS if config.get(k) is not None}
    if meta.get("task") == "feature-extraction" and meta.get("labels"):
        meta["task"] = "text-classification"   # an encoder with class labels is a classifier
    catalog = None
    if isinstance(config.get("name"), str):
        try:
            catalog = spec(config["name"])[0]
        except UsageError:
            catalog = None
    base = meta.get("base_model")
    if base is not None and not (isinstance(base, str) and (
            base.startswith("hf-hub:") or _ZOO_NAME.match(base))):
        del meta["base_model"]                 # a local path says nothing to the Hub's users
    if isinstance(meta.get("dataset"), str) and os.sep in meta["dataset"]:
        meta["dataset"] = Path(meta["dataset"]).name
    run = _run_metrics(directory)
    trained = bool(config.get("tag") or config.get("technique") or run.get("final"))
    src = Source(model, meta, catalog, str(directory), trained, directory, run)
    src.meta["files_from"] = dict(config.get("files") or {})
    return src


def _inside(root: Path, path: Path, what: str) -> Path:
    """``path`` (links resolved) if it lies inside ``root``, else a UsageError."""
    real = path.resolve()
    if not real.is_relative_to(root.resolve()):
        raise UsageError(f"{root}: {what} is outside the directory ({path}); zoo publishes only "
                         "files inside the model directory: copy the file into it and name "
                         "it by a relative path")
    return real


def _check_named_files(directory: Path, config: dict[str, Any]) -> None:
    """Every file config.json names (weights, bundled files) lies inside the directory."""
    weights = config.get("weights") or "model.safetensors"
    if not isinstance(weights, str):
        raise UsageError(f"{directory}: 'weights' in config.json must be a file name")
    _inside(directory, directory / weights, f"'weights' ({weights})")
    files = config.get("files") or {}
    if not isinstance(files, dict):
        raise UsageError(f"{directory}: 'files' in config.json must be a table")
    for key, rel in files.items():
        if not isinstance(rel, str):
            raise UsageError(f"{directory}: files.{key} in config.json must be a path")
        _inside(directory, directory / rel, f"files.{key} ({rel})")
    kwargs = config.get("kwargs")
    if isinstance(kwargs, dict):   # before the builder reads any of them
        for key, value in kwargs.items():
            if isinstance(value, str):
                local_path(key, value, prior=files, base=directory, trusted=False)


def _run_metrics(directory: Path) -> dict[str, Any]:
    """A fine-tune run's ``metrics.json`` (final metrics, data, split sizes), if any."""
    from zoo.loading.native import read_json

    if not (directory / "metrics.json").is_file():
        return {}
    try:
        data = read_json(directory / "metrics.json", "metrics.json")
    except UsageError:
        return {}
    return data if isinstance(data, dict) else {}


# -- builder arguments that name files ---------------------------------------------------

def _package_file(value: str) -> Path:
    from zoo.loading.paths import resolve_package_path

    rel = value[len("package:"):]
    pkg = rel.partition("/")[0]
    if ".." in Path(rel).parts:
        raise UsageError(f"builder argument '{value}': a package path may not climb out of "
                         "its package ('..')")
    try:
        p = resolve_package_path(rel, kind="any")
    except WeightsError:
        raise UsageError(f"builder argument '{value}': not found (is package '{pkg}' "
                         "installed?); cannot bundle it with the model") from None
    return p


def local_path(key: str, value: str, *, prior: dict[str, Any], base: Path | None,
               trusted: bool) -> Path | None:
    """The local file/folder a builder argument names, or None if it names none.

    From a directory (``trusted=False``), ``file:``/absolute/relative paths must resolve
    inside it.
    """
    if value.startswith("package:"):
        return _package_file(value)
    if value.startswith("file:"):
        p = Path(value[len("file:"):]).expanduser()
    elif os.path.isabs(value):
        p = Path(value)
    elif key in prior and base is not None:
        p = base / value
    else:
        return None
    if not trusted and base is not None:
        _inside(base, p, f"builder argument {key}='{value}'")
    if not p.exists():
        raise UsageError(f"builder argument {key}='{value}': no such file ({p}); cannot "
                         "bundle it with the model")
    return p


def bundle_files(kwargs: dict[str, Any], folder: Path, *, prior: dict[str, Any],
                 base: Path | None, trusted: bool, skip: tuple[str, ...] = ()
                 ) -> dict[str, str]:
    """Copy the files builder arguments point at into ``files/ARG/``; rewrite the
    arguments to those repo-relative paths; return ``{argument: path}``."""
    files: dict[str, str] = {}
    for key, value in list(kwargs.items()):
        if key in skip or not isinstance(value, str):
            continue
        src = local_path(key, value, prior=prior, base=base, trusted=trusted)
        if src is None:
            continue
        dest_dir = folder / FILES_DIR / key
        if src.is_file():
            _copy(src, dest_dir / src.name)
            files[key] = f"{FILES_DIR}/{key}/{src.name}"
        else:
            copied = []
            for p in sorted(src.rglob("*")):
                if not p.is_file() or p.name.startswith(".") or p.name.endswith(SKIP_SUFFIXES) \
                        or p.stat().st_size > MAX_ASSET_BYTES:
                    continue
                if not trusted and base is not None:
                    _inside(base, p, f"builder argument {key}: {p.name}")
                copied.append(_copy(p, dest_dir / p.relative_to(src)))
            if not copied:
                raise UsageError(f"builder argument {key}='{value}': the folder {src} has no "
                                 "files to bundle")
            files[key] = f"{FILES_DIR}/{key}"
        kwargs[key] = files[key]
    return files


def _copy(src: Path, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dest)
    return dest


def file_hashes(folder: Path, *, skip: tuple[str, ...]) -> dict[str, str]:
    """sha256 of every staged file but ``skip`` (repo-relative paths)."""
    from zoo.loading.weights import sha256_of

    return {p.relative_to(folder).as_posix(): sha256_of(p)
            for p in sorted(folder.rglob("*"))
            if p.is_file() and p.relative_to(folder).as_posix() not in skip}


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")
