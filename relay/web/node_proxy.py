"""Signalling for a call reaches the node that runs it, whichever node the request hit.

A call's id names its node (relay/calls/nodes.py). A request under /api/calls/{call_id}
for another node's call is proxied there, HTTP and the events WebSocket alike, with the
caller's credentials: the owner node decides what the caller may do, and the browser
stays on one origin (no CORS, no cookies per node). A proxied request carries
X-Callguard-Via, so two nodes that disagree about ownership answer 404 instead of
looping. A dead node's calls answer 410.

The cluster's live calls (GET /api/calls) are asked of every live node at once, with the
caller's credentials: only the node running a call knows its live state (peers, delay,
moderation), and asking it means a node that does not answer shows no calls, rather than
the database's rows of calls that may have died with it. Nodes are the ones heartbeating
(relay/calls/nodes.py); a killed node is left out from its first unanswered request.

The node's own state, for operators and load balancers: GET /api/node (503 while
draining, so a health check takes it out of rotation) and POST /api/node/drain.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from typing import Any

import aiohttp
from aiohttp import web

from relay.calls.nodes import Membership, call_node
from relay.calls.registry import Calls
from relay.web.errors import ApiError, Handler

log = logging.getLogger(__name__)

VIA = "X-Callguard-Via"
# Offers wait for the owner's ICE gathering; nothing else takes long.
PROXY_TIMEOUT_S = 30.0
# A node slower than this to list its calls is reported unreachable for that listing.
LIST_TIMEOUT_S = 2.0
_FORWARDED = ("Authorization", "Cookie", "Content-Type", "Accept")
_RETURNED = ("Content-Type", "Set-Cookie", "Cache-Control")

MEMBERSHIP = web.AppKey("membership", Membership)
PROXY_SESSION = web.AppKey("proxy_session", aiohttp.ClientSession)


def install(app: web.Application, membership: Membership, calls: Calls) -> None:
    app[MEMBERSHIP] = membership
    app.add_routes([web.get("/api/node", node_state), web.post("/api/node/drain", drain)])
    app[_CALLS] = calls

    async def open_session(_: web.Application) -> None:
        app[PROXY_SESSION] = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=PROXY_TIMEOUT_S))

    async def close_session(_: web.Application) -> None:
        await app[PROXY_SESSION].close()

    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)


_CALLS = web.AppKey("node_calls", Calls)


@web.middleware
async def to_owner(request: web.Request, handler: Handler) -> web.StreamResponse:
    call_id = request.match_info.get("call_id")
    membership = request.app.get(MEMBERSHIP)
    if not call_id or membership is None or not request.path.startswith("/api/calls/"):
        return await handler(request)
    owner = call_node(call_id)
    if not owner or owner == membership.name:
        return await handler(request)
    if proxied(request):
        raise ApiError(404, "unknown_call", f"no running call {call_id!r}")
    url = await membership.url_of(owner)
    if url is None:
        raise ApiError(410, "node_lost", f"the node running call {call_id!r} ({owner}) is gone; the call has ended")
    target = url + request.path_qs
    headers = _forwarded_headers(request, membership)
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _proxy_ws(request, target, headers)
    return await _proxy_http(request, target, headers)


async def _proxy_http(request: web.Request, target: str, headers: dict[str, str]) -> web.Response:
    body = await request.read()  # bounded by server.max_body_bytes
    try:
        async with request.app[PROXY_SESSION].request(request.method, target, data=body, headers=headers) as up:
            payload = await up.read()
            response = web.Response(status=up.status, body=payload)
            for name in _RETURNED:
                for value in up.headers.getall(name, []):
                    response.headers.add(name, value)
            return response
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ApiError(502, "node_unreachable", f"the call's node did not answer: {type(exc).__name__}") from None


def _forwarded_headers(request: web.Request, membership: Membership) -> dict[str, str]:
    headers = {k: request.headers[k] for k in _FORWARDED if k in request.headers}
    headers[VIA] = membership.name
    return headers


def proxied(request: web.Request) -> bool:
    """The request came from another node: answer for this node only."""
    return bool(request.headers.get(VIA))


async def other_nodes_calls(request: web.Request) -> tuple[list[dict[str, Any]], list[str]]:
    """The live calls the caller may see on every other live node, and the nodes that did
    not answer in LIST_TIMEOUT_S (their calls are not listed)."""
    membership = request.app.get(MEMBERSHIP)
    if membership is None or not membership.clustered:
        return [], []
    others = [n for n in await membership.alive() if n.name != membership.name]
    headers = _forwarded_headers(request, membership)
    session = request.app[PROXY_SESSION]

    async def ask(url: str) -> list[dict[str, Any]]:
        timeout = aiohttp.ClientTimeout(total=LIST_TIMEOUT_S)
        async with session.get(url + "/api/calls", headers=headers, timeout=timeout) as up:
            up.raise_for_status()
            calls = (await up.json()).get("calls")
            if not isinstance(calls, list):
                raise ValueError("no list of calls")
            return calls

    answers = await asyncio.gather(*(ask(n.url) for n in others), return_exceptions=True)
    calls: list[dict[str, Any]] = []
    unreachable: list[str] = []
    for node, answer in zip(others, answers):
        if isinstance(answer, BaseException):
            log.info("node %s did not list its calls: %s", node.name, type(answer).__name__)
            unreachable.append(node.name)
        else:
            calls.extend(answer)
    return calls, unreachable


async def _proxy_ws(request: web.Request, target: str, headers: dict[str, str]) -> web.StreamResponse:
    session = request.app[PROXY_SESSION]
    try:
        upstream = await session.ws_connect(target.replace("http", "ws", 1), headers=headers, heartbeat=20.0)
    except aiohttp.WSServerHandshakeError as exc:
        raise ApiError(exc.status, "refused", f"the call's node refused the event stream ({exc.status})") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ApiError(502, "node_unreachable", f"the call's node did not answer: {type(exc).__name__}") from None
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)

    async def pump(source: Any, sink: Any) -> None:
        async for msg in source:
            if msg.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(msg.data)
            elif msg.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(msg.data)

    # Either side closing (the owner node ended the call, or died) closes the other.
    tasks = {asyncio.ensure_future(pump(upstream, ws)), asyncio.ensure_future(pump(ws, upstream))}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await upstream.close()
        await ws.close()
    return ws


async def _view(request: web.Request) -> dict[str, Any]:
    membership, calls = request.app[MEMBERSHIP], request.app[_CALLS]
    nodes = [{"name": n.name, "url": n.url, "draining": n.draining} for n in await membership.alive()]
    return {"node": membership.name, "draining": calls.draining, "calls": len(calls.all()), "nodes": nodes}


async def node_state(request: web.Request) -> web.Response:
    """For load balancers' health checks: 200 while this node takes calls, 503 while draining."""
    view = await _view(request)
    return web.json_response(view, status=503 if view["draining"] else 200)


async def drain(request: web.Request) -> web.Response:
    """Supervisors: stop taking calls; {"exit": true} stops the server once the last call ends."""
    from relay.web.bodies import flag, json_body
    from relay.web.calls_api import who_is
    from relay.web.principals import require_staff

    require_staff(await who_is(request), "supervisor")
    stop = flag(await json_body(request), "exit")
    calls = request.app[_CALLS]
    calls.draining = True
    try:
        await request.app[MEMBERSHIP].beat()  # the other nodes and the load balancer hear it now
    except Exception:  # noqa: BLE001 - the drain itself holds; the next heartbeat says it
        log.exception("node %s: could not record the drain", request.app[MEMBERSHIP].name)
    log.warning("draining: %d call(s) running, no new ones", len(calls.all()))
    if stop:
        asyncio.ensure_future(_exit_when_empty(calls))
    return web.json_response(await _view(request), status=202)


async def _exit_when_empty(calls: Calls) -> None:
    while calls.all():
        await asyncio.sleep(0.5)
    log.warning("drained: the last call has ended, stopping")
    os.kill(os.getpid(), signal.SIGTERM)  # aiohttp's own graceful shutdown
