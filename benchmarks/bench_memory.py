"""Peak memory while streaming a large text file into embedding shards: flat in the file size.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_memory.py [--sizes 10000,50000,200000,1000000] [--real-sizes 10000,30000,60000]

A 1,000,000-line file of short lines is generated in a temporary folder. Each prefix size is
encoded by `polyhead encode --input FILE --output DIR/` logic (streaming.encode_to_shards) in a
fresh subprocess, which reports its resident memory after loading the model and its peak
(VmHWM from /proc/self/status) at the end. Encoding 1M lines with the real all-MiniLM-L6-v2
takes about an hour on 2 cores, so the large sizes use a tiny random BERT (2 layers, 32 wide)
with the real tokenizer: the memory behaviour under test (chunked reading, one shard in memory,
shards written and dropped) is the same code; the real encoder is run on the smaller sizes.
"""
from __future__ import annotations

import argparse
import json
import os
import random
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
                  "rss_loaded_mib": loaded, "rss_end_mib": status("VmRSS"), "peak_mib": status("VmHWM")}))
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,50000,200000,1000000", help="line counts for the tiny encoder")
    ap.add_argument("--real-sizes", default="10000,30000,60000", help="line counts for the real all-MiniLM-L6-v2 ('' to skip)")
    ap.add_argument("--real-precision", default="auto", help="precision for the real encoder (the CLI default: auto)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--work", default=None, help="folder for the generated file and shards (default: a temp folder)")
    args = ap.parse_args()

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_encode import machine  # noqa: E402

    print(f"machine : {machine()}")
    print(f"date    : {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"threads : torch.set_num_threads({args.threads}); shard size 10,000 lines; batch size 64")
    sizes = [int(x) for x in args.sizes.split(",") if x]
    real_sizes = [int(x) for x in args.real_sizes.split(",") if x]
    with tempfile.TemporaryDirectory(dir=args.work) as work:
        work = Path(work)
        big = work / "big.txt"
        t0 = time.perf_counter()
        biggest = max(sizes + real_sizes + [1_000_000])
        make_file(big, biggest)
        print(f"input   : {biggest:,} lines, {big.stat().st_size / 2**20:.0f} MiB, generated in {time.perf_counter() - t0:.0f}s")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
