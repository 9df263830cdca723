"""Encoding speed: polyhead vs sentence-transformers on all-MiniLM-L6-v2, CPU, same run, same inputs.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_encode.py [--threads N] [--rounds 3] [--quick]
        [--backends st-fp32,ph-onnx-int8,ph-ov-int8,...] [--json PATH]

Backends (all on the same bundled all-MiniLM-L6-v2 weights, mean pooling, L2-normalised):
  st-fp32        sentence-transformers encode, fp32                     (the reference: 1.00x)
  st-bf16        sentence-transformers encode under torch.autocast(cpu, bfloat16)
  st-onnx-int8   sentence-transformers backend="onnx" int8              (only if `optimum` is installed)
  ph-fp32        polyhead Encoder(precision="fp32")
  ph-bf16        polyhead Encoder(precision="bf16")                     (autocast, as `auto` picks here)
  ph-onnx-fp32   polyhead ONNX export, ORT fusions, fp32
  ph-onnx-int8   polyhead ONNX export, ORT fusions, dynamic int8 weights
  ph-ov-fp32     polyhead OpenVINO export (fp32 IR), precision="fp32": every op in fp32
  ph-ov-bf16     the same fp32 IR, precision="bf16": what precision="auto" picks on a CPU with
                 avx512_bf16/AMX (OpenVINO runs the non-int8 ops in bf16)
  ph-ov-int8     polyhead OpenVINO export, NNCF static int8 (calibrated on the shipped sample,
                 polyhead/onnx/calibration.txt), precision="auto"

Workloads: "short" = STS-B sentences of 16-24 tokens; "mixed" = texts of 10 to 256 tokens
(uniform), built from STS-B sentences. Every backend encodes the same texts; rounds interleave
the backends (in rotated order) and each ratio is the median of per-round ratios to st-fp32,
because this machine is shared and its speed drifts. Before each cell every backend encodes the
cell's texts once, untimed (--warmup full): OpenVINO prepares its kernels for each new input
shape on first sight, so a cold first pass measures that preparation, not steady throughput. torch.set_num_threads and ORT's
intra_op_num_threads and OpenVINO's INFERENCE_NUM_THREADS are set to the same --threads
(default: os.cpu_count()).

Results go to stdout and, as JSON, to --json (default
runs/results/encode-<cpu>-<threads>t.json; with --quick ...-<threads>t-quick.json): the
command, date, machine, and per workload x batch size x backend the texts/s of every round, their
median, the median of the per-round ratios to st-fp32 (and st-bf16), embedding parity against
st-fp32 (max |diff|, min cosine); STS-B test Spearman per backend.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402


def machine() -> str:
    """One line: CPU model, cores, bf16/AMX/VNNI flags, versions."""
    import onnxruntime
    import torch

    cpu = "unknown CPU"
    flags = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        info = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        cpu = info.get("Model name", cpu).strip()
        flags = info.get("Flags", "")
    except OSError:
        pass
    feats = [f for f in ("avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni", "avx512f") if f in flags.split()]
    return (
        f"{cpu}, {os.cpu_count()} CPUs, flags: {' '.join(feats) or 'none of avx512/amx'}; "
        f"python {platform.python_version()}, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, "
        f"{versions()}"
    )


def versions() -> str:
    """transformers, sentence-transformers, openvino and nncf versions ("missing" when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for dist in ("transformers", "sentence-transformers", "openvino", "nncf"):
        try:
            out.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            out.append(f"{dist} missing")
    return ", ".join(out)


def cpu_slug() -> str:
    """The CPU model as a file-name slug ("AMD EPYC" -> "amd-epyc")."""
    name = platform.processor() or platform.machine()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                name = line.split(":", 1)[1]
                break
    except OSError:
        pass
    name = re.sub(r"\((r|tm)\)|\bprocessor\b|\bcpu\b|@.*", "", name, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "cpu"


def build_workloads(tokenizer, n_short: int, n_mixed: int, seed: int = 0) -> dict[str, list[str]]:
    """Short (16-24 tokens) and mixed (10-256 tokens) texts made from STS-B sentences."""
    from polyhead.bench.datasets import fetch

    folder = fetch(["stsb"], progress=False)["stsb"]
    pool: list[str] = []
    for split in ("train", "dev", "test"):
        with open(folder / f"{split}.jsonl", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                pool += [row["sentence1"], row["sentence2"]]
    pool = list(dict.fromkeys(pool))  # unique, in a fixed order
    rng = random.Random(seed)
    lengths = [len(ids) for ids in tokenizer(pool, truncation=True, max_length=512)["input_ids"]]
    short = [s for s, n in zip(pool, lengths) if 16 <= n <= 24]
    rng.shuffle(short)
    mixed = []
    for _ in range(n_mixed):
        target = rng.randint(10, 256)
        text = ""
        while len(text) < target * 8:  # ~4-5 characters per token: comfortably long enough
            text += rng.choice(pool) + " "
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False)
        cut = enc["offset_mapping"][target - 3][1]  # target tokens including [CLS] and [SEP]
        mixed.append(text[:cut])
    return {"short": short[:n_short], "mixed": mixed}


def token_stats(tokenizer, texts: list[str]) -> str:
    n = [len(x) for x in tokenizer(texts, truncation=True, max_length=256)["input_ids"]]
    return f"{len(texts)} texts, tokens min {min(n)} / mean {sum(n) / len(n):.0f} / max {max(n)}"


ALL_BACKENDS = (
    "st-fp32", "st-bf16", "st-onnx-int8", "ph-fp32", "ph-bf16", "ph-onnx-fp32", "ph-onnx-int8",
    "ph-ov-fp32", "ph-ov-bf16", "ph-ov-int8",
)


class Backends:
    """Builds each wanted backend once; each is a function (texts, batch_size) -> (n, 384) float32."""

    def __init__(self, threads: int, work: Path, wanted: set[str] | None = None) -> None:
        wanted = set(ALL_BACKENDS) if wanted is None else wanted | {"st-fp32"}
        import torch

        from polyhead import Encoder
        from polyhead.modeling.encoder import embedded_default_path

        self.model_path = str(embedded_default_path())
        self.threads = threads
        self.fns: dict[str, object] = {}
        self.notes: dict[str, str] = {}
        self.ov_precision: dict[str, str] = {}  # the inference precision each OpenVINO model reports
        from sentence_transformers import SentenceTransformer

        from polyhead.modeling.encoder import quiet_transformers

        quiet_transformers()  # no weight-loading progress bars in the printed tables
        st = SentenceTransformer(self.model_path, device="cpu")
        st.max_seq_length = 256
        self.tokenizer = st.tokenizer

        def st_encode(texts, bs, st=st):
            return st.encode(texts, batch_size=bs, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)

        def st_bf16(texts, bs):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return st_encode(texts, bs)

        self.fns["st-fp32"] = st_encode
        if "st-bf16" in wanted:
            self.fns["st-bf16"] = st_bf16
        st_onnx = self._st_onnx_int8(work) if "st-onnx-int8" in wanted else None
        if st_onnx is not None:
            self.fns["st-onnx-int8"] = st_onnx
        for prec in ("fp32", "bf16"):
            if f"ph-{prec}" in wanted:
                enc = Encoder(device="cpu", precision=prec)
                self.fns[f"ph-{prec}"] = lambda texts, bs, enc=enc: enc.encode(texts, batch_size=bs)
        self.notes["fusion"] = "not used"
        if wanted & {"ph-onnx-fp32", "ph-onnx-int8"}:
            self._onnx(work, wanted, Encoder)
        if wanted & {"ph-ov-fp32", "ph-ov-bf16", "ph-ov-int8"}:
            self._openvino(work, wanted, Encoder)

    def _onnx(self, work: Path, wanted: set[str], Encoder) -> None:
        from polyhead.onnx import OnnxModel, export_onnx

        onnx_dir = work / "minilm-onnx"
        if not (onnx_dir / "polyhead-onnx.json").is_file():
            t0 = time.perf_counter()
            export_onnx(Encoder(device="cpu"), onnx_dir, quantize="int8")
            self.notes["export"] = f"ONNX export + int8 quantisation took {time.perf_counter() - t0:.0f}s"
        for variant in ("fp32", "int8"):
            if f"ph-onnx-{variant}" in wanted:
                om = OnnxModel.load(onnx_dir, variant=variant, threads=self.threads)
                self.fns[f"ph-onnx-{variant}"] = lambda texts, bs, om=om: om.encode(texts, batch_size=bs)
        manifest = json.loads((onnx_dir / "polyhead-onnx.json").read_text())
        fusion = manifest["ort_fusion"]
        self.notes["fusion"] = (
            "offline " + ", ".join(f"{k} x{v}" for k, v in fusion.get("ops", {}).items())
            if fusion["applied"]
            else "ORT_ENABLE_ALL at load (offline fusion off)"
        )

    def _openvino(self, work: Path, wanted: set[str], Encoder) -> None:
        """OpenVINO: the fp32 IR at precision fp32 and bf16, and the NNCF int8 IR at precision auto."""
        from polyhead.onnx.openvino import OpenVinoModel, export_openvino, read_manifest

        ov_dir = work / "minilm-openvino"
        try:
            if not (ov_dir / "polyhead-openvino.json").is_file():
                t0 = time.perf_counter()
                export_openvino(Encoder(device="cpu"), ov_dir, quantize="int8")
                self.notes["export-openvino"] = (
                    f"OpenVINO export + NNCF int8 (calibrated on the shipped sample) took {time.perf_counter() - t0:.0f}s"
                )
            quant = read_manifest(ov_dir)["quantization"] or {}
            self.notes["openvino-int8"] = (
                f"NNCF {quant.get('nncf_version')}, calibration {quant.get('calibration', {}).get('texts')} texts from "
                f"{quant.get('calibration', {}).get('source')}; probe min cosine to fp32 {quant.get('probe_min_cosine_vs_fp32', float('nan')):.4f}"
            )
            for name, variant, precision in (("ph-ov-fp32", "fp32", "fp32"), ("ph-ov-bf16", "fp32", "bf16"), ("ph-ov-int8", "int8", "auto")):
                if name not in wanted:
                    continue
                om = OpenVinoModel.load(ov_dir, variant=variant, threads=self.threads, precision=precision)
                self.fns[name] = lambda texts, bs, om=om: om.encode(texts, batch_size=bs)
                self.ov_precision[name] = om.inference_precision
        except Exception as exc:  # noqa: BLE001 - openvino/nncf missing or failing: the other backends still run
            self.notes["openvino"] = f"not run: {str(exc).splitlines()[0][:200]}"

    def _st_onnx_int8(self, work: Path):
        """sentence-transformers' own ONNX int8 backend needs `optimum`; report when it is missing."""
        try:
            from optimum.onnxruntime import ORTModelForFeatureExtraction  # noqa: F401
        except Exception as exc:  # noqa: BLE001 - ImportError, or optimum failing against this transformers
            self.notes["st-onnx-int8"] = (
                "not run: sentence-transformers' ONNX backend needs optimum-onnx, which is "
                f"{'not installed' if isinstance(exc, ModuleNotFoundError) else 'not importable here: ' + str(exc).splitlines()[0][:120]}"
            )
            return None
        from sentence_transformers import SentenceTransformer, export_dynamic_quantized_onnx_model

        folder = work / "st-onnx"
        if not (folder / "onnx" / "model_qint8_avx512_vnni.onnx").is_file():
            st = SentenceTransformer(self.model_path, device="cpu", backend="onnx")
            st.save(str(folder))
            export_dynamic_quantized_onnx_model(st, "avx512_vnni", str(folder))
        st = SentenceTransformer(
            str(folder), device="cpu", backend="onnx",
            model_kwargs={"file_name": "onnx/model_qint8_avx512_vnni.onnx", "provider": "CPUExecutionProvider"},
        )
        return lambda texts, bs: st.encode(texts, batch_size=bs, normalize_embeddings=True, show_progress_bar=False)


def timed(fn, texts, bs) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    out = fn(texts, bs)
    return time.perf_counter() - t0, np.asarray(out, dtype=np.float32)


def spearman_stsb(fn, bs: int = 64) -> float:
    from scipy.stats import spearmanr

    from polyhead.bench.datasets import fetch

    rows = [json.loads(x) for x in open(fetch(["stsb"], progress=False)["stsb"] / "test.jsonl", encoding="utf-8")]
    a = np.asarray(fn([r["sentence1"] for r in rows], bs), dtype=np.float32)
    b = np.asarray(fn([r["sentence2"] for r in rows], bs), dtype=np.float32)
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return float(spearmanr(cos, [r["score"] for r in rows]).statistic)


def default_json(threads: int, quick: bool) -> Path:
    """runs/results/encode-<cpu>-<threads>t.json (a --quick smoke run: ...-quick.json), outside the repository."""
    return Path(__file__).resolve().parents[1] / "runs" / "results" / f"encode-{cpu_slug()}-{threads}t{'-quick' if quick else ''}.json"


def parity(out: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Max |diff| and min cosine of one backend's embeddings against st-fp32's (rows L2-normalised)."""
    return {"max_abs_diff": float(np.abs(out - ref).max()), "min_cosine": float((out * ref).sum(1).min())}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch, ORT and OpenVINO threads (default: os.cpu_count())")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per cell; the median is reported")
    ap.add_argument("--short", type=int, default=512, help="texts in the short workload")
    ap.add_argument("--mixed", type=int, default=256, help="texts in the mixed workload")
    ap.add_argument("--bs1-texts", type=int, default=64, help="texts timed at batch size 1 (a prefix of the workload)")
    ap.add_argument("--batch-sizes", default="1,32,128")
    ap.add_argument("--backends", default=None,
                    help=f"comma-separated subset of {','.join(ALL_BACKENDS)} (default: all); st-fp32, the reference, always runs")
    ap.add_argument("--no-stsb", action="store_true", help="skip the STS-B Spearman check")
    ap.add_argument("--warmup", choices=("full", "light"), default="full",
                    help="untimed pass before each cell: full = every backend encodes the cell's texts once (default; "
                         "OpenVINO prepares kernels per input shape on first sight: its first pass over new lengths runs "
                         "up to 2x slower), light = a few texts (first-call allocations and lazy init only)")
    ap.add_argument("--quick", action="store_true", help="1 round, fewer texts (a smoke run)")
    ap.add_argument("--work", default=None, help="cache folder for the ONNX and OpenVINO exports (default: a temp folder)")
    ap.add_argument("--json", default=None,
                    help="write the results as JSON here (default: runs/results/encode-<cpu>-<threads>t.json, "
                         "with --quick ...-quick.json); '-' writes none")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.short, args.mixed, args.bs1_texts = 1, 128, 64, 16
    wanted = None
    if args.backends:
        wanted = {b.strip() for b in args.backends.split(",") if b.strip()}
        unknown = sorted(wanted - set(ALL_BACKENDS))
        if unknown:
            ap.error(f"unknown backend(s) {', '.join(unknown)}; choose from {', '.join(ALL_BACKENDS)}")
    json_path = None if args.json == "-" else Path(args.json) if args.json else default_json(args.threads, args.quick)

    import torch

    torch.set_num_threads(args.threads)
    started = time.time()
    mach = machine()
    print(f"machine : {mach}")
    print(f"date    : {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"threads : torch.set_num_threads({args.threads}), ORT intra_op_num_threads={args.threads}, "
          f"OpenVINO INFERENCE_NUM_THREADS={args.threads}")
    load_start = None
    try:
        load_start = os.getloadavg()
        print(f"load avg: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} at start (other work on the machine slows every backend alike)")
    except OSError:
        pass
    work_ctx = contextlib.nullcontext(args.work) if args.work else tempfile.TemporaryDirectory()
    with work_ctx as work:
        work = Path(work)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        be = Backends(args.threads, work, wanted)
        setup_s = time.perf_counter() - t0
        print(f"setup   : {setup_s:.0f}s; ORT graph: {be.notes['fusion']}")
        for k in ("export", "export-openvino", "openvino-int8", "openvino", "st-onnx-int8"):
            if k in be.notes:
                print(f"note    : {be.notes[k]}")
        if be.ov_precision:
            print("note    : OpenVINO inference precision reported: " + ", ".join(f"{k} {v}" for k, v in be.ov_precision.items()))
        names = [n for n in be.fns if wanted is None or n in wanted or n == "st-fp32"]
        workloads = build_workloads(be.tokenizer, args.short, args.mixed)
        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
        results: dict = {
            "command": shlex.join([sys.executable, *sys.argv]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": mach,
            "threads": args.threads,
            "load_avg_start": list(load_start) if load_start else None,
            "options": {"rounds": args.rounds, "short": args.short, "mixed": args.mixed, "bs1_texts": args.bs1_texts,
                        "batch_sizes": batch_sizes, "quick": args.quick, "warmup": args.warmup},
            "method": (
                "Every backend encodes the same texts; each round runs every backend once, in an order rotated every "
                "round. texts_per_s_rounds: texts / seconds of each round; texts_per_s: their median. x_st_fp32 and "
                "x_st_bf16 are MEDIANS OF PER-ROUND RATIOS (st time / backend time in the same round), not ratios of "
                "medians. parity: embeddings of the first round against st-fp32's in the same cell (rows L2-normalised). "
                "stsb_spearman: cosine of STS-B test pairs (1,379) vs gold, batch 64."
            ),
            "backends": names,
            "notes": dict(be.notes),
            "openvino_inference_precision": dict(be.ov_precision),
            "setup_seconds": setup_s,
            "workloads": {},
            "cells": [],
        }
        for wname, texts in workloads.items():
            stats_line = token_stats(be.tokenizer, texts)
            results["workloads"][wname] = stats_line
            print(f"\n== workload {wname}: {stats_line} ==")
            ref_out: dict[str, np.ndarray] = {}
            for bs in batch_sizes:
                sub = texts[: args.bs1_texts] if bs == 1 else texts
                for n in names:  # warm-up, untimed (--warmup)
                    be.fns[n](sub if args.warmup == "full" else sub[: max(2, min(bs, 8))], bs)
                times: dict[str, list[float]] = {n: [] for n in names}
                outs: dict[str, np.ndarray] = {}
                for r in range(args.rounds):
                    order = names[r % len(names):] + names[: r % len(names)]
                    for n in order:
                        dt, out = timed(be.fns[n], sub, bs)
                        times[n].append(dt)
                        if r == 0:
                            outs[n] = out
                if bs == batch_sizes[-1]:
                    ref_out = outs
                ref = times["st-fp32"]
                print(f"-- batch size {bs} ({len(sub)} texts, {args.rounds} round(s)) --")
                print(f"{'backend':<14} {'texts/s':>9} {'x st-fp32':>10} {'x st-bf16':>10}   per round")
                for n in names:
                    rate = len(sub) / statistics.median(times[n])
                    x_fp32 = statistics.median(r / t for r, t in zip(ref, times[n]))
                    x_bf16 = statistics.median(r / t for r, t in zip(times["st-bf16"], times[n])) if "st-bf16" in times else None
                    per_round = [len(sub) / t for t in times[n]]
                    print(f"{n:<14} {rate:>9.1f} {x_fp32:>9.2f}x {'-' if x_bf16 is None else f'{x_bf16:.2f}x':>10}   {' '.join(f'{v:.1f}' for v in per_round)}")
                    results["cells"].append({
                        "workload": wname, "batch_size": bs, "backend": n, "texts": len(sub),
                        "texts_per_s": rate, "texts_per_s_rounds": per_round,
                        "x_st_fp32": x_fp32, "x_st_fp32_rounds": [r / t for r, t in zip(ref, times[n])],
                        "x_st_bf16": x_bf16,
                        "seconds": times[n], "parity_vs_st_fp32": parity(outs[n], outs["st-fp32"]),
                    })
            if "st-fp32" in ref_out:
                print(f"-- outputs vs st-fp32 ({wname}, batch {batch_sizes[-1]}) --")
                for n, out in ref_out.items():
                    par = parity(out, ref_out["st-fp32"])
                    print(f"{n:<14} max |diff| {par['max_abs_diff']:.2e}   min cosine {par['min_cosine']:.5f}")
                    results.setdefault("parity", {}).setdefault(wname, {})[n] = par
        if not args.no_stsb:
            print("\n== STS-B test Spearman (cosine vs gold, 1,379 pairs) ==")
            base = None
            for n in names:
                rho = spearman_stsb(be.fns[n])
                base = rho if n == "st-fp32" else base
                rel = f"  ({rho / base:.2%} of st-fp32)" if base else ""
                print(f"{n:<14} {rho:.4f}{rel}")
                results.setdefault("stsb_spearman", {})[n] = rho
        summarize(results)
        try:
            load_end = os.getloadavg()
            results["load_avg_end"] = list(load_end)
            print(f"load avg: {' '.join(f'{x:.2f}' for x in load_end)} at end")
        except OSError:
            pass
        results["seconds_total"] = time.time() - started
        print(f"total   : {results['seconds_total']:.0f}s")
        if json_path is not None:
            json_path.parent.mkdir(parents=True, exist_ok=True)
            json_path.write_text(json.dumps(results, indent=2) + "\n")
            print(f"wrote {json_path}")
    return 0


def summarize(results: dict) -> None:
    """Check the issue's targets on every (workload, batch size) cell."""
    cells = results["cells"]

    def worst(backend: str, key: str) -> float | None:
        vals = [c[key] for c in cells if c["backend"] == backend and c.get(key) is not None]
        return min(vals) if vals else None

    def mean(backend: str, key: str) -> float | None:
        vals = [c[key] for c in cells if c["backend"] == backend and c.get(key) is not None]
        return sum(vals) / len(vals) if vals else None

    print("\n== targets (worst cell / mean over cells) ==")
    checks = [("ph-fp32", "x_st_fp32", 1.0), ("ph-bf16", "x_st_fp32", 1.8), ("ph-onnx-int8", "x_st_fp32", 3.0), ("ph-onnx-int8", "x_st_bf16", 1.3),
              ("ph-ov-bf16", "x_st_fp32", 1.8), ("ph-ov-int8", "x_st_fp32", 3.0), ("ph-ov-int8", "x_st_bf16", 1.3)]
    for backend, key, target in checks:
        w, m = worst(backend, key), mean(backend, key)
        if w is None:
            continue
        verdict = "MET" if w >= target else ("met on average" if m >= target else "MISSED")
        print(f"{backend:<13} {key:<10} target >= {target:.1f}x: worst {w:.2f}x, mean {m:.2f}x -> {verdict}")
    rho = results.get("stsb_spearman", {})
    for backend in ("ph-onnx-int8", "ph-ov-int8"):
        if backend in rho:
            print(f"{backend:<13} STS-B Spearman {rho[backend]:.4f} (target >= 0.99 x 0.820 = 0.812) -> {'MET' if rho[backend] >= 0.8118 else 'MISSED'}")
    par = results.get("parity", {})
    if any("ph-fp32" in v for v in par.values()):
        d = max(v["ph-fp32"]["max_abs_diff"] for v in par.values() if "ph-fp32" in v)
        print(f"ph-fp32 embeddings vs st-fp32: max |diff| {d:.1e} -> {'identical within 1e-5' if d <= 1e-5 else 'DIFFERENT'}")


if __name__ == "__main__":
    sys.exit(main())
