"""Encoding speed: polyhead vs sentence-transformers on all-MiniLM-L6-v2, CPU, same run, same inputs.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_encode.py [--threads N] [--rounds 3] [--quick]

Backends (all on the same bundled all-MiniLM-L6-v2 weights, mean pooling, L2-normalised):
  st-fp32        sentence-transformers encode, fp32                     (the reference: 1.00x)
  st-bf16        sentence-transformers encode under torch.autocast(cpu, bfloat16)
  st-onnx-int8   sentence-transformers backend="onnx" int8              (only if `optimum` is installed)
  ph-fp32        polyhead Encoder(precision="fp32")
  ph-bf16        polyhead Encoder(precision="bf16")                     (autocast, as `auto` picks here)
  ph-onnx-fp32   polyhead ONNX export, ORT fusions, fp32
  ph-onnx-int8   polyhead ONNX export, ORT fusions, dynamic int8 weights

Workloads: "short" = STS-B sentences of 16-24 tokens; "mixed" = texts of 10 to 256 tokens
(uniform), built from STS-B sentences. Every backend encodes the same texts; rounds interleave
the backends (in rotated order) and each ratio is the median of per-round ratios to st-fp32,
because this machine is shared and its speed drifts. torch.set_num_threads and ORT's
intra_op_num_threads are set to the same --threads (default: os.cpu_count()).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
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
        f"python {platform.python_version()}, torch {torch.__version__}, onnxruntime {onnxruntime.__version__}"
    )


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


class Backends:
    """Builds each backend once; each is a function (texts, batch_size) -> (n, 384) float32."""

    def __init__(self, threads: int, work: Path) -> None:
        import torch

        from polyhead import Encoder
        from polyhead.modeling.encoder import embedded_default_path

        self.model_path = str(embedded_default_path())
        self.threads = threads
        self.fns: dict[str, object] = {}
        self.notes: dict[str, str] = {}
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
        self.fns["st-bf16"] = st_bf16
        st_onnx = self._st_onnx_int8(work)
        if st_onnx is not None:
            self.fns["st-onnx-int8"] = st_onnx
        for prec in ("fp32", "bf16"):
            enc = Encoder(device="cpu", precision=prec)
            self.fns[f"ph-{prec}"] = lambda texts, bs, enc=enc: enc.encode(texts, batch_size=bs)
        from polyhead.onnx import OnnxModel, export_onnx

        onnx_dir = work / "minilm-onnx"
        if not (onnx_dir / "polyhead-onnx.json").is_file():
            t0 = time.perf_counter()
            export_onnx(Encoder(device="cpu"), onnx_dir, quantize="int8")
            self.notes["export"] = f"ONNX export + int8 quantisation took {time.perf_counter() - t0:.0f}s"
        for variant in ("fp32", "int8"):
            om = OnnxModel.load(onnx_dir, variant=variant, threads=threads)
            self.fns[f"ph-onnx-{variant}"] = lambda texts, bs, om=om: om.encode(texts, batch_size=bs)
        manifest = json.loads((onnx_dir / "polyhead-onnx.json").read_text())
        fusion = manifest["ort_fusion"]
        self.notes["fusion"] = (
            "offline " + ", ".join(f"{k} x{v}" for k, v in fusion.get("ops", {}).items())
            if fusion["applied"]
            else "ORT_ENABLE_ALL at load (offline fusion off)"
        )

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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch and ORT intra-op threads (default: os.cpu_count())")
    ap.add_argument("--rounds", type=int, default=3, help="timed rounds per cell; the median is reported")
    ap.add_argument("--short", type=int, default=512, help="texts in the short workload")
    ap.add_argument("--mixed", type=int, default=256, help="texts in the mixed workload")
    ap.add_argument("--bs1-texts", type=int, default=64, help="texts timed at batch size 1 (a prefix of the workload)")
    ap.add_argument("--batch-sizes", default="1,32,128")
    ap.add_argument("--backends", default=None, help="comma-separated subset (default: all)")
    ap.add_argument("--no-stsb", action="store_true", help="skip the STS-B Spearman check")
    ap.add_argument("--quick", action="store_true", help="1 round, fewer texts (a smoke run)")
    ap.add_argument("--work", default=None, help="cache folder for the ONNX exports (default: a temp folder)")
    ap.add_argument("--json", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.short, args.mixed, args.bs1_texts = 1, 128, 64, 16

    import torch

    torch.set_num_threads(args.threads)
    print(f"machine : {machine()}")
    print(f"date    : {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"threads : torch.set_num_threads({args.threads}), ORT intra_op_num_threads={args.threads}")
    try:
        load = os.getloadavg()
        print(f"load avg: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start (other work on the machine slows every backend alike)")
    except OSError:
        pass
    work_ctx = contextlib.nullcontext(args.work) if args.work else tempfile.TemporaryDirectory()
    with work_ctx as work:
        work = Path(work)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        be = Backends(args.threads, work)
        print(f"setup   : {time.perf_counter() - t0:.0f}s; ORT graph: {be.notes['fusion']}")
        for k in ("export", "st-onnx-int8"):
            if k in be.notes:
                print(f"note    : {be.notes[k]}")
        names = [n for n in be.fns if not args.backends or n in args.backends.split(",")]
        workloads = build_workloads(be.tokenizer, args.short, args.mixed)
        results: dict = {"machine": machine(), "threads": args.threads, "cells": []}
        batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
        for wname, texts in workloads.items():
            print(f"\n== workload {wname}: {token_stats(be.tokenizer, texts)} ==")
            ref_out: dict[str, np.ndarray] = {}
            for bs in batch_sizes:
                sub = texts[: args.bs1_texts] if bs == 1 else texts
                for n in names:  # warm-up: first-call allocations and ORT's lazy init
                    be.fns[n](sub[: max(2, min(bs, 8))], bs)
                times: dict[str, list[float]] = {n: [] for n in names}
                for r in range(args.rounds):
                    order = names[r % len(names):] + names[: r % len(names)]
                    for n in order:
                        dt, out = timed(be.fns[n], sub, bs)
                        times[n].append(dt)
                        if bs == batch_sizes[-1] and r == 0:
                            ref_out[n] = out
                ref = times["st-fp32"]
                print(f"-- batch size {bs} ({len(sub)} texts, {args.rounds} round(s)) --")
                print(f"{'backend':<14} {'texts/s':>9} {'x st-fp32':>10} {'x st-bf16':>10}")
                for n in names:
                    rate = len(sub) / statistics.median(times[n])
                    x_fp32 = statistics.median(r / t for r, t in zip(ref, times[n]))
                    x_bf16 = statistics.median(r / t for r, t in zip(times["st-bf16"], times[n])) if "st-bf16" in times else float("nan")
                    print(f"{n:<14} {rate:>9.1f} {x_fp32:>9.2f}x {x_bf16:>9.2f}x")
                    results["cells"].append({"workload": wname, "batch_size": bs, "backend": n, "texts": len(sub),
                                             "texts_per_s": rate, "x_st_fp32": x_fp32, "x_st_bf16": x_bf16,
                                             "seconds": times[n]})
            if "st-fp32" in ref_out:
                print(f"-- outputs vs st-fp32 ({wname}, batch {batch_sizes[-1]}) --")
                for n, out in ref_out.items():
                    diff = float(np.abs(out - ref_out["st-fp32"]).max())
                    cos = float((out * ref_out["st-fp32"]).sum(1).min())
                    print(f"{n:<14} max |diff| {diff:.2e}   min cosine {cos:.5f}")
                    results.setdefault("parity", {}).setdefault(wname, {})[n] = {"max_abs_diff": diff, "min_cosine": cos}
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
        print(f"load avg: {' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")
        if args.json:
            Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


def summarize(results: dict) -> None:
    """Check the issue's targets on every (workload, batch size) cell."""
    cells = results["cells"]

    def worst(backend: str, key: str) -> float | None:
        vals = [c[key] for c in cells if c["backend"] == backend]
        return min(vals) if vals else None

    def mean(backend: str, key: str) -> float | None:
        vals = [c[key] for c in cells if c["backend"] == backend]
        return sum(vals) / len(vals) if vals else None

    print("\n== targets (worst cell / mean over cells) ==")
    checks = [("ph-fp32", "x_st_fp32", 1.0), ("ph-bf16", "x_st_fp32", 1.8), ("ph-onnx-int8", "x_st_fp32", 3.0), ("ph-onnx-int8", "x_st_bf16", 1.3)]
    for backend, key, target in checks:
        w, m = worst(backend, key), mean(backend, key)
        if w is None:
            continue
        verdict = "MET" if w >= target else ("met on average" if m >= target else "MISSED")
        print(f"{backend:<13} {key:<10} target >= {target:.1f}x: worst {w:.2f}x, mean {m:.2f}x -> {verdict}")
    rho = results.get("stsb_spearman", {})
    if "ph-onnx-int8" in rho:
        print(f"ph-onnx-int8  STS-B Spearman {rho['ph-onnx-int8']:.4f} (target >= 0.99 x 0.820 = 0.812) -> {'MET' if rho['ph-onnx-int8'] >= 0.8118 else 'MISSED'}")
    par = results.get("parity", {})
    if par:
        d = max(v["ph-fp32"]["max_abs_diff"] for v in par.values() if "ph-fp32" in v)
        print(f"ph-fp32 embeddings vs st-fp32: max |diff| {d:.1e} -> {'identical within 1e-5' if d <= 1e-5 else 'DIFFERENT'}")


if __name__ == "__main__":
    sys.exit(main())
