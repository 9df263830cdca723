"""Property-based fuzzing of the data readers: any file ends in a valid result or a one-line DataError.

Each test is bounded (a few seconds on a busy 2-core box). For a longer hunt:
POLYHEAD_FUZZ_EXAMPLES=2000 pytest -q -p no:cacheprovider tests/training/test_fuzz_data.py
"""
from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from polyhead import PolyheadError
from polyhead.training.config import config_from_dict
from polyhead.training.data import build_sources, collate

from conftest import make_tiny_encoder

N = int(os.environ.get("POLYHEAD_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck), database=None)
TOKENIZER = make_tiny_encoder().tokenizer

COLUMNS = ["text", "label", "tokens", "tags", "sentence1", "sentence2", "score", "other"]
LABELS = ["a", "b", "O", "B-PER", "I-PER", "B-", "PER", ""]
# Text that stresses line splitting, CSV quoting and decoding: separators JSON allows inside strings.
texts = st.text(alphabet=st.sampled_from(list("ab ,;\t\"'\\{}[]-") + ["\u2028", "\x85", "\r", "\x00", "é", "\ud800"]), max_size=12)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.floats(allow_nan=True), texts, st.sampled_from(LABELS))
values = st.one_of(scalars, st.lists(st.one_of(scalars, st.sampled_from(LABELS)), max_size=4), st.dictionaries(texts, scalars, max_size=2))


@st.composite
def jsonl_lines(draw: st.DrawFn) -> bytes:
    rows = draw(st.lists(st.dictionaries(st.sampled_from(COLUMNS), values, max_size=5), min_size=0, max_size=6))
    lines = [json.dumps(r, ensure_ascii=draw(st.booleans())) for r in rows]
    lines += draw(st.lists(st.sampled_from(["", "  ", "[1]", "{", "null", "[" * 3000, '{"text": 1e999}', "1" * 5000]), max_size=2))
    return "\n".join(draw(st.permutations(lines))).encode("utf-8", "surrogatepass")


@st.composite
def delimited_lines(draw: st.DrawFn, delim: str) -> bytes:
    header = draw(st.lists(st.sampled_from(COLUMNS), min_size=0, max_size=5))
    rows = draw(st.lists(st.lists(st.one_of(texts, st.sampled_from(LABELS)), max_size=6), max_size=6))
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delim)
    for row in [header] + rows:
        writer.writerow(row)
    text = buf.getvalue()
    if draw(st.booleans()):
        text += draw(st.sampled_from(['"unclosed', "x" * 200_000, "\x00", "a" + delim * 9]))
    return text.encode("utf-8", "surrogatepass")


@st.composite
def conll_lines(draw: st.DrawFn) -> bytes:
    words = st.sampled_from(["Ada", "codes", "-DOCSTART-", "x", "é", "\u2028", "\x85"])
    lines = draw(st.lists(st.one_of(st.just(""), st.lists(st.one_of(words, st.sampled_from(LABELS[:6])), max_size=4).map(" ".join)), max_size=10))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


files = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=40).map(lambda b: b'{"text": "ok", "label": "a"}\n' + b),
    jsonl_lines(), delimited_lines(","), delimited_lines("\t"), conll_lines(),
)
FMT_EXT = {"jsonl": ".jsonl", "csv": ".csv", "tsv": ".tsv", "conll": ".conll"}


def _one_line(exc: BaseException) -> None:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message, repr(message)


def _case(content: bytes, fmt: str = "jsonl", kind: str = "classification", tag_column: int = -1) -> dict:
    return {"content": content, "dev": None, "fmt": fmt, "kind": kind, "labels": None, "tag_column": tag_column, "delimiter": None}


# One input per class of escape the fuzzer found (each raised something other than a PolyheadError).
TWO = b'{"text": "x", "label": "a"}\n{"text": "y", "label": "b"}\n'
FOUND = [
    _case(b"[" * 3000),  # RecursionError in json
    _case(TWO + b'{"text": 1' + b"1" * 5000 + b"}"),  # ValueError: an int of more than 4300 digits
    _case(b"Ada B-PER\ncodes O\n", "conll", "token", tag_column=3),  # IndexError: tag_column outside the line
    _case(b"text,label\n" + b"x" * 200_000 + b",a\nok,b\n", "csv"),  # csv.Error: field larger than field limit
    _case(b"text,label\r\nab\rc,a\r\nok,b\r\n", "csv"),  # csv.Error: new-line character seen in unquoted field
    _case(TWO + b'{"text": "\\ud800", "label": "a"}\n'),  # TypeError in the tokenizer: unpaired surrogate
]


@FUZZ
@given(
    content=files,
    dev=st.one_of(st.none(), files),
    fmt=st.sampled_from(list(FMT_EXT)),
    kind=st.sampled_from(["classification", "token", "similarity"]),
    labels=st.one_of(st.none(), st.just(["a", "b"]), st.just(["O", "B-PER", "I-PER"])),
    tag_column=st.integers(-4, 3),
    delimiter=st.sampled_from([None, ";", "|"]),
)
@example(**FOUND[0])
@example(**FOUND[1])
@example(**FOUND[2])
@example(**FOUND[3])
@example(**FOUND[4])
@example(**FOUND[5])
def test_any_file_gives_examples_or_a_one_line_error(content, dev, fmt, kind, labels, tag_column, delimiter):
    """jsonl/csv/tsv/conll and pair files: random bytes, wrong columns, empty/huge lines, bad labels."""
    with tempfile.TemporaryDirectory() as d:
        train = Path(d) / f"train{FMT_EXT[fmt]}"
        train.write_bytes(content)
        task = {"name": "t", "kind": kind, "train": str(train), "tag_column": tag_column, "delimiter": delimiter}
        if labels is not None and kind != "similarity":
            task["labels"] = labels
        if dev is not None:
            (Path(d) / f"dev{FMT_EXT[fmt]}").write_bytes(dev)
            task["dev"] = str(Path(d) / f"dev{FMT_EXT[fmt]}")
        try:
            cfg = config_from_dict({"tasks": [task]})
            sources, specs = build_sources(cfg)
        except PolyheadError as exc:
            _one_line(exc)
            return
        for src in sources:  # what the reader accepted must also batch
            for examples in src.splits.values():
                assert examples
                collate(examples, src, specs, TOKENIZER, 16)


@FUZZ
@given(rows=st.lists(st.dictionaries(st.sampled_from(["text", "intent", "sentiment", "tokens", "ner"]), values, max_size=5), min_size=1, max_size=6))
def test_multi_task_dataset_rows_give_examples_or_a_one_line_error(rows):
    """One dataset labelling three tasks, with missing, null, mistyped and unknown labels."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "inbox.jsonl"
        path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8", errors="surrogatepass")
        cfg = {
            "tasks": [{"name": "intent", "kind": "classification"}, {"name": "sentiment", "kind": "classification", "labels": ["a", "b"]},
                      {"name": "ner", "kind": "token"}],
            "datasets": [{"name": "inbox", "train": str(path), "labels": {"intent": "intent", "sentiment": "sentiment", "ner": "ner"}}],
        }
        try:
            sources, specs = build_sources(config_from_dict(cfg))
        except PolyheadError as exc:
            _one_line(exc)
            return
        collate(sources[0].splits["train"], sources[0], specs, TOKENIZER, 16)
