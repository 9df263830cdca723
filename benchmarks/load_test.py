"""Load test for `polyhead serve`: throughput and p50/p99 latency at several concurrencies,
with server-side micro-batching on and off.

The script starts the server itself (a subprocess on a free 127.0.0.1 port), talks to it
only over loopback, and is bounded twice: --requests per concurrency level and a
--time-cap in seconds per level (plus --max-seconds for the whole run).

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/load_test.py            # bundled all-MiniLM-L6-v2 + 3 heads
    .venv/bin/python benchmarks/load_test.py --model-dir my-model --endpoint embeddings

Without --model-dir it builds a model folder from the bundled all-MiniLM-L6-v2 with three
untrained heads (intent, sentiment, NER): untrained heads cost the same compute as trained ones.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

SUBJECTS = ["Anna", "The delivery driver", "Our support team", "Mr. Okafor from Lagos", "A customer in Berlin", "The new manager"]
VERBS = ["asked about", "complained about", "was happy with", "wants a refund for", "could not find", "wrote a review of"]
OBJECTS = [
    "the order",
    "the late parcel that was supposed to arrive on Monday",
    "the blue jacket bought last week in the Paris store",
    "a subscription that renewed without any warning and charged the wrong card twice",
    "the app",
    "shipping costs to Canada",
]


def make_texts(n: int = 72) -> list[str]:
    """Deterministic customer-message-like sentences of mixed length (about 5 to 25 words)."""
    out = []
    for i in range(n):
        s, v, o = SUBJECTS[i % 6], VERBS[(i // 6) % 6], OBJECTS[(i * 5 + i // 36) % 6]
        out.append(f"{s} {v} {o}.")
    return out


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_default_model(folder: Path) -> Path:
    """The bundled all-MiniLM-L6-v2 with intent, sentiment and NER heads (untrained), saved to folder."""
    import torch

    from polyhead import Encoder, MultiTaskModel, TaskSpec

    torch.manual_seed(0)
    model = MultiTaskModel(
        Encoder(device="cpu"),
        [
            TaskSpec("intent", "classification", ["order_status", "refund", "shipping", "complaint"]),
            TaskSpec("sentiment", "classification", ["negative", "positive"]),
            TaskSpec("ner", "token", ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG", "I-ORG"]),
        ],
    )
    return model.save(folder)


class Server:
    """`polyhead serve` in a subprocess on a free loopback port."""

    def __init__(self, model_dir: Path, max_batch_size: int, max_wait_ms: float, precision: str, extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [
            sys.executable, "-m", "polyhead.cli", "serve", str(model_dir),
            "--host", "127.0.0.1", "--port", str(self.port),
            "--max-batch-size", str(max_batch_size), "--max-wait-ms", str(max_wait_ms),
            "--precision", precision, *extra,
        ]  # fmt: skip
        env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
        env.pop("POLYHEAD_API_KEY", None)
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Poll /health until it answers (or fail with the server's log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"server not ready after {timeout:.0f} s:\n{self.output()}")

    def output(self) -> str:
        """What the server printed."""
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        """Terminate and reap the server."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def request_body(endpoint: str, texts: list[str]) -> tuple[str, dict[str, Any]]:
    """(path, JSON body) for one request."""
    if endpoint == "embeddings":
        return "/v1/embeddings", {"model": "bench", "input": texts}
    return "/predict", {"texts": texts, "embeddings": False}


async def run_level(url: str, endpoint: str, concurrency: int, n_requests: int, time_cap: float, texts_per_request: int, pool: list[str]) -> dict[str, Any]:
    """Send up to n_requests with `concurrency` clients in flight (stopping at time_cap); summarise."""
    latencies: list[float] = []
    errors = 0
    issued = 0
    deadline = time.perf_counter() + time_cap
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal issued, errors
            while issued < n_requests and time.perf_counter() < deadline:
                k = issued
                issued += 1
                texts = [pool[(k * texts_per_request + j) % len(pool)] for j in range(texts_per_request)]
                path, body = request_body(endpoint, texts)
                t0 = time.perf_counter()
                try:
                    resp = await client.post(path, json=body)
                    ok = resp.status_code == 200
                except httpx.HTTPError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - t0)
                else:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    lat = np.array(latencies) * 1000.0 if latencies else np.array([float("nan")])
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "seconds": wall,
        "req_per_s": len(latencies) / wall,
        "texts_per_s": len(latencies) * texts_per_request / wall,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def batch_stats(url: str) -> tuple[float, float, float]:
    """(batches, requests in batches, texts in batches) so far, from /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text

    def value(name: str) -> float:
        m = re.search(rf"^{name} ([0-9.e+-]+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    return value("polyhead_batch_requests_count"), value("polyhead_batch_requests_sum"), value("polyhead_batch_texts_sum")


def measure(label: str, server: Server, args: argparse.Namespace, concurrency: int, pool: list[str], seconds: float) -> dict[str, Any]:
    """One concurrency level against one server, with the batch sizes it produced."""
    b0 = batch_stats(server.url)
    row = asyncio.run(run_level(server.url, args.endpoint, concurrency, args.requests, seconds, args.texts_per_request, pool))
    b1 = batch_stats(server.url)
    batches = max(b1[0] - b0[0], 1.0)
    row.update(mode=label, mean_batch_requests=(b1[1] - b0[1]) / batches, mean_batch_texts=(b1[2] - b0[2]) / batches)
    print(
        f"  [{label}] c={concurrency:<3} {row['requests']} req in {row['seconds']:.1f}s: {row['req_per_s']:.1f} req/s, "
        f"p50 {row['p50_ms']:.1f} ms, p99 {row['p99_ms']:.1f} ms, {row['mean_batch_requests']:.1f} req/batch",
        file=sys.stderr,
    )
    return row


def run_all(args: argparse.Namespace, model_dir: Path, modes: list[str], pool: list[str], budget_end: float) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Start one server per mode, then run each concurrency level on every server in turn.

    Interleaving (level 1 on, level 1 off, level 8 on, ...) rather than all of "on" then all
    of "off" means both modes meet the same background load when the machine is shared; an
    idle server costs no CPU.
    """
    servers: dict[str, Server] = {}
    rows: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    try:
        for mode in modes:
            size = args.max_batch_size if mode == "on" else 1
            print(f"starting a server with micro-batching {mode} (--max-batch-size {size}, --max-wait-ms {args.max_wait_ms:g})", file=sys.stderr)
            servers[mode] = Server(model_dir, size, args.max_wait_ms, args.precision)
        for mode, server in servers.items():
            server.wait_ready()
            info = httpx.get(f"{server.url}/info", timeout=10).json()
            # Warm-up: first-call costs (allocations, kernel choice) stay out of the figures.
            asyncio.run(run_level(server.url, args.endpoint, 8, 32, 30, args.texts_per_request, pool))
        for c in args.levels:
            for mode, server in servers.items():
                remaining = budget_end - time.monotonic()
                if remaining < 2:
                    print(f"  [{mode}] skipping concurrency {c}: --max-seconds reached", file=sys.stderr)
                    continue
                rows.append(measure(mode, server, args, c, pool, min(args.time_cap, remaining)))
    finally:
        for server in servers.values():
            server.stop()
    return rows, info


def print_tables(rows: list[dict[str, Any]], levels: list[int]) -> str:
    """Markdown tables: every measurement, then batching on vs off."""
    out = [
        "| micro-batching | concurrency | requests | errors | req/s | texts/s | p50 ms | p99 ms | requests/batch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows, key=lambda r: (r["mode"] != "on", r["concurrency"])):
        out.append(
            f"| {r['mode']} | {r['concurrency']} | {r['requests']} | {r['errors']} | {r['req_per_s']:.1f} | {r['texts_per_s']:.1f} "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['mean_batch_requests']:.1f} |"
        )
    by = {(r["mode"], r["concurrency"]): r for r in rows}
    out += ["", "| concurrency | req/s on / off | p50 on / off | p99 on / off |", "|---:|---:|---:|---:|"]
    for c in levels:
        on, off = by.get(("on", c)), by.get(("off", c))
        if on and off:
            out.append(
                f"| {c} | {on['req_per_s'] / off['req_per_s']:.2f}x | {on['p50_ms'] / off['p50_ms']:.2f}x | {on['p99_ms'] / off['p99_ms']:.2f}x |"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """Run the load test and print the tables."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", type=Path, default=None, help="a saved polyhead model (default: bundled encoder + 3 untrained heads)")
    p.add_argument("--endpoint", choices=["predict", "embeddings"], default="predict", help="predict = every head, no embeddings in the answer")
    p.add_argument("--levels", type=lambda s: [int(x) for x in s.split(",")], default=[1, 8, 32], help="concurrency levels (default 1,8,32)")
    p.add_argument("--requests", type=int, default=300, help="requests per level (default 300)")
    p.add_argument("--time-cap", type=float, default=20.0, help="seconds per level at most (default 20)")
    p.add_argument("--max-seconds", type=float, default=170.0, help="whole-run budget; later levels are skipped past it (default 170)")
    p.add_argument("--texts-per-request", type=int, default=1)
    p.add_argument("--max-batch-size", type=int, default=64, help="batching 'on' setting (default 64); 'off' is --max-batch-size 1")
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--modes", default="on,off", help="on, off or both (default on,off)")
    p.add_argument("--json", type=Path, default=None, help="also write the measurements here")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    budget_end = time.monotonic() + args.max_seconds
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    pool = make_texts()

    with tempfile.TemporaryDirectory(prefix="polyhead-load-") as tmp:
        model_dir = args.model_dir
        if model_dir is None:
            print("building the default model folder (bundled all-MiniLM-L6-v2 + intent, sentiment, ner heads)", file=sys.stderr)
            model_dir = build_default_model(Path(tmp) / "model")
        modes = [m.strip() for m in args.modes.split(",") if m.strip()]
        if not modes or any(m not in ("on", "off") for m in modes):
            p.error("--modes takes on, off or on,off")
        rows, info = run_all(args, model_dir, modes, pool, budget_end)

    tasks = ", ".join(t["name"] for t in info.get("tasks", [])) or "none"
    print(
        f"model: {info.get('encoder')} ({info.get('dimensions')}-d; heads: {tasks}); precision {info.get('precision')} on {info.get('device')}; "
        f"endpoint /{'v1/embeddings' if args.endpoint == 'embeddings' else 'predict'}, {args.texts_per_request} text(s) per request; "
        f"on = --max-batch-size {args.max_batch_size} --max-wait-ms {args.max_wait_ms:g}, off = --max-batch-size 1"
    )
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"machine: {cpu_name()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"1-min load average {load_before:.2f} before, {load_after:.2f} after (includes this test)"
    )
    print()
    print(print_tables(rows, args.levels))
    if args.json:
        args.json.write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
