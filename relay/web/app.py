"""The aiohttp application: services wired together, started and stopped with the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sqlite3
import ssl
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from relay.calls.config_reload import ConfigReloader
from relay.calls.nodes import Membership
from relay.calls.registry import Calls
from relay.calls.speech_service import SttService
from relay.calls.text_service import TextChecks
from relay.config import Config, ConfigError
from relay.media.prompt import SHIPPED_WARNING, PromptError, load_prompt
from relay.records import retention
from relay.records.access_log import record_access
from relay.records.database import connect
from relay.records.db_thread import DatabaseThread
from relay.records.s3_recordings import RecordingUploads, StoreError, recording_store
from relay.web import calls_api as api
from relay.web import health_api, node_proxy, openapi, pages, qa_api, security_headers, settings_api, users_api
from relay.web.accounts import accounts_for
from relay.web.bodies import BODY_TIMEOUT, read_in_time
from relay.web.errors import json_errors
from relay.web.forwarded import TRUSTED_PROXIES, forwarded, networks
from relay.web.same_origin import PUBLIC_ORIGIN, public_origin, same_origin
from relay.web.sign_in_throttle import SignInThrottle
from relay.web.socket_limits import SocketLimits
from relay.webrtc.ice import restrict_interfaces

log = logging.getLogger(__name__)
LINGER_S = 2.0


class PathOnlyAccessLogger(AbstractAccessLogger):
    """Access log without query strings: WebSocket URLs carry tokens there."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %d %.1fms", request.remote, request.method, request.path, response.status, time * 1000
        )


def database_for(config: Config) -> DatabaseThread:
    """The server's database behind its own thread; a node's spill file is its own, even in
    a data folder that several nodes share."""
    db = connect(config.server.data_dir, config.database.url)
    node = f"-{config.cluster.node}" if config.cluster.node else ""
    return DatabaseThread(
        db,
        queue_max=config.database.queue_max,
        spill=Path(config.server.data_dir) / f"db-spill{node}.jsonl",
        read_timeout_s=config.database.read_timeout_s,
    )


def build_app(config: Config, reload_config: Callable[[], Config] | None = None) -> web.Application:
    """The app; with `reload_config` (how to read the config file again), SIGHUP reloads
    it (relay/calls/config_reload.py)."""
    try:
        prompt = load_prompt(config.escalation.prompt or SHIPPED_WARNING, config.escalation.prompt_gain)
    except PromptError as exc:
        raise ConfigError(f"escalation.prompt: {exc}") from None
    restrict_interfaces(config.webrtc.interfaces)
    try:
        store = recording_store(config.recordings)
    except StoreError as exc:
        raise ConfigError(f"recordings: {exc}") from None
    database = database_for(config)
    accounts = accounts_for(database.db, config.auth, database.run)
    stt = SttService(config.stt)
    checks = TextChecks(config)
    calls = Calls(database, config, stt, checks, prompt=prompt)
    membership = Membership(database, config, draining=lambda: calls.draining)
    # Outermost first: the proxy's view of the request, then errors as JSON around the
    # forgery check and the timed body read, then a call on another node handed to it
    # (checked here: the hop forwards neither Origin nor Sec-Fetch-Site).
    app = web.Application(
        client_max_size=config.server.max_body_bytes,
        middlewares=[forwarded, json_errors, same_origin, read_in_time, node_proxy.to_owner],
        # After a response to a body it did not read (408, 413), aiohttp reads on for this
        # long so the client sees the answer before the close, then drops the connection.
        handler_args={"lingering_time": LINGER_S},
    )
    app[TRUSTED_PROXIES] = networks(config.server.trusted_proxies)
    app[PUBLIC_ORIGIN] = public_origin(config.server.public_url)
    app[BODY_TIMEOUT] = config.server.body_timeout_s
    app[api.SERVICES] = api.Services(
        config,
        database,
        accounts,
        calls,
        SignInThrottle(config.auth),
        SocketLimits(config.calls.max_sockets_per_call, config.calls.max_sockets_per_token),
    )
    app.add_routes(api.routes())
    app.add_routes(users_api.routes())
    app.add_routes(settings_api.routes())
    app.add_routes(health_api.routes())
    qa_api.install(app, Path(config.server.data_dir), config.database.url, store)
    node_proxy.install(app, membership, calls)
    app.add_routes(openapi.routes())
    app.add_routes(pages.routes())
    security_headers.install(app)

    def running() -> list[str]:
        return [call.call_id for call in calls.all()]

    purger = retention.PeriodicPurge(config, running=running)
    uploads = (
        None
        if store is None
        else RecordingUploads(
            store, Path(config.server.data_dir), database, running, config.recordings.upload_interval_s
        )
    )
    session_purger: list[asyncio.Task[None]] = []

    async def purge_sessions_forever() -> None:
        while True:
            await asyncio.sleep(config.auth.session_purge_interval_s)
            if removed := await database.run(accounts.purge_expired_sessions):
                log.info("purged %d expired sessions", removed)

    async def start(_: web.Application) -> None:
        await database.run(accounts.purge_expired_sessions)
        warn_about_invite_links(config)
        # Before the first call: every call knows from its start whether it is moderated.
        await stt.load()
        await checks.load()
        calls.start()
        await membership.start()
        purger.start()
        if uploads is not None:
            calls.metrics.uploads = uploads
            uploads.start()
        session_purger.append(asyncio.ensure_future(purge_sessions_forever()))

    async def stop(_: web.Application) -> None:
        for task in session_purger:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await purger.stop()
        if uploads is not None:
            await uploads.stop()
        await calls.stop()
        await membership.stop()
        await checks.close()
        stt.close()
        # What calls logged is applied before the process goes; a database still away
        # leaves it in the spill file for the next start.
        await asyncio.to_thread(database.close, config.database.close_timeout_s)

    app.on_startup.append(start)
    app.on_shutdown.append(stop)
    # The config in force: SIGHUP reloads it (with `reload_config`), the console changes
    # the delay settings' default (relay/web/settings_api.py).
    reloader = ConfigReloader(config, reload_config or (lambda: config), calls, checks)
    reloader.on_change.append(lambda new: setattr(app[api.SERVICES], "config", new))
    app[settings_api.IN_FORCE] = reloader
    if reload_config is not None:
        _reload_on_sighup(app, reloader, database)
    return app


def _reload_on_sighup(app: web.Application, reloader: ConfigReloader, database: DatabaseThread) -> None:
    lock = asyncio.Lock()  # one reload at a time, in the order the signals came

    async def reload() -> None:
        async with lock:
            outcome = await reloader.reload()
        action = "config_reloaded" if outcome.ok else "config_reload_refused"
        detail = {"changed": outcome.changed, "restart_needed": outcome.restart_needed, "error": outcome.error}
        try:
            await database.run(record_access, database.db, "signal:SIGHUP", "system", None, action, detail)
        except sqlite3.Error:
            log.exception("the config reload could not be written to the access log")

    async def install(_: web.Application) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, start_reload)

    def start_reload() -> None:
        task = asyncio.ensure_future(reload())
        reloads.add(task)  # held until done: the loop keeps only weak references
        task.add_done_callback(reloads.discard)

    async def remove(_: web.Application) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    reloads: set[asyncio.Future[None]] = set()
    app.on_startup.append(install)
    app.on_shutdown.append(remove)


def warn_about_invite_links(config: Config) -> None:
    if config.server.public_url or api.is_loopback_host(config.server.host):
        return
    log.warning(
        "server.public_url is empty and the server listens on %s: invite links are paths the counselor's "
        "page completes with its own address, and other clients get no absolute link; set server.public_url",
        config.server.host,
    )


def ssl_context(config: Config) -> ssl.SSLContext | None:
    if not config.server.tls_cert:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.server.tls_cert, config.server.tls_key)
    return context
