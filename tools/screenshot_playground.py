"""Take the README's playground screenshot: serve MODEL_DIR on loopback, type texts, capture the page.

    python tools/screenshot_playground.py runs/example docs/playground.png
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

TEXTS = [
    "Hello, Anna Schmidt from Berlin here: I want a refund for my broken Zephyr X2 headphones.",
    "Thanks, the replacement laptop from VoltCart works perfectly!",
    "Can DHL deliver my order to Madrid on Saturday?",
]


def main(model_dir: str, out: str) -> int:
    """Serve, drive Chromium, save a full-page PNG."""
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "polyhead.cli", "serve", model_dir, "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(url + "/health", timeout=1)
                break
            except OSError:
                time.sleep(0.3)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                args=["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
            )
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            page.goto(url + "/")
            page.wait_for_selector("table.tasks")
            page.fill("#texts", "\n".join(TEXTS))
            page.press("#texts", "Control+Enter")
            page.wait_for_selector("table.heat")
            page.wait_for_timeout(500)
            page.screenshot(path=out, full_page=True)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
