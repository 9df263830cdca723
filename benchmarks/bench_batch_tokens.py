"""Long texts: how many padded tokens one forward pass should hold on a CPU (the default cap,
polyhead.modeling.backend.CPU_BATCH_TOKENS = 2048), measured against no cap in the same run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_batch_tokens.py [--threads N] [--rounds 2]

Each backend (PyTorch fp32 and bf16, ONNX Runtime int8, OpenVINO int8) encodes the short
(16-24 tokens) and mixed (10-256 tokens) workloads of bench_encode.py at batch size 128 and 32
with `model.batch_tokens` set to none and 1,024 ... 8,192. Texts are length-sorted either way;
the cap only splits a batch whose longest text times its size exceeds it. Also reported: the
share of padded tokens (tokens the model computes but that are padding) for each setting.
Rounds interleave the settings; each cell is the median of the rounds and each ratio the
median of per-round ratios to "no cap". Writes runs/results/batch-tokens-<cpu>-<threads>t.json, or --json
(benchmarks/results/batch-tokens-amd-epyc-2t.json is the committed run).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_encode import build_workloads, cpu_slug, machine, versions  # noqa: E402

CAPS = (None, 1024, 2048, 4096, 8192)


def padding_share(lengths: list[int], batch_size: int, cap: int | None) -> float:
    from polyhead.modeling.backend import length_sorted_batches

    real = padded = 0
    for idx in length_sorted_batches(lengths, batch_size, cap):
        padded += lengths[idx[0]] * len(idx)
        real += sum(lengths[i] for i in idx)
    return (padded - real) / padded


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--short", type=int, default=256, help="texts in the short workload")
    ap.add_argument("--mixed", type=int, default=128, help="texts in the mixed workload")
    ap.add_argument("--batch-sizes", default="128,32")
    ap.add_argument("--work", default=None, help="a folder for the exports (default: a temporary one)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    import torch

    from polyhead import Encoder
    from polyhead.onnx import OnnxModel, export_onnx
    from polyhead.onnx.openvino import OpenVinoModel, export_openvino

    torch.set_num_threads(args.threads)
    work = Path(args.work or tempfile.mkdtemp(prefix="ph-batch-tokens-"))
    if not (work / "onnx" / "polyhead-onnx.json").is_file():
        export_onnx(Encoder(device="cpu"), work / "onnx", quantize="int8")
    if not (work / "openvino" / "polyhead-openvino.json").is_file():
        export_openvino(Encoder(device="cpu"), work / "openvino", quantize="int8")
    models = {
        "ph-fp32": Encoder(device="cpu", precision="fp32"),
        "ph-bf16": Encoder(device="cpu", precision="bf16"),
        "ph-onnx-int8": OnnxModel.load(work / "onnx", variant="int8", threads=args.threads),
        "ph-ov-int8": OpenVinoModel.load(work / "openvino", variant="int8", threads=args.threads),
    }
    tok = models["ph-fp32"].tokenizer
    workloads = build_workloads(tok, args.short, args.mixed)
    lengths = {w: [len(x) for x in tok(t, truncation=True, max_length=256)["input_ids"]] for w, t in workloads.items()}
    results: dict = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine() + "; " + versions(),
        "threads": args.threads,
        "load_average_at_start": os.getloadavg()[0],
        "method": "texts/s = median of the rounds; x_no_cap = median of per-round ratios to the same backend with no cap",
        "cells": [],
    }
    for wl, texts in workloads.items():
        for bs in [int(b) for b in args.batch_sizes.split(",")]:
            for name, model in models.items():
                times: dict = {cap: [] for cap in CAPS}
                for r in range(args.rounds + 1):  # round 0 warms every shape up, untimed
                    order = CAPS[r % len(CAPS):] + CAPS[: r % len(CAPS)]
                    for cap in order:
                        model.batch_tokens = cap
                        t0 = time.perf_counter()
                        model.encode(texts, batch_size=bs)
                        if r:
                            times[cap].append(time.perf_counter() - t0)
                base = times[None]
                for cap in CAPS:
                    cell = {
                        "workload": wl, "batch_size": bs, "backend": name, "batch_tokens": cap,
                        "texts_per_s": round(len(texts) / statistics.median(times[cap]), 1),
                        "x_no_cap": round(statistics.median(b / t for b, t in zip(base, times[cap])), 3),
                        "padding_share": round(padding_share(lengths[wl], bs, cap), 3),
                    }
                    results["cells"].append(cell)
                row = " ".join(f"{c['batch_tokens']}:{c['texts_per_s']:.0f} ({c['x_no_cap']:.2f}x)" for c in results["cells"][-len(CAPS):])
                print(f"{wl:<6} batch {bs:<4} {name:<13} {row}", flush=True)
    out = Path(args.json) if args.json else Path(__file__).resolve().parents[1] / "runs" / "results" / f"batch-tokens-{cpu_slug()}-{args.threads}t.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
