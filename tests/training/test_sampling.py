"""Tests for polyhead.sampling."""
from __future__ import annotations

from collections import Counter

import pytest

from polyhead.training.sampling import STRATEGIES, TaskSampler


def test_strategies():
    assert STRATEGIES == ("round_robin", "proportional", "temperature")


def test_default_epoch_length_and_steps_override():
    s = TaskSampler({"a": 3, "b": 7})
    assert len(s.epoch_schedule(0)) == 10
    assert len(TaskSampler({"a": 3, "b": 7}, steps_per_epoch=25).epoch_schedule(0)) == 25


def test_proportional_share_matches_target():
    s = TaskSampler({"a": 300, "b": 100}, strategy="proportional", steps_per_epoch=20000)
    assert s.probabilities() == pytest.approx({"a": 0.75, "b": 0.25})
    counts = Counter(s.epoch_schedule(0))
    assert counts["a"] / 20000 == pytest.approx(0.75, abs=0.015)


def test_round_robin_exact_alternation():
    s = TaskSampler({"a": 5, "b": 1, "c": 9}, strategy="round_robin")
    assert s.epoch_schedule(0) == ["a", "b", "c"] * 5
    assert s.epoch_schedule(3) == ["a", "b", "c"] * 5
    assert s.probabilities() == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})


def test_round_robin_continues_cycle_across_epochs():
    s = TaskSampler({"a": 1, "b": 1}, strategy="round_robin", steps_per_epoch=5)
    assert s.epoch_schedule(0) == ["a", "b", "a", "b", "a"]
    assert s.epoch_schedule(1) == ["b", "a", "b", "a", "b"]


@pytest.mark.parametrize("strategy", ["proportional", "temperature"])
def test_determinism_per_seed_and_epoch(strategy):
    nb = {"a": 50, "b": 30, "c": 20}
    s1 = TaskSampler(nb, strategy=strategy, seed=7)
    s2 = TaskSampler(nb, strategy=strategy, seed=7)
    assert s1.epoch_schedule(2) == s2.epoch_schedule(2)
    # order of calls does not matter: the schedule is a pure function of (seed, epoch)
    s2.epoch_schedule(0)
    assert s1.epoch_schedule(2) == s2.epoch_schedule(2)
    assert s1.epoch_schedule(0) != s1.epoch_schedule(1)
    assert TaskSampler(nb, strategy=strategy, seed=8).epoch_schedule(2) != s1.epoch_schedule(2)


def test_temperature_probabilities():
    nb = {"a": 400, "b": 100}
    assert TaskSampler(nb, strategy="temperature", temperature=1.0).probabilities() == pytest.approx(
        TaskSampler(nb, strategy="proportional").probabilities()
    )
    # sqrt: 20 vs 10
    assert TaskSampler(nb, strategy="temperature", temperature=2.0).probabilities() == pytest.approx(
        {"a": 2 / 3, "b": 1 / 3}
    )
    flat = TaskSampler({"a": 10_000, "b": 10}, strategy="temperature", temperature=1000.0)
    p = flat.probabilities()
    assert abs(p["a"] - 0.5) < 0.01
    counts = Counter(flat.epoch_schedule(0))
    assert abs(counts["a"] / sum(counts.values()) - 0.5) < 0.02
    # tiny T with huge counts must not overflow
    sharp = TaskSampler({"a": 10**9, "b": 10}, strategy="temperature", temperature=0.01)
    assert sharp.probabilities()["a"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_batches": {"a": 1}, "strategy": "random"}, "unknown sampling strategy"),
        ({"num_batches": {}}, "at least one task"),
        ({"num_batches": {"a": 0, "b": 2}}, "positive integers"),
        ({"num_batches": {"a": -1}}, "positive integers"),
        ({"num_batches": {"a": 2.5}}, "positive integers"),
        ({"num_batches": {"a": 1}, "strategy": "temperature", "temperature": 0.0}, "temperature"),
        ({"num_batches": {"a": 1}, "temperature": -1.0}, "temperature"),
        ({"num_batches": {"a": 1}, "steps_per_epoch": 0}, "steps_per_epoch"),
        ({"num_batches": {"a": 1}, "seed": -3}, "seed"),
    ],
)
def test_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TaskSampler(**kwargs)


def test_negative_epoch_rejected():
    with pytest.raises(ValueError, match="epoch"):
        TaskSampler({"a": 1}).epoch_schedule(-1)
