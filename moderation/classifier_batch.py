"""The async front of the abuse classifier: one batched pass for many calls' utterances.

Every call's moderation awaits `batcher.judge(words)`. Requests wait in a bounded queue;
a batch closes `batch_wait_ms` after its oldest request arrived, or as soon as
`batch_max` utterances wait, and runs as one `AbuseClassifier.judge_many()` in the given
concurrent.futures executor (never on the event loop): all the batch's sentences in one
scorer call, then the leave-one-out variants of every flagged window in one more (the
scorer splits each into forward passes of forward_batch sequences). One batch runs at a
time: on a CPU, torch already spreads one pass over its threads, and requests arriving
meanwhile make the next batch bigger rather than competing for the same cores.

Overload: when queue_max requests are waiting, the oldest waiting one is dropped
(overflow = "drop_oldest": it is the stalest, its audio the closest to playout) or the
new one refused ("refuse"); the caller gets ClassifierOverloaded either way, never an
unbounded queue. A caller that is cancelled while waiting leaves the queue; one cancelled
while its batch runs just does not get the result. A failing batch fails each of its
requests with the same exception.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import logging
import time
from dataclasses import dataclass
from typing import Literal, Protocol

from moderation.classifier_config import ClassifierConfig
from moderation.hits import Hit

__all__ = ["ClassifierBatcher", "ClassifierOverloaded", "BatchStats"]

log = logging.getLogger(__name__)


class ClassifierOverloaded(RuntimeError):
    """The classifier's queue is full: this utterance was refused or dropped unjudged."""


class _Judge(Protocol):
    def judge_many(self, utterances: list[list[str]]) -> list[list[Hit]]: ...


@dataclass
class BatchStats:
    requests: int = 0  # judge() calls accepted into the queue
    batches: int = 0  # judge_many() runs
    utterances: int = 0  # utterances judged in them
    max_batch: int = 0
    refused: int = 0  # refused at the door (overflow = "refuse")
    dropped: int = 0  # dropped from the queue (overflow = "drop_oldest")
    cancelled: int = 0  # callers gone before their batch ran
    failed: int = 0  # batches whose judge_many raised
    busy_s: float = 0.0  # time batches spent in the executor
    last_batch_s: float = 0.0
    waiting: int = 0  # requests in the queue now
    queue_wait_ms_max: float = 0.0  # the longest a request waited for its batch to start


@dataclass
class _Request:
    words: list[str]
    future: asyncio.Future[list[Hit]]
    enqueued: float


class ClassifierBatcher:
    """Collects judge() requests from many calls into batches for one classifier.

    classifier: anything with judge_many (AbuseClassifier); executor: where batches run
    (a ThreadPoolExecutor the server owns; the batcher never shuts it down)."""

    def __init__(
        self,
        classifier: _Judge,
        executor: concurrent.futures.Executor,
        *,
        batch_max: int = 8,
        batch_wait_ms: float = 10.0,
        queue_max: int = 64,
        overflow: Literal["drop_oldest", "refuse"] = "drop_oldest",
    ) -> None:
        if batch_max < 1 or queue_max < 1 or batch_wait_ms < 0:
            raise ValueError("batch_max and queue_max must be >= 1, batch_wait_ms >= 0")
        if overflow not in ("drop_oldest", "refuse"):
            raise ValueError(f"overflow must be 'drop_oldest' or 'refuse', not {overflow!r}")
        self.classifier = classifier
        self.executor = executor
        self.batch_max = int(batch_max)
        self.batch_wait_s = float(batch_wait_ms) / 1000.0
        self.queue_max = int(queue_max)
        self.overflow = overflow
        self.stats = BatchStats()
        self._queue: collections.deque[_Request] = collections.deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @classmethod
    def from_config(
        cls, classifier: _Judge, executor: concurrent.futures.Executor, config: ClassifierConfig
    ) -> ClassifierBatcher:
        return cls(
            classifier,
            executor,
            batch_max=config.batch_max,
            batch_wait_ms=config.batch_wait_ms,
            queue_max=config.queue_max,
            overflow=config.overflow,
        )

    # --- the API the relay calls ---------------------------------------------------------------

    async def judge(self, words: list[str]) -> list[Hit]:
        """Hits for one utterance, judged in a batch with whatever else is waiting.

        Raises ClassifierOverloaded when the queue is full (this request refused, or later
        dropped as the oldest), RuntimeError after close(), or what the classifier raised."""
        if self._closed:
            raise RuntimeError("classifier batcher is closed")
        loop, wakeup = self._start()
        if len(self._queue) >= self.queue_max:  # first forget callers that are gone
            live = collections.deque(r for r in self._queue if not r.future.done())
            self.stats.cancelled += len(self._queue) - len(live)
            self._queue = live
        if len(self._queue) >= self.queue_max:
            if self.overflow == "refuse":
                self.stats.refused += 1
                raise ClassifierOverloaded(
                    f"classifier queue full ({self.queue_max} utterances waiting): utterance refused unjudged"
                )
            oldest = self._queue.popleft()
            self.stats.dropped += 1
            if not oldest.future.done():
                oldest.future.set_exception(
                    ClassifierOverloaded(
                        f"classifier queue full ({self.queue_max} utterances waiting): oldest utterance dropped "
                        f"unjudged after {1000 * (time.monotonic() - oldest.enqueued):.0f} ms"
                    )
                )
        request = _Request(list(words), loop.create_future(), time.monotonic())
        self._queue.append(request)
        self.stats.requests += 1
        self.stats.waiting = len(self._queue)
        wakeup.set()
        try:
            return await request.future
        except asyncio.CancelledError:
            if not request.future.done():
                request.future.cancel()
            raise

    async def close(self) -> None:
        """Stops taking requests; waiting ones fail with RuntimeError, a running batch finishes."""
        self._closed = True
        while self._queue:
            request = self._queue.popleft()
            if not request.future.done():
                request.future.set_exception(RuntimeError("classifier batcher closed"))
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None

    # --- the collector -------------------------------------------------------------------------

    def _start(self) -> tuple[asyncio.AbstractEventLoop, asyncio.Event]:
        """The running loop and the batch task's wakeup event, the task (re)started if needed."""
        loop = asyncio.get_running_loop()
        if self._task is not None and not self._task.done() and self._loop is loop and self._wakeup is not None:
            return loop, self._wakeup
        self._loop = loop
        self._wakeup = wakeup = asyncio.Event()
        self._task = loop.create_task(self._run(), name="classifier-batcher")
        return loop, wakeup

    def _take(self) -> list[_Request]:
        batch: list[_Request] = []
        now = time.monotonic()
        while self._queue and len(batch) < self.batch_max:
            request = self._queue.popleft()
            if request.future.done():  # cancelled (or dropped) while waiting
                self.stats.cancelled += int(request.future.cancelled())
                continue
            self.stats.queue_wait_ms_max = max(self.stats.queue_wait_ms_max, 1000 * (now - request.enqueued))
            batch.append(request)
        self.stats.waiting = len(self._queue)
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while True:
            if not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            # Close the batch at batch_max waiting, or batch_wait after the oldest arrived.
            deadline = self._queue[0].enqueued + self.batch_wait_s
            while len(self._queue) < self.batch_max:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), left)
                except TimeoutError:
                    break
            batch = self._take()
            if not batch:
                continue
            started = time.monotonic()
            try:
                results = await loop.run_in_executor(
                    self.executor, self.classifier.judge_many, [r.words for r in batch]
                )
                if len(results) != len(batch):
                    raise RuntimeError(f"judge_many returned {len(results)} results for {len(batch)} utterances")
            except asyncio.CancelledError:
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(RuntimeError("classifier batcher closed"))
                raise
            except Exception as exc:  # noqa: BLE001 - handed to every caller of the batch
                self.stats.failed += 1
                log.warning("classifier batch of %d failed: %s: %s", len(batch), type(exc).__name__, exc)
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            finally:
                elapsed = time.monotonic() - started
                self.stats.busy_s += elapsed
                self.stats.last_batch_s = elapsed
                self.stats.batches += 1
                self.stats.utterances += len(batch)
                self.stats.max_batch = max(self.stats.max_batch, len(batch))
            for request, hits in zip(batch, results):
                if not request.future.done():
                    request.future.set_result(hits)
