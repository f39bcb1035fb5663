"""Forged requests: a state-changing request must come from our own pages, or from no browser.

The session cookie is SameSite=Strict, but that is the browser's goodwill, not a rule
the server keeps. Here a POST or DELETE is refused (403) when the browser says it comes
from another site: an Origin that is not ours ("null" included), or, without Origin,
Sec-Fetch-Site other than same-origin/none. A body, if any, must be application/json (415):
an HTML form or a no-CORS fetch can send only form encodings and text/plain.
Clients that are not browsers (the testkit, curl, a third-party client with a bearer
token) send neither header and are not concerned: forgery needs a victim's browser.
The events WebSocket checks Origin the same way at its handshake.
"""

from __future__ import annotations

from aiohttp import web

from relay.web.errors import ApiError, Handler

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
PUBLIC_ORIGIN = web.AppKey("public_origin", str)


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme.lower()}://{rest.split('/', 1)[0].lower()}"


def our_origins(request: web.Request) -> set[str]:
    origins = {f"{request.scheme}://{request.host}".lower()}
    if public := request.app[PUBLIC_ORIGIN]:
        origins.add(public)
    return origins


def check_origin(request: web.Request) -> None:
    """ApiError 403 unless the request comes from our origin or from no browser."""
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin.lower() not in our_origins(request):
            raise ApiError(403, "cross_origin", "requests from another site are refused")
        return
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        raise ApiError(403, "cross_origin", "requests from another site are refused")


@web.middleware
async def same_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in SAFE_METHODS:
        check_origin(request)
        if request.can_read_body and request.content_type != "application/json":
            raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    return await handler(request)


def public_origin(public_url: str) -> str:
    return _origin(public_url) if public_url else ""
