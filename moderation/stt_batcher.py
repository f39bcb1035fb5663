"""One transcription service for every call: passes of different calls batched into one
model call.

    engine = BatchedEngine(WhisperEngine(config), max_batch=config.batch_max, max_queue=config.queue_max)
    tr = StreamingTranscriber(engine, config)     # one per call, as before
    # step()/finish() still run in worker threads; each blocks until its batch is done

Why batching: CTranslate2 encodes and decodes a batch in one call, and on a CPU one
pass of one call does not keep every core busy (the decoder steps one token at a time),
while N separate passes on N threads split the cores and all finish late. A single
runner thread takes whatever passes are waiting (up to max_batch), runs them together
(WhisperEngine.transcribe_batch) and hands each caller its own result.

Fairness: a StreamingTranscriber has at most one pass in flight, so each call has at
most one entry in the queue; the queue is first-come first-served, so no call waits for
more than one batch ahead of it. Each transcriber still bounds its own lag (max_lag_s):
under overload its next pass covers more audio or, as the last resort, skips.

Bounded: at most max_queue passes wait; a caller that cannot enqueue within
enqueue_timeout_s gets Overloaded (the transcriber reports the pass as failed; the relay
keeps relaying, the watermark stops until the next pass). No asyncio, no relay imports:
the relay's worker threads call it as they call any SpeechEngine.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from moderation.speech import EngineSegment

log = logging.getLogger(__name__)


class Overloaded(RuntimeError):
    """The service's queue stayed full: more calls than the machine can transcribe."""


@dataclass
class BatcherStats:
    batches: int = 0
    items: int = 0
    compute_s: float = 0.0  # runner time in the engine
    max_batch_seen: int = 0
    failures: int = 0


@dataclass
class _Pending:
    item: tuple[np.ndarray, str, str, str]
    done: threading.Event = field(default_factory=threading.Event)
    result: list[EngineSegment] | None = None
    error: BaseException | None = None


class BatchedEngine:
    """A SpeechEngine that batches concurrent transcribe() calls through one runner thread.

    engine: a WhisperEngine (or anything with transcribe(), and optionally
    transcribe_batch(items) taking (audio, prompt, language, prefix) tuples).
    max_wait_s: how long the runner waits, after the first pass arrives, for others to
    join its batch (0: take only what is already queued; passes arriving meanwhile form
    the next batch, so waiting buys little and costs lag)."""

    def __init__(
        self,
        engine: Any,
        *,
        max_batch: int = 8,
        max_queue: int = 64,
        max_wait_s: float = 0.0,
        enqueue_timeout_s: float = 5.0,
    ) -> None:
        self.engine = engine
        self.max_batch = max(1, int(max_batch))
        self.max_wait_s = max_wait_s
        self.enqueue_timeout_s = enqueue_timeout_s
        self.stats = BatcherStats()
        self._queue: queue.Queue[_Pending | None] = queue.Queue(maxsize=max(1, int(max_queue)))
        self._closed = False
        self._runner = threading.Thread(target=self._run, name="stt-batcher", daemon=True)
        self._runner.start()

    # --- SpeechEngine --------------------------------------------------------------------

    @property
    def version(self) -> str:
        return self.engine.version

    @property
    def supports_prefix(self) -> bool:
        return bool(getattr(self.engine, "supports_prefix", False))

    def transcribe(self, audio: np.ndarray, prompt: str, language: str, prefix: str = "") -> list[EngineSegment]:
        """Blocks the calling (worker) thread until this pass's batch has run."""
        if self._closed:
            raise Overloaded("the transcription service is closed")
        pending = _Pending((audio, prompt, language, prefix))
        try:
            self._queue.put(pending, timeout=self.enqueue_timeout_s)
        except queue.Full:
            raise Overloaded(f"{self._queue.maxsize} passes already waiting") from None
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result or []

    def close(self) -> None:
        """Stop the runner after the passes already queued."""
        if not self._closed:
            self._closed = True
            self._queue.put(None)
            self._runner.join(timeout=10)

    def queued(self) -> int:
        return self._queue.qsize()

    # --- runner --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.max_wait_s
            stop = False
            while len(batch) < self.max_batch:
                try:
                    wait = deadline - time.monotonic()
                    nxt = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            self._execute(batch)
            if stop:
                return

    def _execute(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        try:
            if hasattr(self.engine, "transcribe_batch"):
                results = self.engine.transcribe_batch([p.item for p in batch])
            else:
                results = [
                    self.engine.transcribe(*p.item[:3], **({"prefix": p.item[3]} if p.item[3] else {})) for p in batch
                ]
            for p, r in zip(batch, results):
                p.result = r
        except BaseException as exc:  # noqa: BLE001 - every waiting caller must hear of it
            self.stats.failures += 1
            log.exception("batched transcription pass failed (%d calls)", len(batch))
            for p in batch:
                p.error = exc
        finally:
            self.stats.compute_s += time.perf_counter() - started
            self.stats.batches += 1
            self.stats.items += len(batch)
            self.stats.max_batch_seen = max(self.stats.max_batch_seen, len(batch))
            for p in batch:
                p.done.set()
