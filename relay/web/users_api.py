"""Accounts on the console: a supervisor lists users, disables, enables, unlocks them,
resets a password, ends their sessions; and anyone signed in changes their own password
(the one thing a session with a server-set password may do)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from relay.records.access_log import record_access
from relay.web.accounts import AccountError, AccountState, name_key
from relay.web.bodies import body_field, json_body
from relay.web.calls_api import SERVICES, Services, who_is
from relay.web.errors import ApiError
from relay.web.principals import Staff, require_staff


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/me/password", change_password),
        web.get("/api/users", list_users),
        web.post("/api/users/{name}/disable", disable),
        web.post("/api/users/{name}/enable", enable),
        web.post("/api/users/{name}/unlock", unlock),
        web.post("/api/users/{name}/revoke", revoke),
        web.post("/api/users/{name}/reset-password", reset_password),
    ]


def state_view(state: AccountState) -> dict[str, Any]:
    return {
        "name": state.name,
        "role": state.role,
        "disabled": state.disabled,
        "locked": state.locked,
        "must_change_password": state.must_change_password,
        "sessions": state.sessions,
    }


async def change_password(request: web.Request) -> web.Response:
    who = require_staff(await who_is(request))
    body = await json_body(request)
    current, new = body_field(body, "current_password", str), body_field(body, "new_password", str)
    s = request.app[SERVICES]
    try:
        await s.accounts.change_password(who.user.name, current, new, keep_token=who.token)
    except AccountError as exc:
        raise ApiError(400, "bad_password", str(exc)) from None
    await s.database.run(
        record_access, s.db, who.user.name, who.user.role, None, "password_changed", {"user": who.user.name}
    )
    return web.json_response({"name": who.user.name, "role": who.user.role, "must_change_password": False})


async def _supervisor(request: web.Request) -> tuple[Staff, Services]:
    return require_staff(await who_is(request), "supervisor"), request.app[SERVICES]


async def list_users(request: web.Request) -> web.Response:
    _, s = await _supervisor(request)
    return web.json_response({"users": [state_view(state) for state in await s.database.run(s.accounts.states)]})


async def _state_of(s: Services, name: str) -> dict[str, Any]:
    return next(state_view(state) for state in await s.database.run(s.accounts.states) if state.name == name)


async def _account_action(request: web.Request, action: str) -> tuple[Staff, Services, str, dict[str, Any]]:
    """Runs `action` on the user in the URL and logs it; (who, services, user's name, extra answer)."""
    who, s = await _supervisor(request)
    await json_body(request)
    target = request.match_info["name"]
    extra: dict[str, Any] = {}
    try:
        if action == "account_disabled":
            if name_key(target) == name_key(who.user.name):  # the console would lock its last supervisor out
                raise ApiError(409, "own_account", "you cannot disable your own account")
            name = await s.database.run(s.accounts.disable, target)
        elif action == "account_enabled":
            name = await s.database.run(s.accounts.enable, target)
        elif action == "account_unlocked":
            name = await s.database.run(s.accounts.unlock, target)
        elif action == "sessions_revoked":
            name, extra["revoked"] = await s.database.run(s.accounts.revoke, target)
        else:
            name, extra["password"] = await s.database.run(s.accounts.reset_password, target)
    except AccountError as exc:
        raise ApiError(404, "unknown_user", str(exc)) from None
    detail = {"user": name, **{k: v for k, v in extra.items() if k != "password"}}
    await s.database.run(record_access, s.db, who.user.name, who.user.role, None, action, detail)
    return who, s, name, extra


async def disable(request: web.Request) -> web.Response:
    _, s, name, _ = await _account_action(request, "account_disabled")
    return web.json_response(await _state_of(s, name))


async def enable(request: web.Request) -> web.Response:
    _, s, name, _ = await _account_action(request, "account_enabled")
    return web.json_response(await _state_of(s, name))


async def unlock(request: web.Request) -> web.Response:
    _, s, name, _ = await _account_action(request, "account_unlocked")
    return web.json_response(await _state_of(s, name))


async def revoke(request: web.Request) -> web.Response:
    _, s, name, extra = await _account_action(request, "sessions_revoked")
    return web.json_response({**await _state_of(s, name), **extra})


async def reset_password(request: web.Request) -> web.Response:
    """The new password is in this answer only: the supervisor hands it over; it must be
    changed at the next sign-in."""
    _, s, name, extra = await _account_action(request, "password_reset")
    return web.json_response({**await _state_of(s, name), "password": extra["password"]})
