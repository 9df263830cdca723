"""The head learning rate when the encoder trains: head_lr = lr against larger multiples of lr.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_head_lr.py [--config configs/example.yaml]
        [--ratios 1,10,30] [--seeds 0,1] [--threads 1] [--out benchmarks/results/head-lr.json]

Trains the config (encoder trainable, its own lr) once per (ratio, seed) with training.head_lr =
ratio x lr, and reports each task's best dev score and the mean over seeds. The baseline is
ratio 1 (head_lr = lr, polyhead 0.1's default), measured in the same run. This is what decided
the default head_lr (docs/training.md, "Learning rates").
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/example.yaml")
    ap.add_argument("--ratios", default="1,10,30", help="head_lr / lr values to compare (1 = the baseline)")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra config overrides")
    ap.add_argument("--out", default="runs/results/head-lr.json",
                    help="default runs/results/head-lr.json; benchmarks/results/head-lr.json is the committed one")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from polyhead.bench.benchmark import machine_description
    from polyhead.training.config import load_config
    from polyhead.training.loop import train
    from polyhead.modeling.tasks import KIND_ALIASES
    from polyhead.training.metrics import METRIC_FOR_KIND

    ratios = [float(r) for r in args.ratios.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    base = load_config(args.config, args.set)
    lr = base.training.lr
    runs = []
    for ratio in ratios:
        for seed in seeds:
            cfg = load_config(args.config, [*args.set, f"training.head_lr={ratio * lr}", f"training.seed={seed}"])
            with tempfile.TemporaryDirectory() as tmp:
                started = time.time()
                result = train(cfg, Path(tmp) / "m", progress=False, log=lambda m: None)
            kinds = {t.name: KIND_ALIASES.get(t.kind, t.kind) for t in cfg.tasks}
            dev = {t: m[METRIC_FOR_KIND[kinds[t]]] for t, m in result.dev.items()}
            runs.append({"ratio": ratio, "head_lr": ratio * lr, "seed": seed, "dev": dev, "seconds": round(time.time() - started, 1)})
            print(f"head_lr = {ratio:g} x lr, seed {seed}: " + ", ".join(f"{t} {v:.4f}" for t, v in dev.items()), flush=True)
    tasks = list(runs[0]["dev"])
    summary = {}
    for ratio in ratios:
        rows = [r for r in runs if r["ratio"] == ratio]
        summary[f"{ratio:g}"] = {t: {"mean": statistics.mean(r["dev"][t] for r in rows),
                                     "sd": statistics.pstdev(r["dev"][t] for r in rows)} for t in tasks}
        summary[f"{ratio:g}"]["mean_over_tasks"] = statistics.mean(summary[f"{ratio:g}"][t]["mean"] for t in tasks)
    base_mean = summary[f"{ratios[0]:g}"]["mean_over_tasks"]
    print("\nhead_lr/lr  " + "  ".join(f"{t:>10}" for t in tasks) + "   mean   vs baseline")
    for key, row in summary.items():
        print(f"{key:>9}  " + "  ".join(f"{row[t]['mean']:10.4f}" for t in tasks)
              + f"  {row['mean_over_tasks']:.4f}  {row['mean_over_tasks'] - base_mean:+.4f}")
    out = {"what": "best dev score per task, encoder trainable, head_lr = ratio x lr", "config": args.config,
           "lr": lr, "overrides": args.set, "command": " ".join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
           "machine": machine_description(), "threads": args.threads,
           "date": time.strftime("%Y-%m-%d", time.gmtime()), "baseline": f"ratio {ratios[0]:g}", "runs": runs,
           "summary": summary}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
