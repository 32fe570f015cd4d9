"""Train ``transformer.dates``: human-written dates -> ISO 8601 (encoder-decoder Transformer).

The parallel corpus is generated here: a random day between 1950-01-01 and 2049-12-31
written in one of many human formats ("the twenty-first of march, 1998", "3/21/98",
"March 21st 1998", "21.03.1998", "saturday, march 21, 1998", "march twenty-first,
nineteen ninety-eight", ...) paired with "1998-03-21". Slashes are always US
month/day/year and dots European day.month.year, so no input is ambiguous; two-digit
years pivot at 50 (50-99 -> 19xx, 00-49 -> 20xx). Each training step draws a fresh
batch; the held-out set comes from a different seed.

Run (15-35 minutes on one core of a busy machine):
    OMP_NUM_THREADS=1 python scripts/train_transformer_dates.py
then copy the printed sha256 and exact-match accuracy into registry.toml
([models.transformer.pretrained.dates]).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "zoo" / "trained"
STEM = "transformer-dates"
#: architecture of the shipped model (tag kwargs in registry.toml must match)
CONFIG = dict(d_model=128, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
              dim_feedforward=256, dropout=0.1, max_len=96)

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_ONES = ["", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
         "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
         "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORD = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth",
        "nine": "ninth", "twelve": "twelfth"}
FIRST, LAST = dt.date(1950, 1, 1), dt.date(2049, 12, 31)
#: the target side: ISO dates, one character per token
TARGET_CHARS = "-0123456789"


def cardinal(n: int) -> str:
    """0 < n < 100 in words: 21 -> 'twenty-one'."""
    if n < 20:
        return _ONES[n]
    t, o = divmod(n, 10)
    return _TENS[t] + (f"-{_ONES[o]}" if o else "")


def ordinal(n: int) -> str:
    """1 <= n < 100 as an ordinal word: 21 -> 'twenty-first'."""
    words = cardinal(n)
    head, sep, last = words.rpartition("-")
    if last in _ORD:
        last = _ORD[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + sep + last


def suffix(n: int) -> str:
    """21 -> '21st', 12 -> '12th'."""
    if 10 <= n % 100 <= 20:
        return f"{n}th"
    return f"{n}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th') }"


def year_words(y: int, rng: random.Random) -> str:
    """1998 -> 'nineteen ninety-eight'; 2005 -> 'two thousand five'; 2021 either way."""
    hi, lo = divmod(y, 100)
    if y >= 2000 and (lo < 10 or rng.random() < 0.5):
        return "two thousand" + (f" {cardinal(lo)}" if lo else "")
    if lo == 0:
        return f"{cardinal(hi)} hundred"
    return f"{cardinal(hi)} {cardinal(lo) if lo >= 10 else 'oh ' + cardinal(lo)}"


def render(d: dt.date, rng: random.Random) -> str:
    """One human way of writing ``d``, chosen with ``rng``."""
    m, day, y = MONTHS[d.month - 1], d.day, d.year
    mon = m[:3]
    yy = f"{y % 100:02d}"
    yr = rng.choice([str(y), str(y), f"'{yy}"]) if rng.random() < 0.2 else str(y)
    forms = [
        lambda: f"{d.month}/{day}/{yy}",
        lambda: f"{d.month:02d}/{day:02d}/{y}",
        lambda: f"{d.month}/{day}/{y}",
        lambda: f"{day:02d}.{d.month:02d}.{y}",
        lambda: f"{day}.{d.month}.{yy}",
        lambda: f"{day} {m} {y}",
        lambda: f"{m} {suffix(day)} {yr}",
        lambda: f"{m} {suffix(day)}, {y}",
        lambda: f"{mon} {day}, {y}",
        lambda: f"{mon}. {day}, {y}",
        lambda: f"{day}-{mon}-{rng.choice([yy, str(y)])}",
        lambda: f"the {ordinal(day)} of {m}, {y}",
        lambda: f"the {suffix(day)} of {m} {y}",
        lambda: f"{suffix(day)} of {m}, {y}",
        lambda: f"{WEEKDAYS[d.weekday()]}, {m} {day}, {y}",
        lambda: f"{WEEKDAYS[d.weekday()][:3]} {day} {mon} {y}",
        lambda: f"{m} {ordinal(day)}, {year_words(y, rng)}",
        lambda: f"the {ordinal(day)} of {m} {year_words(y, rng)}",
        lambda: f"{ordinal(day)} {m} {y}",
        lambda: f"{y}/{d.month:02d}/{day:02d}",
        lambda: d.isoformat(),
        lambda: f"{day} {mon} {y}",
    ]
    text = rng.choice(forms)()
    case = rng.random()
    if case < 0.3:
        text = text.title()
    elif case < 0.4:
        text = text.upper()
    elif case < 0.5:
        text = text.capitalize()
    return text


def make_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """``n`` (human date, ISO date) pairs drawn with ``seed``."""
    rng = random.Random(seed)
    span = (LAST - FIRST).days
    out = []
    for _ in range(n):
        d = FIRST + dt.timedelta(days=rng.randint(0, span))
        out.append((render(d, rng), d.isoformat()))
    return out


def make_vocabs():
    """Word-level source vocabulary (every word the generator can write; digits and
    punctuation are single tokens) and character-level ISO target vocabulary."""
    from zoo.plugins.transformer.seq2seq import Tokenizer

    words = (MONTHS + [m[:3] for m in MONTHS] + WEEKDAYS + [w[:3] for w in WEEKDAYS]
             + [w for n in range(1, 100) for w in cardinal(n).split("-") + ordinal(n).split("-")]
             + ["the", "of", "oh", "hundred", "thousand", "st", "nd", "rd", "th"]
             + list("0123456789',-./"))
    src = Tokenizer(sorted(set(words)), level="word", lowercase=True)
    return src, Tokenizer(TARGET_CHARS, level="char")


def exact_match(model, pairs: list[tuple[str, str]], *, batch: int = 500) -> float:
    """Share of ``pairs`` whose greedy translation equals the ISO date exactly."""
    from zoo.plugins.transformer.seq2seq import translate

    hits = 0
    for i in range(0, len(pairs), batch):
        chunk = pairs[i: i + batch]
        outs = translate(model, [s for s, _ in chunk], max_len=12)
        hits += sum(o == t for o, (_, t) in zip(outs, chunk, strict=True))
    return hits / len(pairs)


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Train, evaluate on a held-out generated set, write weights + tokenizer; return metrics."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--eval-size", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, default=OUT)
    args = p.parse_args(argv)

    import torch
    import torch.nn.functional as F

    from zoo.plugins.transformer.seq2seq import save_vocab, transformer
    from zoo.shipping import ship

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    src_vocab, tgt_vocab = make_vocabs()
    vocab_path = save_vocab(args.out_dir / f"{STEM}.json", src_vocab, tgt_vocab)
    model = transformer(vocab=f"file:{vocab_path}", **CONFIG)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=0.01)
    warmup = max(1, min(200, args.steps // 10))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, max(0.05, (args.steps - s) / (args.steps - warmup))))
    rng = random.Random(args.seed)
    start = time.time()
    model.train()
    for step in range(args.steps):
        pairs = make_pairs(args.batch, rng.randrange(2**31))
        src = src_vocab.batch([s for s, _ in pairs])
        tgt = tgt_vocab.batch([t for _, t in pairs], bos=True, eos=True)
        logits = model(src, tgt[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), tgt[:, 1:].flatten(),
                               ignore_index=tgt_vocab.pad_id, label_smoothing=0.05)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 250 == 0 or step == args.steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}  {time.time() - start:.0f}s", flush=True)

    model.eval()
    # the held-out seed is far from any training seed drawn above
    held_out = make_pairs(args.eval_size, seed=10_000_019 + args.seed)
    acc = exact_match(model, held_out)
    metrics = {"exact-match": round(acc, 4)}
    print(f"held-out exact match: {acc:.4f} on {len(held_out)} dates")
    ship(model, args.out_dir / f"{STEM}.safetensors", name="transformer", tag="dates",
         kwargs={"vocab": f"package:zoo/trained/{vocab_path.name}", "vocab_size": len(src_vocab),
                 "tgt_vocab_size": len(tgt_vocab), **CONFIG},
         dataset="generated dates (scripts/train_transformer_dates.py: 1950-2049 in 22 human "
                 "formats -> ISO 8601)", metrics=metrics)
    return metrics

if __name__ == "__main__":
    sys.exit(0 if main() else 1)
