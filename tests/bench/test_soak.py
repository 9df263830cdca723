"""A short run of benchmarks/soak.py on the tiny model: steady load, overload past a small queue
bound (the server sheds with 503 at once, /health keeps answering), recovery; buckets and targets."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from script_loader import load_script

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_short_soak_sheds_overload_and_recovers(tiny_model_dir, tmp_path):
    out = tmp_path / "soak.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "soak.py"), "--model-dir", str(tiny_model_dir),
               "--routes", "predict,embeddings,embed,similarity,rerank", "--minutes", "4", "--overload-minutes", "2",
               "--recovery-minutes", "1", "--bucket-seconds", "2", "--calibrate-seconds", "3", "--overload", "3",
               "--max-queue-texts", "128", "--request-timeout", "3", "--json", str(out)]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    result = json.loads(out.read_text())
    phases = {b["phase"] for b in result["buckets"]}
    assert {"steady", "overload", "recovery"} <= {p for ph in phases for p in ph.split("+")}, run.stdout + run.stderr
    assert all(b["rss_mib"] for b in result["buckets"] if b["answers"])
    targets = result["targets"]
    assert targets["errors_other_than_503"]["count"] == 0
    overload = targets["overload"]
    assert overload["shed_503"] > 0 and overload["ok"] > 0  # it served what it could and shed the rest
    # Every request got an answer, 200 or 503: none timed out or found the server gone. (How fast,
    # against the deadline, is for the full benchmark on an otherwise idle machine.)
    statuses = {s for b in result["buckets"] for s in b["statuses"]}
    assert statuses <= {"200", "503"}, statuses
    assert any(b["statuses"].get("200") for b in result["buckets"] if b["phase"] == "recovery")
    assert result["capacity_req_per_s"] > 0 and run.returncode in (0, 1)
    # The capacity is in texts; the steady load offers --steady-load of it (0.5 by default).
    assert result["capacity_texts_per_s"] > result["capacity_req_per_s"]
    assert result["steady_texts_per_s"] == pytest.approx(0.5 * result["capacity_texts_per_s"])
    # Each bucket with answers says what the server's CPU spent per text and how much the host stole.
    busy = [b for b in result["buckets"] if b["answers"] and b["server_cpu_ms_per_text"] is not None]
    assert busy and all(b["server_cpu_ms_per_text"] > 0 and 0 <= b["steal_share"] <= 1 for b in busy)


def _soak_module():
    return load_script("benchmarks/soak.py")


def test_mean_texts_per_request_follows_the_mix():
    """The request rate that offers a text rate divides by the mix's mean texts per request: the sizes'
    mean for the per-text routes, and two texts per pair (at least one pair) for the pair routes."""
    import statistics

    soak = _soak_module()
    assert soak.mean_texts_per_request({"predict": 1.0}) == pytest.approx(statistics.fmean(soak.SIZES), rel=0.03)
    pairs = statistics.fmean(2 * max(1, n // 2) for n in soak.SIZES)
    assert soak.mean_texts_per_request({"similarity": 1.0}) == pytest.approx(pairs, rel=0.03)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_arrivals_carry_the_texts_of_their_period(seed):
    """Every period offers text_rate x seconds texts (to within its last request), spread over the
    period: the luck of the draw changes when texts arrive, not how many."""
    import random

    soak = _soak_module()
    plan = soak.arrivals(random.Random(seed), soak.text_pool(), soak.ROUTES, 30.0, 60.0)
    texts = sum(req[3] for _, req in plan)
    assert 1800 <= texts < 1800 + max(soak.SIZES)
    offsets = [at for at, _ in plan]
    assert offsets == sorted(offsets) and offsets[0] == 0.0 and offsets[-1] < 60.0
    assert offsets[len(offsets) // 2] == pytest.approx(30.0, abs=10.0)  # spread over the period, not bunched


def test_cpu_counters_read_this_process_and_the_machine():
    soak = _soak_module()
    before = soak.server_cpu_seconds(os.getpid())
    stop = time.process_time() + 0.3
    while time.process_time() < stop:  # burn 0.3 s of CPU
        pass
    assert soak.server_cpu_seconds(os.getpid()) - before >= 0.2
    steal, total = soak.machine_cpu()
    assert 0 <= steal <= total and total > 0


class _Client:
    """Records when each request was sent and what it carried; answers 200 at once."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str, str]] = []

    async def post(self, path, json, timeout):  # noqa: A002 - httpx's own argument name
        self.sent.append((time.monotonic(), path, repr(json)))
        return type("Answer", (), {"status_code": 200})()


@pytest.mark.parametrize("replay", [0.5, 0.0])
def test_open_loop_replays_one_period_of_arrivals(replay):
    """With replay, every period sends the first period's requests again at the same offsets;
    without, the arrivals are drawn afresh for the whole phase."""
    import random

    soak = _soak_module()
    rec, client = soak.Recorder(), _Client()
    pool = soak.text_pool()
    soak.mean_texts_per_request(soak.ROUTES)  # computed once per mix: not inside the timed part
    start = time.monotonic()
    asyncio.run(soak.open_loop(client, rec, pool, text_rate=400.0, seconds=1.5, deadline=5.0, seed=7, replay=replay))
    if replay:
        plan = soak.arrivals(random.Random(7), pool, soak.ROUTES, 400.0, replay)
        expected = [(k * replay + at, req) for k in range(3) for at, req in plan]
    else:
        expected = soak.arrivals(random.Random(7), pool, soak.ROUTES, 400.0, 1.5)
    assert len(expected) > 30 and len(client.sent) == len(expected) == len(rec.answers)
    assert [(path, body) for _, path, body in client.sent] == [(req[1], repr(req[2])) for _, req in expected]
    late = max(t - start - at for (t, _, _), (at, _) in zip(client.sent, expected))
    assert late < 0.1  # each sent at its planned time (on a loaded CI machine, within 100 ms)
