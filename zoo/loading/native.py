"""Model folders in the layouts the Hub uses: zoo's own, transformers', timm's.

A folder (a Hub snapshot, a ``save_pretrained`` output, a ``zoo get --save`` directory) is
one of:

``zoo``
    ``zoo.json`` (what zoo publishes: builder, kwargs, labels, input, task, sha256s) beside
    the native files of the library behind the model (transformers' or timm's
    ``config.json``, or a PyTorchModelHubMixin-style ``config.json`` of builder kwargs).
``zoo-legacy``
    ``config.json`` with ``builder`` and ``kwargs`` (``zoo get --save``, ``zoo finetune``,
    and repos published before zoo.json; read for one more release).
``transformers``
    ``config.json`` with ``model_type`` (``save_pretrained``): built with the Auto class
    of the task the repo declares (README front matter ``pipeline_tag``) or its weights
    imply (``architectures``), never with ``trust_remote_code``.
``timm``
    ``config.json`` with ``architecture`` and ``pretrained_cfg`` (``save_for_hf``): built
    with ``timm.create_model`` and the weights read by zoo (safetensors, or
    ``torch.load(weights_only=True)``), so timm never opens a path the repo chose.

:func:`describe` reads JSON and YAML only (no torch): demos and ``zoo info`` refuse or
describe a folder fast. :func:`zoo.loading.native_build.load_directory` builds the model.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from zoo.errors import UsageError, WeightsError, ZooError
from zoo.loading.safe_read import (  # noqa: F401 - also native's names
    MAX_JSON_BYTES,
    read_json,
    safetensors_params,
)
from zoo.registry.spec import FrozenDict, InputSpec, ModelSpec, PretrainedSpec, freeze

ZOO_FILE = "zoo.json"
CONFIG_FILE = "config.json"
README = "README.md"
MAX_README_BYTES = 1 * 2**20

#: Hub pipeline_tag -> the transformers Auto class that builds its head
AUTO_CLASSES: dict[str, str] = {
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "fill-mask": "AutoModelForMaskedLM",
    "text-generation": "AutoModelForCausalLM",
    "translation": "AutoModelForSeq2SeqLM",
    "text2text-generation": "AutoModelForSeq2SeqLM",
    "summarization": "AutoModelForSeq2SeqLM",
    "question-answering": "AutoModelForQuestionAnswering",
    "image-classification": "AutoModelForImageClassification",
    "object-detection": "AutoModelForObjectDetection",
    "feature-extraction": "AutoModel",
    "sentence-similarity": "AutoModel",
}
#: class-name endings of ``architectures`` -> the task those weights were saved for
_ARCH_TASKS: tuple[tuple[str, str], ...] = (
    ("ForSequenceClassification", "text-classification"),
    ("ForTokenClassification", "token-classification"),
    ("ForMaskedLM", "fill-mask"),
    ("ForCausalLM", "text-generation"),
    ("LMHeadModel", "text-generation"),
    ("MTModel", "translation"),
    ("ForConditionalGeneration", "text2text-generation"),
    ("ForQuestionAnswering", "question-answering"),
    ("ForImageClassification", "image-classification"),
    ("ForObjectDetection", "object-detection"),
    ("Model", "feature-extraction"),
)
#: Hub pipeline tags that zoo calls by another name
_HUB_TASKS = {"unconditional-image-generation": "image-generation"}
#: files a transformers folder may need besides config.json and the weights (no code)
TRANSFORMERS_FILES = (
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
    "vocab.json", "merges.txt", "added_tokens.json", "spiece.model",
    "sentencepiece.bpe.model", "source.spm", "target.spm", "target_vocab.json",
    "preprocessor_config.json",
    "generation_config.json",
)
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
# -- reading data files safely -------------------------------------------------------------

def front_matter(directory: Path) -> dict[str, Any]:
    """The YAML header of ``README.md`` (the Hub's card metadata), or ``{}``.

    Parsed with ``yaml.safe_load`` (no tags, no objects); a missing, huge or malformed
    header is the same as none.
    """
    p = Path(directory) / README
    try:
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_README_BYTES:
            return {}
        text = p.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    if not text.startswith("---"):
        return {}
    head, sep, _ = text[3:].partition("\n---")
    if not sep:
        return {}
    try:
        import yaml

        data = yaml.safe_load(head)
    except Exception:  # noqa: BLE001 - a bad header is no header
        return {}
    return data if isinstance(data, dict) else {}


def files_in(directory: Path, *, limit: int = 5000, deep: bool = True) -> list[str]:
    """Repo-relative names of the files in a folder (at most ``limit``; ``deep=False``:
    the top level only, for messages about a folder that may be anything)."""
    d = Path(directory)
    out: list[str] = []
    for root, dirs, names in os.walk(d):
        dirs[:] = sorted(x for x in dirs if not x.startswith(".")) if deep else []
        rel = Path(root).relative_to(d)
        out += [(rel / n).as_posix() for n in sorted(names) if not n.startswith(".")]
        if len(out) >= limit:
            break
    return sorted(out[:limit])


# -- which layout --------------------------------------------------------------------------

def layout_of(config: Any, *, has_zoo_json: bool = False) -> str | None:
    """``"zoo"``, ``"zoo-legacy"``, ``"transformers"``, ``"timm"`` or None (unknown)."""
    if has_zoo_json:
        return "zoo"
    if not isinstance(config, dict):
        return None
    if "builder" in config and "kwargs" in config:
        return "zoo-legacy"
    if isinstance(config.get("model_type"), str):
        return "transformers"
    if isinstance(config.get("architecture"), str):
        return "timm"
    return None


def unknown_layout(what: str, config: Any, files: list[str], *,
                   local: bool = False) -> ZooError:
    """The one line for a folder zoo cannot read, saying what it found (a UsageError for
    a local folder the user named, a WeightsError for a Hub repo)."""
    shown = ", ".join(files[:8]) + (", ..." if len(files) > 8 else "") or "no files"
    if config is None:
        found = f"no {CONFIG_FILE} (it has: {shown})"
    elif not isinstance(config, dict):
        found = f"a {CONFIG_FILE} that holds a JSON {type(config).__name__}, not an object"
    else:
        keys = ", ".join(sorted(map(str, config))[:8]) or "none"
        found = (f"a {CONFIG_FILE} without 'model_type' (transformers), 'architecture' "
                 f"(timm) or 'builder' (zoo); its keys: {keys}")
    error = UsageError if local else WeightsError
    if config is None and local:
        return error(f"{what}: no {CONFIG_FILE}; not a zoo model directory (make one with "
                     f"'zoo get NAME --save DIR') nor a transformers or timm folder (it has: "
                     f"{shown})")
    return error(f"{what}: not a model zoo can read: found {found}. zoo reads what zoo "
                 "saves or publishes, and transformers' and timm's layouts")


def detect(directory: Path, what: str | None = None) -> tuple[str, dict[str, Any]]:
    """``(layout, the file that describes the model)`` of a folder, or one-line error."""
    d = Path(directory)
    what = what or str(d)
    if (d / ZOO_FILE).exists():
        config = read_json(d / ZOO_FILE, ZOO_FILE)
        if not isinstance(config, dict) or "builder" not in config or "kwargs" not in config:
            raise WeightsError(f"{what}: {ZOO_FILE} has no 'builder' and 'kwargs'; the repo "
                               "is damaged, publish it again")
        return "zoo", config
    config = read_json(d / CONFIG_FILE, CONFIG_FILE) if (d / CONFIG_FILE).exists() else None
    layout = layout_of(config)
    if layout is None:
        raise unknown_layout(what, config, files_in(d, deep=False, limit=50), local=True)
    return layout, config


# -- what a folder is (no torch) -----------------------------------------------------------

def hub_task(tag: Any) -> str | None:
    """A Hub ``pipeline_tag`` as a zoo task name."""
    return _HUB_TASKS.get(tag, tag) if isinstance(tag, str) and tag else None


def arch_task(config: dict[str, Any]) -> str | None:
    """The task a transformers config's ``architectures`` were saved for."""
    archs = config.get("architectures")
    if not isinstance(archs, list) or not archs or not isinstance(archs[0], str):
        return None
    return next((task for end, task in _ARCH_TASKS if archs[0].endswith(end)), None)


def transformers_task(config: dict[str, Any], meta: dict[str, Any]) -> tuple[str, str]:
    """``(task, Auto class name)`` for a transformers folder.

    The weights decide the head: the card's ``pipeline_tag`` names the task when its Auto
    class is the one ``architectures`` implies (``sentence-similarity`` on a ``BertModel``),
    else the architectures' task wins (a head the weights do not have would be random).
    """
    declared = hub_task(meta.get("pipeline_tag"))
    saved = arch_task(config)
    if declared in AUTO_CLASSES and (saved is None
                                     or AUTO_CLASSES[declared] == AUTO_CLASSES[saved]):
        return declared, AUTO_CLASSES[declared]
    if saved is not None:
        return saved, AUTO_CLASSES[saved]
    return declared or "feature-extraction", "AutoModel"


def config_labels(config: dict[str, Any]) -> tuple[str, ...] | None:
    """Class names from ``id2label`` (transformers) or ``label_names`` (timm), if named.

    transformers fills in ``LABEL_0, LABEL_1, ...`` when nobody named the classes: those
    are no names.
    """
    id2label = config.get("id2label")
    if isinstance(id2label, dict) and id2label:
        try:
            pairs = sorted((int(k), str(v)) for k, v in id2label.items())
        except (TypeError, ValueError):
            pairs = []
        labels = [v for _, v in pairs]
        if pairs and [i for i, _ in pairs] == list(range(len(pairs))) and \
                labels != [f"LABEL_{i}" for i in range(len(labels))]:
            return tuple(labels)
    names = config.get("label_names")
    pcfg = config.get("pretrained_cfg")
    if names is None and isinstance(pcfg, dict):
        names = pcfg.get("label_names")
    if isinstance(names, list) and names and all(isinstance(n, str) for n in names):
        desc = config.get("label_descriptions")
        if isinstance(desc, dict) and all(isinstance(desc.get(n), str) for n in names):
            return tuple(desc[n] for n in names)
        return tuple(names)
    return None


def imagenet_labels() -> tuple[str, ...] | None:
    """ImageNet-1k class names from the lists timm ships (read as files: no import)."""
    from importlib.util import find_spec

    try:
        spec = find_spec("timm")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    info = Path(spec.submodule_search_locations[0]) / "data" / "_info"
    try:
        synsets = (info / "imagenet_synsets.txt").read_text().split()
        lemmas = dict(line.split("\t", 1) for line in
                      (info / "imagenet_synset_to_lemma.txt").read_text().splitlines()
                      if "\t" in line)
    except OSError:
        return None
    if len(synsets) != 1000:
        return None
    return tuple(lemmas.get(s, s).split(",")[0].strip() for s in synsets)


def _image_input(pre: dict[str, Any]) -> InputSpec | None:
    """An image InputSpec from a transformers ``preprocessor_config.json``."""
    size = pre.get("crop_size") if pre.get("do_center_crop") else None
    size = size or pre.get("size")
    if isinstance(size, dict):
        h = size.get("height") or size.get("shortest_edge")
        w = size.get("width") or size.get("shortest_edge")
    elif isinstance(size, int):
        h = w = size
    else:
        return None
    if not isinstance(h, int) or not isinstance(w, int) or not 0 < h <= 4096 or not 0 < w <= 4096:
        return None
    mean, std = pre.get("image_mean"), pre.get("image_std")
    ok = all(isinstance(v, list) and len(v) == 3 and all(isinstance(x, int | float) for x in v)
             for v in (mean, std))
    interp = {2: "bilinear", 3: "bicubic", 0: "nearest"}.get(pre.get("resample"))
    return InputSpec(size=(3, h, w), mean=tuple(mean) if ok else None,
                     std=tuple(std) if ok else None, interpolation=interp)


def _text_input(config: dict[str, Any]) -> InputSpec:
    longest = config.get("max_position_embeddings") or config.get("n_positions") or 128
    return InputSpec(size=(min(int(longest) if isinstance(longest, int) else 128, 128),),
                     dtype="int64")


def _timm_input(pcfg: dict[str, Any]) -> InputSpec | None:
    size = pcfg.get("input_size")
    if not (isinstance(size, list) and len(size) == 3 and all(isinstance(x, int) for x in size)):
        return None
    mean, std = pcfg.get("mean"), pcfg.get("std")
    ok = all(isinstance(v, list) and all(isinstance(x, int | float) for x in v)
             for v in (mean, std))
    interp = pcfg.get("interpolation") if isinstance(pcfg.get("interpolation"), str) else None
    return InputSpec(size=tuple(size), mean=tuple(mean) if ok else None,
                     std=tuple(std) if ok else None, interpolation=interp)


@dataclass(frozen=True)
class Described:
    """What a folder holds, read from its JSON and card (no torch)."""

    layout: str                     # zoo, zoo-legacy, transformers, timm
    spec: ModelSpec                 # the catalog's (zoo folders naming a known model) or made up
    tag: str                        # the one tag holding the folder's labels, input, kwargs
    label: str                      # the model's own name where it has one, else ``what``
    config: dict[str, Any]
    meta: dict[str, Any]            # the README front matter
    auto_class: str | None = None   # transformers: the Auto class it is built with


def describe(directory: str | os.PathLike[str], what: str | None = None) -> Described:
    """Read what a model folder is: its layout, task, labels and input spec.

    Raises:
        UsageError / WeightsError: no such folder, unreadable files, or a layout zoo does
        not read (one line saying what was found).
    """
    d = Path(directory)
    what = what or str(d)
    if not d.is_dir():
        raise UsageError(f"{d}: no such directory; give NAME[.TAG] or a directory made by "
                         "'zoo get NAME --save DIR'")
    layout, config = detect(d, what)
    meta = front_matter(d)
    if layout in ("zoo", "zoo-legacy"):
        spec, tag, label = _zoo_spec(d, config, what)
        return Described(layout, spec, tag, label, config, meta)
    if layout == "transformers":
        return _transformers_described(d, config, meta, what)
    return _timm_described(d, config, meta, what)


def _zoo_spec(d: Path, config: dict[str, Any], what: str) -> tuple[ModelSpec, str, str]:
    """The spec of a zoo folder: the catalog's (when it names a known model) with one
    synthetic tag holding the folder's own labels, input and kwargs.

    Every value is data from the folder: labels and input are checked as
    :func:`zoo.loading.build.load_dir` checks them, names and tasks must be plain words,
    and a model no installed catalog declares is only described (it cannot be built).
    """
    from zoo.loading.trust import DAMAGED, saved_input, saved_labels
    from zoo.registry import default_registry
    from zoo.registry.spec import NAME_RE, TAG_RE

    reg = default_registry()
    where = str(d / (ZOO_FILE if (d / ZOO_FILE).exists() else CONFIG_FILE))
    raw_name, raw_tag = config.get("name"), config.get("tag")
    tag = raw_tag if isinstance(raw_tag, str) and TAG_RE.match(raw_tag) else "saved"
    inp = saved_input(config, where)
    labels = saved_labels(config, where)
    labels = tuple(labels) if labels else None
    task = _word(config.get("task"))
    demo = _word(config.get("demo"))
    if task == "feature-extraction" and labels:
        task = "text-classification"      # an encoder with class labels is a classifier
    weights = config.get("weights")
    weights = weights if isinstance(weights, str) else WEIGHT_FILES[0]
    sha = config.get("sha256")
    license_ = config.get("license")            # data: quoted or validated where written
    license_ = license_ if isinstance(license_, str) else None
    kwargs = config.get("kwargs") if isinstance(config.get("kwargs"), dict) else {}
    pre = PretrainedSpec(
        tag=tag, source=f"file:{d / weights}", sha256=sha if isinstance(sha, str) else None,
        kwargs=freeze(kwargs), labels=labels, input=inp, license=license_, task=task,
        demo=demo)
    if raw_tag is not None and not isinstance(raw_tag, str):
        raise UsageError(f"{where}: 'tag' must be a string, got {type(raw_tag).__name__}; "
                         f"{DAMAGED}")
    if isinstance(raw_name, str) and raw_name in reg:
        base = reg.spec(raw_name)
        spec = replace(base, pretrained=FrozenDict({tag: pre}), input=inp or base.input)
        name = base.name
    else:
        if not (demo or task):
            raise UsageError(f"{where}: names no task or demo; the directory is damaged or "
                             "was made by an old zoo")
        name = raw_name.lower() if isinstance(raw_name, str) and NAME_RE.match(
            raw_name.lower()) else "unknown"
        builder = config.get("builder")
        plugin = config.get("plugin")
        spec = ModelSpec(name=name, family=_word(config.get("family")) or "unknown",
                         task=task or demo, demo=demo,
                         builder=builder if isinstance(builder, str) else "<unknown>",
                         kwargs=freeze(kwargs), input=inp, license=license_,
                         pretrained=FrozenDict({tag: pre}),
                         plugin=plugin if isinstance(plugin, str) else None)
    # the model's own name reads better in titles than a cache path
    label = f"{name}.{raw_tag}" if name != "unknown" and tag == raw_tag else what
    return spec, tag, label


def _word(value: object) -> str | None:
    """A task, demo or family name from a config: a lowercase word, else ``None``."""
    from zoo.registry.spec import TAG_RE

    return value if isinstance(value, str) and TAG_RE.match(value) else None


def _input_spec(data: Any) -> InputSpec | None:
    if not isinstance(data, dict) or not data.get("size"):
        return None
    fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()
              if k in InputSpec.__dataclass_fields__}
    try:
        return InputSpec(**fields)
    except TypeError:
        return None


def _license(meta: dict[str, Any]) -> str | None:
    lic = meta.get("license")
    return lic if isinstance(lic, str) else None


def _transformers_described(d: Path, config: dict[str, Any], meta: dict[str, Any],
                            what: str) -> Described:
    task, auto = transformers_task(config, meta)
    labels = config_labels(config)
    pre_cfg = read_json(d / "preprocessor_config.json", "preprocessor_config.json") \
        if (d / "preprocessor_config.json").is_file() else None
    inp = _image_input(pre_cfg) if isinstance(pre_cfg, dict) else None
    if inp is None and not task.startswith(("image", "object")):
        inp = _text_input(config)
    kwargs = {k: config[k] for k in ("vocab_size",) if isinstance(config.get(k), int)}
    tag = "hub"
    pre = PretrainedSpec(tag=tag, source=f"file:{d}", labels=labels, input=inp,
                         license=_license(meta), task=task, kwargs=freeze(kwargs))
    spec = ModelSpec(name=what.lower(), family="transformer", task=task,
                     builder=f"transformers:{auto}.from_pretrained", kwargs=freeze(kwargs),
                     input=inp, license=_license(meta), tags=("transformers",),
                     description=f"{config.get('architectures', [auto])[0]} "
                                 f"(transformers, model_type {config['model_type']})",
                     pretrained=FrozenDict({tag: pre}), origin=str(d))
    return Described("transformers", spec, tag, what, config, meta, auto)


def _timm_described(d: Path, config: dict[str, Any], meta: dict[str, Any],
                    what: str) -> Described:
    pcfg = config.get("pretrained_cfg") if isinstance(config.get("pretrained_cfg"), dict) else {}
    labels = config_labels(config)
    num_classes = config.get("num_classes", pcfg.get("num_classes"))
    if labels is None and num_classes == 1000:
        labels = imagenet_labels()
    inp = _timm_input(pcfg)
    task = hub_task(meta.get("pipeline_tag")) or "image-classification"
    tag = "hub"
    pre = PretrainedSpec(tag=tag, source=f"file:{d}", labels=labels, input=inp,
                         license=_license(meta) or pcfg.get("license"), task=task)
    arch = config["architecture"]
    vit_like = arch.startswith(("vit", "deit", "beit", "swin", "eva"))
    spec = ModelSpec(name=what.lower(), family="transformer" if vit_like else "cnn", task=task,
                     builder="timm:create_model", kwargs=freeze({"model_name": arch}),
                     input=inp, license=pre.license, tags=("timm",),
                     description=f"{arch} (timm)", pretrained=FrozenDict({tag: pre}),
                     origin=str(d))
    return Described("timm", spec, tag, what, config, meta)
