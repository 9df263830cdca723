"""Ray Data batch inference (polyhead.integrations.ray) and `polyhead encode --engine ray`.

One local Ray cluster (2 CPUs) serves the whole module; the tiny random BERT keeps each job to
seconds (most of it is two actor processes importing torch). Rows from the actors must equal
in-process `predict()`: embeddings within 1e-5 (fp32), identical labels and entity spans.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from conftest import make_tiny_encoder  # noqa: E402

from polyhead import PolyheadError, load  # noqa: E402
from polyhead.integrations.ray import (  # noqa: E402
    PolyheadPredictor,
    polyhead_errors,
    predict_dataset,
    require_ray,
    unwrap_error,
)

pytestmark = pytest.mark.ray

TOL = 1e-5
N = 200
NAMES = ["Anna Schmidt", "Bob", "Carla Diaz", "Dmitri", "Eve"]
PLACES = ["Berlin", "Paris", "London", "Lagos", "Lima"]


def corpus(n: int = N) -> list[dict]:
    """n rows {id, text}: varied lengths, names and places (entities for the token head)."""
    rows = []
    for i in range(n):
        text = f"{NAMES[i % 5]} flew from {PLACES[i % 5]} to {PLACES[(i + 2) % 5]} on day {i}." + " Really." * (i % 7)
        rows.append({"id": i, "text": text})
    return rows


@pytest.fixture(scope="session")
def ray_cluster():
    """A local 2-CPU Ray cluster for the session, shut down at the end."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    ctx = ray.data.DataContext.get_current()
    # Start both actors before any block is handed out, so that two actors share this small job
    # (by default the first ready actor may take every block while the second still imports torch).
    ctx.wait_for_min_actors_s = 300
    ctx.enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    """A copy of the tiny model folder with an fp32 ONNX export (as tests/onnx does)."""
    pytest.importorskip("onnxruntime")
    from polyhead.cli.commands import cmd_export

    folder = tmp_path_factory.mktemp("ray-export") / "model"
    shutil.copytree(tiny_model_dir, folder)
    args = argparse.Namespace(model_dir=str(folder), format="onnx", quantize=None, output=None, force=False)
    assert cmd_export(args) == 0
    return folder


def check_rows(rows: list[dict], reference: list[dict], ner: bool = True) -> None:
    """Every id exactly once, and each row equal to the in-process prediction for its text."""
    ids = [r["id"] for r in rows]
    assert sorted(ids) == list(range(N)), "every id exactly once"
    by_id = {r["id"]: r for r in rows}
    for i, ref in enumerate(reference):
        row = by_id[i]
        assert row["text"] == ref["text"]
        np.testing.assert_allclose(np.asarray(row["embedding"], dtype=np.float32), ref["embedding"], atol=TOL)
        topic = ref["tasks"]["topic"]
        assert row["topic_label"] == topic["label"]
        assert row["topic_score"] == pytest.approx(topic["score"], abs=TOL)
        assert list(row["topic_scores"]) == list(topic["scores"])  # label order kept
        for label, p in topic["scores"].items():
            assert row["topic_scores"][label] == pytest.approx(p, abs=TOL)
        if ner:
            got = [(e["text"], e["type"], e["start_char"], e["end_char"]) for e in row["ner_entities"]]
            want = [(e["text"], e["type"], e["start_char"], e["end_char"]) for e in ref["tasks"]["ner"]["entities"]]
            assert got == want
            for e, w in zip(row["ner_entities"], ref["tasks"]["ner"]["entities"]):
                assert e["score"] == pytest.approx(w["score"], abs=TOL)


def run_two_actors(model_dir: Path, **kwargs) -> tuple[list[dict], object]:
    ds = ray.data.from_items(corpus(), override_num_blocks=8)
    out = predict_dataset(
        ds, model_dir, tasks=None, concurrency=2, rows_per_call=25, worker_column="_worker",
        precision="fp32", device="cpu", **kwargs,
    )
    with polyhead_errors():
        rows = out.take_all()
    return rows, out.schema()


def check_workers(rows: list[dict]) -> None:
    """The rows were made by at least two actor processes, none of them this (driver) process."""
    workers = {r["_worker"] for r in rows}
    pids = {int(w.rsplit(":", 1)[1]) for w in workers}
    assert len(pids) >= 2, f"one actor did all the work: {workers}"
    assert os.getpid() not in pids


def test_torch_rows_equal_in_process_predict_on_two_actors(ray_cluster, tiny_model_dir: Path) -> None:
    rows, schema = run_two_actors(tiny_model_dir)
    texts = [r["text"] for r in corpus()]
    reference = load(tiny_model_dir, device="cpu").predict(texts)
    check_rows(rows, reference)
    check_workers(rows)
    # Fixed Arrow types: a float32 fixed-size list, a struct of label probabilities, entity structs;
    # similarity heads (sts) need pairs, so they add no column.
    types = dict(zip(schema.names, schema.types))
    assert types["embedding"] == pa.list_(pa.float32(), 32)
    assert types["topic_scores"] == pa.struct([(lab, pa.float32()) for lab in ["sports", "politics", "tech"]])
    assert pa.types.is_list(types["ner_entities"])
    assert [f.name for f in types["ner_entities"].value_type] == ["text", "type", "start_char", "end_char", "score"]
    assert list(schema.names)[:2] == ["id", "text"] and not any(n.startswith("sts") for n in schema.names)


def test_onnx_rows_equal_in_process_predict_on_two_actors(ray_cluster, exported: Path) -> None:
    from polyhead.onnx import OnnxModel

    rows, _ = run_two_actors(exported, backend="onnx", onnx_variant="fp32")
    texts = [r["text"] for r in corpus()]
    reference = OnnxModel.load(exported, variant="fp32", threads=1).predict(texts)
    check_rows(rows, reference)
    check_workers(rows)


def test_encoder_only_folder_gives_embeddings_only(ray_cluster, tmp_path: Path) -> None:
    from polyhead import Encoder

    enc = make_tiny_encoder()
    enc.save_backbone(tmp_path / "enc")
    ds = ray.data.from_items(corpus(20), override_num_blocks=2)
    out = predict_dataset(ds, tmp_path / "enc", concurrency=1, precision="fp32", device="cpu",
                          encoder_kwargs={"max_length": 64})
    rows = sorted(out.take_all(), key=lambda r: r["id"])
    assert list(rows[0]) == ["id", "text", "embedding"]
    ref = Encoder(tmp_path / "enc", max_length=64, device="cpu").encode([r["text"] for r in rows])
    np.testing.assert_allclose(np.stack([r["embedding"] for r in rows]), ref, atol=TOL)


def test_threads_follow_the_actors_cpus(ray_cluster, tiny_model_dir: Path) -> None:
    Predictor = ray.remote(num_cpus=2)(PolyheadPredictor)
    actor = Predictor.remote(str(tiny_model_dir), tasks=[], precision="fp32", device="cpu")
    facts = ray.get(actor.describe.remote())
    ray.kill(actor)
    assert facts["threads"] == 2 and facts["torch_threads"] == 2 and facts["tasks"] == []


@pytest.mark.parametrize("kwargs, message", [
    ({"model_dir": "/no/such/model"}, "model folder /no/such/model does not exist"),
    ({"text_column": "body"}, "no column 'body' in the dataset (it has id, text)"),
])
def test_bad_model_or_column_fails_the_job_with_one_line(ray_cluster, tiny_model_dir: Path, kwargs, message) -> None:
    ds = ray.data.from_items(corpus(10))
    out = predict_dataset(ds, **{"model_dir": tiny_model_dir, "concurrency": 1, "device": "cpu", **kwargs})
    with pytest.raises(PolyheadError) as info:
        with polyhead_errors():
            out.take_all()
    assert message in str(info.value)
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


def test_unwrap_error_reads_rays_wrapped_messages() -> None:
    assert unwrap_error(ValueError("x")) is None
    wrapped = RuntimeError("ray::MapWorker.__init__()\n  File ...\npolyhead.errors.PolyheadError: bad thing here\n")
    assert str(unwrap_error(wrapped)) == "bad thing here"
    original = PolyheadError("plain")
    assert unwrap_error(RuntimeError("x").with_traceback(None)) is None
    try:
        raise RuntimeError("outer") from original
    except RuntimeError as exc:
        assert unwrap_error(exc) is original


def test_missing_ray_is_one_line_with_the_install_hint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys) -> None:
    from polyhead import cli

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(PolyheadError, match=r"pip install 'polyhead\[ray\]'"):
        require_ray()
    (tmp_path / "in.jsonl").write_text('{"text": "hi"}\n')
    rc = cli.main(["encode", "--engine", "ray", "--input", str(tmp_path / "in.jsonl"), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and len(err.splitlines()) == 1 and "pip install 'polyhead[ray]'" in err


# -- the CLI -----------------------------------------------------------------------------
def write_inputs(folder: Path) -> list[dict]:
    rows = corpus(60)
    folder.mkdir()
    pq.write_table(pa.Table.from_pylist(rows[:35]), folder / "a.parquet")
    pq.write_table(pa.Table.from_pylist(rows[35:]), folder / "b.parquet")
    (folder / "all.jsonl").write_text("".join(json.dumps({"id": r["id"], "body": r["text"]}) + "\n" for r in rows))
    return rows


@pytest.mark.slow  # `make test-slow` (and CI) runs it
def test_cli_parquet_and_jsonl_end_to_end(ray_cluster, tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    from polyhead import cli

    rows = write_inputs(tmp_path / "in")
    reference = load(tiny_model_dir, device="cpu").predict([r["text"] for r in rows])
    common = ["-m", str(tiny_model_dir), "--actors", "1", "--precision", "fp32", "--device", "cpu"]

    out = tmp_path / "out-parquet"
    rc = cli.main(["encode", "--engine", "ray", "--input", str(tmp_path / "in" / "*.parquet"), "--output", str(out),
                   "--tasks", "topic", *common])
    err = capsys.readouterr().err
    assert rc == 0 and "encoded 60 rows from 2 parquet file(s)" in err, err
    table = pq.read_table(out)
    assert table.column_names == ["id", "text", "embedding", "topic_label", "topic_score", "topic_scores"]
    got = sorted(table.to_pylist(), key=lambda r: r["id"])
    assert [r["id"] for r in got] == list(range(60))
    for row, ref in zip(got, reference):
        np.testing.assert_allclose(row["embedding"], ref["embedding"], atol=TOL)
        assert row["topic_label"] == ref["tasks"]["topic"]["label"]

    # An existing output folder is refused before any work, unless --force.
    rc = cli.main(["encode", "--engine", "ray", "--input", str(tmp_path / "in" / "*.parquet"), "--output", str(out), *common])
    err = capsys.readouterr().err
    assert rc == 1 and "is not empty" in err and "--force" in err

    out = tmp_path / "out-jsonl"
    rc = cli.main(["encode", "--engine", "ray", "--input", str(tmp_path / "in" / "all.jsonl"), "--output", str(out),
                   "--text-column", "body", "--tasks", "all", *common])
    err = capsys.readouterr().err
    assert rc == 0 and "encoded 60 rows from 1 jsonl file(s)" in err, err
    lines = [json.loads(line) for f in sorted(out.iterdir()) for line in f.read_text().splitlines() if line.strip()]
    assert sorted(r["id"] for r in lines) == list(range(60))
    by_id = {r["id"]: r for r in lines}
    for i, ref in enumerate(reference):
        np.testing.assert_allclose(by_id[i]["embedding"], ref["embedding"], atol=1e-4)  # JSON keeps 10 digits
        assert by_id[i]["topic_label"] == ref["tasks"]["topic"]["label"]
        spans = [(e["type"], e["start_char"], e["end_char"]) for e in by_id[i]["ner_entities"]]
        assert spans == [(e["type"], e["start_char"], e["end_char"]) for e in ref["tasks"]["ner"]["entities"]]


def test_cli_errors_are_one_line(ray_cluster, tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    from polyhead import cli

    write_inputs(tmp_path / "in")
    base = ["encode", "--engine", "ray", "--actors", "1", "--device", "cpu"]
    cases = [
        (["--input", str(tmp_path / "in" / "all.jsonl"), "--output", str(tmp_path / "o1"), "-m", str(tiny_model_dir)],
         "no column 'text' in the dataset (it has id, body)"),
        (["--input", str(tmp_path / "in" / "*.parquet"), "--output", str(tmp_path / "o2"), "-m", str(tmp_path / "nope")],
         "does not exist"),
        (["--input", str(tmp_path / "none" / "*.parquet"), "--output", str(tmp_path / "o3")], "no input files match"),
        (["--input", str(tmp_path / "in" / "*"), "--output", str(tmp_path / "o4")], "the inputs mix formats"),
    ]
    for extra, message in cases:
        rc = cli.main(base + extra)
        err = capsys.readouterr().err.strip()
        assert rc == 1, err
        assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "o1").exists()  # a failed job leaves no output folder
    # Options only the ray engine reads are refused by the local engine.
    assert cli.main(["encode", "--tasks", "topic", "hello"]) == 1
    assert "go(es) with --engine ray" in capsys.readouterr().err
