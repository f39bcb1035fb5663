"""Transcription in a real call: the tiny Whisper through the running server."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from playwright.async_api import async_playwright, expect
from prometheus_client.parser import text_string_to_metric_families

from testkit.client import ApiClient, CallPeer, Recorder
from testkit.local_server import LocalServer
from testkit.probe import RecordingSource

from . import tiny_models
from .conftest import PASSWORD, open_call, start_server
from .test_browser import CHROMIUM, chromium_args
from .test_counselor_page import DESKTOP, looks_right
from .wav import write_wav

DELAY_S = 2.0
CALL_S = 14.0


@pytest.fixture(scope="module")
def stt_server(tmp_path_factory: pytest.TempPathFactory, tiny_whisper: Path) -> AsyncIterator[LocalServer]:
    server = start_server(
        tmp_path_factory.mktemp("stt"),
        delay_s=DELAY_S,
        extra=f'[stt]\nmodel = "{tiny_whisper}"\ndevice = "cpu"\nworkers = 1\n',
    )
    yield server
    server.stop()


async def test_call_is_transcribed_and_words_arrive_as_their_audio_plays(
    stt_server: LocalServer, http: aiohttp.ClientSession, tiny_whisper: Path
) -> None:
    audio, utterances = tiny_models.korean_call(CALL_S - 2.0, sample_rate=48000)
    speech = RecordingSource(samples=(np.clip(audio, -1, 1) * 32767).astype(np.int16))
    call = await open_call(stt_server, http, customer_source=speech, record_s=CALL_S + 5)
    events: list[tuple[float, dict[str, Any]]] = []
    cleared: list[float] = []
    url = f"{stt_server.base_url}/api/calls/{call.call_id}/events"
    try:
        info = await call.counselor_api.call(call.call_id)
        assert info["moderation"]["state"] == "ready", info["moderation"]
        # Silence a stretch of the customer's speech by hand before it plays: its words must
        # reach the counselor masked.
        muted = await call.counselor_api.mute(call.call_id, 1.5, 5.0)
        assert muted["late_s"] == 0.0
        async with http.ws_connect(url, headers={"Authorization": f"Bearer {call.counselor_api.token}"}) as ws:
            deadline = time.monotonic() + CALL_S
            while (left := deadline - time.monotonic()) > 0:
                try:
                    message = await asyncio.wait_for(ws.receive_json(), left)
                except TimeoutError:
                    break
                events.append((time.monotonic(), message))
                if message["type"] == "stats" and message["stats"]["cleared_until_s"] is not None:
                    cleared.append(message["stats"]["cleared_until_s"])
        final = await call.counselor_api.call(call.call_id)
    finally:
        await call.close()

    # The watermark comes from the transcriber now: it starts low and moves with the call.
    assert cleared and cleared[0] < 3.0 and cleared[-1] > CALL_S - DELAY_S - 6.0, cleared
    assert all(b >= a for a, b in zip(cleared, cleared[1:]))
    moderation = final["moderation"]
    assert moderation["passes"] >= 5 and moderation["lag_s"] < 3.0
    assert str(tiny_whisper) in moderation["detail"]  # the model version, recorded for QA
    # The keyword lists judge every pass; kor_unsmile's weights cannot be had here, which
    # is reported while the keywords carry on.
    assert moderation["keywords"]["state"] == "ready"
    assert moderation["classifier"]["state"] == "unavailable" and moderation["classifier"]["detail"]
    assert moderation["check_errors"] == 0

    transcript = [(at, m) for at, m in events if m["type"] == "transcript"]
    words = [(at, w) for at, m in transcript for w in m["confirmed"] + m["provisional"]]
    assert words, "no transcript reached the counselor"
    for received_at, word in words:
        assert 0.0 <= word["start"] <= word["end"] <= CALL_S
        # Shown as its audio plays, not before: the word's start left the customer at
        # send_wall and plays DELAY_S later (the release ticks every 0.1 s).
        sent = speech.send_wall(word["start"])
        assert sent is not None and received_at >= sent + DELAY_S - 0.05, (word, received_at - sent)
    under_mute = [w for _, w in words if w["start"] < 5.0 and w["end"] > 1.5]
    assert under_mute, "no word fell under the mute span"
    assert all(w["text"] is None and w["muted"] == "manual:anna" for w in under_mute), under_mute
    assert all(w["text"] for _, w in words if w not in under_mute)
    # Random weights make garbage words, but only where there was speech.
    in_speech = [w for _, w in words if any(s - 0.5 <= w["start"] <= e + 0.5 for s, e, _ in utterances)]
    assert len(in_speech) >= 0.8 * len(words)

    # The call log holds every confirmed word, the manual mute and the model version.
    with sqlite3.connect(f"file:{stt_server.data_dir / 'callguard.db'}?mode=ro", uri=True, timeout=10) as db:
        logged = db.execute("SELECT start, text FROM call_words WHERE call_id = ?", (call.call_id,)).fetchall()
        versions = json.loads(
            db.execute("SELECT versions FROM call_config WHERE call_id = ?", (call.call_id,)).fetchone()[0]
        )
        mutes = [
            json.loads(d)
            for (d,) in db.execute(
                "SELECT detail FROM call_events WHERE call_id = ? AND kind = 'mute'", (call.call_id,)
            )
        ]
    shown = [w for _, m in transcript for w in m["confirmed"]]
    assert len(logged) >= len(shown) > 0
    assert {round(s, 3) for s, _ in logged} >= {w["start"] for w in shown}
    assert str(tiny_whisper) in versions["stt"]["detail"]
    assert any(m["start"] == 1.5 and m["end"] == 5.0 for m in mutes), mutes

    # The server's metrics count this call's passes (it has ended: from the running totals).
    async with http.get(f"{stt_server.base_url}/metrics") as response:
        scraped = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(await response.text())
            for s in family.samples
        }
    assert scraped[("callguard_stt_passes_total", ())] >= moderation["passes"]
    assert scraped[("callguard_check_available", (("check", "stt"),))] == 1.0
    assert scraped[("callguard_stt_queue_depth", ())] == 0.0


@pytest.mark.browser
async def test_counselor_page_with_moderation_running(stt_server: LocalServer, http: aiohttp.ClientSession) -> None:
    # The light is on (a model is loaded), the transcript shows, and a muted stretch is masked.
    await asyncio.wait_for(_moderated_page(stt_server, http), timeout=75)


async def _moderated_page(server: LocalServer, http: aiohttp.ClientSession) -> None:
    audio, _ = tiny_models.korean_call(CALL_S - 2.0, sample_rate=48000)
    speech = RecordingSource(samples=(np.clip(audio, -1, 1) * 32767).astype(np.int16))
    customer = CallPeer(speech, Recorder(CALL_S + 5))
    mic = write_wav(server.data_dir / "counselor-mic.wav", np.zeros(16000, dtype=np.int16), rate=16000)
    anna = ApiClient(server.base_url, http)
    await anna.login("anna", PASSWORD)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(mic))
        call_id = None
        try:
            page = await (await browser.new_context(locale="ko-KR", viewport=DESKTOP)).new_page()
            page.set_default_timeout(10000)
            await page.goto(f"{server.base_url}/login")
            await page.get_by_label("사용자 이름").fill("anna")
            await page.get_by_label("비밀번호").fill(PASSWORD)
            await page.get_by_role("button", name="로그인").click()
            await page.wait_for_url("**/counselor")
            await page.get_by_role("button", name="통화 시작").click()
            link = page.get_by_label("고객 초대 링크")
            await expect(link).to_have_value(re.compile(r"/join/\S+#\S+$"))
            invite = await link.input_value()
            path, token = invite.split("#", 1)
            call_id = path.rsplit("/", 1)[1]
            await customer.join(ApiClient(server.base_url, http, token), call_id, "customer")
            await customer.wait_connected()
            await expect(page.locator("#call-status")).to_have_text("통화 중")
            # All of the customer's speech, so that whichever words the random model makes
            # (late under load, or some skipped) come masked.
            await anna.mute(call_id, 0.0, CALL_S)
            # A model is loaded: protected, or partly when the checks fall behind; never off.
            light = page.locator("#protection")
            await expect(light).to_have_attribute("data-level", re.compile(r"^(protected|degraded)$"))
            await expect(page.locator("#protection-word")).to_have_text(re.compile(r"^(보호 중|일부 보호 안 됨)$"))
            await expect(page.locator("#transcript-card")).to_be_visible()
            await expect(page.locator("#transcript .muted-word").first).to_have_text(
                "[걸러짐: 직접 차단]", timeout=20000
            )
            await expect(page.locator("#mute-count")).to_have_text("1 (직접 차단 1건)")
            await looks_right(page, "moderated")
            assert await page.evaluate("window.callguardMissingMessages") == []
        finally:
            await browser.close()
            await customer.close()
            if call_id:
                await anna.hangup(call_id)
