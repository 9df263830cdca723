"""Where a CoNLL gap sits: per entity type F1 (test and dev) and the dev curve of trained models (issue 14).

Reads each model folder's training/metrics.json (final dev and test scores, written by
`polyhead train` and `polyhead benchmark`) and training/curves.csv (dev at every evaluation), so
it trains and scores nothing itself. The first model is the reference; the table shows the
others' difference from it in points.

    .venv/bin/python benchmarks/conll_types.py \
        --model "single-task=runs/benchmark/full-teacher/single-conll2003" \
        --model "joint recipe=runs/benchmark/full-recipe/joint" \
        --out benchmarks/results/conll-types.json
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

TASK = "conll2003"
COLUMNS = ["entity_f1", "precision", "recall", "f1_LOC", "f1_MISC", "f1_ORG", "f1_PER"]


def read(folder: Path) -> dict:
    try:
        metrics = json.loads((folder / "training" / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        sys.exit(f"{folder}: no readable training/metrics.json ({exc})")
    if TASK not in metrics.get("test", {}):
        sys.exit(f"{folder}: metrics.json has no {TASK} test scores")
    curve = []
    curves = folder / "training" / "curves.csv"
    if curves.is_file():
        with open(curves, encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row["type"] == "eval" and row["task"] == TASK:
                    curve.append({"step": int(row["step"]), "epoch": int(row["epoch"]), "dev_entity_f1": round(float(row["entity_f1"]), 4)})
    return {split: {k: round(float(metrics[split][TASK][k]), 4) for k in COLUMNS} for split in ("dev", "test")} | {
        "best_step": metrics.get("best_step"), "dev_curve": curve}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, metavar="NAME=MODEL_DIR", help="the first is the reference")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    rows = []
    for spec in args.model:
        name, sep, folder = spec.partition("=")
        if not sep:
            sys.exit(f"--model {spec!r}: expected NAME=MODEL_DIR")
        rows.append({"name": name, "folder": folder, **read(Path(folder))})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"argv": sys.argv if argv is None else argv, "models": rows}, indent=1) + "\n", encoding="utf-8")

    ref = rows[0]
    lines = []
    for split in ("test", "dev"):
        lines += [f"CoNLL-2003 {split}: F1 by entity type (difference from {ref['name']} in points)", "",
                  "| model | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
        for r in rows:
            cells = [f"{r[split][c]:.4f}" + ("" if r is ref else f" ({100 * (r[split][c] - ref[split][c]):+.2f})") for c in COLUMNS]
            lines.append(f"| {r['name']} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["Dev entity F1 at each evaluation (optimiser step: F1):", ""]
    lines += [f"- {r['name']}: " + ", ".join(f"{c['step']}: {c['dev_entity_f1']:.4f}" for c in r["dev_curve"]) for r in rows]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
