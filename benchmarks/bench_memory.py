"""Peak memory while streaming a large text file into embedding shards: flat in the file size.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_memory.py [--sizes 10000,50000,200000,1000000] [--real-sizes 10000,30000,60000] [--json PATH]

A 1,000,000-line file of short lines is generated in a temporary folder. Each prefix size is
encoded by `polyhead encode --input FILE --output DIR/` logic (streaming.encode_to_shards) in a
fresh subprocess, which reports its resident memory after loading the model and its peak
(VmHWM from /proc/self/status) at the end. Encoding 1M lines with the real all-MiniLM-L6-v2
takes about an hour on 2 cores, so the large sizes use a tiny random BERT (2 layers, 32 wide)
with the real tokenizer: the memory behaviour under test (chunked reading, one shard in memory,
shards written and dropped) is the same code; the real encoder is run on the smaller sizes.

Results go to stdout and, as JSON, to --json (default runs/results/memory-<cpu>.json; '-'
writes none): command, date, machine, threads, load average at start and end, and one row per
(encoder, lines) with the columns of the table in docs/speed.md section 3.
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

CHILD = r"""
import json, os, sys, time
import torch
torch.set_num_threads(int(sys.argv[5]))
from polyhead import Encoder
from polyhead.integrations.streaming import encode_to_shards

def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
model, path, out, precision = sys.argv[1:5]
enc = Encoder(None if model == "default" else model, device="cpu", precision=precision, max_length=128)
enc.encode(["warm up the allocator once"] * 64)
loaded = status("VmRSS")
t0 = time.perf_counter()
summary = encode_to_shards(enc, path, out, shard_size=10000, batch_size=64, show_progress=False)
print(json.dumps({"seconds": time.perf_counter() - t0, "lines": summary["total_lines"], "shards": summary["shards"],
                  "rss_loaded_mib": loaded, "rss_end_mib": status("VmRSS"), "peak_mib": status("VmHWM"),
                  "precision": enc.precision}))
"""

WORDS = (
    "the a of to and in is for on with as by at from that this it be are was were has have not but or "
    "market team city river model data music film game school health energy water travel food design "
    "report season player police court price company people government country history science"
).split()


def make_file(path: Path, n: int, seed: int = 0) -> None:
    """n short lines (4-16 words), written in blocks so generation itself stays small in memory."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as fh:
        block = []
        for i in range(n):
            block.append(f"{i} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 16))))
            if len(block) == 10000:
                fh.write("\n".join(block) + "\n")
                block = []
        if block:
            fh.write("\n".join(block) + "\n")


def prefix(src: Path, dst: Path, n: int) -> None:
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        for i, line in enumerate(fin):
            if i == n:
                break
            fout.write(line)


def tiny_model(folder: Path) -> None:
    """A randomly initialised 2-layer, 32-wide BERT with the real tokenizer, saved as an encoder folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from polyhead import Encoder
    from polyhead.modeling.encoder import embedded_default_path

    tok = AutoTokenizer.from_pretrained(str(embedded_default_path()))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512)
    Encoder(backbone=BertModel(cfg, add_pooling_layer=False), tokenizer=tok, device="cpu").save_backbone(folder)


def run(model: str, path: Path, out: Path, precision: str, threads: int) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, model, str(path), str(out), precision, str(threads)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def default_json() -> Path:
    """runs/results/memory-<cpu>.json (peak memory does not depend on the thread count), outside the repository."""
    from bench_encode import cpu_slug

    return Path(__file__).resolve().parents[1] / "runs" / "results" / f"memory-{cpu_slug()}.json"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,50000,200000,1000000", help="line counts for the tiny encoder")
    ap.add_argument("--real-sizes", default="10000,30000,60000", help="line counts for the real all-MiniLM-L6-v2 ('' to skip)")
    ap.add_argument("--real-precision", default="auto", help="precision for the real encoder (the CLI default: auto)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--work", default=None, help="folder for the generated file and shards (default: a temp folder)")
    ap.add_argument("--json", default=None,
                    help="write the results as JSON here (default: runs/results/memory-<cpu>.json); '-' writes none")
    args = ap.parse_args()

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_encode import machine  # noqa: E402

    json_path = None if args.json == "-" else Path(args.json) if args.json else default_json()
    started = time.time()
    mach = machine()
    load_start = list(os.getloadavg())
    print(f"machine : {mach}")
    print(f"date    : {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"threads : torch.set_num_threads({args.threads}); shard size 10,000 lines; batch size 64")
    print(f"load avg: {' '.join(f'{x:.2f}' for x in load_start)} at start")
    doc: dict = {
        "command": shlex.join([sys.executable, *sys.argv]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": mach,
        "threads": args.threads,
        "load_avg_start": load_start,
        "options": {"sizes": args.sizes, "real_sizes": args.real_sizes, "real_precision": args.real_precision,
                    "shard_size": 10000, "batch_size": 64, "max_length": 128},
        "method": (
            "Each row: a fresh subprocess loads the encoder, encodes one warm-up batch, reads VmRSS (rss_loaded_mib), "
            "runs streaming.encode_to_shards on a prefix of one generated file, then reads VmHWM (peak_rss_mib) from "
            "/proc/self/status. MiB = 2**20 bytes. seconds = encode_to_shards only."
        ),
        "rows": [],
    }
    sizes = [int(x) for x in args.sizes.split(",") if x]
    real_sizes = [int(x) for x in args.real_sizes.split(",") if x]
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        work = Path(work)
        big = work / "big.txt"
        t0 = time.perf_counter()
        biggest = max(sizes + real_sizes + [1_000_000])
        make_file(big, biggest)
        print(f"input   : {biggest:,} lines, {big.stat().st_size / 2**20:.0f} MiB, generated in {time.perf_counter() - t0:.0f}s")
        doc["input"] = {"lines": biggest, "mib": big.stat().st_size / 2**20, "words_per_line": "4-16"}
        tiny = work / "tiny-encoder"
        tiny_model(tiny)
        print(f"\n{'encoder':<22} {'lines':>9} {'shards':>6} {'seconds':>8} {'lines/s':>8} {'RSS loaded':>11} {'peak RSS':>9} {'peak - loaded':>14}")
        rows = [("tiny (2x32, fp32)", str(tiny), n, "fp32") for n in sizes]
        rows += [(f"all-MiniLM-L6-v2 ({args.real_precision})", "default", n, args.real_precision) for n in real_sizes]
        for label, model, n, precision in rows:
            path = work / f"lines-{n}.txt"
            if n == biggest:
                path = big
            elif not path.exists():
                prefix(big, path, n)
            r = run(model, path, work / f"out-{label[:4]}-{n}", precision, args.threads)
            print(f"{label:<22} {r['lines']:>9,} {r['shards']:>6} {r['seconds']:>8.1f} {r['lines'] / r['seconds']:>8.0f} "
                  f"{r['rss_loaded_mib']:>9.0f} M {r['peak_mib']:>7.0f} M {r['peak_mib'] - r['rss_loaded_mib']:>12.0f} M", flush=True)
            doc["rows"].append({
                "encoder": label, "precision": precision, "precision_resolved": r.get("precision"),
                "lines": r["lines"], "shards": r["shards"],
                "seconds": r["seconds"], "lines_per_s": r["lines"] / r["seconds"],
                "rss_loaded_mib": r["rss_loaded_mib"], "peak_rss_mib": r["peak_mib"],
                "peak_minus_loaded_mib": r["peak_mib"] - r["rss_loaded_mib"], "rss_end_mib": r["rss_end_mib"],
                "load_avg_after": list(os.getloadavg()),
            })
    doc["load_avg_end"] = list(os.getloadavg())
    doc["seconds_total"] = time.time() - started
    print(f"load avg: {' '.join(f'{x:.2f}' for x in doc['load_avg_end'])} at end")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=2) + "\n")
        print(f"wrote {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
