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
# The served embedding of every run's model, scored on STS-B test (cosine of the two sentences'
# vectors): records {run, task: the task a single-task/frozen run trained (ALL_TASKS for the joint
# and untrained models), metric: EMBEDDING_METRIC}.
EMBEDDING_METRIC = "embedding_stsb"
ALL_TASKS = "all"
SCENARIOS: tuple[str, ...] = (
    "frozen-all", "frozen-backbone", "full", "gradual-unfreezing", "layer-decay", "head-frozen",
    "uncertainty-weighting", "proportional-sampling", "stsb-weighted",
    # the joint-quality study (docs/research/notebook.md): single-task references and one change each
    "single-task", "sts-cosent", "sts-angle", "loss-scale", "famo", "anchor", "distill",
)
DEFAULT_STUDY_SCENARIOS: tuple[str, ...] = SCENARIOS[:6]
QUALITY_SCENARIOS: tuple[str, ...] = (
    "single-task", "full", "sts-cosent", "sts-angle", "loss-scale", "famo", "anchor", "distill",
)


def records_from(
    run: str, test: dict[str, dict[str, float]], seconds: float, trainable: int,
    seed: int | None = None, dev: dict[str, dict[str, float]] | None = None,
) -> list[dict[str, Any]]:
    """Schema records for one run's test metrics (one record per task and metric).

    With `seed` each record says which seed made it (runs repeated over seeds); with `dev` the
    dev scores of the kept checkpoint are recorded too (split "dev").
    """
    out = []
    for split, scores in (("test", test), ("dev", dev or {})):
        for task, metrics in scores.items():
            for metric in METRICS.get(task, tuple(k for k in metrics if k != "n")):
                if metric in metrics:
                    rec = {"run": run, "task": task, "split": split, "metric": metric,
                           "value": round(float(metrics[metric]), 6), "seconds": round(float(seconds), 1),
                           "trainable_params": int(trainable)}
                    if seed is not None:
                        rec["seed"] = int(seed)
                    out.append(rec)
    return out


def _matching(records: list[dict], run: str, task: str, metric: str, split: str = "test") -> list[dict]:
    """The records of one (run, task, metric, split): one per seed."""
    return [r for r in records
            if r["run"] == run and r["task"] == task and r["metric"] == metric and r.get("split", "test") == split]


def _mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    mean = sum(values) / len(values)
    sd = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return mean, sd


def stats(records: list[dict], run: str, task: str, metric: str, split: str = "test") -> tuple[float, float, int] | None:
    """Mean, sample standard deviation (0 for one value) and count of a (run, task, metric) over seeds."""
    vals = [float(r["value"]) for r in _matching(records, run, task, metric, split)]
    if not vals:
        return None
    return (*_mean_sd(vals), len(vals))


def _value(records: list[dict], run: str, task: str, metric: str) -> float | None:
    """The test value of one (run, task, metric), the mean over seeds where there are several, or None."""
    got = stats(records, run, task, metric)
    return None if got is None else got[0]


def _cell(got: tuple[float, float, int] | None) -> str:
    """`0.8203`, or `0.8203 ± 0.0021` for a mean over several seeds, or a dash."""
    if got is None:
        return "—"
    mean, sd, n = got
    return f"{mean:.4f}" if n == 1 else f"{mean:.4f} ± {sd:.4f}"


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
            lines.append(f"| {task} | {metric} | {_cell(stats(recs, 'joint', task, metric))} | {_cell(stats(recs, 'single', task, metric))} | "
                         f"{'—' if diff is None else f'{diff:+.4f}'} | {frozen} | {fmt(vals['untrained'])} | {fmt(ref)} | {fmt(ref_frozen)} |")
    seeds = sorted({r["seed"] for r in recs if "seed" in r})
    if seeds:
        lines += ["", f"Trained runs: mean ± sample standard deviation over seeds {', '.join(map(str, seeds))} (training.seed); "
                  "joint - single is the difference of the means."]
    lines += ["", "| run | task(s) | seconds | trainable parameters |", "|---|---|---|---|"]
    seen: set[tuple[str, float]] = set()
    for r in recs:
        if r.get("split", "test") != "test" or r["metric"] == EMBEDDING_METRIC:
            continue
        key = (r["run"], r["seconds"]) if r["run"] in ("joint", "untrained") else (f"{r['run']}/{r['task']}", r["seconds"])
        if key in seen:
            continue
        seen.add(key)
        tasks = ", ".join(sorted({x["task"] for x in recs if x["run"] == r["run"] and x["seconds"] == r["seconds"]
                                  and x["metric"] != EMBEDDING_METRIC}))
        run = r["run"] if "seed" not in r else f"{r['run']} (seed {r['seed']})"
        lines.append(f"| {run} | {tasks} | {r['seconds']:.0f} | {r['trainable_params']:,} |")
    lines += _embedding_table(recs)
    if doc.get("note"):
        lines += ["", doc["note"]]
    return "\n".join(lines) + "\n"


def _embedding_table(recs: list[dict]) -> list[str]:
    """What each run's training did to the served sentence embedding: its STS-B test Spearman."""
    if not any(r["metric"] == EMBEDDING_METRIC for r in recs):
        return []
    out = ["", "The served sentence embedding of each run's model (STS-B test Spearman of the cosine, on this "
           f"benchmark's STS-B test pairs; all-MiniLM-L6-v2 scores {UNTRAINED_STSB_REFERENCE} on the full test set):", "",
           "| run | trained on | embedding STS-B |", "|---|---|---|"]
    for run in RUNS:
        for task in (ALL_TASKS, *TASKS):
            got = stats(recs, run, task, EMBEDDING_METRIC)
            if got is not None:
                what = "nothing" if run == "untrained" else ("every task" if task == ALL_TASKS else task)
                out.append(f"| {run} | {what} | {_cell(got)} |")
    return out


def study_markdown(doc: dict[str, Any]) -> str:
    """Per scenario: each task's test score, the run's seconds and trainable parameters."""
    recs = doc["records"]
    lines = [
        f"{'Joint-quality study' if any(x in QUALITY_SCENARIOS and x != 'full' for x in doc['scenarios']) else 'Freezing / transfer-learning study'}"
        f" (scenarios on a subset): {doc['date']}, {doc['machine']}, {_total(doc)}",
        *_command_lines(doc),
        f"Subset (same for every scenario): {doc['subset']}",
        "",
        "| scenario | " + " | ".join(f"{t} {METRICS[t][0]}" for t in TASKS) + " | mean | seconds | trainable parameters |",
        "|---|" + "---|" * (len(TASKS) + 3),
    ]
    for scenario in doc["scenarios"]:
        got = [stats(recs, scenario, t, METRICS[t][0]) for t in TASKS]
        rows = [r for r in recs if r["run"] == scenario and r.get("split", "test") == "test"]
        if not rows:
            continue
        present = [g[0] for g in got if g is not None]
        mean = sum(present) / len(present) if present else None
        seconds = _mean_seconds(rows)
        params = ", ".join(f"{p:,}" for p in sorted({r["trainable_params"] for r in rows}))
        lines.append(f"| {scenario} | " + " | ".join(_cell(g) for g in got) + f" | {'—' if mean is None else f'{mean:.4f}'} | "
                     f"{seconds:.0f} | {params} |")
    seeds = sorted({r["seed"] for r in recs if "seed" in r})
    if seeds:
        lines += ["", f"Each cell: mean ± sample standard deviation over seeds {', '.join(map(str, seeds))} "
                  "(training.seed; the subset sample is the same for every seed). Seconds: mean per run; "
                  "single-task: the sum of its per-task runs."]
        lines += _difference_table(recs, doc["scenarios"])
    for name, note in (doc.get("notes") or {}).items():
        lines += ["", note]
    return "\n".join(lines) + "\n"


def _mean_seconds(rows: list[dict]) -> float:
    """Mean wall time per seed of a scenario (the per-task runs of single-task summed per seed)."""
    per_seed: dict[Any, dict[tuple[str, float], float]] = {}
    for r in rows:
        per_seed.setdefault(r.get("seed"), {})[(r["task"] if r["run"] == "single-task" else "", r["seconds"])] = r["seconds"]
    totals = [sum(v.values()) for v in per_seed.values()]
    return sum(totals) / len(totals) if totals else 0.0


def _difference_table(recs: list[dict], scenarios: Sequence[str]) -> list[str]:
    """Per scenario and task: mean over seeds of (scenario - single-task) on the same seed."""
    if not any(r["run"] == "single-task" for r in recs):
        return []
    out = ["", "Difference from single-task on the same seed (mean ± sd over seeds; positive = joint better):", "",
           "| scenario | " + " | ".join(TASKS) + " | worst task |", "|---|" + "---|" * (len(TASKS) + 1)]

    def by_seed(run: str, task: str) -> dict[Any, float]:
        return {r.get("seed"): float(r["value"]) for r in _matching(recs, run, task, METRICS[task][0])}

    for scenario in scenarios:
        if scenario == "single-task":
            continue
        cells, worst = [], None
        for task in TASKS:
            ref, own = by_seed("single-task", task), by_seed(scenario, task)
            diffs = [own[s] - ref[s] for s in own if s in ref]
            if not diffs:
                cells.append("—")
                continue
            mean, sd = _mean_sd(diffs)
            cells.append(f"{mean:+.4f} ± {sd:.4f}" if len(diffs) > 1 else f"{mean:+.4f}")
            worst = mean if worst is None else min(worst, mean)
        if any(c != "—" for c in cells):
            out.append(f"| {scenario} | " + " | ".join(cells) + f" | {'—' if worst is None else f'{worst:+.4f}'} |")
    return out


def portable(value: Any, root: Path | None = None) -> Any:
    """`value` (a results document, or any part of it) with this machine's paths taken out: paths
    inside the checkout become relative to it, the temporary folder becomes $TMPDIR, so a committed
    results file reads the same on every machine and names none of them."""
    import tempfile

    root = (root or Path.cwd()).resolve()
    swaps = [(f"{root}/", ""), (f"{Path(tempfile.gettempdir()).resolve()}/", "$TMPDIR/")]
    if isinstance(value, str):
        for old, new in swaps:
            value = value.replace(old, new)
        return value
    if isinstance(value, dict):
        return {portable(k, root): portable(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v, root) for v in value]
    return value


def _write(doc: dict[str, Any], paths: Sequence[Path], render: Callable[[dict], str]) -> None:
    """JSON to each path, and the Markdown next to each (same stem, .md), machine paths taken out."""
    doc = portable(doc)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(doc, indent=2) + "\n")
        write_text_atomic(path.with_suffix(".md"), render(doc))


_SOURCE_KEYS = ("command", "date", "machine", "total_seconds")


def combine(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One results doc from several invocations on the same data (full, or the same subset).

    A later doc's record replaces an earlier one with the same run, task, metric, split and seed; records keep
    the issue's schema, and `sources` lists each command with the run/task pairs it still
    contributes (a source whose records were all replaced drops out). Study docs also union
    their scenarios and notes.
    """
    subsets = {d.get("subset") for d in docs}
    if len(subsets) > 1:
        raise PolyheadError(f"cannot combine results of different data: {sorted(map(str, subsets))}")
    records: dict[tuple[Any, ...], tuple[int, dict[str, Any]]] = {}  # key -> (source index, record)
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
            key = (rec["run"], rec["task"], rec["metric"], rec.get("split", "test"), rec.get("seed"))
            records[key] = (sources.index(head), rec)
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
        seen = list(dict.fromkeys(s for d in docs for s in d.get("scenarios", [])))
        # single-task first (the reference row), built-in scenarios in their order, then recipes as they came
        out["scenarios"] = ([s for s in ("single-task",) if s in seen] + [s for s in SCENARIOS if s in seen and s != "single-task"]
                            + [s for s in seen if s not in SCENARIOS])
        out["notes"] = {k: v for d in docs for k, v in (d.get("notes") or {}).items()}
    for d in docs:  # a hand-written note on a results file stays with it
        if d.get("note"):
            out["note"] = d["note"]
    return out


def read_doc(path: Path) -> dict[str, Any]:
    """A results JSON file, or a PolyheadError saying why it is not one."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PolyheadError(f"cannot read benchmark results {path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("records"), list):
        raise PolyheadError(f"{path} has no records: not a benchmark.json")
    return doc


# results_dir's default: the accumulating results file goes in the results/ folder of the run's own
# output folder. The committed figures in benchmarks/results/ change only when a run is pointed
# there (--results-dir benchmarks/results).
IN_OUTPUT_DIR = "<output-dir>/results"
# Where `--merge` writes by default: the results folder of the full benchmark's default output folder.
MERGE_RESULTS_DIR = "runs/benchmark/full/results"


def results_folder(results_dir: str | Path | None, output_dir: str | Path) -> Path | None:
    """The folder of a run's accumulating results file: results_dir as given (None: no such file),
    output_dir/results for IN_OUTPUT_DIR (the default)."""
    if results_dir is None:
        return None
    return Path(output_dir) / "results" if str(results_dir) == IN_OUTPUT_DIR else Path(results_dir)


def merge_results(paths: Sequence[str | Path], results_dir: str | Path = MERGE_RESULTS_DIR) -> dict[str, Any]:
    """Combine full-data benchmark.json files from separate invocations into results_dir/benchmark.json (+ .md).

    For runs made apart (e.g. the joint and single-task runs in parallel, one core each, each
    into its own --output-dir). Later files win for the same run, task and metric.
    """
    if not paths:
        raise PolyheadError("--merge needs at least one benchmark.json")
    docs = [read_doc(Path(p)) for p in paths]
    for path, doc in zip(paths, docs):
        if doc.get("subset"):
            raise PolyheadError(f"{path} is a subset run ({doc['subset']}); only full-data results are merged")
    merged = combine(docs)
    _write(merged, [Path(results_dir) / "benchmark.json"], markdown_table)
    return merged


class ResultsWriter:
    """Writes an invocation's doc to its output folder, and to the results folder combined with what
    that file already held for the same data, so running some runs never drops the others' figures.

    The results file is re-read under a lock at every write: invocations running side by side
    (two studies on two cores) each add their records instead of the last one's snapshot winning.
    """

    def __init__(self, out: Path, results: Path | None, render: Callable[[dict], str]) -> None:
        self.out, self.results, self.render = out, results, render
        self.warned = False

    def _held(self) -> dict[str, Any] | None:
        """What the results file holds now (None: no file, or not a results file, which is replaced)."""
        if self.results is None or not self.results.is_file():
            return None
        try:
            return read_doc(self.results)
        except PolyheadError as exc:
            if not self.warned:
                print(f"polyhead benchmark: warning: {exc}; it will be replaced", file=sys.stderr)
                self.warned = True
            return None

    def write(self, doc: dict[str, Any]) -> None:
        _write(doc, [self.out], self.render)
        if self.results is None:
            return
        import fcntl

        self.results.parent.mkdir(parents=True, exist_ok=True)
        with open(self.results.with_name(self.results.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
            before = self._held()
            keep = before is not None and before.get("subset") == doc.get("subset")
            if before is not None and not keep and not self.warned:
                print(f"polyhead benchmark: warning: {self.results} held results on other data "
                      f"({before.get('subset') or 'full data'}); replacing them (git has the old file)", file=sys.stderr)
                self.warned = True
            _write(combine([before, doc]) if keep else doc, [self.results], self.render)

    @property
    def paths(self) -> list[Path]:
        return [self.out] + ([self.results] if self.results is not None else [])
