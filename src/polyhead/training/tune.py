"""Hyperparameter search on Optuna: `polyhead tune CONFIG -o OUT --trials N --space KEY=SPEC` and
`polyhead.tune(config, out, space, trials=N)`.

Each trial is a whole `polyhead.train` run of the config with some keys set from the search space,
into OUT/trials/trial-NNNN; its value is the dev selection score it kept (training.select_metric,
higher is better). At every dev evaluation the trial reports that score to Optuna, and the pruner
(Optuna's median pruner) stops a trial that is doing worse than the others were at the same step:
it stops as early stopping does, its model kept. At the end OUT/trials.csv holds every trial
(number, state, score, its settings, seconds) and OUT/best.yaml the config of the best trial, ready
for `polyhead train`.

The search space, per key: a `search:` section in the config (`training.lr: log:1e-5:1e-3`),
`--space KEY=SPEC` on the command line, or {KEY: SPEC} in Python (these two win over the config's):
    float:LOW:HIGH   a number in [LOW, HIGH]          training.anchor_weight=float:0:3
    log:LOW:HIGH     a number, sampled on a log scale  training.lr=log:1e-5:1e-3
    int:LOW:HIGH     an integer in [LOW, HIGH]        training.epochs=int:1:4
    choice:A,B,...   one of the values (YAML each)    training.weighting=choice:equal,loss_scale
A Python list is a choice. Every key and both ends of every range are checked against the config
before any trial runs (an unknown key or an impossible value: one line).

Many processes or machines can share one study: give each the same `--storage` (an Optuna storage
URL: sqlite:///tune.db on one machine, postgresql://... across machines) and `--study-name`;
`--trials` is then the total over all of them.
"""
from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from ..errors import PolyheadError
from ..io import write_text_atomic
from .callbacks import Callback, Progress
from .config import apply_overrides
from .space import Param, entries, override as _override, parse_space

TRIALS_DIR = "trials"


def check_space(base: dict[str, Any], params: list[Param], build: Callable[[dict[str, Any]], Any]) -> None:
    """Every key exists in the config and both ends of every range are values it accepts."""
    for p in params:
        for value in p.ends():
            try:
                build(apply_overrides(base, [_override(p.key, value)]))
            except PolyheadError as exc:
                raise PolyheadError(f"search space {p.key} = {value!r}: {exc}") from None


class _Pruning(Callback):
    """Reports each dev evaluation's score to the trial; stops the run when Optuna prunes it."""

    def __init__(self, trial: Any) -> None:
        self.trial, self.pruned = trial, False

    def on_evaluate(self, progress: Progress) -> None:
        if progress.score is None:
            return
        self.trial.report(progress.score, progress.step)
        if self.trial.should_prune():
            self.pruned = True
            progress.request_stop(f"pruned by Optuna at step {progress.step} (dev score {progress.score:.4f})")


@dataclass
class TuneResult:
    """What a search found: the best trial's number, score, settings and folder, and every trial."""

    best_number: int
    best_value: float
    best_params: dict[str, Any]
    best_dir: Path
    best_config: Path
    trials: list[dict[str, Any]]


def tune(
    config: Any,
    output_dir: str | Path,
    space: dict[str, Any] | Sequence[str] | None = None,
    trials: int = 10,
    *,
    data: dict[str, Any] | None = None,
    overrides: Sequence[str] | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    seed: int | None = None,
    device: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] | None = None,
) -> TuneResult:
    """Search `space` over `trials` training runs of `config` (see the module docstring)."""
    try:
        import optuna
    except ImportError:
        raise PolyheadError("polyhead tune needs Optuna, which is not installed: pip install 'polyhead[tune]'") from None
    from ..console import say as console_say
    from .api import resolve_config, train
    from .config import config_from_dict

    say = log or console_say
    if trials < 1:
        raise PolyheadError(f"--trials must be at least 1, got {trials}")
    base_cfg = resolve_config(config, overrides, data)
    base = base_cfg.to_dict()
    # The config's search: section, then the space given here (which wins per key).
    given = dict(space) if isinstance(space, dict) else dict(entries(space or []))
    params = parse_space({**base_cfg.search, **given})
    check_space(base, params, lambda d: config_from_dict(d, base_dir=base_cfg.base_dir, in_memory=base_cfg.data))
    if not _has_dev(base_cfg):
        raise PolyheadError("polyhead tune scores each trial on dev: give at least one task a dev split")
    out = Path(output_dir)
    if storage is None and (out / TRIALS_DIR).is_dir() and any((out / TRIALS_DIR).iterdir()):
        raise PolyheadError(f"{out} holds an earlier search; continue it by giving its --storage and --study-name, "
                            "or choose another --output")
    (out / TRIALS_DIR).mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _open_study(optuna, storage, study_name, seed)

    def objective(trial: Any) -> float:
        chosen = {p.key: p.suggest(trial) for p in params}
        folder = out / TRIALS_DIR / f"trial-{trial.number:04d}"
        trial.set_user_attr("folder", str(folder))
        settings = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in chosen.items())
        say(f"trial {trial.number}: {settings}")
        cfg = config_from_dict(apply_overrides(base, [_override(k, v) for k, v in chosen.items()]), base_dir=base_cfg.base_dir,
                               in_memory=base_cfg.data)
        pruning = _Pruning(trial)
        started = time.time()
        result = train(cfg, folder, device=device, progress=progress, log=lambda m: None, callbacks=[pruning])
        trial.set_user_attr("seconds", round(time.time() - started, 1))
        score = result.best_metric if result.best_metric is not None else float("nan")
        say(f"trial {trial.number}: dev score {score:.4f}{' (pruned)' if pruning.pruned else ''} in {time.time() - started:.0f}s")
        if pruning.pruned:
            raise optuna.TrialPruned()
        return score

    done = optuna.study.MaxTrialsCallback(trials, states=None)  # --trials counts every worker's trials
    study.optimize(objective, n_trials=trials, callbacks=[done], catch=())
    return _report(study, base, params, out, base_cfg, say)


def _open_study(optuna: Any, storage: str | None, study_name: str | None, seed: int | None, attempts: int = 5) -> Any:
    """The study, created or joined. Workers that start together race to create the storage's
    tables (SQLite: "UNIQUE constraint failed: alembic_version"); the loser tries again a moment
    later, when the tables are there. A bad URL or an unreachable database fails in one line."""
    for attempt in range(attempts):
        try:
            return optuna.create_study(study_name=study_name, storage=storage, load_if_exists=True, direction="maximize",
                                       sampler=optuna.samplers.TPESampler(seed=seed), pruner=optuna.pruners.MedianPruner())
        except Exception as exc:
            if attempt == attempts - 1 or storage is None:
                raise PolyheadError(f"--storage {storage}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
            time.sleep(0.5 + attempt)
    raise AssertionError("unreachable")


def _has_dev(cfg: Any) -> bool:
    from .memory import splits_of

    return (any(t.dev for t in cfg.tasks) or any(d.dev for d in cfg.datasets)
            or any("dev" in splits_of(cfg.data, name) for name in cfg.data))


def _portable_paths(config: dict[str, Any], cfg: Any, out: Path) -> dict[str, Any]:
    """The config with its data paths relative to `out` (where best.yaml is written), so that
    `polyhead train OUT/best.yaml` finds the same files; {cache} and $VARS stay as written."""
    for section in ("tasks", "datasets"):
        for entry in config.get(section) or []:
            for split in ("train", "dev", "test"):
                value = entry.get(split)
                if isinstance(value, str) and "{cache}" not in value and "$" not in value and not value.startswith("~"):
                    entry[split] = os.path.relpath(Path(cfg.resolve(value)).resolve(), out.resolve())
    return config


def _report(study: Any, base: dict[str, Any], params: list[Param], out: Path, cfg: Any, say: Callable[[str], None]) -> TuneResult:
    rows = []
    for t in study.trials:
        rows.append({"number": t.number, "state": t.state.name.lower(), "dev_score": t.value if t.value is not None else "",
                     **{p.key: t.params.get(p.key, "") for p in params}, "seconds": t.user_attrs.get("seconds", ""),
                     "folder": t.user_attrs.get("folder", "")})
    with (out / "trials.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["number"])
        writer.writeheader()
        writer.writerows(rows)
    complete = [t for t in study.trials if t.value is not None and t.state.name == "COMPLETE"]
    if not complete:
        raise PolyheadError(f"no trial completed (see {out / 'trials.csv'})")
    best = max(complete, key=lambda t: t.value)
    best_cfg = _portable_paths(apply_overrides(base, [_override(k, v) for k, v in best.params.items()]), cfg, out)
    path = out / "best.yaml"
    write_text_atomic(path, f"# polyhead tune: trial {best.number}, dev score {best.value:.4f}\n"
                      + yaml.safe_dump(best_cfg, sort_keys=False))
    say(f"best: trial {best.number}, dev score {best.value:.4f}: "
        + ", ".join(f"{k}={v}" for k, v in best.params.items()) + f"; config in {path}, table in {out / 'trials.csv'}")
    return TuneResult(best.number, float(best.value), dict(best.params), Path(best.user_attrs.get("folder", "")), path, rows)
