"""Who is asking: a signed-in staff member, or the customer holding a call's invite."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from relay.calls.registry import Calls, InviteRefused
from relay.records.db_thread import DatabaseThread
from relay.web.accounts import Accounts, User
from relay.web.errors import ApiError

SESSION_COOKIE = "cg_session"
# What a session whose password must be changed may still do: change it, say who it is
# (the sign-in page asks), or sign out. Every other route answers 403 password_change_required.
PASSWORD_CHANGE_PATHS = frozenset({"/api/me/password", "/api/me", "/api/logout"})


@dataclass(frozen=True)
class Staff:
    user: User
    token: str


@dataclass(frozen=True)
class Customer:
    call_id: str


Principal = Staff | Customer


def request_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer ") :].strip() or None
    # Browsers cannot put headers on a WebSocket handshake.
    if request.headers.get("Upgrade", "").lower() == "websocket" and request.query.get("token"):
        return request.query["token"]
    return request.cookies.get(SESSION_COOKIE)


async def principal(request: web.Request, database: DatabaseThread, accounts: Accounts, calls: Calls) -> Principal:
    token = request_token(request)
    if token is None:
        raise ApiError(401, "unauthenticated", "sign in, or use the invite link's token")
    user = await database.run(accounts.session_user, token)
    if user is not None:
        if user.must_change_password and request.path not in PASSWORD_CHANGE_PATHS:
            raise ApiError(403, "password_change_required", "change your password first (POST /api/me/password)")
        return Staff(user, token)
    try:
        return Customer((await calls.invited_call(token)).call_id)
    except InviteRefused as refused:
        if refused.reason == "ended":
            raise ApiError(409, "call_ended", "this call has ended") from None
        raise ApiError(401, "unauthenticated", f"the token is {refused.reason}") from None


def require_staff(p: Principal, *roles: str) -> Staff:
    if not isinstance(p, Staff) or (roles and p.user.role not in roles):
        raise ApiError(403, "forbidden", f"this needs the role {' or '.join(roles) or 'staff'}")
    return p
