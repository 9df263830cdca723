"""What the benchmark and the studies share: the machine's description, the output folder that
replaces only what a benchmark made, configs pointed at subset files, and the jobs runner that
trains a plan of runs one at a time or in worker processes.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Collection

from ..errors import PolyheadError
from ..io import check_replaceable_dir, read_json, write_json_atomic
from ..training.config import RunConfig, load_config
from .results import ALL_TASKS, EMBEDDING_METRIC, METRICS, ResultsWriter, records_from
from .subset import Subset, apply_subset

MARKER = "polyhead-benchmark.json"


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` -> [0, 1, 2]: the training seeds to repeat each run with."""
    try:
        seeds = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise PolyheadError(f"--seeds {text!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise PolyheadError(f"--seeds {text!r}: expected distinct non-negative integers, e.g. 0,1,2")
    return seeds


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


def start_run(out: OutputDir, command: str | None, subset: Any) -> tuple[Path, float, dict[str, Any]]:
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
def cpu_only() -> bool:
    """True when there is no CUDA device."""
    import torch

    return not torch.cuda.is_available()


def run_folder(name: str, seed: int | None, task: str | None = None) -> str:
    """A run's folder name: `joint`, `single-trec`, `full-s0`, `single-task-trec-s1`."""
    return "-".join([name] + ([task] if task else []) + ([f"s{seed}"] if seed is not None else []))


def record_run(doc: dict[str, Any], job: "Job", result: dict[str, Any], t0: float, results: ResultsWriter,
               say: Callable[[str], None], with_dev: bool) -> None:
    """Add a finished run's records to the doc and write the results after every run (a long
    benchmark that dies keeps what finished); say its test scores, time and size."""
    doc["records"].extend(records_from(job.scenario, result["test"], result["seconds"], result["trainable"],
                                       seed=job.seed, dev=result.get("dev") if with_dev else None))
    if result.get("embedding_stsb") is not None:  # the served embedding of this run's model, whatever it learnt
        rec = {"run": job.scenario, "task": ALL_TASKS if job.task is None or job.scenario == "untrained" else job.task, "split": "test", "metric": EMBEDDING_METRIC,
               "value": round(float(result["embedding_stsb"]), 6), "seconds": round(float(result["seconds"]), 1),
               "trainable_params": int(result["trainable"])}
        doc["records"].append({**rec, "seed": int(job.seed)} if job.seed is not None else rec)
    doc["total_seconds"] = round(time.time() - t0, 1)
    results.write(doc)
    embedding = f", embedding STS-B {result['embedding_stsb']:.4f}" if result.get("embedding_stsb") is not None else ""
    say(f"{job.folder}: " + ", ".join(f"{t} {METRICS[t][0]}={m[METRICS[t][0]]:.4f}" for t, m in result["test"].items() if t in METRICS)
        + f"{embedding} ({result['seconds']:.0f}s, {result['trainable']:,} trainable)")


def embedding_pairs(cfg: RunConfig) -> RunConfig | None:
    """The config's similarity task with a test file, alone (the served-embedding score's data), or None."""
    import copy

    from ..kinds import kind_of

    tasks = [t for t in cfg.tasks if kind_of(t.kind).cosine and cfg.resolve(t.test) is not None and cfg.resolve(t.test).is_file()]
    if not tasks:
        return None
    pairs = copy.deepcopy(cfg)
    pairs.tasks, pairs.datasets = tasks[:1], []
    return pairs


def embedding_stsb(folder: Path, pairs: RunConfig, batch_size: int = 64) -> float:
    """The served embedding's test Spearman on `pairs` (embedding_pairs): the cosine of each pair's
    sentence vectors from the model saved in `folder`, against the gold scores, whatever it was trained on."""
    import numpy as np
    from scipy.stats import spearmanr

    from ..modeling.model import load
    from ..training.data import build_sources

    sources, _ = build_sources(pairs, splits=("test",))
    examples = sources[0].splits["test"]
    encoder = load(folder, device="cpu").encoder
    a = encoder.encode([e.pair[0] for e in examples], batch_size=batch_size, normalize=True)
    b = encoder.encode([e.pair[1] for e in examples], batch_size=batch_size, normalize=True)
    return float(spearmanr(np.sum(a * b, axis=1), [e.score for e in examples]).statistic)


def carry_over(plan: list[Job], out: OutputDir, results_name: str, doc: dict[str, Any],
               say: Callable[[str], None]) -> tuple[list[Job], set[str]]:
    """--resume: continue an interrupted benchmark or study in its output folder.

    A job whose folder holds a finished model and whose records are in the earlier invocation's
    results file (out.root/results_name) is not trained again: its records join `doc`. A job whose
    folder holds an unfinished training continues from its last checkpoint (train() refuses if
    the config or data changed since). Every other job starts over. Returns the jobs left to run
    and the folders kept; doc["resumed"] says which runs were kept and which continued.
    """
    from ..training.checkpoint import CHECKPOINT_DIR, LATEST, MODEL_MARKER
    from .results import read_doc

    path = out.root / results_name
    if path.is_file():
        earlier = read_doc(path)
    elif any((out.root / job.folder / CHECKPOINT_DIR / LATEST).is_file() and job.folder in out.made for job in plan):
        # Killed before its first run finished, so no results yet; the checkpoint is the work to keep.
        # (Other data than before: train() refuses, as the checkpoint records the config and data.)
        earlier = {"records": [], "subset": doc.get("subset")}
    else:
        raise PolyheadError(f"--resume: {path} does not exist and no run in {out.root} left a checkpoint, so there is "
                            "no interrupted run to continue; run without --resume")
    if earlier.get("subset") != doc.get("subset"):
        raise PolyheadError(f"--resume: the run in {out.root} used other data ({earlier.get('subset') or 'the full data'}); "
                            "resume it with the same --quick/--subset, or choose another --output-dir")
    left: list[Job] = []
    kept: set[str] = set()
    for job in plan:
        folder = out.root / job.folder
        records = [r for r in earlier["records"] if r.get("run") == job.scenario and r.get("seed") == job.seed
                   and (job.task is None or r.get("task") == job.task)]
        unfinished = (folder / CHECKPOINT_DIR / LATEST).is_file()
        if records and not unfinished and (folder / MODEL_MARKER).is_file() and job.folder in out.made:
            doc["records"].extend(records)
            for key in {job.folder, job.scenario} & set(earlier.get("notes") or {}):
                doc.setdefault("notes", {})[key] = earlier["notes"][key]  # the study's head-frozen note
            kept.add(job.folder)
            say(f"{job.folder}: finished in the earlier run; kept")
        elif unfinished and job.cfg is not None and job.folder in out.made:
            job.resume = True
            left.append(job)
            say(f"{job.folder}: unfinished; continuing from its last checkpoint")
        else:
            left.append(job)
    doc["resumed"] = {"from": earlier.get("date"), "kept": sorted(kept), "continued": [j.folder for j in left if j.resume]}
    return left, kept


def load_run_config(path: Path, overrides: list[str], subset: Subset | None, workdir: Path) -> RunConfig:
    """A config with overrides applied, pointed at subset files when a subset is given."""
    cfg = load_config(path, overrides)
    if subset is not None:
        apply_subset(cfg, subset, workdir)
    return cfg


def single_teachers(cfg: RunConfig) -> list[str]:
    """The tasks whose teacher the config leaves to the benchmark ({single} or auto: its single-task model
    of the same seed, which is what `polyhead train` would train first for auto)."""
    from ..training.distill import AUTO_TEACHER, SINGLE_TEACHER

    return [t for t, folder in cfg.training.distill_teachers.items() if folder in (SINGLE_TEACHER, AUTO_TEACHER)]


def drop_teachers(cfg: RunConfig, tasks: Collection[str], say: Callable[[str], None] | None = None, why: str = "") -> None:
    """Remove these tasks' teachers; with no teacher left, the teachers' term on other texts goes too
    (it needs them: training.distill_other_texts)."""
    gone = [t for t in tasks if t in cfg.training.distill_teachers]
    for t in gone:
        del cfg.training.distill_teachers[t]
    if gone and not cfg.training.distill_teachers and cfg.training.distill_other_texts:
        cfg.training.distill_other_texts = 0.0
    if gone and say is not None:
        say(f"no teacher for {', '.join(gone)} ({why}): trained without it" + ("" if cfg.training.distill_teachers else ", and without distill_other_texts"))



@dataclasses.dataclass
class Job:
    """One training of the study: a scenario (or recipe) on one seed; single-task runs name their task."""

    scenario: str
    seed: int | None
    folder: str
    cfg: RunConfig | None = None
    task: str | None = None
    needs: tuple[str, ...] = ()  # folders that must be trained first (distill's teachers, head-frozen's start)
    resume: bool = False  # continue the unfinished training in its folder (--resume) instead of starting over


def estimated_cost(job: Job) -> float:
    """A job's training work, for ordering only: epochs x the bytes of its training files.

    Bytes stand in for examples (no file is parsed; max_steps is not looked at: the benchmark and
    the study train by epochs); a missing file counts as nothing. head-frozen
    jobs (no config) cost nothing here: they are cheap and run when nothing else is waiting.
    """
    if job.cfg is None:
        return 0.0
    size = 0
    for source in [*job.cfg.tasks, *job.cfg.datasets]:
        path = job.cfg.resolve(getattr(source, "train", None))
        try:
            size += path.stat().st_size if path is not None else 0
        except OSError:
            pass
    return float(size) * job.cfg.training.epochs


def run_jobs(plan: list[Job], jobs: int, out: OutputDir, say: Callable[[str], None],
              done: Callable[[Job, dict[str, Any]], None], head_frozen: Callable[[Job], dict[str, Any]],
              kept: Collection[str] = ()) -> None:
    """Train the plan, `jobs` at a time; a job starts once the folders it needs are trained.

    jobs == 1 trains in this process, in plan order. jobs > 1 starts the ready job with the largest
    `estimated_cost` first (the joint runs before the single-task ones) and trains in spawned worker processes
    (CUDA and the tokenizers cannot be forked safely), each with its share of the CPU threads,
    so that small runs keep a GPU or several cores busy. head-frozen jobs run in this process.
    `kept`: folders an earlier invocation finished (--resume), which jobs that need them may use.
    """
    finished: set[str] = set(kept)
    pending = list(plan)
    if jobs > 1:  # longest first, so that the long joint runs do not start last and leave cores idle
        pending.sort(key=estimated_cost, reverse=True)
    if jobs == 1:
        for job in pending:
            if not job.resume:
                out.fresh(job.folder)
            result = head_frozen(job) if job.cfg is None else train_job(job.cfg, str(out.root / job.folder), job.folder, 0,
                                                                        cpu_only(), sys.stderr.isatty(), say, job.resume)
            done(job, result)
        return
    import concurrent.futures as cf
    import multiprocessing

    threads = int(os.environ.get("OMP_NUM_THREADS") or 0) or max(1, (os.cpu_count() or 1) // jobs)
    running: dict[cf.Future, Job] = {}
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                initializer=exit_with_parent, initargs=(os.getpid(),)) as pool:
        while pending or running:
            for job in [j for j in pending if all(n in finished for n in j.needs)]:
                if job.cfg is None:
                    continue  # head-frozen: below, in this process, when nothing else is waiting on it
                if len(running) >= jobs:
                    break
                pending.remove(job)
                if not job.resume:
                    out.fresh(job.folder)
                running[pool.submit(train_job, job.cfg, str(out.root / job.folder), job.folder, threads, cpu_only(), False,
                                    None, job.resume)] = job
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


def exit_with_parent(parent: int, every: float = 1.0) -> None:
    """In a worker process: end it when `parent` is gone. A `polyhead benchmark --jobs N` stopped by
    SIGTERM or SIGKILL (a scheduler, a CI timeout, `kill`) gets no chance to stop its workers, and a
    worker in the middle of a training would otherwise run it to the end, orphaned, on the CPUs the
    next run wants. (Ctrl-C reaches the workers themselves: it goes to the whole process group.)"""
    import threading

    if os.getppid() != parent:
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(143)  # the parent died while this worker started
        except PermissionError:
            pass
        return  # started through another process (another start method): nothing reliable to watch

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        os._exit(143)  # 128 + SIGTERM, as if the signal had reached this process too

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def train_job(cfg: RunConfig, out: str, name: str, threads: int, cpu: bool, progress: bool,
              say: Callable[[str], None] | None = None, resume: bool = False) -> dict[str, Any]:
    """One training (in this process, logging to `say`, or in a worker, logging to stderr): its test
    and dev scores, seconds and trainable parameters. The run's lines are prefixed with its folder name.
    resume: continue the unfinished run in `out` from its last checkpoint."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    from ..training.loop import train

    def log(message: str) -> None:
        if say is None:
            print(f"polyhead: [{name}] {message}", file=sys.stderr, flush=True)
        else:
            say(f"[{name}] {message}")

    result = train(cfg, out, resume=resume, progress=progress, device="cpu" if cpu else None, log=log)
    return {"test": result.test, "dev": result.dev, "seconds": result.seconds, "trainable": result.trainable_params}
