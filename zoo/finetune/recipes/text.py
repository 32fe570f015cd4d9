"""Text recipes: generation (lines, or prompt/response pairs: SFT), translation, tagging.

Data files are ``.jsonl`` (one JSON object per line), ``.csv`` or, for generation,
``.txt`` (one text per line):

- ``text-generation``: a ``prompt`` and a ``response`` column (SFT: the loss covers the
  response only), or one ``text`` column / ``.txt`` lines (the loss covers every token).
- ``translation``: a ``source`` and a ``target`` column.
- ``token-classification``: ``tokens`` and ``tags`` (lists of equal length) per line.

``--text-column`` / ``--label-column`` name other columns. A model without a vocabulary
(an architecture) gets a character-level one learned from the training data, saved as
``OUT/vocab.json`` next to the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from zoo.errors import UsageError
from zoo.finetune.recipes.base import DataOptions, Recipe

IGNORE = -100


def _val_indices(n: int, fraction: float) -> tuple[list[int], list[int]]:
    """A fixed (seed 0) split of ``n`` rows: ``(train, val)`` indices, sorted."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0)).tolist()
    k = max(1, int(round(n * fraction))) if n > 1 else 0
    return sorted(perm[k:]), sorted(perm[:k])


def _split(rows: list, val_rows: list | None, options: DataOptions) -> tuple[list[int], list]:
    """Training row indices and validation rows: ``val_rows`` (from --val-data) when
    given, else a fixed held-out fraction of ``rows``; cut to --limit and --val-limit."""
    if val_rows is None:
        train_idx, val_idx = _val_indices(len(rows), options.val_fraction)
        val_rows = [rows[i] for i in val_idx]
    else:
        train_idx = list(range(len(rows)))
    if options.limit is not None:
        train_idx = train_idx[: options.limit]
    if options.val_limit is not None:
        val_rows = val_rows[: options.val_limit]
    return train_idx, val_rows


def _rows(path: Any) -> list[dict[str, Any]]:
    """The rows of a .jsonl/.csv file as dicts; a .txt file gives ``{"text": line}``."""
    import csv

    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: no such file; give a .jsonl, .csv or .txt file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{p}: is not UTF-8 text; save it as UTF-8") from None
    suffix = p.suffix.lower()
    if suffix == ".txt":
        return [{"text": ln} for ln in text.splitlines() if ln.strip()]
    if suffix in (".jsonl", ".json"):
        rows = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    row = None
                if not isinstance(row, dict):
                    raise UsageError(f"{p}:{n}: not a JSON object; a .jsonl file has one "
                                     "object per line")
                rows.append(row)
        return rows
    if suffix in (".csv", ".tsv"):
        return list(csv.DictReader(text.splitlines(), delimiter="\t" if suffix == ".tsv"
                                   else ","))
    raise UsageError(f"{p}: unsupported data file; give a .jsonl, .csv or .txt file")


def _columns(rows: list[dict[str, Any]], path: Any, options: DataOptions,
             choices: list[tuple[str, str]]) -> tuple[str, str] | None:
    """The (input, output) columns to use: the options' if set, else the first pair of
    ``choices`` every row has."""
    if not rows:
        raise UsageError(f"{path}: has no rows; give a file with data")
    given = (options.text_column, options.label_column)
    pairs = [given] if given != ("text", "label") else [*choices, given]
    for a, b in pairs:
        if all(a in r and b in r for r in rows):
            return a, b
    return None


# -- text generation -------------------------------------------------------------------------

class TextGeneration(Recipe):
    """Next-token prediction; SFT when the data pairs prompts with responses."""

    task = "text-generation"
    metric = "loss"
    modes = {"loss": "min", "accuracy": "max"}
    techniques = ("full", "freeze", "sft")     # sft: full, on prompt/response pairs
    data_help = ("a .jsonl/.csv file with prompt and response columns (SFT), or a text "
                 "column / .txt file of lines")

    def prepare(self, data: Any, loaded: Any, options: DataOptions):
        if not hasattr(loaded.model, "generate") and not hasattr(loaded.model, "lm_head"):
            raise UsageError(f"'{loaded.ref}' is not a language model (no generate); text "
                             "generation fine-tunes GPT-family models")
        prompts, responses = self._texts(data, options)
        given = (None if options.val_data is None
                 else list(zip(*self._texts(options.val_data, options), strict=True)))
        train_idx, held = _split(list(zip(prompts, responses, strict=True)), given, options)
        vp, vr = [p for p, _ in held], [r for _, r in held]
        tok = getattr(loaded.model, "tokenizer", None)
        notes: dict[str, Any] = {}
        if tok is None or not hasattr(tok, "encode") or not hasattr(tok, "bos_id"):
            from zoo.plugins.transformer.seq2seq import Tokenizer

            tok = Tokenizer.from_texts(prompts + responses, level="char")
            notes["tokenizer"] = tok
        from zoo.finetune.lm import encode_pairs

        length = options.max_length
        train = encode_pairs(tok, [prompts[i] for i in train_idx],
                             [responses[i] for i in train_idx], length)
        val = encode_pairs(tok, vp, vr, length) if vp else None
        return self.task_data(train, val, name=str(data), notes=notes)

    def _texts(self, path: Any, options: DataOptions) -> tuple[list[str], list[str]]:
        rows = _rows(path)
        pair = _columns(rows, path, options, [("prompt", "response")])
        if pair is not None:
            return [str(r[pair[0]]) for r in rows], [str(r[pair[1]]) for r in rows]
        col = options.text_column
        if rows and all(col in r for r in rows):
            return [""] * len(rows), [str(r[col]) for r in rows]
        raise UsageError(f"{path}: needs 'prompt' and 'response' columns (SFT) or a '{col}' "
                         f"column (columns: {', '.join(rows[0])}); name others with "
                         "--text-column / --label-column")

    def setup(self, loaded: Any, data: Any, out: Path):
        tok = data.notes.get("tokenizer")
        if tok is None:
            return loaded.model, dict(loaded.kwargs)
        # The model gets the learned character vocabulary (rebuilt to its size); the saved
        # config points at the vocabulary file.
        from zoo.loading.build import builder_of
        from zoo.plugins.transformer.seq2seq import save_vocab

        vocab = save_vocab(out / "vocab.json", tok).resolve()
        kwargs = {k: v for k, v in loaded.kwargs.items()
                  if k not in ("vocab_size", "pad_token_id", "bos_token_id", "eos_token_id")}
        kwargs["vocab"] = str(vocab)
        return builder_of(loaded.spec)(**kwargs), kwargs

    def loss_sum(self, model: Any, batch: Any):
        from zoo.finetune.lm import lm_loss_sum

        inputs = _trim(batch.inputs)
        return lm_loss_sum(model(**inputs).logits, batch.y)

    def evaluate(self, model: Any, data: Any, split: Any) -> dict[str, float]:
        from zoo.finetune.lm import lm_metrics

        total = correct = count = 0
        for i in range(0, len(split), 64):
            part = split.take(range(i, min(i + 64, len(split))))
            loss, ok, n = lm_metrics(model(**_trim(part.inputs)).logits, part.y)
            total, correct, count = total + loss, correct + ok, count + n
        return {"loss": total / max(count, 1), "accuracy": correct / max(count, 1)}

    def config(self, data: Any) -> dict[str, Any]:
        return {"loss_masked_to": "response"}


def _trim(inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop padding columns no sample of the batch uses."""
    mask = inputs.get("attention_mask")
    if mask is None or not mask.shape[0]:
        return inputs
    width = max(int(mask.sum(1).max()), 1)
    return {k: v[:, :width] for k, v in inputs.items()}


# -- translation -------------------------------------------------------------------------------

class Translation(Recipe):
    """Teacher-forced cross-entropy on the target; exact match of greedy translations."""

    task = "translation"
    metric = "exact_match"
    modes = {"loss": "min", "accuracy": "max", "exact_match": "max"}
    data_help = "a .jsonl/.csv file with source and target columns"

    def prepare(self, data: Any, loaded: Any, options: DataOptions):
        src, tgt = self._pairs(data, options)
        given = (None if options.val_data is None
                 else list(zip(*self._pairs(options.val_data, options), strict=True)))
        train_idx, held = _split(list(zip(src, tgt, strict=True)), given, options)
        vs, vt = [a for a, _ in held], [b for _, b in held]
        model = loaded.model
        src_tok, tgt_tok = getattr(model, "src_vocab", None), getattr(model, "tgt_vocab", None)
        notes: dict[str, Any] = {}
        if src_tok is None or tgt_tok is None:
            from zoo.plugins.transformer.seq2seq import Tokenizer

            src_tok = Tokenizer.from_texts([src[i] for i in train_idx], level="char")
            tgt_tok = Tokenizer.from_texts([tgt[i] for i in train_idx], level="char")
            notes["vocab"] = (src_tok, tgt_tok)
        notes["tgt_vocab"] = tgt_tok

        def encode(s: list[str], t: list[str]):
            cap = options.max_length
            return self.split({"src": src_tok.batch(s)[:, :cap],
                               "tgt": tgt_tok.batch(t, bos=True, eos=True)[:, :cap + 2]})

        train = encode([src[i] for i in train_idx], [tgt[i] for i in train_idx])
        val = encode(vs, vt) if vs else None
        return self.task_data(train, val, name=str(data), notes=notes)

    def _pairs(self, path: Any, options: DataOptions) -> tuple[list[str], list[str]]:
        rows = _rows(path)
        pair = _columns(rows, path, options, [("source", "target"), ("src", "tgt"),
                                              ("prompt", "response")])
        if pair is None:
            raise UsageError(f"{path}: needs 'source' and 'target' columns (columns: "
                             f"{', '.join(rows[0])}); name others with --text-column / "
                             "--label-column")
        return [str(r[pair[0]]) for r in rows], [str(r[pair[1]]) for r in rows]

    def setup(self, loaded: Any, data: Any, out: Path):
        pair = data.notes.get("vocab")
        if pair is None:
            return loaded.model, dict(loaded.kwargs)
        from zoo.loading.build import builder_of
        from zoo.plugins.transformer.seq2seq import save_vocab

        vocab = save_vocab(out / "vocab.json", *pair).resolve()
        kwargs = {k: v for k, v in loaded.kwargs.items()
                  if k not in ("vocab_size", "tgt_vocab_size")}
        kwargs["vocab"] = str(vocab)
        return builder_of(loaded.spec)(**kwargs), kwargs

    @staticmethod
    def _token_losses(model: Any, batch: Any) -> tuple[torch.Tensor, torch.Tensor, Any]:
        src, tgt = batch.inputs["src"], batch.inputs["tgt"]
        src = src[:, : max(int((src != 0).sum(1).max()), 1)]
        tgt = tgt[:, : max(int((tgt != 0).sum(1).max()), 2)]
        logits = model(src, tgt[:, :-1])
        target = tgt[:, 1:].masked_fill(tgt[:, 1:] == 0, IGNORE)
        losses = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=IGNORE,
                                 reduction="none")
        return losses, target, logits

    def loss_sum(self, model: Any, batch: Any):
        losses, target, _ = self._token_losses(model, batch)
        valid = (target != IGNORE).float()
        return ((losses * valid).sum(1) / valid.sum(1).clamp(min=1)).sum()

    def evaluate(self, model: Any, data: Any, split: Any) -> dict[str, float]:
        tgt_tok = data.notes["tgt_vocab"]
        loss = tokens = correct = exact = 0.0
        for i in range(0, len(split), 64):
            part = split.take(range(i, min(i + 64, len(split))))
            losses, target, logits = self._token_losses(model, part)
            valid = target != IGNORE
            loss += float(losses[valid].sum())
            tokens += int(valid.sum())
            correct += int((logits.argmax(-1)[valid] == target[valid]).sum())
            src = part.inputs["src"]
            decoded = model.greedy(src[:, : max(int((src != 0).sum(1).max()), 1)],
                                   max_len=part.inputs["tgt"].shape[1])
            for ids, want in zip(decoded, part.inputs["tgt"].tolist(), strict=True):
                exact += tgt_tok.decode(ids) == tgt_tok.decode(want[1:])
        return {"loss": loss / max(tokens, 1), "accuracy": correct / max(tokens, 1),
                "exact_match": exact / max(len(split), 1)}


# -- token classification ------------------------------------------------------------------------

class TokenClassification(Recipe):
    """One tag per token; token-level cross-entropy and accuracy (padding ignored)."""

    task = "token-classification"
    metric = "accuracy"
    modes = {"accuracy": "max", "loss": "min"}
    data_help = "a .jsonl file with 'tokens' and 'tags' (lists of equal length) per line"

    def prepare(self, data: Any, loaded: Any, options: DataOptions):
        sents = self._sentences(data)
        given = None if options.val_data is None else self._sentences(options.val_data)
        train_idx, vsents = _split(sents, given, options)
        train_sents = [sents[i] for i in train_idx]
        names = sorted({t for _, tags in train_sents for t in tags})
        unknown = sorted({t for _, tags in vsents for t in tags} - set(names))
        if unknown:
            raise UsageError(f"{data}: validation tag(s) {', '.join(unknown[:5])} do not occur "
                             "in the training sentences")
        tok = getattr(loaded.model, "tokenizer", None)
        notes: dict[str, Any] = {}
        if tok is None or not hasattr(tok, "index"):
            from zoo.plugins.rnn.tokenizer import WordTokenizer

            tok = WordTokenizer.train([" ".join(t) for t, _ in train_sents], min_freq=1,
                                      max_length=options.max_length)
            notes["tokenizer"] = tok
        cap = options.max_length

        def encode(rows: list[tuple[list[str], list[str]]]):
            from zoo.plugins.rnn.tokenizer import tokenize

            ids = torch.zeros(len(rows), cap, dtype=torch.long)
            tags = torch.full((len(rows), cap), IGNORE, dtype=torch.long)
            lengths = torch.ones(len(rows), dtype=torch.long)
            for i, (tokens, tg) in enumerate(rows):
                tokens, tg = tokens[:cap], tg[:cap]
                for j, (t, label) in enumerate(zip(tokens, tg, strict=True)):
                    norm = tokenize(t)
                    ids[i, j] = tok.index.get(norm[0], tok.unk_id) if norm else tok.unk_id
                    tags[i, j] = names.index(label)
                lengths[i] = max(len(tokens), 1)
            return self.split({"ids": ids, "lengths": lengths}, tags)

        val = encode(vsents) if vsents else None
        return self.task_data(encode(train_sents), val, labels=names, name=str(data),
                              notes=notes)

    def _sentences(self, path: Any) -> list[tuple[list[str], list[str]]]:
        rows = _rows(path)
        out = []
        for n, r in enumerate(rows, 1):
            tokens, tags = r.get("tokens"), r.get("tags")
            if not (isinstance(tokens, list) and isinstance(tags, list) and tokens
                    and len(tokens) == len(tags)):
                raise UsageError(f"{path}: row {n} needs 'tokens' and 'tags', two lists of "
                                 "the same, non-zero length")
            out.append(([str(t) for t in tokens], [str(t) for t in tags]))
        return out

    def setup(self, loaded: Any, data: Any, out: Path):
        from zoo.loading.build import builder_of

        kwargs = dict(loaded.kwargs)
        tok = data.notes.get("tokenizer")
        if tok is None and kwargs.get("num_tags") == len(data.labels):
            return loaded.model, kwargs
        if tok is not None:
            kwargs.pop("vocab_size", None)
            kwargs["vocab"] = str(tok.save(out / "vocab.json").resolve())
        kwargs["num_tags"] = len(data.labels)
        return builder_of(loaded.spec)(**kwargs), kwargs

    def _logits(self, model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        width = max(int(inputs["lengths"].max()), 1)
        return model(inputs["ids"][:, :width], inputs["lengths"]), width

    def loss_sum(self, model: Any, batch: Any):
        logits, width = self._logits(model, batch.inputs)
        target = batch.y[:, :width]
        losses = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=IGNORE,
                                 reduction="none")
        valid = (target != IGNORE).float()
        return ((losses * valid).sum(1) / valid.sum(1).clamp(min=1)).sum()

    def evaluate(self, model: Any, data: Any, split: Any) -> dict[str, float]:
        loss = correct = count = 0.0
        for i in range(0, len(split), 128):
            part = split.take(range(i, min(i + 128, len(split))))
            logits, width = self._logits(model, part.inputs)
            target = part.y[:, :width]
            valid = target != IGNORE
            loss += float(F.cross_entropy(logits[valid], target[valid], reduction="sum"))
            correct += int((logits.argmax(-1)[valid] == target[valid]).sum())
            count += int(valid.sum())
        return {"accuracy": correct / max(count, 1), "loss": loss / max(count, 1)}
