"""polyhead.io: the one rule for replacing what exists, atomic writes, and readable read errors."""
from __future__ import annotations

import json

import pytest

from polyhead import PolyheadError
from polyhead.io import (
    check_new_file,
    check_replaceable_dir,
    read_json,
    read_text,
    replace_dir,
    write_atomic_dir,
    write_json_atomic,
)


def test_missing_or_empty_folders_may_be_replaced(tmp_path):
    check_replaceable_dir(tmp_path / "new", ["polyhead.json"], "a model")
    (tmp_path / "empty").mkdir()
    check_replaceable_dir(tmp_path / "empty", ["polyhead.json"], "a model")


def test_a_folder_polyhead_made_may_be_replaced(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "polyhead.json").write_text("{}")
    (tmp_path / "m" / "other").write_text("x")
    check_replaceable_dir(tmp_path / "m", ["polyhead.json"], "a model")


def test_any_other_folder_is_refused_unless_forced(tmp_path):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"\xff")
    with pytest.raises(PolyheadError, match=r"photos is not empty and is not a model \(no polyhead.json\).*--force"):
        check_replaceable_dir(tmp_path / "photos", ["polyhead.json"], "a model")
    check_replaceable_dir(tmp_path / "photos", ["polyhead.json"], "a model", force=True)


def test_without_markers_only_an_empty_folder_may_be_replaced(tmp_path):
    (tmp_path / "m").mkdir()
    check_replaceable_dir(tmp_path / "m", [], "")
    (tmp_path / "m" / "polyhead.json").write_text("{}")
    with pytest.raises(PolyheadError, match=r"m is not empty; choose another folder or pass --force"):
        check_replaceable_dir(tmp_path / "m", [], "")
    check_replaceable_dir(tmp_path / "m", [], "", force=True)


def test_a_file_is_never_replaced_by_a_folder(tmp_path):
    (tmp_path / "f").write_text("keep me")
    for force in (False, True):
        with pytest.raises(PolyheadError, match="is a file, not a folder"):
            check_replaceable_dir(tmp_path / "f", ["polyhead.json"], "a model", force=force)


def test_existing_files_are_not_overwritten_unless_forced(tmp_path):
    out = tmp_path / "out.jsonl"
    check_new_file(out)
    out.write_text("precious")
    with pytest.raises(PolyheadError, match="already exists.*--force"):
        check_new_file(out)
    check_new_file(out, force=True)
    with pytest.raises(PolyheadError, match="is a folder"):
        check_new_file(tmp_path, force=True)


def test_write_atomic_dir_replaces_only_when_the_new_folder_is_complete(tmp_path):
    final = tmp_path / "run"
    write_atomic_dir(final, lambda d: (d / "a").write_text("1"))
    assert (final / "a").read_text() == "1"

    def broken(d):
        (d / "a").write_text("half")
        raise RuntimeError("crash while writing")

    with pytest.raises(RuntimeError):
        write_atomic_dir(final, broken)
    assert (final / "a").read_text() == "1"  # the old folder survives a failed write
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no temp folders left behind


def test_replace_dir_swaps_folders(tmp_path):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "x").write_text("old")
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "x").write_text("new")
    replace_dir(tmp_path / "new", tmp_path / "old")
    assert (tmp_path / "old" / "x").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]


def test_read_errors_are_one_line_and_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(PolyheadError, match="bad.json is not valid JSON"):
        read_json(bad)
    (tmp_path / "list.json").write_text("[1]")
    with pytest.raises(PolyheadError, match="must hold a JSON object"):
        read_json(tmp_path / "list.json")
    with pytest.raises(PolyheadError, match="missing file"):
        read_json(tmp_path / "nope.json")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(PolyheadError, match="not UTF-8"):
        read_text(tmp_path / "latin1.txt")
    for err in (PolyheadError,):
        with pytest.raises(err, match="is a folder"):
            read_text(tmp_path)


def test_write_json_atomic_round_trips(tmp_path):
    write_json_atomic(tmp_path / "a.json", {"k": [1, 2]})
    assert json.loads((tmp_path / "a.json").read_text()) == {"k": [1, 2]}
    assert read_json(tmp_path / "a.json") == {"k": [1, 2]}
