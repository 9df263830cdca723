"""Data reading: formats, multi-task datasets with missing labels, and early, located errors."""
from __future__ import annotations

import json

import pytest

from polyhead.training.config import config_from_dict
from polyhead.training.data import DataError, build_sources, collate
from polyhead.modeling.heads import IGNORE_INDEX

from conftest import make_tiny_encoder


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return str(path)


def _cfg(tasks, datasets=()):
    return config_from_dict({"tasks": tasks, "datasets": list(datasets)})


def test_one_dataset_labels_two_tasks_with_missing_labels(tmp_path):
    rows = [
        {"text": "refund please", "intent": "refund", "sentiment": "negative"},
        {"text": "love it", "sentiment": "positive"},  # no intent label
        {"text": "where is my box", "intent": "shipping", "sentiment": None},
        {"text": "no labels at all"},  # labels no task: skipped and counted
    ]
    cfg = _cfg(
        [{"name": "intent", "kind": "classification"}, {"name": "sentiment", "kind": "classification"}],
        [{"name": "inbox", "train": _jsonl(tmp_path / "t.jsonl", rows), "labels": {"intent": "intent", "sentiment": "sentiment"}}],
    )
    sources, specs = build_sources(cfg)
    src = sources[0]
    assert len(src.splits["train"]) == 3 and src.skipped["train"] == 1
    assert specs["intent"].labels == ["refund", "shipping"]
    batch = collate(src.splits["train"], src, specs, make_tiny_encoder().tokenizer, 32)
    assert batch["labels"]["intent"].tolist() == [0, IGNORE_INDEX, 1]
    assert batch["labels"]["sentiment"].tolist() == [0, 1, IGNORE_INDEX]


def test_token_labels_go_to_first_subtoken_only(tmp_path):
    conll = tmp_path / "t.conll"
    conll.write_text("-DOCSTART- O\n\nSchwarzenegger B-PER\nvisited O\nReykjavik B-LOC\n", encoding="utf-8")
    cfg = _cfg([{"name": "ner", "kind": "token", "train": str(conll)}])
    sources, specs = build_sources(cfg)
    tok = make_tiny_encoder().tokenizer
    batch = collate(sources[0].splits["train"], sources[0], specs, tok, 32)
    labels = batch["labels"]["ner"][0].tolist()
    ids = batch["inputs"]["input_ids"][0].tolist()
    labelled = [(tok.convert_ids_to_tokens(i), specs["ner"].labels[lab]) for i, lab in zip(ids, labels) if lab != IGNORE_INDEX]
    assert [t for _, t in labelled] == ["B-PER", "O", "B-LOC"]
    assert len(ids) > 5  # the names split into several pieces; only the first of each is labelled


def test_csv_with_configured_columns(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("body,cls\nhello there,a\n\"quoted, text\",b\n", encoding="utf-8")
    cfg = _cfg([{"name": "t", "kind": "classification", "train": str(p), "text_column": "body", "label_column": "cls"}])
    sources, specs = build_sources(cfg)
    assert [e.text for e in sources[0].splits["train"]] == ["hello there", "quoted, text"]


def test_jsonl_token_task_with_tokens_and_tags(tmp_path):
    p = _jsonl(tmp_path / "n.jsonl", [{"tokens": ["Ada", "codes"], "tags": ["B-PER", "O"]}])
    sources, specs = build_sources(_cfg([{"name": "ner", "kind": "token", "train": p}]))
    assert sources[0].splits["train"][0].text == "Ada codes"


@pytest.mark.parametrize(
    "setup,message",
    [
        ("unknown_dev_label", r"dev.jsonl:2: unknown label 'c'"),
        ("token_count", r"n.jsonl:1: 2 tokens but 3 tags"),
        ("missing_column", r"x.jsonl:1: missing column 'text'"),
        ("empty", r"e.jsonl: the file is empty"),
        ("not_utf8", r"b.jsonl:2: not UTF-8"),
        ("bad_json", r"j.jsonl:1: invalid JSON"),
        ("bad_tag", r"tag 'PER' is not IOB"),
        ("bad_score", r"score 'high' is not a number"),
        ("conll_one_column", r"c.conll:2: expected 'token ... TAG'"),
    ],
)
def test_bad_data_fails_early_with_file_and_line(tmp_path, setup, message):
    t = tmp_path
    train = _jsonl(t / "train.jsonl", [{"text": "x", "label": "a"}, {"text": "y", "label": "b"}])
    tasks = {
        "unknown_dev_label": [{"name": "t", "kind": "classification", "train": train,
                               "dev": _jsonl(t / "dev.jsonl", [{"text": "x", "label": "a"}, {"text": "z", "label": "c"}])}],
        "token_count": [{"name": "n", "kind": "token", "train": _jsonl(t / "n.jsonl", [{"tokens": ["a", "b"], "tags": ["O", "O", "O"]}])}],
        "missing_column": [{"name": "t", "kind": "classification", "train": _jsonl(t / "x.jsonl", [{"txt": "x", "label": "a"}])}],
        "bad_json": [{"name": "t", "kind": "classification", "train": str(t / "j.jsonl")}],
        "empty": [{"name": "t", "kind": "classification", "train": str(t / "e.jsonl")}],
        "not_utf8": [{"name": "t", "kind": "classification", "train": str(t / "b.jsonl")}],
        "bad_tag": [{"name": "n", "kind": "token", "train": _jsonl(t / "g.jsonl", [{"tokens": ["Ada"], "tags": ["PER"]}])}],
        "bad_score": [{"name": "s", "kind": "similarity", "train": _jsonl(t / "s.jsonl", [{"sentence1": "a", "sentence2": "b", "score": "high"}])}],
        "conll_one_column": [{"name": "n", "kind": "token", "train": str(t / "c.conll")}],
    }[setup]
    (t / "e.jsonl").write_text("\n\n", encoding="utf-8")
    (t / "b.jsonl").write_bytes(b'{"text": "ok", "label": "a"}\n{"text": "\xff", "label": "b"}\n')
    (t / "j.jsonl").write_text("{not json}\n", encoding="utf-8")
    (t / "c.conll").write_text("Ada B-PER\nlonely\n", encoding="utf-8")
    with pytest.raises(DataError, match=message):
        build_sources(_cfg(tasks))


def test_task_without_data_is_a_config_error():
    from polyhead import PolyheadError

    with pytest.raises(PolyheadError, match="has no training data"):
        _cfg([{"name": "t", "kind": "classification"}])


def test_yaml_exponent_without_dot_is_a_number(tmp_path):
    from polyhead.training.config import load_config

    p = tmp_path / "c.yaml"
    p.write_text("tasks: [{name: t, kind: classification, train: x.jsonl}]\ntraining: {lr: 1e-4, head_lr: fast}\n")
    from polyhead import PolyheadError

    with pytest.raises(PolyheadError, match="training.head_lr: expected a positive number \\(or null\\), got 'fast'"):
        load_config(p)
    assert load_config(p, ["training.head_lr=2e-3"]).training.lr == 1e-4


def _build_one(path, kind="classification", **task):
    return build_sources(_cfg([{"name": "t", "kind": kind, "train": str(path), **task}]))


def test_conll_tag_column_outside_a_line_is_a_located_error(tmp_path):
    p = tmp_path / "c.conll"
    p.write_text("Ada NNP B-PER\ncodes VBZ O\n\nBob B-PER\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"c.conll:1: tag_column 3 is outside this line's 3 columns"):
        _build_one(p, "token", tag_column=3)
    with pytest.raises(DataError, match=r"c.conll:4: tag_column 2 is outside this line's 2 columns"):
        _build_one(p, "token", tag_column=2)  # lines 1-2 have it, line 4 does not


def test_json_strings_may_hold_line_separator_characters(tmp_path):
    p = tmp_path / "t.jsonl"  # JSON allows raw U+2028 / U+0085 inside strings; they do not end a line
    p.write_text('{"text": "one\u2028two\x85three", "label": "a"}\n{"text": "x", "label": "b"}\r\n', encoding="utf-8")
    sources, _ = _build_one(p)
    assert [e.text for e in sources[0].splits["train"]] == ["one\u2028two\x85three", "x"]
    assert [e.line for e in sources[0].splits["train"]] == [1, 2]


def test_csv_with_a_long_document_reads(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("text,label\n" + "word " * 40_000 + ",a\nshort,b\n", encoding="utf-8")
    sources, _ = _build_one(p)
    assert len(sources[0].splits["train"][0].text) == 200_000


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("deep.jsonl", "[" * 100_000 + "\n", r"deep.jsonl:1: invalid JSON \(nested too deeply\)"),
        ("big.jsonl", '{"text": "x", "label": ' + "7" * 5000 + "}\n", r"big.jsonl:1: invalid JSON \(Exceeds the limit"),
        ("list.jsonl", '{"text": "x", "label": ["a"]}\n', r"list.jsonl:1: label \['a'\] for task 't' must be a string or a number"),
        ("sur.jsonl", '{"text": "bad \\ud800", "label": "a"}\n', r"sur.jsonl:1: text holds an unpaired surrogate"),
    ],
)
def test_malformed_files_are_located_errors(tmp_path, name, content, message):
    p = tmp_path / name
    p.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as info:
        _build_one(p)
    assert "\n" not in str(info.value)


def test_csv_module_errors_are_located(tmp_path, monkeypatch):
    monkeypatch.setattr("polyhead.training.data.CSV_FIELD_LIMIT", 1000)
    p = tmp_path / "d.tsv"
    p.write_text("text\tlabel\nok\ta\n" + "x" * 2000 + "\tb\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d.tsv:3: not valid TSV \(field larger than field limit \(1000\)\)"):
        _build_one(p)


def test_csv_lone_carriage_return_is_a_line_break_not_a_crash(tmp_path):
    p = tmp_path / "d.csv"  # old Mac line endings: csv's own rule for files opened with newline=""
    p.write_bytes(b"text,label\rhello,a\rbye,b\r")
    sources, _ = _build_one(p)
    assert [e.text for e in sources[0].splits["train"]] == ["hello", "bye"]


@pytest.mark.parametrize("score", ["NaN", "Infinity", '"inf"'])
def test_similarity_scores_must_be_finite(tmp_path, score):
    p = tmp_path / "s.jsonl"
    p.write_text(f'{{"sentence1": "a", "sentence2": "b", "score": {score}}}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"s.jsonl:1: score .* is not a finite number"):
        _build_one(p, "similarity")


def test_a_header_with_a_line_break_names_the_columns_on_one_line(tmp_path):
    """A quoted CSV header cell may hold a line break; the missing-column message shows it escaped."""
    p = tmp_path / "d.csv"
    p.write_text('"bo\ndy",label\nhello,a\n', encoding="utf-8")
    with pytest.raises(DataError) as err:
        build_sources(_cfg([{"name": "t", "kind": "classification", "train": str(p)}]))
    assert "\n" not in str(err.value) and "missing column 'text' (has: 'bo\\ndy', 'label')" in str(err.value)
