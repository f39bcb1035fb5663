"""ClassifierBatcher: many calls' utterances in one batched pass, off the event loop, bounded.

Uses KeywordKeyedScorer (a TEST DOUBLE that scores a planted word as abuse and records
its calls and threads) and, to count real forward passes, the tiny random kor_unsmile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from pathlib import Path

import pytest

from moderation.classifier import AbuseClassifier
from moderation.classifier_batch import ClassifierBatcher, ClassifierOverloaded
from moderation.classifier_config import UNSMILE_LABELS, ClassifierConfig
from tests import tiny_bert
from tests.tiny_bert import KeywordKeyedScorer

tiny_bert_model = pytest.fixture(scope="session", name="tiny_bert_model")(tiny_bert.tiny_bert_fixture)


@pytest.fixture
def executor():
    pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="clf-test")
    yield pool
    pool.shutdown(wait=False, cancel_futures=True)


def make(executor, planted=("씨발",), delay_s: float = 0.0, **kwargs):
    scorer = KeywordKeyedScorer(set(planted), delay_s=delay_s)
    clf = AbuseClassifier(scorer, UNSMILE_LABELS, ClassifierConfig(), version="double@1")
    return ClassifierBatcher(clf, executor, **kwargs), scorer


def utterance(n: int, at: int | None) -> list[str]:
    words = [f"말{i}" for i in range(n)]
    if at is not None:
        words[at] = "씨발"
    return words


async def test_concurrent_callers_get_their_own_results(executor) -> None:
    batcher, scorer = make(executor, batch_max=8, batch_wait_ms=50)
    cases = [(3 + i % 5, (i % 3) if i % 4 else None) for i in range(20)]
    results = await asyncio.gather(*(batcher.judge(utterance(n, at)) for n, at in cases))
    for (_n, at), hits in zip(cases, results):
        assert [h.words for h in hits] == ([] if at is None else [(at,)])
    # 20 requests, batches of 8: 3 batches of at most 2 scorer calls each.
    assert batcher.stats.batches == 3 and batcher.stats.max_batch == 8 and batcher.stats.utterances == 20
    assert len(scorer.calls) == 6
    assert sorted(len(c) for c in scorer.calls[::2]) == [4, 8, 8]  # the sentences of each batch
    await batcher.close()


async def test_batching_merges_real_forward_passes(executor, tiny_bert_model: Path) -> None:
    cfg = ClassifierConfig(
        model=str(tiny_bert_model), int8=False, thresholds={label: 0.0 for label in UNSMILE_LABELS}
    )  # every window flagged
    clf = AbuseClassifier.load(cfg)
    before = clf.scorer.forward_passes
    batcher = ClassifierBatcher.from_config(clf, executor, ClassifierConfig(batch_max=8, batch_wait_ms=100))
    sentences = [
        "야 이 씨발 뭐하는 거야",
        "요금이 왜 이렇게 많이 나왔어요",
        "담당자 바꿔주세요",
        "네",
        "환불 해주세요 지금",
    ]
    results = await asyncio.gather(*(batcher.judge(s.split()) for s in sentences))
    assert all(hits for hits in results)
    # One pass for the five sentences, one for all their leave-one-out variants; judged one
    # by one it would take 2 per sentence (1 for the one-word "네").
    assert clf.scorer.forward_passes - before == 2
    assert batcher.stats.batches == 1
    await batcher.close()


async def test_a_batch_closes_at_batch_max_or_after_batch_wait(executor) -> None:
    batcher, _ = make(executor, batch_max=4, batch_wait_ms=5000)
    started = time.monotonic()
    await asyncio.gather(*(batcher.judge(utterance(3, 1)) for _ in range(4)))
    assert time.monotonic() - started < 2.0  # full batch: no 5 s wait
    batcher2, _ = make(executor, batch_max=8, batch_wait_ms=80)
    started = time.monotonic()
    await batcher2.judge(utterance(3, None))
    assert 0.07 <= time.monotonic() - started < 1.0
    await batcher.close()
    await batcher2.close()


async def test_inference_runs_in_the_executor_not_on_the_loop(executor) -> None:
    batcher, scorer = make(executor, delay_s=0.3, batch_wait_ms=0)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    hits = await batcher.judge(utterance(4, 2))
    task.cancel()
    assert hits[0].words == (2,)
    assert scorer.threads and all(name.startswith("clf-test") for name in scorer.threads)
    assert threading.current_thread().name not in scorer.threads
    assert ticks >= 20  # the loop kept running during ~0.6 s of scoring
    await batcher.close()


async def _hold_first_batch(batcher: ClassifierBatcher, scorer: KeywordKeyedScorer) -> asyncio.Task:
    scorer.gate.clear()
    first = asyncio.create_task(batcher.judge(utterance(3, 0)))
    await asyncio.to_thread(scorer.entered.wait, 5)  # the batch is in the executor, held
    return first


async def test_overload_refuses_new_requests(executor) -> None:
    batcher, scorer = make(executor, batch_max=2, batch_wait_ms=0, queue_max=3, overflow="refuse")
    first = await _hold_first_batch(batcher, scorer)
    waiting = [asyncio.create_task(batcher.judge(utterance(3, 1))) for _ in range(3)]
    await asyncio.sleep(0.01)
    with pytest.raises(ClassifierOverloaded, match="refused"):
        await batcher.judge(utterance(3, 2))
    assert batcher.stats.refused == 1
    scorer.gate.set()
    assert (await first)[0].words == (0,)
    assert [(await w)[0].words for w in waiting] == [(1,)] * 3
    await batcher.close()


async def test_overload_drops_the_oldest_waiting(executor) -> None:
    batcher, scorer = make(executor, batch_max=2, batch_wait_ms=0, queue_max=3, overflow="drop_oldest")
    first = await _hold_first_batch(batcher, scorer)
    waiting = [asyncio.create_task(batcher.judge(utterance(3, 1))) for _ in range(3)]
    await asyncio.sleep(0.01)
    newest = asyncio.create_task(batcher.judge(utterance(3, 2)))
    await asyncio.sleep(0.01)
    assert waiting[0].done()
    with pytest.raises(ClassifierOverloaded, match="oldest utterance dropped"):
        await waiting[0]
    assert batcher.stats.dropped == 1 and batcher.stats.waiting == 3
    scorer.gate.set()
    assert (await first)[0].words == (0,)
    assert [(await w)[0].words for w in waiting[1:]] == [(1,)] * 2
    assert (await newest)[0].words == (2,)
    await batcher.close()


async def test_cancelled_callers_leave_the_queue(executor) -> None:
    batcher, scorer = make(executor, batch_max=8, batch_wait_ms=0)
    first = await _hold_first_batch(batcher, scorer)
    gone = asyncio.create_task(batcher.judge(utterance(3, 1)))
    kept = asyncio.create_task(batcher.judge(utterance(3, 2)))
    await asyncio.sleep(0.01)
    gone.cancel()
    scorer.gate.set()
    await first
    assert (await kept)[0].words == (2,)
    assert gone.cancelled() and batcher.stats.cancelled == 1
    assert all(" ".join(utterance(3, 1)) not in call for call in scorer.calls[2:])
    await batcher.close()


async def test_a_failing_batch_fails_its_callers_and_the_batcher_goes_on(executor) -> None:
    batcher, scorer = make(executor, batch_max=4, batch_wait_ms=20)
    scorer.fail_with = RuntimeError("model broke")
    results = await asyncio.gather(*(batcher.judge(utterance(3, 1)) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and "model broke" in str(r) for r in results)
    assert batcher.stats.failed == 1
    scorer.fail_with = None
    assert (await batcher.judge(utterance(3, 1)))[0].words == (1,)
    await batcher.close()


async def test_close_fails_waiting_requests(executor) -> None:
    batcher, scorer = make(executor, batch_max=1, batch_wait_ms=0)
    first = await _hold_first_batch(batcher, scorer)
    waiting = asyncio.create_task(batcher.judge(utterance(3, 1)))
    await asyncio.sleep(0.01)
    await batcher.close()
    scorer.gate.set()
    for task in (first, waiting):
        with pytest.raises(RuntimeError, match="closed"):
            await task
    with pytest.raises(RuntimeError, match="closed"):
        await batcher.judge(utterance(3, 1))
