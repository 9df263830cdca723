"""Pooling study: the untrained all-MiniLM-L6-v2 with mean vs CLS vs max pooling.

Measures STS-B test Spearman of cosine similarity (no training), and a frozen-encoder
linear probe (logistic regression on the pooled vectors) on TREC and movie sentiment.
The backbone runs once per text; the three poolings read the same hidden states, so the
comparison isolates pooling alone.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/pooling.py [--probe-train N] [--output FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

from polyhead.bench.benchmark import machine_description  # noqa: E402
from polyhead.bench.datasets import fetch  # noqa: E402
from polyhead.modeling.encoder import Encoder, Pooling  # noqa: E402
from polyhead.training.frozen import fit_softmax_regression  # noqa: E402

MODES = ("mean", "cls", "max")


def read_jsonl(path: Path) -> list[dict]:
    """All records of a JSON-lines file."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@torch.inference_mode()
def pooled_all(encoder: Encoder, texts: list[str], batch_size: int = 64) -> dict[str, np.ndarray]:
    """Un-normalised pooled vectors for every pooling mode, from one backbone pass per batch."""
    poolers = {m: Pooling(m) for m in MODES}
    out = {m: np.zeros((len(texts), encoder.dim), dtype=np.float32) for m in MODES}
    encoder.eval()
    for idx, enc in encoder.batches(texts, batch_size):
        enc = {k: v.to(encoder.device) for k, v in enc.items() if k != "offset_mapping"}
        hidden = encoder(**enc)["token_embeddings"]
        for m, pool in poolers.items():
            out[m][idx] = pool(hidden, enc["attention_mask"]).float().cpu().numpy()
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True).clip(1e-12)
    b = b / np.linalg.norm(b, axis=1, keepdims=True).clip(1e-12)
    return (a * b).sum(1)


def linear_probe(x_tr: np.ndarray, y_tr: list[str], x_te: np.ndarray, y_te: list[str]) -> float:
    """Test accuracy of a multinomial logistic regression (L-BFGS, small L2) on standardised features."""
    labels = sorted(set(y_tr))
    index = {lab: i for i, lab in enumerate(labels)}
    mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-6  # standardise: max and CLS vectors have very different scales
    xt = torch.tensor((x_tr - mu) / sd)
    yt = torch.tensor([index[y] for y in y_tr])
    # L2 of 1e-3 * ||W||^2 (bias free); the loss is convex, so the zero start is as good as any
    w, b = fit_softmax_regression(xt, yt, 2e-3, max_iter=200)  # every label occurs in y_tr: classes from yt
    with torch.no_grad():
        pred = (torch.tensor((x_te - mu) / sd) @ w.T + b).argmax(1).numpy()
    gold = np.array([index.get(y, -1) for y in y_te])
    return float((pred == gold).mean())


def main(argv: list[str] | None = None) -> int:
    """Run the pooling measurements; print a Markdown table and write JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--probe-train", type=int, default=None, help="cap on probe training examples per task (default: all)")
    ap.add_argument("--no-probe", action="store_true", help="STS-B only")
    ap.add_argument("--output", default="runs/results/pooling.json",
                    help="default runs/results/pooling.json; benchmarks/results/pooling.json is the committed one")
    args = ap.parse_args(argv)
    t0, started = time.time(), time.strftime("%Y-%m-%dT%H:%M:%S%z")
    names = ["stsb"] if args.no_probe else ["stsb", "trec", "sentiment"]
    paths = fetch(names)
    encoder = Encoder(device="cpu")
    results: dict[str, dict[str, float]] = {m: {} for m in MODES}

    sts = read_jsonl(paths["stsb"] / "test.jsonl")
    a = pooled_all(encoder, [r["sentence1"] for r in sts])
    b = pooled_all(encoder, [r["sentence2"] for r in sts])
    gold = [r["score"] for r in sts]
    for m in MODES:
        results[m]["stsb_spearman"] = float(stats.spearmanr(cosine(a[m], b[m]), gold).correlation)
    print(f"stsb done ({time.time() - t0:.0f}s)", file=sys.stderr)

    if not args.no_probe:
        for task in ("trec", "sentiment"):
            train = read_jsonl(paths[task] / "train.jsonl")
            if args.probe_train:
                rng = np.random.default_rng(0)
                train = [train[i] for i in sorted(rng.choice(len(train), min(args.probe_train, len(train)), replace=False))]
            test = read_jsonl(paths[task] / "test.jsonl")
            xtr = pooled_all(encoder, [r["text"] for r in train])
            xte = pooled_all(encoder, [r["text"] for r in test])
            for m in MODES:
                results[m][f"{task}_probe_accuracy"] = linear_probe(xtr[m], [r["label"] for r in train], xte[m], [r["label"] for r in test])
            print(f"{task} probe done ({time.time() - t0:.0f}s)", file=sys.stderr)

    seconds = time.time() - t0
    doc = {
        "machine": machine_description(),
        "date": started,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "seconds": round(seconds, 1),
        "probe_train": args.probe_train,
        "results": results,
    }
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    cols = list(next(iter(results.values())))
    print("| pooling | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for m in MODES:
        print(f"| {m} | " + " | ".join(f"{results[m][c]:.4f}" for c in cols) + " |")
    print(f"({seconds:.0f}s; wrote {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
