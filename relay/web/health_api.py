"""/healthz (liveness, and whether moderation can run) and /metrics (Prometheus).

/healthz answers anyone: a load balancer or an orchestrator probes it without
credentials, and it tells only states (no calls, no counts, no names). It is 200 whenever the
process serves requests, since a server without moderation still relays calls (under
delay.undecided_policy); `moderation.ready` says whether the speech model and at least
one text check are running.

/metrics carries operational figures, no personal data, but still nothing for the
internet: with server.metrics_token empty only loopback clients get it (a scraper or an
agent on the host); with a token, a scraper anywhere sends it as a bearer token.
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

from relay.calls.call_metrics import CONTENT_TYPE
from relay.web.calls_api import SERVICES
from relay.web.errors import ApiError


def routes() -> list[web.RouteDef]:
    return [web.get("/healthz", healthz), web.get("/metrics", metrics)]


async def healthz(request: web.Request) -> web.Response:
    calls = request.app[SERVICES].calls
    checks = calls.metrics.check_states()
    text_ready = checks["keywords"] == "ready" or checks["classifier"] == "ready"
    return web.json_response(
        {"status": "ok", "moderation": {"ready": checks["stt"] == "ready" and text_ready, **checks}},
        headers={"Cache-Control": "no-store"},
    )


async def metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    token = services.config.server.metrics_token
    if token:
        given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise ApiError(401, "unauthenticated", "/metrics needs the bearer token of server.metrics_token")
    elif not _loopback(request.remote):
        raise ApiError(403, "forbidden", "/metrics is served to loopback clients only (or set server.metrics_token)")
    body = services.calls.metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


def _loopback(remote: str | None) -> bool:
    try:
        return remote is not None and ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False
