"""Soak and overload test for `polyhead serve`: does the server hold steady load for a long time,
shed load it cannot serve, and recover at once?

Phases, against one server (a subprocess on a free loopback port):
  1. calibrate: closed loop at --concurrency for --calibrate-seconds; the texts per second it
                answers are the capacity (in texts, not requests: a request carries 1 to 64 texts,
                so a short calibration's request rate depends on which sizes it happened to draw).
  2. steady:    open-loop arrivals (Poisson) offering --steady-load x capacity texts per second for
                --minutes (each replayed minute carries exactly that many texts), mixed
                traffic: every route (/predict, /v1/embeddings, /embed, /similarity, /rerank, /pairs),
                1 to 64 texts per request, short and long texts. One bucket's arrivals (times and
                requests, seeded) are drawn once and replayed every bucket (--replay-seconds), so
                every minute offers the same traffic and minutes compare the server with itself.
  3. overload:  --overload x capacity for --overload-minutes: the server must answer every request
                (200, or 503 at once when its queue is full) within its deadline.
  4. recovery:  steady load again for --recovery-minutes: latency must come back.
Throughout, /health is probed every second (its latency is reported) and the server's RSS, its CPU
time and the machine's CPU counters (steal: time a virtual machine's host gave to other guests) are
read from /proc as often. Per bucket (a minute by default): throughput, p50/p99 latency of the
200s, RSS, the server's CPU milliseconds per answered text, the steal share, and answers by
status. The targets (docs/serving.md) are evaluated at the end.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 .venv/bin/python benchmarks/soak.py --backend torch
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/soak.py --backend openvino          # exports int8 first

Writes runs/results/soak-<backend>.json, or --json (benchmarks/results/soak-<backend>.json: the
committed runs). Without --model-dir it builds the bundled all-MiniLM-L6-v2 with intent,
sentiment, NER and a pair-classification head (untrained heads cost what trained ones cost).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_test import Server, cpu_name, make_texts  # noqa: E402  (same folder: the server harness)

ROOT = Path(__file__).resolve().parents[1]
ROUTES = {"predict": 0.35, "embeddings": 0.2, "embed": 0.1, "similarity": 0.1, "rerank": 0.1, "pairs": 0.15}
SIZES = [1, 1, 1, 2, 2, 4, 4, 8, 8, 16, 32, 64]  # texts per request: mostly small, up to 64
LONG = ("The customer wrote a long message explaining that the parcel, which had been promised for Monday, "
        "arrived on Friday with the box crushed, two of the four items missing and the invoice for someone else, "
        "and that three calls to the hotline ended after forty minutes on hold without anyone answering. ")


def text_pool() -> list[str]:
    """Short customer messages and some long ones (about 60 to 250 tokens)."""
    short = make_texts(72)
    long = [(LONG * (1 + i % 4)) + short[i] for i in range(12)]
    return short + long


def build_model(folder: Path) -> Path:
    import torch

    from polyhead import Encoder, MultiTaskModel, TaskSpec

    torch.manual_seed(0)
    model = MultiTaskModel(Encoder(device="cpu"), [
        TaskSpec("intent", "classification", ["order_status", "refund", "shipping", "complaint"]),
        TaskSpec("sentiment", "classification", ["negative", "positive"]),
        TaskSpec("ner", "token", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]),
        TaskSpec("duplicate", "pair_classification", ["different", "same"]),
    ])
    return model.save(folder)


def export(model_dir: Path, backend: str) -> None:
    cmd = [sys.executable, "-m", "polyhead.cli", "export", str(model_dir), "--format", backend, "--quantize", "int8"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def request(rng: random.Random, pool: list[str], routes: dict[str, float] = ROUTES) -> tuple[str, str, dict[str, Any], int]:
    """(route, path, body, texts) for one random request of the mix."""
    route = rng.choices(list(routes), weights=list(routes.values()))[0]
    n = rng.choice(SIZES)
    texts = [rng.choice(pool) for _ in range(n)]
    if route == "predict":
        return route, "/predict", {"texts": texts, "embeddings": rng.random() < 0.5}, n
    if route == "embeddings":
        return route, "/v1/embeddings", {"model": "soak", "input": texts}, n
    if route == "embed":
        return route, "/embed", {"inputs": texts}, n
    pairs = [[texts[i], texts[-1 - i]] for i in range(max(1, n // 2))]
    if route == "similarity":
        return route, "/similarity", {"pairs": pairs}, 2 * len(pairs)
    if route == "pairs":
        return route, "/pairs", {"pairs": pairs}, 2 * len(pairs)
    return route, "/rerank", {"query": texts[0], "documents": texts[1:] or texts}, n


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def server_cpu_seconds(pid: int) -> float:
    """The process's user + system CPU time, threads included (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu() -> tuple[int, int]:
    """(steal, total) jiffies over all CPUs since boot, from /proc/stat's first line."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    # user nice system idle iowait irq softirq steal [guest guest_nice: already inside user and nice]
    return (values[7] if len(values) > 7 else 0), sum(values[:8])


def mean_texts_per_request(routes: dict[str, float], draws: int = 20000) -> float:
    """The traffic mix's expected texts per request (a seeded sample of requests; computed once per mix)."""
    key = (tuple(routes.items()), draws)
    if key not in _MEANS:
        rng, pool = random.Random(0), ["x"]
        _MEANS[key] = sum(request(rng, pool, routes)[3] for _ in range(draws)) / draws
    return _MEANS[key]


_MEANS: dict[tuple, float] = {}


class Recorder:
    """Every answer as (time, phase, route, status, seconds, texts); RSS and /health samples."""

    def __init__(self) -> None:
        self.answers: list[tuple[float, str, str, int, float, int]] = []
        self.rss: list[tuple[float, float]] = []
        self.cpu: list[tuple[float, float, int, int]] = []  # (time, server CPU seconds, steal, total jiffies)
        self.health: list[tuple[float, str, float, int]] = []
        self.phase = "calibrate"
        self.phases: list[tuple[float, str]] = [(0.0, "calibrate")]  # (start, phase)
        self.t0 = time.monotonic()
        self.routes = ROUTES

    def now(self) -> float:
        return time.monotonic() - self.t0


async def send(client: httpx.AsyncClient, rec: Recorder, req: tuple[str, str, dict[str, Any], int], deadline: float) -> None:
    route, path, body, n = req
    phase, start = rec.phase, time.perf_counter()
    try:
        status = (await client.post(path, json=body, timeout=deadline)).status_code
    except httpx.TimeoutException:
        status = -1  # no answer within the deadline
    except httpx.HTTPError:
        status = -2  # connection refused or reset
    rec.answers.append((rec.now(), phase, route, status, time.perf_counter() - start, n))


async def closed_loop(client: httpx.AsyncClient, rec: Recorder, pool: list[str], concurrency: int, seconds: float,
                      deadline: float) -> tuple[float, float]:
    """(requests, texts) per second the server answers with `concurrency` clients always waiting."""
    stop = time.monotonic() + seconds
    rng = random.Random(1)
    first = len(rec.answers)

    async def worker() -> None:
        while time.monotonic() < stop:
            await send(client, rec, request(rng, pool, rec.routes), deadline)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    done = [a for a in rec.answers[first:] if a[3] == 200]
    elapsed = time.monotonic() - started
    return len(done) / elapsed, sum(a[5] for a in done) / elapsed


def arrivals(rng: random.Random, pool: list[str], routes: dict[str, float], text_rate: float, seconds: float) -> list[tuple[float, tuple]]:
    """(offset, request) pairs over `seconds` that carry `text_rate` x `seconds` texts (to within the
    last request): Poisson arrivals at the request rate that offers that many texts on average, drawn
    until they carry the texts, then spaced out over the period. A request carries 1 to 64 texts, so
    a minute of plain Poisson arrivals can offer a quarter more or less than its average; the
    replayed minute would carry that luck through the whole run."""
    rate = text_rate / mean_texts_per_request(routes)
    out, at, texts = [], 0.0, 0
    while texts < text_rate * seconds:
        req = request(rng, pool, routes)
        out.append((at, req))
        texts += req[3]
        at += rng.expovariate(rate)
    return [(t * seconds / at, req) for t, req in out]


async def open_loop(client: httpx.AsyncClient, rec: Recorder, pool: list[str], text_rate: float, seconds: float, deadline: float,
                    seed: int, replay: float = 0.0) -> None:
    """Arrivals offering `text_rate` texts per second for `seconds` (see arrivals), each request on its
    own (no waiting for answers).

    With `replay` > 0 the arrivals of one `replay`-second period (their times and their requests)
    are drawn once and sent again every period: each period offers the server the same traffic, so
    a later period that is slower than an earlier one measures the server, not the luck of the draw.
    """
    rng = random.Random(seed)
    period = replay if replay > 0 else seconds
    plan = arrivals(rng, pool, rec.routes, text_rate, period)
    tasks: set[asyncio.Task] = set()
    start = time.monotonic()
    offset = 0.0
    while offset < seconds:
        for at, req in plan:
            if offset + at >= seconds:
                break
            await asyncio.sleep(max(0.0, start + offset + at - time.monotonic()))
            task = asyncio.create_task(send(client, rec, req, deadline))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        offset += period  # without replay the one period is the whole phase
    if tasks:
        await asyncio.gather(*tasks)


# /health is probed from a process of its own: a probe inside the load generator's event loop would
# also time that loop's own backlog under overload, not the server's.
PROBE = """
import sys, time, httpx
with httpx.Client(base_url=sys.argv[1]) as c:
    while True:
        t = time.monotonic(); s = time.perf_counter()
        try:
            status = c.get('/health', timeout=5).status_code
        except httpx.HTTPError:
            status = -1
        print(t, time.perf_counter() - s, status, flush=True)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
"""


async def watch(server: Server, rec: Recorder, stop: asyncio.Event) -> None:
    """The server's RSS and CPU time and the machine's steal every second, until stopped (/health:
    the PROBE process)."""
    while not stop.is_set():
        rec.rss.append((rec.now(), rss_mib(server.proc.pid)))
        rec.cpu.append((rec.now(), server_cpu_seconds(server.proc.pid), *machine_cpu()))
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except asyncio.TimeoutError:
            pass


def read_probe(probe: subprocess.Popen, rec: Recorder) -> None:
    """The probe's lines as rec.health rows (time since the start, phase then, seconds, status)."""
    probe.terminate()
    out = probe.communicate(timeout=30)[0]
    for line in out.splitlines():
        t, seconds, status = line.split()
        at = float(t) - rec.t0
        phase = next((p for start, p in reversed(rec.phases) if at >= start), "calibrate")
        rec.health.append((at, phase, float(seconds), int(status)))


async def run(server: Server, args: argparse.Namespace, pool: list[str]) -> tuple[Recorder, dict[str, float]]:
    rec = Recorder()
    rec.routes = {r: w for r, w in ROUTES.items() if r in args.routes.split(",")}
    probe = subprocess.Popen([sys.executable, "-c", PROBE, server.url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(server, rec, stop))
    # Idle connections are dropped by the client before uvicorn's 5 s keep-alive timeout closes them:
    # reusing one the server is closing at that moment fails on the client's side, not the server's.
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=2.0)
    deadline = args.request_timeout + 5.0  # the server's deadline plus the way back
    async with httpx.AsyncClient(base_url=server.url, limits=limits) as client:
        req_per_s, texts_per_s = await closed_loop(client, rec, pool, args.concurrency, args.calibrate_seconds, deadline)
        per_request = mean_texts_per_request(rec.routes)
        capacity = {"req_per_s": req_per_s, "texts_per_s": texts_per_s, "mean_texts_per_request": per_request}
        steady = args.steady_load * texts_per_s
        for phase, rate, seconds, seed in (("steady", steady, args.minutes * args.bucket_seconds, 2),
                                           ("overload", args.overload * texts_per_s, args.overload_minutes * args.bucket_seconds, 3),
                                           ("recovery", steady, args.recovery_minutes * args.bucket_seconds, 4)):
            rec.phase = phase
            rec.phases.append((rec.now(), phase))
            await open_loop(client, rec, pool, rate, seconds, deadline, seed, args.replay_seconds)
    stop.set()
    await watcher
    read_probe(probe, rec)
    return rec, capacity


def pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(np.array(values) * 1000.0, q)) if values else None


def buckets(rec: Recorder, bucket: float) -> list[dict[str, Any]]:
    """Per bucket (a minute by default) of the run after calibration: phase, throughput, latency, RSS, statuses."""
    answers = [a for a in rec.answers if a[1] != "calibrate"]
    if not answers:
        return []
    start = min(a[0] - a[4] for a in answers)
    rows = []
    for i in range(int((max(a[0] for a in answers) - start) // bucket) + 1):
        lo, hi = start + i * bucket, start + (i + 1) * bucket
        mine = [a for a in answers if lo <= a[0] < hi]
        ok = [a for a in mine if a[3] == 200]
        statuses: dict[str, int] = {}
        for a in mine:
            statuses[str(a[3])] = statuses.get(str(a[3]), 0) + 1
        # The sampler runs on the load generator's busy event loop and can miss a short bucket:
        # then the bucket has the last reading before its end.
        rss = [r for t, r in rec.rss if lo <= t < hi] or [r for t, r in rec.rss if t < hi][-1:]
        health = [h[2] for h in rec.health if lo <= h[0] < hi]
        cpu = [c for c in rec.cpu if lo <= c[0] < hi]
        texts_ok = sum(a[5] for a in ok)
        server_cpu = cpu[-1][1] - cpu[0][1] if len(cpu) > 1 else None
        steal = (cpu[-1][2] - cpu[0][2]) / max(1, cpu[-1][3] - cpu[0][3]) if len(cpu) > 1 else None
        phases = sorted({a[1] for a in mine})
        rows.append({"bucket": i + 1, "phase": "+".join(phases), "answers": len(mine), "ok_per_s": len(ok) / bucket,
                     "texts_per_s": texts_ok / bucket, "p50_ms": pct([a[4] for a in ok], 50),
                     "p99_ms": pct([a[4] for a in ok], 99), "max_ms": pct([a[4] for a in mine], 100),
                     "rss_mib": max(rss) if rss else None, "rss_median_mib": float(np.median(rss)) if rss else None, "health_max_ms": pct(health, 100),
                     "server_cpu_ms_per_text": 1000 * server_cpu / texts_ok if server_cpu is not None and texts_ok else None,
                     "steal_share": steal, "statuses": statuses})
    return rows


def targets(rec: Recorder, rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    steady = [r for r in rows if r["phase"] == "steady"]
    out: dict[str, Any] = {}
    # RSS after the first two buckets grows by less than 5% over the rest of the steady phase.
    rss = [r["rss_mib"] for r in steady if r["rss_mib"] is not None]
    if len(rss) > 3:
        out["rss_growth"] = {"after_2": rss[1], "last": rss[-1], "ratio": rss[-1] / rss[1], "met": rss[-1] / rss[1] < 1.05}
        # The same on each minute's median reading (the peak reading is one batch's working memory
        # at the moment of a sample; the median is what the process holds between batches): not a
        # target, a second view of the same growth.
        med = [r["rss_median_mib"] for r in steady if r.get("rss_median_mib") is not None]
        if len(med) > 3:
            out["rss_growth"]["median_after_2"], out["rss_growth"]["median_last"] = med[1], med[-1]
            out["rss_growth"]["median_ratio"] = med[-1] / med[1]
    # Zero 5xx other than deliberate 503 shedding; no refused connection.
    bad = [a for a in rec.answers if a[3] >= 500 and a[3] != 503 or a[3] == -2]
    out["errors_other_than_503"] = {"count": len(bad), "met": not bad}
    # p99 of the last 5 buckets within 1.2x that of buckets 3-8 (steady phase).
    start = min(x[0] - x[4] for x in rec.answers if x[1] != "calibrate")

    def bucket_of(a: tuple) -> int:
        return int((a[0] - start) // args.bucket_seconds) + 1

    early = [a[4] for a in rec.answers if a[1] == "steady" and a[3] == 200 and bucket_of(a) in range(3, 9)]
    late_buckets = [r["bucket"] for r in steady][-5:]
    late = [a[4] for a in rec.answers if a[1] == "steady" and a[3] == 200 and bucket_of(a) in late_buckets]
    if early and late and len(steady) >= 10:
        ratio = pct(late, 99) / pct(early, 99)  # type: ignore[operator]
        out["p99_drift"] = {"buckets_3_8_ms": pct(early, 99), "last_5_ms": pct(late, 99), "ratio": ratio, "met": ratio <= 1.2}
    # Overload: every request answered (200 or 503) within its deadline; /health under 100 ms.
    over = [a for a in rec.answers if a[1] == "overload"]
    late_or_lost = [a for a in over if a[3] not in (200, 503) or a[4] > args.request_timeout + 1.0]
    health = [h[2] for h in rec.health if h[1] == "overload"]
    out["overload"] = {"requests": len(over), "ok": sum(a[3] == 200 for a in over), "shed_503": sum(a[3] == 503 for a in over),
                       "unanswered_or_late": len(late_or_lost), "health_max_ms": pct(health, 100),
                       "met": not late_or_lost and (pct(health, 100) or 0) < 100.0}
    rec_ok = [a[4] for a in rec.answers if a[1] == "recovery" and a[3] == 200]
    rec_503 = sum(a[3] == 503 for a in rec.answers if a[1] == "recovery")
    steady_ok = [a[4] for a in rec.answers if a[1] == "steady" and a[3] == 200]
    if rec_ok and steady_ok:
        out["recovery"] = {"p50_ms": pct(rec_ok, 50), "steady_p50_ms": pct(steady_ok, 50), "shed_503": rec_503,
                           "met": rec_503 == 0 and pct(rec_ok, 50) <= 1.5 * pct(steady_ok, 50)}  # type: ignore[operator]
    out["all_met"] = all(v.get("met", True) for v in out.values() if isinstance(v, dict))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--backend", default="torch", choices=["torch", "onnx", "openvino"])
    p.add_argument("--model-dir", type=Path, default=None)
    p.add_argument("--minutes", type=float, default=20, help="steady phase, in buckets (default 20)")
    p.add_argument("--overload-minutes", type=float, default=2)
    p.add_argument("--recovery-minutes", type=float, default=1)
    p.add_argument("--bucket-seconds", type=float, default=60.0, help="the reporting bucket ('minute'); smaller for a short run")
    p.add_argument("--calibrate-seconds", type=float, default=30.0)
    p.add_argument("--replay-seconds", type=float, default=None,
                   help="send the same seeded arrivals every this many seconds (default: one bucket; 0: fresh arrivals throughout)")
    p.add_argument("--concurrency", type=int, default=8, help="closed-loop clients when measuring capacity")
    p.add_argument("--steady-load", type=float, default=0.5, help="steady arrival rate as a share of capacity")
    p.add_argument("--overload", type=float, default=3.0, help="overload arrival rate as a multiple of capacity")
    p.add_argument("--request-timeout", type=float, default=30.0, help="the server's per-request deadline")
    p.add_argument("--max-queue-texts", type=int, default=1024)
    p.add_argument("--routes", default=",".join(ROUTES), help="the routes of the mix (default: all; /pairs needs a pair head)")
    p.add_argument("--json", type=Path, default=None, help="default runs/results/soak-<backend>.json")
    args = p.parse_args(argv)
    if args.replay_seconds is None:
        args.replay_seconds = args.bucket_seconds

    pool = text_pool()
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model_dir or build_model(Path(tmp) / "model")
        if args.backend != "torch" and not (model_dir / args.backend).exists():
            export(model_dir, args.backend)
        server = Server(model_dir, 64, 5.0, "auto", ("--backend", args.backend, "--max-queue-texts", str(args.max_queue_texts),
                                                      "--request-timeout", str(args.request_timeout)))
        try:
            server.wait_ready()
            started = time.time()
            rec, capacity = asyncio.run(run(server, args, pool))
        finally:
            server.stop()
    rows = buckets(rec, args.bucket_seconds)
    result = {
        "benchmark": "soak",
        "command": "python benchmarks/soak.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count()},
        "backend": args.backend,
        "capacity_req_per_s": capacity["req_per_s"],
        "capacity_texts_per_s": capacity["texts_per_s"],
        "mean_texts_per_request": capacity["mean_texts_per_request"],
        "steady_texts_per_s": args.steady_load * capacity["texts_per_s"],
        "overload_texts_per_s": args.overload * capacity["texts_per_s"],
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "json"},
        "seconds": time.time() - started,
        "buckets": rows,
        "targets": targets(rec, rows, args),
    }
    out = args.json or ROOT / "runs" / "results" / f"soak-{args.backend}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"capacity {capacity['texts_per_s']:.1f} texts/s ({capacity['req_per_s']:.1f} req/s); "
          f"steady {args.steady_load:g}x, overload {args.overload:g}x")
    for r in rows:
        print(f"{r['bucket']:>3} {r['phase']:<17} ok/s {r['ok_per_s']:6.1f} texts/s {r['texts_per_s']:7.1f} "
              f"p50 {r['p50_ms'] or float('nan'):7.1f} p99 {r['p99_ms'] or float('nan'):7.1f} ms  RSS {r['rss_mib'] or 0:6.0f} MiB  "
              f"health max {r['health_max_ms'] or float('nan'):5.1f} ms  CPU/text {r['server_cpu_ms_per_text'] or float('nan'):5.1f} ms  "
              f"steal {100 * (r['steal_share'] or 0):4.1f}%  {r['statuses']}")
    print(json.dumps(result["targets"], indent=1))
    print(f"results in {out}")
    return 0 if result["targets"]["all_met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
