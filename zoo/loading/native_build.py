"""Build the model a folder holds, in whichever layout :mod:`zoo.loading.native` found.

zoo folders go through :func:`zoo.loading.build.load_dir` (only catalog builders are
called); transformers folders through the Auto class of their task
(``trust_remote_code=False``, local files only, every weight accounted for); timm folders
through ``timm.create_model`` with checked ``model_args`` and zoo's own weight reader, so
timm never opens a path the folder chose.
"""

from __future__ import annotations

import keyword
import os
from pathlib import Path
from typing import Any

from zoo.errors import WeightsError, ZooError
from zoo.loading.native import (
    INDEX_FILES,
    WEIGHT_FILES,
    Described,
    describe,
    files_in,
)

#: timm.create_model arguments that load or locate files, or change what gets built
#: into something other than the saved model: never taken from a repo
_TIMM_REFUSED = frozenset({
    "pretrained", "pretrained_cfg", "pretrained_cfg_overlay", "checkpoint_path",
    "cache_dir", "features_only", "scriptable", "exportable", "no_jit", "pretrained_strict",
    "model_name",
})


def load_directory(directory: str | os.PathLike[str], what: str | None = None,
                   described: Described | None = None):
    """Build the model a folder holds, in whichever layout, with its weights, in eval mode.

    zoo folders go through :func:`zoo.loading.build.load_dir` (only catalog builders are
    called); transformers folders through their Auto class (``trust_remote_code=False``,
    local files only); timm folders through ``timm.create_model`` plus zoo's weight reader.
    """
    d = Path(directory)
    info = described or describe(d, what)
    if info.layout in ("zoo", "zoo-legacy"):
        from zoo.loading import build

        try:
            model = build.load_dir(d)
        except WeightsError:
            if info.config.get("layout") != "transformers" or not (d / "config.json").is_file():
                raise
            # a model whose architecture came with its weights (a whole Hub repo in the
            # catalog) is described by its own config.json, not by the catalog's kwargs
            return _load_transformers(d, _as_transformers(d, info, what))
        _name_classes(model, info.spec.pretrained[info.tag].labels)
        if info.config.get("library") == "transformers" and \
                getattr(model, "tokenizer", None) is None and _has_tokenizer(d):
            # the tokenizer came with the weights (a whole Hub repo), not from a builder
            # argument: published beside them, it is attached the same way
            model.tokenizer = _tokenizer(d, what or str(d))
        return model
    if info.layout == "transformers":
        return _load_transformers(d, info)
    return _load_timm(d, info)


def _as_transformers(d: Path, info: Described, what: str | None) -> Described:
    """The transformers view of a zoo folder in transformers' layout, for its task."""
    from zoo.loading.native import AUTO_CLASSES, read_json

    config = read_json(d / "config.json", "config.json")
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        raise WeightsError(f"{what or d}: config.json is not a transformers config")
    task = info.spec.task_for(info.tag)
    return Described("transformers", info.spec, info.tag, what or info.label, config,
                     info.meta, AUTO_CLASSES.get(task, "AutoModel"))


def _name_classes(model: Any, labels: tuple[str, ...] | None) -> None:
    """Give a transformers model's config the class names (pipelines print them)."""
    cfg = getattr(model, "config", None)
    if labels and cfg is not None and hasattr(cfg, "id2label") \
            and getattr(cfg, "num_labels", None) == len(labels):
        cfg.id2label = dict(enumerate(labels))
        cfg.label2id = {v: k for k, v in cfg.id2label.items()}


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:300]}" if text else type(e).__name__


def _load_transformers(d: Path, info: Described):
    what = info.label
    try:
        import transformers
        from transformers import AutoConfig
        from transformers.models.auto.configuration_auto import CONFIG_MAPPING
    except ImportError:
        raise WeightsError(f"{what}: a transformers model; pip install transformers") from None
    model_type = info.config["model_type"]
    if model_type not in CONFIG_MAPPING:
        raise WeightsError(f"{what}: config.json names model_type '{model_type}', which "
                           f"transformers {transformers.__version__} does not know; the repo "
                           "may need its own code, which zoo never runs")
    if not any((d / f).is_file() for f in (*WEIGHT_FILES, *INDEX_FILES)):
        raise _no_weights(what, d)
    auto = getattr(transformers, info.auto_class or "AutoModel")
    quiet = _quiet_transformers()
    try:
        config = AutoConfig.from_pretrained(str(d), trust_remote_code=False,
                                            local_files_only=True)
        model, loading = auto.from_pretrained(str(d), config=config, trust_remote_code=False,
                                              local_files_only=True, output_loading_info=True)
    except ZooError:
        raise
    except Exception as e:  # noqa: BLE001 - transformers' own complaint, as one line
        raise WeightsError(f"{what}: transformers could not build {auto.__name__} from it "
                           f"({_one_line(e)})") from None
    finally:
        quiet()
    missing = list(loading.get("missing_keys") or [])
    mismatched = list(loading.get("mismatched_keys") or [])
    if missing or mismatched:
        few = ", ".join(str(k) for k in (missing + mismatched)[:3])
        raise WeightsError(f"{what}: its weights do not cover {auto.__name__} "
                           f"({len(missing)} missing, {len(mismatched)} of another shape: "
                           f"{few}); the repo's task or architectures is wrong")
    if _has_tokenizer(d):
        model.tokenizer = _tokenizer(d, what)
    model.eval()
    return model


def _has_tokenizer(d: Path) -> bool:
    return any((d / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json",
                                           "vocab.txt", "vocab.json", "spiece.model",
                                           "source.spm"))


def _tokenizer(d: Path, what: str):
    """The folder's tokenizer (AutoTokenizer, local files only, no remote code)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(d), trust_remote_code=False,
                                             local_files_only=True)
    except Exception as e:  # noqa: BLE001
        raise WeightsError(f"{what}: its tokenizer files do not load ({_one_line(e)})"
                           ) from None


def _no_weights(what: str, d: Path) -> WeightsError:
    found = ", ".join(files_in(d, deep=False, limit=8))
    return WeightsError(f"{what}: no weights (model.safetensors or pytorch_model.bin) beside "
                        f"config.json (found: {found})")


def _quiet_transformers():
    """Silence transformers' load report and progress bars; returns the undo function."""
    from transformers.utils import logging as tlog

    level = tlog.get_verbosity()
    tlog.set_verbosity_error()
    bars = tlog.is_progress_bar_enabled()
    tlog.disable_progress_bar()

    def undo() -> None:
        tlog.set_verbosity(level)
        if bars:
            tlog.enable_progress_bar()

    return undo


def timm_model_args(config: dict[str, Any], what: str) -> dict[str, Any]:
    """The ``model_args`` of a timm config that zoo passes on: identifiers as keys, JSON
    scalars (or lists of them) as values, none that loads files; else one line."""
    args = config.get("model_args") or {}
    if not isinstance(args, dict):
        raise WeightsError(f"{what}: config.json 'model_args' must be a table")
    for key, value in args.items():
        if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key) \
                or key.startswith("_") or key in _TIMM_REFUSED:
            raise WeightsError(f"{what}: config.json model_args '{key}' is not an argument "
                               "zoo passes to timm.create_model (it loads files or changes "
                               "what is built); remove it from the repo's config.json")
        items = value if isinstance(value, list) else [value]
        if not all(v is None or isinstance(v, bool | int | float | str) for v in items):
            raise WeightsError(f"{what}: config.json model_args '{key}' must be a number, "
                               "string, boolean or a list of them")
    return dict(args)


def _load_timm(d: Path, info: Described):
    from zoo.loading.weights import apply_state_dict, read_state_dict

    what = info.label
    try:
        import timm
    except ImportError:
        raise WeightsError(f"{what}: a timm model; pip install timm") from None
    config = info.config
    arch = config["architecture"]
    if not timm.is_model(arch):
        raise WeightsError(f"{what}: config.json names architecture '{arch}', which timm "
                           f"{timm.__version__} cannot build; upgrade timm")
    kwargs = timm_model_args(config, what)
    num_classes = config.get("num_classes", kwargs.get("num_classes"))
    if num_classes is not None:
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 0 \
                or kwargs.get("num_classes", num_classes) != num_classes:
            raise WeightsError(f"{what}: config.json num_classes must be one whole number "
                               "(the top level and model_args disagree, or it is not one)")
        kwargs["num_classes"] = num_classes
    weights = next((d / f for f in WEIGHT_FILES if (d / f).is_file()), None)
    if weights is None:
        raise _no_weights(what, d)
    try:
        model = timm.create_model(arch, pretrained=False, **kwargs)
    except Exception as e:  # noqa: BLE001
        raise WeightsError(f"{what}: timm could not build {arch} ({_one_line(e)})") from None
    state = read_state_dict(weights)
    try:
        apply_state_dict(model, state, origin=str(weights))
    except WeightsError:
        import sys

        # old checkpoints: the architecture's own key converter, as timm applies it
        fix = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
        if not callable(fix):
            raise
        apply_state_dict(model, fix(state, model), origin=str(weights))
    pcfg = config.get("pretrained_cfg")
    if isinstance(pcfg, dict):
        # what timm's own hf-hub loader records: preprocessing for timm.data helpers
        model.pretrained_cfg = {**getattr(model, "pretrained_cfg", {}), **pcfg}
    model.eval()
    return model
