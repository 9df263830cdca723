"""Benchmark results: the records' schema, Markdown tables, and combining invocations.

Every figure is a record {run, task, split, metric, value, seconds, trainable_params}. A results
file accumulates: an invocation adds its runs to what the file held for the same data (full,
or the same subset) instead of dropping other runs' figures.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import PolyheadError
from ..io import write_text_atomic
from .subset import QUICK

TASKS: tuple[str, ...] = ("trec", "sentiment", "conll2003", "stsb")
# Every metric recorded per task; the first is the task's headline.
METRICS: dict[str, tuple[str, ...]] = {
    "trec": ("accuracy", "macro_f1"),
    "sentiment": ("accuracy", "macro_f1"),
    "conll2003": ("entity_f1",),
    "stsb": ("spearman",),
}
# Reference figures from BENCHMARK.md (single-task fine-tuning, mean of 2 seeds, one H200).
REFERENCE: dict[str, float] = {"trec": 0.965, "sentiment": 0.862, "conll2003": 0.869, "stsb": 0.855}
REFERENCE_FROZEN: dict[str, float] = {"trec": 0.900, "sentiment": 0.781}
UNTRAINED_STSB_REFERENCE = 0.8203
RUNS: tuple[str, ...] = ("joint", "single", "frozen-encoder", "untrained")
SCENARIOS: tuple[str, ...] = (
    "frozen-all", "frozen-backbone", "full", "gradual-unfreezing", "layer-decay", "head-frozen",
    "uncertainty-weighting", "proportional-sampling", "stsb-weighted",
)
DEFAULT_STUDY_SCENARIOS: tuple[str, ...] = SCENARIOS[:6]


def records_from(run: str, test: dict[str, dict[str, float]], seconds: float, trainable: int) -> list[dict[str, Any]]:
    """Schema records for one run's test metrics (one record per task and metric)."""
    out = []
    for task, metrics in test.items():
        for metric in METRICS.get(task, tuple(k for k in metrics if k != "n")):
            if metric in metrics:
                out.append({"run": run, "task": task, "split": "test", "metric": metric,
                            "value": round(float(metrics[metric]), 6), "seconds": round(float(seconds), 1),
                            "trainable_params": int(trainable)})
    return out


def _value(records: list[dict], run: str, task: str, metric: str) -> float | None:
    """The value of one (run, task, metric) record, or None."""
    for r in records:
        if r["run"] == run and r["task"] == task and r["metric"] == metric:
            return r["value"]
    return None


def _total(doc: dict[str, Any]) -> str:
    """The run time for a header: a combined doc's invocations may have run side by side."""
    extra = " summed over invocations" if len(doc.get("sources") or ()) > 1 else " total"
    return f"{doc.get('total_seconds', 0):.0f} s{extra}"


def _command_lines(doc: dict[str, Any]) -> list[str]:
    """The command that made a results doc, or one line per invocation for a combined one."""
    if len(doc.get("sources") or ()) > 1:
        return ["Commands:"] + [
            f"- `{s['command']}` ({s['date']}, {s['machine']}, {float(s.get('total_seconds') or 0):.0f} s): {', '.join(dict.fromkeys(r.split('/')[0] for r in s['runs']))}"
            for s in doc["sources"]]
    return [f"Command: `{doc['command']}`"]


def markdown_table(doc: dict[str, Any]) -> str:
    """The headline table (per task: joint, single, frozen encoder, untrained) and per-run costs."""
    recs = doc["records"]
    subset = doc.get("subset")
    label = "full data" if not subset else "QUICK SUBSET (smoke test, not results)" if subset == QUICK.describe() else "SUBSET"
    lines = [f"Benchmark ({label}): {doc['date']}, {doc['machine']}, {_total(doc)}",
             *_command_lines(doc)]
    if doc.get("subset"):
        lines.append(f"Subset: {doc['subset']}")
    lines += [
        "",
        "| task | test metric | joint | single-task | joint - single | frozen encoder | untrained "
        "| reference: single (H200) | reference: frozen |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def fmt(v: float | None) -> str:
        """Four decimals, or a dash for a run that did not happen."""
        return "—" if v is None else f"{v:.4f}"

    for task in TASKS:
        for metric in METRICS[task]:
            vals = {run: _value(recs, run, task, metric) for run in RUNS}
            if all(v is None for v in vals.values()):
                continue
            diff = None if vals["joint"] is None or vals["single"] is None else vals["joint"] - vals["single"]
            headline = metric == METRICS[task][0]
            ref = REFERENCE.get(task) if headline else None
            ref_frozen = (UNTRAINED_STSB_REFERENCE if task == "stsb" else REFERENCE_FROZEN.get(task)) if headline else None
            if task == "stsb" and vals["frozen-encoder"] is None and vals["untrained"] is not None:
                frozen = "= untrained"  # the similarity head has no parameters: frozen encoder = untrained
            else:
                frozen = fmt(vals["frozen-encoder"])
            lines.append(f"| {task} | {metric} | {fmt(vals['joint'])} | {fmt(vals['single'])} | "
                         f"{'—' if diff is None else f'{diff:+.4f}'} | {frozen} | {fmt(vals['untrained'])} | {fmt(ref)} | {fmt(ref_frozen)} |")
    lines += ["", "| run | task(s) | seconds | trainable parameters |", "|---|---|---|---|"]
    seen: set[tuple[str, float]] = set()
    for r in recs:
        key = (r["run"], r["seconds"]) if r["run"] in ("joint", "untrained") else (f"{r['run']}/{r['task']}", r["seconds"])
        if key in seen:
            continue
        seen.add(key)
        tasks = ", ".join(sorted({x["task"] for x in recs if x["run"] == r["run"] and x["seconds"] == r["seconds"]}))
        lines.append(f"| {r['run']} | {tasks} | {r['seconds']:.0f} | {r['trainable_params']:,} |")
    if doc.get("note"):
        lines += ["", doc["note"]]
    return "\n".join(lines) + "\n"


def study_markdown(doc: dict[str, Any]) -> str:
    """Per scenario: each task's test score, the run's seconds and trainable parameters."""
    recs = doc["records"]
    lines = [
        f"Freezing / transfer-learning study: {doc['date']}, {doc['machine']}, {_total(doc)}",
        *_command_lines(doc),
        f"Subset (same for every scenario): {doc['subset']}",
        "",
        "| scenario | " + " | ".join(f"{t} {METRICS[t][0]}" for t in TASKS) + " | mean | seconds | trainable parameters |",
        "|---|" + "---|" * (len(TASKS) + 3),
    ]
    for scenario in doc["scenarios"]:
        vals = [_value(recs, scenario, t, METRICS[t][0]) for t in TASKS]
        rows = [r for r in recs if r["run"] == scenario]
        if not rows:
            continue
        present = [v for v in vals if v is not None]
        mean = sum(present) / len(present) if present else None
        cells = ["—" if v is None else f"{v:.4f}" for v in vals]
        lines.append(f"| {scenario} | " + " | ".join(cells) + f" | {'—' if mean is None else f'{mean:.4f}'} | "
                     f"{rows[0]['seconds']:.0f} | {rows[0]['trainable_params']:,} |")
    note = doc.get("notes", {}).get("head-frozen")
    if note:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def _write(doc: dict[str, Any], paths: Sequence[Path], render: Callable[[dict], str]) -> None:
    """JSON to each path, and the Markdown next to each (same stem, .md)."""
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(doc, indent=2) + "\n")
        write_text_atomic(path.with_suffix(".md"), render(doc))


_SOURCE_KEYS = ("command", "date", "machine", "total_seconds")


def combine(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One results doc from several invocations on the same data (full, or the same subset).

    A later doc's record replaces an earlier one with the same run, task and metric; records keep
    the issue's schema, and `sources` lists each command with the run/task pairs it still
    contributes (a source whose records were all replaced drops out). Study docs also union
    their scenarios and notes.
    """
    subsets = {d.get("subset") for d in docs}
    if len(subsets) > 1:
        raise PolyheadError(f"cannot combine results of different data: {sorted(map(str, subsets))}")
    records: dict[tuple[str, str, str], tuple[int, dict[str, Any]]] = {}  # key -> (source index, record)
    sources: list[dict[str, Any]] = []
    for doc in docs:
        # An already-combined doc brings its sources (each naming its run/task pairs); a plain one is one source.
        own = doc.get("sources") or [{k: doc.get(k) for k in _SOURCE_KEYS}]
        for rec in doc["records"]:
            pair = f"{rec['run']}/{rec['task']}"
            src = next((x for x in own if pair in (x.get("runs") or ())), own[0])
            head = {k: src.get(k) for k in _SOURCE_KEYS}
            if head not in sources:
                sources.append(head)
            records[(rec["run"], rec["task"], rec["metric"])] = (sources.index(head), rec)
    used = sorted({i for i, _ in records.values()})
    for i in used:
        sources[i]["runs"] = sorted({f"{r['run']}/{r['task']}" for j, r in records.values() if j == i})
    sources = [sources[i] for i in used]
    out: dict[str, Any] = {
        "machine": "; ".join(dict.fromkeys(str(s.get("machine")) for s in sources)) or docs[-1]["machine"],
        "date": max((str(s.get("date")) for s in sources), default=docs[-1]["date"]),
        "command": " ; ".join(str(s.get("command")) for s in sources) or docs[-1]["command"],
        "subset": docs[-1].get("subset"),
        "total_seconds": round(sum(float(s.get("total_seconds") or 0) for s in sources), 1),
        "sources": sources,
        "records": [rec for _, rec in records.values()],
    }
    if any("scenarios" in d for d in docs):
        seen = {s for d in docs for s in d.get("scenarios", [])}
        out["scenarios"] = [s for s in SCENARIOS if s in seen]
        out["notes"] = {k: v for d in docs for k, v in (d.get("notes") or {}).items()}
    for d in docs:  # a hand-written note on a results file stays with it
        if d.get("note"):
            out["note"] = d["note"]
    return out


def _read_doc(path: Path) -> dict[str, Any]:
    """A results JSON file, or a PolyheadError saying why it is not one."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PolyheadError(f"cannot read benchmark results {path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise PolyheadError(f"{path} has no records: not a benchmark.json")
    return doc


def merge_results(paths: Sequence[str | Path], results_dir: str | Path = "benchmarks/results") -> dict[str, Any]:
    """Combine full-data benchmark.json files from separate invocations into results_dir/benchmark.json (+ .md).

    For runs made apart (e.g. the joint and single-task runs in parallel, one core each, each
    into its own --output-dir). Later files win for the same run, task and metric.
    """
    if not paths:
        raise PolyheadError("--merge needs at least one benchmark.json")
    docs = [_read_doc(Path(p)) for p in paths]
    for path, doc in zip(paths, docs):
        if doc.get("subset"):
            raise PolyheadError(f"{path} is a subset run ({doc['subset']}); only full-data results are merged")
    merged = combine(docs)
    _write(merged, [Path(results_dir) / "benchmark.json"], markdown_table)
    return merged


class ResultsWriter:
    """Writes an invocation's doc to its output folder, and to the results folder combined with what
    that file already held for the same data, so running some runs never drops the others' figures."""

    def __init__(self, out: Path, results: Path | None, render: Callable[[dict], str]) -> None:
        self.out, self.results, self.render = out, results, render
        self.before: dict[str, Any] | None = None
        if results is not None and results.is_file():
            try:
                self.before = _read_doc(results)
            except PolyheadError as exc:
                print(f"polyhead benchmark: warning: {exc}; it will be replaced", file=sys.stderr)

    def write(self, doc: dict[str, Any]) -> None:
        _write(doc, [self.out], self.render)
        if self.results is None:
            return
        keep = self.before is not None and self.before.get("subset") == doc.get("subset")
        if self.before is not None and not keep:
            print(f"polyhead benchmark: warning: {self.results} held results on other data "
                  f"({self.before.get('subset') or 'full data'}); replacing them (git has the old file)", file=sys.stderr)
            self.before = None  # warned once; later writes of this invocation replace it alike
        _write(combine([self.before, doc]) if keep else doc, [self.results], self.render)

    @property
    def paths(self) -> list[Path]:
        return [self.out] + ([self.results] if self.results is not None else [])
