"""Train ``gpt_tiny.pydoc``: a character-level GPT-2 on the Python documentation topics.

The corpus ships with Python itself: ``pydoc_data.topics.topics`` (the text behind
``help("if")``, ``help("FORMATTING")`` ..., about 465k characters of English prose and
code). Topics are split by name: every tenth topic (sorted by name) is held out, so the
held-out text is never seen in training. The vocabulary is every character of the
training text; anything else reads as ``<unk>``. The held-out metric is the mean
per-character loss on the first 16,384 characters of the held-out topics, against a
unigram (character frequency) baseline.

Run (15-30 minutes on one core of a busy machine):
    OMP_NUM_THREADS=1 python scripts/train_gpt_pydoc.py
then copy the printed sha256 and metrics into registry.toml
([models.gpt_tiny.pretrained.pydoc]).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "zoo" / "trained"
STEM = "gpt-tiny-pydoc"
#: architecture of the shipped model (the catalog's gpt_tiny kwargs must match)
CONFIG = dict(n_layer=3, n_embd=128, n_head=4, n_positions=128)
#: the held-out metric is measured on this many characters of the held-out topics
HELDOUT_CHARS = 16384


def corpus() -> tuple[str, str]:
    """(training text, held-out text) from ``pydoc_data.topics``; every 10th topic held out."""
    from pydoc_data.topics import topics

    names = sorted(topics)
    train = "\n\n".join(topics[n] for i, n in enumerate(names) if i % 10 != 0)
    held = "\n\n".join(topics[n] for i, n in enumerate(names) if i % 10 == 0)
    return train, held


def unigram_loss(train: str, held: str, vocab) -> float:
    """Per-character cross-entropy (nats) of the training set's character frequencies
    (add-one smoothed over the vocabulary) on the held-out text: the baseline."""
    from collections import Counter

    counts = Counter(vocab.encode(train))
    total = sum(counts.values()) + len(vocab)
    ids = vocab.encode(held)
    return -sum(math.log((counts[i] + 1) / total) for i in ids) / len(ids)


def heldout_loss(model, vocab, text: str, *, max_chars: int | None = HELDOUT_CHARS) -> float:
    """Mean per-character cross-entropy (nats) of ``model`` on ``text[:max_chars]``.

    The text is cut into consecutive windows of the model's context and every character
    is scored (so early positions in a window see little context: a slight overestimate
    of the loss, kept because it is cheap enough to re-check in tests).
    """
    import torch
    import torch.nn.functional as F

    block = int(model.config.n_positions)
    ids = torch.tensor(vocab.encode(text[:max_chars] if max_chars else text, bos=True))
    n = (len(ids) - 1) // block
    if n < 1:
        raise ValueError(f"need more than {block} characters to evaluate, got {len(ids) - 1}")
    x = ids[: n * block + 1]
    inputs, targets = x[:-1].view(n, block), x[1:].view(n, block)
    total = 0.0
    was = model.training
    model.eval()
    with torch.no_grad():
        for i in range(0, n, 32):
            logits = model(input_ids=inputs[i: i + 32]).logits
            total += float(F.cross_entropy(logits.flatten(0, 1), targets[i: i + 32].flatten(),
                                           reduction="sum"))
    model.train(was)
    return total / targets.numel()


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, evaluate on the held-out topics, write weights + vocabulary; return metrics."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-chars", type=int, default=None,
                   help="use only this many characters of each split (smoke tests)")
    p.add_argument("--out-dir", type=Path, default=OUT)
    args = p.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from zoo.plugins.transformer.gpt import generate_text, gpt2
    from zoo.plugins.transformer.seq2seq import Tokenizer, save_vocab
    from zoo.shipping import ship

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    train, held = corpus()
    if args.max_chars:
        train, held = train[: args.max_chars], held[: args.max_chars]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    vocab = Tokenizer.from_texts([train], level="char")
    vocab_path = save_vocab(args.out_dir / f"{STEM}.json", vocab)
    model = gpt2(vocab=f"file:{vocab_path}", **CONFIG)
    block = CONFIG["n_positions"]
    data = torch.tensor(vocab.encode(train, bos=True))
    print(f"train {len(train)} chars, held-out {len(held)} chars, vocab {len(vocab)}, "
          f"params {sum(p.numel() for p in model.parameters())}")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    warmup = max(1, min(100, args.steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup,
                           0.1 + 0.45 * (1 + math.cos(math.pi * s / max(1, args.steps)))))
    gen = torch.Generator().manual_seed(args.seed)
    start = time.time()
    model.train()
    for step in range(args.steps):
        idx = torch.randint(0, len(data) - block - 1, (args.batch,), generator=gen)
        x = torch.stack([data[i: i + block + 1] for i in idx.tolist()])
        logits = model(input_ids=x[:, :-1]).logits
        loss = F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  {time.time() - start:.0f}s", flush=True)

    loss = heldout_loss(model, vocab, held)
    base = unigram_loss(train, held[:HELDOUT_CHARS], vocab)
    metrics = {"heldout-loss": round(loss, 4), "heldout-ppl": round(math.exp(loss), 3),
               "heldout-bpc": round(loss / math.log(2), 4),
               "unigram-loss": round(base, 4), "unigram-ppl": round(math.exp(base), 3)}
    print(f"held-out loss {loss:.4f} nats/char (perplexity {math.exp(loss):.2f}); "
          f"unigram baseline {base:.4f} (perplexity {math.exp(base):.2f})")
    print("sample:", repr(generate_text(model, "The ", max_new_tokens=120, seed=0)))
    ship(model, args.out_dir / f"{STEM}.safetensors", name="gpt_tiny", tag="pydoc",
         kwargs={"vocab": f"package:zoo/trained/{vocab_path.name}", "vocab_size": len(vocab)},
         dataset="pydoc-topics (Python's pydoc_data.topics; every 10th topic held out)",
         metrics=metrics, fields={"license": "psf-2.0"})
    return metrics


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
