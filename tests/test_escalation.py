"""Escalation: abuse spans counted as their audio plays, the warning prompt mixed into what
the customer hears (real aiortc peers over loopback), the counselor told, the call ended at
the limit, all of it in the call's log for QA.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from relay.calls.escalation import Escalation, reason_sources
from relay.config import ConfigError, EscalationConfig, parse_config
from relay.media.prompt import SHIPPED_WARNING, PromptError, load_prompt
from testkit.client import ApiClient, ApiFailure
from testkit.local_server import LocalServer

from .conftest import ESCALATION_PROMPT_HZ, ESCALATION_PROMPT_S, PASSWORD, open_call

RATE = 48000


def _mute(span_id: int, end: float, reason: str) -> dict[str, object]:
    return {"type": "mute", "span_id": span_id, "start": end - 0.5, "end": end, "reason": reason}


def test_spans_count_once_played_and_unless_lifted() -> None:
    esc = Escalation(EscalationConfig(warn_after=2, end_after=3, sources=["keyword", "classifier"]))
    esc.observe(_mute(1, 2.0, "keyword:insult,classifier:악플/욕설"))  # one span, two sources: counts once
    esc.observe(_mute(2, 3.0, "manual"))  # not a counted source
    esc.observe(_mute(3, 4.0, "classifier:악플/욕설"))
    esc.observe({"type": "unmute", "span_id": 3})  # revised away before playout: no abuse
    esc.observe(_mute(4, 5.0, "undecided:transcription_skipped"))
    assert esc.tick(1.9) == [] and esc.abuse_spans == 0  # not played yet
    assert esc.tick(10.0) == [] and esc.abuse_spans == 1
    esc.observe(_mute(5, 11.0, "keyword:profanity"))
    esc.observe(_mute(6, 11.5, "keyword:threat"))
    assert esc.tick(12.0) == ["warning", "limit"]
    assert esc.view() == {"abuse_spans": 3, "stage": "limit"}
    esc.observe(_mute(7, 13.0, "keyword:threat"))
    assert esc.tick(14.0) == []  # each stage is reached once


def test_zero_switches_a_stage_off() -> None:
    esc = Escalation(EscalationConfig(warn_after=0, end_after=0))
    for i in range(5):
        esc.observe(_mute(i, 1.0, "keyword:insult"))
    assert esc.tick(2.0) == [] and esc.abuse_spans == 5


def test_reason_sources() -> None:
    assert reason_sources("keyword:insult,classifier:악플/욕설") == {"keyword", "classifier"}
    assert reason_sources("manual") == {"manual"} and reason_sources("") == set()


def test_config_is_checked() -> None:
    with pytest.raises(ConfigError, match="end_after"):
        parse_config({"escalation": {"warn_after": 5, "end_after": 2}})
    with pytest.raises(ConfigError, match="sources"):
        parse_config({"escalation": {"sources": ["keywords"]}})


def test_the_shipped_prompt_and_bad_files(tmp_path: Path) -> None:
    prompt = load_prompt(SHIPPED_WARNING)
    assert 3.0 < prompt.size / RATE < 10.0
    assert np.sqrt(np.mean(prompt.astype(np.float64) ** 2)) > 500  # speech, not silence
    (tmp_path / "junk.wav").write_bytes(b"not a wav")
    with pytest.raises(PromptError, match="not a PCM WAV"):
        load_prompt(tmp_path / "junk.wav")
    with pytest.raises(PromptError, match="no such file"):
        load_prompt(tmp_path / "missing.wav")


def _band_level(samples: np.ndarray, hz: float) -> float:
    """Amplitude of the `hz` component (single-bin DFT over the window)."""
    x = samples.astype(np.float64)
    t = np.arange(x.size) / RATE
    return float(2 * np.abs(np.dot(x, np.exp(-2j * np.pi * hz * t))) / max(1, x.size))


async def test_warning_reaches_the_customer_then_the_call_ends(
    escalating_server: LocalServer, http: aiohttp.ClientSession
) -> None:
    server = escalating_server
    await asyncio.wait_for(_escalate(server.base_url, server.delay_s, http, server), timeout=40)


async def _escalate(base_url: str, delay_s: float, http: aiohttp.ClientSession, server: LocalServer) -> None:
    call = await open_call(server, http, counselor="anna")
    api, heard = call.counselor_api, call.customer.recorder
    assert heard is not None
    seen: list[dict[str, object]] = []
    ws = await http.ws_connect(f"{base_url.replace('http', 'ws')}/api/calls/{call.call_id}/events?token={api.token}")

    async def listen() -> None:
        async for msg in ws:
            seen.append(json.loads(msg.data))

    listener = asyncio.ensure_future(listen())
    try:
        await asyncio.sleep(delay_s + 0.3)
        for _ in range(2):
            await api.request("POST", f"/api/calls/{call.call_id}/dump", {})
            await asyncio.sleep(delay_s + 0.1)
        info = await _wait_for(api, call.call_id, lambda c: c["escalation"]["stage"] == "warning")
        assert info["escalation"]["abuse_spans"] == 2
        warned_at = heard.length
        await asyncio.sleep(ESCALATION_PROMPT_S + 0.1)
        # The prompt may have begun a poll before we saw the stage: "before" ends earlier.
        before = heard.samples[max(0, warned_at - int(1.5 * RATE)) : warned_at - RATE // 2]
        during = heard.samples[warned_at : warned_at + int((ESCALATION_PROMPT_S - 0.2) * RATE)]
        assert _band_level(before, ESCALATION_PROMPT_HZ) < 300, "no prompt before the warning"
        # The prompt's tone (about 9800 peak sent) is heard, mixed with the counselor's 900 Hz voice.
        assert _band_level(during, ESCALATION_PROMPT_HZ) > 3000
        assert _band_level(during, 900.0) > 3000
        warnings = [e for e in seen if e.get("type") == "escalation"]
        assert warnings and warnings[0]["stage"] == "warning" and warnings[0]["prompt_s"] == ESCALATION_PROMPT_S

        await api.request("POST", f"/api/calls/{call.call_id}/dump", {})
        for _ in range(40):  # the third span plays out, the limit ends the call
            try:
                await api.call(call.call_id)
            except ApiFailure as gone:
                assert gone.status == 404
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the call did not end at the limit")
        await asyncio.sleep(0.2)
        assert {"type": "ended", "reason": "abuse"} in seen
        assert any(e.get("type") == "escalation" and e.get("stage") == "limit" for e in seen)
    finally:
        listener.cancel()
        await ws.close()
        await call.close(hangup=False)

    sue = ApiClient(base_url, http)
    await sue.login("sue", PASSWORD)
    logged = await sue.request("GET", f"/api/qa/calls/{call.call_id}")
    assert logged["summary"]["end_reason"] == "abuse"
    stages = [e["detail"]["stage"] for e in logged["events"] if e["kind"] == "escalation"]
    assert stages == ["warning", "limit"]


async def _wait_for(api: ApiClient, call_id: str, ok, timeout: float = 4.0) -> dict:  # type: ignore[no-untyped-def]
    for _ in range(int(timeout / 0.1)):
        info = await api.call(call_id)
        if ok(info):
            return info
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached: {info['escalation']}")


async def test_end_and_report(server: LocalServer, http: aiohttp.ClientSession, anna: ApiClient) -> None:
    created = await anna.create_call()
    ended = await anna.request("POST", f"/api/calls/{created['call_id']}/report", {})
    assert ended == {"state": "ended", "end_reason": "abuse_reported"}
    sue = ApiClient(server.base_url, http)
    await sue.login("sue", PASSWORD)
    logged = await sue.request("GET", f"/api/qa/calls/{created['call_id']}")
    assert logged["summary"]["end_reason"] == "abuse_reported"
    reported = [e["detail"] for e in logged["events"] if e["kind"] == "reported"]
    assert reported == [{"by": "anna", "abuse_spans": 0, "stage": "none"}]
