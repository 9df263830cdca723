"""SIGTERM while the server is busy: it stops accepting connections, answers every request it had
already taken (200), and exits with status 0. Over real HTTP, `polyhead serve` in a subprocess."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

TEXTS = [f"message number {i} about an order that arrived late and a refund that never came" for i in range(64)]


@pytest.mark.slow
def test_sigterm_under_load_finishes_the_requests_it_took_then_exits_cleanly(tiny_model_dir: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("POLYHEAD_API_KEY", None)
    cmd = [sys.executable, "-m", "polyhead.cli", "serve", str(tiny_model_dir), "--port", "0", "--precision", "fp32",
           "--max-batch-size", "8", "--threads", "1"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    banner = ""
    for line in proc.stderr:  # type: ignore[union-attr]
        banner += line
        if "serving" in line:
            break
    port = re.search(r"http://127\.0\.0\.1:(\d+)", banner)
    assert port, banner
    url = f"http://127.0.0.1:{port.group(1)}"
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200

    results: list[object] = []
    started = threading.Barrier(17)

    def client() -> None:
        with httpx.Client(base_url=url, timeout=60) as c:
            started.wait()
            try:
                results.append(c.post("/predict", json={"texts": TEXTS, "embeddings": True}).status_code)
            except httpx.HTTPError as exc:
                results.append(type(exc).__name__)

    threads = [threading.Thread(target=client) for _ in range(16)]
    for t in threads:
        t.start()
    started.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # SIGTERM once the server has taken work and is busy with it
        queued = httpx.get(f"{url}/ready", timeout=10).json().get("queued_texts", 0)
        if queued >= 64:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(timeout=120)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0, banner + rest
    assert len(results) == 16 and all(r == 200 for r in results), results  # nothing taken was dropped
    with pytest.raises(httpx.ConnectError):  # gone: it no longer accepts connections
        httpx.get(f"{url}/health", timeout=5)
