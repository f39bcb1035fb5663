"""Forged requests: with a signed-in browser's cookie, another site's POSTs and sockets get nothing."""

from __future__ import annotations

import aiohttp
import pytest

from testkit.client import ApiClient
from testkit.local_server import LocalServer

from .conftest import PASSWORD

EVIL = "http://evil.example"


async def _cookie_session(server: LocalServer) -> tuple[aiohttp.ClientSession, ApiClient]:
    session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
    api = ApiClient(server.base_url, session)
    await api.login("ben", PASSWORD)
    api.token = None  # from here on only the cookie speaks, as in a browser
    return session, api


async def test_foreign_origin_and_simple_content_types_are_refused(server: LocalServer) -> None:
    session, api = await _cookie_session(server)
    async with session:
        own = (await api.create_call())["call_id"]
        forged = [
            ("/api/calls", {"Origin": EVIL, "Content-Type": "application/json"}, b"{}", 403),
            ("/api/calls", {"Origin": "null", "Content-Type": "application/json"}, b"{}", 403),
            ("/api/calls", {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"}, b"{}", 403),
            ("/api/calls", {"Content-Type": "text/plain"}, b"{}", 415),
            ("/api/calls", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=1", 415),
            (f"/api/calls/{own}/mutes", {"Content-Type": "text/plain"}, b'{"start": 1, "end": 2}', 415),
            (f"/api/calls/{own}/mutes", {"Origin": EVIL, "Content-Type": "application/json"}, b"{}", 403),
            (f"/api/calls/{own}/hangup", {"Origin": EVIL}, b"", 403),
            ("/api/logout", {"Origin": EVIL}, b"", 403),
            ("/api/login", {"Content-Type": "text/plain"}, b'{"username": "ben", "password": "x"}', 415),
            ("/api/login", {"Origin": EVIL, "Content-Type": "application/json"}, b"{}", 403),
        ]
        for path, headers, body, status in forged:
            async with session.post(server.base_url + path, data=body, headers=headers) as response:
                assert response.status == status, (path, headers)
                assert (await response.json())["error"] in ("cross_origin", "unsupported_media_type")
        # Nothing happened: the call runs, the session lives, no call was created.
        listed = await api.request("GET", "/api/calls")
        assert [c["call_id"] for c in listed["calls"]] == [own]
        # Our own origin (as our pages send it) and no Origin at all (not a browser) pass.
        same = {"Origin": server.base_url, "Sec-Fetch-Site": "same-origin", "Content-Type": "application/json"}
        async with session.post(f"{server.base_url}/api/calls/{own}/hangup", data=b"{}", headers=same) as response:
            assert response.status == 200
        async with session.delete(
            f"{server.base_url}/api/qa/calls/{own}/marks/1", headers={"Origin": EVIL}
        ) as response:
            assert response.status == 403


async def test_events_socket_checks_origin(server: LocalServer) -> None:
    session, api = await _cookie_session(server)
    async with session:
        call_id = (await api.create_call())["call_id"]
        url = f"{server.base_url}/api/calls/{call_id}/events"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(url, origin=EVIL)
        assert refused.value.status == 403
        async with session.ws_connect(url, origin=server.base_url) as ws:
            assert (await ws.receive_json(timeout=5))["type"] == "state"
        await api.hangup(call_id)
