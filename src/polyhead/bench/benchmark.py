"""The benchmark suite on the four public datasets: `run_benchmark` trains the joint model
(configs/benchmark.yaml), one single-task model per task (configs/single/NAME.yaml), a
frozen-encoder baseline per task (the single-task config with the backbone frozen: heads only)
and scores the untrained encoder on STS-B, optionally over several seeds and several runs at
once; it writes JSON + Markdown. The studies (scenarios on a subset) are in study.py.

Quick mode uses a *subset* (subset.py); results.py renders and combines the results;
harness.py holds the output folder (it deletes only the folders an earlier benchmark made
there, listed in its marker file polyhead-benchmark.json, else --force) and the jobs runner.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import PolyheadError
from ..training.config import RunConfig
from .harness import (  # noqa: F401  (re-exported: the names this module had before the split)
    MARKER,
    Job,
    OutputDir,
    carry_over,
    drop_teachers,
    embedding_pairs,
    embedding_stsb,
    load_run_config,
    machine_description,
    now_iso,
    parse_seeds,
    record_run,
    run_folder,
    run_jobs,
    single_teachers,
    start_run,
)
from .results import (  # noqa: F401  (re-exported: the names this module had before the split)
    DEFAULT_STUDY_SCENARIOS,
    IN_OUTPUT_DIR,
    METRICS,
    QUALITY_SCENARIOS,
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
    records_from,
    results_folder,
    study_markdown,
)
from .results import stats as stats_of  # noqa: F401
from .subset import QUICK, STUDY, Subset, apply_subset, parse_subset, write_subset  # noqa: F401


def run_benchmark(
    config: str | Path = "configs/benchmark.yaml",
    single_dir: str | Path = "configs/single",
    output_dir: str | Path = "runs/benchmark/full",
    results_dir: str | Path | None = IN_OUTPUT_DIR,
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
    distill: Sequence[str] = (),
    resume: bool = False,
) -> dict[str, Any]:
    """Run the selected runs; write benchmark.json + .md to output_dir (and results_dir); return the doc.

    quick=True uses the QUICK subset; `subset` names another one; neither = the full data.
    seeds: repeat every trained run with each training seed (records carry the seed; tables show
    mean ± sd); jobs: trainings at once, in separate processes. distill: tasks whose joint head learns
    from this invocation's single-task model of the same seed (teachers; needs the single runs).
    force=True lets the run replace folders in output_dir that no earlier benchmark made.
    resume=True continues an interrupted invocation with the same arguments in output_dir: finished
    runs are kept, unfinished trainings continue from their last checkpoint (harness.carry_over).
    results_dir: the folder whose results file adds up this kind of data's records across
    invocations: by default output_dir/results; benchmarks/results for the committed figures; None: none.
    """
    say = log or (lambda m: print(f"polyhead benchmark: {m}", file=sys.stderr, flush=True))
    bad = [t for t in tasks if t not in TASKS] + [r for r in runs if r not in RUNS]
    if bad:
        raise PolyheadError(f"unknown task(s)/run(s) {', '.join(bad)}; tasks: {', '.join(TASKS)}; runs: {', '.join(RUNS)}")
    if jobs < 1:
        raise PolyheadError(f"--jobs must be at least 1, got {jobs}")
    if distill and not ("joint" in runs and "single" in runs):
        raise PolyheadError("--distill needs the joint and the single runs: the single-task models are the joint run's teachers")
    unknown = [t for t in distill if t not in tasks]
    if unknown:
        raise PolyheadError(f"--distill names task(s) not in this benchmark: {', '.join(unknown)}; tasks: {', '.join(tasks)}")
    out, single_dir = OutputDir(output_dir, force), Path(single_dir)
    subset = QUICK if quick else subset
    work, t0, doc = start_run(out, command, subset)
    if seeds:
        doc["seeds"] = list(seeds)
    # A subset run never touches the full figures: each kind of data has its own results file.
    name = "benchmark.json" if subset is None else "benchmark-quick.json" if subset == QUICK else "benchmark-subset.json"
    folder = results_folder(results_dir, out.root)
    results = ResultsWriter(out.root / "benchmark.json", None if folder is None else folder / name, markdown_table)

    # The served embedding of every run's model is scored on the joint config's STS-B test pairs.
    try:
        pairs = embedding_pairs(load_run_config(Path(config), list(overrides), subset, work))
    except PolyheadError as exc:  # e.g. --tasks trec with only TREC fetched: the runs go on without it
        pairs = None
        say(f"the served embedding is not scored (no STS-B test pairs: {exc})")

    def done(job: Job, result: dict[str, Any]) -> None:
        if pairs is not None:
            result = {**result, "embedding_stsb": embedding_stsb(out.root / job.folder, pairs)}
        record_run(doc, job, result, t0, results, say, with_dev=bool(seeds))

    keep = list(tasks)
    plan: list[Job] = []

    def single_task_config(task: str, extra: list[str]) -> RunConfig:
        """A single-task run's config with the overrides; the teachers' term on other texts is the
        joint run's (a single-task run has no teacher), so --set does not carry it here."""
        cfg = load_run_config(single_dir / f"{task}.yaml", [*overrides, *extra], subset, work)
        cfg.training.distill_other_texts = 0.0
        return cfg

    if "untrained" in runs and "stsb" in tasks:
        # Nothing learns: the similarity head has no parameters, so this is the encoder's own cosine.
        cfg = single_task_config("stsb", ["freeze.all=true"])
        plan.append(Job("untrained", None, "untrained-stsb", cfg, "stsb"))
    every_seed = list(seeds) if seeds else [None]
    for seed in every_seed:
        extra = [f"training.seed={seed}"] if seed is not None else []
        if "frozen-encoder" in runs:
            for task in keep:
                if task == "stsb":
                    continue  # identical to "untrained": there is no head parameter to train
                cfg = single_task_config(task, [*extra, "freeze.encoder=true"])
                plan.append(Job("frozen-encoder", seed, run_folder("frozen", seed, task), cfg, task))
        if "single" in runs:
            for task in keep:
                cfg = single_task_config(task, extra)
                plan.append(Job("single", seed, run_folder("single", seed, task), cfg, task))
        if "joint" in runs:
            cfg = load_run_config(Path(config), [*overrides, *extra], subset, work)
            cfg.tasks = [t for t in cfg.tasks if t.name in keep]
            if not cfg.tasks:
                raise PolyheadError("no task of the joint config is selected")
            # Teachers from this benchmark's single-task models: --distill's, and the config's auto / {single} ones.
            from_config = single_teachers(cfg)
            drop_teachers(cfg, [t for t in from_config if t not in keep], say if seed == every_seed[0] else None, "not in --tasks")
            wanted = (set(distill) | set(from_config)) & set(keep)
            if wanted and "single" not in runs:
                t = sorted(wanted)[0]
                why = f"training.distill_teachers.{t}: {cfg.training.distill_teachers[t]} in {config}" if t in from_config else "--distill"
                raise PolyheadError(
                    f"the joint run learns from the single-task {', '.join(sorted(wanted))} model(s) of this benchmark "
                    f"({why}); add single to --runs (--runs joint,single), "
                    f"give a trained model folder (--set training.distill_teachers.{t}=PATH), or train without teachers "
                    "(--set 'training.distill_teachers={}' --set training.distill_other_texts=0)")
            teachers = {t.name: run_folder("single", seed, t.name) for t in cfg.tasks if t.name in wanted}
            cfg.training.distill_teachers.update({t: str((out.root / f).resolve()) for t, f in teachers.items()})
            plan.append(Job("joint", seed, run_folder("joint", seed), cfg, needs=tuple(teachers.values())))
    kept: set[str] = set()
    if resume:
        plan, kept = carry_over(plan, out, "benchmark.json", doc, say)
    run_jobs(plan, jobs, out, say, done, lambda job: {}, kept)
    doc["total_seconds"] = round(time.time() - t0, 1)
    results.write(doc)
    say(f"wrote {', '.join(str(p) for p in results.paths)} and {results.out.with_suffix('.md')}")
    return doc
