"""Property-based fuzzing of the config loader: random keys, values, YAML and --set overrides.

Every input ends in a RunConfig (that survives a save/reload round trip) or a one-line
PolyheadError. For a longer hunt: POLYHEAD_FUZZ_EXAMPLES=2000 pytest ... test_fuzz_config.py
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from polyhead import PolyheadError
from polyhead.training.config import (
    DatasetConfig,
    EncoderConfig,
    FreezeConfig,
    RunConfig,
    TaskConfig,
    TrainingConfig,
    config_from_dict,
    load_config,
)

N = int(os.environ.get("POLYHEAD_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck), database=None)

SECTIONS = {"encoder": EncoderConfig, "training": TrainingConfig, "freeze": FreezeConfig}
KEYS = sorted({f.name for cls in (*SECTIONS.values(), TaskConfig, DatasetConfig) for f in dataclasses.fields(cls)} | {"mixed_precision"})
WORDS = ["t", "n", "auto", "bf16", "no", "fp32", "linear", "static", "mean", "token", "classification", "similarity", "O", "x.jsonl", "1e-4", ""]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 5), st.integers(), st.floats(), st.sampled_from(WORDS), st.text(max_size=6), st.dates(),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.one_of(st.sampled_from(KEYS + WORDS), st.integers()), inner, max_size=3)), max_leaves=6)
# Values that fit some field, so that many drawn configs are valid and reach the round trip.
plausible = st.sampled_from([None, True, False, 0, 1, 2, 7, 0.5, 1e-3, "1e-4", "mean", "cls", "auto", "bf16", "fp16", "no", "cosine",
                             "static", "uncertainty", "temperature", "step", "ner", "tsv", ";", [0, 5], ["a", "b"], ["O", "B-X"], {"t": 1.0}])


def _mapping(keys: list[str]) -> st.SearchStrategy[dict]:
    """Mostly known keys with plausible values; now and then any key or any value."""
    key = st.one_of(st.sampled_from(keys), st.sampled_from(keys), st.sampled_from(keys), st.text(max_size=4), st.integers())
    return st.dictionaries(key, st.one_of(plausible, plausible, values), max_size=3)


def _keys(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


@st.composite
def tasks(draw: st.DrawFn) -> dict:
    task = {"name": draw(st.sampled_from(["t", "n", "s", "bad name", ""])), "kind": draw(st.sampled_from(["classification", "token", "ner", "sts", "x"])), "train": "x.jsonl"}
    task.update(draw(_mapping(_keys(TaskConfig))))
    return task


@st.composite
def configs(draw: st.DrawFn) -> dict:
    rare = st.sampled_from([False] * 9 + [True])  # uniform draw: hypothesis favours the ends of integer ranges
    data: dict = {"tasks": draw(values) if draw(rare) else draw(st.lists(tasks(), min_size=1, max_size=3))}
    for name, cls in SECTIONS.items():
        if draw(st.booleans()):
            data[name] = draw(values) if draw(rare) else draw(_mapping(_keys(cls) + (["mixed_precision"] if name == "training" else [])))
    if draw(rare):
        data["datasets"] = draw(st.lists(st.fixed_dictionaries({"name": st.sampled_from(WORDS), "train": st.just("d.jsonl"), "labels": st.dictionaries(st.sampled_from(WORDS), st.sampled_from(WORDS), max_size=2)}), max_size=2))
    if draw(rare):
        data[draw(st.sampled_from(["extra", 7]))] = draw(values)
    return data


paths = st.lists(st.one_of(st.sampled_from(["training", "encoder", "freeze", "tasks", "datasets", "0", "1", "5", "t", "n"] + KEYS), st.text(max_size=3)), min_size=1, max_size=4).map(".".join)
raw_values = st.one_of(st.sampled_from(["abc", "2.5", "0", "-1", "[", "{a: 1", "[1, [2]]", "null", "no", ".inf", "1e-4", "auto", "bf16", "'x", "!!python/tuple [1]", "*a", "&a [1]", "- x", ": :"]), st.text(max_size=8))
overrides = st.lists(st.one_of(st.tuples(paths, raw_values).map("=".join), st.text(max_size=10)), max_size=3)


def _one_line(exc: BaseException) -> None:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message, repr(message)


def _round_trips(cfg: RunConfig) -> None:
    """A built config saves (to_dict, as next to a model) and reloads to the same config."""
    again = config_from_dict(yaml.safe_load(yaml.safe_dump(cfg.to_dict())))
    assert again.to_dict() == cfg.to_dict()


T = {"name": "t", "kind": "classification", "train": "x.jsonl"}


# One input per class of escape the fuzzer found before the declarative checks.
@FUZZ
@given(data=configs())
@example(data={"tasks": [T], "training": {1: 2, "epochs": 1}})  # TypeError: sorting/joining non-string keys
@example(data={"tasks": [T], "training": {"epochs": "abc"}})  # TypeError: '>=' between str and int
@example(data={"tasks": [T], "freeze": {"layers": None}})  # TypeError: '>=' between None and int
@example(data={"tasks": [{**T, "name": ["t"]}]})  # TypeError: unhashable task name
@example(data={"tasks": [None]})  # TypeError: TaskConfig() missing name and kind
@example(data={"tasks": [{**T, "\r": 1}]})  # a message broken over two lines
def test_any_mapping_builds_a_config_or_a_one_line_error(data):
    try:
        cfg = config_from_dict(data)
    except PolyheadError as exc:
        _one_line(exc)
        return
    _round_trips(cfg)


@FUZZ
@given(data=configs(), sets=overrides)
@example(data={"tasks": [T]}, sets=["training.lr=["])  # yaml ParserError
@example(data={"tasks": [T]}, sets=["training.lr=!!python/tuple [1]"])  # yaml ConstructorError
@example(data={"tasks": [T]}, sets=["training.lr=*a"])  # yaml ComposerError
@example(data={"tasks": [T]}, sets=["training.lr=\x01"])  # yaml ReaderError
@example(data={"tasks": [T]}, sets=["tasks.5.kind=x"])  # IndexError
@example(data={"tasks": [T], "training": {"epochs": 1}}, sets=["training.epochs.x=1"])  # AttributeError
@example(data={"tasks": [T], "training": None}, sets=["training.epochs=2"])  # None section: AttributeError
@example(data={"tasks": [T]}, sets=["training.log_every=0"])  # ZeroDivisionError in the loop, later
def test_any_override_builds_a_config_or_a_one_line_error(data, sets):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.yaml"
        try:
            path.write_text(yaml.safe_dump(data), encoding="utf-8")
        except yaml.YAMLError:  # e.g. a date subclass PyYAML cannot represent: not the loader's problem
            return
        try:
            cfg = load_config(path, sets)
        except PolyheadError as exc:
            _one_line(exc)
            return
        _round_trips(cfg)


@FUZZ
@given(text=st.one_of(st.text(max_size=80), st.binary(max_size=80).map(lambda b: b.decode("latin-1")), st.sampled_from(["[" * 5000, "a: &x [*x]", "tasks: !!binary AAAA", "\ufeff{}"])))
@example(text="[" * 5000)  # RecursionError in PyYAML
def test_any_yaml_text_builds_a_config_or_a_one_line_error(text):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_config(path)
        except PolyheadError as exc:
            _one_line(exc)
