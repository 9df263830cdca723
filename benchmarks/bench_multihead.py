"""All heads in one pass vs one model per task, on all-MiniLM-L6-v2, CPU, same run, same inputs.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_multihead.py [--threads N] [--texts 512] [--rounds 3]

joint    : one MultiTaskModel with three heads (intent: classification, sentiment: classification,
           ner: token) whose `predict` returns every head's output and the embedding.
separate : what a user runs today: three single-task models (each its own copy of the encoder
           with one of the heads) and an embedding model, run one after another.

The heads are untrained (speed does not depend on training), but the separate models get the
very same weights as the joint model, and the script checks that both give the same outputs
(labels, probabilities, entity spans, embeddings) before timing anything.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

INTENT = ["DESC", "ENTY", "ABBR", "HUM", "NUM", "LOC"]
SENTIMENT = ["negative", "positive"]
NER = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]


def texts_from_stsb(n: int) -> list[str]:
    """n real sentences (STS-B test, then dev), in file order."""
    from polyhead.bench.datasets import fetch

    folder = fetch(["stsb"], progress=False)["stsb"]
    out: list[str] = []
    for split in ("test", "dev"):
        for line in open(folder / f"{split}.jsonl", encoding="utf-8"):
            row = json.loads(line)
            out += [row["sentence1"], row["sentence2"]]
    return out[:n]


def build(precision: str):
    """The joint model and the four separate models, all with the same weights."""
    import torch

    from polyhead import Encoder, MultiTaskModel, TaskSpec

    torch.manual_seed(0)
    specs = [
        TaskSpec("intent", "classification", INTENT),
        TaskSpec("sentiment", "classification", SENTIMENT),
        TaskSpec("ner", "token", NER),
    ]
    joint = MultiTaskModel(Encoder(device="cpu", precision=precision), specs)
    singles = []
    for spec in specs:
        single = MultiTaskModel(Encoder(device="cpu", precision=precision), [TaskSpec.from_dict(spec.to_dict())])
        single.heads[spec.name].load_state_dict(joint.heads[spec.name].state_dict())
        singles.append(single)
    embedder = Encoder(device="cpu", precision=precision)
    return joint, singles, embedder


def run_joint(joint, texts, bs):
    return joint.predict(texts, batch_size=bs, embeddings=True)


def run_separate(singles, embedder, texts, bs):
    per_task = [m.predict(texts, batch_size=bs, embeddings=False) for m in singles]
    emb = embedder.encode(texts, batch_size=bs)
    return per_task, emb


def check_equal(joint_out, separate_out, atol: float) -> str:
    """Same labels/entities and probabilities/embeddings within atol; returns a one-line report."""
    per_task, emb = separate_out
    worst_p, worst_e = 0.0, 0.0
    for i, item in enumerate(joint_out):
        worst_e = max(worst_e, float(np.abs(item["embedding"] - emb[i]).max()))
        for res in per_task:
            (name, got), = res[i]["tasks"].items()
            want = item["tasks"][name]
            if "label" in want:
                assert got["label"] == want["label"], (i, name)
                worst_p = max(worst_p, max(abs(got["scores"][k] - v) for k, v in want["scores"].items()))
            else:
                assert got["tags"] == want["tags"], (i, name)
                spans = [(e["type"], e["start_char"], e["end_char"]) for e in got["entities"]]
                assert spans == [(e["type"], e["start_char"], e["end_char"]) for e in want["entities"]], (i, name)
                for a, b in zip(got["entities"], want["entities"]):
                    worst_p = max(worst_p, abs(a["score"] - b["score"]))
    assert worst_p <= atol and worst_e <= atol, (worst_p, worst_e)
    return f"equal outputs: same labels and entity spans; max |prob diff| {worst_p:.1e}, max |embedding diff| {worst_e:.1e}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: os.cpu_count())")
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()

    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_encode import machine  # noqa: E402

    torch.set_num_threads(args.threads)
    print(f"machine : {machine()}")
    print(f"date    : {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"threads : torch.set_num_threads({args.threads})")
    print(f"load avg: {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")
    texts = texts_from_stsb(args.texts)
    results = {}
    for precision in args.precisions.split(","):
        joint, singles, embedder = build(precision)
        bs = args.batch_size
        # Equal outputs first: both setups see the same length-sorted batches, so the encoder
        # computes the same numbers (in bf16 too) and the tolerance can stay tight.
        report = check_equal(run_joint(joint, texts, bs), run_separate(singles, embedder, texts, bs), atol=1e-5)
        run_joint(joint, texts[:bs], bs)  # warm-up
        run_separate(singles, embedder, texts[:bs], bs)
        tj, ts = [], []
        for r in range(args.rounds):
            pair = [("joint", tj, lambda: run_joint(joint, texts, bs)), ("separate", ts, lambda: run_separate(singles, embedder, texts, bs))]
            for _, store, fn in (pair if r % 2 == 0 else pair[::-1]):
                t0 = time.perf_counter()
                fn()
                store.append(time.perf_counter() - t0)
        ratio = statistics.median(s / j for s, j in zip(ts, tj))
        n = len(texts)
        print(f"\n== {precision}: {n} texts, batch {bs}, {args.rounds} rounds (median) ==")
        print(report)
        print(f"{'setup':<44} {'seconds':>8} {'texts/s':>8}")
        print(f"{'separate: 3 single-task models + 1 encoder':<44} {statistics.median(ts):>8.2f} {n / statistics.median(ts):>8.1f}")
        print(f"{'joint: 1 model, 3 heads + embedding':<44} {statistics.median(tj):>8.2f} {n / statistics.median(tj):>8.1f}")
        verdict = "MET" if ratio >= 2.5 else "MISSED"
        print(f"joint / separate throughput: {ratio:.2f}x (target >= 2.5x) -> {verdict}")
        results[precision] = {"joint_s": tj, "separate_s": ts, "ratio": ratio, "texts": n, "equal": report}
        del joint, singles, embedder
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
