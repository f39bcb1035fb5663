"""API errors as JSON, and the middleware that turns every failure into one."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

log = logging.getLogger(__name__)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    response = web.json_response({"error": code, "message": message}, status=status, headers=headers)
    if status in (408, 413):
        # The rest of the body is unread: the connection cannot carry another request.
        response.force_close()
    return response


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except sqlite3.OperationalError as exc:  # the database is away (PostgreSQL down, SQLite locked)
        log.error("database unavailable on %s %s: %s", request.method, request.path, exc)
        return error_response(503, "database_unavailable", "the call log database is not available; try again")
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "body_too_large", "request body is larger than the server accepts")
    except web.HTTPException as exc:
        if exc.status < 400 or not request.path.startswith("/api/"):
            raise
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "internal server error")
