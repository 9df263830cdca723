"""Dynamic micro-batching as a library object: requests submit texts, one worker runs the model.

Nothing here knows about HTTP: the app starts and stops a MicroBatcher, tells it which requests
are on their way (expect/unexpect) and awaits submit(); a batcher that is not running raises
BatcherUnavailable, which the app answers with 503.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

import numpy as np

from ..errors import PolyheadError
from .metrics import Metrics

logger = logging.getLogger("polyhead.serving")

# How often the model thread hands freed heap memory back to the OS (glibc's malloc_trim). Batches
# of every size and length leave the heap fragmented, and glibc keeps what it freed: without it a
# server's RSS grew from 733 to 1,074 MiB over 20 minutes of mixed traffic
# (benchmarks/results/soak-torch-untrimmed.json; the soak after it in soak-torch-shared-machine.json).
TRIM_INTERVAL_S = 5.0
# A request is refused at once when the texts ahead of it would take longer than this share of its
# deadline at the model's recent rate (the rate is an average; the answer must still travel back).
DEADLINE_MARGIN = 0.8


def _malloc_trim() -> Any:
    """glibc's malloc_trim, or None where there is none (macOS, musl, Windows)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None

EXPECTED_KEY = "polyhead.expected"  # ASGI scope key: this request is counted in MicroBatcher._expected


class BatcherUnavailable(PolyheadError):
    """The batcher takes no work: it is not started yet, or it is shutting down."""

    retry_after: Optional[int] = None  # seconds, for the Retry-After header (None: none sent)
    code: Optional[str] = None  # the error body's "code"


class Overloaded(BatcherUnavailable):
    """The queue holds max_queue_texts already: the request is refused at once (load shedding)."""

    retry_after = 1
    code = "overloaded"


class DeadlineExceeded(BatcherUnavailable):
    """The request was not answered within its deadline (request_timeout_s)."""

    retry_after = 1
    code = "deadline_exceeded"


@dataclass
class Job:
    """One request's texts waiting for a batch."""

    texts: list[str]
    tasks: tuple[str, ...]  # heads this request wants (empty: embeddings only)
    embeddings: bool
    count_tokens: bool
    future: "asyncio.Future[JobResult]"
    enqueued: float = field(default_factory=time.perf_counter)


@dataclass
class JobResult:
    """One request's share of a micro-batch, in its own text order."""

    embeddings: list[Optional[np.ndarray]]
    tasks: list[dict[str, Any]]
    tokens: Optional[list[int]] = None


class MicroBatcher:
    """Merges concurrent requests into one model call: an asyncio queue and a single worker.

    The worker takes the first waiting request, then keeps adding requests until the batch
    holds max_batch_size texts or max_wait_ms have passed, and runs the model once, in one
    dedicated thread. One worker thread means torch is never called concurrently (no lock
    contention, no oversubscribed cores), and while it runs, the next batch fills up.

    The queue is a deque plus an asyncio.Event rather than an asyncio.Queue: on Python < 3.12,
    wait_for(queue.get(), timeout) can lose an item when the timeout and a put coincide.
    """

    def __init__(
        self,
        model: Any,
        max_batch_size: int = 64,
        max_wait_ms: float = 5.0,
        forward_batch_size: int = 64,
        metrics: Optional[Metrics] = None,
        early_start: bool = False,
        max_length: Optional[int] = None,
        max_queue_texts: Optional[int] = None,
        request_timeout_s: Optional[float] = None,
    ) -> None:
        self.model = model
        self.max_queue_texts = max_queue_texts  # None: no bound
        self.request_timeout_s = request_timeout_s  # None: no deadline
        self.early_start = bool(early_start)
        self.max_batch_size = int(max_batch_size)
        self.max_wait = float(max_wait_ms) / 1000.0
        self.forward_batch_size = int(forward_batch_size)
        self.metrics = metrics
        self.tokenizer = model.tokenizer  # both backends expose it (modeling.backend.InferenceModel)
        self.max_length = max_length  # token counts truncate where the model truncates
        self._pending: collections.deque[Job] = collections.deque()
        self._wakeup: Optional[asyncio.Event] = None
        self._task: Optional[asyncio.Task] = None
        self._executor: Optional[ThreadPoolExecutor] = None
        self._accepting = False
        # Requests received (body being read, parsed, validated) that have not submitted yet,
        # as reported through expect()/unexpect(). With early_start, a batch stops waiting
        # as soon as there are none: waiting for company that is not on its way only adds
        # latency (a lone client would pay max_wait_ms on every request).
        self._expected = 0
        # Texts per second the model gets through (a moving average over batches): a request that
        # would wait past its deadline behind the queue is refused at once instead of timing out.
        self.rate: Optional[float] = None
        self._running_texts = 0  # texts in the batch the model is running now
        self._trim = _malloc_trim()
        self._trimmed = time.monotonic()

    def expect(self, scope: dict) -> None:
        """Note a request that will probably submit texts soon (called as it arrives)."""
        scope[EXPECTED_KEY] = True
        self._expected += 1

    def unexpect(self, scope: dict) -> None:
        """The request submitted, or finished without submitting."""
        if scope.pop(EXPECTED_KEY, False):
            self._expected -= 1

    @property
    def pending_texts(self) -> int:
        """Texts waiting for the next batch."""
        return sum(len(j.texts) for j in self._pending)

    @property
    def ready(self) -> bool:
        """True while the worker runs, takes work, and has room in its queue (what /ready reports)."""
        room = self.max_queue_texts is None or self.pending_texts < self.max_queue_texts
        return self.running and self._accepting and room

    @property
    def running(self) -> bool:
        """True while the worker runs (what /health reports)."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the worker in the running event loop."""
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="polyhead-model")
        self._accepting = True
        self._task = asyncio.get_running_loop().create_task(self._worker(), name="polyhead-microbatcher")

    async def stop(self) -> None:
        """Stop taking work, fail whatever still waits, and end the worker."""
        self._accepting = False
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None
        while self._pending:
            job = self._pending.popleft()
            if not job.future.done():
                job.future.set_exception(BatcherUnavailable("the server is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    async def submit(
        self,
        texts: Sequence[str],
        tasks: Sequence[str] = (),
        embeddings: bool = True,
        count_tokens: bool = False,
        scope: Optional[dict] = None,
    ) -> JobResult:
        """Queue texts for the next batch and wait for their results."""
        if scope is not None:
            self.unexpect(scope)
        if not self._accepting or self._wakeup is None:
            raise BatcherUnavailable("the server is not accepting work (starting up or shutting down)")
        waiting = self.pending_texts
        if self.max_queue_texts is not None and waiting + len(texts) > self.max_queue_texts and waiting > 0:
            self._reject("queue_full")
            raise Overloaded(f"the server is overloaded: {waiting} texts are waiting (the limit is {self.max_queue_texts}, "
                             f"--max-queue-texts); retry shortly")
        ahead = waiting + self._running_texts
        if self.request_timeout_s is not None and self.rate and ahead > 0:
            # A margin under the deadline: the rate is an average, and the answer must still travel back.
            expected = (ahead + len(texts)) / self.rate
            if expected > DEADLINE_MARGIN * self.request_timeout_s:
                self._reject("expected_wait")
                raise Overloaded(f"the server is overloaded: the {ahead} texts ahead would take about {expected:.1f} s, "
                                 f"past the {self.request_timeout_s:g} s deadline (--request-timeout); retry shortly")
        future: asyncio.Future[JobResult] = asyncio.get_running_loop().create_future()
        job = Job(list(texts), tuple(tasks), bool(embeddings), bool(count_tokens), future)
        self._pending.append(job)
        self._wakeup.set()
        if self.request_timeout_s is None:
            return await future
        try:
            # shield: a timeout must not cancel the future the worker will still set
            return await asyncio.wait_for(asyncio.shield(future), self.request_timeout_s)
        except asyncio.TimeoutError:
            if job in self._pending:  # not started: its texts are dropped, not run for nobody
                self._pending.remove(job)
            # Started: the worker still sets the result; read it so no "never retrieved" warning.
            future.add_done_callback(lambda f: None if f.cancelled() else f.exception())
            self._reject("deadline")
            raise DeadlineExceeded(f"the request was not answered within {self.request_timeout_s:g} s "
                                   f"(--request-timeout); the server is busy, retry shortly") from None

    def _reject(self, reason: str) -> None:
        if self.metrics is not None:
            self.metrics.inc("polyhead_rejected_total", {"reason": reason})

    async def _next_batch(self) -> list[Job]:
        assert self._wakeup is not None
        while not self._pending:
            self._wakeup.clear()
            await self._wakeup.wait()
        loop = asyncio.get_running_loop()
        batch = [self._pending.popleft()]
        size = len(batch[0].texts)
        deadline = loop.time() + self.max_wait
        try:
            while size < self.max_batch_size:
                if self._pending:
                    nxt = self._pending[0]
                    if size + len(nxt.texts) > self.max_batch_size:
                        break  # it leads the next batch; requests are never split
                    batch.append(self._pending.popleft())
                    size += len(nxt.texts)
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0 or (self.early_start and self._expected <= 0):
                    break  # waited long enough, or no other request is on its way
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), remaining)
                except asyncio.TimeoutError:
                    break
        except asyncio.CancelledError:
            # Stopped while collecting: put the jobs back so stop() answers them (503).
            self._pending.extendleft(reversed(batch))
            raise
        # A request whose client went away is dropped before it costs compute.
        return [j for j in batch if not j.future.done()]

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._next_batch()
            if not batch:
                continue
            started = time.perf_counter()
            self._running_texts = sum(len(j.texts) for j in batch)
            try:
                results = await loop.run_in_executor(self._executor, self.run_batch, batch)
            except asyncio.CancelledError:
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(BatcherUnavailable("the server is shutting down"))
                raise
            except Exception as exc:  # the model failed: fail this batch, keep serving
                logger.exception("model call failed for a batch of %d requests", len(batch))
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            finally:
                self._running_texts = 0
            for job, result in zip(batch, results):
                if not job.future.done():
                    job.future.set_result(result)
            seconds = time.perf_counter() - started
            if seconds > 0:
                rate = sum(len(j.texts) for j in batch) / seconds
                self.rate = rate if self.rate is None else 0.8 * self.rate + 0.2 * rate
            if self.metrics is not None:
                m = self.metrics
                m.observe("polyhead_batch_texts", sum(len(j.texts) for j in batch))
                m.observe("polyhead_batch_requests", len(batch))
                m.observe("polyhead_batch_duration_seconds", time.perf_counter() - started)
                for job in batch:
                    m.observe("polyhead_queue_wait_seconds", started - job.enqueued)

    def run_batch(self, jobs: Sequence[Job]) -> list[JobResult]:
        """Run one model call for every job's texts (in the worker thread) and split the results."""
        texts = [t for job in jobs for t in job.texts]
        wanted: list[str] = []
        for job in jobs:
            wanted += [t for t in job.tasks if t not in wanted]
        need_embeddings = any(job.embeddings for job in jobs)
        embs: list[Optional[np.ndarray]]
        if wanted:
            # One forward pass serves every head any request in the batch asked for.
            preds = self.model.predict(texts, tasks=wanted, batch_size=self.forward_batch_size, embeddings=need_embeddings)
            embs = [p.get("embedding") for p in preds]
            heads = [p.get("tasks", {}) for p in preds]
        elif need_embeddings:
            # No heads wanted: encode() skips character offsets and head decoding.
            # prompt="": the routes already put any prompt in the texts (the default one must not be added twice).
            arr = np.asarray(self.model.encode(texts, batch_size=self.forward_batch_size, prompt=""))
            embs = list(arr)
            heads = [{} for _ in texts]
        else:
            embs = [None] * len(texts)
            heads = [{} for _ in texts]
        self.release_memory()
        counted = [t for job in jobs if job.count_tokens for t in job.texts]
        counts = iter(self.count_tokens(counted)) if counted else iter(())
        out: list[JobResult] = []
        start = 0
        for job in jobs:
            end = start + len(job.texts)
            out.append(
                JobResult(
                    embeddings=[e if job.embeddings else None for e in embs[start:end]],
                    tasks=[{name: h[name] for name in job.tasks if name in h} for h in heads[start:end]],
                    tokens=[next(counts) for _ in job.texts] if job.count_tokens else None,
                )
            )
            start = end
        return out

    def release_memory(self) -> None:
        """Hand freed heap memory back to the OS, at most every TRIM_INTERVAL_S (model thread only)."""
        now = time.monotonic()
        if self._trim is not None and now - self._trimmed >= TRIM_INTERVAL_S:
            self._trimmed = now
            self._trim(0)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens the model reads per text (special tokens included, truncated at max_length)."""
        kwargs: dict[str, Any] = {"truncation": True, "max_length": self.max_length} if self.max_length else {}
        ids = self.tokenizer(list(texts), **kwargs)["input_ids"]
        return [len(x) for x in ids]
