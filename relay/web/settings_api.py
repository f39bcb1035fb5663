"""Delay and policy changed without a restart (relay/calls/live_settings.py): a running
call's, heard at once, and the server's default, for calls created from then on.
Supervisors only (a counselor gets 403); every change is in the access log."""

from __future__ import annotations

import logging

from aiohttp import web

from relay.calls import live_settings
from relay.calls.config_reload import ConfigReloader
from relay.config import Config, ConfigError
from relay.records.access_log import record_access
from relay.web.bodies import json_body
from relay.web.calls_api import SERVICES, who_is
from relay.web.errors import ApiError
from relay.web.principals import require_staff

log = logging.getLogger(__name__)

IN_FORCE = web.AppKey("config_in_force", ConfigReloader)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/settings", get_default),
        web.patch("/api/settings", change_default),
        web.patch("/api/calls/{call_id}/settings", change_call),
    ]


async def _checked(request: web.Request, config: Config) -> Config:
    body = await json_body(request)
    try:
        return live_settings.changed(config, body)
    except ConfigError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None


async def get_default(request: web.Request) -> web.Response:
    require_staff(await who_is(request), "supervisor")
    return web.json_response({"settings": live_settings.view(request.app[IN_FORCE].config.delay)})


async def change_default(request: web.Request) -> web.Response:
    who = require_staff(await who_is(request), "supervisor")
    in_force = request.app[IN_FORCE]
    new = await _checked(request, in_force.config)
    changes = live_settings.difference(in_force.config.delay, new.delay)
    # Logged before it applies: a change that cannot be logged is not made.
    s = request.app[SERVICES]
    await s.database.run(record_access, s.db, who.user.name, who.user.role, None, "default_settings_changed", changes)
    in_force.apply(new)
    log.info("default settings changed by %s: %s", who.user.name, changes or "nothing")
    return web.json_response({"settings": live_settings.view(new.delay)})


async def change_call(request: web.Request) -> web.Response:
    who = require_staff(await who_is(request), "supervisor")
    s = request.app[SERVICES]
    call_id = request.match_info["call_id"]
    call = s.calls.get(call_id)
    if call is None:
        raise ApiError(404, "unknown_call", f"no running call {call_id!r}")
    new = await _checked(request, call.config)
    if call.state == "ended":
        raise ApiError(409, "call_ended", "this call has ended")
    changes = live_settings.difference(call.config.delay, new.delay)
    await s.database.run(record_access, s.db, who.user.name, who.user.role, call_id, "call_settings_changed", changes)
    return web.json_response({"settings": call.change_settings(new.delay, who.user.name)})
