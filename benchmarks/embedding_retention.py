"""What head training does to the served sentence embedding, and which protection keeps it.

For one task set (the shipped example data, or the benchmark's TREC + sentiment + CoNLL on a seeded
subset), every arm is trained for every seed with `polyhead.train`; the kept model is then scored
as a user would see it: its heads' dev (and test) scores from training/metrics.json, its
embedding's retention against the starting encoder (also in metrics.json), and the embedding's
Spearman on the STS-B test set (cosine of the two sentences' vectors, as `/similarity` serves it).

    python benchmarks/embedding_retention.py example --seeds 42,1,2
    python benchmarks/embedding_retention.py benchmark --seeds 42,1,2
    python benchmarks/embedding_retention.py kinds --arms anchor-1-refit --seeds 42,1,2

The kinds set is the benchmark set plus one task of each newer kind (regression on
sentiment_score, multi-label on conll2003_types, pair classification on stsb_equivalence) on the
same subset: does training them jointly keep the benchmark's tasks where they were? Its results
file compares each benchmark task with the same arm of --baseline (the committed benchmark set's
results by default), seed by seed: the subset, seeds and settings are the same, only the tasks
trained beside them differ.

Writes runs/results/retention-<set>.json, or --results (benchmarks/results/retention-<set>.json:
the committed ones): a row per arm and seed, plus per-arm means and sds, and .md; finished rows
are kept, so an interrupted invocation continues where it stopped.
Needs `polyhead datasets fetch` (STS-B, and the benchmark set's data).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# Arms: the overrides each applies on top of the task set's config. "none" is polyhead's defaults
# before the anchor became one (no protection); the anchor weights bracket the benchmark's 1.0;
# "anchor-1-refit" adds the second stage that refits the per-text heads on the trained encoder;
# "recipe" adds the benchmark recipe's loss-scale weighting and head refit to the anchor.
ARMS: dict[str, list[str]] = {
    "none": ["training.anchor_weight=0", "training.weighting=equal", "training.refit_heads=false"],
    "anchor-0.3": ["training.anchor_weight=0.3", "training.weighting=equal", "training.refit_heads=false"],
    "anchor-1": ["training.anchor_weight=1.0", "training.weighting=equal", "training.refit_heads=false"],
    "anchor-3": ["training.anchor_weight=3.0", "training.weighting=equal", "training.refit_heads=false"],
    "anchor-1-refit": ["training.anchor_weight=1.0", "training.weighting=equal", "training.refit_heads=true",
                       "training.anchor_shared_texts=per_source"],
    "recipe": ["training.anchor_weight=1.0", "training.weighting=loss_scale", "training.refit_heads=true"],
}
# The anchor on similarities only (training.anchor_target: similarities): the embedding space may
# turn and move as long as the cosines between texts stay; its distance is smaller than the vectors'
# (a squared cosine difference), so its weights are larger.
for _w in (10, 30, 100, 300):
    ARMS[f"sim-{_w}-refit"] = [f"training.anchor_weight={_w}", "training.anchor_target=similarities",
                               "training.weighting=equal", "training.refit_heads=true"]
# Heads fit first on the starting encoder (training.init_heads: fit; linear probing, then
# fine-tuning): alone, and with the default anchor and refit stage.
ARMS["fit-none"] = ["training.init_heads=fit", *ARMS["none"]]
ARMS["fit-anchor-1-refit"] = ["training.init_heads=fit", *ARMS["anchor-1-refit"]]
# The kinds set only: the multi-label task on CoNLL's own sentences at a quarter of the others'
# loss weight (static weighting reads each task's `weight`: TASK_WEIGHTS), the defaults otherwise.
ARMS["types-0.25-refit"] = ["training.anchor_weight=1.0", "training.weighting=static", "training.refit_heads=true"]
TASK_WEIGHTS: dict[str, dict[str, float]] = {"types-0.25-refit": {"conll2003_types": 0.25}}
# anchor-1-refit holds a text that several sources share once per source (per_source, as every
# committed kinds-set run did); once-1-refit holds it once in all (the default). Where no text is
# shared (the example and benchmark sets) the two train exactly alike.
ARMS["once-1-refit"] = ["training.anchor_weight=1.0", "training.weighting=equal", "training.refit_heads=true",
                        "training.anchor_shared_texts=once"]
# The benchmark set: the three per-text tasks (no similarity task, which would train the embedding
# directly), on a seeded subset so that three seeds of every arm fit in a CPU session.
BENCHMARK_SUBSET = dict(train_fraction=0.15, dev_cap=500, test_cap=1000, epochs=2)
# The kinds set: the benchmark set's tasks and these, one of each newer kind (`polyhead datasets fetch
# sentiment_score conll2003_types stsb_equivalence`).
BENCHMARK_TASKS = ["trec", "sentiment", "conll2003"]
# The kinds set's tasks derived from another's annotation, and that task: with --same-texts they
# label the same sampled sentences as it does (as a user deriving them from their own data would
# have), not an independent sample of the same file.
DERIVED = {"conll2003_types": "conll2003", "sentiment_score": "sentiment"}
NEW_KINDS = [
    {"name": "sentiment_score", "kind": "regression", "label_column": "score"},
    {"name": "conll2003_types", "kind": "multilabel", "label_column": "labels"},
    {"name": "stsb_equivalence", "kind": "pair_classification", "label_column": "label"},
]


def stsb_test() -> tuple[list[str], list[str], list[float]]:
    """STS-B test pairs from the polyhead cache (`polyhead datasets fetch stsb`)."""
    from polyhead.io import default_cache_dir

    path = default_cache_dir() / "datasets" / "stsb" / "test.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: run `polyhead datasets fetch stsb` first")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["sentence1"] for r in rows], [r["sentence2"] for r in rows], [float(r["score"]) for r in rows]


def stsb_spearman(encoder: Any) -> float:
    """The embedding's STS-B test Spearman: cosine of each pair's normalised vectors vs gold."""
    import numpy as np
    from scipy.stats import spearmanr

    a, b, gold = stsb_test()
    va = encoder.encode(a, batch_size=64, normalize=True)
    vb = encoder.encode(b, batch_size=64, normalize=True)
    return float(spearmanr(np.sum(va * vb, axis=1), gold).statistic)


def run_config(task_set: str, arm: str, seed: int, work: Path, without: tuple[str, ...] = (),
               eval_test: bool = False, same_texts: bool = False) -> Any:
    """The run's config: the task set's, the arm's overrides, the seed; the kinds set without the
    tasks named in `without`; `eval_test` also scores the test split at every evaluation (it never
    selects: see evals); `same_texts`: the derived tasks on their source task's sampled sentences."""
    from polyhead.bench.harness import load_run_config
    from polyhead.bench.subset import Subset

    overrides = [*ARMS[arm], f"training.seed={seed}"] + (["training.eval_test=true"] if eval_test else [])
    if task_set == "example":
        return load_run_config(ROOT / "configs" / "example.yaml", overrides, None, work)
    overrides += ["training.distill_teachers={}", "training.distill_other_texts=0"]
    path = ROOT / "configs" / "benchmark.yaml"
    if task_set == "kinds":
        import yaml

        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["tasks"] += [{**t, **{s: f"{{cache}}/datasets/{t['name']}/{s}.jsonl" for s in ("train", "dev", "test")}}
                         for t in NEW_KINDS]
        unknown = sorted(set(without) - {t["name"] for t in doc["tasks"]})
        if unknown:
            raise SystemExit(f"--without: no task {unknown} in the kinds set")
        doc["tasks"] = [t for t in doc["tasks"] if t["name"] not in without]
        for t in doc["tasks"]:
            t["weight"] = TASK_WEIGHTS.get(arm, {}).get(t["name"], t.get("weight", 1.0))
        work.mkdir(parents=True, exist_ok=True)
        path = work / "kinds.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    cfg = load_run_config(path, overrides, Subset(**BENCHMARK_SUBSET), work)
    cfg.tasks = [t for t in cfg.tasks if t.kind != "similarity"]
    if same_texts:
        align_derived(cfg, work)
    return cfg


def subset_texts(path: Path) -> Counter[str]:
    """The texts of a subset file, counted: JSON lines' "text", or a CoNLL sentence's words joined by spaces."""
    from polyhead.training.data import detect_format, read_records

    records = (rec for _, rec in read_records(path, detect_format(path, None)))
    return Counter(" ".join(rec["tokens"]) if "tokens" in rec else rec["text"] for rec in records)


def align_derived(cfg: Any, work: Path) -> None:
    """Point each derived task (DERIVED) present beside its source task at rows of its full files
    with the texts the source task's subset sampled (as often as it has each), split by split."""
    from polyhead.io import default_cache_dir

    tasks = {t.name: t for t in cfg.tasks}
    for child, parent in DERIVED.items():
        if child not in tasks or parent not in tasks:
            continue
        for split in ("train", "dev", "test"):
            keep = subset_texts(Path(getattr(tasks[parent], split)))
            full = default_cache_dir() / "datasets" / child / f"{split}.jsonl"
            rows = []
            for line in filter(str.strip, full.read_text(encoding="utf-8").splitlines()):
                text = json.loads(line)["text"]
                if keep[text] > 0:
                    keep[text] -= 1
                    rows.append(line)
            dst = work / "same-texts" / child / f"{split}.jsonl"
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text("\n".join(rows) + "\n", encoding="utf-8")
            setattr(tasks[child], split, str(dst))


def evals(curves: Path, headline: dict[str, str]) -> list[dict[str, Any]]:
    """Every evaluation of a run, from its training/curves.csv: the step, and each task's headline
    dev score (and test score, where the run had training.eval_test)."""
    import csv

    out: dict[int, dict[str, Any]] = {}
    with curves.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            split = {"eval": "dev", "eval-test": "test"}.get(r["type"])
            if split is None or r["task"] not in headline:
                continue
            step = int(r["step"])
            e = out.setdefault(step, {"step": step, "epoch": int(r["epoch"]), "dev": {}, "test": {}})
            e[split][r["task"]] = round(float(r[headline[r["task"]]]), 6)
    return [out[k] for k in sorted(out)]


def reselect(row: dict[str, Any], tasks: list[str]) -> dict[str, Any] | None:
    """The evaluation that the mean dev score of `tasks` alone would have kept, from a row's evals:
    its step and test scores (the trained heads', before any refit stage)."""
    scored = [e for e in row.get("evals", []) if all(t in e["dev"] for t in tasks)]
    if not scored:
        return None
    best = max(scored, key=lambda e: statistics.fmean(e["dev"][t] for t in tasks))  # first of equals, as training keeps
    return {"step": best["step"], "test": best["test"]}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per arm: mean and sd over seeds of every number in the rows."""
    out: dict[str, Any] = {}
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm]
        keys = ["stsb_test", "seconds"] + [f"retention.{k}" for k in ("cosine", "rank_agreement", "neighbours")]
        keys += sorted({f"{split}.{t}" for r in mine for split in ("dev", "test") for t in r.get(split, {})})
        stats: dict[str, Any] = {"seeds": [r["seed"] for r in mine]}
        for key in keys:
            vals = [_get(r, key) for r in mine]
            vals = [v for v in vals if v is not None]
            if vals:
                stats[key] = {"mean": round(statistics.fmean(vals), 4), "sd": round(statistics.stdev(vals), 4) if len(vals) > 1 else 0.0}
        out[arm] = stats
    return out


def versus(rows: list[dict[str, Any]], base_rows: list[dict[str, Any]], base_arm: str | None = None) -> dict[str, Any]:
    """Per arm and baseline task: this set's mean beside the baseline's (same arm, or `base_arm` for
    every arm; same seeds), the difference, the per-seed differences, and whether the difference is
    within the seed-to-seed noise (|difference| <= 2 standard errors of a difference of two means,
    from both sets' seed sds)."""
    out: dict[str, Any] = {}
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = {r["seed"]: r for r in rows if r["arm"] == arm}
        base = {r["seed"]: r for r in base_rows if r["arm"] == (base_arm or arm)}
        seeds = [s for s in mine if s in base]
        if not seeds:
            continue
        arm_out: dict[str, Any] = {"seeds": seeds}
        for split in ("test", "dev"):
            for task in sorted(set.intersection(*(set(base[s].get(split, {})) for s in seeds))):
                a = [float(mine[s][split][task]) for s in seeds if task in mine[s].get(split, {})]
                b = [float(base[s][split][task]) for s in seeds]
                if len(a) != len(b):
                    continue
                diff = statistics.fmean(a) - statistics.fmean(b)
                entry: dict[str, Any] = {"mean": round(statistics.fmean(a), 4), "baseline_mean": round(statistics.fmean(b), 4),
                                         "difference": round(diff, 4), "per_seed": [round(x - y, 4) for x, y in zip(a, b)]}
                if len(seeds) > 1:
                    sa, sb = statistics.stdev(a), statistics.stdev(b)
                    se = (sa * sa / len(a) + sb * sb / len(b)) ** 0.5
                    entry.update(sd=round(sa, 4), baseline_sd=round(sb, 4), within_noise=abs(diff) <= 2 * se)
                arm_out[f"{split}.{task}"] = entry
        out[arm] = arm_out
    return out


def _get(row: dict[str, Any], key: str) -> float | None:
    head, _, rest = key.partition(".")
    value: Any = row.get(head)
    if rest:
        value = (value or {}).get(rest)
    return None if value is None else float(value)


def markdown(doc: dict[str, Any]) -> str:
    summary = doc["summary"]
    tasks = sorted({k.split(".", 1)[1] for s in summary.values() for k in s if k.startswith("dev.")})
    head = ["arm", "STS-B test (embedding)", "rank agreement", "cosine", "10-NN overlap"] + [f"{t} dev" for t in tasks] + ["s/run"]
    lines = [f"# Embedding retention: {doc['task_set']} task set", "",
             f"`{doc['command']}`", "", f"Machine: {doc['machine']}. Starting encoder's STS-B test Spearman: "
             f"{doc['untrained_stsb']:.4f}. Mean ± sd over seeds {', '.join(map(str, dict.fromkeys(r['seed'] for r in doc['rows'])))}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def cell(s: dict[str, Any], key: str) -> str:
        v = s.get(key)
        return "—" if v is None else f"{v['mean']:.4f} ± {v['sd']:.4f}"

    for arm, s in summary.items():
        row = [arm, cell(s, "stsb_test"), cell(s, "retention.rank_agreement"), cell(s, "retention.cosine"),
               cell(s, "retention.neighbours")] + [cell(s, f"dev.{t}") for t in tasks] + [f"{s['seconds']['mean']:.0f}"]
        lines.append("| " + " | ".join(row) + " |")
    for arm, cmp in doc.get("versus_baseline", {}).items():
        base_arm = doc["baseline"].get("arm")
        lines += ["", f"## {arm}: the benchmark tasks beside the baseline ({doc['baseline']['file']}, "
                      f"{f'arm {base_arm}' if base_arm else 'same arm'} and seeds {', '.join(map(str, cmp['seeds']))})", "",
                  "| task | here | baseline | difference | per seed | within noise (2 SE) |", "|---|---|---|---|---|---|"]
        def sd(v: float | None) -> str:
            return f" ± {v:.4f}" if v is not None else ""

        for key, e in cmp.items():
            if key == "seeds":
                continue
            lines.append(f"| {key} | {e['mean']:.4f}{sd(e.get('sd'))} | {e['baseline_mean']:.4f}{sd(e.get('baseline_sd'))} | "
                         f"{e['difference']:+.4f} | {', '.join(f'{x:+.4f}' for x in e['per_seed'])} | "
                         f"{'yes' if e.get('within_noise') else 'no' if 'within_noise' in e else '—'} |")
    lines += selection_markdown(doc["rows"])
    return "\n".join(lines) + "\n"


def selection_markdown(rows: list[dict[str, Any]]) -> list[str]:
    """Per row with evals: the test scores of the benchmark tasks at the kept evaluation, and at
    the one that their dev mean alone would have kept (both before any refit stage)."""
    rows = [r for r in rows if any(e["test"] for e in r.get("evals", []))]
    if not rows:
        return []
    tasks = [t for t in BENCHMARK_TASKS if any(t in e["test"] for r in rows for e in r["evals"])]
    lines = ["", "## Checkpoint selection: the kept evaluation vs the benchmark tasks' dev mean", "",
             "Test scores of the trained heads at each evaluation (training.eval_test), before the refit stage.", "",
             "| arm | seed | evaluations (step) | kept (all tasks' dev mean) | " + " | ".join(f"{t} test, kept" for t in tasks)
             + " | kept by the benchmark tasks' dev mean | " + " | ".join(f"{t} test, then" for t in tasks) + " |",
             "|" + "---|" * (5 + 2 * len(tasks))]
    def scores(e: dict[str, Any] | None) -> list[str]:
        return [f"{e['test'][t]:.4f}" if e and t in e["test"] else "—" for t in tasks]

    for r in rows:
        kept = next((e for e in r["evals"] if e["step"] == r.get("best_step")), None)
        alt = reselect(r, tasks)
        lines.append(f"| {r['arm']} | {r['seed']} | {', '.join(str(e['step']) for e in r['evals'])} | "
                     f"{r.get('best_step', '—')} | " + " | ".join(scores(kept)) + f" | {alt['step'] if alt else '—'} | "
                     + " | ".join(scores(alt)) + " |")
    return lines


def write_results(doc: dict[str, Any], results: Path, args: argparse.Namespace) -> None:
    """Recompute the per-arm summary (and, for the kinds set, the comparison with --baseline: see
    versus) from the rows, and write the results JSON and its .md."""
    doc["summary"] = summarise(doc["rows"])
    if args.task_set == "kinds" and Path(args.baseline).is_file():
        base = json.loads(Path(args.baseline).read_text())
        doc["baseline"] = {"file": os.path.relpath(Path(args.baseline).resolve(), ROOT), "command": base.get("command")}
        if args.baseline_arm:
            doc["baseline"]["arm"] = args.baseline_arm
        doc["versus_baseline"] = versus(doc["rows"], base["rows"], args.baseline_arm)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(doc, indent=1) + "\n")
    results.with_suffix(".md").write_text(markdown(doc))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("task_set", choices=["example", "benchmark", "kinds"])
    parser.add_argument("--seeds", default="42,1,2")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--output", default=None, help="run folders (default runs/retention/<set>)")
    parser.add_argument("--results", default=None, help="results JSON (default runs/results/retention-<set>.json)")
    parser.add_argument("--baseline", default=str(ROOT / "benchmarks" / "results" / "retention-benchmark.json"),
                        help="kinds set: the results file its benchmark tasks are compared with (same arm and seeds)")
    parser.add_argument("--without", default="", metavar="TASKS",
                        help="kinds set: leave out these tasks (comma-separated), e.g. conll2003_types")
    parser.add_argument("--baseline-arm", default=None, metavar="ARM",
                        help="kinds set: compare every arm with this arm of --baseline (e.g. once-1-refit with "
                             "anchor-1-refit, which trains the same where no text is shared)")
    parser.add_argument("--same-texts", action="store_true",
                        help="kinds set: the derived tasks (conll2003_types, sentiment_score) label the sentences their "
                             "source task's subset sampled, not an independent sample")
    parser.add_argument("--eval-test", action="store_true",
                        help="also score the test split at every evaluation (rows' evals; never selects)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--merge", nargs="+", default=None, metavar="JSON",
                        help="no training: add these results files' rows (e.g. seeds run in another process) to --results")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from polyhead import Encoder
    from polyhead.bench.harness import machine_description
    from polyhead.modeling.model import load
    from polyhead.training.data import build_sources
    from polyhead.training.evaluation import evaluate
    from polyhead.training.loop import train

    seeds = [int(s) for s in args.seeds.split(",")]
    without = tuple(t for t in args.without.split(",") if t)
    if without and args.task_set != "kinds":
        raise SystemExit("--without applies to the kinds set")
    arms = [a for a in args.arms.split(",") if a]
    unknown = [a for a in arms if a not in ARMS]
    if unknown:
        raise SystemExit(f"unknown arm(s) {unknown}; choose from {', '.join(ARMS)}")
    out = Path(args.output or f"runs/retention/{args.task_set}")
    results = Path(args.results or ROOT / "runs" / "results" / f"retention-{args.task_set}.json")
    doc: dict[str, Any] = json.loads(results.read_text()) if results.is_file() else {"rows": []}
    command = "python " + shlex.join([os.path.relpath(sys.argv[0], ROOT), *(argv if argv is not None else sys.argv[1:])])
    doc.update(task_set=args.task_set, seeds=seeds, machine=machine_description(), command=command,
               threads=torch.get_num_threads(), arms={**doc.get("arms", {}), **{a: ARMS[a] for a in arms}})
    if command not in doc.setdefault("commands", []):  # every invocation that added rows, in order
        doc["commands"].append(command)
    if args.task_set in ("benchmark", "kinds"):
        doc["subset"] = BENCHMARK_SUBSET
    if without:
        doc["without"] = list(without)
    if args.same_texts:
        if args.task_set != "kinds":
            raise SystemExit("--same-texts applies to the kinds set")
        doc["same_texts"] = DERIVED
    if "untrained_stsb" not in doc:
        doc["untrained_stsb"] = round(stsb_spearman(Encoder()), 6)
    if args.merge:
        for path in args.merge:
            other = json.loads(Path(path).read_text())
            have = {(r["arm"], r["seed"]) for r in doc["rows"]}
            doc["rows"] += [r for r in other["rows"] if (r["arm"], r["seed"]) not in have]
            doc.setdefault("merged", []).append({"file": os.path.relpath(path, ROOT), "command": other.get("command")})
        doc["rows"].sort(key=lambda r: (list(ARMS).index(r["arm"]), doc["seeds"].index(r["seed"]) if r["seed"] in doc["seeds"] else 99))
        write_results(doc, results, args)
        return 0
    done = {(r["arm"], r["seed"]) for r in doc["rows"]}
    for seed in seeds:
        for arm in arms:
            if (arm, seed) in done:
                continue
            folder = out / f"{arm}-s{seed}"
            shutil.rmtree(folder, ignore_errors=True)
            cfg = run_config(args.task_set, arm, seed, out / "work", without, args.eval_test, args.same_texts)
            t0 = time.time()
            result = train(cfg, folder, progress=False, log=lambda m: None)
            seconds = time.time() - t0
            metrics = json.loads((folder / "training" / "metrics.json").read_text())
            model = load(folder)
            # The saved model's own dev scores (after refit_heads' second stage, where an arm has it).
            sources, _ = build_sources(cfg)  # label sets come from the train split
            dev = evaluate(model, sources, "dev", cfg.training.eval_batch_size)
            row = {
                "arm": arm, "seed": seed, "seconds": round(seconds, 1),
                "dev": {t: round(float(m[metrics["headline_metrics"][t]]), 6) for t, m in dev.items()},
                "test": {t: round(float(m[metrics["headline_metrics"][t]]), 6) for t, m in (result.test or {}).items()},
                "retention": metrics.get("retention"),
                "stsb_test": round(stsb_spearman(model.encoder), 6),
                "best_step": metrics["best_step"],
                "evals": evals(folder / "training" / "curves.csv", metrics["headline_metrics"]),
            }
            doc["rows"].append(row)
            write_results(doc, results, args)
            print(f"{arm} seed {seed}: STS-B {row['stsb_test']:.4f}, dev {row['dev']}, retention {row['retention']}, {seconds:.0f}s", flush=True)
            shutil.rmtree(folder, ignore_errors=True)  # the numbers are in the results file
    return 0


if __name__ == "__main__":
    sys.exit(main())
