"""OpenVINO's shape cache and the server's memory: resident memory under varied input shapes, and
speed on one repeated shape, per setting of the CPU plugin's CPU_RUNTIME_CACHE_CAPACITY (the
number of per-shape kernel preparations it keeps; OpenVINO's default is 5000).

Each setting runs in a process of its own (one runtime per process), on the int8 export of the
model benchmarks/soak.py serves (all-MiniLM-L6-v2 with intent, sentiment, NER and pair heads):
  varied  `predict` on requests of 1 to 64 texts cut to random lengths (the soak's mix of shapes)
          for --seconds; RSS at the start (after the first 50 requests) and at the end
  fixed   `encode` of the same 32 texts (one padded shape) for --seconds: batches/s

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/openvino_memory.py \
        --out benchmarks/results/openvino-shape-cache.json

Without --out it writes runs/results/openvino-shape-cache.json.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(folder: str, setting: str, part: str, seconds: float) -> dict:
    """One measurement in this process: `setting` is a capacity or 'default' (OpenVINO's own)."""
    from polyhead.onnx.openvino import load_openvino
    from soak import text_pool

    model = load_openvino(folder, threads=1, shape_cache=None if setting == "default" else int(setting))
    pool, rng = text_pool(), random.Random(0)
    if part == "fixed":
        texts = pool[:32]
        model.encode(texts)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model.encode(texts)
            n += 1
        return {"batches_per_s": round(n / (time.perf_counter() - start), 3)}
    n, start, first, marks = 0, time.perf_counter(), None, []
    while time.perf_counter() - start < seconds:
        texts = [rng.choice(pool)[: rng.randint(5, 900)] for _ in range(rng.choice([1, 1, 2, 4, 8, 16, 32, 64]))]
        model.predict(texts)
        n += 1
        if n == 50:
            first = rss_mib()
        if n % 100 == 0:
            marks.append([round(time.perf_counter() - start), round(rss_mib())])
    end = rss_mib()
    return {"requests": n, "requests_per_s": round(n / (time.perf_counter() - start), 3), "rss_start_mib": round(first or end),
            "rss_end_mib": round(end), "growth": round(end / (first or end) - 1, 3), "rss_by_second": marks}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings", default="default,0,64", help="capacities to compare; 'default' is OpenVINO's")
    ap.add_argument("--seconds", type=float, default=180, help="per setting and part")
    ap.add_argument("--model-dir", default=None, help="an exported model folder (default: build and export soak.py's)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "results" / "openvino-shape-cache.json"))
    ap.add_argument("--child", nargs=3, metavar=("FOLDER", "SETTING", "PART"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child:
        print(json.dumps(child(*args.child, args.seconds)))
        return
    from load_test import cpu_name
    from soak import build_model, export

    folder = Path(args.model_dir) if args.model_dir else None
    if folder is None:
        folder = build_model(Path(tempfile.mkdtemp(prefix="ov-shape-cache-")) / "model")
        export(folder, "openvino")
    rows: dict[str, dict] = {}
    for setting in args.settings.split(","):
        rows[setting] = {}
        for part in ("varied", "fixed"):
            cmd = [sys.executable, __file__, "--child", str(folder), setting, part, "--seconds", str(args.seconds)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
            rows[setting][part] = json.loads(out)
            print(setting, part, rows[setting][part] if part == "fixed" else
                  {k: v for k, v in rows[setting][part].items() if k != "rss_by_second"}, flush=True)
    base = rows.get("default", {}).get("fixed", {}).get("batches_per_s")
    for setting, row in rows.items():
        if base:
            row["fixed"]["speed_vs_default"] = round(row["fixed"]["batches_per_s"] / base, 3)
    doc = {"benchmark": "openvino-shape-cache", "machine": cpu_name(), "threads": 1, "seconds_per_part": args.seconds,
           "command": "HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/openvino_memory.py "
                      + " ".join(shlex.quote(a) for a in sys.argv[1:]),
           "date": time.strftime("%Y-%m-%d"), "settings": rows}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")


if __name__ == "__main__":
    main()
