"""Requests through a reverse proxy: the client's address, scheme and host as the proxy saw them.

X-Forwarded-For/-Proto/-Host are believed only from the addresses in
server.trusted_proxies; from anyone else they are ignored, or a client could claim any
address (and dodge the sign-in throttle) or any host (and steer the invite links).
Behind a TLS-terminating proxy the request then counts as https: the session cookie is
Secure and HSTS is sent.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from aiohttp import web

from relay.web.errors import Handler

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
TRUSTED_PROXIES = web.AppKey("trusted_proxies", list)


def networks(entries: list[str]) -> list[Network]:
    return [ipaddress.ip_network(e, strict=False) for e in entries]


def _trusted(address: str | None, trusted: list[Network]) -> bool:
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in n for n in trusted)


def _last(header: str) -> str:
    return header.split(",")[-1].strip()


def proxied(request: web.BaseRequest) -> dict[str, Any]:
    """What a trusted proxy says about the request: remote, scheme and host, as given."""
    trusted: list[Network] = request.app[TRUSTED_PROXIES] if isinstance(request, web.Request) else []
    if not trusted or not _trusted(request.remote, trusted):
        return {}
    changes: dict[str, Any] = {}
    if hops := request.headers.get("X-Forwarded-For"):
        # Walk back from the nearest hop: the first address not a trusted proxy is the client.
        addresses = [h.strip() for h in hops.split(",") if h.strip()]
        client = next((a for a in reversed(addresses) if not _trusted(a, trusted)), addresses[0] if addresses else None)
        if client is not None and _is_ip(client):
            changes["remote"] = client
    if (proto := _last(request.headers.get("X-Forwarded-Proto", "")).lower()) in ("http", "https"):
        changes["scheme"] = proto
    if (host := _last(request.headers.get("X-Forwarded-Host", ""))) and _is_host(host):
        changes["host"] = host
    return changes


def is_https(request: web.BaseRequest) -> bool:
    return str(proxied(request).get("scheme", request.scheme)) == "https"


@web.middleware
async def forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    changes = proxied(request)
    return await handler(request.clone(**changes) if changes else request)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _is_host(text: str) -> bool:
    return len(text) <= 255 and all(c.isalnum() or c in ".-:[]" for c in text)
