"""Behind a trusted proxy: the client's address and scheme come from X-Forwarded-*; from
anyone else those headers change nothing. Invite links never follow a foreign Host."""

from __future__ import annotations

import aiohttp

from testkit.client import ApiClient
from testkit.local_server import LocalServer

from .conftest import PASSWORD

LOGIN = {"username": "anna", "password": PASSWORD}


async def test_cookie_is_secure_behind_a_trusted_tls_proxy(strict: LocalServer, http: aiohttp.ClientSession) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    async with http.post(strict.base_url + "/api/login", json=LOGIN, headers=headers) as response:
        assert response.status == 200
        assert "Secure" in response.headers["Set-Cookie"] and "HttpOnly" in response.headers["Set-Cookie"]
    async with http.post(strict.base_url + "/api/login", json=LOGIN) as response:
        assert "Secure" not in response.headers["Set-Cookie"]


async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"}
    async with http.post(server.base_url + "/api/login", json=LOGIN, headers=headers) as response:
        assert "Secure" not in response.headers["Set-Cookie"]
        token = (await response.json())["token"]
    async with http.post(
        server.base_url + "/api/calls", json={}, headers={**headers, "Authorization": f"Bearer {token}"}
    ) as response:
        created = await response.json()
    assert created["invite"]["url"].startswith(server.base_url + "/join/")
    await ApiClient(server.base_url, http, token).hangup(created["call_id"])


async def test_a_foreign_host_never_names_the_invite_link(server: LocalServer, http: aiohttp.ClientSession) -> None:
    api = ApiClient(server.base_url, http)
    await api.login("anna", PASSWORD)
    async with http.post(
        server.base_url + "/api/calls",
        json={},
        headers={"Host": "evil.example", "Authorization": f"Bearer {api.token}"},
    ) as response:
        created = await response.json()
    # Without server.public_url, only a loopback Host is taken; otherwise the link is a path.
    assert created["invite"]["url"] == f"/join/{created['call_id']}#{created['invite']['token']}"
    await api.hangup(created["call_id"])


async def test_the_throttle_sees_the_forwarded_client_address(strict: LocalServer, http: aiohttp.ClientSession) -> None:
    # strict: an address gets 6 failures free; names differ so no account is throttled.
    async def attempt(name: str, address: str) -> int:
        body = {"username": name, "password": "wrong-password-here"}
        async with http.post(strict.base_url + "/api/login", json=body, headers={"X-Forwarded-For": address}) as r:
            return r.status

    statuses = [await attempt(f"nobody{i}", "198.51.100.20") for i in range(7)]
    assert statuses == [401] * 6 + [429]
    assert await attempt("nobody-else", "198.51.100.21") == 401  # another client is not slowed
