"""One table of full-data joint variants against the single-task references (issue 14).

Each variant is a separate `polyhead benchmark --runs joint ...` invocation (its own output dir,
its own benchmark.json, one seed); `polyhead benchmark --merge` keeps one joint run per table, so
this script puts several side by side. Rows: the single-task references, then each variant in the
order given; columns: the four headline test metrics, the difference from single-task (positive =
joint better), the worst task, seconds and trainable parameters, and the command that made the row.

    .venv/bin/python benchmarks/full_variants.py --reference benchmarks/results/benchmark.json \
        --variant "joint, old config=benchmarks/results/benchmark.json" \
        --variant "recipe=runs/benchmark/full-recipe/benchmark.json" \
        --out benchmarks/results/full-variants.json

Seconds are wall-clock of one run on one thread and depend on what else ran on the machine (the
`sources` say); compare them only within one results file's note.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

HEADLINE = {"trec": "accuracy", "sentiment": "accuracy", "conll2003": "entity_f1", "stsb": "spearman"}


def load(paths: str | Path) -> dict:
    """One benchmark.json, or several joined by commas (e.g. one per seed): their records together."""
    docs = []
    for path in str(paths).split(","):
        try:
            docs.append(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            sys.exit(f"{path}: cannot read a benchmark.json ({exc})")
    doc = dict(docs[0])
    doc["records"] = [r for d in docs for r in d.get("records", [])]
    doc["sources"] = [s for d in docs for s in (d.get("sources") or [{"command": d.get("command", ""),
                                                                         "runs": sorted({r.get("run", "") for r in d.get("records", [])})}])]
    return doc


def scores(doc: dict, run: str) -> dict[str, dict[str, float]]:
    """task -> {value (mean over seeds), sd, seeds, seconds, trainable_params} for `run`'s test headlines."""
    out: dict[str, dict[str, float]] = {}
    for task, metric in HEADLINE.items():
        rows = [r for r in doc.get("records", []) if r.get("run") == run and r.get("task") == task
                and r.get("metric") == metric and r.get("split", "test") == "test"]
        if not rows:
            continue
        values = [float(r["value"]) for r in rows]
        out[task] = {
            "value": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "seeds": len(values),
            "seconds": statistics.fmean(float(r.get("seconds") or 0.0) for r in rows),
            "trainable_params": int(rows[0].get("trainable_params") or 0),
        }
    return out


def command_of(doc: dict, run: str) -> str:
    """The command line(s) that made `run`'s records, '; '-joined."""
    found = [src.get("command", "") for src in doc.get("sources", []) if any(r.split("/")[0] == run for r in src.get("runs", []))]
    return " ; ".join(dict.fromkeys(found)) or doc.get("command", "")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, help="benchmark.json holding the single-task runs (several: comma-separated)")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME=BENCHMARK_JSON[,BENCHMARK_JSON...][:RUN]",
                    help="a joint variant (RUN defaults to joint; several files, e.g. one per seed: comma-separated, "
                         "cells show mean ± sd); repeatable, rows keep this order")
    ap.add_argument("--note", default="", help="how the runs were made (machine load, threads)")
    ap.add_argument("--out", type=Path, required=True, help="results JSON; the Markdown table goes next to it")
    args = ap.parse_args(argv)

    ref_doc = load(args.reference)
    single = scores(ref_doc, "single")
    missing = [t for t in HEADLINE if t not in single]
    if missing:
        sys.exit(f"{args.reference}: no single-task test record for {', '.join(missing)}")
    rows = [{"name": "single-task (one model per task)", "source": args.reference, "command": command_of(ref_doc, "single"),
             "scores": single, "seconds": sum(s["seconds"] for s in single.values()),
             "trainable_params": sum(s["trainable_params"] for s in single.values())}]
    for spec in args.variant:
        name, sep, rest = spec.rpartition("=")  # the name may hold "=", a path does not
        if not sep or not name:
            sys.exit(f"--variant {spec!r}: expected NAME=BENCHMARK_JSON[:RUN]")
        path, _, run = rest.partition(":")
        doc = load(path)
        got = scores(doc, run or "joint")
        if set(got) != set(HEADLINE):
            sys.exit(f"{path}: run {run or 'joint'!r} lacks test records for {sorted(set(HEADLINE) - set(got))}")
        first = next(iter(got.values()))
        rows.append({"name": name, "source": path, "command": command_of(doc, run or "joint"), "scores": got,
                     "seconds": first["seconds"], "trainable_params": first["trainable_params"],
                     "minus_single": {t: got[t]["value"] - single[t]["value"] for t in HEADLINE}})
    for row in rows[1:]:
        row["worst"] = min(row["minus_single"].values())

    result = {"machine": ref_doc.get("machine", ""), "argv": sys.argv if argv is None else argv, "note": args.note,
              "headline": HEADLINE, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")

    def cell(s: dict[str, float]) -> str:
        return f"{s['value']:.4f}" + (f" ± {s['sd']:.4f} ({s['seeds']} seeds)" if s["seeds"] > 1 else "")

    lines = [f"Full-data test scores ({result['machine']}); {args.note}".rstrip("; "), "",
             "| run | " + " | ".join(f"{t} {m}" for t, m in HEADLINE.items()) + " | worst task − single | seconds | trainable parameters |",
             "|---|" + "---|" * (len(HEADLINE) + 3)]
    for row in rows:
        cells = []
        for t in HEADLINE:
            c = cell(row["scores"][t])
            if "minus_single" in row:
                c += f" ({100 * row['minus_single'][t]:+.2f})"
            cells.append(c)
        worst = f"{100 * row['worst']:+.2f}" if "worst" in row else "—"
        lines.append(f"| {row['name']} | " + " | ".join(cells) + f" | {worst} | {row['seconds']:,.0f} | {row['trainable_params']:,} |")
    lines += ["", "Differences from single-task in points (×100). Commands:", ""]
    lines += [f"- {row['name']}: `{row['command']}`" for row in rows]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
