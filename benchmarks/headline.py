"""The README's benchmark table: today's recipe against single-task models, with the served embedding.

Reads the committed three-seed comparison (benchmarks/results/full-dother-3seeds.json: its
single-task row and today's recipe row) and writes benchmarks/results/headline.json + .md: the same
rows (their format: per task value, sd, seeds, seconds, trainable parameters) plus each row's
`embedding_stsb`, the STS-B test Spearman of the sentence embedding the row's deployment serves:

- the joint model serves one embedding, the one its STS-B head scores (the similarity head is the
  cosine of that embedding), so its value is the row's own stsb score;
- one model per task serves the STS-B model's embedding for similarity;
- the untrained all-MiniLM-L6-v2 (the row added for reference) serves its published embedding.

    python benchmarks/headline.py
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "benchmarks/results/full-dother-3seeds.json"
OUT = "benchmarks/results/headline.json"
RECIPE = "recipe + teacher on every task's texts"
UNTRAINED = ("benchmarks/results/benchmark.json", "untrained", "stsb", "spearman")
TASKS = (("trec", "TREC-6", "accuracy"), ("sentiment", "movie sentiment", "accuracy"),
         ("conll2003", "CoNLL-2003", "entity F1"), ("stsb", "STS-B", "Spearman"))


def build() -> dict:
    source = json.loads((ROOT / SOURCE).read_text())
    single = next(r for r in source["rows"] if r["name"].startswith("single-task"))
    recipe = next(r for r in source["rows"] if r["name"].startswith(RECIPE))
    bench = json.loads((ROOT / UNTRAINED[0]).read_text())
    untrained = next(r["value"] for r in bench["records"]
                     if (r["run"], r["task"], r["metric"]) == UNTRAINED[1:] and r.get("split", "test") == "test")
    rows = [
        {**recipe, "name": "joint, today's recipe (configs/benchmark.yaml; one model, 4 heads)",
         "embedding_stsb": recipe["scores"]["stsb"]["value"], "embedding_stsb_from": "its own stsb score (the similarity head is the embedding's cosine)"},
        {**single, "name": "single-task (one model per task, 4 models)",
         "embedding_stsb": single["scores"]["stsb"]["value"], "embedding_stsb_from": "the STS-B model's embedding"},
        {"name": "untrained all-MiniLM-L6-v2 (the starting encoder)", "source": UNTRAINED[0], "scores": {},
         "embedding_stsb": untrained, "embedding_stsb_from": "polyhead benchmark --runs untrained"},
    ]
    return {"machine": source["machine"], "note": source["note"], "headline": source["headline"],
            "from": [SOURCE, UNTRAINED[0]], "command": "python benchmarks/headline.py", "rows": rows}


def markdown(doc: dict) -> str:
    joint, single, untrained = doc["rows"]
    lines = ["| task | test metric | **joint, today's recipe** (one model, 4 heads) | single-task (4 models) | joint − single (points) |",
             "|---|---|---|---|---|"]
    for task, name, metric in TASKS:
        j, s = joint["scores"][task], single["scores"][task]
        lines.append(f"| {name} | {metric} | **{j['value']:.4f}** ± {j['sd']:.4f} | {s['value']:.4f} ± {s['sd']:.4f} | "
                     f"{100 * (j['value'] - s['value']):+.2f} |")
    lines.append(f"| served sentence embedding | STS-B Spearman | **{joint['embedding_stsb']:.4f}** | "
                 f"{single['embedding_stsb']:.4f} (the STS-B model) | {100 * (joint['embedding_stsb'] - single['embedding_stsb']):+.2f} |")
    lines += ["", f"Starting encoder (untrained all-MiniLM-L6-v2): STS-B {untrained['embedding_stsb']:.4f}. "
              f"Means ± sd over seeds 42, 1, 2 (single-task STS-B: 42 and 2). Training seconds on one thread: "
              f"joint {joint['seconds']:,.0f} (plus its CoNLL teacher), single-task {single['seconds']:,.0f} for the four."]
    return "\n".join(lines) + "\n"


def relative_paths(text: str) -> str:
    """The source's recorded commands name run folders by this machine's absolute path
    (/somewhere/runs/...): keep them relative to the repository, as every results file should."""
    return re.sub(r"(?<![\w.])/[^\s\"']*?/(runs/)", r"\1", text)


def main() -> int:
    doc = build()
    (ROOT / OUT).write_text(relative_paths(json.dumps(doc, indent=1)) + "\n")
    (ROOT / OUT).with_suffix(".md").write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
