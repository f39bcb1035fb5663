"""The inference tier on Ray Serve: relay calls transcribed by a single-node Ray cluster
serving the tiny random Whisper (stt.backend = "ray"), their passes batched; then the
tier goes away mid-call and the call's moderation reports itself degraded."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from moderation.stt_config import SttConfig
from moderation.stt_remote import RemoteEngine, TierUnavailable
from relay.calls.speech_service import SttService
from testkit.local_server import LocalServer, free_port
from testkit.local_tier import LocalTier, prepare_tier
from testkit.probe import RecordingSource

from . import tiny_models
from .conftest import assert_flowing, open_call, start_server

pytest.importorskip("ray.serve", reason="the cluster extra (ray[serve]) is not installed")

CALL_S = 30.0


@pytest.fixture(scope="module")
def tier(tmp_path_factory: pytest.TempPathFactory, tiny_whisper: Path) -> Iterator[LocalTier]:
    # A wide batch window: the two test calls' passes, ~0.5 s apart each, meet in one batch.
    running = prepare_tier(tmp_path_factory.mktemp("tier"), tiny_whisper, "batch_wait_s = 0.4\n").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tier_relay(tmp_path_factory: pytest.TempPathFactory, tier: LocalTier) -> Iterator[LocalServer]:
    server = start_server(
        tmp_path_factory.mktemp("tier-relay"),
        delay_s=2.0,
        extra=f'[stt]\nbackend = "ray"\ntier_url = "{tier.url}"\ntier_timeout_s = 1.5\ntier_retry_s = 0.5\n',
    )
    yield server
    server.stop()


def _speech(seed: int) -> RecordingSource:
    audio, _ = tiny_models.korean_call(CALL_S, sample_rate=48000, seed=seed)
    return RecordingSource(samples=(np.clip(audio, -1, 1) * 32767).astype(np.int16))


async def test_two_calls_are_transcribed_by_the_tier_in_shared_batches_then_degrade_when_it_goes(
    tier: LocalTier, tier_relay: LocalServer, http: aiohttp.ClientSession
) -> None:
    calls = [
        await open_call(tier_relay, http, counselor=name, customer_source=_speech(seed), record_s=CALL_S + 10)
        for seed, name in enumerate(["anna", "ben"])
    ]
    try:
        for call in calls:
            info = await call.counselor_api.call(call.call_id)
            assert info["moderation"]["state"] == "ready", info["moderation"]
            assert tier.url in info["moderation"]["detail"]  # the model version names the tier
        await asyncio.sleep(6.0)
        stats = tier.get("stats")
        assert stats["items"] >= 6, stats
        assert stats["max_batch_seen"] > 1, stats  # passes of both calls in one model call
        assert stats["batches"] < stats["items"]
        for call in calls:
            moderation = (await call.counselor_api.call(call.call_id))["moderation"]
            assert moderation["passes"] >= 3 and moderation["tier_failures"] == 0, moderation
            assert moderation["lag_s"] < 3.0

        await asyncio.to_thread(tier.stop)  # off the loop: the test's peers keep running
        deadline = time.monotonic() + 8.0
        states: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            states = [(await c.counselor_api.call(c.call_id))["moderation"] for c in calls]
            if all(m["state"] == "degraded" for m in states):
                break
            await asyncio.sleep(0.25)
        assert all(m["state"] == "degraded" and "inference tier" in str(m["detail"]) for m in states), states
        # The relay goes on: the customer is still heard, under the undecided policy (play).
        await assert_flowing(calls[0], seconds=1.5)
        stalled = [(await c.counselor_api.call(c.call_id))["stats"]["cleared_until_s"] for c in calls]
        await asyncio.sleep(1.0)
        for c, before in zip(calls, stalled):
            info = await c.counselor_api.call(c.call_id)
            assert info["stats"]["cleared_until_s"] == before  # nothing is judged, so nothing is cleared
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
    assert service.state == "unavailable" and service.engine is None
    assert url in service.detail
    service.close()


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
