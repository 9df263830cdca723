"""Is a joint model's gap to single-task on one task real, or test-set noise? (issue 14)

The benchmark's targets compare two test scores, each from one model per seed; a test split of
about a thousand texts moves an accuracy by ~1 point between equally good models. This script
scores both models of each pair *on the same test examples* (the joint model and the single-task
model of one seed), then resamples the test examples with replacement (a paired bootstrap: the
same resampled examples for every pair) and reports, per pair and for the mean over pairs,
the difference A − B (default: joint − single) in points with its 95% interval and the share of resamples in which
the difference is at or above a target (e.g. −0.3: "within 0.3 points"). For accuracy it also
counts the texts only one model gets right, with McNemar's exact two-sided p-value.

Entity F1 is resampled by sentence: each sentence's true positives, predicted and gold entities
(conlleval rules, as seqeval scores them), summed over the resample; the full-set figure computed
this way is checked against `polyhead`'s own metric on the same predictions.

    .venv/bin/python benchmarks/paired.py --task sentiment \
        --pair "seed 1=runs/benchmark/full-prop-distill-s1/joint-s1,runs/benchmark/full-single-s1/single-sentiment-s1" \
        --pair "seed 2=runs/benchmark/full-distill-s2/joint-s2,runs/benchmark/full-distill-s2/single-sentiment-s2" \
        --target -0.3 --out benchmarks/results/paired-sentiment.json

What it does not capture: the spread between training seeds beyond the pairs given (each pair is
one draw); more pairs narrow the interval of the mean. Models are scored in fp32 on the CPU.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from polyhead.bench.harness import machine_description  # noqa: E402
from polyhead.modeling.model import load  # noqa: E402
from polyhead.training.config import load_config  # noqa: E402
from polyhead.training.data import build_sources  # noqa: E402
from polyhead.training.evaluation import predictions  # noqa: E402
from polyhead.training.metrics import task_metrics  # noqa: E402

METRIC = {"trec": "accuracy", "sentiment": "accuracy", "conll2003": "entity_f1"}


def per_example(task: str, gold: list, pred: list) -> np.ndarray:
    """Rows the bootstrap sums: [correct] per text, or [true positives, predicted, gold entities] per sentence."""
    if METRIC[task] == "accuracy":
        return np.array([[float(g == p)] for g, p in zip(gold, pred)])
    from seqeval.metrics.sequence_labeling import get_entities

    rows = []
    for g, p in zip(gold, pred):
        ge, pe = set(get_entities(list(g))), set(get_entities(list(p)))
        rows.append([len(ge & pe), len(pe), len(ge)])
    return np.array(rows, dtype=float)


def metric(task: str, sums: np.ndarray, n: int | np.ndarray) -> np.ndarray:
    """The task's metric from summed rows (over the last axis' columns)."""
    if METRIC[task] == "accuracy":
        return sums[..., 0] / n
    return 2 * sums[..., 0] / np.maximum(sums[..., 1] + sums[..., 2], 1)


def parse_pairs(specs: list[str]) -> list[tuple[str, str, str]]:
    """--pair LABEL=A_DIR,B_DIR values as (label, a, b); a malformed one exits with a one-line message."""
    parsed = []
    for spec in specs:
        label, _, dirs = spec.partition("=")
        a, _, b = dirs.partition(",")
        if not b:
            sys.exit(f"--pair {spec!r}: want LABEL=JOINT_DIR,SINGLE_DIR")
        parsed.append((label, a, b))
    return parsed


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value: b and c are the texts only one of the two models gets right."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(0, min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def score(folder: Path, model, sources: list, task: str, split: str = "test") -> tuple[list, list, float]:
    """Gold and predicted labels of `task` on `split` from `model` (loaded from `folder`), and polyhead's own metric."""
    if task not in model.tasks:
        sys.exit(f"{folder}: has no {task!r} head")
    gold, pred = predictions(model, sources, split)
    official = task_metrics(model.tasks[task].kind, gold[task], pred[task])[METRIC[task]]  # what `evaluate` reports
    return gold[task], pred[task], official


def write_report(out: str | Path, doc: dict, lines: list[str] | None = None) -> None:
    """Write doc as JSON to out; given a table's lines, also write them as Markdown next to it and print them."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    if lines is not None:
        out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print("\n".join(lines))


def run_script(main, name: str) -> None:
    """Run a script's main(); a polyhead error (a missing model folder, an unreadable data file) exits
    with one line naming the script, not a traceback."""
    from polyhead.errors import PolyheadError

    try:
        main()
    except PolyheadError as exc:
        sys.exit(f"{name}: {exc}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", required=True, choices=sorted(METRIC))
    ap.add_argument("--pair", action="append", required=True, metavar="LABEL=JOINT_DIR,SINGLE_DIR")
    ap.add_argument("--config", default=None, help="the config naming the task's test file (default: configs/single/TASK.yaml)")
    ap.add_argument("--names", default="joint,single", metavar="A,B",
                    help="what the two folders of each pair are (default joint,single; e.g. distill,plain to compare two joint recipes)")
    ap.add_argument("--target", type=float, default=-0.3, help="points: the share of resamples with joint - single >= this")
    ap.add_argument("--resamples", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    first, _, second = args.names.partition(",")
    if not second:
        sys.exit(f"--names {args.names!r}: want A,B")
    cfg = load_config(args.config or ROOT / "configs" / "single" / f"{args.task}.yaml")
    cfg.tasks = [t for t in cfg.tasks if t.name == args.task]
    parsed = parse_pairs(args.pair)
    first_single = load(parsed[0][2], device="cpu")  # scored below too: loaded once
    if cfg.tasks and cfg.tasks[0].kind != "similarity":  # only the test split is read: the label set comes from a model
        cfg.tasks[0].labels = list(first_single.tasks[args.task].labels)
    sources, _ = build_sources(cfg, splits=("test",))
    pairs, rows = [], []
    for label, joint, single in parsed:
        scored = {}
        for name, folder in ((first, joint), (second, single)):
            model = first_single if folder == parsed[0][2] else load(folder, device="cpu")
            gold, pred, official = score(Path(folder), model, sources, args.task)
            rows_ = per_example(args.task, gold, pred)
            mine = float(metric(args.task, rows_.sum(0), len(rows_)))
            if abs(mine - official) > 1e-9:
                sys.exit(f"{folder}: per-example {METRIC[args.task]} {mine} differs from polyhead's {official}")
            scored[name] = {"folder": folder, "value": round(official, 6), "rows": rows_}
            print(f"{label} {name}: {METRIC[args.task]} {official:.4f}", file=sys.stderr)
        pairs.append((label, scored))
        rows.append((scored[first]["rows"], scored[second]["rows"]))

    n = len(rows[0][0])
    if any(len(j) != n or len(s) != n for j, s in rows):
        sys.exit("the models were scored on test sets of different sizes")
    rng = np.random.default_rng(args.seed)
    counts = np.stack([rng.multinomial(n, np.full(n, 1 / n)) for _ in range(args.resamples)])  # resamples x n
    diffs = []
    for j, s in rows:
        diffs.append(100 * (metric(args.task, counts @ j, n) - metric(args.task, counts @ s, n)))
    diffs_arr = np.stack(diffs)  # pairs x resamples

    def summary(observed: float, boot: np.ndarray) -> dict:
        lo, hi = np.percentile(boot, [2.5, 97.5])
        return {"difference_points": round(observed, 3), "ci95_points": [round(float(lo), 3), round(float(hi), 3)],
                "share_at_or_above_target": round(float(np.mean(boot >= args.target)), 4)}

    out_pairs = []
    for (label, scored), boot in zip(pairs, diffs_arr):
        observed = 100 * (scored[first]["value"] - scored[second]["value"])
        entry = {"label": label, first: scored[first]["folder"], second: scored[second]["folder"],
                 f"{first}_value": scored[first]["value"], f"{second}_value": scored[second]["value"], **summary(observed, boot)}
        if METRIC[args.task] == "accuracy":
            jr, sr = scored[first]["rows"][:, 0], scored[second]["rows"][:, 0]
            b, c = int(((jr == 1) & (sr == 0)).sum()), int(((jr == 0) & (sr == 1)).sum())
            entry.update({f"only_{first}_right": b, f"only_{second}_right": c, "mcnemar_p": round(mcnemar_p(b, c), 4)})
        out_pairs.append(entry)
    mean_obs = float(np.mean([p["difference_points"] for p in out_pairs]))
    doc = {
        "machine": machine_description(), "argv": sys.argv, "task": args.task, "metric": METRIC[args.task],
        "difference": f"{first} - {second}",
        "test_examples": n, "resamples": args.resamples, "target_points": args.target,
        "pairs": out_pairs, "mean_over_pairs": summary(mean_obs, diffs_arr.mean(0)),
    }
    write_report(args.out, doc)
    print(json.dumps({k: doc[k] for k in ("pairs", "mean_over_pairs")}, indent=2))


if __name__ == "__main__":
    run_script(main, "paired.py")
