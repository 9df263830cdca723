"""Corpus-scale encoding into .npy shards: order, index, atomic resume, several processes."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import make_tiny_encoder

from polyhead import PolyheadError, cli
from polyhead.integrations.streaming import (
    INDEX_FILE,
    count_lines,
    encode_to_shards,
    iter_lines,
    load_shards,
    read_index,
)

LINES = [f"line {i}: the quick brown fox {'jumps ' * (i % 7)}over dog {i}" for i in range(53)]
LINES[5] = ""  # empty lines are texts too: line numbers must stay aligned
LINES[17] = "Ünïcödé 🙂 text"


@pytest.fixture(scope="module")
def encoder():
    return make_tiny_encoder()


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    # CRLF on one line and no final newline: both must still give exactly len(LINES) lines.
    body = "\n".join(LINES[:10]) + "\r\n" + "\n".join(LINES[10:])
    path.write_bytes(body.encode("utf-8"))
    return path


class Counting:
    """Wraps an encoder; counts encode calls and can fail on the n-th one (an interruption)."""

    def __init__(self, inner, fail_on: int | None = None) -> None:
        self.inner, self.fail_on, self.calls = inner, fail_on, 0
        self.dim = inner.dim

    def config_dict(self):
        return self.inner.config_dict()

    @property
    def precision(self):
        return self.inner.precision

    def encode(self, texts, **kw):
        self.calls += 1
        if self.fail_on is not None and self.calls == self.fail_on:
            raise KeyboardInterrupt
        return self.inner.encode(texts, **kw)


def test_line_reading(corpus: Path) -> None:
    assert count_lines(corpus) == len(LINES)
    assert list(iter_lines(corpus)) == LINES
    (corpus.parent / "nl.txt").write_text("a\nb\n")
    assert count_lines(corpus.parent / "nl.txt") == 2


def test_empty_file(encoder, tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    summary = encode_to_shards(encoder, tmp_path / "empty.txt", tmp_path / "out", show_progress=False)
    assert summary["total_lines"] == 0 and summary["shards"] == 0
    assert load_shards(tmp_path / "out").shape == (0, 32)
    assert (tmp_path / "out" / INDEX_FILE).read_text() == ""


def test_shards_cover_every_line_in_order(encoder, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    summary = encode_to_shards(encoder, corpus, out, shard_size=10, batch_size=4, show_progress=False)
    assert summary["total_lines"] == 53 and summary["shards"] == 6 and summary["shards_written"] == 6
    records = [json.loads(x) for x in (out / INDEX_FILE).read_text().splitlines()]
    assert [(r["file"], r["first_line"], r["count"]) for r in records] == [
        (f"shard-{k:05d}.npy", 10 * k, 10 if k < 5 else 3) for k in range(6)
    ]
    vectors = load_shards(out)
    np.testing.assert_allclose(vectors, encoder.encode(LINES), atol=1e-5)
    assert not list(out.glob(".*tmp*"))  # no temporary files left behind


def test_resume_skips_finished_shards(encoder, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    flaky = Counting(encoder, fail_on=4)
    with pytest.raises(KeyboardInterrupt):
        encode_to_shards(flaky, corpus, out, shard_size=10, show_progress=False)
    assert [r["shard"] for r in read_index(out)] == [0, 1, 2]
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*")}
    again = Counting(encoder)
    summary = encode_to_shards(again, corpus, out, shard_size=10, show_progress=False)
    assert again.calls == 3 and summary["shards_skipped"] == 3 and summary["shards_written"] == 3
    assert all(out.joinpath(n).stat().st_mtime_ns == t for n, t in before.items())  # untouched
    np.testing.assert_allclose(load_shards(out), encoder.encode(LINES), atol=1e-5)
    # A finished run resumes to a no-op.
    assert encode_to_shards(Counting(encoder), corpus, out, shard_size=10, show_progress=False)["lines"] == 0


def test_a_different_run_is_refused_unless_starting_over(encoder, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    encode_to_shards(encoder, corpus, out, shard_size=10, show_progress=False)
    with pytest.raises(PolyheadError, match="different run.*shard_size"):
        encode_to_shards(encoder, corpus, out, shard_size=20, show_progress=False)
    summary = encode_to_shards(encoder, corpus, out, shard_size=20, resume=False, show_progress=False)
    assert summary["shards_written"] == 3 and len(list(out.glob("shard-*.npy"))) == 3
    with pytest.raises(PolyheadError, match="process_index"):
        encode_to_shards(encoder, corpus, out, process_index=2, num_processes=2)


def test_processes_split_shards_without_overlap(encoder, corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    a = encode_to_shards(encoder, corpus, out, shard_size=10, show_progress=False, process_index=0, num_processes=2)
    b = encode_to_shards(encoder, corpus, out, shard_size=10, show_progress=False, process_index=1, num_processes=2)
    assert a["shards_written"] == 3 and b["shards_written"] == 3 and a["lines"] + b["lines"] == 53
    np.testing.assert_allclose(load_shards(out), encoder.encode(LINES), atol=1e-5)


def test_cli_routes_a_folder_output_to_shards(encoder, corpus: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "tiny"
    encoder.save_backbone(model_dir)
    out = tmp_path / "emb"
    argv = ["encode", "-m", str(model_dir), "--max-length", "64", "--precision", "fp32", "--input", str(corpus)]
    assert cli.main(argv + ["--output", f"{out}/", "--shard-size", "20"]) == 0
    assert len(read_index(out)) == 3
    # An existing folder is recognised without the trailing slash; --no-resume starts over.
    assert cli.main(argv + ["--output", str(out), "--shard-size", "7", "--no-resume"]) == 0
    assert len(read_index(out)) == 8
    np.testing.assert_allclose(load_shards(out), encoder.encode(LINES), atol=1e-5)
    assert cli.main(["encode", "one", "two", "--output", f"{out}/"]) == 1  # texts need --input FILE


def test_accelerate_launch_two_cpu_processes(encoder, tmp_path: Path) -> None:
    """`accelerate launch --multi_gpu --num_processes 2` on a CPU-only machine: torchrun starts 2
    processes, polyhead gives accelerate cpu=True, and each process encodes its own shards."""
    pytest.importorskip("accelerate")
    model_dir = tmp_path / "tiny"
    encoder.save_backbone(model_dir)
    lines = [f"text number {i} " + "word " * (i % 11) for i in range(137)]
    corpus = tmp_path / "big.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "shards"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "-m", "polyhead.cli", "encode", "-m", str(model_dir), "--max-length", "64", "--precision", "fp32",
        "--input", str(corpus), "--output", f"{out}/", "--shard-size", "10", "--batch-size", "8",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "process 1/2" in proc.stderr and "process 2/2" in proc.stderr
    records = read_index(out)
    covered = sorted(line for r in records for line in range(r["first_line"], r["first_line"] + r["count"]))
    assert covered == list(range(len(lines)))  # every input line exactly once
    assert [json.loads(x)["shard"] for x in (out / INDEX_FILE).read_text().splitlines()] == list(range(14))
    np.testing.assert_allclose(load_shards(out), encoder.encode(lines), atol=1e-5)
