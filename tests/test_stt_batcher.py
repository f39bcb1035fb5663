"""BatchedEngine: concurrent passes of several calls go through one runner, in batches,
each caller gets its own result; bounded queue; errors reach every waiting caller."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from moderation.speech import EngineSegment, EngineWord
from moderation.stt_batcher import BatchedEngine, Overloaded


class BatchRecorder:
    version = "recorder-1"
    supports_prefix = True

    def __init__(self, delay: float = 0.05, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.delay = delay
        self.fail = fail

    def transcribe_batch(self, items):
        self.batches.append(len(items))
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("model failed")
        # Answer each clip with its own length and prefix, so results cannot be swapped.
        return [[EngineSegment([EngineWord(f"{len(a)}:{prefix}", 0.0, 0.1)], 0.0, 0.1)] for a, _p, _l, prefix in items]


def call_many(engine: BatchedEngine, n: int) -> list:
    out: list = [None] * n

    def one(i: int) -> None:
        try:
            out[i] = engine.transcribe(np.zeros(1000 + i, np.float32), "", "ko", f"p{i}")
        except Exception as exc:  # noqa: BLE001
            out[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    return out


def test_concurrent_passes_are_batched_and_answered_each_their_own() -> None:
    inner = BatchRecorder(delay=0.1)
    engine = BatchedEngine(inner, max_batch=8)
    try:
        results = call_many(engine, 6)
    finally:
        engine.close()
    for i, r in enumerate(results):
        assert r[0].words[0].text == f"{1000 + i}:p{i}"
    # The first pass starts a batch alone; the others queue meanwhile and go together.
    assert sum(inner.batches) == 6 and len(inner.batches) < 6
    assert engine.stats.max_batch_seen <= 8 and engine.supports_prefix


def test_batches_never_exceed_max_batch() -> None:
    inner = BatchRecorder(delay=0.05)
    engine = BatchedEngine(inner, max_batch=2)
    try:
        call_many(engine, 7)
    finally:
        engine.close()
    assert max(inner.batches) <= 2 and sum(inner.batches) == 7


def test_a_failing_batch_fails_every_caller_in_it() -> None:
    engine = BatchedEngine(BatchRecorder(fail=True), max_batch=4)
    try:
        results = call_many(engine, 3)
    finally:
        engine.close()
    assert all(isinstance(r, RuntimeError) for r in results)
    assert engine.stats.failures >= 1


def test_full_queue_is_overloaded_not_unbounded() -> None:
    inner = BatchRecorder(delay=0.5)
    engine = BatchedEngine(inner, max_batch=1, max_queue=1, enqueue_timeout_s=0.05)
    try:
        results = call_many(engine, 4)
    finally:
        engine.close()
    assert any(isinstance(r, Overloaded) for r in results)
    assert any(isinstance(r, list) for r in results)


def test_transcriber_runs_on_the_batched_engine_with_a_real_tiny_whisper(tiny_whisper) -> None:
    from moderation.stt_config import SttConfig
    from moderation.transcriber import StreamingTranscriber
    from moderation.whisper_engine import WhisperEngine
    from tests import tiny_models

    config = SttConfig(model=str(tiny_whisper), device="cpu", workers=1)
    engine = BatchedEngine(WhisperEngine(config), max_batch=4)
    audio, _spans = tiny_models.korean_call(6.0)
    trs = [StreamingTranscriber(engine, config) for _ in range(3)]
    try:
        for k in range(0, len(audio), 3200):
            for tr in trs:
                tr.feed(audio[k : k + 3200], k / 16000)
        updates = call_many_steps(trs)
    finally:
        engine.close()
    assert all(u.cleared_until == pytest.approx(6.0, abs=0.05) for u in updates)
    assert engine.stats.items >= 3


def call_many_steps(trs) -> list:
    out: list = [None] * len(trs)

    def one(i: int) -> None:
        out[i] = trs[i].finish()

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(trs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return out
