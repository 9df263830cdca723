"""The benchmark suite and the freezing / transfer-learning study, on the four public datasets.

`run_benchmark` trains the joint model (configs/benchmark.yaml), one single-task model per task
(configs/single/NAME.yaml), a frozen-encoder baseline per task (the single-task config with the
backbone frozen: heads only) and scores the untrained encoder on STS-B. `run_study` trains the
joint config under each freezing scenario on a documented subset. Both write JSON + Markdown.

Quick mode and the study use a *subset* (subset.py); results.py renders and combines the
results. The output folder is the benchmark's own: it deletes only the folders an earlier
benchmark made there (listed in its marker file, polyhead-benchmark.json), else --force.
"""
from __future__ import annotations

import dataclasses
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import PolyheadError
from ..io import check_replaceable_dir, read_json, write_json_atomic
from ..training.config import RunConfig, load_config
from .results import (  # noqa: F401  (re-exported: the names this module had before the split)
    DEFAULT_STUDY_SCENARIOS,
    QUALITY_SCENARIOS,
    METRICS,
    REFERENCE,
    REFERENCE_FROZEN,
    RUNS,
    SCENARIOS,
    TASKS,
    UNTRAINED_STSB_REFERENCE,
    ResultsWriter,
    combine,
    markdown_table,
    merge_results,
    stats as stats_of,
    records_from,
    study_markdown,
)
from .subset import QUICK, STUDY, Subset, apply_subset, parse_subset, write_subset  # noqa: F401

FROZEN_HEAD_TASK = "sentiment"
MARKER = "polyhead-benchmark.json"


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


class OutputDir:
    """A benchmark's output folder, which replaces only what an earlier benchmark made there.

    The marker file lists every folder the benchmark created, written *before* the folder is,
    so an interrupted run's folders count too. A folder not listed (a user's model, notes)
    is replaced only with force; a non-empty output folder without the marker is refused.
    """

    def __init__(self, root: str | Path, force: bool = False) -> None:
        self.root, self.force = Path(root), force
        check_replaceable_dir(self.root, [MARKER], "a benchmark output folder", force)
        marker = self.root / MARKER
        self.made: set[str] = set(read_json(marker).get("folders", [])) if marker.is_file() else set()

    def fresh(self, name: str) -> Path:
        """An empty path root/name for this invocation: an earlier benchmark's folder is deleted."""
        path = self.root / name
        if path.exists() or path.is_symlink():
            if name not in self.made and not self.force:
                raise PolyheadError(
                    f"{path} was not made by polyhead benchmark (not listed in {self.root / MARKER}); "
                    "choose another --output-dir or pass --force to replace it"
                )
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        self.made.add(name)
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.root / MARKER, {"format": "polyhead-benchmark-output", "folders": sorted(self.made)})
        return path


def _start_run(out: OutputDir, command: str | None, subset: Any) -> tuple[Path, float, dict[str, Any]]:
    """A fresh work folder, the start time, and the results header shared by benchmark and study."""
    work = out.fresh("work")  # subset files are reused within one invocation, never across
    doc: dict[str, Any] = {
        "machine": machine_description(), "date": now_iso(),
        "command": command or " ".join(["polyhead", *sys.argv[1:]]),
        "subset": subset.describe() if subset else None, "total_seconds": 0.0, "records": [],
    }
    return work, time.time(), doc


def now_iso() -> str:
    """The local time, ISO 8601 with offset."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# -- running ---------------------------------------------------------------------------------------
def _train(cfg: RunConfig, out: Path, say: Callable[[str], None]) -> Any:
    """Train one config into a fresh folder (from OutputDir.fresh); return the TrainResult.

    The loop's own lines (data, sizes, one dev summary per epoch, test) go to `say` prefixed
    with the run's folder name, and a progress bar shows when stderr is a terminal: a full
    run takes long enough that silence would look like a hang.
    """
    from ..training.loop import train

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
    force: bool = False,
    seeds: Sequence[int] | None = None,
    jobs: int = 1,
) -> dict[str, Any]:
    """Run the selected runs; write benchmark.json + .md to output_dir (and results_dir); return the doc.

    quick=True uses the QUICK subset; `subset` names another one; neither = the full data.
    seeds: repeat every trained run with each training seed (records carry the seed; tables show
    mean ± sd); jobs: trainings at once, in separate processes.
    force=True lets the run replace folders in output_dir that no earlier benchmark made.
    """
    say = log or (lambda m: print(f"polyhead benchmark: {m}", file=sys.stderr, flush=True))
    bad = [t for t in tasks if t not in TASKS] + [r for r in runs if r not in RUNS]
    if bad:
        raise PolyheadError(f"unknown task(s)/run(s) {', '.join(bad)}; tasks: {', '.join(TASKS)}; runs: {', '.join(RUNS)}")
    if jobs < 1:
        raise PolyheadError(f"--jobs must be at least 1, got {jobs}")
    out, single_dir = OutputDir(output_dir, force), Path(single_dir)
    subset = QUICK if quick else subset
    work, t0, doc = _start_run(out, command, subset)
    if seeds:
        doc["seeds"] = list(seeds)
    # A subset run never touches the full figures: each kind of data has its own results file.
    name = "benchmark.json" if subset is None else "benchmark-quick.json" if subset == QUICK else "benchmark-subset.json"
    results = ResultsWriter(out.root / "benchmark.json", None if results_dir is None else Path(results_dir) / name, markdown_table)

    def done(job: _Job, result: dict[str, Any]) -> None:
        doc["records"].extend(records_from(job.scenario, result["test"], result["seconds"], result["trainable"],
                                           seed=job.seed, dev=result.get("dev") if seeds else None))
        doc["total_seconds"] = round(time.time() - t0, 1)
        results.write(doc)  # after every run, so a long run that dies keeps what finished
        say(f"{job.folder}: " + ", ".join(f"{t} {METRICS[t][0]}={m[METRICS[t][0]]:.4f}" for t, m in result["test"].items() if t in METRICS)
            + f" ({result['seconds']:.0f}s, {result['trainable']:,} trainable)")

    def folder(name: str, seed: int | None) -> str:
        return name if seed is None else f"{name}-s{seed}"

    keep = list(tasks)
    plan: list[_Job] = []
    if "untrained" in runs and "stsb" in tasks:
        # Nothing learns: the similarity head has no parameters, so this is the encoder's own cosine.
        cfg = _load(single_dir / "stsb.yaml", [*overrides, "freeze.all=true"], subset, work)
        plan.append(_Job("untrained", None, "untrained-stsb", cfg, "stsb"))
    for seed in list(seeds) if seeds else [None]:
        extra = [f"training.seed={seed}"] if seed is not None else []
        if "frozen-encoder" in runs:
            for task in keep:
                if task == "stsb":
                    continue  # identical to "untrained": there is no head parameter to train
                cfg = _load(single_dir / f"{task}.yaml", [*overrides, *extra, "freeze.encoder=true"], subset, work)
                plan.append(_Job("frozen-encoder", seed, folder(f"frozen-{task}", seed), cfg, task))
        if "single" in runs:
            for task in keep:
                cfg = _load(single_dir / f"{task}.yaml", [*overrides, *extra], subset, work)
                plan.append(_Job("single", seed, folder(f"single-{task}", seed), cfg, task))
        if "joint" in runs:
            cfg = _load(Path(config), [*overrides, *extra], subset, work)
            cfg.tasks = [t for t in cfg.tasks if t.name in keep]
            if not cfg.tasks:
                raise PolyheadError("no task of the joint config is selected")
            plan.append(_Job("joint", seed, folder("joint", seed), cfg))
    _run_jobs(plan, jobs, out, say, done, lambda job: {})
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


# One change each against `full`, the joint config as it is (the joint-quality program,
# docs/choices.md). "single-task" and "distill" are built in run_study: distill's teachers are the
# single-task models of the same seed.
QUALITY_OVERRIDES: dict[str, list[str]] = {
    "sts-cosent": ["tasks.stsb.loss=cosent"],
    "sts-angle": ["tasks.stsb.loss=angle"],
    "loss-scale": ["training.weighting=loss_scale"],
    "famo": ["training.weighting=famo"],
    "anchor": ["training.anchor_weight=1.0"],
}
DISTILL = "+distill"  # in a recipe's overrides: the same seed's single-task models are its teachers


@dataclasses.dataclass
class _Job:
    """One training of the study: a scenario (or recipe) on one seed; single-task runs name their task."""

    scenario: str
    seed: int | None
    folder: str
    cfg: RunConfig | None = None
    task: str | None = None
    needs: tuple[str, ...] = ()  # folders that must be trained first (distill's teachers, head-frozen's start)


def parse_recipe(text: str) -> tuple[str, list[str]]:
    """`NAME=KEY=VALUE;KEY=VALUE;+distill` -> (NAME, overrides): a named joint variant for the study."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise PolyheadError(f"--recipe {text!r} must look like NAME=KEY=VALUE[;KEY=VALUE...] (';' separates overrides; "
                            f"'{DISTILL}' adds the same seed's single-task models as teachers)")
    if name in SCENARIOS:
        raise PolyheadError(f"--recipe name {name!r} is a built-in scenario; choose another name")
    return name, [o.strip() for o in rest.split(";") if o.strip()]


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` -> [0, 1, 2]: the training seeds to repeat each run with."""
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise PolyheadError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise PolyheadError(f"--seeds {text!r}: expected distinct non-negative integers, e.g. 0,1,2")
    return seeds


def run_study(
    config: str | Path = "configs/benchmark.yaml",
    output_dir: str | Path = "runs/benchmark/study",
    results_dir: str | Path | None = "benchmarks/results",
    subset: Subset = STUDY,
    scenarios: Sequence[str] = DEFAULT_STUDY_SCENARIOS,
    overrides: Sequence[str] = (),
    command: str | None = None,
    log: Callable[[str], None] | None = None,
    force: bool = False,
    seeds: Sequence[int] | None = None,
    jobs: int = 1,
    recipes: dict[str, list[str]] | None = None,
    single_dir: str | Path = "configs/single",
    results_name: str | None = None,
) -> dict[str, Any]:
    """Train the joint config under each scenario on one subset; write study.json + .md.

    seeds: repeat every run with each training seed (cells become mean ± sd); jobs: trainings run
    at once in separate processes (threads split between them); recipes: named override lists
    trained like scenarios. force=True lets the study replace folders in output_dir that no
    earlier benchmark made. results_name: the results file's stem (default study / study-quick).
    """
    say = log or (lambda m: print(f"polyhead study: {m}", file=sys.stderr, flush=True))
    recipes = dict(recipes or {})
    bad = [s for s in scenarios if s not in SCENARIOS and s not in recipes]
    if bad:
        raise PolyheadError(f"unknown scenario(s) {', '.join(bad)}; choose from {', '.join(SCENARIOS)}")
    if jobs < 1:
        raise PolyheadError(f"--jobs must be at least 1, got {jobs}")
    wanted = set(scenarios) | set(recipes) | ({"full"} if "head-frozen" in scenarios else set())  # it continues from `full`
    if "distill" in wanted or any(DISTILL in o for o in recipes.values()):
        wanted.add("single-task")  # the teachers
    # single-task first: the reference row, and the teachers that distill waits for
    ordered = (["single-task"] if "single-task" in wanted else []) + [s for s in SCENARIOS if s in wanted and s != "single-task"]
    ordered += [r for r in recipes if r in wanted]
    out = OutputDir(output_dir, force)
    work, t0, doc = _start_run(out, command, subset)
    doc.update(scenarios=ordered, notes={})
    if seeds:
        doc["seeds"] = list(seeds)
    name = results_name or ("study-quick" if subset == QUICK else "study")  # a quick study never overwrites the real one
    results = ResultsWriter(out.root / "study.json", None if results_dir is None else Path(results_dir) / f"{name}.json", study_markdown)
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
        **QUALITY_OVERRIDES,
        **{r: o for r, o in recipes.items() if DISTILL not in o},
    }
    config, single_dir = Path(config), Path(single_dir)

    def folder(scenario: str, seed: int | None, task: str | None = None) -> str:
        return "-".join([scenario] + ([task] if task else []) + ([f"s{seed}"] if seed is not None else []))

    def seeded(extra: list[str], seed: int | None) -> list[str]:
        return base + extra + ([f"training.seed={seed}"] if seed is not None else [])

    plan: list[_Job] = []
    for seed in list(seeds) if seeds else [None]:
        for scenario in ordered:
            if scenario == "single-task":
                for task in TASKS:
                    cfg = _load(single_dir / f"{task}.yaml", seeded([], seed), subset, work)
                    plan.append(_Job(scenario, seed, folder(scenario, seed, task), cfg, task))
            elif scenario in static:
                plan.append(_Job(scenario, seed, folder(scenario, seed), _load(config, seeded(static[scenario], seed), subset, work)))
            elif scenario == "gradual-unfreezing":
                cfg = _load(config, seeded([], seed), subset, work)
                cfg.freeze.gradual_unfreezing = _gradual_every(cfg)
                cfg.freeze.gradual_unit = "step"
                plan.append(_Job(scenario, seed, folder(scenario, seed), cfg))
            elif scenario == "head-frozen":
                plan.append(_Job(scenario, seed, folder(scenario, seed), needs=(folder("full", seed),)))
            else:  # distill, or a recipe with +distill: the same seed's single-task models teach
                extra = [o for o in (recipes.get(scenario) or []) if o != DISTILL]
                teachers = {t: str((out.root / folder("single-task", seed, t)).resolve()) for t in TASKS}
                cfg = _load(config, seeded(extra, seed), subset, work)
                cfg.training.distill_teachers = {t: p for t, p in teachers.items() if any(x.name == t for x in cfg.tasks)}
                plan.append(_Job(scenario, seed, folder(scenario, seed), cfg,
                                 needs=tuple(folder("single-task", seed, t) for t in cfg.training.distill_teachers)))

    def done(job: _Job, result: dict[str, Any]) -> None:
        doc["records"].extend(records_from(job.scenario, result["test"], result["seconds"], result["trainable"],
                                           seed=job.seed, dev=result.get("dev") if seeds else None))
        if result.get("note"):
            doc["notes"][job.folder if seeds else job.scenario] = result["note"]
        doc["total_seconds"] = round(time.time() - t0, 1)
        results.write(doc)  # after every run: a long study that dies keeps what finished
        say(f"{job.folder}: " + ", ".join(f"{t} {METRICS[t][0]}={m[METRICS[t][0]]:.4f}" for t, m in result["test"].items() if t in METRICS)
            + f" ({result['seconds']:.0f}s, {result['trainable']:,} trainable)")

    def head_frozen(job: _Job) -> dict[str, Any]:
        return _head_frozen(config, seeded([], job.seed), subset, work, out, say, start=job.needs[0], name=job.folder)

    _run_jobs(plan, jobs, out, say, done, head_frozen)
    doc["total_seconds"] = round(time.time() - t0, 1)
    results.write(doc)
    say(f"wrote {', '.join(str(p) for p in results.paths)}")
    return doc


def _run_jobs(plan: list[_Job], jobs: int, out: OutputDir, say: Callable[[str], None],
              done: Callable[[_Job, dict[str, Any]], None], head_frozen: Callable[[_Job], dict[str, Any]]) -> None:
    """Train the plan, `jobs` at a time; a job starts once the folders it needs are trained.

    jobs == 1 trains in this process, in plan order. jobs > 1 trains in spawned worker processes
    (CUDA and the tokenizers cannot be forked safely), each with its share of the CPU threads,
    so that small runs keep a GPU or several cores busy. head-frozen jobs run in this process.
    """
    finished: set[str] = set()
    pending = list(plan)
    if jobs == 1:
        for job in pending:
            out.fresh(job.folder)
            result = head_frozen(job) if job.cfg is None else _train_job(job.cfg, str(out.root / job.folder), job.folder, 0,
                                                                        _cpu_only(), sys.stderr.isatty(), say)
            done(job, result)
        return
    import concurrent.futures as cf
    import multiprocessing

    threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or max(1, (os.cpu_count() or 1) // jobs)
    running: dict[cf.Future, _Job] = {}
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        while pending or running:
            for job in [j for j in pending if all(n in finished for n in j.needs)]:
                if job.cfg is None:
                    continue  # head-frozen: below, in this process, when nothing else is waiting on it
                if len(running) >= jobs:
                    break
                pending.remove(job)
                out.fresh(job.folder)
                running[pool.submit(_train_job, job.cfg, str(out.root / job.folder), job.folder, threads, _cpu_only(), False)] = job
            if not running:
                ready = [j for j in pending if j.cfg is None and all(n in finished for n in j.needs)]
                if not ready:
                    raise PolyheadError("the study's plan cannot proceed: a job needs a run that is not planned")
                job = ready[0]
                pending.remove(job)
                out.fresh(job.folder)
                done(job, head_frozen(job))
                finished.add(job.folder)
                continue
            first = next(cf.as_completed(running))
            job = running.pop(first)
            done(job, first.result())  # a failed run raises here, with its own message
            finished.add(job.folder)


def _train_job(cfg: RunConfig, out: str, name: str, threads: int, cpu: bool, progress: bool,
               say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """One training (in this process, logging to `say`, or in a worker, logging to stderr): its test
    and dev scores, seconds and trainable parameters. The run's lines are prefixed with its folder name."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    from ..training.loop import train

    def log(message: str) -> None:
        if say is None:
            print(f"polyhead: [{name}] {message}", file=sys.stderr, flush=True)
        else:
            say(f"[{name}] {message}")

    result = train(cfg, out, progress=progress, device="cpu" if cpu else None, log=log)
    return {"test": result.test, "dev": result.dev, "seconds": result.seconds, "trainable": result.trainable_params}


def _head_frozen(config: Path, base: list[str], subset: Subset, work: Path, out: OutputDir, say: Callable[[str], None],
                 start: str = "full", name: str = "head-frozen") -> dict[str, Any]:
    """Continue the full fine-tune on every task but one, whose head stays as it was; re-score all.

    The frozen task gets no gradient at all (its data is left out), so its head is exactly the
    one trained with the old backbone: the score shows what moving the backbone does to it.
    """
    from ..training.data import build_sources
    from ..modeling.model import load
    from ..training.evaluation import evaluate

    start_dir = out.root / start
    cfg = _load(config, base + [f"training.init_from={start_dir}"], subset, work)
    frozen = [t for t in cfg.tasks if t.name == FROZEN_HEAD_TASK]
    cfg.tasks = [t for t in cfg.tasks if t.name != FROZEN_HEAD_TASK]
    result = _train(cfg, out.root / name, say)
    test = dict(result.test)
    if frozen:
        old = load(start_dir, device="cpu" if _cpu_only() else None)
        model = load(out.root / name, device=old.device)
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
    return {"test": test, "seconds": result.seconds, "trainable": result.trainable_params, "note": note}
