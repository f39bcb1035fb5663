"""Headers every response carries: what the browser may load, frame, send and keep.

The pages are static files that load only their own scripts and styles (no inline code,
no third party), so the content security policy can be 'self' throughout. The API's
answers carry personal data and session tokens: no cache may keep them.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from aiohttp import web

from relay.web.forwarded import is_https

SERVER = "callguard"
CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
HSTS = "max-age=31536000"


def add_headers(headers: MutableMapping[str, str], path: str, https: bool) -> None:
    headers["Server"] = SERVER  # no version for a scanner to match against
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    if https:
        headers.setdefault("Strict-Transport-Security", HSTS)
    if path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")


async def on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    add_headers(response.headers, request.path, is_https(request))


def install(app: web.Application) -> None:
    app.on_response_prepare.append(on_prepare)
