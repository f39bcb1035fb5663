"""The aiohttp application: services wired together, started and stopped with the server."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from relay.calls.nodes import Membership
from relay.calls.registry import Calls
from relay.calls.speech_service import SttService
from relay.calls.text_service import TextChecks
from relay.config import Config, ConfigError
from relay.media.prompt import SHIPPED_WARNING, PromptError, load_prompt
from relay.records import retention
from relay.records.database import connect, database_file
from relay.web import calls_api as api
from relay.web import health_api, node_proxy, pages, qa_api
from relay.web.accounts import Accounts
from relay.web.errors import json_errors
from relay.webrtc.ice import restrict_interfaces

log = logging.getLogger(__name__)


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without query strings: WebSocket URLs carry tokens there."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %d %.1fms", request.remote, request.method, request.path, response.status, time * 1000
        )


def database_path(config: Config) -> Path:
    return database_file(config.server.data_dir)


def build_app(config: Config) -> web.Application:
    try:
        prompt = load_prompt(config.escalation.prompt or SHIPPED_WARNING, config.escalation.prompt_gain)
    except PromptError as exc:
        raise ConfigError(f"escalation.prompt: {exc}") from None
    restrict_interfaces(config.webrtc.interfaces)
    db = connect(config.server.data_dir, config.database.url)
    accounts = Accounts(db, config.auth.scrypt_n, config.auth.session_ttl_s)
    stt = SttService(config.stt)
    checks = TextChecks(config)
    calls = Calls(db, config, stt, checks, prompt=prompt)
    membership = Membership(db, config, draining=lambda: calls.draining)
    app = web.Application(client_max_size=config.server.max_body_bytes, middlewares=[json_errors, node_proxy.to_owner])
    app[api.SERVICES] = api.Services(config, db, accounts, calls)
    app.add_routes(api.routes())
    app.add_routes(health_api.routes())
    qa_api.install(app, Path(config.server.data_dir), config.database.url)
    node_proxy.install(app, membership, calls)
    app.add_routes(pages.routes())

    purger = retention.PeriodicPurge(config, running=lambda: [call.call_id for call in calls.all()])

    async def start(_: web.Application) -> None:
        accounts.purge_expired_sessions()
        # Before the first call: every call knows from its start whether it is moderated.
        await stt.load()
        await checks.load()
        calls.start()
        membership.start()
        purger.start()

    async def stop(_: web.Application) -> None:
        await purger.stop()
        await calls.stop()
        await membership.stop()
        await checks.close()
        stt.close()
        db.close()

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    return app


def ssl_context(config: Config) -> ssl.SSLContext | None:
    if not config.server.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.server.tls_cert, config.server.tls_key)
    return context
