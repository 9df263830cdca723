"""The benchmark suite and the freezing / transfer-learning study, on the four public datasets.

`run_benchmark` trains the joint model (configs/benchmark.yaml), one single-task model per task
(configs/single/NAME.yaml), a frozen-encoder baseline per task (the single-task config with the
backbone frozen: heads only) and scores the untrained encoder on STS-B. `run_study` trains the
joint config under each freezing scenario on a documented subset. Both write JSON + Markdown.

Quick mode and the study use a *subset*: a seeded random sample of each training file (a fixed
fraction, so the tasks keep their relative sizes) and capped dev/test files, written to a
working folder; the configs themselves are never edited. Results always say which subset.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import random
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..training.config import RunConfig, load_config
from ..errors import PolyheadError

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
FROZEN_HEAD_TASK = "sentiment"


@dataclass
class Subset:
    """A documented reduction of the data: train fraction (seeded sample), dev/test caps, epochs."""

    train_fraction: float
    dev_cap: int
    test_cap: int
    epochs: int
    seed: int = 0

    def describe(self) -> str:
        """One line for tables and JSON."""
        def cap(split: str, n: int) -> str:
            return f"full {split}" if n >= 10**9 else f"{split} <= {n} examples per task (seeded sample)"

        return (f"{self.train_fraction:.0%} of each training set (seeded sample), {cap('dev', self.dev_cap)}, "
                f"{cap('test', self.test_cap)}, {self.epochs} epoch(s)")


# Quick: a smoke test that finishes in a few minutes on 2 CPU cores; its figures are not results.
QUICK = Subset(train_fraction=0.03, dev_cap=100, test_cap=200, epochs=1)
# The study: every scenario trains on the same subset, so they compare with each other only.
STUDY = Subset(train_fraction=0.04, dev_cap=200, test_cap=500, epochs=2)


# -- environment ---------------------------------------------------------------------------------
def machine_description() -> str:
    """CPU model and core count (from lscpu), and the GPU when CUDA is available."""
    model, cores = platform.processor() or platform.machine(), None
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Model name":
                model = value.strip()
            elif key.strip() == "CPU(s)":
                cores = value.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    desc = f"{model}, {cores or os.cpu_count()} CPU cores"
    try:
        import torch

        if torch.cuda.is_available():
            desc += f", GPU {torch.cuda.get_device_name(0)}"
        else:
            desc += ", no GPU"
    except Exception:  # the description must never fail a run
        pass
    return desc


def _start_run(out: Path, command: str | None, subset: Any) -> tuple[Path, float, dict[str, Any]]:
    """A fresh work folder, the start time, and the results header shared by benchmark and study."""
    work = out / "work"
    shutil.rmtree(work, ignore_errors=True)  # subset files are reused within one invocation, never across
    doc: dict[str, Any] = {
        "machine": machine_description(), "date": now_iso(),
        "command": command or " ".join(["polyhead", *sys.argv[1:]]),
        "subset": subset.describe() if subset else None, "total_seconds": 0.0, "records": [],
    }
    return work, time.time(), doc


def now_iso() -> str:
    """The local time, ISO 8601 with offset."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# -- subsets ---------------------------------------------------------------------------------------
def _units(path: Path) -> tuple[list[str], str]:
    """A data file split into examples (JSON lines, or blank-line-separated CoNLL sentences)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".conll", ".txt", ".iob"):
        blocks = [b.strip("\n") for b in text.split("\n\n")]
        return [b for b in blocks if b.strip()], "\n\n"
    return [line for line in text.splitlines() if line.strip()], "\n"


def write_subset(src: Path, dst: Path, n: int, seed: int) -> int:
    """Write a seeded random sample of n examples of src to dst, in file order; return the count."""
    units, sep = _units(src)
    rng = random.Random(f"{seed}:{src.name}:{len(units)}")
    keep = sorted(rng.sample(range(len(units)), min(n, len(units))))
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(sep.join(units[i] for i in keep) + "\n", encoding="utf-8")
    return len(keep)


def apply_subset(cfg: RunConfig, subset: Subset, workdir: Path) -> dict[str, dict[str, int]]:
    """Point every task's files at subset copies under workdir; set the epochs; return the sizes."""
    from ..training.data import build_sources

    for item in [*cfg.tasks, *cfg.datasets]:
        for split in ("train", "dev", "test"):
            path = cfg.resolve(getattr(item, split, None))
            if path is not None and not path.is_file():
                raise PolyheadError(f"{path} does not exist: run `polyhead datasets fetch` first")
    # Label sets come from the *full* training data: a small sample can miss a rare class
    # (TREC's ABBR is 1.6%) that dev/test then contain.
    _, specs = build_sources(cfg, splits=("train",))
    for task in cfg.tasks:
        if task.labels is None and specs[task.name].labels:
            task.labels = list(specs[task.name].labels)
    sizes: dict[str, dict[str, int]] = {}
    for item in [*cfg.tasks, *cfg.datasets]:
        if getattr(item, "train", None) is None:
            continue
        for split in ("train", "dev", "test"):
            path = cfg.resolve(getattr(item, split))
            if path is None:
                continue
            if split == "train":
                n = max(1, round(len(_units(path)[0]) * subset.train_fraction))
            else:
                n = subset.dev_cap if split == "dev" else subset.test_cap
            dst = workdir / "data" / item.name / f"{split}{path.suffix}"
            if not dst.is_file():  # the same task's subset is shared by every run of one invocation
                write_subset(path, dst, n, subset.seed)
            sizes.setdefault(item.name, {})[split] = len(_units(dst)[0])
            setattr(item, split, str(dst))
    cfg.training.epochs = subset.epochs
    return sizes


# -- results ---------------------------------------------------------------------------------------
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
        path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
        path.with_suffix(".md").write_text(render(doc), encoding="utf-8")


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


class _Results:
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


# -- running ---------------------------------------------------------------------------------------
def _train(cfg: RunConfig, out: Path, say: Callable[[str], None]) -> Any:
    """Train one config into a fresh folder; return the TrainResult.

    The loop's own lines (data, sizes, one dev summary per epoch, test) go to `say` prefixed
    with the run's folder name, and a progress bar shows when stderr is a terminal: a full
    run takes long enough that silence would look like a hang.
    """
    from ..training.loop import train

    if out.exists():
        shutil.rmtree(out)  # a previous invocation's folder would look like an unfinished run
    return train(cfg, out, progress=sys.stderr.isatty(), device="cpu" if _cpu_only() else None,
                 log=lambda m: say(f"[{out.name}] {m}"))


def _cpu_only() -> bool:
    """True when there is no CUDA device."""
    import torch

    return not torch.cuda.is_available()


def _load(path: Path, overrides: list[str], subset: Subset | None, workdir: Path) -> RunConfig:
    """A config with overrides applied, pointed at subset files when a subset is given."""
    cfg = load_config(path, overrides)
    if subset is not None:
        apply_subset(cfg, subset, workdir)
    return cfg


def run_benchmark(
    config: str | Path = "configs/benchmark.yaml",
    single_dir: str | Path = "configs/single",
    output_dir: str | Path = "runs/benchmark/full",
    results_dir: str | Path | None = "benchmarks/results",
    quick: bool = False,
    tasks: Sequence[str] = TASKS,
    runs: Sequence[str] = RUNS,
    overrides: Sequence[str] = (),
    command: str | None = None,
    log: Callable[[str], None] | None = None,
    subset: Subset | None = None,
) -> dict[str, Any]:
    """Run the selected runs; write benchmark.json + .md to output_dir (and results_dir); return the doc.

    quick=True uses the QUICK subset; `subset` names another one; neither = the full data.
    """
    say = log or (lambda m: print(f"polyhead benchmark: {m}", file=sys.stderr, flush=True))
    bad = [t for t in tasks if t not in TASKS] + [r for r in runs if r not in RUNS]
    if bad:
        raise PolyheadError(f"unknown task(s)/run(s) {', '.join(bad)}; tasks: {', '.join(TASKS)}; runs: {', '.join(RUNS)}")
    out, single_dir = Path(output_dir), Path(single_dir)
    subset = QUICK if quick else subset
    work, t0, doc = _start_run(out, command, subset)
    # A subset run never touches the full figures: each kind of data has its own results file.
    name = "benchmark.json" if subset is None else "benchmark-quick.json" if subset == QUICK else "benchmark-subset.json"
    results = _Results(out / "benchmark.json", None if results_dir is None else Path(results_dir) / name, markdown_table)

    def finish(run: str, result: Any) -> None:
        doc["records"].extend(records_from(run, result.test, result.seconds, result.trainable_params))
        doc["total_seconds"] = round(time.time() - t0, 1)
        results.write(doc)  # after every run, so a long run that dies keeps what finished
        say(f"{run}: " + ", ".join(f"{t} {METRICS[t][0]}={m[METRICS[t][0]]:.4f}" for t, m in result.test.items() if t in METRICS)
            + f" ({result.seconds:.0f}s, {result.trainable_params:,} trainable)")

    keep = list(tasks)
    if "untrained" in runs and "stsb" in tasks:
        # Nothing learns: the similarity head has no parameters, so this is the encoder's own cosine.
        cfg = _load(single_dir / "stsb.yaml", [*overrides, "freeze.all=true"], subset, work)
        finish("untrained", _train(cfg, out / "untrained-stsb", say))
    if "frozen-encoder" in runs:
        for task in keep:
            if task == "stsb":
                continue  # identical to "untrained": there is no head parameter to train
            cfg = _load(single_dir / f"{task}.yaml", [*overrides, "freeze.encoder=true"], subset, work)
            finish("frozen-encoder", _train(cfg, out / f"frozen-{task}", say))
    if "single" in runs:
        for task in keep:
            cfg = _load(single_dir / f"{task}.yaml", list(overrides), subset, work)
            finish("single", _train(cfg, out / f"single-{task}", say))
    if "joint" in runs:
        cfg = _load(Path(config), list(overrides), subset, work)
        cfg.tasks = [t for t in cfg.tasks if t.name in keep]
        if not cfg.tasks:
            raise PolyheadError("no task of the joint config is selected")
        finish("joint", _train(cfg, out / "joint", say))
    doc["total_seconds"] = round(time.time() - t0, 1)
    results.write(doc)
    say(f"wrote {', '.join(str(p) for p in results.paths)} and {results.out.with_suffix('.md')}")
    return doc


def _gradual_every(cfg: RunConfig) -> int:
    """Steps per unfreezing stage so that every stage (top layer .. embeddings) opens by ~85% of training."""
    from ..training.data import build_sources
    from ..training.sampling import TaskSampler

    sources, _ = build_sources(cfg, splits=("train",))
    tr = cfg.training
    batches = {s.name: max(1, math.ceil(len(s.splits["train"]) / s.batch_size)) for s in sources}
    per_epoch = len(TaskSampler(batches, tr.sampling, tr.temperature, tr.seed, tr.steps_per_epoch).epoch_schedule(0))
    total = per_epoch * tr.epochs
    from transformers import AutoConfig

    from ..modeling.encoder import resolve_model_path

    n_layers = AutoConfig.from_pretrained(resolve_model_path(cfg.encoder.model)).num_hidden_layers
    return max(1, int(0.85 * total) // (n_layers + 1))


def run_study(
    config: str | Path = "configs/benchmark.yaml",
    output_dir: str | Path = "runs/benchmark/study",
    results_dir: str | Path | None = "benchmarks/results",
    subset: Subset = STUDY,
    scenarios: Sequence[str] = DEFAULT_STUDY_SCENARIOS,
    overrides: Sequence[str] = (),
    command: str | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train the joint config under each freezing scenario on one subset; write study.json + .md."""
    say = log or (lambda m: print(f"polyhead study: {m}", file=sys.stderr, flush=True))
    bad = [s for s in scenarios if s not in SCENARIOS]
    if bad:
        raise PolyheadError(f"unknown scenario(s) {', '.join(bad)}; choose from {', '.join(SCENARIOS)}")
    wanted = set(scenarios) | ({"full"} if "head-frozen" in scenarios else set())  # it continues from `full`
    scenarios = [s for s in SCENARIOS if s in wanted]
    out = Path(output_dir)
    work, t0, doc = _start_run(out, command, subset)
    doc.update(scenarios=scenarios, notes={})
    name = "study-quick.json" if subset == QUICK else "study.json"  # a quick study never overwrites the real one
    results = _Results(out / "study.json", None if results_dir is None else Path(results_dir) / name, study_markdown)
    base = list(overrides)
    static = {
        "frozen-all": ["freeze.all=true"],
        "frozen-backbone": ["freeze.encoder=true"],
        "full": [],
        "layer-decay": ["training.layer_decay=0.8"],
        "uncertainty-weighting": ["training.weighting=uncertainty"],
        "proportional-sampling": ["training.sampling=proportional"],
        # STS-B's cosine-MSE loss runs ~10x smaller than the others' cross-entropy (docs/choices.md)
        "stsb-weighted": ["training.weighting=static", "tasks.stsb.weight=10"],
    }
    for scenario in scenarios:
        if scenario in static:
            cfg = _load(Path(config), base + static[scenario], subset, work)
        elif scenario == "gradual-unfreezing":
            cfg = _load(Path(config), base, subset, work)
            cfg.freeze.gradual_unfreezing = _gradual_every(cfg)
            cfg.freeze.gradual_unit = "step"
        else:  # head-frozen
            result = _head_frozen(Path(config), base, subset, work, out, say)
            doc["records"].extend(records_from(scenario, result["test"], result["seconds"], result["trainable_params"]))
            doc["notes"]["head-frozen"] = result["note"]
            doc["total_seconds"] = round(time.time() - t0, 1)
            results.write(doc)
            continue
        result = _train(cfg, out / scenario, say)
        doc["records"].extend(records_from(scenario, result.test, result.seconds, result.trainable_params))
        doc["total_seconds"] = round(time.time() - t0, 1)
        results.write(doc)
        say(f"{scenario}: " + ", ".join(f"{t} {METRICS[t][0]}={m[METRICS[t][0]]:.4f}" for t, m in result.test.items() if t in METRICS)
            + f" ({result.seconds:.0f}s, {result.trainable_params:,} trainable)")
    say(f"wrote {', '.join(str(p) for p in results.paths)}")
    return doc


def _head_frozen(config: Path, base: list[str], subset: Subset, work: Path, out: Path, say: Callable[[str], None]) -> dict[str, Any]:
    """Continue the full fine-tune on every task but one, whose head stays as it was; re-score all.

    The frozen task gets no gradient at all (its data is left out), so its head is exactly the
    one trained with the old backbone: the score shows what moving the backbone does to it.
    """
    from ..training.data import build_sources
    from ..modeling.model import load
    from ..training.loop import evaluate

    start = out / "full"
    cfg = _load(config, base + [f"training.init_from={start}"], subset, work)
    frozen = [t for t in cfg.tasks if t.name == FROZEN_HEAD_TASK]
    cfg.tasks = [t for t in cfg.tasks if t.name != FROZEN_HEAD_TASK]
    result = _train(cfg, out / "head-frozen", say)
    test = dict(result.test)
    if frozen:
        old = load(start, device="cpu" if _cpu_only() else None)
        model = load(out / "head-frozen", device=old.device)
        model.add_task(old.tasks[FROZEN_HEAD_TASK])
        model.heads[FROZEN_HEAD_TASK].load_state_dict(old.heads[FROZEN_HEAD_TASK].state_dict())
        frozen[0].labels = list(old.tasks[FROZEN_HEAD_TASK].labels)  # score against the head's own label order
        probe = dataclasses.replace(cfg, tasks=frozen, datasets=[])
        sources, _ = build_sources(probe, splits=("test",))
        test.update(evaluate(model, sources, "test", cfg.training.eval_batch_size))
        before = evaluate(old, sources, "test", cfg.training.eval_batch_size)[FROZEN_HEAD_TASK]["accuracy"]
        after = test[FROZEN_HEAD_TASK]["accuracy"]
        note = (f"head-frozen: started from the `full` model, trained {subset.epochs} more epoch(s) on "
                f"{', '.join(t.name for t in cfg.tasks)} only; the {FROZEN_HEAD_TASK} head was kept as it was. "
                f"{FROZEN_HEAD_TASK} test accuracy {before:.4f} before -> {after:.4f} after the backbone moved.")
    else:
        note = f"head-frozen: the config has no {FROZEN_HEAD_TASK} task"
    say(note)
    return {"test": test, "seconds": result.seconds, "trainable_params": result.trainable_params, "note": note}


def parse_subset(text: str) -> Subset:
    """TRAIN_FRACTION:EPOCHS[:DEV_CAP[:TEST_CAP]], e.g. 0.1:1:300 (caps default to no cap)."""
    parts = text.split(":")
    try:
        fraction, epochs = float(parts[0]), int(parts[1])
        caps = [int(x) for x in parts[2:4]] + [10**9] * (4 - len(parts[:4]))
    except (ValueError, IndexError):
        raise PolyheadError(f"--subset {text!r}: expected TRAIN_FRACTION:EPOCHS[:DEV_CAP[:TEST_CAP]], e.g. 0.1:1:300") from None
    if not (0 < fraction <= 1 and epochs >= 1 and min(caps[:2]) >= 1):
        raise PolyheadError(f"--subset {text!r}: fraction in (0, 1], epochs and caps at least 1")
    return Subset(fraction, caps[0], caps[1], epochs)


def main(args: Any) -> int:
    """`polyhead benchmark`: the CLI entry (args from cli.py's parser)."""
    command = " ".join(["polyhead", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith("polyhead") else None
    if args.merge:
        if args.study or args.quick or args.subset:
            raise PolyheadError("--merge trains nothing and combines full-data results; drop --study/--quick/--subset")
        doc = merge_results(args.merge, args.results_dir)
        print(markdown_table(doc))
        return 0
    if args.study:
        scenarios = args.scenarios.split(",") if args.scenarios else DEFAULT_STUDY_SCENARIOS
        subset = QUICK if args.quick else STUDY
        out = args.output_dir or ("runs/benchmark/study-quick" if args.quick else "runs/benchmark/study")
        doc = run_study(args.config, out, args.results_dir, subset, scenarios, args.set, command)
        print(study_markdown(doc))
        return 0
    out = args.output_dir or ("runs/benchmark/quick" if args.quick else "runs/benchmark/full")
    tasks = args.tasks.split(",") if args.tasks else TASKS
    runs = args.runs.split(",") if args.runs else RUNS
    doc = run_benchmark(args.config, args.single_dir, out, args.results_dir, args.quick, tasks, runs, args.set, command,
                        subset=parse_subset(args.subset) if args.subset else None)
    print(markdown_table(doc))
    return 0
