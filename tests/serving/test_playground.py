"""The playground page, driven in a real headless Chromium against the real server over HTTP."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from polyhead import load

from train_helpers import write_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SRC = str(Path(__file__).resolve().parents[2] / "src")


def _need_browser() -> None:
    have = Path(CHROMIUM).exists()
    try:
        import playwright  # noqa: F401
    except ImportError:
        have = False
    if not have:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium and the playwright Python client (.ci/run does)")
        pytest.skip("needs /usr/bin/chromium (apt-get install chromium) and `pip install playwright`")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A tiny model trained for one epoch (so it has training results), NER head forced to PER."""
    from polyhead.training.config import load_config
    from polyhead.training.loop import train

    root = tmp_path_factory.mktemp("playground")
    cfg = load_config(write_config(root, epochs=1), [])
    train(cfg, root / "model", progress=False)
    model = load(root / "model")
    # The page is under test, not the tiny model: make the NER head tag every word B-PER.
    head = model.heads["ner"].net[-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.fill_(-5.0)
        head.bias[model.tasks["ner"].labels.index("B-PER")] = 5.0
    model.save(root / "model")
    return root / "model"


@pytest.fixture(scope="module")
def server(model_dir):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "polyhead.cli", "serve", str(model_dir), "--port", str(port), "--precision", "fp32",
         "--max-chars", "200"],
        env={**os.environ, "PYTHONPATH": SRC}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode())
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError("server did not start")
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def page(server):
    _need_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"],
        )
        pg = browser.new_page(viewport={"width": 1200, "height": 1100})
        yield pg
        browser.close()


def test_page_shows_heads_entities_heatmap_and_model_card(server, page):
    page.goto(server + "/")
    page.wait_for_selector("table.tasks")  # the model card loaded from /info
    page.wait_for_selector("#training-card h2")  # then, by a second request, the training results
    card = page.inner_text("#card-body")
    for expected in ("topic", "ner", "sts", "sports, tech", "mean", "Evaluation"):
        assert expected in card, expected
    page.fill("#texts", "Anna lives in Paris\nthe team won the match")
    page.press("#texts", "Control+Enter")
    page.wait_for_selector(".card >> nth=1")
    cards = page.query_selector_all("#cards .card")
    assert len(cards) == 2
    first = cards[0].inner_text()
    assert "topic" in first and ("sports" in first or "tech" in first)
    ents = page.query_selector_all('#cards .card >> nth=0 >> mark.ent[data-type="PER"]')
    assert ents and ents[0].inner_text().startswith("Anna")
    assert "PER" in page.inner_text("#legend")
    cells = page.query_selector_all("#heatmap table.heat td")
    assert len(cells) == 4
    assert cells[0].inner_text() == "1.00"
    assert page.query_selector("img#curves") is not None
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)


def test_server_errors_appear_in_the_page(server, page):
    page.goto(server + "/")
    page.fill("#texts", "x" * 300)  # over --max-chars 200
    page.click("#run")
    page.wait_for_selector("#error:not([hidden])")
    message = page.inner_text("#error")
    assert "413" in message and "200" in message
    page.fill("#texts", "   ")
    page.click("#run")
    assert "at least one text" in page.inner_text("#error")


def test_rank_these_panel_calls_rerank_and_shows_sorted_results(server, page):
    page.goto(server + "/")
    page.fill("#rerank-query", "Anna lives in Paris")
    page.fill("#rerank-docs", "the team won the match\nAnna lives in Paris\nstocks fell today")
    with page.expect_request(lambda r: r.url.endswith("/rerank") and r.method == "POST") as req:
        page.click("#rerank-run")
    assert req.value.post_data_json["documents"][1] == "Anna lives in Paris"
    page.wait_for_selector("#rerank-results:not([hidden]) li")
    items = page.query_selector_all("#rerank-results li")
    assert len(items) == 3
    scores = [float(li.query_selector(".num").inner_text()) for li in items]
    assert scores == sorted(scores, reverse=True)
    assert items[0].get_attribute("data-index") == "1" and scores[0] == pytest.approx(1.0, abs=1e-3)
    page.fill("#rerank-docs", "  ")
    page.click("#rerank-run")
    assert "at least one document" in page.inner_text("#rerank-error")


def test_rank_these_panel_is_in_the_assets():
    """Without a browser: the page has the panel, and its script posts to /rerank."""
    static = Path(SRC) / "polyhead" / "serving" / "static"
    html = (static / "playground.html").read_text()
    js = (static / "playground.js").read_text()
    for element in ('id="rerank-panel"', 'id="rerank-query"', 'id="rerank-docs"', 'id="rerank-run"', 'id="rerank-results"'):
        assert element in html, element
    assert 'call("POST", "/rerank"' in js and '$("rerank-run").addEventListener("click", rerank)' in js


def test_page_assets_are_served_locally(server):
    html = urllib.request.urlopen(server + "/").read().decode()
    assert "http://" not in html and "https://" not in html  # nothing fetched from the network
    for asset in ("/static/playground.js", "/static/playground.css"):
        with urllib.request.urlopen(server + asset) as r:
            assert r.status == 200
