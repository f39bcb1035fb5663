"""The inference tier on Ray Serve: relay calls transcribed by a single-node Ray cluster
serving the tiny random Whisper (stt.backend = "ray"), their passes batched, one of them
set up while the tier could not be reached; then the tier goes away mid-call, the calls'
moderation reports itself degraded, and recovers when it is back. The same tier serves a
tiny random kor_unsmile (classifier.backend = "ray"), batching two nodes' requests in one
model call; while it is away the other checks judge alone. One Ray cluster for the module:
its start is most of the time."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest

from moderation.classifier_remote import RemoteClassifier
from moderation.hits import Hit
from moderation.stt_config import SttConfig
from moderation.stt_remote import RemoteEngine, TierUnavailable
from moderation.stt_wire import decode_hits, encode_hits
from relay.calls.speech_service import SttService
from relay.calls.text_service import TextChecks
from relay.config import parse_config
from testkit.link_switch import LinkSwitch
from testkit.local_server import LocalServer, free_port
from testkit.local_tier import LocalTier, prepare_tier
from testkit.probe import RecordingSource

from . import tiny_models
from .conftest import LiveCall, assert_flowing, open_call, start_server

pytest.importorskip("ray.serve", reason="the cluster extra (ray[serve]) is not installed")

CALL_S = 30.0


# Thresholds no random score reaches: the calls' audio is never muted by noise.
CLASSIFIER = 'model = "{model}"\nabusive_labels = ["악플/욕설"]\nthresholds = {{ "악플/욕설" = 1.0 }}\n'


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory, tiny_whisper: Path, tiny_bert_model: Path) -> Iterator[LocalTier]:
    # A wide batch window: the two test calls' passes, ~0.5 s apart each, meet in one batch.
    running = prepare_tier(
        tmp_path_factory.mktemp("tier"),
        tiny_whisper,
        "batch_wait_s = 0.4\nclassifier_batch_wait_s = 0.4\n",
        CLASSIFIER.format(model=tiny_bert_model),
    ).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def link(tier: LocalTier) -> Iterator[LinkSwitch]:
    """The relay's way to the tier; it starts cut."""
    with LinkSwitch(tier.port) as switch:
        yield switch


@pytest.fixture(scope="module")
def tier_relay(tmp_path_factory: pytest.TempPathFactory, link: LinkSwitch) -> Iterator[LocalServer]:
    base = f"http://127.0.0.1:{link.port}"
    server = start_server(
        tmp_path_factory.mktemp("tier-relay"),
        delay_s=2.0,
        extra=f'[stt]\nbackend = "ray"\ntier_url = "{base}/stt"\ntier_timeout_s = 1.5\ntier_retry_s = 0.5\n'
        f'[classifier]\nbackend = "ray"\ntier_url = "{base}/classifier"\ntier_timeout_s = 5.0\ntier_retry_s = 0.5\n',
    )
    yield server
    server.stop()


async def _until(
    get: Callable[[], Awaitable[dict[str, Any]]], done: Callable[[dict[str, Any]], bool], timeout_s: float
) -> dict[str, Any]:
    """Polled, not slept: on a loaded 2-core machine the same passes take longer to come."""
    deadline = time.monotonic() + timeout_s
    while not done(answer := await get()):
        assert time.monotonic() < deadline, answer
        await asyncio.sleep(0.25)
    return answer


async def _moderation(call: LiveCall) -> dict[str, Any]:
    info: dict[str, Any] = await call.counselor_api.call(call.call_id)
    return info["moderation"]


async def _moderation_until(call: LiveCall, ready: bool, timeout_s: float) -> dict[str, Any]:
    return await _until(
        lambda: _moderation(call),
        lambda m: (m["state"] == "ready") == ready and (not ready or m["passes"] >= 1),
        timeout_s,
    )


def _speech(seed: int) -> RecordingSource:
    audio, _ = tiny_models.korean_call(CALL_S, sample_rate=48000, seed=seed)
    return RecordingSource(samples=(np.clip(audio, -1, 1) * 32767).astype(np.int16))


async def test_two_calls_are_transcribed_by_the_tier_in_shared_batches_degrade_when_it_goes_and_recover(
    tier: LocalTier, link: LinkSwitch, tier_relay: LocalServer, http: aiohttp.ClientSession
) -> None:
    # The relay started while the tier could not be reached; a call set up then is not
    # moderated yet, and is from the moment the tier answers.
    calls = [await open_call(tier_relay, http, counselor="anna", customer_source=_speech(0), record_s=CALL_S + 10)]
    try:
        early = await _moderation(calls[0])
        assert early["state"] in ("unavailable", "degraded") and "inference tier" in early["detail"], early
        assert early["classifier"]["state"] == "unavailable", early["classifier"]
        link.restore()
        calls.append(
            await open_call(tier_relay, http, counselor="ben", customer_source=_speech(1), record_s=CALL_S + 10)
        )
        for call in calls:
            moderation = await _moderation_until(call, ready=True, timeout_s=15.0)
            assert f"127.0.0.1:{link.port}" in moderation["detail"]  # the model version names the tier
        assert calls[0].call_id != calls[1].call_id
        before = tier.get("stats")
        stats = await _until(
            lambda: asyncio.to_thread(tier.get, "stats"), lambda st: st["items"] - before["items"] >= 6, 20.0
        )
        assert stats["max_batch_seen"] > 1, stats  # passes of both calls in one model call
        assert stats["batches"] < stats["items"]
        words = 0
        for call in calls:
            moderation = await _moderation(call)
            assert moderation["passes"] >= 3, moderation
            assert moderation["lag_s"] < 3.0
            words += moderation["words"]
        if words:  # the random Whisper heard words: the classifier on the tier judged them
            # A first judgement slower than its timeout leaves the classifier unavailable
            # until its retry answers; that is the design, so wait for the retry.
            moderation = await _until(
                lambda: _moderation(calls[-1]), lambda m: m["classifier"]["state"] == "ready", 15.0
            )
            assert f"127.0.0.1:{link.port}/classifier" in moderation["classifier"]["detail"]
            assert tier.get("stats", tier.classifier_url)["utterances"] > 0

        link.cut()
        states = [await _moderation_until(c, ready=False, timeout_s=8.0) for c in calls]
        assert all(m["state"] == "degraded" and "inference tier" in str(m["detail"]) for m in states), states
        # The relay goes on: the customer is still heard, under the undecided policy (play).
        await assert_flowing(calls[0], seconds=1.5)
        stalled = [(await c.counselor_api.call(c.call_id))["stats"]["cleared_until_s"] for c in calls]
        await asyncio.sleep(1.0)
        for c, before_s in zip(calls, stalled):
            info = await c.counselor_api.call(c.call_id)
            assert info["stats"]["cleared_until_s"] == before_s  # nothing is judged, so nothing is cleared

        link.restore()  # back mid-call: moderated again
        for call in calls:
            moderation = await _moderation_until(call, ready=True, timeout_s=8.0)
            assert moderation["tier_failures"] >= 1
    finally:
        for call in calls:
            await call.close()

    # The degradation is in each call's log, for QA.
    db = sqlite3.connect(tier_relay.data_dir / "callguard.db")
    for call in calls:
        details = [
            json.loads(d)
            for (d,) in db.execute(
                "SELECT detail FROM call_events WHERE call_id = ? AND kind = 'moderation'", (call.call_id,)
            )
        ]
        assert any(d["state"] == "degraded" for d in details), details
    db.close()


async def test_a_tier_that_cannot_be_reached_leaves_moderation_unavailable_with_the_reason() -> None:
    url = f"http://127.0.0.1:{free_port()}/stt"
    service = SttService(SttConfig(backend="ray", tier_url=url, tier_timeout_s=0.5))
    await service.load()
    # The engine is the tier's client, there for calls to retry on; the tier is not there.
    assert service.state == "unavailable" and isinstance(service.engine, RemoteEngine)
    assert url in service.detail
    with pytest.raises(TierUnavailable):
        service.engine.transcribe(np.zeros(1600, np.float32), "", "ko")
    service.close()


def test_two_nodes_requests_are_judged_in_one_model_call_of_the_classifier_tier(tier: LocalTier) -> None:
    nodes = [RemoteClassifier(tier.classifier_url, timeout_s=5.0) for _ in range(2)]
    assert nodes[0].connect()["labels"] == ["악플/욕설"]
    before = tier.get("stats", tier.classifier_url)
    start = threading.Barrier(2)

    def judge(node: RemoteClassifier, words: list[str]) -> list[list[Hit]]:
        start.wait()
        return node.judge_many([words, ["감사합니다"]])

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(judge, nodes, [["주문", "확인", "부탁드려요"], ["배송이", "늦네요"]]))
    assert [len(a) for a in answers] == [2, 2]  # each node's utterances, in its order
    after = tier.get("stats", tier.classifier_url)
    assert after["batches"] - before["batches"] == 1, (before, after)  # both nodes in one model call
    assert after["max_batch_seen"] >= 2 and after["utterances"] - before["utterances"] == 4
    assert all(tier.classifier_url in n.version for n in nodes)


async def test_while_the_classifier_tier_is_away_the_other_checks_judge_and_it_is_regained(
    tier: LocalTier, link: LinkSwitch
) -> None:
    link.cut()
    base = f"http://127.0.0.1:{link.port}"
    config = parse_config(
        {"classifier": {"backend": "ray", "tier_url": f"{base}/classifier", "tier_timeout_s": 0.5, "tier_retry_s": 0.3}}
    )
    checks = TextChecks(config)
    await checks.load()
    try:
        assert checks.view()["classifier"]["state"] == "unavailable"
        words = ["야", "씨발", "진짜"]
        started = time.monotonic()
        sources = {h.source for h in await checks.check(words)}
        assert "keyword" in sources and "classifier" not in sources and time.monotonic() - started < 1.0
        classifier = checks.view()["classifier"]
        assert classifier["state"] == "unavailable" and "inference tier" in classifier["detail"]
        failures = classifier["tier_failures"]
        await checks.check(words)  # resting: the tier is not asked again at once
        assert checks.view()["classifier"]["tier_failures"] == failures

        link.restore()
        await asyncio.sleep(0.4)
        served = tier.get("stats", tier.classifier_url)["utterances"]
        sources = {h.source for h in await checks.check(words)}
        assert "keyword" in sources and "classifier" not in sources  # no random score reaches 1.0
        assert tier.get("stats", tier.classifier_url)["utterances"] == served + 1  # but it was asked
        classifier = checks.view()["classifier"]
        assert classifier["state"] == "ready" and base in classifier["detail"], classifier
    finally:
        await checks.close()


def test_hits_cross_the_wire_unchanged() -> None:
    hits = [[Hit((1, 2), "classifier", "악플/욕설", 0.91, 0.5, "악플/욕설", "kor_unsmile@abc+int8")], []]
    assert decode_hits(json.loads(json.dumps(encode_hits(hits))), 2) == hits


async def test_a_tier_that_answers_too_late_fails_the_pass_within_the_timeout() -> None:
    from aiohttp import web

    async def slow(_: web.Request) -> web.Response:  # a stand-in for an overloaded tier
        await asyncio.sleep(1.0)
        return web.json_response({"segments": []})

    app = web.Application()
    app.add_routes([web.post("/stt/transcribe", slow)])
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        engine = RemoteEngine(f"http://127.0.0.1:{port}/stt", timeout_s=0.4)
        started = time.monotonic()
        with pytest.raises(TierUnavailable):
            await asyncio.to_thread(engine.transcribe, np.zeros(16000, np.float32), "", "ko")
        assert time.monotonic() - started < 1.5
    finally:
        await runner.cleanup()
