"""Which epoch each checkpoint-selection rule would keep, replayed from finished joint runs' dev
curves (issue 14: does a selection that does not trade one task for another change what is kept?).

Reads RUN/training/curves.csv (the dev rows every joint run logs) and RUN/training/metrics.json
(the step the run kept) of each run given; no model is loaded and nothing is trained. Test scores
exist only for the kept checkpoint, so this says *which* epoch a rule keeps and that epoch's dev
scores, not what it would score on test. Rules, all on dev only, as in joint_curves.py: `mean`
(what the runs did), `min-relative` against the run's own best dev score per task, `min-relative`
against --reference (e.g. the single-task models' dev scores, as `training.select_reference`
would give them), and `last`. For each rule and epoch it names the binding task (the one furthest
below its reference), since that is the task min-relative is really selecting on.

    .venv/bin/python benchmarks/selection_replay.py runs/benchmark/full-prop/joint runs/benchmark/full-prop-s1/joint-s1 \\
        --reference trec=0.949,sentiment=0.8562,conll2003=0.9151,stsb=0.8939 --out benchmarks/results/selection-replay.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from joint_curves import HEADLINE, pick, read_curves, references  # noqa: E402


def parse_reference(text: str) -> dict[str, float]:
    """`task=value,task=value` -> {task: value}; exits with the offending part on a bad one."""
    out: dict[str, float] = {}
    for part in filter(None, text.split(",")):
        task, _, value = part.partition("=")
        try:
            out[task.strip()] = float(value)
        except ValueError:
            sys.exit(f"--reference: {part!r} is not task=number")
        if task.strip() not in HEADLINE or out[task.strip()] <= 0:
            sys.exit(f"--reference: {part!r}: want one of {sorted(HEADLINE)} = a positive dev score")
    return out


def binding(dev: dict[str, float], reference: dict[str, float]) -> str:
    """The task furthest below its reference (what min-relative selects on at this evaluation)."""
    return min(dev, key=lambda t: dev[t] / reference[t])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path, nargs="+", help="joint run folders (each with training/curves.csv)")
    ap.add_argument("--reference", default="", help="task=dev score,... for min-relative (single-task dev scores)")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    reference = parse_reference(args.reference)
    rows = []
    for run in args.runs:
        dev, _, epoch = read_curves(run, need_test=False)
        steps = sorted(dev)
        try:
            kept = json.loads((run / "training" / "metrics.json").read_text(encoding="utf-8")).get("best_step")
        except (OSError, ValueError) as exc:
            sys.exit(f"{run}: cannot read training/metrics.json ({exc})")
        rules = {"mean": pick(dev, "mean"), "min-relative (own best)": pick(dev, "min-relative"), "last": pick(dev, "last")}
        if reference:
            rules["min-relative (reference)"] = pick(dev, "min-relative", reference)
        ref = references(dev, reference)
        rows.append({
            "run": str(run), "kept_by_the_run": kept,
            "epochs": [{"epoch": epoch[s], "step": s, "dev": dev[s], "mean": sum(dev[s].values()) / len(dev[s]),
                        "binding_task": binding(dev[s], ref)} for s in steps],
            "kept_epoch": {rule: epoch[s] for rule, s in rules.items()},
        })
    agree = sum(r["kept_epoch"].get("min-relative (reference)", r["kept_epoch"]["mean"]) == r["kept_epoch"]["mean"] for r in rows)
    doc = {"command": " ".join([".venv/bin/python", *sys.argv]), "reference_dev": reference, "runs": rows,
           "same_epoch_as_mean": f"{agree} of {len(rows)}"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    rule_names = list(rows[0]["kept_epoch"])
    lines = ["Epoch each checkpoint-selection rule keeps, replayed from the runs' dev curves (no test scores: only the kept epoch was scored)",
             f"Command: `{doc['command']}`", "",
             "| run | " + " | ".join(rule_names) + " | binding task per epoch (vs reference) |",
             "|---|" + "---|" * len(rule_names) + "---|"]
    for r in rows:
        lines.append(f"| {r['run']} | " + " | ".join(str(r["kept_epoch"][n]) for n in rule_names) + " | "
                     + ", ".join(e["binding_task"] for e in r["epochs"]) + " |")
    lines += ["", f"min-relative against the reference keeps the same epoch as mean in {doc['same_epoch_as_mean']} runs."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
