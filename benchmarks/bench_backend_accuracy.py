"""Test-set accuracy of one trained polyhead model on every backend: does exporting, quantising or
running in bf16 cost any of the headline metrics?

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_backend_accuracy.py [MODEL_DIR] [--threads 1]
        [--backends torch-fp32,onnx-fp32,onnx-int8,ov-fp32,ov-bf16,ov-int8] [--calibration FILE]
        [--json benchmarks/results/backend-accuracy.json] [--work DIR] [--limit N]

MODEL_DIR (default runs/benchmark/full-joint-evaltest/joint) is a joint model with heads trec,
sentiment (classification), conll2003 (token) and stsb (similarity), trained on polyhead's
benchmark datasets; its test splits come from `polyhead.bench.datasets.fetch`.

Backends (each scored from its own predict() / similarity() outputs, the same code for all):
  torch-fp32   the saved PyTorch model, precision fp32
  onnx-fp32    ONNX export, ONNX Runtime, fp32
  onnx-int8    ONNX export, ONNX Runtime, dynamic int8 (weights per channel, activations per batch)
  ov-fp32      OpenVINO export (fp32 IR), precision fp32: every op in fp32
  ov-bf16      the same fp32 IR, precision bf16 (what precision=auto picks on a bf16 CPU)
  ov-int8      OpenVINO NNCF static int8 IR, calibrated on the shipped sample (or --calibration
               FILE), precision auto (non-int8 ops in bf16 on a bf16 CPU)

The exports go to a temporary folder (or --work), never into MODEL_DIR.

Metrics (polyhead.training.metrics, as `polyhead evaluate` computes them): accuracy and macro F1
(trec, sentiment: predict()'s "label"); seqeval entity F1 (conll2003: one tag per CoNLL word,
read at the word's first sub-token: predict() tags the words of its own word splitter, and each
CoNLL word takes the tag of the first of those words that starts inside it, which is the tag of
the CoNLL word's first sub-token; words cut off by max_length are "O", as in evaluation);
Spearman (stsb: similarity(), the cosine of the two normalised embeddings, vs gold).

As a check that these predict()-based numbers are polyhead's own, torch fp32 is also scored by
the evaluation path (`polyhead evaluate`: training.evaluation.evaluate on the same test examples)
and compared with the published numbers in MODEL_DIR/training/metrics.json. Differences to
torch-fp32 are in points (x 100). Per backend the JSON also holds agreement with torch-fp32's
predictions (labels, word tags) and the largest STS-B cosine difference.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import shlex
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_encode import machine

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = ROOT / "runs" / "benchmark" / "full-joint-evaltest" / "joint"
# Outside the repository unless --json says otherwise (benchmarks/results/backend-accuracy.json: the committed one).
DEFAULT_JSON = ROOT / "runs" / "results" / "backend-accuracy.json"
BACKENDS = ("torch-fp32", "onnx-fp32", "onnx-int8", "ov-fp32", "ov-bf16", "ov-int8")
# (backend name, runtime, variant, precision)
SPECS = {
    "torch-fp32": ("torch", None, "fp32"),
    "onnx-fp32": ("onnx", "fp32", None),
    "onnx-int8": ("onnx", "int8", None),
    "ov-fp32": ("openvino", "fp32", "fp32"),
    "ov-bf16": ("openvino", "fp32", "bf16"),
    "ov-int8": ("openvino", "int8", "auto"),
}
DATASETS = {"trec": "jsonl", "sentiment": "jsonl", "conll2003": "conll", "stsb": "jsonl"}


# -- data ---------------------------------------------------------------------------------------
def test_sources(model: Any, tasks: list[str], limit: int | None) -> list[Any]:
    """The test split of each task as polyhead's training/evaluation code reads it (Source objects)."""
    from polyhead.bench.datasets import fetch
    from polyhead.training.config import config_from_dict
    from polyhead.training.data import build_sources

    folders = fetch(tasks, progress=False)
    entries = []
    for task in tasks:
        spec = model.tasks[task]
        ext = DATASETS[task]
        entries.append({
            "name": task,
            "kind": spec.kind,
            # evaluate against the model's own label sets (as `polyhead evaluate` does); train is
            # named only because a task's files make a dataset only with it: it is not read
            "labels": list(spec.labels) or None,
            "train": str(folders[task] / f"train.{ext}"),
            "test": str(folders[task] / f"test.{ext}"),
        })
    cfg = config_from_dict({"tasks": entries})
    sources, _ = build_sources(cfg, splits=("test",))
    if limit:
        for src in sources:
            src.splits["test"] = src.splits["test"][:limit]
    return sources


# -- scoring one backend -------------------------------------------------------------------------
def conll_word_tags(text: str, words: list[str], item: dict[str, Any]) -> list[str]:
    """One tag per CoNLL word from a token head's predict() item.

    predict() tags the words of polyhead's own splitter (split_words), which may split a CoNLL
    word further ("Mr." -> "Mr", "."), never join two: each CoNLL word takes the tag of the
    first splitter word that starts inside it. That splitter word begins at the CoNLL word's first
    character, so its first sub-token is the CoNLL word's first sub-token: the tag evaluation reads.
    """
    from polyhead.modeling.tagging import join_words, split_words

    joined, spans = join_words(words)
    assert joined == text, "the example text is not its words joined by spaces"
    pieces = split_words(text)
    tags = item["tags"]
    if len(tags) != len(pieces):
        raise RuntimeError(f"predict() gave {len(tags)} tags for {len(pieces)} words in {text[:80]!r}")
    out, j = [], 0
    for start, end in spans:
        while j < len(pieces) and pieces[j][0] < start:
            j += 1
        if j < len(pieces) and pieces[j][0] < end:
            out.append(tags[j])
        else:  # no splitter word inside this CoNLL word (cannot happen: every non-space character is one)
            out.append("O")
    return out


def score_backend(model: Any, sources: list[Any], batch_size: int) -> tuple[dict[str, dict[str, float]], dict[str, Any], dict[str, float]]:
    """(metrics per task, raw predictions per task, seconds per task) from predict()/similarity()."""
    from polyhead.training.metrics import task_metrics

    metrics: dict[str, dict[str, float]] = {}
    raw: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for src in sources:
        task = src.tasks[0]
        spec = model.tasks[task]
        examples = src.splits["test"]
        t0 = time.perf_counter()
        if spec.kind == "similarity":
            sims = np.asarray(model.similarity([e.pair[0] for e in examples], [e.pair[1] for e in examples], batch_size=batch_size))
            gold: list = [e.score for e in examples]
            pred: list = [float(x) for x in sims]
        else:
            items = model.predict([e.text for e in examples], tasks=[task], batch_size=batch_size, embeddings=False)
            gold = [e.labels[task] for e in examples]
            if spec.kind == "token":
                pred = [conll_word_tags(e.text, e.words, it["tasks"][task]) for e, it in zip(examples, items)]
            else:
                pred = [it["tasks"][task]["label"] for it in items]
        seconds[task] = time.perf_counter() - t0
        metrics[task] = task_metrics(spec.kind, gold, pred)
        raw[task] = pred
    return metrics, raw, seconds


def agreement(raw: dict[str, Any], ref: dict[str, Any]) -> dict[str, float]:
    """How far one backend's predictions are from torch-fp32's: label / word-tag agreement, STS-B cosine."""
    out: dict[str, float] = {}
    for task, pred in raw.items():
        base = ref.get(task)
        if base is None:
            continue
        if pred and isinstance(pred[0], float):
            out[f"{task}_max_abs_cosine_diff"] = float(np.abs(np.asarray(pred) - np.asarray(base)).max())
        elif pred and isinstance(pred[0], list):
            flat = [a == b for p, q in zip(pred, base) for a, b in zip(p, q)]
            out[f"{task}_tag_agreement"] = float(np.mean(flat))
            out[f"{task}_sentences_identical"] = float(np.mean([p == q for p, q in zip(pred, base)]))
        else:
            out[f"{task}_label_agreement"] = float(np.mean([a == b for a, b in zip(pred, base)]))
    return out


def eval_path(model_dir: Path, sources: list[Any], batch_size: int) -> dict[str, dict[str, float]]:
    """torch fp32 scored the way `polyhead evaluate MODEL --split test --precision fp32` scores it."""
    from polyhead.modeling.model import load
    from polyhead.training.evaluation import evaluate

    model = load(model_dir, device="cpu", precision="fp32")
    return evaluate(model, sources, "test", batch_size=batch_size)


# -- backends ------------------------------------------------------------------------------------
def export_all(model_dir: Path, work: Path, needed: set[str], calibration: str | None) -> dict[str, Any]:
    """ONNX and/or OpenVINO exports of MODEL_DIR into `work`; facts about them."""
    from polyhead.modeling.model import load

    facts: dict[str, Any] = {}
    model = load(model_dir, device="cpu", precision="fp32")
    if "onnx" in needed and not (work / "onnx" / "polyhead-onnx.json").is_file():
        from polyhead.onnx import export_onnx

        t0 = time.perf_counter()
        export_onnx(model, work / "onnx", quantize="int8")
        facts["onnx_export_seconds"] = round(time.perf_counter() - t0, 1)
    if "onnx" in needed:
        from polyhead.onnx.runtime import read_manifest

        m = read_manifest(work / "onnx")
        facts["onnx"] = {"exporter": m.get("exporter"), "quantization": m.get("quantization"), "ort_fusion": m.get("ort_fusion")}
    if "openvino" in needed and not (work / "openvino" / "polyhead-openvino.json").is_file():
        from polyhead.onnx.openvino import export_openvino

        t0 = time.perf_counter()
        export_openvino(model, work / "openvino", quantize="int8", calibration=calibration)
        facts["openvino_export_seconds"] = round(time.perf_counter() - t0, 1)
    if "openvino" in needed:
        from polyhead.onnx.openvino import read_manifest as read_ov_manifest

        m = read_ov_manifest(work / "openvino")
        facts["openvino"] = {"exporter": m.get("exporter"), "quantization": m.get("quantization")}
    return facts


def load_one(name: str, model_dir: Path, work: Path, threads: int) -> Any:
    from polyhead.onnx.backends import load_backend

    runtime, variant, precision = SPECS[name]
    if runtime == "torch":
        return load_backend(model_dir, "torch", device="cpu", precision="fp32", threads=threads)
    folder = work / runtime
    if runtime == "onnx":
        return load_backend(folder, "onnx", variant=variant, threads=threads)
    return load_backend(folder, "openvino", variant=variant, threads=threads, precision=precision)


# -- report --------------------------------------------------------------------------------------
def headline_names(model: Any, tasks: list[str]) -> dict[str, str]:
    from polyhead.training.metrics import METRIC_FOR_KIND

    return {t: METRIC_FOR_KIND[model.tasks[t].kind] for t in tasks}


def markdown(rows: list[tuple[str, dict[str, dict[str, float]]]], heads: dict[str, str], ref: dict[str, dict[str, float]]) -> str:
    cols = list(heads)
    lines = [
        "| backend | " + " | ".join(f"{t} {heads[t]}" for t in cols) + " |",
        "|---|" + "---|" * len(cols),
    ]
    for name, metrics in rows:
        cells = []
        for t in cols:
            v = metrics.get(t, {}).get(heads[t])
            if v is None:
                cells.append("—")
                continue
            r = ref.get(t, {}).get(heads[t])
            d = 0.0 if r is None else round((v - r) * 100, 2) + 0.0  # + 0.0: no "-0.00"
            delta = "" if r is None or name == "torch-fp32" else f" ({d:+.2f})"
            cells.append(f"{v:.4f}{delta}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir", nargs="?", default=str(DEFAULT_MODEL), help="a trained polyhead model folder")
    ap.add_argument("--backends", default=",".join(BACKENDS), help=f"comma-separated subset of {','.join(BACKENDS)}")
    ap.add_argument("--tasks", default=",".join(DATASETS), help="comma-separated subset of the model's benchmark tasks")
    ap.add_argument("--calibration", default=None, help="OpenVINO int8 calibration texts (.txt or .jsonl; default: the shipped sample)")
    ap.add_argument("--threads", type=int, default=1, help="torch, ORT and OpenVINO threads (default 1)")
    ap.add_argument("--batch-size", type=int, default=32, help="predict()/similarity() batch size (default 32, polyhead's)")
    ap.add_argument("--eval-batch-size", type=int, default=64, help="batch size of the evaluation path (default 64, polyhead evaluate's)")
    ap.add_argument("--no-eval-path", action="store_true", help="skip the check against polyhead's evaluation path")
    ap.add_argument("--limit", type=int, default=None, help="first N test examples per task (a smoke run)")
    ap.add_argument("--work", default=None, help="folder for the exports (default: a temp folder); never inside MODEL_DIR")
    ap.add_argument("--json", default=str(DEFAULT_JSON), help="results file ('-': none)")
    args = ap.parse_args()

    model_dir = Path(args.model_dir).resolve()
    names = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in names if b not in SPECS]
    if unknown:
        ap.error(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(BACKENDS)}")
    if "torch-fp32" not in names:
        names.insert(0, "torch-fp32")  # the reference every difference is taken against
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if args.work:
        work_path = Path(args.work).resolve()
        if work_path == model_dir or model_dir in work_path.parents:
            ap.error("--work must not be inside MODEL_DIR (exports never go into the model folder)")

    import torch

    torch.set_num_threads(args.threads)
    from polyhead.modeling.model import load

    # Said once below instead of once per backend: CoNLL sentences longer than max_length are cut,
    # in predict() as in evaluation (cut-off words count as "O" in both).
    warnings.filterwarnings("ignore", message="some texts are longer than max_length")

    started = time.time()
    mach = machine()
    print(f"machine : {mach}")
    print(f"date    : {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"model   : {model_dir}")
    print(f"threads : {args.threads}; predict batch size {args.batch_size}")
    ref_model = load(model_dir, device="cpu", precision="fp32")
    missing = [t for t in tasks if t not in ref_model.tasks or t not in DATASETS]
    if missing:
        ap.error(f"task(s) {', '.join(missing)}: the model has {', '.join(ref_model.tasks)}; this script knows {', '.join(DATASETS)}")
    heads = headline_names(ref_model, tasks)
    sources = test_sources(ref_model, tasks, args.limit)
    del ref_model
    sizes = {src.tasks[0]: len(src.splits["test"]) for src in sources}
    print("test    : " + ", ".join(f"{t} {n}" for t, n in sizes.items())
          + "; texts longer than max_length are truncated as in evaluation (cut-off words: O)")
    metrics_file = model_dir / "training" / "metrics.json"
    published = json.loads(metrics_file.read_text()).get("test") if metrics_file.is_file() else None

    results: dict[str, Any] = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": mach,
        "threads": args.threads,
        "model": str(model_dir),
        "tasks": {t: {"metric": heads[t], "test_examples": sizes[t]} for t in tasks},
        "batch_size": args.batch_size,
        "limit": args.limit,
        "calibration": args.calibration or "the shipped sample (polyhead/onnx/calibration.txt)",
        "method": (
            "Each backend's metrics come from its own predict() (classification: label; token: word tags mapped onto "
            "CoNLL words, the tag of each word's first sub-token) and similarity() (STS-B cosine), scored with "
            "polyhead.training.metrics. delta_points = (backend - torch-fp32) x 100. eval_path: torch fp32 scored "
            "by polyhead's evaluation code (`polyhead evaluate --split test --precision fp32`) on the same examples."
        ),
        "published_test_metrics": published,
        "backends": {},
    }

    work_ctx = contextlib.nullcontext(args.work) if args.work else tempfile.TemporaryDirectory(prefix="polyhead-backend-accuracy-")
    with work_ctx as work:
        work = Path(work)
        work.mkdir(parents=True, exist_ok=True)
        needed = {SPECS[n][0] for n in names} - {"torch"}
        if needed:
            t0 = time.perf_counter()
            results["exports"] = export_all(model_dir, work, needed, args.calibration)
            print(f"export  : {', '.join(sorted(needed))} in {time.perf_counter() - t0:.0f}s (into {work})")
            q = (results["exports"].get("openvino") or {}).get("quantization")
            if q:
                print(f"ov int8 : calibrated on {q['calibration']['texts']} texts from {q['calibration']['source']}; "
                      f"probe min cosine to fp32 {q['probe_min_cosine_vs_fp32']:.4f}")
        ref_raw: dict[str, Any] = {}
        ref_metrics: dict[str, dict[str, float]] = {}
        rows: list[tuple[str, dict[str, dict[str, float]]]] = []
        for name in names:
            t0 = time.perf_counter()
            model = load_one(name, model_dir, work, args.threads)
            precision = getattr(model, "inference_precision", None) or getattr(getattr(model, "encoder", None), "precision", None) or getattr(model, "precision", None)
            metrics, raw, seconds = score_backend(model, sources, args.batch_size)
            if name == "torch-fp32":
                ref_raw, ref_metrics = raw, metrics
            entry = {
                "runtime": SPECS[name][0], "variant": SPECS[name][1], "precision_requested": SPECS[name][2],
                "inference_precision": precision,
                "metrics": metrics,
                "headline": {t: metrics[t][heads[t]] for t in tasks},
                "delta_points": {t: (metrics[t][heads[t]] - ref_metrics[t][heads[t]]) * 100 for t in tasks},
                "agreement_with_torch_fp32": agreement(raw, ref_raw) if name != "torch-fp32" else None,
                "seconds": {t: round(s, 1) for t, s in seconds.items()},
            }
            results["backends"][name] = entry
            rows.append((name, metrics))
            print(f"{name:<11}: " + ", ".join(f"{t} {heads[t]} {entry['headline'][t]:.4f}" for t in tasks)
                  + f"  [{time.perf_counter() - t0:.0f}s, inference precision {precision}]", flush=True)
            del model
            gc.collect()

    if not args.no_eval_path:
        t0 = time.perf_counter()
        ev = eval_path(model_dir, sources, args.eval_batch_size)
        check = {}
        for t in tasks:
            a, b = ev[t][heads[t]], ref_metrics[t][heads[t]]
            check[t] = {"eval_path": a, "predict_path": b, "difference_points": (b - a) * 100,
                        "published": (published or {}).get(t, {}).get(heads[t])}
        results["eval_path"] = {"metrics": ev, "check": check, "batch_size": args.eval_batch_size}
        print(f"eval    : polyhead's evaluation path, torch fp32 [{time.perf_counter() - t0:.0f}s]: "
              + ", ".join(f"{t} {ev[t][heads[t]]:.4f}" for t in tasks))
        rows.insert(1, ("torch-fp32, `polyhead evaluate` path", ev))
    if published and not args.limit:
        rows.insert(1, ("torch-fp32, published (training/metrics.json)", {t: published[t] for t in tasks if t in published}))

    table = markdown(rows, heads, ref_metrics)
    results["markdown"] = table
    results["seconds_total"] = round(time.time() - started, 1)
    print(f"\nTest-set headline metrics per backend ({model_dir.name}; in brackets: points vs torch-fp32)\n")
    print(table)
    if "eval_path" in results:
        worst = max(abs(c["difference_points"]) for c in results["eval_path"]["check"].values())
        print(f"\npredict()-based torch-fp32 vs polyhead's evaluation path: largest difference {worst:.2f} points")
    print(f"total   : {results['seconds_total']:.0f}s")
    if args.json != "-":
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
