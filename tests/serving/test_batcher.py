"""MicroBatcher as a library object, without HTTP: what it merges and when, judged by counting model calls."""
from __future__ import annotations

import asyncio
from typing import Any, Sequence

import numpy as np
import pytest

from polyhead.serving import BatcherUnavailable, MicroBatcher

HOUR_MS = 3_600_000  # a max wait no test could sit through: passing proves the batch did not wait for it


class FakeModel:
    """Records every model call; embeddings are [len(text), index-in-call]."""

    def __init__(self, fail_on: str | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on

    def tokenizer(self, texts: list[str], **kwargs: Any) -> dict[str, list[list[int]]]:
        return {"input_ids": [[0] * (len(t.split()) + 2) for t in texts]}

    def encode(self, texts: Sequence[str], batch_size: int = 32, prompt: str | None = None) -> np.ndarray:
        self.calls.append(list(texts))
        if self.fail_on in texts:
            raise RuntimeError("the model broke")
        return np.array([[len(t), i] for i, t in enumerate(texts)], dtype=np.float32)

    def predict(self, texts: Sequence[str], tasks: Sequence[str] = (), batch_size: int = 32, embeddings: bool = True) -> list[dict]:
        vecs = self.encode(texts)
        return [{"embedding": v, "tasks": {t: {"label": f"{t}:{text}"} for t in tasks}} for v, text in zip(vecs, texts)]


async def _settle(rounds: int = 20) -> None:
    """Let every ready task in the loop run (no wall-clock time involved)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def run(coro: Any) -> Any:
    """Run a test coroutine; a hang (the batcher waiting for its max wait) fails instead of blocking."""
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_a_lone_request_does_not_wait_for_company() -> None:
    async def main() -> None:
        model = FakeModel()
        b = MicroBatcher(model, max_batch_size=64, max_wait_ms=HOUR_MS, early_start=True)
        await b.start()
        try:
            result = await b.submit(["alone"], scope={})
        finally:
            await b.stop()
        assert model.calls == [["alone"]]
        assert result.embeddings[0].tolist() == [5.0, 0.0]

    run(main())


def test_a_batch_waits_for_a_request_that_is_on_its_way_and_merges_it() -> None:
    async def main() -> None:
        model = FakeModel()
        b = MicroBatcher(model, max_batch_size=64, max_wait_ms=HOUR_MS, early_start=True)
        await b.start()
        try:
            later: dict = {}
            b.expect(later)  # a second request has arrived and is still being parsed
            first = asyncio.ensure_future(b.submit(["a", "bb"], scope={}))
            await _settle()
            assert model.calls == [] and not first.done(), "the batch ran without the request on its way"
            second = await b.submit(["ccc"], tasks=["topic"], embeddings=False, scope=later)
            got = await first
        finally:
            await b.stop()
        assert model.calls == [["a", "bb", "ccc"]]  # one model call for both requests, in arrival order
        assert [e.tolist() for e in got.embeddings] == [[1.0, 0.0], [2.0, 1.0]]
        assert got.tasks == [{}, {}]  # heads only for the request that asked
        assert second.embeddings == [None] and second.tasks == [{"topic": {"label": "topic:ccc"}}]

    run(main())


def test_requests_are_never_split_and_the_size_limit_holds() -> None:
    async def main() -> None:
        model = FakeModel()
        b = MicroBatcher(model, max_batch_size=3, max_wait_ms=HOUR_MS, early_start=True)
        scopes = [{}, {}, {}]
        for s in scopes:
            b.expect(s)
        await b.start()
        try:
            futures = [asyncio.ensure_future(b.submit(texts, scope=s)) for texts, s in zip((["a", "b"], ["c", "d"], ["e"]), scopes)]
            await asyncio.gather(*futures)
        finally:
            await b.stop()
        assert model.calls == [["a", "b"], ["c", "d", "e"]]

    run(main())


def test_token_counts_and_a_failing_batch_fails_only_itself() -> None:
    async def main() -> None:
        model = FakeModel(fail_on="boom")
        b = MicroBatcher(model, max_batch_size=64, max_wait_ms=0, early_start=True)
        await b.start()
        try:
            with pytest.raises(RuntimeError, match="the model broke"):
                await b.submit(["boom"])
            ok = await b.submit(["one two three"], count_tokens=True)
        finally:
            await b.stop()
        assert ok.tokens == [5]  # the tokenizer's count, special tokens included

    run(main())


def test_not_started_or_stopped_means_unavailable() -> None:
    async def main() -> None:
        b = MicroBatcher(FakeModel(), max_wait_ms=0)
        with pytest.raises(BatcherUnavailable, match="not accepting"):
            await b.submit(["early"])
        await b.start()
        assert b.running
        await b.stop()
        assert not b.running
        with pytest.raises(BatcherUnavailable):
            await b.submit(["late"])

    run(main())
