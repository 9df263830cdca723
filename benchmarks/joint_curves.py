"""Dev and test scores of a joint run at every evaluation, and what each checkpoint-selection rule
would have kept (issue 14: rule out a measurement error; choose a selection rule).

Reads OUTPUT/training/curves.csv of a run trained with `training.eval_test: true` (test scored at
every evaluation, never used for selection) and, optionally, reference dev scores (the single-task
models' dev scores from a benchmark.json/quality.json with dev records). Writes JSON + Markdown.

    .venv/bin/python benchmarks/joint_curves.py runs/benchmark/full-joint-evaltest/joint \
        --out benchmarks/results/joint-curves.json [--reference-json benchmarks/results/benchmark.json]

Selection rules, all on dev only: `mean` (the mean of the task headlines; what the run did),
`min-relative` (the worst task's dev score over the best dev score any evaluation of this run
reached for it; or over --reference-json's single-task dev scores), and `last`.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

HEADLINE = {"trec": "accuracy", "sentiment": "accuracy", "conll2003": "entity_f1", "stsb": "spearman"}


def read_curves(run: Path, need_test: bool = True) -> tuple[dict[int, dict[str, float]], dict[int, dict[str, float]], dict[int, int]]:
    """Per evaluation step: dev headline per task, test headline per task, and the epoch (exits when
    `need_test` and the run did not score test at every evaluation)."""
    dev: dict[int, dict[str, float]] = {}
    test: dict[int, dict[str, float]] = {}
    epoch: dict[int, int] = {}
    try:
        fh = open(run / "training" / "curves.csv", encoding="utf-8")
    except OSError as exc:
        sys.exit(f"{run}: not a finished polyhead run folder ({exc.strerror}: {exc.filename})")
    with fh:
        for row in csv.DictReader(fh):
            if row["type"] not in ("eval", "eval-test") or row["task"] not in HEADLINE:
                continue
            step = int(row["step"])
            value = float(row[HEADLINE[row["task"]]])
            (dev if row["type"] == "eval" else test).setdefault(step, {})[row["task"]] = value
            epoch[step] = int(row["epoch"])
    if not dev:
        sys.exit(f"{run}: no eval rows in training/curves.csv")
    if need_test and not test:
        sys.exit(f"{run}: no eval-test rows in curves.csv; train with --set training.eval_test=true")
    return dev, test, epoch


def pick(dev: dict[int, dict[str, float]], rule: str, reference: dict[str, float] | None = None) -> int:
    """The evaluation step a rule keeps (post hoc: over the whole curve)."""
    steps = sorted(dev)
    if rule == "last":
        return steps[-1]
    if rule == "mean":
        return max(steps, key=lambda s: (sum(dev[s].values()) / len(dev[s]), -s))
    ref = references(dev, reference)
    return max(steps, key=lambda s: (min(v / ref[t] for t, v in dev[s].items()), -s))


def references(dev: dict[int, dict[str, float]], given: dict[str, float] | None = None) -> dict[str, float]:
    """What min-relative divides by, per task: `given` (e.g. single-task dev scores), else the best
    dev score any evaluation of the run reached."""
    steps = sorted(dev)
    peaks = {t: max(dev[s][t] for s in steps if t in dev[s]) for t in dev[steps[0]]}
    return {**peaks, **(given or {})}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--reference-json", type=Path, help="results JSON with single-task dev records (run single/single-task)")
    args = ap.parse_args()
    dev, test, epoch = read_curves(args.run)
    reference = None
    if args.reference_json:
        recs = json.loads(args.reference_json.read_text())["records"]
        reference = {}
        for r in recs:
            if r.get("split") == "dev" and r["run"] in ("single", "single-task") and r["metric"] == HEADLINE.get(r["task"]):
                reference.setdefault(r["task"], []).append(r["value"])
        reference = {t: sum(v) / len(v) for t, v in reference.items()}
    metrics = json.loads((args.run / "training" / "metrics.json").read_text())
    rules = {"mean": pick(dev, "mean"), "min-relative": pick(dev, "min-relative"), "last": pick(dev, "last")}
    if reference:
        rules["min-relative (single-task dev)"] = pick(dev, "min-relative", reference)
    doc = {
        "run": str(args.run), "command": " ".join([".venv/bin/python", *sys.argv]),
        "kept_by_the_run": metrics.get("best_step"), "final_test": metrics.get("test"),
        "evaluations": [{"step": s, "epoch": epoch[s], "dev": dev[s], "test": test.get(s, {})} for s in sorted(dev)],
        "selection": {rule: {"step": s, "dev": dev[s], "test": test.get(s, {})} for rule, s in rules.items()},
        "reference_dev": reference,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    tasks = list(HEADLINE)
    lines = [f"Joint run {args.run}: dev / test headline at every evaluation", f"Command: `{doc['command']}`", "",
             "| step | epoch | " + " | ".join(f"{t} dev | {t} test" for t in tasks) + " | mean dev |",
             "|---|---|" + "---|---|" * len(tasks) + "---|"]
    for e in doc["evaluations"]:
        cells = " | ".join(f"{e['dev'].get(t, float('nan')):.4f} | {e['test'].get(t, float('nan')):.4f}" for t in tasks)
        lines.append(f"| {e['step']} | {e['epoch']} | {cells} | {sum(e['dev'].values()) / len(e['dev']):.4f} |")
    lines += ["", "| selection rule | step kept | " + " | ".join(f"{t} test" for t in tasks) + " |",
              "|---|---|" + "---|" * len(tasks)]
    for rule, sel in doc["selection"].items():
        lines.append(f"| {rule} | {sel['step']} | " + " | ".join(f"{sel['test'].get(t, float('nan')):.4f}" for t in tasks) + " |")
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
