"""Running the app: aiohttp's runner, with requests it cannot parse answered without echo.

aiohttp answers a request it cannot parse (a header over 8,190 bytes, a malformed
request line) itself, before any middleware, with the parser's message as the body and a
traceback in the log, and both quote the offending bytes: for an oversized Cookie
header, the session token. Here that answer is a short JSON error naming only the kind
of fault, logged as one line without the request's bytes.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from contextlib import suppress

from aiohttp import http_exceptions, web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_protocol import RequestHandler

from relay.web.security_headers import add_headers

log = logging.getLogger(__name__)


def _fault(exc: BaseException | None) -> str:
    if isinstance(exc, http_exceptions.LineTooLong):
        return "a request line or header is too long"
    if isinstance(exc, http_exceptions.BadStatusLine | http_exceptions.BadHttpMethod):
        return "the request line is malformed"
    if isinstance(exc, http_exceptions.HttpProcessingError):
        return "the request is malformed"
    return "the request failed"


class QuietErrors(RequestHandler):
    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        fault = _fault(exc)
        log.info("%d from %s: %s (%s)", status, request.remote, fault, type(exc).__name__ if exc else "-")
        if request.writer.output_size > 0:
            raise ConnectionError("response already started")
        code = "bad_request" if 400 <= status < 500 else "internal"
        response = web.json_response({"error": code, "message": fault}, status=status)
        add_headers(response.headers, "/api/", False)
        response.force_close()
        return response


class _QuietServer(web.Server):
    def __call__(self) -> RequestHandler:
        return QuietErrors(self, loop=self._loop, **self._kwargs)


class Runner(web.AppRunner):
    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The app builds a plain Server; the subclass only changes which protocol handler it
        # makes per connection (tests/test_serving.py checks this against aiohttp).
        server.__class__ = _QuietServer
        return server


def run(
    app: web.Application,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    access_log_class: type[AbstractAccessLogger],
) -> None:
    """Serve until SIGINT/SIGTERM, then shut the app down (what web.run_app does)."""

    async def serve() -> None:
        runner = Runner(app, handle_signals=True, access_log_class=access_log_class)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port, ssl_context=ssl_context).start()
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    task = loop.create_task(serve())
    try:
        loop.run_until_complete(task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        if not task.done():
            task.cancel()
            with suppress(asyncio.CancelledError):
                loop.run_until_complete(task)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
