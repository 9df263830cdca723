"""The multi-label and regression task kinds on real data: frozen-encoder heads against scikit-learn
on the same features, and fine-tuning against the frozen figure.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/kinds_quality.py [--parts frozen,finetune]
        [--train-limit 3000] [--epochs 2] [--seed 42] [--out benchmarks/results/kinds-quality.json]

Data (`polyhead datasets fetch sentiment_score conll2003_types`):
  sentiment_score   regression: each movie-review snippet's mean human rating, -4 to 4
  conll2003_types   multi-label: the entity types (PER, ORG, LOC, MISC) each CoNLL-2003 sentence mentions
  stsb_equivalence  pair classification: STS-B pairs, equivalent (gold score >= 3) or not

Parts, all on the embedded all-MiniLM-L6-v2 and test scores:
  frozen    `polyhead train` with `freeze: {encoder: true}` (what a user runs: linear heads fit by
            L-BFGS on cached features, l2 picked on dev, multi-label thresholds tuned on dev), and
            scikit-learn on the same features (mean-pooled, un-normalised; for pairs (u, v, |u-v|,
            u*v) of the sentence embeddings): Ridge (alpha picked on dev by squared error), one-vs-rest
            LogisticRegression (C picked on dev by micro-F1; its thresholds at 0.5 and tuned on dev
            exactly as polyhead tunes them), LogisticRegression for pairs (C picked on dev accuracy). The difference is
            reported in points of the headline metric (Pearson; micro-F1).
  options   (multi-label only) class_weights: balanced and label_smoothing: 0.1 against neither, each a
            frozen-encoder head fit with fit_heads on the frozen run's cached features (seconds).
  finetune  `polyhead train` with the encoder training (the defaults: anchor, refit, head lr), on a
            seeded random sample of --train-limit training examples (0: all) for --epochs epochs;
            its test headline must be above the frozen one. With --set KEY=VALUE (training options)
            and --variant NAME the run is recorded as polyhead_finetuned_variants[NAME] instead, e.g.
            --set init_heads=fit --variant fit-first, or --set anchor_weight=0 --variant no-anchor, or
            --set task.label_smoothing=0.1 --variant label-smoothing-0.1.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
TASKS = {
    "sentiment_score": {"kind": "regression", "label_column": "score", "metric": "pearson"},
    "conll2003_types": {"kind": "multilabel", "label_column": "labels", "metric": "micro_f1"},
    "stsb_equivalence": {"kind": "pair_classification", "label_column": "label", "metric": "accuracy"},
}
ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0)
CS = (0.01, 0.1, 1.0, 10.0, 100.0)


def config(task: str, folder: Path, freeze: bool, train: Path | None = None, **training) -> dict:
    spec = TASKS[task]
    entry = {"name": task, "kind": spec["kind"], "label_column": spec["label_column"],
             **{s: str(folder / f"{s}.jsonl") for s in ("train", "dev", "test")}}
    entry.update({k.removeprefix("task."): training.pop(k) for k in [k for k in training if k.startswith("task.")]})
    if train is not None:
        entry["train"] = str(train)
    return {"encoder": {"max_length": 128}, "tasks": [entry], "training": training, "freeze": {"encoder": freeze}}


def sample_train(folder: Path, limit: int, seed: int, work: Path) -> Path:
    """A seeded random sample of `limit` training rows (the files are ordered: snippets by rating
    group, STS-B by source genre, CoNLL by document, so the first N would be a biased subset)."""
    lines = [ln for ln in (folder / "train.jsonl").read_text().splitlines() if ln.strip()]
    keep = sorted(np.random.default_rng(seed).permutation(len(lines))[:limit])
    path = work / f"{folder.name}-train-{limit}-seed{seed}.jsonl"
    work.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines[i] + "\n" for i in keep))
    return path


def run_train(cfg: dict, out: Path) -> tuple[dict, float]:
    """Train `cfg` into `out` (a finished run there, from an earlier invocation with --work, is reused)."""
    from polyhead.training import train
    from polyhead.training.config import load_config

    if (out / "training" / "metrics.json").is_file():
        metrics = json.loads((out / "training" / "metrics.json").read_text())
        return metrics, float(metrics.get("seconds") or 0.0)
    out.parent.mkdir(parents=True, exist_ok=True)
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    started = time.perf_counter()
    train(load_config(path), out, progress=False, log=lambda m: print(f"  [{out.name}] {m}", file=sys.stderr, flush=True))
    seconds = time.perf_counter() - started
    return json.loads((out / "training" / "metrics.json").read_text()), seconds


def rows(folder: Path, split: str) -> list[dict]:
    return [json.loads(line) for line in (folder / f"{split}.jsonl").read_text().splitlines() if line.strip()]


def cached_features(run: Path, counts: dict[str, int]) -> dict[str, np.ndarray] | None:
    """The pooled features polyhead's frozen run cached (OUTPUT/training/features, float16 on disk,
    exactly what its heads were fit on), by split (matched by example count); None if not all found."""
    found = {}
    for meta_path in (run / "training" / "features").glob("*.json"):
        inputs = json.loads(meta_path.read_text())["inputs"]
        for split, n in counts.items():
            if inputs.get("examples") == n and inputs.get("pooled"):
                found[split] = np.load(meta_path.with_suffix(".pooled.npy"), allow_pickle=False).astype(np.float32)
    return found if len(found) == len(counts) and len(set(counts.values())) == len(counts) else None


def sklearn_frozen(task: str, folder: Path, run: Path) -> dict:
    """scikit-learn on the features polyhead's heads read: the frozen run's cached pooled vectors
    (text tasks), or both texts' sentence embeddings encoded here (pairs, which are not cached)."""
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.multiclass import OneVsRestClassifier

    from polyhead import Encoder
    from polyhead.kinds import TaskSpec, kind_of
    from polyhead.kinds.metrics import multilabel_metrics, regression_metrics

    enc = Encoder(device="cpu", max_length=128)
    data = {s: rows(folder, s) for s in ("train", "dev", "test")}
    if TASKS[task]["kind"] == "pair_classification":
        from polyhead.kinds.metrics import classification_metrics
        from polyhead.kinds.pair_classification import pair_features

        started = time.perf_counter()
        x = {s: pair_features(enc.encode([r["sentence1"] for r in data[s]], batch_size=64),
                              enc.encode([r["sentence2"] for r in data[s]], batch_size=64)) for s in data}
        out = {"encode_seconds": round(time.perf_counter() - started, 1)}
        y = {s: [r["label"] for r in data[s]] for s in data}
        fits = {c: LogisticRegression(C=c, max_iter=3000).fit(x["train"], y["train"]) for c in CS}
        best = max(CS, key=lambda c: classification_metrics(y["dev"], list(fits[c].predict(x["dev"])))["accuracy"])
        out["logistic"] = {"C": best, **classification_metrics(y["test"], list(fits[best].predict(x["test"])))}
        return out
    started = time.perf_counter()
    x = cached_features(run, {s: len(data[s]) for s in data})
    out: dict = {"features": "the frozen run's feature cache (float16 on disk)"}
    if x is None:
        x = {s: enc.encode([r["text"] for r in data[s]], normalize=False, batch_size=64) for s in data}
        out = {"features": "encoded here", "encode_seconds": round(time.perf_counter() - started, 1)}
    if TASKS[task]["kind"] == "regression":
        y = {s: np.array([r["score"] for r in data[s]]) for s in data}
        best = min(ALPHAS, key=lambda a: float(((Ridge(alpha=a).fit(x["train"], y["train"]).predict(x["dev"]) - y["dev"]) ** 2).mean()))
        pred = Ridge(alpha=best).fit(x["train"], y["train"]).predict(x["test"])
        out["ridge"] = {"alpha": best, **regression_metrics(y["test"].tolist(), pred.tolist())}
        return out
    labels = sorted({lab for r in data["train"] for lab in r["labels"]})
    index = {lab: i for i, lab in enumerate(labels)}

    def hot(split: str) -> np.ndarray:
        m = np.zeros((len(data[split]), len(labels)), dtype=int)
        for i, r in enumerate(data[split]):
            m[i, [index[lab] for lab in r["labels"]]] = 1
        return m

    y = {s: hot(s) for s in data}
    gold = {s: [r["labels"] for r in data[s]] for s in data}

    def chosen(p: np.ndarray, thresholds: np.ndarray) -> list[list[str]]:
        return [[lab for lab, on in zip(labels, row) if on] for row in p >= thresholds]

    fits = {}
    for c in CS:
        model = OneVsRestClassifier(LogisticRegression(C=c, max_iter=2000)).fit(x["train"], y["train"])
        fits[c] = (model, multilabel_metrics(gold["dev"], chosen(model.predict_proba(x["dev"]), np.full(len(labels), 0.5)), labels)["micro_f1"])
    best = max(CS, key=lambda c: fits[c][1])
    model = fits[best][0]
    p_dev, p_test = model.predict_proba(x["dev"]), model.predict_proba(x["test"])
    half = multilabel_metrics(gold["test"], chosen(p_test, np.full(len(labels), 0.5)), labels)
    spec = TaskSpec(task, "multilabel", labels)
    logit = lambda p: np.log(np.clip(p, 1e-7, 1 - 1e-7) / np.clip(1 - p, 1e-7, 1))  # noqa: E731
    tuned = kind_of("multilabel").tune(spec, gold["dev"], list(logit(p_dev)))["thresholds"]
    out["logistic_ovr"] = {"C": best, "thresholds_0.5": half,
                           "thresholds_tuned": {"thresholds": tuned, **multilabel_metrics(gold["test"], chosen(p_test, np.array(tuned)), labels)}}
    return out


def options(task: str, folder: Path, run: Path, seed: int) -> dict:
    """Test scores of frozen-encoder heads with each class-weight / label-smoothing option, all fit
    on the frozen run's cached features (its feature folder as fit_heads' cache)."""
    from polyhead import Encoder, MultiTaskModel
    from polyhead.training.config import load_config
    from polyhead.training.frozen import fit_heads

    out = {}
    for name, extra in {"neither": {}, "class_weights_balanced": {"class_weights": "balanced"},
                        "label_smoothing_0.1": {"label_smoothing": 0.1}}.items():
        cfg = config(task, folder, True, seed=seed, precision="fp32")
        cfg["tasks"][0].update(extra)
        path = run.parent / f"{task}-options-{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        model = MultiTaskModel(Encoder(device="cpu", max_length=128), [])
        report = fit_heads(model, load_config(path), cache_dir=run / "training" / "features")
        out[name] = {"test": report.test[task], "dev": report.dev[task], "cache_hits": report.cache_hits}
    return out


def _option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--set {text!r}: expected KEY=VALUE")
    return key.strip(), yaml.safe_load(value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parts", default="frozen,options,finetune")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--train-limit", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="finetune only: a training option (e.g. init_heads=fit, anchor_weight=0) or, with "
                         "'task.', the task's (task.class_weights=balanced); recorded under --variant")
    ap.add_argument("--variant", default=None, help="finetune only: the name the run with --set is recorded under")
    ap.add_argument("--work", default=None, help="folder for the runs (default: a temporary one)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "results" / "kinds-quality.json"),
                    help="default runs/results/kinds-quality.json; benchmarks/results/kinds-quality.json is the committed one")
    args = ap.parse_args()
    from polyhead.bench.datasets import dataset_dir, fetch
    from polyhead.bench.harness import machine_description

    parts = args.parts.split(",")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="kinds-quality-"))
    out_path = Path(args.out)
    doc = json.loads(out_path.read_text()) if out_path.is_file() else {}
    commands = doc.pop("commands", []) + ([doc.pop("command")] if "command" in doc else [])
    commands.append("HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/kinds_quality.py " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    doc.update({  # each invocation adds its command; the parts it ran replace theirs
        "commands": list(dict.fromkeys(commands)),
        "date": _dt.date.today().isoformat(), "machine": machine_description(),
        "torch_threads": __import__("torch").get_num_threads(),
    })
    results = doc.setdefault("tasks", {})
    for task in args.tasks.split(","):
        fetch([task], progress=False)
        folder = dataset_dir(task)
        metric = TASKS[task]["metric"]
        entry = results.setdefault(task, {"kind": TASKS[task]["kind"], "metric": metric})
        if "frozen" in parts:
            # fp32 features, as scikit-learn gets them (the default precision may pick bf16 on this CPU)
            m, seconds = run_train(config(task, folder, True, seed=args.seed, precision="fp32"), work / f"{task}-frozen")
            entry["polyhead_frozen"] = {"test": m["test"][task], "dev": m["dev"][task], "seconds": round(seconds, 1),
                                       "config": "freeze.encoder=true, training.precision=fp32, defaults otherwise"}
            entry["sklearn_frozen"] = sklearn_frozen(task, folder, work / f"{task}-frozen")
            sk = entry["sklearn_frozen"]
            ref = (sk["ridge"] if "ridge" in sk else sk["logistic"] if "logistic" in sk else sk["logistic_ovr"]["thresholds_tuned"])[metric]
            entry["frozen_minus_sklearn_points"] = round(100 * (m["test"][task][metric] - ref), 2)
        if "options" in parts and TASKS[task]["kind"] == "multilabel":
            entry["options_frozen"] = options(task, folder, work / f"{task}-frozen", args.seed)
        if "finetune" in parts:
            sample = sample_train(folder, args.train_limit, args.seed, work) if args.train_limit else None
            extra = dict(_option(o) for o in args.overrides)
            suffix = f"-{args.variant}" if args.variant else ""
            m, seconds = run_train(config(task, folder, False, sample, seed=args.seed, epochs=args.epochs, **extra),
                                   work / f"{task}-finetune-{args.train_limit or 'all'}{suffix}")
            row = {"test": m["test"][task], "dev": m["dev"][task], "seconds": round(seconds, 1),
                   "train_examples": args.train_limit or "all", "sample_seed": args.seed, "epochs": args.epochs,
                   **({"training": extra, "retention": m.get("retention")} if extra else {})}
            if args.variant:
                entry.setdefault("polyhead_finetuned_variants", {})[args.variant] = row
            else:
                entry["polyhead_finetuned"] = row
        print(json.dumps({task: {k: v for k, v in entry.items()}}, indent=1)[:2000], flush=True)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(doc, indent=1) + "\n")  # after each task: an interrupted run keeps what it measured
    print(f"wrote {out_path.relative_to(ROOT) if out_path.is_relative_to(ROOT) else out_path}")


if __name__ == "__main__":
    main()
