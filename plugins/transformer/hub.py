"""Whole transformers repos from the Hub as catalog weights: ``source = "hf-hub:ORG/REPO[@REV]"``.

A catalog tag such as ``bert_base.uncased`` names the real repo (google-bert/bert-base-
uncased). Loading it fetches, through huggingface_hub's cache, exactly the files
transformers reads for the model class the catalog builds: ``config.json``, the weights
(``model.safetensors``, else ``pytorch_model.bin`` read with ``weights_only=True``), the
tokenizer's files, ``generation_config.json`` and ``preprocessor_config.json``. They are
then loaded by the library's own loader, ``CatalogClass.from_pretrained`` on a folder
holding only those files, so the model equals what plain transformers gives for the same
repo. Never ``trust_remote_code``: the class is the catalog's, the repo only gives values.

The loaded model is refused (one :class:`~zoo.errors.WeightsError` line, nothing built) when
the repo's ``model_type`` is not the catalog class's, or when the repo lacks weights the
class needs (transformers would silently initialise them at random). It comes back in
eval mode with the repo's tokenizer as ``model.tokenizer``, its image processor as
``model.image_processor`` when the repo has one, and ``id2label`` as ``model.zoo_labels``.

Offline (``HF_HUB_OFFLINE=1``/``ZOO_OFFLINE=1``) the files come from the cache only; online
the repo's file list is read first, at the commit ``config.json`` resolved to, so every
file comes from that one commit.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from zoo.errors import WeightsError

#: Files a transformers model, tokenizer or processor reads, besides the weights.
SIDE_FILES = (
    "config.json", "generation_config.json", "preprocessor_config.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "vocab.txt", "vocab.json", "merges.txt", "source.spm", "target.spm", "target_vocab.json",
    "spiece.model", "sentencepiece.bpe.model",
)
#: Weight files, in order of preference (safetensors needs no unpickling at all).
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
TOKENIZER_FILES = frozenset(SIDE_FILES[3:])


def whole_repo(source: str) -> tuple[str, str | None] | None:
    """``("ORG/REPO", REV)`` when ``source`` names a whole Hub repo, else ``None``.

    ``hf-hub:ORG/REPO/FILE`` names one weights file, which zoo's generic loader reads.
    """
    scheme, _, ref = source.partition(":")
    if scheme.lower() != "hf-hub":
        return None
    parts = ref.strip().strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        return None
    repo, _, rev = parts[1].partition("@")
    return f"{parts[0]}/{repo}", rev or None


def fetch_repo(repo: str, revision: str | None, *, what: str) -> tuple[Path, list[str]]:
    """Fetch what a transformers model needs from ``repo``; return the snapshot and the files.

    Raises:
        WeightsError: unreachable and not cached, no such repo or revision, no weights
            file; one line naming the repo and what to do.
    """
    from zoo.loading.sources import hf_offline, hub_file

    config = hub_file(repo, ["config.json"], revision, what=what)
    snap, commit = config.parent, config.parent.name       # snapshots/<commit>/config.json
    offline = hf_offline()
    listed = _cached_files(snap) if offline else _listed_files(repo, commit, what=what)
    files = ["config.json"]
    for name in SIDE_FILES[1:]:
        if name in listed:
            hub_file(repo, [name], commit, what=what)
            files.append(name)
    weights = [f for f in WEIGHT_FILES if f in listed]
    if not weights and not offline:
        raise WeightsError(f"{what}: repo {repo} has no {' or '.join(WEIGHT_FILES)}; zoo reads "
                           "PyTorch weights only (no TensorFlow, Flax or sharded checkpoints)")
    # offline and not cached, hub_file says so, naming the cache and what to do
    files.append(hub_file(repo, weights[:1] or list(WEIGHT_FILES), commit, what=what).name)
    return snap, files


def _cached_files(snap: Path) -> set[str]:
    try:
        return {p.name for p in snap.iterdir()}
    except OSError:
        return set()


def _listed_files(repo: str, commit: str, *, what: str) -> set[str]:
    from huggingface_hub import HfApi

    from zoo.loading.sources import quiet_hub_logs, sync_hf_settings

    sync_hf_settings()
    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None)
    try:
        with quiet_hub_logs():
            return set(api.list_repo_files(repo, revision=commit))
    except Exception as e:  # noqa: BLE001 - httpx/Hub errors: all mean "could not list"
        text = " ".join(str(e).split())[:200]
        raise WeightsError(f"{what}: could not list the files of {repo}@{commit[:12]} "
                           f"({type(e).__name__}: {text}); check your network, or work "
                           "offline with HF_HUB_OFFLINE=1 and a cache that holds the repo"
                           ) from None


def _view(snap: Path, files: list[str]) -> tempfile.TemporaryDirectory:
    """A temporary folder of links to exactly ``files``: transformers reads nothing else
    (an ``adapter_config.json`` or custom code that a fuller download left in the same
    snapshot stays out of it)."""
    view = tempfile.TemporaryDirectory(prefix="zoo-hub-")
    for name in files:
        target = (snap / name).resolve()
        if not target.is_file():
            view.cleanup()
            raise WeightsError(f"{snap / name}: not a regular file in the Hugging Face cache; "
                               "delete the repo from the cache and download it again")
        os.symlink(target, Path(view.name) / name)
    return view


class _quiet_transformers:
    """transformers logs every unused checkpoint key (BERT's next-sentence head); zoo checks
    what matters itself and says it in one line."""

    def __enter__(self) -> None:
        self.logger = logging.getLogger("transformers")
        self.level = self.logger.level
        self.logger.setLevel(logging.ERROR)

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)


def load_repo(model: Any, source: str) -> Any:
    """Load the whole Hub repo ``source`` as ``type(model)``; return the new model.

    ``model`` is the catalog's build (its weights may be uninitialised: see
    :func:`zoo.loading.build.pending_source`); only its class and ``model_type`` are used.

    Raises:
        WeightsError: see the module docstring; one line.
    """
    ref = whole_repo(source)
    if ref is None:
        raise WeightsError(f"{source}: expected hf-hub:ORG/REPO[@REVISION]")
    repo, rev = ref
    snap, files = fetch_repo(repo, rev, what=source)
    cls = type(model)
    want = getattr(getattr(model, "config", None), "model_type", None)
    got = _model_type(snap / "config.json", source)
    if want and got != want:
        raise WeightsError(f"{source}: the repo holds a '{got}' model, not the '{want}' that "
                           f"{cls.__name__} needs; check the catalog's source")
    with _view(snap, files) as view, _quiet_transformers():
        try:
            loaded, info = cls.from_pretrained(view, local_files_only=True, weights_only=True,
                                               trust_remote_code=False,
                                               output_loading_info=True)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
            text = " ".join(str(e).split())[:300]
            raise WeightsError(f"{source}: transformers could not load {cls.__name__} from "
                               f"{repo} ({type(e).__name__}: {text})") from None
        missing = sorted(info.get("missing_keys") or ())
        mismatched = sorted(str(k[0] if isinstance(k, tuple) else k)
                            for k in info.get("mismatched_keys") or ())
        if missing or mismatched:
            bad = (missing + mismatched)[:3]
            raise WeightsError(f"{source}: {repo} lacks or mis-sizes weights {cls.__name__} "
                               f"needs ({', '.join(bad)}{', ...' if len(missing) > 3 else ''}); "
                               "the catalog's architecture does not fit this repo")
        if TOKENIZER_FILES & set(files):
            loaded.tokenizer = _load(view, "AutoTokenizer", source)
        if "preprocessor_config.json" in files:
            loaded.image_processor = _load(view, "AutoImageProcessor", source)
    # what from_pretrained("ORG/REPO") would say, not the deleted temporary folder
    loaded.config._name_or_path = repo
    labels = _labels(loaded.config)
    if labels:
        loaded.zoo_labels = labels
    loaded.eval()
    return loaded


def _model_type(config: Path, source: str) -> str | None:
    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError) as e:
        raise WeightsError(f"{source}: config.json is unreadable ({e}); delete the repo from "
                           "the Hugging Face cache and download it again") from None
    value = data.get("model_type") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def _load(folder: str, auto: str, source: str):
    import warnings

    import transformers

    try:
        with warnings.catch_warnings():
            # MarianTokenizer's advice on every load; without sacremoses it skips only
            # Moses punctuation normalisation
            warnings.filterwarnings("ignore", message="Recommended: pip install sacremoses")
            return getattr(transformers, auto).from_pretrained(folder, local_files_only=True,
                                                               trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError, ImportError) as e:
        text = " ".join(str(e).split())[:300]
        raise WeightsError(f"{source}: its {auto.removeprefix('Auto')} files do not load "
                           f"({type(e).__name__}: {text})") from None


def _labels(config: Any) -> list[str] | None:
    """``id2label`` in index order, unless transformers made the names up (LABEL_0, ...)."""
    id2label = getattr(config, "id2label", None) or {}
    try:
        pairs = sorted((int(k), str(v)) for k, v in id2label.items())
    except (TypeError, ValueError):
        return None
    names = [v for _, v in pairs]
    if not names or [i for i, _ in pairs] != list(range(len(names))) \
            or names == [f"LABEL_{i}" for i in range(len(names))]:
        return None
    return names


def construct(cls: Any, config: Any) -> Any:
    """``cls(config)``, without random initialisation when the weights being loaded next
    replace the model wholesale (a whole-repo ``hf-hub:`` source; see
    :func:`zoo.loading.build.pending_source`). Builders of transformers models call this.

    Tied weights (GPT-2's and BERT's output layer is the input embedding) are tied either
    way: transformers ties them while initialising, so a skeleton would count them twice.
    """
    from zoo.loading.build import pending_source

    source = pending_source()
    if source is None or whole_repo(source) is None:
        return cls(config)
    from transformers.initialization import no_init_weights

    with no_init_weights():
        model = cls(config)
    model.tie_weights()
    return model
