"""Request bodies: read within a time limit, parsed defensively, fields checked by type.

Every JSON route reads its body through json_body, so one set of limits holds for all:
the size (server.max_body_bytes, 413), the time to send it (server.body_timeout_s, 408),
nesting depth, element count and number sizes (400). Python's json module alone would
recurse 2,000 levels deep into a RecursionError, or spend seconds turning a
100,000-digit integer into an int; integers that SQLite cannot hold end in an
OverflowError. Here they are all a 400 that says what was wrong.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from aiohttp import web

from relay.web.errors import ApiError, Handler

MAX_DEPTH = 8  # the API's bodies are flat objects; the deepest is 2
MAX_ELEMENTS = 10_000
MAX_INT_DIGITS = 15
# Integers travel exactly as JSON numbers up to 2**53 (JavaScript's safe range); every
# id and count in this API is far below, and SQLite's INTEGER stops at 2**63 - 1.
MAX_INT = 2**53
BODY_TIMEOUT = web.AppKey("body_timeout_s", float)


class _BadJson(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _BadJson(f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > 64:
        raise _BadJson("a number is written with more than 64 characters")
    value = float(text)
    if not math.isfinite(value):
        raise _BadJson("a number is out of range")
    return value


def _parse_constant(name: str) -> Any:
    raise _BadJson(f"{name} is not a JSON number")


def parse_json(raw: bytes) -> Any:
    """The JSON value in `raw`, within the limits above; ApiError 400 otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "bad_request", "the body is not UTF-8 text") from None
    try:
        value = json.loads(text, parse_int=_parse_int, parse_float=_parse_float, parse_constant=_parse_constant)
    except _BadJson as exc:
        raise ApiError(400, "bad_request", f"the body is refused: {exc}") from None
    except RecursionError:
        raise ApiError(400, "bad_request", f"the body is nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, and int() refusing a huge literal
        raise ApiError(400, "bad_request", f"the body is not valid JSON: {exc}") from None
    _check_shape(value)
    return value


def _check_shape(value: Any) -> None:
    # Iterative: the check itself must not recurse on what it is checking.
    stack: list[tuple[Any, int]] = [(value, 1)]
    elements = 0
    while stack:
        item, depth = stack.pop()
        elements += 1
        if elements > MAX_ELEMENTS:
            raise ApiError(400, "bad_request", f"the body has more than {MAX_ELEMENTS} elements")
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise ApiError(400, "bad_request", f"the body is nested deeper than {MAX_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object ({} for an empty body)."""
    raw = await request.read()  # read_in_time has read it already, under the time limit
    if not raw.strip():
        return {}
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return body


def body_field(body: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ApiError(400, "bad_request", f"field {name!r} is missing or of the wrong type")
    return value


def flag(body: dict[str, Any], name: str) -> bool:
    """An optional true/false field: absent is false, anything but a boolean is 400."""
    value = body.get(name, False)
    if not isinstance(value, bool):
        raise ApiError(400, "bad_request", f"field {name!r} must be true or false")
    return value


def id_number(value: Any, name: str) -> int:
    """A row id from a body or a path: a whole number in SQLite's range, else 400."""
    if isinstance(value, str):
        if not value.isdigit() or len(value) > MAX_INT_DIGITS:
            raise ApiError(400, "bad_request", f"{name} must be a whole number in 0..{MAX_INT}")
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_INT:
        raise ApiError(400, "bad_request", f"{name} must be a whole number in 0..{MAX_INT}")
    return value


@web.middleware
async def read_in_time(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Reads any request body before the handler runs, giving up after server.body_timeout_s."""
    if request.can_read_body:
        try:
            await asyncio.wait_for(request.read(), request.app[BODY_TIMEOUT])
        except TimeoutError:
            raise ApiError(408, "body_timeout", "the request body did not arrive in time") from None
    return await handler(request)
