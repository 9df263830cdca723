"""Corpus encoding across processes: Ray Data actors vs `accelerate launch` processes vs one process.

    flock /tmp/cpu-timing.lock .venv/bin/python benchmarks/bench_ray.py [--texts 20000] [--rounds 1]

Every configuration runs the real command a user runs, as a subprocess, on the same texts, with the
bundled all-MiniLM-L6-v2 in fp32 (batch 32, max length 256) on this machine's CPUs:

  local-1x1     polyhead encode --input texts.txt --output shards/      1 process, 1 thread
  local-1xN     the same with torch's default threads (one per core)  <- the baseline (1.00x)
  accelerate-2  accelerate launch --multi_gpu --num_processes 2 ... encode   2 processes x 1 thread
  ray-2         polyhead encode --engine ray --actors 2 --cpus-per-actor 1   2 actors x 1 thread

Each configuration runs twice per round: on --warm-texts texts (start-up: imports, model load,
Ray cluster and actor start) and on --texts texts. Two rates come out: end to end (texts / wall
time of the full run, what a user waits for) and steady (the extra texts / the extra time, i.e.
start-up removed, what decides a 10^8-text job). Ratios are against local-1xN. The inputs are the
same texts: one .txt file for the local engine, the same lines split into --files .txt files for
Ray (Ray Data hands whole files to actors as blocks; one file would keep one actor busy).
Results: runs/results/ray.json and ray.md (--results-dir benchmarks/results: the committed ones).
Run it alone (flock, as above): the timings are only meaningful on an otherwise idle machine.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from polyhead.bench.benchmark import machine_description  # noqa: E402

WORDS = (
    "the a shipment order refund customer arrived late package Berlin Paris support account password "
    "delivery invoice payment card bank transfer weekend Monday team product quality price discount "
    "store online app update error screen login email address phone number friend family holiday "
    "weather train flight hotel booking cancel change question answer problem service help thanks"
).split()
BASELINE = "local-1xN"


def make_texts(n: int, seed: int = 0) -> list[str]:
    """n sentences of 6 to 60 words (mixed lengths, as a real corpus), deterministic."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 60))).capitalize() + "." for _ in range(n)]


def configs(cores: int) -> dict[str, dict]:
    """name -> how to run it on input folder IN into output OUT."""
    py = sys.executable
    common = ["--precision", "fp32", "--batch-size", "32"]
    return {
        "local-1x1": {
            "describe": "polyhead encode, 1 process x 1 thread",
            "cmd": lambda d: [py, "-m", "polyhead.cli", "encode", "--input", str(d / "texts.txt"), "--output", f"{d / 'out'}/", *common],
            "env": {"OMP_NUM_THREADS": "1"},
        },
        "local-1xN": {
            "describe": f"polyhead encode, 1 process x {cores} threads (torch default)",
            "cmd": lambda d: [py, "-m", "polyhead.cli", "encode", "--input", str(d / "texts.txt"), "--output", f"{d / 'out'}/", *common],
            "env": {},
        },
        "accelerate-2": {
            "describe": "accelerate launch --num_processes 2 polyhead encode, 2 processes x 1 thread",
            "cmd": lambda d: [
                py, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                "--mixed_precision", "no", "--dynamo_backend", "no",
                "-m", "polyhead.cli", "encode", "--input", str(d / "texts.txt"), "--output", f"{d / 'out'}/", *common,
            ],
            "env": {"OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""},
        },
        "ray-2": {
            "describe": "polyhead encode --engine ray, 2 actors x 1 CPU (local Ray cluster)",
            "cmd": lambda d: [
                py, "-m", "polyhead.cli", "encode", "--engine", "ray", "--input", str(d / "parts" / "*.txt"),
                "--output", str(d / "out"), "--actors", "2", "--cpus-per-actor", "1", "--output-format", "parquet", *common,
            ],
            "env": {"CUDA_VISIBLE_DEVICES": ""},
        },
    }


def write_inputs(folder: Path, texts: list[str], files: int) -> None:
    folder.mkdir(parents=True)
    (folder / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    (folder / "parts").mkdir()
    per = -(-len(texts) // files)
    for i in range(files):
        chunk = texts[i * per : (i + 1) * per]
        if chunk:
            (folder / "parts" / f"part-{i:03d}.txt").write_text("\n".join(chunk) + "\n", encoding="utf-8")


def count_output(out: Path) -> int:
    """Texts in a finished output: shard records (local engine) or parquet rows (Ray)."""
    index = out / "index.jsonl"
    if index.is_file():
        return sum(json.loads(line)["count"] for line in index.read_text().splitlines() if line.strip())
    import pyarrow.parquet as pq

    return sum(pq.ParquetFile(f).metadata.num_rows for f in out.glob("*.parquet"))


def run_one(cfg: dict, folder: Path, n: int) -> float:
    """Wall seconds of one run of `cfg` on the inputs in `folder`; its output is checked and removed."""
    out = folder / "out"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **cfg["env"]}
    if "OMP_NUM_THREADS" not in cfg["env"]:
        env.pop("OMP_NUM_THREADS", None)
    start = time.perf_counter()
    proc = subprocess.run(cfg["cmd"](folder), env=env, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cfg['describe']} failed:\n{proc.stderr[-3000:]}")
    got = count_output(out)
    if got != n:
        raise SystemExit(f"{cfg['describe']}: wrote {got} texts, expected {n}")
    shutil.rmtree(out, ignore_errors=True)
    return seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--texts", type=int, default=20000, help="texts per measured run (default 20000)")
    ap.add_argument("--warm-texts", type=int, default=64, help="texts of the start-up run (default 64)")
    ap.add_argument("--files", type=int, default=16, help="input files for Ray (default 16)")
    ap.add_argument("--rounds", type=int, default=1, help="rounds; configs rotate order, medians are reported")
    ap.add_argument("--only", default=None, help="comma-separated subset of configurations")
    ap.add_argument("--results-dir", default=str(ROOT / "runs" / "results"),
                    help="where ray.json and ray.md go (default runs/results; benchmarks/results holds the committed ones)")
    ap.add_argument("--note", default="", help="a remark stored with the results (e.g. 'machine busy')")
    args = ap.parse_args()
    if args.texts <= args.warm_texts:
        raise SystemExit("--texts must exceed --warm-texts")

    cores = os.cpu_count() or 1
    all_cfgs = configs(cores)
    names = args.only.split(",") if args.only else list(all_cfgs)
    machine = machine_description()
    print(f"machine: {machine}")
    texts = make_texts(args.texts)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    try:
        full, warm = tmp / "full", tmp / "warm"
        write_inputs(full, texts, args.files)
        write_inputs(warm, texts[: args.warm_texts], min(args.files, 2))
        times: dict[str, dict[str, list[float]]] = {n: {"warm": [], "full": []} for n in names}
        for r in range(args.rounds):
            order = names[r % len(names):] + names[: r % len(names)]
            for name in order:
                cfg = all_cfgs[name]
                t_warm = run_one(cfg, warm, args.warm_texts)
                t_full = run_one(cfg, full, args.texts)
                times[name]["warm"].append(t_warm)
                times[name]["full"].append(t_full)
                print(f"round {r + 1} {name:<13} start-up run {t_warm:6.1f}s   {args.texts} texts {t_full:6.1f}s", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    rows = []
    for name in names:
        w, f = statistics.median(times[name]["warm"]), statistics.median(times[name]["full"])
        extra = max(f - w, 1e-9)
        rows.append({
            "config": name, "describe": all_cfgs[name]["describe"], "startup_run_s": round(w, 2), "full_run_s": round(f, 2),
            "end_to_end_texts_per_s": round(args.texts / f, 1),
            "steady_texts_per_s": round((args.texts - args.warm_texts) / extra, 1),
        })
    base = next((r for r in rows if r["config"] == BASELINE), rows[0])
    for r in rows:
        r["end_to_end_ratio"] = round(r["end_to_end_texts_per_s"] / base["end_to_end_texts_per_s"], 2)
        r["steady_ratio"] = round(r["steady_texts_per_s"] / base["steady_texts_per_s"], 2)
    doc = {
        "benchmark": "ray", "machine": machine, "model": "all-MiniLM-L6-v2 (bundled), fp32, batch 32, max length 256",
        "texts": args.texts, "warm_texts": args.warm_texts, "ray_input_files": args.files, "rounds": args.rounds,
        "baseline": base["config"], "note": args.note, "command": " ".join(sys.argv),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": rows,
    }
    md = markdown(doc)
    print(md)
    out = Path(args.results_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "ray.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "ray.md").write_text(md)
    print(f"wrote {out / 'ray.json'} and {out / 'ray.md'}")


def markdown(doc: dict) -> str:
    lines = [
        f"# Corpus encoding: Ray Data vs accelerate vs one process ({doc['texts']} texts)",
        "",
        f"Machine: {doc['machine']}. Model: {doc['model']}. {doc['when']}, {doc['rounds']} round(s)."
        + (f" Note: {doc['note']}" if doc["note"] else ""),
        "",
        f"| configuration | start-up run ({doc['warm_texts']} texts) | full run | end-to-end texts/s | vs {doc['baseline']} "
        "| steady texts/s | vs " + doc["baseline"] + " |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["results"]:
        lines.append(
            f"| {r['config']}: {r['describe']} | {r['startup_run_s']:.1f}s | {r['full_run_s']:.1f}s | "
            f"{r['end_to_end_texts_per_s']:.0f} | {r['end_to_end_ratio']:.2f}x | {r['steady_texts_per_s']:.0f} | "
            f"{r['steady_ratio']:.2f}x |"
        )
    lines += ["", "Steady = (texts - start-up texts) / (full run - start-up run): the rate once processes, model and "
              "actors are up. Command: `" + doc["command"] + "`", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
