"""Studies: the joint config trained under named scenarios on one documented subset, each
scenario one change (freezing choices; the joint-quality program's losses, weightings,
distillation), optionally over several seeds and with named recipes (override lists). Writes
study.json + .md (or --name's file) with mean ± sd per cell and the difference from single-task
on the same seed.
"""
from __future__ import annotations

import dataclasses
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import PolyheadError
from ..training.config import RunConfig
from .harness import (
    Job,
    OutputDir,
    carry_over,
    cpu_only,
    drop_teachers,
    load_run_config,
    record_run,
    run_folder,
    run_jobs,
    single_teachers,
    start_run,
    train_job,
)
from .results import DEFAULT_STUDY_SCENARIOS, IN_OUTPUT_DIR, SCENARIOS, TASKS, ResultsWriter, results_folder, study_markdown
from .subset import QUICK, STUDY, Subset

FROZEN_HEAD_TASK = "sentiment"


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


# One change each against `full`, the joint config as it is (the joint-quality study,
# docs/research/notebook.md; the decisions it led to: docs/design.md). "single-task" and "distill" are built in run_study: distill's teachers are the
# single-task models of the same seed.
QUALITY_OVERRIDES: dict[str, list[str]] = {
    "sts-cosent": ["tasks.stsb.loss=cosent"],
    "sts-angle": ["tasks.stsb.loss=angle"],
    "loss-scale": ["training.weighting=loss_scale"],
    "famo": ["training.weighting=famo"],
    "anchor": ["training.anchor_weight=1.0"],
}
DISTILL = "+distill"  # in a recipe's overrides: the same seed's single-task models are its teachers


def parse_recipe(text: str) -> tuple[str, list[str]]:
    """`NAME=KEY=VALUE;KEY=VALUE;+distill` -> (NAME, overrides): a named joint variant for the study."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise PolyheadError(f"--recipe {text!r} must look like NAME=KEY=VALUE[;KEY=VALUE...] (';' separates overrides; "
                            f"'{DISTILL}' adds the same seed's single-task models as teachers)")
    if name in SCENARIOS:
        raise PolyheadError(f"--recipe name {name!r} is a built-in scenario; choose another name")
    return name, [o.strip() for o in rest.split(";") if o.strip()]


def run_study(
    config: str | Path = "configs/benchmark.yaml",
    output_dir: str | Path = "runs/benchmark/study",
    results_dir: str | Path | None = IN_OUTPUT_DIR,
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
    resume: bool = False,
) -> dict[str, Any]:
    """Train the joint config under each scenario on one subset; write study.json + .md.

    seeds: repeat every run with each training seed (cells become mean ± sd); jobs: trainings run
    at once in separate processes (threads split between them); recipes: named override lists
    trained like scenarios. force=True lets the study replace folders in output_dir that no
    earlier benchmark made. results_name: the results file's stem (default study / study-quick), in
    results_dir (default output_dir/results; benchmarks/results for the committed figures; None: none).
    resume=True continues an interrupted study with the same arguments (harness.carry_over).
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
    work, t0, doc = start_run(out, command, subset)
    doc.update(scenarios=ordered, notes={})
    if seeds:
        doc["seeds"] = list(seeds)
    name = results_name or ("study-quick" if subset == QUICK else "study")  # a quick study never overwrites the real one
    folder = results_folder(results_dir, out.root)
    results = ResultsWriter(out.root / "study.json", None if folder is None else folder / f"{name}.json", study_markdown)
    base = list(overrides)
    static = {
        # A frozen encoder has nothing to anchor (the recipe's anchor_weight is a config error there).
        "frozen-all": ["freeze.all=true", "training.anchor_weight=0"],
        "frozen-backbone": ["freeze.encoder=true", "training.anchor_weight=0"],
        "full": [],
        "layer-decay": ["training.layer_decay=0.8"],
        "uncertainty-weighting": ["training.weighting=uncertainty"],
        "proportional-sampling": ["training.sampling=proportional"],
        # STS-B's cosine-MSE loss runs ~10x smaller than the others' cross-entropy (docs/design.md)
        "stsb-weighted": ["training.weighting=static", "tasks.stsb.weight=10"],
        **QUALITY_OVERRIDES,
        **{r: o for r, o in recipes.items() if DISTILL not in o},
    }
    config, single_dir = Path(config), Path(single_dir)

    def seeded(extra: list[str], seed: int | None) -> list[str]:
        return base + extra + ([f"training.seed={seed}"] if seed is not None else [])

    def joint(extra: list[str], seed: int | None) -> RunConfig:
        """The joint config for a scenario: without the teachers it leaves to the benchmark ({single}),
        which the study trains only for distill and +distill recipes."""
        return _without_single_teachers(load_run_config(config, seeded(extra, seed), subset, work))

    left_out = single_teachers(load_run_config(config, list(base), None, work))
    if left_out:
        say(f"the joint config's own teachers ({', '.join(left_out)}: auto or {{single}}) are left out of every scenario but "
            f"distill and {DISTILL} recipes, which learn from the study's single-task models of every task")

    plan: list[Job] = []
    for seed in list(seeds) if seeds else [None]:
        for scenario in ordered:
            if scenario == "single-task":
                for task in TASKS:
                    cfg = load_run_config(single_dir / f"{task}.yaml", seeded([], seed), subset, work)
                    plan.append(Job(scenario, seed, run_folder(scenario, seed, task), cfg, task))
            elif scenario in static:
                plan.append(Job(scenario, seed, run_folder(scenario, seed), joint(static[scenario], seed)))
            elif scenario == "gradual-unfreezing":
                cfg = joint([], seed)
                cfg.freeze.gradual_unfreezing = _gradual_every(cfg)
                cfg.freeze.gradual_unit = "step"
                plan.append(Job(scenario, seed, run_folder(scenario, seed), cfg))
            elif scenario == "head-frozen":
                plan.append(Job(scenario, seed, run_folder(scenario, seed), needs=(run_folder("full", seed),)))
            else:  # distill, or a recipe with +distill: the same seed's single-task models teach
                extra = [o for o in (recipes.get(scenario) or []) if o != DISTILL]
                teachers = {t: str((out.root / run_folder("single-task", seed, t)).resolve()) for t in TASKS}
                cfg = load_run_config(config, seeded(extra, seed), subset, work)
                # On the study's base (no {single} teachers, so none of their term on other texts),
                # unless the recipe sets that term itself.
                asked = cfg.training.distill_other_texts if any(o.startswith("training.distill_other_texts=") for o in extra) else None
                _without_single_teachers(cfg)
                if asked is not None:
                    cfg.training.distill_other_texts = asked
                cfg.training.distill_teachers = {t: p for t, p in teachers.items() if any(x.name == t for x in cfg.tasks)}
                plan.append(Job(scenario, seed, run_folder(scenario, seed), cfg,
                                 needs=tuple(run_folder("single-task", seed, t) for t in cfg.training.distill_teachers)))

    def done(job: Job, result: dict[str, Any]) -> None:
        if result.get("note"):
            doc["notes"][job.folder if seeds else job.scenario] = result["note"]
        record_run(doc, job, result, t0, results, say, with_dev=bool(seeds))

    def head_frozen(job: Job) -> dict[str, Any]:
        return _head_frozen(config, seeded([], job.seed), subset, work, out, say, start=job.needs[0], name=job.folder)

    kept: set[str] = set()
    if resume:
        plan, kept = carry_over(plan, out, "study.json", doc, say)
    run_jobs(plan, jobs, out, say, done, head_frozen, kept)
    doc["total_seconds"] = round(time.time() - t0, 1)
    results.write(doc)
    say(f"wrote {', '.join(str(p) for p in results.paths)}")
    return doc


def _without_single_teachers(cfg: RunConfig) -> RunConfig:
    drop_teachers(cfg, single_teachers(cfg))
    return cfg


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
    cfg = _without_single_teachers(load_run_config(config, base + [f"training.init_from={start_dir}"], subset, work))
    frozen = [t for t in cfg.tasks if t.name == FROZEN_HEAD_TASK]
    cfg.tasks = [t for t in cfg.tasks if t.name != FROZEN_HEAD_TASK]
    result = train_job(cfg, str(out.root / name), name, 0, cpu_only(), sys.stderr.isatty(), say)
    test = dict(result["test"])
    if frozen:
        old = load(start_dir, device="cpu" if cpu_only() else None)
        model = load(out.root / name, device=old.device)
        model.add_head(old.tasks[FROZEN_HEAD_TASK])
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
    return {"test": test, "seconds": result["seconds"], "trainable": result["trainable"], "note": note}
