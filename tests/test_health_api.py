"""/healthz and /metrics against running servers: liveness and moderation state for anyone,
the Prometheus exposition for loopback (or the configured token), figures that follow calls.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from relay.web.health_api import _loopback
from testkit.client import ApiClient
from testkit.local_server import LocalServer

from .conftest import start_server

NAMES = {
    "callguard_calls",
    "callguard_calls_ended",
    "callguard_undecided_seconds",
    "callguard_muted_seconds",
    "callguard_mutes",
    "callguard_moderation_decision_lag_seconds",
    "callguard_transcription_lag_seconds",
    "callguard_stt_passes",
    "callguard_stt_queue_depth",
    "callguard_check_available",
    "callguard_classifier_overloaded",
    "process_cpu_seconds",
}


async def _scrape(http: aiohttp.ClientSession, base_url: str, token: str | None = None) -> dict[str, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(f"{base_url}/metrics", headers=headers) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    samples: dict[str, dict] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
        samples.setdefault(family.name, {})
    return samples


async def test_healthz_says_what_moderation_can_do(server: LocalServer, http: aiohttp.ClientSession) -> None:
    async with http.get(f"{server.base_url}/healthz") as response:  # no credentials
        assert response.status == 200
        health = await response.json()
    assert health["status"] == "ok"
    # The test server has no speech model: it relays, and says moderation cannot run.
    assert health["moderation"] == {
        "ready": False,
        "stt": "unavailable",
        "keywords": "ready",
        "classifier": "unavailable",
    }


async def test_metrics_follow_calls_and_mutes(
    server: LocalServer, http: aiohttp.ClientSession, anna: ApiClient
) -> None:
    before = await _scrape(http, server.base_url)
    assert NAMES <= before.keys(), NAMES - before.keys()
    assert before["callguard_check_available"][(("check", "keywords"),)] == 1.0
    assert before["callguard_check_available"][(("check", "stt"),)] == 0.0
    assert before["process_cpu_seconds_total"][()] > 0

    waiting = before["callguard_calls"][(("state", "waiting"),)]
    created = await anna.create_call()
    await anna.mute(created["call_id"], 1.0, 1.5)
    during = await _scrape(http, server.base_url)
    assert during["callguard_calls"][(("state", "waiting"),)] == waiting + 1
    manual = (("category", "span"), ("source", "manual"))
    assert during["callguard_mutes_total"][manual] == before.get("callguard_mutes_total", {}).get(manual, 0) + 1

    await anna.hangup(created["call_id"])
    after = await _scrape(http, server.base_url)
    assert after["callguard_calls"][(("state", "waiting"),)] == waiting
    hangups = (("reason", "hangup"),)
    assert (
        after["callguard_calls_ended_total"][hangups]
        == before.get("callguard_calls_ended_total", {}).get(hangups, 0) + 1
    )


async def test_metrics_token(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    server = start_server(tmp_path, users=False, server_extra='metrics_token = "scrape-me"')
    try:
        async with http.get(f"{server.base_url}/metrics") as response:
            assert response.status == 401
            assert (await response.json())["error"] == "unauthenticated"
        async with http.get(f"{server.base_url}/metrics", headers={"Authorization": "Bearer wrong"}) as response:
            assert response.status == 401
        assert "callguard_calls" in await _scrape(http, server.base_url, token="scrape-me")
    finally:
        server.stop()


def test_only_loopback_without_a_token() -> None:
    assert _loopback("127.0.0.1") and _loopback("::1") and _loopback("127.0.0.2")
    assert not _loopback("10.0.0.5") and not _loopback("192.168.1.2") and not _loopback(None)
    assert not _loopback("not-an-address")
