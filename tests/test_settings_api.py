"""Delay and policy changed without a restart (relay/web/settings_api.py), against a
running server: a supervisor changes a live call's settings and the server's default; a
counselor may not; bad values, unknown calls and unknown settings are a 4xx, never a 5xx;
each change is in the call's events and the access log."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from testkit.client import ApiClient, ApiFailure
from testkit.local_server import LocalServer

from .conftest import PASSWORD


async def _fails(status: int, code: str, coro) -> ApiFailure:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiFailure) as info:
        await coro
    assert (info.value.status, info.value.code) == (status, code), str(info.value)
    return info.value


async def _events_until(ws: aiohttp.ClientWebSocketResponse, kind: str) -> dict:  # type: ignore[type-arg]
    while True:
        event = await asyncio.wait_for(ws.receive_json(), 5)
        if event["type"] == kind:
            return event  # type: ignore[no-any-return]


async def test_a_supervisor_changes_a_live_calls_delay_and_policy(
    server: LocalServer, http: aiohttp.ClientSession, anna: ApiClient
) -> None:
    sue = ApiClient(server.base_url, http)
    await sue.login("sue", PASSWORD)
    call = await anna.create_call()
    path = f"/api/calls/{call['call_id']}/settings"
    url = f"{server.base_url}/api/calls/{call['call_id']}/events"
    async with http.ws_connect(url, headers={"Authorization": f"Bearer {anna.token}"}) as ws:
        changed = await sue.request("PATCH", path, {"delay_s": 2.5, "max_s": 3, "undecided_policy": "mute"})
        expected = {"delay_s": 2.5, "max_s": 3.0, "undecided_policy": "mute", "mute_sound": "silence"}
        assert changed["settings"] == expected
        event = await _events_until(ws, "settings")
        assert event["by"] == "sue" and event["changed"]["delay_s"] == [1.5, 2.5]
        assert event["changed"]["undecided_policy"] == ["play", "mute"]
    seen = await anna.call(call["call_id"])
    assert seen["delay_s"] == 2.5 and seen["settings"]["undecided_policy"] == "mute"

    # Counselors may not, not even on their own call; bad bodies are a 400 that says why.
    await _fails(403, "forbidden", anna.request("PATCH", path, {"delay_s": 3.0}))
    for body, says in (
        ({"delay_s": 99}, "delay.delay_s"),
        ({"delay_s": "2"}, "delay.delay_s must be a number"),
        ({"delay_s": True}, "delay.delay_s must be a number"),
        ({"mute_sound": "siren"}, "delay.mute_sound must be one of"),
        ({"fade_ms": 1.0}, "fade_ms: not a setting that changes live"),
        ({}, "nothing to change"),
    ):
        failure = await _fails(400, "bad_request", sue.request("PATCH", path, body))
        assert says in str(failure), str(failure)
    await _fails(400, "bad_request", sue.request("PATCH", path, [1]))
    await _fails(404, "unknown_call", sue.request("PATCH", "/api/calls/nosuchcall/settings", {"delay_s": 2.0}))
    assert (await anna.call(call["call_id"]))["settings"]["delay_s"] == 2.5  # nothing refused was applied

    await anna.hangup(call["call_id"])
    await _fails(404, "unknown_call", sue.request("PATCH", path, {"delay_s": 2.0}))
    logged = await sue.request("GET", f"/api/qa/calls/{call['call_id']}")
    (settings,) = [e for e in logged["events"] if e["kind"] == "settings"]
    assert settings["detail"]["by"] == "sue" and settings["detail"]["settings"]["delay_s"] == 2.5
    accesses = (await sue.request("GET", f"/api/qa/access?call_id={call['call_id']}"))["accesses"]
    (access,) = [a for a in accesses if a["action"] == "call_settings_changed"]
    assert access["user_name"] == "sue" and access["detail"]["delay_s"] == [1.5, 2.5]


async def test_the_default_applies_to_calls_created_afterwards(
    server: LocalServer, http: aiohttp.ClientSession, anna: ApiClient
) -> None:
    sue = ApiClient(server.base_url, http)
    await sue.login("sue", PASSWORD)
    before = (await sue.request("GET", "/api/settings"))["settings"]
    await _fails(403, "forbidden", anna.request("GET", "/api/settings"))
    await _fails(403, "forbidden", anna.request("PATCH", "/api/settings", {"delay_s": 2.0}))
    await _fails(400, "bad_request", sue.request("PATCH", "/api/settings", {"max_s": -1}))
    running = await anna.create_call()
    try:
        changed = await sue.request("PATCH", "/api/settings", {"delay_s": 2.0, "mute_sound": "beep"})
        assert changed["settings"] == {**before, "delay_s": 2.0, "mute_sound": "beep"}
        assert (await sue.request("GET", "/api/settings"))["settings"] == changed["settings"]
        assert (await anna.call(running["call_id"]))["delay_s"] == before["delay_s"]  # running calls keep theirs
        later = await anna.create_call()
        assert later["delay_s"] == 2.0 and later["settings"]["mute_sound"] == "beep"
        await anna.hangup(later["call_id"])
    finally:  # the server is shared with other tests
        await sue.request("PATCH", "/api/settings", before)
        await anna.hangup(running["call_id"])
    accesses = (await sue.request("GET", "/api/qa/access"))["accesses"]
    mine = [a for a in accesses if a["action"] == "default_settings_changed"]
    assert mine[0]["detail"] == {"delay_s": [2.0, before["delay_s"]], "mute_sound": ["beep", before["mute_sound"]]}
    assert mine[1]["user_name"] == "sue" and mine[1]["detail"]["delay_s"] == [before["delay_s"], 2.0]
