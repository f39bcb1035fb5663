"""The web API against a running server: sign-in, roles, and every kind of bad input.

Each bad request must get its clear 4xx and leave the parallel live call flowing.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiortc import RTCPeerConnection

from testkit.client import ApiClient, ApiFailure
from testkit.local_server import LocalServer

from .conftest import PASSWORD, LiveCall, assert_flowing, open_call, start_server


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    running = start_server(
        Path(tmp_path_factory.mktemp("tight")),
        delay_s=0.5,
        extra="[calls]\nmax_concurrent = 2\nconnect_timeout_s = 2.0\ninvite_ttl_s = 5\nidle_timeout_s = 3.0\n"
        "lost_after_s = 2.0\nlost_grace_s = 3.0\n",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
async def live(server: LocalServer, tight: LocalServer, strict: LocalServer) -> AsyncIterator[LiveCall]:
    # `tight` and `strict` start first: starting a server blocks this process (its event
    # loop, and so the live call's peers) for seconds, and the live call must not be
    # running then (on a loaded machine a start took 10 s: both sides were "lost").
    async with aiohttp.ClientSession() as session:
        call = await open_call(server, session, counselor="sue")
        await asyncio.sleep(server.delay_s + 0.5)  # the delayed tone has reached the counselor
        await assert_flowing(call)
        yield call
        await call.close()


async def _fails(status: int, code: str, coro) -> ApiFailure:  # type: ignore[no-untyped-def]
    with pytest.raises(ApiFailure) as info:
        await coro
    assert (info.value.status, info.value.code) == (status, code), str(info.value)
    return info.value


async def _offer_sdp() -> str:
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def test_sign_in_and_out(server: LocalServer, http: aiohttp.ClientSession, live: LiveCall) -> None:
    api = ApiClient(server.base_url, http)
    await _fails(401, "bad_credentials", api.login("anna", "wrong-password"))
    await _fails(401, "bad_credentials", api.login("nobody", PASSWORD))
    data = await api.login("anna", PASSWORD)
    assert data["user"] == {"name": "anna", "role": "counselor"}
    assert data["must_change_password"] is False
    assert await api.request("GET", "/api/me") == {"name": "anna", "role": "counselor", "must_change_password": False}
    await api.request("POST", "/api/logout")
    await _fails(401, "unauthenticated", api.request("GET", "/api/me"))
    await assert_flowing(live)


async def test_unauthenticated_and_wrong_tokens(
    server: LocalServer, http: aiohttp.ClientSession, live: LiveCall
) -> None:
    anon = ApiClient(server.base_url, http)
    await _fails(401, "unauthenticated", anon.create_call())
    await _fails(401, "unauthenticated", anon.call(live.call_id))
    forged = ApiClient(server.base_url, http, token="x" * 43)
    await _fails(401, "unauthenticated", forged.call(live.call_id))
    await _fails(401, "unauthenticated", forged.offer(live.call_id, "customer", await _offer_sdp()))
    await assert_flowing(live)


async def test_roles_and_parties(
    server: LocalServer, http: aiohttp.ClientSession, anna: ApiClient, live: LiveCall
) -> None:
    qa = ApiClient(server.base_url, http)
    await qa.login("quinn", PASSWORD)
    await _fails(403, "forbidden", qa.create_call())
    await _fails(403, "forbidden", qa.call(live.call_id))
    # anna is a counselor, but not on sue's call
    await _fails(403, "forbidden", anna.call(live.call_id))
    await _fails(403, "forbidden", anna.offer(live.call_id, "counselor", await _offer_sdp()))
    await _fails(403, "forbidden", anna.mute(live.call_id, 1.0, 2.0))
    await _fails(403, "forbidden", anna.hangup(live.call_id))
    listed = await anna.request("GET", "/api/calls")
    assert live.call_id not in [c["call_id"] for c in listed["calls"]]
    await assert_flowing(live)


async def test_customer_token_is_limited_to_its_call_and_role(
    server: LocalServer, http: aiohttp.ClientSession, anna: ApiClient, live: LiveCall
) -> None:
    customer = ApiClient(server.base_url, http, token=live.invite_token)
    view = await customer.call(live.call_id)
    assert set(view) == {"call_id", "state", "peers", "ice_servers"}  # no stats, no counselor name
    await _fails(403, "forbidden", customer.offer(live.call_id, "counselor", await _offer_sdp()))
    await _fails(403, "forbidden", customer.mute(live.call_id, 1.0, 2.0))
    await _fails(403, "forbidden", customer.create_call())
    await _fails(403, "forbidden", customer.request("GET", "/api/me"))
    other = await anna.create_call()
    await _fails(403, "forbidden", customer.call(other["call_id"]))
    await _fails(403, "forbidden", customer.offer(other["call_id"], "customer", await _offer_sdp()))
    await anna.hangup(other["call_id"])
    await assert_flowing(live)


async def test_unknown_call(anna: ApiClient, live: LiveCall) -> None:
    await _fails(404, "unknown_call", anna.call("c_doesnotexist"))
    await _fails(404, "unknown_call", anna.offer("c_doesnotexist", "counselor", await _offer_sdp()))
    await _fails(404, "unknown_call", anna.hangup("c_doesnotexist"))
    await assert_flowing(live)


@pytest.mark.parametrize(
    "sdp",
    [
        "",
        "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n",
        "garbage\r\n" * 50,
        None,
    ],
)
async def test_malformed_sdp(anna: ApiClient, live: LiveCall, sdp: str | None) -> None:
    created = await anna.create_call()
    await _fails(
        400,
        "bad_sdp",
        anna.request(
            "POST", f"/api/calls/{created['call_id']}/offer", {"role": "counselor", "sdp": sdp, "type": "offer"}
        ),
    )
    await anna.hangup(created["call_id"])
    await assert_flowing(live)


async def test_malformed_bodies(
    server: LocalServer, http: aiohttp.ClientSession, anna: ApiClient, live: LiveCall
) -> None:
    headers = {"Authorization": f"Bearer {anna.token}", "Content-Type": "application/json"}
    url = f"{server.base_url}/api/calls/{live.call_id}/mutes"
    for body in (b"{not json", b"[1, 2]", b'"text"'):
        async with http.post(f"{server.base_url}/api/login", data=body, headers=headers) as response:
            assert response.status == 400 and (await response.json())["error"] == "bad_request"
    sue = ApiClient(server.base_url, http)
    await sue.login("sue", PASSWORD)
    for span in ({"start": 5}, {"start": 5, "end": 4}, {"start": -1, "end": 2}, {"start": "a", "end": 2}):
        await _fails(400, "bad_request", sue.request("POST", url[len(server.base_url) :], span))
    async with http.post(f"{server.base_url}/api/login", data=b"x" * 400_000, headers=headers) as response:
        assert response.status == 413 and (await response.json())["error"] == "body_too_large"
    await assert_flowing(live)


async def test_ended_call_refuses_rejoin(
    server: LocalServer, http: aiohttp.ClientSession, anna: ApiClient, live: LiveCall
) -> None:
    created = await anna.create_call()
    call_id = created["call_id"]
    # Until the customer joins, the call's own counselor gets the invite back (a page reload).
    assert (await anna.call(call_id))["invite"] == created["invite"]
    listed = {c["call_id"]: c for c in (await anna.request("GET", "/api/calls"))["calls"]}
    assert listed[call_id]["invite"] == created["invite"]
    sue = ApiClient(server.base_url, http)
    await sue.login("sue", PASSWORD)
    assert "invite" not in await sue.call(call_id)  # a supervisor sees the call, not its link
    customer = ApiClient(server.base_url, http, token=created["invite"]["token"])
    assert (await customer.call(call_id))["state"] == "waiting"
    assert (await customer.hangup(call_id))["state"] == "ended"
    # Hangup is idempotent for the parties; others still learn nothing about the call.
    assert (await customer.hangup(call_id))["state"] == "ended"
    assert (await anna.hangup(call_id))["state"] == "ended"
    assert (await sue.hangup(call_id))["state"] == "ended"
    ben = ApiClient(server.base_url, http)
    await ben.login("ben", PASSWORD)
    await _fails(404, "unknown_call", ben.hangup(call_id))
    await _fails(409, "call_ended", customer.offer(call_id, "customer", await _offer_sdp()))
    await _fails(404, "unknown_call", anna.offer(call_id, "counselor", await _offer_sdp()))
    assert "invite" not in await live.counselor_api.call(live.call_id)  # joined: the link is not handed out
    await assert_flowing(live)


async def test_events_socket_streams_state_and_stats(
    server: LocalServer, http: aiohttp.ClientSession, live: LiveCall
) -> None:
    url = f"{server.base_url}/api/calls/{live.call_id}/events"
    async with http.ws_connect(url, headers={"Authorization": f"Bearer {live.counselor_api.token}"}) as ws:
        first = await asyncio.wait_for(ws.receive_json(), 5)
        assert first == {
            "type": "state",
            "state": "active",
            "peers": {"customer": "connected", "counselor": "connected"},
            "lost": {},
        }
        stats = await asyncio.wait_for(ws.receive_json(), 5)
        assert stats["type"] == "stats" and stats["stats"]["frames_in"] > 0
    # The customer's socket authenticates by query string and gets no stats.
    async with http.ws_connect(url + f"?token={live.invite_token}") as ws:
        assert (await asyncio.wait_for(ws.receive_json(), 5))["type"] == "state"
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(ws.receive_json(), 1.5)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url + "?token=forged")
    assert refused.value.status == 401
    log = server.log()
    assert live.invite_token not in log, "tokens must not reach the access log"
    await assert_flowing(live)


# --- limits, on a server configured tight -------------------------------------------------


async def test_call_limit_peer_timeout_expiry_and_idle(
    tight: LocalServer, http: aiohttp.ClientSession, server: LocalServer, live: LiveCall
) -> None:
    api = ApiClient(tight.base_url, http)
    await api.login("anna", PASSWORD)
    first, second = await api.create_call(), await api.create_call()
    await _fails(503, "too_many_calls", api.create_call())

    # A peer whose offer is answered but who never completes ICE is closed after the timeout.
    await api.offer(first["call_id"], "counselor", await _offer_sdp())
    assert (await api.call(first["call_id"]))["peers"]["counselor"] == "connecting"
    await asyncio.sleep(2.6)
    assert (await api.call(first["call_id"]))["peers"]["counselor"] == "failed"

    # Unused invites expire (5 s); the waiting calls end and free their places.
    await asyncio.sleep(3.5)
    customer = ApiClient(tight.base_url, http, token=second["invite"]["token"])
    failure = await _fails(401, "unauthenticated", customer.offer(second["call_id"], "customer", await _offer_sdp()))
    assert "expired" in str(failure)
    assert (await api.request("GET", "/api/calls"))["calls"] == []
    await api.create_call()  # room again
    await assert_flowing(live)


async def test_call_with_both_sides_gone_ends_as_idle(
    tight: LocalServer, http: aiohttp.ClientSession, live: LiveCall
) -> None:
    call = await open_call(tight, http)
    assert (await call.counselor_api.call(call.call_id))["state"] == "active"
    await call.close(hangup=False)
    await asyncio.sleep(5.0)  # idle_timeout_s = 3
    listed = await call.counselor_api.request("GET", "/api/calls")
    assert call.call_id not in [c["call_id"] for c in listed["calls"]]
    await _fails(404, "unknown_call", call.counselor_api.call(call.call_id))
    await assert_flowing(live)


# --- sign-in throttling and lockout, on the strict server (conftest.STRICT_AUTH) ---------


async def test_wrong_passwords_back_off_then_lock_until_a_supervisor_unlocks(
    strict: LocalServer, http: aiohttp.ClientSession
) -> None:
    strict.add_user("lena", "counselor", PASSWORD)
    where = {"X-Forwarded-For": "198.51.100.7"}

    async def attempt(password: str) -> tuple[int, dict[str, Any], Any]:
        body = {"username": "Lena", "password": password}  # any spelling of the name counts
        async with http.post(strict.base_url + "/api/login", json=body, headers=where) as response:
            return response.status, await response.json(), response.headers

    assert (await attempt("wrong-password-1"))[0] == 401
    assert (await attempt("wrong-password-2"))[0] == 401  # two free failures
    status, body, headers = await attempt(PASSWORD)  # even the right one waits now
    assert (status, body["error"]) == (429, "too_many_attempts") and int(headers["Retry-After"]) >= 1
    await asyncio.sleep(0.5)
    assert (await attempt("wrong-password-3"))[0] == 401
    assert (await attempt("wrong-password-4"))[0] == 429
    await asyncio.sleep(1.1)
    assert (await attempt("wrong-password-5"))[0] == 401  # the fourth failure in a row locks
    await asyncio.sleep(1.1)
    status, body, _ = await attempt(PASSWORD)
    assert (status, body["error"]) == (403, "account_locked")

    log = strict.log()
    assert "failed sign-in for 'Lena' from 198.51.100.7" in log
    assert "account 'Lena' locked after 4 failed sign-ins" in log
    assert PASSWORD not in log and "wrong-password" not in log
    sue = ApiClient(strict.base_url, http)
    await sue.login("sue", PASSWORD)
    accesses = (await sue.request("GET", "/api/qa/access"))["accesses"]
    assert any(a["action"] == "account_locked" and a["detail"]["user"] == "Lena" for a in accesses)

    unlocked = subprocess.run(
        [sys.executable, "-m", "relay.cli", "users", "unlock", "LENA", "--config", str(strict.config_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert unlocked.returncode == 0 and unlocked.stdout.strip() == "unlocked lena"
    status, body, _ = await attempt(PASSWORD)
    assert status == 200 and body["user"]["name"] == "lena"
    accesses = (await sue.request("GET", "/api/qa/access"))["accesses"]
    assert any(a["action"] == "account_unlocked" and a["detail"]["user"] == "lena" for a in accesses)


async def test_open_calls_per_counselor_are_limited(strict: LocalServer, http: aiohttp.ClientSession) -> None:
    api = ApiClient(strict.base_url, http)
    await api.login("anna", PASSWORD)
    for call in (await api.request("GET", "/api/calls"))["calls"]:
        await api.hangup(call["call_id"])
    first, second = await api.create_call(), await api.create_call()  # strict: 2 each
    await _fails(429, "too_many_open_calls", api.create_call())
    await api.hangup(first["call_id"])
    third = await api.create_call()
    for created in (second, third):
        await api.hangup(created["call_id"])


async def test_a_customer_gone_silent_is_lost_and_the_call_ends(
    tight: LocalServer, http: aiohttp.ClientSession, live: LiveCall
) -> None:
    call = await open_call(tight, http)
    try:
        # The customer's audio stops while ICE stays up (a frozen or closed tab looks so).
        call.customer.sent.stop()
        stopped = asyncio.get_running_loop().time()
        while (view := await call.counselor_api.call(call.call_id))["peers"]["customer"] != "lost":
            assert asyncio.get_running_loop().time() - stopped < 4.0, view["peers"]
            await asyncio.sleep(0.2)
        assert view["peers"]["counselor"] == "connected"
        assert 0 < view["lost"]["customer"]["ends_in_s"] <= 3.0
        while call.call_id in [c["call_id"] for c in (await call.counselor_api.request("GET", "/api/calls"))["calls"]]:
            assert asyncio.get_running_loop().time() - stopped < 8.0
            await asyncio.sleep(0.2)
    finally:
        await call.close(hangup=False)
    with sqlite3.connect(tight.data_dir / "callguard.db") as db:
        assert db.execute("SELECT end_reason FROM calls WHERE call_id = ?", (call.call_id,)).fetchone() == (
            "customer_lost",
        )
    # Hanging up a call that ended by itself is fine too.
    assert (await call.counselor_api.hangup(call.call_id))["state"] == "ended"
    await assert_flowing(live)
