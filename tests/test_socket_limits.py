"""Event WebSockets are capped per token and per call; a closed one frees its place."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from relay.web.errors import ApiError
from relay.web.socket_limits import SocketLimits
from testkit.client import ApiClient
from testkit.local_server import LocalServer

from .conftest import PASSWORD


def test_limits_count_and_release() -> None:
    limits = SocketLimits(per_call=3, per_token=2)
    with limits.hold("c1", "t1"), limits.hold("c1", "t1"):
        with pytest.raises(ApiError, match="this token"):
            with limits.hold("c1", "t1"):
                pass
        with limits.hold("c1", "t2"):
            with pytest.raises(ApiError, match="this call"):
                with limits.hold("c1", "t3"):
                    pass
            assert limits.open("c1") == 3
    assert limits.open() == 0 and not limits._calls and not limits._tokens


async def test_sockets_beyond_the_limits_are_refused_at_the_handshake(
    strict: LocalServer, http: aiohttp.ClientSession
) -> None:
    # strict: 2 sockets per token, 3 per call.
    api = ApiClient(strict.base_url, http)
    await api.login("ben", PASSWORD)
    created = await api.create_call()
    url = f"{strict.base_url}/api/calls/{created['call_id']}/events"
    invite = created["invite"]["token"]

    async def connect(token: str) -> aiohttp.ClientWebSocketResponse:
        return await http.ws_connect(f"{url}?token={token}")

    async def refused(token: str) -> int:
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await connect(token)
        return info.value.status

    first, second = await connect(api.token or ""), await connect(api.token or "")
    assert await refused(api.token or "") == 429
    third = await connect(invite)  # the customer's token has its own allowance...
    assert await refused(invite) == 429  # ...but the call is full
    await first.close()
    await asyncio.sleep(0.3)
    fourth = await connect(invite)
    for ws in (second, third, fourth):
        assert (await ws.receive_json(timeout=5))["type"] == "state"
        await ws.close()
    await api.hangup(created["call_id"])
