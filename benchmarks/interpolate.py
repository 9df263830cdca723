"""Would merging weights close a joint model's CoNLL gap? Dev scores along the line to a single-task encoder (issue 14).

Both models start from the same pretrained encoder, so their weights can be averaged (as in
model soups and task arithmetic): the joint model's encoder becomes (1 - a) * joint + a * single,
its heads stay as they are, and every task is scored on dev for each `a`. Serving cost is
unchanged (one encoder); training cost is the single-task model's. This only measures, on dev,
whether the single-task encoder's CoNLL gain comes without the other tasks' loss; it writes no
model and never reads test.

    .venv/bin/python benchmarks/interpolate.py --joint runs/benchmark/full-dmlp-s42/joint-s42 \
        --single runs/benchmark/full-teacher-s42/single-conll2003-s42 --alphas 0,0.2,0.4 \
        --out benchmarks/results/interpolate-s42.json
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from paired import run_script, write_report  # noqa: E402

from polyhead.bench.harness import machine_description  # noqa: E402
from polyhead.modeling.model import load  # noqa: E402
from polyhead.training.config import load_config  # noqa: E402
from polyhead.training.data import build_sources  # noqa: E402
from polyhead.training.evaluation import evaluate, headline  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--joint", required=True, help="a joint model folder")
    ap.add_argument("--single", required=True, help="a model folder whose encoder started from the same weights")
    ap.add_argument("--alphas", default="0,0.2,0.4", help="comma-separated weights of --single's encoder")
    ap.add_argument("--config", default=str(ROOT / "configs" / "benchmark.yaml"), help="names the dev files")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    alphas = [float(a) for a in args.alphas.split(",")]
    joint, single = load(args.joint, device="cpu"), load(args.single, device="cpu")
    start, other = joint.encoder.state_dict(), single.encoder.state_dict()
    if start.keys() != other.keys() or any(start[k].shape != other[k].shape for k in start):
        sys.exit("interpolate.py: the two encoders differ in shape; they must come from the same pretrained model")
    start = {k: v.clone() for k, v in start.items()}
    cfg = load_config(args.config)
    cfg.tasks = [t for t in cfg.tasks if t.name in joint.tasks]
    for t in cfg.tasks:
        if t.kind != "similarity":
            t.labels = list(joint.tasks[t.name].labels)  # only dev is read: the label sets come from the model
    sources, _ = build_sources(cfg, splits=("dev",))
    rows = []
    for a in alphas:
        t0 = time.time()
        joint.encoder.load_state_dict({k: (1 - a) * v + a * other[k] if v.is_floating_point() else v for k, v in start.items()})
        metrics = evaluate(joint, sources, "dev")
        scores = {task: round(headline({task: m}, joint.tasks), 4) for task, m in metrics.items()}
        rows.append({"alpha": a, "dev": scores, "seconds": round(time.time() - t0, 1)})
        print(f"alpha {a:g}: " + ", ".join(f"{t} {s:.4f}" for t, s in scores.items()), file=sys.stderr, flush=True)
    doc = {"machine": machine_description(), "argv": sys.argv, "joint": args.joint, "single": args.single, "rows": rows}
    base = rows[0]["dev"] if rows[0]["alpha"] == 0 else None
    lines = [f"Dev scores with the encoder (1 - a) * joint + a * single (joint heads); {args.joint} / {args.single}", "",
             "| a | " + " | ".join(rows[0]["dev"]) + " |", "|---|" + "---|" * len(rows[0]["dev"])]
    for r in rows:
        cells = [f"{v:.4f}" + (f" ({100 * (v - base[t]):+.2f})" if base and r is not rows[0] else "") for t, v in r["dev"].items()]
        lines.append(f"| {r['alpha']:g} | " + " | ".join(cells) + " |")
    write_report(args.out, doc, lines)


if __name__ == "__main__":
    run_script(main, "interpolate.py")
