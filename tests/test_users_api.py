"""Accounts on the console (relay/web/users_api.py), against a running server: a supervisor
disables, enables, resets and revokes; a reset password must be changed before anything
else; an open events socket of a disabled account is closed within a few seconds."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from testkit.client import ApiClient, ApiFailure
from testkit.local_server import LocalServer

from .conftest import PASSWORD

NEW_PASSWORD = "lantern-orchard-violet"


async def _fails(status: int, code: str, coro) -> ApiFailure:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiFailure) as info:
        await coro
    assert (info.value.status, info.value.code) == (status, code), str(info.value)
    return info.value


async def test_a_supervisor_disables_resets_and_revokes_an_account(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    server.add_user("mira", "counselor", PASSWORD)  # this test's own: the others keep theirs
    sue, anna, mira = (ApiClient(server.base_url, http) for _ in range(3))
    await sue.login("sue", PASSWORD)
    await anna.login("anna", PASSWORD)
    assert (await mira.login("mira", PASSWORD))["must_change_password"] is False
    await _fails(403, "forbidden", anna.request("GET", "/api/users"))
    await _fails(403, "forbidden", anna.request("POST", "/api/users/mira/disable", {}))
    listed = {u["name"]: u for u in (await sue.request("GET", "/api/users"))["users"]}
    assert listed["mira"] == {
        "name": "mira",
        "role": "counselor",
        "disabled": False,
        "locked": False,
        "must_change_password": False,
        "sessions": 1,
    }

    # Disabling ends the sessions, and the open events socket closes within the recheck.
    call = await mira.create_call()
    url = f"{server.base_url}/api/calls/{call['call_id']}/events"
    async with http.ws_connect(url, headers={"Authorization": f"Bearer {mira.token}"}) as ws:
        assert (await asyncio.wait_for(ws.receive_json(), 5))["type"] == "state"
        disabled = await sue.request("POST", "/api/users/MIRA/disable", {})  # any spelling of the name
        assert disabled["disabled"] is True and disabled["sessions"] == 0
        since = time.monotonic()
        while (msg := await asyncio.wait_for(ws.receive(), 5)).type == aiohttp.WSMsgType.TEXT:
            pass
        assert msg.type == aiohttp.WSMsgType.CLOSE and ws.close_code == 4001
        assert time.monotonic() - since < 4.0
    await _fails(401, "unauthenticated", mira.request("GET", "/api/me"))
    await _fails(401, "bad_credentials", mira.login("mira", PASSWORD))
    await sue.request("POST", "/api/users/mira/enable", {})
    await sue.hangup(call["call_id"])

    # A reset password opens a session that may only change it.
    reset = await sue.request("POST", "/api/users/mira/reset-password", {})
    assert reset["must_change_password"] is True and len(reset["password"]) >= 12
    await _fails(401, "bad_credentials", mira.login("mira", PASSWORD))
    assert (await mira.login("mira", reset["password"]))["must_change_password"] is True
    await _fails(403, "password_change_required", mira.request("GET", "/api/calls"))
    await _fails(403, "password_change_required", mira.create_call())
    assert (await mira.request("GET", "/api/me"))["must_change_password"] is True
    change = "/api/me/password"
    await _fails(
        400, "bad_password", mira.request("POST", change, {"current_password": "wrong", "new_password": NEW_PASSWORD})
    )
    await _fails(
        400,
        "bad_password",
        mira.request("POST", change, {"current_password": reset["password"], "new_password": "short"}),
    )
    await _fails(400, "bad_request", mira.request("POST", change, {"new_password": NEW_PASSWORD}))
    await mira.request("POST", change, {"current_password": reset["password"], "new_password": NEW_PASSWORD})
    assert (await mira.request("GET", "/api/calls"))["calls"] == []  # the same session goes on
    await _fails(401, "bad_credentials", ApiClient(server.base_url, http).login("mira", reset["password"]))

    revoked = await sue.request("POST", "/api/users/mira/revoke", {})
    assert revoked["revoked"] == 1 and revoked["sessions"] == 0
    await _fails(401, "unauthenticated", mira.request("GET", "/api/me"))
    await _fails(409, "own_account", sue.request("POST", "/api/users/Sue/disable", {}))
    await _fails(404, "unknown_user", sue.request("POST", "/api/users/nobody/enable", {}))

    accesses = (await sue.request("GET", "/api/qa/access"))["accesses"]
    done = [(a["user_name"], a["action"]) for a in accesses if a["detail"].get("user") == "mira"]
    for action in ("account_disabled", "account_enabled", "password_reset", "password_changed", "sessions_revoked"):
        assert any(what == action for _, what in done), (action, done)
    assert ("sue", "password_reset") in done and ("mira", "password_changed") in done
    assert all(reset["password"] not in str(a["detail"]) for a in accesses)
