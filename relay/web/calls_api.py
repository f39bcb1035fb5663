"""The JSON and WebSocket API (docs/API.md)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import sqlite3
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from yarl import URL

from relay.calls.call import Call, NothingToDump, NotHolding
from relay.calls.nodes import call_node
from relay.calls.registry import Calls, Draining, TooManyCalls, TooManyOpenCalls
from relay.config import Config
from relay.records.access_log import record_access
from relay.records.db_thread import DatabaseThread
from relay.web import node_proxy
from relay.web.accounts import MAX_NAME, Accounts, Session, User, name_key
from relay.web.bodies import body_field, json_body
from relay.web.errors import ApiError
from relay.web.principals import (
    SESSION_COOKIE,
    Customer,
    Principal,
    Staff,
    principal,
    request_token,
    require_staff,
)
from relay.web.same_origin import check_origin
from relay.web.sign_in_throttle import SignInThrottle
from relay.web.socket_limits import SocketLimits
from relay.webrtc.peer import Side
from relay.webrtc.sdp import BadSdp, check_offer

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: Config
    database: DatabaseThread
    accounts: Accounts
    calls: Calls
    throttle: SignInThrottle
    sockets: SocketLimits

    @property
    def db(self) -> sqlite3.Connection:
        """The connection, for the functions handed to database.run (its thread only)."""
        return self.database.db


SERVICES = web.AppKey("services", Services)
# The events socket's close code when its session was revoked or its account disabled
# (4000-4999: the application's own; the page goes back to the sign-in).
SESSION_ENDED = 4001
# How long a socket's session recheck may wait on the database before it tries again later.
SESSION_RECHECK_WAIT_S = 1.0


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/login", login),
        web.post("/api/logout", logout),
        web.get("/api/me", me),
        web.get("/api/rtc-config", rtc_config),
        web.post("/api/calls", create_call),
        web.get("/api/calls", list_calls),
        web.get("/api/calls/{call_id}", get_call),
        web.post("/api/calls/{call_id}/offer", offer),
        web.post("/api/calls/{call_id}/hangup", hangup),
        web.post("/api/calls/{call_id}/mutes", add_mute),
        web.post("/api/calls/{call_id}/dump", dump),
        web.post("/api/calls/{call_id}/hold", hold_start),
        web.delete("/api/calls/{call_id}/hold", hold_stop),
        web.post("/api/calls/{call_id}/report", end_and_report),
        web.get("/api/calls/{call_id}/events", events),
    ]


def _services(request: web.Request) -> Services:
    return request.app[SERVICES]


async def who_is(request: web.Request) -> Principal:
    s = _services(request)
    return await principal(request, s.database, s.accounts, s.calls)


def _call_for(request: web.Request, who: Principal, *, customer_ok: bool, supervisor_ok: bool = True) -> Call:
    """The call in the URL, if `who` is a party to it: its customer, its counselor, or a supervisor."""
    call_id = request.match_info["call_id"]
    call = _services(request).calls.get(call_id)
    if isinstance(who, Customer):
        if not customer_ok or who.call_id != call_id:
            raise ApiError(403, "forbidden", "this invite is not for that call")
        assert call is not None  # the invite lookup found it running
        return call
    if call is None:
        raise ApiError(404, "unknown_call", f"no running call {call_id!r}")
    user = who.user
    if user.name == call.record.counselor or (supervisor_ok and user.role == "supervisor"):
        return call
    raise ApiError(403, "forbidden", "you are not a party to this call")


async def login(request: web.Request) -> web.Response:
    body = await json_body(request)
    name, password = body_field(body, "username", str), body_field(body, "password", str)
    s = _services(request)
    # The throttle keeps its keys in memory: a name longer than any account's is cut.
    key, address = name_key(name[: 2 * MAX_NAME]), request.remote or "unknown"
    if (wait := s.throttle.wait_s(key, address)) > 0:
        raise ApiError(
            429,
            "too_many_attempts",
            f"too many failed sign-ins: try again in {math.ceil(wait)} s",
            {"Retry-After": str(math.ceil(wait))},
        )
    if await s.database.run(s.accounts.locked, name):
        log.warning("sign-in refused for locked account %r from %s", name[:64], address)
        raise ApiError(403, "account_locked", "this account is locked after too many failed sign-ins: ask a supervisor")
    user = await s.accounts.verify(name, password)
    if user is None:
        log.warning("failed sign-in for %r from %s", name[:64], address)
        s.throttle.failed(key, address)
        await s.database.run(_failed_sign_in, s, name, address)
        raise ApiError(401, "bad_credentials", "wrong user name or password")
    s.throttle.succeeded(key, address)
    session = await s.database.run(_signed_in, s.accounts, user)
    response = web.json_response(
        {
            "token": session.token,
            "user": {"name": user.name, "role": user.role},
            "expires_at": session.expires_at,
            # True: this session may only change the password (POST /api/me/password).
            "must_change_password": user.must_change_password,
        }
    )
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=s.config.auth.session_ttl_s,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
        path="/",
    )
    return response


def _signed_in(accounts: Accounts, user: User) -> Session:
    accounts.record_success(user.name)
    return accounts.open_session(user)


def _failed_sign_in(s: Services, name: str, address: str) -> None:
    """On the database thread: the failure counted, the account locked at the limit."""
    failures = s.accounts.record_failure(name)
    limit = s.config.auth.lockout_after
    if limit and failures >= limit and not s.accounts.locked(name):
        s.accounts.lock(name)
        log.warning("account %r locked after %d failed sign-ins (last from %s)", name[:64], failures, address)
        record_access(
            s.db, "system", "system", None, "account_locked", {"user": name, "failures": failures, "address": address}
        )


async def logout(request: web.Request) -> web.Response:
    who = require_staff(await who_is(request))
    await json_body(request)
    s = _services(request)
    await s.database.run(s.accounts.close_session, who.token)
    response = web.json_response({})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def me(request: web.Request) -> web.Response:
    who = require_staff(await who_is(request))
    return web.json_response(
        {"name": who.user.name, "role": who.user.role, "must_change_password": who.user.must_change_password}
    )


async def rtc_config(request: web.Request) -> web.Response:
    await who_is(request)
    return web.json_response({"ice_servers": _ice_servers(_services(request).config)})


def _ice_servers(config: Config) -> list[dict[str, Any]]:
    out = []
    for server in config.webrtc.ice_servers:
        entry: dict[str, Any] = {"urls": server.urls}
        if server.username:
            entry.update(username=server.username, credential=server.credential)
        out.append(entry)
    return out


async def create_call(request: web.Request) -> web.Response:
    # Supervisors may take calls too (and a newcomer's first account is a supervisor).
    who = require_staff(await who_is(request), "counselor", "supervisor")
    await json_body(request)
    s = _services(request)
    try:
        call, invite = s.calls.create(who.user.name)
    except TooManyOpenCalls as exc:
        raise ApiError(429, "too_many_open_calls", str(exc)) from None
    except TooManyCalls as exc:
        raise ApiError(503, "too_many_calls", str(exc)) from None
    except Draining as exc:
        raise ApiError(503, "draining", str(exc)) from None
    return web.json_response({**call.info(staff=True), "invite": _invite(request, call, invite.token)}, status=201)


def _invite(request: web.Request, call: Call, token: str) -> dict[str, Any]:
    base = invite_base(request, _services(request).config)
    return {"token": token, "url": f"{base}/join/{call.call_id}#{token}", "expires_at": call.record.invite_expires_at}


def _staff_view(request: web.Request, who: Staff, call: Call) -> dict[str, Any]:
    """A call as staff see it; its own counselor also sees the invite until the customer joins."""
    view = call.info(staff=True)
    view["node"] = call_node(call.call_id)
    if call.invite_token is not None and who.user.name == call.record.counselor:
        view["invite"] = _invite(request, call, call.invite_token)
    return view


def invite_base(request: web.Request, config: Config) -> str:
    """Where invite links point: server.public_url; else the Host of a loopback request;
    else nothing (a path, which the counselor's page resolves against its own address).
    A Host header from anywhere else is the client's word, not ours to hand on."""
    if config.server.public_url:
        return config.server.public_url.rstrip("/")
    if is_loopback_host(request.host):
        return f"{request.scheme}://{request.host}"
    return ""


def is_loopback_host(host: str) -> bool:
    try:
        name = URL(f"http://{host}").host or ""
    except ValueError:
        return False
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


async def list_calls(request: web.Request) -> web.Response:
    """The caller's live calls on every node (relay/web/node_proxy.py asks the others)."""
    who = require_staff(await who_is(request), "counselor", "supervisor")
    calls = _services(request).calls.all()
    if who.user.role != "supervisor":
        calls = [c for c in calls if c.record.counselor == who.user.name]
    views = [_staff_view(request, who, c) for c in calls]
    unreachable: list[str] = []
    if not node_proxy.proxied(request):
        others, unreachable = await node_proxy.other_nodes_calls(request)
        views += others
    return web.json_response({"calls": views, "unreachable_nodes": unreachable})


async def get_call(request: web.Request) -> web.Response:
    who = await who_is(request)
    call = _call_for(request, who, customer_ok=True)
    if isinstance(who, Staff):
        return web.json_response(_staff_view(request, who, call))
    view = call.info(staff=False)
    view["ice_servers"] = _ice_servers(_services(request).config)
    return web.json_response(view)


async def offer(request: web.Request) -> web.Response:
    who = await who_is(request)
    call = _call_for(request, who, customer_ok=True, supervisor_ok=False)
    body = await json_body(request)
    role = body_field(body, "role", str)
    if body.get("type", "offer") != "offer":
        raise ApiError(400, "bad_request", "type must be 'offer'")
    expected: Side = "customer" if isinstance(who, Customer) else "counselor"
    if role != expected:
        raise ApiError(403, "forbidden", f"this token may only join as {expected}")
    try:
        sdp = check_offer(body.get("sdp"), _services(request).config.webrtc.remote_networks)
    except BadSdp as exc:
        raise ApiError(400, "bad_sdp", str(exc)) from None
    if call.state == "ended":
        raise ApiError(409, "call_ended", "this call has ended")
    try:
        answer = await call.accept_offer(expected, sdp)
    except Exception as exc:
        log.info("call %s: %s offer refused by the WebRTC stack: %r", call.call_id, expected, exc)
        raise ApiError(400, "bad_sdp", f"the offer could not be negotiated: {exc.__class__.__name__}") from None
    return web.json_response({"sdp": answer, "type": "answer"})


async def hangup(request: web.Request) -> web.Response:
    """Idempotent: a party hanging up a call that has already ended is told it has."""
    try:
        who = await who_is(request)
    except ApiError as exc:
        if exc.code == "call_ended":  # the invite of a call that has ended
            return web.json_response({"state": "ended"})
        raise
    if isinstance(who, Staff) and _services(request).calls.get(request.match_info["call_id"]) is None:
        if await _ended_call_of(request, who):
            return web.json_response({"state": "ended"})
    call = _call_for(request, who, customer_ok=True)
    await json_body(request)
    await call.end("hangup")
    return web.json_response({"state": "ended"})


async def _ended_call_of(request: web.Request, who: Staff) -> bool:
    """The call in the URL has ended, and `who` was its counselor or is a supervisor."""
    s = _services(request)
    row = await s.database.run(
        lambda: s.db.execute(
            "SELECT counselor FROM calls WHERE call_id = ? AND ended_at IS NOT NULL", (request.match_info["call_id"],)
        ).fetchone()
    )
    return row is not None and (row["counselor"] == who.user.name or who.user.role == "supervisor")


async def add_mute(request: web.Request) -> web.Response:
    who = await who_is(request)
    call = _call_for(request, who, customer_ok=False)
    body = await json_body(request)
    start, end = body_field(body, "start", (int, float)), body_field(body, "end", (int, float))
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end <= start:
        raise ApiError(400, "bad_request", "need 0 <= start < end, in media seconds")
    assert isinstance(who, Staff)
    return web.json_response(call.add_mute(float(start), float(end), by=who.user.name), status=201)


async def _running_call_for_staff(request: web.Request) -> tuple[Call, Staff]:
    """The call in the URL, for its counselor or a supervisor, while it is not over."""
    who = await who_is(request)
    call = _call_for(request, who, customer_ok=False)
    assert isinstance(who, Staff)
    if call.state == "ended":
        raise ApiError(409, "call_ended", "this call has ended")
    return call, who


async def dump(request: web.Request) -> web.Response:
    call, who = await _running_call_for_staff(request)
    try:
        return web.json_response(call.dump(who.user.name), status=201)
    except NothingToDump as exc:
        raise ApiError(409, "nothing_to_dump", str(exc)) from None


async def hold_start(request: web.Request) -> web.Response:
    call, who = await _running_call_for_staff(request)
    return web.json_response(call.hold_start(who.user.name))


async def hold_stop(request: web.Request) -> web.Response:
    call, who = await _running_call_for_staff(request)
    try:
        return web.json_response(call.hold_stop(who.user.name), status=201)
    except NotHolding as exc:
        raise ApiError(409, "not_holding", str(exc)) from None


async def end_and_report(request: web.Request) -> web.Response:
    call, who = await _running_call_for_staff(request)
    await call.end_and_report(who.user.name)
    return web.json_response({"state": "ended", "end_reason": call.record.end_reason})


async def events(request: web.Request) -> web.StreamResponse:
    check_origin(request)  # browsers send Origin on every WebSocket handshake
    who = await who_is(request)
    call = _call_for(request, who, customer_ok=True)
    token = request_token(request)
    assert token is not None  # who_is found a principal for it
    with _services(request).sockets.hold(call.call_id, token):
        return await _stream_events(request, call, who)


async def _stream_events(request: web.Request, call: Call, who: Principal) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=20.0)
    await ws.prepare(request)
    sub = call.events.subscribe(staff=isinstance(who, Staff))
    reader = asyncio.ensure_future(_discard_incoming(ws))
    s = _services(request)
    # The session is checked at the handshake; a staff socket rechecks it on a timer, so a
    # revoked session or a disabled account (here or by the CLI) stops listening soon.
    recheck_s = s.config.auth.session_recheck_s if isinstance(who, Staff) else None
    close_code: int = WSCloseCode.OK
    close_message = b""
    try:
        await ws.send_json(call.state_event())
        getter = asyncio.ensure_future(sub.queue.get())
        loop = asyncio.get_running_loop()
        next_check = loop.time() + (recheck_s or 0.0)
        while True:
            timeout = None if recheck_s is None else max(0.0, next_check - loop.time())
            await asyncio.wait({getter, reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            if reader.done():  # the client went away
                break
            if recheck_s is not None and loop.time() >= next_check:  # on time, however busy the stream
                assert isinstance(who, Staff)
                if not await _session_lasts(s, who):
                    log.info("call %s: events socket of %s closed, its session has ended", call.call_id, who.user.name)
                    close_code, close_message = SESSION_ENDED, b"session ended"
                    break
                next_check = loop.time() + recheck_s
            if not getter.done():
                continue
            if (event := getter.result()) is None:
                break
            await ws.send_json(event)
            getter = asyncio.ensure_future(sub.queue.get())
    except ConnectionResetError:
        pass
    finally:
        reader.cancel()
        if not getter.done():
            getter.cancel()
        call.events.unsubscribe(sub)
        await ws.close(code=close_code, message=close_message)
    return ws


async def _session_lasts(s: Services, who: Staff) -> bool:
    """The socket's session still holds; while the database is away it is given the benefit
    of the doubt (the check waits at most a second: the socket's events must not wait on it)."""
    try:
        user = await asyncio.wait_for(s.database.run(s.accounts.session_user, who.token), SESSION_RECHECK_WAIT_S)
    except (TimeoutError, sqlite3.Error) as exc:
        log.warning("events socket of %s: session not rechecked (%s)", who.user.name, exc or "the database is slow")
        return True
    return user is not None


async def _discard_incoming(ws: web.WebSocketResponse) -> None:
    # Clients send nothing; reading keeps control frames (ping/close) flowing.
    async for msg in ws:
        if msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
            break
