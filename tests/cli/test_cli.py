"""The command line as a user runs it: a real subprocess, real exit codes, no tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "polyhead.cli", *args], input=stdin, capture_output=True, timeout=300
    )


def test_help_lists_commands():
    out = run("--help")
    assert out.returncode == 0
    for cmd in ("encode", "predict", "info", "new"):
        assert cmd in out.stdout.decode()
    assert "--input" in run("predict", "--help").stdout.decode()


def test_predict_prints_every_head_per_line(tiny_model_dir, tmp_path):
    inputs = tmp_path / "in.txt"
    inputs.write_text("Ada Lovelace lived in London.\nThe match was great\n\n", encoding="utf-8")
    out = run("predict", str(tiny_model_dir), "--input", str(inputs), "--precision", "fp32")
    assert out.returncode == 0, out.stderr.decode()
    lines = [json.loads(x) for x in out.stdout.decode().splitlines()]
    assert len(lines) == 3  # the empty line is a text too
    assert lines[0]["text"] == "Ada Lovelace lived in London."
    assert set(lines[0]["tasks"]) == {"topic", "ner"}
    assert lines[0]["tasks"]["topic"]["label"] in ("sports", "politics", "tech")
    assert "embedding" not in lines[0]


def test_predict_from_stdin_with_embeddings(tiny_model_dir):
    out = run("predict", str(tiny_model_dir), "--embeddings", "--tasks", "topic", stdin=b"one\ntwo\n")
    assert out.returncode == 0, out.stderr.decode()
    lines = [json.loads(x) for x in out.stdout.decode().splitlines()]
    assert len(lines) == 2 and len(lines[1]["embedding"]) == 32 and set(lines[1]["tasks"]) == {"topic"}


@pytest.mark.slow  # `make test-slow` (and CI) runs it
def test_info(tiny_model_dir):
    out = run("info", str(tiny_model_dir))
    assert out.returncode == 0
    text = out.stdout.decode()
    assert "topic" in text and "sports, politics, tech" in text and "pooling=mean" in text
    data = json.loads(run("info", str(tiny_model_dir), "--json").stdout)
    assert [t["name"] for t in data["tasks"]] == ["topic", "ner", "sts"]


def _front_matter(text: str) -> dict:
    import yaml

    assert text.startswith("---\n"), text[:200]
    return yaml.safe_load(text[4:].partition("\n---\n")[0])


@pytest.mark.slow  # `make test-slow` (and CI) runs it
def test_info_shows_where_the_model_card_is_and_card_prints_it(tiny_model_dir, tmp_path):
    import shutil

    card = tiny_model_dir / "README.md"
    out = run("info", str(tiny_model_dir))
    assert out.returncode == 0, out.stderr.decode()
    assert f"model card   : {card}" in out.stdout.decode()
    assert json.loads(run("info", str(tiny_model_dir), "--json").stdout)["model_card"] == str(card)
    out = run("info", str(tiny_model_dir), "--card")
    assert out.returncode == 0, out.stderr.decode()
    assert out.stdout.decode() == card.read_text(encoding="utf-8")
    assert _front_matter(out.stdout.decode())["library_name"] == "polyhead"
    # a folder saved before cards existed: --card renders one from its files, and writes nothing
    old = Path(shutil.copytree(tiny_model_dir, tmp_path / "old"))
    (old / "README.md").unlink()
    assert json.loads(run("info", str(old), "--json").stdout)["model_card"] is None
    out = run("info", str(old), "--card")
    assert out.returncode == 0 and "no model card yet" in out.stderr.decode()
    assert "| topic | classification | sports, politics, tech |" in out.stdout.decode()
    assert not (old / "README.md").exists()
    out = run("info", str(tmp_path), "--card")
    assert out.returncode == 1 and "not a polyhead model" in out.stderr.decode()


@pytest.mark.slow  # `make test-slow` (and CI) runs it
def test_polyhead_train_writes_a_card_with_the_dev_scores(tmp_path):
    from train_helpers import write_config

    config = write_config(tmp_path, epochs=1)
    out = run("train", str(config), "--output", str(tmp_path / "out"), "--no-progress")
    assert out.returncode == 0, out.stderr.decode()[-3000:]
    card = run("info", str(tmp_path / "out"), "--card").stdout.decode()
    assert card == (tmp_path / "out" / "README.md").read_text(encoding="utf-8")  # written by train, not rendered here
    dev = json.loads((tmp_path / "out" / "training" / "metrics.json").read_text())["dev"]
    meta = _front_matter(card)
    scores = {r["task"]["name"]: r["metrics"][0]["value"] for r in meta["model-index"][0]["results"]}
    assert scores == pytest.approx({"topic": dev["topic"]["accuracy"], "ner": dev["ner"]["entity_f1"],
                                    "sts": dev["sts"]["spearman"]}, abs=5e-5)
    assert f"| topic | **accuracy** | {dev['topic']['accuracy']:.4f} | – |" in card


@pytest.mark.parametrize(
    "args,stdin,message",
    [
        (("predict", "/nonexistent/model", "x"), None, "is not a folder"),
        (("predict", "{model}"), b"", "input is empty"),
        (("predict", "{model}", "--tasks", "nope", "x"), None, "unknown task"),
        (("info", "{tmp}"), None, "not a polyhead model"),
        (("predict", "{model}", "--input", "{bad}"), None, "not UTF-8"),
        (("predict", "{model}", "--input", "/no/such/file"), None, "does not exist"),
    ],
)
def test_bad_input_gives_one_line_error(tiny_model_dir, tmp_path, args, stdin, message):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok line\n\xff\xfe broken\n")
    args = [a.format(model=tiny_model_dir, tmp=tmp_path, bad=bad) for a in args]
    out = run(*args, stdin=stdin if stdin is not None else b"")
    err = out.stderr.decode()
    assert out.returncode != 0
    assert message in err, err
    assert "Traceback" not in err


@pytest.mark.slow  # `make test-slow` (and CI) runs it
def test_encode_npy_and_jsonl_give_the_same_vectors(tmp_path):
    texts = ["héllo wörld", "", "a third text"]
    npy = tmp_path / "v.npy"
    out = run("encode", *texts, "--output", str(npy), "--precision", "fp32")
    assert out.returncode == 0, out.stderr.decode()
    arr = np.load(npy)
    assert arr.shape == (3, 384) and arr.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(arr, axis=1), 1, atol=1e-5)
    assert np.abs(arr @ arr.T - np.eye(3)).max() > 0.05  # three different vectors, not one repeated
    # The same texts through stdin as JSON lines: same order, same vectors (rounded to 6 decimals).
    out = run("encode", "--precision", "fp32", stdin="\n".join(texts).encode() + b"\n")
    assert out.returncode == 0, out.stderr.decode()
    lines = [json.loads(x) for x in out.stdout.decode().splitlines()]
    assert [x["text"] for x in lines] == texts
    np.testing.assert_allclose(np.array([x["embedding"] for x in lines]), arr, rtol=0, atol=1e-6)


def test_help_is_instant_no_torch_import():
    """`polyhead --help` builds every subcommand's parser without importing torch or numpy."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "polyhead.cli", "--help"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0 and b"encode" in out.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.decode().splitlines() if "|" in line}
    assert "polyhead.cli.options" in imported and "polyhead.cli.commands" in imported
    assert not {"torch", "numpy", "transformers"} & imported


def test_encode_warns_once_on_truncation():
    out = run("encode", "word " * 600, "word " * 700, "--max-length", "32", "--precision", "fp32")
    assert out.returncode == 0
    assert out.stderr.decode().count("truncated") == 1


def test_new_creates_a_model_that_predict_reads(tmp_path):
    folder = tmp_path / "new"
    out = run("new", str(folder), "--task", "topic=classification:a,b", "--task", "ner=token:O,B-X,I-X")
    assert out.returncode == 0, out.stderr.decode()
    pred = run("predict", str(folder), "Hello there", "--precision", "fp32")
    assert pred.returncode == 0, pred.stderr.decode()
    assert set(json.loads(pred.stdout)["tasks"]) == {"topic", "ner"}
    bad = run("new", str(tmp_path / "x"), "--task", "topic=ordinal")
    assert bad.returncode == 1 and "unknown kind" in bad.stderr.decode()
