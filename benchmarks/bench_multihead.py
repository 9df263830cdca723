"""All heads in one pass vs one model per task, on all-MiniLM-L6-v2, CPU, same run, same inputs.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_multihead.py [--threads N] [--texts 512] [--rounds 3] [--json PATH]

joint    : one MultiTaskModel with three heads (intent: classification, sentiment: classification,
           ner: token) whose `predict` returns every head's output and the embedding.
separate : what a user runs today: three single-task models (each its own copy of the encoder
           with one of the heads) and an embedding model, run one after another.

The heads are untrained (speed does not depend on training), but the separate models get the
very same weights as the joint model, and the script checks that both give the same outputs
(labels, probabilities, entity spans, embeddings) before timing anything.

Rounds alternate the order (joint first, then separate first, ...); the ratio is the median of
the per-round ratios (separate seconds / joint seconds in the same round). Results go to stdout
and, as JSON, to --json (default runs/results/multihead-<cpu>-<threads>t.json; '-' writes
none): command, date, machine, threads, load average at start and end, and per precision the
seconds of every round, the per-round ratios, their median and the equality report.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import sys
import time
from pathlib import Path

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
    check_equal.worst = {"max_prob_diff": worst_p, "max_embedding_diff": worst_e, "atol": atol}
    return f"equal outputs: same labels and entity spans; max |prob diff| {worst_p:.1e}, max |embedding diff| {worst_e:.1e}"


def default_json(threads: int) -> Path:
    """runs/results/multihead-<cpu>-<threads>t.json, outside the repository."""
    from bench_encode import cpu_slug

    return Path(__file__).resolve().parents[1] / "runs" / "results" / f"multihead-{cpu_slug()}-{threads}t.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: os.cpu_count())")
    ap.add_argument("--texts", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precisions", default="fp32,bf16", help="comma-separated: fp32, bf16")
    ap.add_argument("--json", default=None,
                    help="write the results as JSON here (default: runs/results/multihead-<cpu>-<threads>t.json); "
                         "'-' writes none")
    args = ap.parse_args()

    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_encode import machine  # noqa: E402

    json_path = None if args.json == "-" else Path(args.json) if args.json else default_json(args.threads)
    torch.set_num_threads(args.threads)
    started = time.time()
    mach = machine()
    load_start = list(os.getloadavg())
    print(f"machine : {mach}")
    print(f"date    : {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"threads : torch.set_num_threads({args.threads})")
    print(f"load avg: {' '.join(f'{x:.2f}' for x in load_start)} at start")
    texts = texts_from_stsb(args.texts)
    results = {}
    doc = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": mach,
        "threads": args.threads,
        "load_avg_start": load_start,
        "options": {"texts": args.texts, "batch_size": args.batch_size, "rounds": args.rounds,
                    "precisions": args.precisions.split(",")},
        "method": (
            "joint: one MultiTaskModel (intent, sentiment, ner heads) predict(..., embeddings=True); separate: three "
            "single-task models with the same head weights + an Encoder, run one after another. Outputs are checked "
            "equal first (labels and entity spans identical, probabilities and embeddings within atol). Each round "
            "times both setups, order alternating; ratio = MEDIAN OF PER-ROUND RATIOS (separate s / joint s)."
        ),
        "precisions": results,
    }
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
        ratios = [s / j for s, j in zip(ts, tj)]
        ratio = statistics.median(ratios)
        n = len(texts)
        print(f"\n== {precision}: {n} texts, batch {bs}, {args.rounds} rounds (median) ==")
        print(report)
        print(f"{'setup':<44} {'seconds':>8} {'texts/s':>8}")
        print(f"{'separate: 3 single-task models + 1 encoder':<44} {statistics.median(ts):>8.2f} {n / statistics.median(ts):>8.1f}")
        print(f"{'joint: 1 model, 3 heads + embedding':<44} {statistics.median(tj):>8.2f} {n / statistics.median(tj):>8.1f}")
        verdict = "MET" if ratio >= 2.5 else "MISSED"
        print(f"joint / separate throughput: {ratio:.2f}x (target >= 2.5x) -> {verdict}")
        print(f"per round: separate {' '.join(f'{t:.2f}' for t in ts)} s; joint {' '.join(f'{t:.2f}' for t in tj)} s; "
              f"ratios {' '.join(f'{x:.2f}' for x in ratios)}", flush=True)
        results[precision] = {
            "joint_s": tj, "separate_s": ts, "ratio_rounds": ratios, "ratio": ratio, "target": 2.5, "verdict": verdict,
            "texts": n, "batch_size": bs,
            "joint_texts_per_s": n / statistics.median(tj), "separate_texts_per_s": n / statistics.median(ts),
            "equal": report, "equality": dict(check_equal.worst),
        }
        del joint, singles, embedder
    doc["load_avg_end"] = list(os.getloadavg())
    doc["seconds_total"] = time.time() - started
    print(f"load avg: {' '.join(f'{x:.2f}' for x in doc['load_avg_end'])} at end")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
