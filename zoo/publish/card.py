"""The README.md model card of a published zoo model, made with huggingface_hub's ModelCard.

The YAML header (``ModelCardData``) carries what the Hub indexes: ``library_name: zoo``,
tags, licence, ``base_model`` when the weights derive from a Hub repo, datasets, metric
names and ``model-index`` results (from the catalog's tag or a fine-tune run). The body
says what the model is, its input and labels, the paper, and how to load it with zoo or
with plain torch + safetensors.
"""

from __future__ import annotations

import json
from typing import Any

from zoo.version import DISTRIBUTION

# zoo task -> the Hub's pipeline_tag (tasks the Hub has no tag for are left out)
PIPELINE_TAGS = {
    "image-classification": "image-classification",
    "text-classification": "text-classification",
    "token-classification": "token-classification",
    "feature-extraction": "feature-extraction",
    "sentence-similarity": "sentence-similarity",
    "text-generation": "text-generation",
    "translation": "translation",
    "text2text-generation": "text2text-generation",
    "object-detection": "object-detection",
    "image-to-image": "image-to-image",
    "image-generation": "unconditional-image-generation",
    "unconditional-image-generation": "unconditional-image-generation",
    "node-classification": "graph-ml",
    "graph-classification": "graph-ml",
}


def base_model_of(source: str | None) -> str | None:
    """The Hub repo a pretrained source derives from, if it names one.

    ``hf-hub:ORG/NAME[@REV][/FILE]`` -> ``ORG/NAME``; ``timm:NAME.TAG`` -> ``timm/NAME.TAG``
    (timm's own naming on the Hub). Other schemes have no Hub repo.
    """
    if not source:
        return None
    scheme, _, rest = source.partition(":")
    if scheme == "hf-hub":
        parts = rest.split("@")[0].split("/")
        return "/".join(parts[:2]) if len(parts) >= 2 else None
    if scheme == "timm" and "." in rest:
        return f"timm/{rest}"
    return None


def param_count(weights: Any) -> int | None:
    """Number of values in a safetensors file, read from its header (no torch); ``None``
    for a file that is not one (a pickle's first bytes are no header length to trust)."""
    import os
    import struct

    try:
        size = os.path.getsize(weights)
        with open(weights, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            if n > min(size - 8, 100 << 20):
                return None
            header = json.loads(fh.read(n))
    except (OSError, ValueError, struct.error, RecursionError):
        return None
    if not isinstance(header, dict):
        return None
    total = 0
    for key, meta in header.items():
        if key == "__metadata__":
            continue
        shape = meta.get("shape", []) if isinstance(meta, dict) else None
        if not isinstance(shape, list) or not all(
                isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            return None
        count = 1
        for d in shape:
            count *= d
        total += count
    return total


def make_card(info: dict[str, Any]):
    """A ``huggingface_hub.ModelCard`` from what :mod:`zoo.publish` gathered.

    ``info`` keys: repo, title, config, description, paper, paper_url, tags, license,
    dataset, metrics, base_model, base_zoo, technique, params, plugin_distribution, files.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    cfg = info["config"]
    task = cfg.get("task") or "other"
    metrics = {k: v for k, v in (info.get("metrics") or {}).items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    dataset = info.get("dataset")
    results = [EvalResult(task_type=task, dataset_type=dataset, dataset_name=dataset,
                          metric_type=k, metric_value=v) for k, v in metrics.items()] \
        if dataset and metrics else None
    tags = ["zoo", "pytorch", "safetensors"]
    for t in [cfg.get("family"), task, *(info.get("tags") or [])]:
        if t and t not in tags:
            tags.append(str(t))
    data = ModelCardData(
        library_name="zoo",
        model_name=info["title"],
        license=info.get("license") or None,
        tags=tags,
        pipeline_tag=PIPELINE_TAGS.get(task),
        base_model=info.get("base_model") or None,
        datasets=[dataset] if dataset else None,
        metrics=sorted(metrics) or None,
        eval_results=results,
    )
    body = _body(info, metrics)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def _body(info: dict[str, Any], metrics: dict[str, float]) -> str:
    cfg = info["config"]
    repo = info["repo"]
    rev = info.get("revision")
    ref = f"{repo}@{rev}" if rev else repo
    lines = [f"# {info['title']}", ""]
    if info.get("description"):
        lines += [info["description"], ""]
    family = cfg.get("family") or "?"
    lines += [f"A {family} model for {cfg.get('task') or 'an unspecified task'}, published "
              f"with zoo {cfg.get('zoo_version', '')}.".replace(" .", "."), ""]
    lines += ["## Model", ""]
    lines.append(f"- Architecture: `{cfg['builder']}` with "
                 f"`{json.dumps(cfg.get('kwargs') or {}, sort_keys=True)}`")
    if info.get("params"):
        lines.append(f"- Parameters: {info['params']:,}")
    inp = cfg.get("input")
    if inp:
        lines.append(f"- Input: {inp.get('dtype', 'float32')} of size {inp.get('size')}"
                     + (f", normalised with mean {inp['mean']} and std {inp['std']}"
                        if inp.get("mean") and inp.get("std") else ""))
    labels = cfg.get("labels")
    if labels:
        shown = ", ".join(map(str, labels[:20])) + (", ..." if len(labels) > 20 else "")
        lines.append(f"- Labels ({len(labels)}, in output order): {shown}")
    if cfg.get("name"):
        lines.append(f"- zoo catalog entry: `{cfg['name']}"
                     + (f".{cfg['tag']}`" if cfg.get("tag") else "`"))
    if info.get("base_zoo"):
        lines.append(f"- Fine-tuned from `{info['base_zoo']}`"
                     + (f" ({info['technique']})" if info.get("technique") else ""))
    if info.get("paper") or info.get("paper_url"):
        paper = info.get("paper") or info["paper_url"]
        lines.append(f"- Paper: [{paper}]({info['paper_url']})" if info.get("paper_url")
                     else f"- Paper: {paper}")
    dist = cfg.get("plugin_distribution")
    if dist and dist not in ("zoo", DISTRIBUTION):   # "zoo": saved before the rename
        lines.append(f"- Defined by the zoo plugin `{cfg.get('plugin')}`: "
                     f"`pip install {dist}` before loading")
    lines.append("")
    if metrics:
        lines += ["## Evaluation", ""]
        if info.get("dataset"):
            lines += [f"On {info['dataset']}:", ""]
        lines += ["| metric | value |", "|---|---|"]
        lines += [f"| {k} | {v:g} |" for k, v in metrics.items()]
        lines.append("")
    lines += ["## Usage", "", "With zoo (rebuilds the architecture from `config.json`, checks "
              "the weights' sha256):", "", "```python", "import zoo", "",
              f'model = zoo.get("hf-hub:{ref}")', "```", "",
              f"or on the command line: `zoo get hf-hub:{ref}`.", "",
              "With plain PyTorch and safetensors:", "", "```python"]
    lines += plain_torch_snippet(repo, cfg, revision=rev)
    lines += ["```", ""]
    files = info.get("files") or {}
    if files:
        lines += ["## Files", "", "- `model.safetensors`: the weights "
                  f"(sha256 `{cfg.get('sha256')}`)",
                  "- `config.json`: builder, arguments, labels, input and provenance"]
        lines += [f"- `{path}`: passed to the builder as `{key}`" for key, path in files.items()]
        lines.append("")
    return "\n".join(lines)


def plain_torch_snippet(repo: str, cfg: dict[str, Any], *,
                        revision: str | None = None) -> list[str]:
    """Lines of Python that load the repo with torch + safetensors (+ the builder's module)."""
    module, _, fn = str(cfg["builder"]).partition(":")
    files = cfg.get("files") or {}
    args = [f"{k}=os.path.join(d, {files[k]!r})" if k in files else f"{k}={v!r}"
            for k, v in (cfg.get("kwargs") or {}).items()]
    return ["import os", "",
            "from huggingface_hub import snapshot_download",
            "from safetensors.torch import load_file",
            f"from {module} import {fn.split('.')[0]}  # the builder named in config.json", "",
            f"d = snapshot_download({repo!r}"
            + (f", revision={revision!r})" if revision else ")"),
            f"model = {fn}({', '.join(args)})",
            f"state = load_file(os.path.join(d, {cfg.get('weights') or 'model.safetensors'!r}))",
            "model.load_state_dict(state, strict=False)  # tied weights are stored once",
            "model.eval()"]
