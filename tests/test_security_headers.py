"""Every response carries the security headers; API answers are never cached; no version leaks."""

from __future__ import annotations

import aiohttp

from testkit.local_server import LocalServer

from .conftest import PASSWORD


async def test_headers_on_pages_api_static_errors_and_redirects(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    for path, status in [
        ("/login", 200),
        ("/static/app.js", 200),
        ("/api/me", 401),
        ("/api/openapi.json", 200),
        ("/no-such-page", 404),
        ("/static/nothing.js", 404),
        ("/", 302),
    ]:
        async with http.get(server.base_url + path, allow_redirects=False) as response:
            assert response.status == status, path
            h = response.headers
            assert h["Server"] == "callguard", path
            assert (
                "frame-ancestors 'none'" in h["Content-Security-Policy"]
                and "script-src 'self'" in h["Content-Security-Policy"]
            )
            assert h["X-Frame-Options"] == "DENY" and h["X-Content-Type-Options"] == "nosniff"
            assert h["Referrer-Policy"] == "no-referrer"
            assert "Strict-Transport-Security" not in h  # plain http on loopback
            if path.startswith("/api/"):
                assert h["Cache-Control"] == "no-store"
    async with http.post(server.base_url + "/api/login", json={"username": "anna", "password": PASSWORD}) as response:
        assert response.headers["Cache-Control"] == "no-store" and response.headers["Server"] == "callguard"


async def test_hsts_behind_a_trusted_tls_proxy(strict: LocalServer, http: aiohttp.ClientSession) -> None:
    async with http.get(strict.base_url + "/login", headers={"X-Forwarded-Proto": "https"}) as response:
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")


async def test_forwarded_proto_from_an_untrusted_peer_is_ignored(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.base_url + "/login", headers={"X-Forwarded-Proto": "https"}) as response:
        assert "Strict-Transport-Security" not in response.headers
