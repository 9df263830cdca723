"""A full disk (or a read-only folder) while writing an --output file or an encode shard: one line
naming the file, what was left as it was, and what to do; no temporary file left behind. The
failure is injected at the fsync of the atomic write, where a full disk shows up."""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest

from polyhead import io as polyhead_io
from polyhead.cli.main import main

from train_helpers import tiny_encoder_dir


def disk_full(monkeypatch: pytest.MonkeyPatch, after: int = 0) -> None:
    """Let `after` atomic writes through, then fail every later one with ENOSPC."""
    seen = {"n": 0}
    real = polyhead_io.os.fsync

    def fsync(fd):
        seen["n"] += 1
        if seen["n"] > after:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr(polyhead_io.os, "fsync", fsync)


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("polyhead: error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.mark.parametrize("name", ["out.jsonl", "out.npy"])
def test_encode_output_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, capsys, name):
    encoder = tiny_encoder_dir(tmp_path)
    out = tmp_path / "results" / name
    disk_full(monkeypatch)
    assert main(["encode", "-m", str(encoder), "a text", "another", "-o", str(out)]) == 1
    err = one_line_error(capsys)
    assert f"could not write {out}: No space left on device; {out} was not created; free space" in err
    assert not out.exists() and not any(p.name.startswith(".") for p in out.parent.iterdir())


def test_predict_output_replaced_with_force_on_a_full_disk_keeps_the_old_file(tmp_path, monkeypatch, capsys, tiny_model_dir):
    out = tmp_path / "predictions.jsonl"
    out.write_text('{"earlier": true}\n')
    disk_full(monkeypatch)
    assert main(["predict", str(tiny_model_dir), "the team won", "-o", str(out), "--force"]) == 1
    assert f"{out} is as it was" in one_line_error(capsys)
    assert json.loads(out.read_text()) == {"earlier": True}


def test_evaluate_output_on_a_read_only_folder_is_one_line(tmp_path, monkeypatch, capsys):
    from train_helpers import write_config

    config = write_config(tmp_path, epochs=1, max_steps=1)
    assert main(["train", str(config), "-o", str(tmp_path / "model"), "--no-progress"]) == 0
    capsys.readouterr()

    def read_only(fd):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(polyhead_io.os, "fsync", read_only)
    out = tmp_path / "eval.json"
    assert main(["evaluate", str(tmp_path / "model"), str(config), "--split", "dev", "--output", str(out)]) == 1
    err = one_line_error(capsys)
    assert f"could not write {out}: Read-only file system; {out} was not created" in err


def test_encode_shards_on_a_full_disk_keep_the_finished_ones_and_continue(tmp_path, monkeypatch, capsys):
    encoder = tiny_encoder_dir(tmp_path)
    lines = tmp_path / "in.txt"
    lines.write_text("".join(f"text number {i}\n" for i in range(10)))
    out = tmp_path / "shards"
    command = ["encode", "-m", str(encoder), "-i", str(lines), "-o", f"{out}/", "--shard-size", "4"]
    disk_full(monkeypatch, after=3)  # the run record and the first shard (.npy + .json) get through
    assert main(command) == 1
    err = one_line_error(capsys)
    assert "could not write shard" in err and "finished shard(s) are kept" in err and "run the same command again" in err
    monkeypatch.undo()
    assert main(command) == 0  # the rest, the first shard skipped
    capsys.readouterr()
    matrices = sorted(out.glob("*.npy"))
    assert sum(np.load(m).shape[0] for m in matrices) == 10
