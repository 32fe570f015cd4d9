"""Whether a pretrained source's weights file is already on this machine, found without
torch, torchvision, timm or huggingface_hub (``zoo recommend`` runs on catalog data alone).

Each scheme is looked up where :mod:`zoo.loading.sources` would read or cache it:

- ``package:`` / ``file:``: the file itself (weights that ship);
- ``https:``: zoo's sha256-keyed cache;
- ``hf-hub:`` and ``timm:`` (timm's weights live on the Hub as ``timm/NAME.TAG``):
  huggingface_hub's cache, any snapshot holding the file (or the revision's snapshot);
- ``torchvision:Enum.MEMBER``: torch.hub's checkpoint folder, under the file name of the
  member's URL, read from torchvision's source text (importing torchvision takes seconds).

An answer of ``False`` means "not found", never "certainly absent": a source whose file
name cannot be worked out this way (a plugin's scheme, a timm config with a plain URL)
counts as not on the machine, which is the safe side for offline advice.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from zoo.errors import WeightsError

HF_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


def on_machine(source: str, sha256: str | None = None) -> bool:
    """True if the weights of ``source`` can be loaded with no network."""
    scheme, _, rest = source.partition(":")
    try:
        if scheme == "package":
            from zoo.loading.paths import resolve_package_path

            resolve_package_path(rest)
            return True
        if scheme == "file":
            return Path(rest).expanduser().is_file()
        if scheme in ("https", "http"):
            from zoo.loading.sources import url_cache_path

            return bool(sha256) and url_cache_path(source, sha256).is_file()
        if scheme == "hf-hub":
            from zoo.loading.sources import parse_hf_hub

            repo, rev, filename = parse_hf_hub(rest)
            return _hf_cached(repo, (filename,), rev)
        if scheme == "timm":
            return _hf_cached(f"timm/{rest.strip()}", HF_FILES, None)
        if scheme == "torchvision":
            name = _torchvision_file(rest.strip())
            return name is not None and (torch_hub_dir() / "checkpoints" / name).is_file()
    except (WeightsError, OSError, ValueError):
        return False
    return False


def torch_hub_dir() -> Path:
    """``torch.hub.get_dir()`` as torch computes it, from the environment now."""
    home = os.environ.get("TORCH_HOME")
    if home:
        return Path(home).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(xdg).expanduser() / "torch" / "hub"


def _hf_cached(repo: str, filenames: tuple[str, ...], revision: str | None) -> bool:
    from zoo.loading.sources import hf_cache_dir

    folder = hf_cache_dir() / ("models--" + repo.replace("/", "--"))
    snapshots = folder / "snapshots"
    if not snapshots.is_dir():
        return False
    if revision:
        ref = folder / "refs" / revision
        commit = ref.read_text().strip() if ref.is_file() else revision
        candidates = [snapshots / commit]
    else:
        candidates = [p for p in snapshots.iterdir() if p.is_dir()]
    return any((c / f).is_file() for c in candidates for f in filenames)


def _torchvision_file(name: str) -> str | None:
    """The checkpoint file name of ``Enum.MEMBER`` (``resnet50-11ad3fa6.pth``), read from
    torchvision's model sources; ``None`` when torchvision or the member is not found."""
    enum, _, member = name.partition(".")
    return _torchvision_index().get(enum, {}).get(member)


_CLASS = re.compile(r"^class (\w+)\(WeightsEnum\):", re.M)
_MEMBER = re.compile(r"^\s+(\w+) = Weights\(\s*(?:#[^\n]*\n\s*)*url=\"([^\"]+)\"", re.M)


@lru_cache(maxsize=1)
def _torchvision_index() -> dict[str, dict[str, str]]:
    """``{enum: {member: file name}}`` over torchvision's model sources (~0.15 s, once)."""
    try:
        spec = find_spec("torchvision")
    except (ImportError, ValueError):
        return {}
    if spec is None or not spec.submodule_search_locations:
        return {}
    index: dict[str, dict[str, str]] = {}
    for root in spec.submodule_search_locations:
        for path in sorted(Path(root, "models").rglob("*.py")):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            heads = list(_CLASS.finditer(text))
            for i, m in enumerate(heads):
                # a class's members end where the next top-level line begins
                body = text[m.end():heads[i + 1].start() if i + 1 < len(heads) else None]
                end = re.search(r"^\S", body, re.M)
                members = index.setdefault(m.group(1), {})
                for w in _MEMBER.finditer(body[:end.start()] if end else body):
                    members.setdefault(w.group(1), w.group(2).rsplit("/", 1)[-1])
    return index
