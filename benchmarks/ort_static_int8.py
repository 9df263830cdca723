"""ONNX Runtime static (QDQ, calibrated) int8 and ORT's attention fusion against polyhead's dynamic int8.

    flock /tmp/cpu-timing.lock env HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 taskset -c 0 \\
        .venv/bin/python benchmarks/ort_static_int8.py [--short 256] [--mixed 128] [--calib 64] [--rounds 3]

A probe (issue: "keep ONNX Runtime too; investigate static (QDQ, calibrated) int8 and attention
fusions for it as well"). docs/speed.md measured dynamic int8 variants and ORT's offline fusion;
on mixed-length texts int8 gains less because attention (scores and weighted sum), softmax and
the rest stay fp32. Static quantisation with calibrated activation scales can run the attention
products in int8 too (both MatMul inputs get fixed scales) and skips the per-batch min/max of
dynamic quantisation; this script measures whether that, or the fused Attention op, pays off.

What it does, on the bundled all-MiniLM-L6-v2 (offline):
  1. exports it with polyhead (`export_onnx(Encoder(device="cpu"), dir, quantize="int8")`):
     model.onnx (fp32) and model_int8.onnx (dynamic int8, per-channel QInt8 weights) in a temp folder;
  2. builds the variants below; one that fails is kept in the results with its reason;
  3. times every variant with ORT intra_op_num_threads=1 (ORT_ENABLE_ALL at load, as polyhead
     loads its exports) through OnnxModel.encode (tokenise, length-sorted batches padded per
     batch, one ORT call each, L2-normalise) at batch 32 on two workloads:
       short: STS-B test sentences of 16-24 tokens;
       mixed: texts of 10-256 tokens (uniform, seeded), STS-B dev/test sentences concatenated;
     rounds interleave the variants in an order rotated every round; reported: texts/s (median
     over rounds) and the median of the per-round ratios to dyn-int8 (this machine is shared);
  4. accuracy: min and mean cosine of each variant's normalised pooled embedding to fp32's on the
     mixed (and short) workload; STS-B test Spearman (cosine of the `sentence_embedding` output
     of sentence1 and sentence2, batch 32, against the gold score, 1,379 pairs);
  5. writes runs/results/ort-static-int8.json (or --json; benchmarks/results/ort-static-int8.json is the
     committed one) and prints a Markdown table.

Variants (all from the same fp32 export):
  fp32               the plain export (ORT fuses at load: FusedMatMul, SkipLayerNorm, BiasGelu)
  dyn-int8           polyhead's model_int8.onnx: quantize_dynamic, per-channel QInt8 weights,
                     uint8 activations scaled per batch at run time (the baseline of the ratios)
  static-minmax      quant_pre_process, then quantize_static: QDQ, MatMul + Gather, per-channel
                     QInt8 weights, QUInt8 activations, MinMax calibration; MatMul outputs left
                     fp32 (so ORT runs DQ->MatMul as MatMulIntegerToFloat, like dynamic int8,
                     without a re-quantisation of every output); attention MatMuls included
  static-percentile  the same with Percentile calibration (99.999th percentile of |x|)
  static-entropy     the same with Entropy (KL) calibration
  static-minmax-wonly  static-minmax with only the weight MatMuls quantised: the attention
                     products stay fp32 (separates "static scales" from "int8 attention"; done with
                     nodes_to_exclude, as MatMulConstBOnly only applies to the QOperator format)
  static-minmax-dedicated  static-minmax with DedicatedQDQPair: the residual Add and other float
                     consumers read the float tensor instead of its Q->DQ round trip
  static-minmax-nopre  static-minmax without quant_pre_process (does pre-processing help?)
  static-minmax-wonly-nopre  static-minmax-wonly without quant_pre_process
  fused-fp32         ORT's offline transformer fusion (optimize_model bert, 12 heads, 384 wide,
                     opt_level=0): one Attention op per layer, EmbedLayerNorm, SkipLayerNorm, BiasGelu
  fused-static-minmax  the fused graph, quant_pre_process, quantize_static as static-minmax
  fused-dyn-int8     the fused graph with polyhead's dynamic int8 settings (Attention -> QAttention)

Calibration: --calib texts (default 64) of 10-256 tokens (uniform, another seed) built from STS-B
*train* sentences, tokenised and padded per length-sorted batch of --calib-batch (8) exactly as
OnnxModel.batches feeds the session (input_ids, attention_mask, token_type_ids: the names are read
from each graph's inputs). The histogram calibrators (Percentile, Entropy) stack every batch's
outputs of a tensor into one array, which fails when batches have different widths; the reader is
therefore fed one batch per collect step (quantize_static's CalibStridedMinMax=1 with a reader
that has __len__ and set_range), and the histograms are merged across batches.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_JSON = ROOT / "runs" / "results" / "ort-static-int8.json"
COMMAND = (
    "flock /tmp/cpu-timing.lock env HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 taskset -c 0 "
    ".venv/bin/python benchmarks/ort_static_int8.py"
)
BASELINE = "dyn-int8"
VARIANTS = [
    "fp32",
    "dyn-int8",
    "static-minmax",
    "static-percentile",
    "static-entropy",
    "static-minmax-wonly",
    "static-minmax-dedicated",
    "static-minmax-nopre",
    "static-minmax-wonly-nopre",
    "fused-fp32",
    "fused-static-minmax",
    "fused-dyn-int8",
]
# Ops worth counting in the graph ORT actually runs (after its load-time optimisations).
COUNTED_OPS = (
    "MatMul", "FusedMatMul", "MatMulIntegerToFloat", "DynamicQuantizeMatMul", "QLinearMatMul", "MatMulInteger",
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "Attention", "QAttention",
    "EmbedLayerNormalization", "QEmbedLayerNormalization", "SkipLayerNormalization", "LayerNormalization",
    "BiasGelu", "Gelu", "Softmax", "Transpose",
)


# -- machine and texts --------------------------------------------------------------------
def machine() -> dict:
    import onnx
    import onnxruntime
    import torch

    cpu, flags = "unknown CPU", []
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        cpu = info.get("Model name", cpu).strip()
        flags = info.get("Flags", "").split()
    except OSError:
        pass
    feats = [f for f in ("avx512_vnni", "avx512_bf16", "amx_int8") if f in flags]
    return {
        "line": f"{cpu}, {os.cpu_count()} CPUs, flags: {' '.join(feats) or 'no avx512_vnni/avx512_bf16'}",
        "cpu": cpu,
        "flags": {f: f in flags for f in ("avx512_vnni", "avx512_bf16")},
        "cpus": os.cpu_count(),
        "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "versions": {
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "onnx": onnx.__version__,
            "torch": torch.__version__,
        },
    }


def stsb_rows(split: str) -> list[dict]:
    from polyhead.bench.datasets import fetch

    folder = fetch(["stsb"], progress=False)["stsb"]
    with open(folder / f"{split}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def sentences(splits: list[str]) -> list[str]:
    pool: list[str] = []
    for split in splits:
        for row in stsb_rows(split):
            pool += [row["sentence1"], row["sentence2"]]
    return list(dict.fromkeys(pool))  # unique, in a fixed order


def concatenated(tokenizer, pool: list[str], n: int, seed: int, lo: int = 10, hi: int = 256) -> list[str]:
    """n texts of lo..hi tokens (uniform, [CLS] and [SEP] included) made of concatenated sentences."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        target = rng.randint(lo, hi)
        text = ""
        while len(text) < target * 8:  # ~4-5 characters per token: comfortably long enough
            text += rng.choice(pool) + " "
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
        out.append(text[: enc["offset_mapping"][target - 3][1]])
    return out


def short_texts(tokenizer, n: int, seed: int) -> list[str]:
    pool = sentences(["test"])
    lengths = [len(ids) for ids in tokenizer(pool, truncation=True, max_length=512)["input_ids"]]
    short = [s for s, k in zip(pool, lengths) if 16 <= k <= 24]
    random.Random(seed).shuffle(short)
    return short[:n]


def token_stats(tokenizer, texts: list[str]) -> dict:
    n = [len(x) for x in tokenizer(texts, truncation=True, max_length=256)["input_ids"]]
    return {"texts": len(texts), "tokens_min": min(n), "tokens_mean": round(sum(n) / len(n), 1), "tokens_max": max(n)}


# -- building the variants ----------------------------------------------------------------
class FeedReader:
    """CalibrationDataReader over prepared numpy feeds; __len__/set_range let quantize_static
    collect one batch at a time (CalibStridedMinMax), which the histogram calibrators need."""

    def __init__(self, feeds: list[dict]) -> None:
        self.feeds = feeds
        self.set_range(0, len(feeds))

    def __len__(self) -> int:
        return len(self.feeds)

    def set_range(self, start_index: int, end_index: int) -> None:
        self._it = iter(self.feeds[start_index:end_index])

    def get_next(self) -> dict | None:
        return next(self._it, None)

    def rewind(self) -> None:
        self.set_range(0, len(self.feeds))


def graph_inputs(path: Path) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    return [i.name for i in graph.input if i.name not in inits]


def preprocess(src: Path, dst: Path) -> tuple[Path, str]:
    """quant_pre_process (symbolic shape inference + ORT basic optimisation); falls back to auto_merge, then to none."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    errors = []
    for kwargs in ({}, {"auto_merge": True}):
        try:
            # A failed symbolic shape inference saves sym_shape_infer_temp.onnx (+ 90 MB of external
            # data) into the current folder: keep that in the work folder, not the repository.
            with contextlib.chdir(dst.parent):
                quant_pre_process(str(src.resolve()), str(dst.resolve()), **kwargs)
            return dst, f"quant_pre_process({', '.join(f'{k}={v}' for k, v in kwargs.items()) or 'defaults'})"
        except Exception as exc:  # noqa: BLE001 - try the next setting, record why
            errors.append(f"{kwargs or 'defaults'}: {type(exc).__name__}: {str(exc)[:120]}")
    return src, "quant_pre_process failed (" + "; ".join(errors) + "); quantised without it"


def activation_matmuls(path: Path) -> list[str]:
    """Names of the MatMuls whose two inputs are activations (attention scores and weighted sum)."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "MatMul" and not any(i in inits for i in n.input)]


def static_int8(src: Path, dst: Path, feeds: list[dict], method: str, weights_only: bool = False, dedicated: bool = False) -> dict:
    import onnx
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    names = graph_inputs(src)
    reader = FeedReader([{k: v for k, v in f.items() if k in names} for f in feeds])
    extra = {
        # A MatMul's output feeds a float Add (bias) or Softmax: re-quantising it would add a
        # Q/DQ pair and rounding for nothing; left fp32, ORT runs DQ->MatMul as MatMulIntegerToFloat.
        "OpTypesToExcludeOutputQuantization": ["MatMul"],
        # One calibration batch per collect step (batches have different widths).
        "CalibStridedMinMax": 1,
        # Contrib ops of the fused graph have no ONNX shape inference: their outputs are float.
        "DefaultTensorType": onnx.TensorProto.FLOAT,
    }
    if dedicated:
        # Each quantised consumer gets its own Q/DQ pair; the others (the residual Add into
        # SkipLayerNorm, Shape) keep reading the float tensor instead of its int8 round trip.
        extra["DedicatedQDQPair"] = True
    # MatMulConstBOnly only applies to the QOperator format; in QDQ the attention MatMuls are
    # left out by name.
    exclude = activation_matmuls(src) if weights_only else []
    quantize_static(
        str(src),
        str(dst),
        reader,
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul", "Gather"],
        per_channel=True,
        reduce_range=False,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=getattr(CalibrationMethod, method),
        nodes_to_exclude=exclude,
        extra_options=extra,
    )
    return {
        "method": "quantize_static",
        "format": "QDQ",
        "op_types": ["MatMul", "Gather"],
        "weights": "QInt8 per-channel",
        "activations": "QUInt8, calibrated (fixed scales)",
        "calibration": method,
        "matmul_outputs": "fp32 (OpTypesToExcludeOutputQuantization=MatMul)",
        "attention_matmuls": f"fp32 ({len(exclude)} activation x activation MatMuls excluded)" if weights_only
        else "int8 (both inputs calibrated)",
        "qdq_pairs": "dedicated per consumer (DedicatedQDQPair)" if dedicated else "shared (ORT default: every consumer reads DQ(Q(x)))",
    }


def dynamic_int8(src: Path, dst: Path) -> dict:
    """polyhead's export settings (src/polyhead/onnx/export.py::_quantize_int8), no heads to exclude."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True, reduce_range=False,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    return {"method": "quantize_dynamic", "weights": "QInt8 per-channel", "activations": "QUInt8, per batch at run time"}


def fuse(src: Path, dst: Path) -> dict:
    from onnxruntime.transformers.optimizer import optimize_model

    fused = optimize_model(str(src), model_type="bert", num_heads=12, hidden_size=384, opt_level=0)
    stats = {k: v for k, v in fused.get_fused_operator_statistics().items() if v}
    fused.save_model_to_file(str(dst))
    if not stats.get("Attention"):
        raise RuntimeError(f"ORT fusion found no attention to fuse: {stats}")
    return {"fusion": "onnxruntime.transformers.optimizer.optimize_model(bert, 12 heads, 384, opt_level=0)", "fused_ops": stats}


def ort_ops(path: Path, work: Path) -> dict:
    """Op counts of the graph ORT runs: the file after ORT_ENABLE_ALL, written by the session."""
    import onnx
    import onnxruntime as ort

    out = work / f"{path.stem}.ort-optimised.onnx"
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    opts.optimized_model_filepath = str(out)
    ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    counts = collections.Counter(n.op_type for n in onnx.load(str(out), load_external_data=False).graph.node)
    out.unlink(missing_ok=True)
    return {k: counts[k] for k in COUNTED_OPS if counts.get(k)}


def build(names: list[str], export_dir: Path, work: Path, calib_feeds: list[dict]) -> dict[str, dict]:
    """{variant: {"path", "build": {...}} or {"skipped": reason}}; a failing variant is skipped, not fatal."""
    fp32 = export_dir / "model.onnx"
    built: dict[str, dict] = {"fp32": {"path": fp32, "build": {"method": "polyhead export_onnx, plain graph"}},
                              "dyn-int8": {"path": export_dir / "model_int8.onnx",
                                           "build": {"method": "polyhead export_onnx(quantize='int8'): quantize_dynamic, "
                                                     "QInt8 per-channel weights, uint8 activations per batch"}}}
    cache: dict[str, tuple[Path, dict] | Exception] = {}

    def need(key: str, fn):
        if key not in cache:
            t0 = time.perf_counter()
            try:
                cache[key] = fn()
                cache[key][1][f"seconds_{key}"] = round(time.perf_counter() - t0, 1)
            except Exception as exc:  # noqa: BLE001 - recorded, the variants that need it are skipped
                cache[key] = exc
                print(f"  {key} failed: {type(exc).__name__}: {exc}", flush=True)
                traceback.print_exc(limit=3)
        found = cache[key]
        if isinstance(found, Exception):
            raise RuntimeError(f"{key} failed: {type(found).__name__}: {str(found)[:300]}")  # noqa: TRY004
        return found

    def pre_plain():
        path, note = preprocess(fp32, work / "plain.pre.onnx")
        return path, {"pre_process": note}

    def plain():
        return fp32, {"pre_process": "none (the plain export as it is)"}

    def fused():
        info = fuse(fp32, work / "fused.onnx")
        return work / "fused.onnx", info

    def pre_fused():
        path, _ = need("fused", fused)
        p, note = preprocess(path, work / "fused.pre.onnx")
        return p, {"pre_process": note}

    recipes = {
        "static-minmax": ("pre_plain", pre_plain, lambda src, dst: static_int8(src, dst, calib_feeds, "MinMax")),
        "static-percentile": ("pre_plain", pre_plain, lambda src, dst: static_int8(src, dst, calib_feeds, "Percentile")),
        "static-entropy": ("pre_plain", pre_plain, lambda src, dst: static_int8(src, dst, calib_feeds, "Entropy")),
        "static-minmax-wonly": ("pre_plain", pre_plain, lambda src, dst: static_int8(src, dst, calib_feeds, "MinMax", True)),
        "static-minmax-nopre": ("plain", plain, lambda src, dst: static_int8(src, dst, calib_feeds, "MinMax")),
        "static-minmax-wonly-nopre": ("plain", plain, lambda src, dst: static_int8(src, dst, calib_feeds, "MinMax", True)),
        "static-minmax-dedicated": ("pre_plain", pre_plain, lambda src, dst: static_int8(src, dst, calib_feeds, "MinMax", dedicated=True)),
        "fused-fp32": ("fused", fused, None),
        "fused-static-minmax": ("pre_fused", pre_fused, lambda src, dst: static_int8(src, dst, calib_feeds, "MinMax")),
        "fused-dyn-int8": ("fused", fused, dynamic_int8),
    }
    for name in names:
        if name in built:
            continue
        print(f"building {name} ...", flush=True)
        key, fn, quant = recipes[name]
        t0 = time.perf_counter()
        try:
            src, info = need(key, fn)
            info = {**info}
            if quant is None:
                built[name] = {"path": src, "build": info}
                continue
            dst = work / f"{name}.onnx"
            info.update(quant(src, dst))
            info["seconds_quantise"] = round(time.perf_counter() - t0, 1)
            if key.endswith("fused"):
                info.setdefault("fused_ops", (cache.get("fused") or (None, {}))[1].get("fused_ops"))
            built[name] = {"path": dst, "build": info}
        except Exception as exc:  # noqa: BLE001 - skip the variant with its reason
            built[name] = {"skipped": f"{type(exc).__name__}: {str(exc)[:400]}"}
            print(f"  skipped {name}: {built[name]['skipped']}", flush=True)
    return built


# -- measuring ----------------------------------------------------------------------------
def sentence_embeddings(om, texts: list[str], bs: int) -> np.ndarray:
    out = np.empty((len(texts), om.dim), dtype=np.float32)
    for idx, feed, _ in om.batches(texts, bs):
        out[idx] = om.session.run(["sentence_embedding"], feed)[0]
    return out


def stsb_spearman(om, rows: list[dict], bs: int) -> float:
    from scipy.stats import spearmanr

    a = sentence_embeddings(om, [r["sentence1"] for r in rows], bs)
    b = sentence_embeddings(om, [r["sentence2"] for r in rows], bs)
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return float(spearmanr(cos, [r["score"] for r in rows]).statistic)


def cosines(out: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return (out * ref).sum(1) / np.maximum(np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1), 1e-12)


def profile(path: Path, om, texts: list[str], bs: int, threads: int, work: Path) -> dict:
    """Share of ORT kernel time per op type (ORT profiler, one pass over texts, untimed)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.enable_profiling = True
    opts.profile_file_prefix = str(work / f"profile-{path.stem}")
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    for _, feed, _ in om.batches(texts, bs):
        session.run(["pooled"], {k: v for k, v in feed.items() if k in {i.name for i in session.get_inputs()}})
    trace = Path(session.end_profiling())
    per_op: collections.Counter = collections.Counter()
    for ev in json.loads(trace.read_text()):
        if ev.get("cat") == "Node" and ev.get("name", "").endswith("_kernel_time"):
            per_op[ev.get("args", {}).get("op_name", "?")] += ev.get("dur", 0)
    trace.unlink(missing_ok=True)
    total = sum(per_op.values()) or 1
    return {"kernel_ms": round(total / 1000, 1),
            "share": {k: round(v / total, 3) for k, v in per_op.most_common() if v / total >= 0.005},
            "ms": {k: round(v / 1000, 1) for k, v in per_op.most_common()}}


def markdown(rows: list[dict]) -> str:
    head = ("| variant | short texts/s | × dyn-int8 | mixed texts/s | × dyn-int8 | min cos mixed | mean cos mixed "
            "| STS-B Spearman | size MB |\n|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        if "skipped" in r:
            lines.append(f"| {r['variant']} | skipped: {r['skipped'][:150]} | | | | | | | |")
            continue
        s, m = r["short"], r["mixed"]
        lines.append(
            f"| {r['variant']} | {s['texts_per_s']:.0f} | {s['x_dyn_int8']:.2f}× | {m['texts_per_s']:.1f} | {m['x_dyn_int8']:.2f}× "
            f"| {r['cos_vs_fp32']['mixed']['min']:.4f} | {r['cos_vs_fp32']['mixed']['mean']:.5f} "
            f"| {r['stsb_spearman']:.4f} | {r['size_mb']:.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="ORT intra_op_num_threads of the timed sessions (default 1)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--short", type=int, default=256, help="texts in the short workload (STS-B test, 16-24 tokens)")
    ap.add_argument("--mixed", type=int, default=128, help="texts in the mixed workload (10-256 tokens)")
    ap.add_argument("--calib", type=int, default=64, help="calibration texts (STS-B train, 10-256 tokens)")
    ap.add_argument("--calib-batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset (fp32 and dyn-int8 are always run)")
    ap.add_argument("--no-stsb", action="store_true")
    ap.add_argument("--work", default=None, help="working folder (default: a temp folder, removed at the end)")
    ap.add_argument("--json", default=str(DEFAULT_JSON))
    args = ap.parse_args()
    names = ["fp32", BASELINE] + [v for v in args.variants.split(",") if v and v not in ("fp32", BASELINE)]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        ap.error(f"unknown variants {unknown}; known: {', '.join(VARIANTS)}")

    # The quantiser's advice to pre-process is followed; its per-tensor chatter is not needed.
    logging.getLogger().setLevel(logging.ERROR)
    t_start = time.perf_counter()
    mach = machine()
    print(f"machine : {mach['line']}; {json.dumps(mach['versions'])}")
    print(f"affinity: {mach['affinity']}, OMP_NUM_THREADS={mach['OMP_NUM_THREADS']}, ORT intra_op_num_threads={args.threads}")
    load_start = os.getloadavg()
    print(f"load avg: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} at start", flush=True)

    from polyhead.modeling.encoder import Encoder
    from polyhead.onnx import OnnxModel, export_onnx
    from polyhead.onnx.runtime import make_session

    work_ctx = contextlib.nullcontext(args.work) if args.work else tempfile.TemporaryDirectory(prefix="ort-static-int8-")
    with work_ctx as work:
        work = Path(work)
        work.mkdir(parents=True, exist_ok=True)
        export_dir = work / "export"
        t0 = time.perf_counter()
        export_onnx(Encoder(device="cpu"), export_dir, quantize="int8", force=True)
        print(f"export  : fp32 + dynamic int8 in {time.perf_counter() - t0:.0f}s", flush=True)
        ref = OnnxModel.load(export_dir, variant="fp32", threads=args.threads)
        tok = ref.tokenizer

        workloads = {
            "short": short_texts(tok, args.short, args.seed),
            "mixed": concatenated(tok, sentences(["dev", "test"]), args.mixed, args.seed),
        }
        calib_texts = concatenated(tok, sentences(["train"]), args.calib, args.seed + 1)
        calib_feeds = [feed for _, feed, _ in ref.batches(calib_texts, args.calib_batch)]
        stats = {k: token_stats(tok, v) for k, v in workloads.items()}
        calib_stats = {**token_stats(tok, calib_texts), "batch_size": args.calib_batch, "batches": len(calib_feeds),
                       "widths": [int(f["input_ids"].shape[1]) for f in calib_feeds], "feed": sorted(calib_feeds[0])}
        for k, v in stats.items():
            print(f"workload: {k}: {v}")
        print(f"calib   : {calib_stats}", flush=True)

        t0 = time.perf_counter()
        built = build(names, export_dir, work, calib_feeds)
        print(f"build   : {time.perf_counter() - t0:.0f}s", flush=True)

        models: dict[str, OnnxModel] = {}
        for n in names:
            b = built[n]
            if "skipped" in b:
                continue
            try:
                session = make_session(b["path"], args.threads, ["CPUExecutionProvider"])
                models[n] = OnnxModel(export_dir, ref.manifest, session, tok, n)
                b["size_mb"] = b["path"].stat().st_size / 2**20
                b["ort_ops"] = ort_ops(b["path"], work)
            except Exception as exc:  # noqa: BLE001
                b["skipped"] = f"session failed: {type(exc).__name__}: {str(exc)[:300]}"
                print(f"  skipped {n}: {b['skipped']}", flush=True)
        timed = [n for n in names if n in models]
        if BASELINE not in models:
            print("dyn-int8 did not load; nothing to compare against", file=sys.stderr)
            return 1

        bs = args.batch_size
        outputs: dict[str, dict[str, np.ndarray]] = {w: {} for w in workloads}
        times: dict[str, dict[str, list[float]]] = {w: {n: [] for n in timed} for w in workloads}
        for wname, texts in workloads.items():
            for n in timed:  # warm-up on the whole workload: ORT's per-shape allocations; keeps the outputs
                outputs[wname][n] = models[n].encode(texts, batch_size=bs)
            for r in range(args.rounds):
                order = timed[r % len(timed):] + timed[: r % len(timed)]
                for n in order:
                    t0 = time.perf_counter()
                    models[n].encode(texts, batch_size=bs)
                    times[wname][n].append(time.perf_counter() - t0)
                print(f"timed   : {wname} round {r + 1}/{args.rounds}: "
                      + ", ".join(f"{n} {len(texts) / times[wname][n][-1]:.0f}/s" for n in timed), flush=True)

        profiles = {}
        for n in timed:
            try:
                profiles[n] = profile(built[n]["path"], models[n], workloads["mixed"], bs, args.threads, work)
                print(f"profile : {n} mixed: {profiles[n]['kernel_ms']} ms, {profiles[n]['share']}", flush=True)
            except Exception as exc:  # noqa: BLE001 - a diagnostic only
                profiles[n] = {"failed": f"{type(exc).__name__}: {exc}"}

        rows_stsb = stsb_rows("test") if not args.no_stsb else []
        rows = []
        for n in names:
            b = built[n]
            row: dict = {"variant": n, "build": b.get("build"), "file": b["path"].name if "path" in b else None}
            if "skipped" in b:
                rows.append({**row, "skipped": b["skipped"]})
                continue
            row.update(size_mb=round(b["size_mb"], 2), ort_ops=b["ort_ops"])
            for wname, texts in workloads.items():
                t, base = times[wname][n], times[wname][BASELINE]
                row[wname] = {
                    "texts_per_s": len(texts) / statistics.median(t),
                    "x_dyn_int8": statistics.median(tb / tv for tb, tv in zip(base, t)),
                    "x_fp32": statistics.median(tf / tv for tf, tv in zip(times[wname]["fp32"], t)),
                    "seconds": [round(x, 4) for x in t],
                }
            row["cos_vs_fp32"] = {}
            for wname in workloads:
                c = cosines(outputs[wname][n], outputs[wname]["fp32"])
                row["cos_vs_fp32"][wname] = {"min": float(c.min()), "mean": float(c.mean())}
            if rows_stsb:
                t0 = time.perf_counter()
                row["stsb_spearman"] = stsb_spearman(models[n], rows_stsb, bs)
                print(f"stsb    : {n} {row['stsb_spearman']:.4f} ({time.perf_counter() - t0:.0f}s)", flush=True)
            else:
                row["stsb_spearman"] = float("nan")
            rows.append(row)

        load_end = os.getloadavg()
        result = {
            "what": "ONNX Runtime static (QDQ, calibrated) int8 and ORT attention fusion vs polyhead's dynamic int8, "
                    "all-MiniLM-L6-v2 (bundled), CPU",
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "command": COMMAND + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""),
            "argv": sys.argv,
            "machine": mach,
            "load_avg": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in load_end]},
            "settings": {
                "ort_intra_op_num_threads": args.threads,
                "ort_inter_op_num_threads": 1,
                "graph_optimization_level": "ORT_ENABLE_ALL (as polyhead's make_session)",
                "batch_size": bs,
                "rounds": args.rounds,
                "timed_call": "OnnxModel.encode (tokenise, length-sorted batches padded per batch, ORT run of 'pooled', L2-normalise)",
                "ratios": "median over rounds of (dyn-int8 seconds / variant seconds) within the same round; rounds rotate the order",
                "cosine": "normalised pooled embedding vs fp32's, same texts, same batching",
                "stsb": f"STS-B test, {len(rows_stsb)} pairs, cosine of 'sentence_embedding' (batch {bs}) vs gold score, Spearman",
                "seed": args.seed,
            },
            "text_counts_note": (
                "default counts (short 256, mixed 128, calibration 64)"
                if (args.short, args.mixed, args.calib) == (256, 128, 64)
                else f"counts changed from the defaults (256/128/64): short {args.short}, mixed {args.mixed}, calibration {args.calib}"
            ),
            "workloads": stats,
            "calibration": {**calib_stats, "texts_from": "STS-B train sentences, concatenated to 10-256 tokens (seed + 1)",
                            "reader": "one batch per collect step (CalibStridedMinMax=1): histogram calibrators cannot "
                                      "stack batches of different widths"},
            "baseline": BASELINE,
            "variants": rows,
            "profile_mixed": {"what": "ORT profiler, one untimed pass over the mixed workload at the same batch size: "
                                      "share of summed kernel time per op type (>= 0.5%) and milliseconds per op type", **profiles},
            "api_notes": [
                ("quantize_static's MatMulConstBOnly is read only by the QOperator quantiser (onnx_quantizer.py); in QDQ "
                 "format the activation x activation MatMuls are excluded by name (static-minmax-wonly)."),
                ("Percentile and Entropy calibration np.asarray() every batch of a tensor together and fail on batches of "
                 "different widths (dynamic sequence axis); feeding one batch per collect step (CalibStridedMinMax=1) "
                 "merges the histograms instead."),
                ("QDQ has no quantiser for ORT's fused Attention op (QDQRegistry has no Attention entry; the QOperator "
                 "registry neither): in fused-static-minmax the Attention op and its Q/K/V weights stay fp32 and only "
                 "the other MatMuls are int8. Only quantize_dynamic turns Attention into QAttention (fused-dyn-int8)."),
                ("With shared QDQ pairs (the default) every consumer of a quantised tensor, the residual Add into "
                 "SkipLayerNormalization included, reads its DQ(Q(x)) round trip; DedicatedQDQPair keeps the float tensor "
                 "for them (static-minmax-dedicated)."),
            ],
            "total_seconds": round(time.perf_counter() - t_start),
        }
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")

    print()
    print(f"{mach['line']}; onnxruntime {mach['versions']['onnxruntime']}, torch {mach['versions']['torch']}; "
          f"ORT {args.threads} thread, batch {bs}, {args.rounds} rounds; short {stats['short']['texts']} texts "
          f"(mean {stats['short']['tokens_mean']} tokens), mixed {stats['mixed']['texts']} texts (mean {stats['mixed']['tokens_mean']} tokens)")
    print()
    print(markdown(rows))
    print()
    print(f"load avg {load_start[0]:.2f} at start, {load_end[0]:.2f} at end; total {result['total_seconds']}s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
