"""Pretrained sources: turn a source URI into a local weights file, fetching it if needed.

One resolver per URI scheme (:data:`SCHEMES`); each returns a :class:`Resolved` (the local
file, the hash to check, the class labels the weights come with). Reading and checking
the file is :mod:`zoo.loading.weights`' job; :mod:`zoo.loading.loaders` ties both into the
``zoo_load_pretrained`` hook.

Schemes and where their files live:

``file:PATH``
    a local file, read in place.
``package:IMPORT_NAME/path``
    a file inside an installed Python package (found without importing it).
``https://HOST/PATH`` (and ``http://`` to 127.0.0.1/localhost only, for tests)
    needs the catalog's ``sha256``. Cached as ``$ZOO_HOME/weights/sha256/<sha256>/<name>``
    (see :func:`zoo.loading.weights.weights_cache_dir`); a cached file is used without network.
``torchvision:Enum.MEMBER`` (``ResNet50_Weights.IMAGENET1K_V2``)
    the enum is looked up in ``torchvision.models`` (no network). The file goes where
    torchvision itself keeps it, ``torch.hub.get_dir()/checkpoints/<file name of the
    URL>`` (``$TORCH_HOME/hub/checkpoints``), so weights fetched by plain torchvision are
    reused offline and the other way round. A download is checked against the hash
    prefix in the file name (and the catalog's ``sha256`` if given); like torch.hub, a
    cached file is then trusted unless the catalog gives a ``sha256``. The weights'
    categories become the labels. DenseNet files keep their pre-rename key names; they
    are mapped as torchvision maps them.
``timm:NAME[.TAG]``
    timm's pretrained config for ``NAME.TAG`` gives the Hub repo (``hf_hub_id``) and
    file; the file comes through huggingface_hub's cache like ``hf-hub:`` below. Configs
    that only have a URL go through torch.hub's cache like ``torchvision:``. ImageNet
    labels come from timm's own tables when the config names its label set.
``hf-hub:ORG/REPO[@REV][/FILE]``
    ``hf_hub_download`` of FILE (default ``model.safetensors``) at REV (default
    ``main``) through huggingface_hub's cache (``HF_HUB_CACHE``, else ``$HF_HOME/hub``).
    Labels come from ``id2label`` / ``label_names`` of a ``config.json`` already in the
    same snapshot (it is not fetched for that).

Offline: ``ZOO_OFFLINE=1`` forbids the network to every scheme; ``HF_HUB_OFFLINE=1`` does
so for the Hub ones. A file that is not cached then gives one line naming what was
tried (URL, repo and file, cache path) and where to put the file. The Hugging Face
variables (``HF_HUB_CACHE``, ``HF_HOME``, ``HF_ENDPOINT``, ``HF_HUB_OFFLINE``) are read
at each call, not when huggingface_hub was imported, so changing them in a running
process takes effect.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import WeightsError, ZooError
from zoo.loading.download import HASH_IN_NAME, cached_download, file_name, offline, one_line

HF_DEFAULT_FILE = "model.safetensors"
_TRUE = {"1", "true", "yes", "on"}


@dataclass
class Resolved:
    """A source resolved to a local file."""

    path: Path
    sha256: str | None = None              # checked on every read when set
    labels: list[str] | None = None        # class names the weights come with
    # called as fn(state_dict, model) when the file's keys do not fit as they are
    # (timm's per-architecture checkpoint filters)
    convert: Callable[[dict, Any], dict] | None = None


def scheme_of(source: str) -> str:
    """The URI scheme of a source: ``"hf-hub"`` for ``"hf-hub:org/repo"``."""
    return source.partition(":")[0].lower()


def resolve(source: str, *, sha256: str | None = None, model: Any = None) -> Resolved:
    """Find (fetching if allowed) the weights file of ``source``.

    Args:
        source: a pretrained source URI (see the module docstring).
        sha256: the catalog's hash for the file, if any.
        model: the model the weights are for (timm uses it to find its checkpoint filter).

    Raises:
        WeightsError: unknown scheme, unknown weights, offline and not cached, network
            failure; one line.
    """
    scheme = scheme_of(source)
    fn = SCHEMES.get(scheme)
    if fn is None:
        raise WeightsError(f"{source}: unknown source scheme '{scheme}:'; zoo reads "
                           + ", ".join(f"{s}:" for s in SCHEMES))
    return fn(source, sha256, model)


def fetch(source: str, *, sha256: str | None = None) -> Path:
    """The local path of ``source``'s weights file (downloaded into the cache if needed)."""
    return resolve(source, sha256=sha256).path


# -- file:, package: ---------------------------------------------------------------------

def _file(source: str, sha256: str | None, model: Any) -> Resolved:
    path = Path(source.partition(":")[2]).expanduser()
    if not path.is_file():
        raise WeightsError(f"{source}: no such file ({path.resolve()})")
    return Resolved(path, sha256)


def _package(source: str, sha256: str | None, model: Any) -> Resolved:
    from zoo.loading.paths import resolve_package_path

    return Resolved(resolve_package_path(source.partition(":")[2]), sha256)


# -- https: ------------------------------------------------------------------------------

def url_cache_path(url: str, sha256: str) -> Path:
    """Where an ``https:`` source with this sha256 is cached."""
    from zoo.loading.weights import weights_cache_dir

    return weights_cache_dir() / "sha256" / sha256.lower() / file_name(url)


def _url(source: str, sha256: str | None, model: Any) -> Resolved:
    if not sha256 or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise WeightsError(f"{source}: an https: source needs the file's sha256 (64 hex digits) "
                           "in the catalog, so a changed or damaged download is caught; add "
                           "sha256 = \"...\" to its pretrained table")
    dest = url_cache_path(source, sha256)
    fresh = not dest.parent.exists()
    try:
        return Resolved(cached_download(source, dest, sha256=sha256), sha256)
    except WeightsError:
        if fresh:  # the folder is this file's own: a failed fetch leaves no trace in the cache
            with contextlib.suppress(OSError):
                dest.parent.rmdir()
        raise


# -- torchvision: ------------------------------------------------------------------------

def torch_hub_checkpoints() -> Path:
    """torch.hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``), read at call time."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def torchvision_weights(name: str):
    """The torchvision ``WeightsEnum`` member for ``"ResNet50_Weights.IMAGENET1K_V2"``.

    Raises:
        WeightsError: torchvision missing, or no such enum or member (with the members).
    """
    try:
        from torchvision.models import get_weight
    except ImportError:
        raise WeightsError(f"torchvision:{name}: torchvision is not installed; "
                           "pip install torchvision") from None
    enum_name, _, member = name.partition(".")
    try:
        return get_weight(name)
    except (KeyError, ValueError, AttributeError):
        pass
    try:
        import torchvision.models as tvm

        enum = getattr(tvm, enum_name, None) or _find_enum(enum_name)
    except Exception:  # noqa: BLE001 - any failure here just means "no such enum"
        enum = None
    if enum is None:
        raise WeightsError(f"torchvision:{name}: torchvision has no weights enum '{enum_name}'; "
                           "write torchvision:<Enum>.<MEMBER>, e.g. "
                           "torchvision:ResNet50_Weights.IMAGENET1K_V2") from None
    members = ", ".join(m for m in enum.__members__)
    raise WeightsError(f"torchvision:{name}: {enum_name} has no member '{member}'; "
                       f"it has {members}") from None


def _find_enum(enum_name: str):
    import torchvision.models as tvm

    for sub in ("detection", "segmentation", "video", "optical_flow", "quantization"):
        mod = getattr(tvm, sub, None)
        if mod is not None and hasattr(mod, enum_name):
            return getattr(mod, enum_name)
    return None


def torchvision_labels(name: str) -> list[str] | None:
    """The categories of torchvision weights ``Enum.MEMBER`` (no network)."""
    cats = torchvision_weights(name).meta.get("categories")
    return list(cats) if cats else None


def _torch_hub_url(source: str, url: str, sha256: str | None) -> Path:
    """A URL fetched through torch.hub's checkpoint folder, as torchvision and timm do."""
    dest = torch_hub_checkpoints() / file_name(url)
    m = HASH_IN_NAME.search(dest.name)
    return cached_download(url, dest, sha256=sha256, sha256_prefix=m.group(1) if m else None,
                           what=f"{source} ({url})")


def _torchvision(source: str, sha256: str | None, model: Any) -> Resolved:
    name = source.partition(":")[2].strip()
    w = torchvision_weights(name)
    path = _torch_hub_url(source, w.url, sha256)
    cats = w.meta.get("categories")
    convert = _densenet_keys if name.lower().startswith("densenet") else None
    return Resolved(path, sha256, labels=list(cats) if cats else None, convert=convert)


# torchvision's DenseNet files predate a rename: "denselayer1.norm.1.weight" is now
# "denselayer1.norm1.weight" (torchvision.models.densenet._load_state_dict does the same)
_DENSENET_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _densenet_keys(state: dict, model: Any = None) -> dict:
    out = {}
    for k, v in state.items():
        m = _DENSENET_OLD_KEY.match(k)
        out[m.group(1) + m.group(2) if m else k] = v
    return out


# -- Hugging Face Hub: hf-hub:, timm: ----------------------------------------------------

def hf_cache_dir() -> Path:
    """huggingface_hub's cache folder, computed from the environment now."""
    env = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if env:
        return Path(env).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hf_offline() -> bool:
    """True if the Hub may not be contacted (``ZOO_OFFLINE`` or ``HF_HUB_OFFLINE``), as the
    environment says now."""
    if offline():
        return True
    return any(os.environ.get(var, "").strip().lower() in _TRUE
               for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def sync_hf_settings() -> None:
    """Make huggingface_hub follow ``HF_ENDPOINT`` and ``HF_HUB_OFFLINE`` as they are now.

    huggingface_hub reads both once, at import; a process that imported it before the
    user (or a test) set them would otherwise keep the old values: requests refused as
    "offline", or repo URLs parsed against the wrong endpoint. zoo reads the environment
    at each call, so it writes the current values back into huggingface_hub's constants.
    """
    try:
        from huggingface_hub import constants
    except ImportError:
        return
    constants.HF_HUB_OFFLINE = hf_offline()
    from zoo.loading.hubguard import guard_session

    guard_session()             # no ETag of the server's choosing becomes a path
    ep = (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")
    if ep != constants.ENDPOINT:
        constants.ENDPOINT = ep
        constants.HUGGINGFACE_CO_URL_TEMPLATE = ep + "/{repo_id}/resolve/{revision}/{filename}"


def parse_hf_hub(ref: str) -> tuple[str, str | None, str]:
    """``"org/repo@rev/sub/file.bin"`` -> ``("org/repo", "rev", "sub/file.bin")``."""
    parts = ref.strip().strip("/").split("/")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise WeightsError(f"hf-hub:{ref}: expected hf-hub:ORG/REPO[@REVISION][/FILE]")
    org, repo = parts[0], parts[1]
    rest = parts[2:]
    rev = None
    if "@" in repo:
        repo, _, rev = repo.partition("@")
    if "@" in org:
        raise WeightsError(f"hf-hub:{ref}: expected hf-hub:ORG/REPO[@REVISION][/FILE]")
    filename = "/".join(rest) or HF_DEFAULT_FILE
    return f"{org}/{repo}", rev or None, filename


def hub_file(repo: str, filenames: list[str] | tuple[str, ...], revision: str | None = None,
             *, what: str | None = None) -> Path:
    """The first of ``filenames`` that repo ``repo`` has, through huggingface_hub's cache.

    Offline (``HF_HUB_OFFLINE``/``ZOO_OFFLINE``) only the cache is looked at. The endpoint
    (``HF_ENDPOINT``) and cache (``HF_HUB_CACHE``/``HF_HOME``) are read now.

    Raises:
        WeightsError: one line naming the repo, revision, files tried and the cache folder.
    """
    what = what or f"hf-hub:{repo}"
    from zoo.loading.hubguard import check_in_cache

    sync_hf_settings()
    try:
        from huggingface_hub import hf_hub_download, try_to_load_from_cache
        from huggingface_hub.errors import (
            EntryNotFoundError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError:
        raise WeightsError(f"{what}: huggingface_hub is not installed; "
                           "pip install huggingface_hub") from None
    cache = hf_cache_dir()
    off = hf_offline()
    endpoint = os.environ.get("HF_ENDPOINT") or None
    rev = revision or "main"
    tried = " or ".join(filenames)
    where = cache / ("models--" + repo.replace("/", "--"))
    if off:
        # a pure cache lookup: hf_hub_download(local_files_only=True) still builds request
        # headers, which may contact the Hub when HF_HUB_OFFLINE was unset at import time
        for name in filenames:
            found = try_to_load_from_cache(repo, name, cache_dir=cache, revision=revision)
            if isinstance(found, str):
                return check_in_cache(found, cache, repo, what)
        var = "ZOO_OFFLINE=1" if offline() else "HF_HUB_OFFLINE=1"
        raise WeightsError(f"{what}: {tried} of repo {repo}@{rev} is not in the Hugging Face "
                           f"cache ({where}) and {var} forbids the network; fetch it once "
                           f"online ('hf download {repo} {filenames[0]}'), or point "
                           "HF_HUB_CACHE at a cache that holds it")
    not_cached = False
    for name in filenames:
        try:
            with quiet_hub_logs():
                return check_in_cache(hf_hub_download(
                    repo_id=repo, filename=name, revision=revision, cache_dir=cache,
                    endpoint=endpoint), cache, repo, what)
        except LocalEntryNotFoundError:
            # online, yet neither the Hub nor the cache had it: the Hub is unreachable
            # (huggingface_hub already retried); other candidates would fail the same way
            not_cached = True
            break
        except EntryNotFoundError:
            continue
        except RepositoryNotFoundError:
            raise WeightsError(f"{what}: the Hub has no repo '{repo}' (or it is private or "
                               "gated); check the name, or log in with 'hf auth login'"
                               ) from None
        except RevisionNotFoundError:
            raise WeightsError(f"{what}: repo '{repo}' has no revision '{rev}'; "
                               "check the @revision") from None
        except ZooError:
            raise
        except Exception as e:  # noqa: BLE001 - httpx/OS errors: all mean "could not fetch"
            if type(e).__name__ == "RemoteEntryNotFoundError":
                continue
            raise WeightsError(f"{what}: could not fetch {name} from {repo}@{rev} "
                               f"({one_line(e)}); check your network, or work offline with "
                               "HF_HUB_OFFLINE=1 and a cache that holds it (HF_HUB_CACHE)"
                               ) from None
    if not_cached:
        hub = endpoint or _hub_endpoint()
        raise WeightsError(f"{what}: could not reach the Hub ({hub}) for {tried} of {repo}@{rev}, "
                           f"and it is not in the cache ({where}); check your network or "
                           "HF_ENDPOINT, or copy a cache that holds it and set HF_HUB_CACHE")
    raise WeightsError(f"{what}: repo {repo}@{rev} has no file {tried}; name the file "
                       f"(hf-hub:{repo}/FILE)")


def _hub_endpoint() -> str:
    try:
        from huggingface_hub import constants

        return constants.ENDPOINT
    except ImportError:
        return "https://huggingface.co"


class quiet_hub_logs:
    """Silence huggingface_hub's warnings (retries, "no files modified"): zoo reports one
    line of its own instead."""

    def __enter__(self) -> None:
        import logging

        self.logger = logging.getLogger("huggingface_hub")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)


def _hf_hub(source: str, sha256: str | None, model: Any) -> Resolved:
    repo, rev, filename = parse_hf_hub(source.partition(":")[2])
    path = hub_file(repo, [filename], rev, what=source)
    return Resolved(path, sha256, labels=_config_labels(path, filename))


def _config_labels(path: Path, filename: str) -> list[str] | None:
    """Class names from a ``config.json`` already next to the file in the snapshot.

    Reads ``id2label`` (transformers) or ``label_names`` (timm); never fetches anything.
    """
    import json

    snapshot = path.parent
    for _ in filename.split("/")[1:]:
        snapshot = snapshot.parent
    try:
        cfg = json.loads((snapshot / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict):
        return None
    id2label = cfg.get("id2label")
    if isinstance(id2label, dict) and id2label:
        try:
            pairs = sorted((int(k), str(v)) for k, v in id2label.items())
        except (TypeError, ValueError):
            return None
        labels = [v for _, v in pairs]
        # transformers fills in LABEL_0, LABEL_1, ... when nobody named the classes
        if [i for i, _ in pairs] == list(range(len(pairs))) and \
                labels != [f"LABEL_{i}" for i in range(len(labels))]:
            return labels
    names = cfg.get("label_names")
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        return names
    return None


def timm_pretrained_cfg(name: str) -> dict[str, Any]:
    """timm's pretrained config of ``NAME[.TAG]`` as a dict (imports timm; no network).

    Raises:
        WeightsError: timm missing, or no pretrained weights by that name (with close names).
    """
    try:
        import timm
        from timm.models import get_pretrained_cfg
    except ImportError:
        raise WeightsError(f"timm:{name}: timm is not installed; pip install timm") from None
    try:
        cfg = get_pretrained_cfg(name)
    except RuntimeError:  # a known architecture with an unknown tag
        cfg = None
    if cfg is None:
        import difflib

        arch = name.partition(".")[0]
        pool = timm.list_pretrained(f"{arch}*") or timm.list_pretrained()
        close = difflib.get_close_matches(name, pool, n=3, cutoff=0.5) or pool[:3]
        hint = ("; did you mean " + ", ".join(f"timm:{c}" for c in close) + "?") if close else ""
        raise WeightsError(f"timm:{name}: timm has no pretrained weights by that name{hint}")
    return cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)


def _timm(source: str, sha256: str | None, model: Any) -> Resolved:
    name = source.partition(":")[2].strip()
    cfg = timm_pretrained_cfg(name)
    if cfg.get("custom_load"):
        raise WeightsError(f"{source}: these weights need timm's own loader (custom_load); "
                           "build the model with timm.create_model(..., pretrained=True)")
    hub_id, url, local = cfg.get("hf_hub_id"), cfg.get("url"), cfg.get("file")
    if hub_id:
        repo, _, rev = hub_id.partition("@")
        files = ([cfg["hf_hub_filename"]] if cfg.get("hf_hub_filename")
                 else [HF_DEFAULT_FILE, "pytorch_model.bin"])
        path = hub_file(repo, files, rev or None, what=source)
    elif url:
        path = _torch_hub_url(source, url, sha256)
    elif local:
        path = Path(local).expanduser()
    else:
        raise WeightsError(f"{source}: timm's config for it names no file, URL or Hub repo")
    return Resolved(path, sha256, labels=_timm_labels(cfg), convert=_timm_filter(model))


def _timm_labels(cfg: dict[str, Any]) -> list[str] | None:
    if cfg.get("label_descriptions"):
        return list(cfg["label_descriptions"])
    try:
        from timm.data import ImageNetInfo, infer_imagenet_subset

        subset = infer_imagenet_subset(cfg)
        return list(ImageNetInfo(subset).label_descriptions()) if subset else None
    except Exception:  # noqa: BLE001 - labels are a nicety; no labels beats no model
        return None


def _timm_filter(model: Any) -> Callable[[dict, Any], dict] | None:
    """The architecture's ``checkpoint_filter_fn`` (old checkpoints -> current keys)."""
    if model is None:
        return None
    import sys

    fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    return fn if callable(fn) else None


SCHEMES: dict[str, Callable[[str, str | None, Any], Resolved]] = {
    "file": _file,
    "package": _package,
    "https": _url,
    "http": _url,
    "torchvision": _torchvision,
    "timm": _timm,
    "hf-hub": _hf_hub,
}
