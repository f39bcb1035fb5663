"""Request bodies: every malformed or oversized body is a clean 400/408/413, never a 5xx."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from relay.web.bodies import MAX_DEPTH, MAX_INT, id_number, parse_json
from relay.web.errors import ApiError
from testkit.client import ApiClient
from testkit.local_server import LocalServer

from .conftest import PASSWORD

HOSTILE = [
    b"[" * 100_000,
    b"[" * 2000 + b"]" * 2000,
    b'{"a":' * 2000 + b"1" + b"}" * 2000,
    b'{"start": ' + b"9" * 5000 + b', "end": 1}',
    b'{"start": 1' + b"0" * 400 + b'.0, "end": 1e999}',
    b'{"start": NaN, "end": Infinity}',
    b'{"x": [' + b"1," * 20_000 + b"1]}",
    b"\xff\xfe{}",
    b'{"a": "\\ud800"',
    b"not json",
]


@pytest.mark.parametrize("raw", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_json_is_a_400_with_a_reason(raw: bytes) -> None:
    started = time.perf_counter()
    with pytest.raises(ApiError) as info:
        parse_json(raw)
    assert info.value.status == 400 and info.value.message
    assert time.perf_counter() - started < 0.5


def test_reasonable_json_passes() -> None:
    nested: object = 1
    for _ in range(MAX_DEPTH - 1):
        nested = [nested]
    assert parse_json(b'{"a": [1, 2.5, "x", null, true], "b": -123456789012345}')["b"] == -123456789012345
    assert parse_json(repr(nested).encode()) == nested


@pytest.mark.parametrize("bad", [2**63, -1, MAX_INT + 1, "9223372036854775808", "1e3", "", True, 1.5])
def test_ids_are_range_checked(bad: object) -> None:
    with pytest.raises(ApiError, match="whole number"):
        id_number(bad, "mark_id")


def test_ids_in_range_pass() -> None:
    assert id_number(7, "span_id") == 7 and id_number("12", "mark_id") == 12


async def test_hostile_bodies_on_every_json_route_get_a_4xx(server: LocalServer, http: aiohttp.ClientSession) -> None:
    api = ApiClient(server.base_url, http)
    await api.login("anna", PASSWORD)
    created = await api.create_call()
    call_id = created["call_id"]
    quinn = ApiClient(server.base_url, http)
    await quinn.login("quinn", PASSWORD)
    routes = [
        ("/api/login", None),
        ("/api/calls", api.token),
        (f"/api/calls/{call_id}/offer", api.token),
        (f"/api/calls/{call_id}/mutes", api.token),
        (f"/api/calls/{call_id}/hangup", api.token),
        (f"/api/qa/calls/{call_id}/marks", quinn.token),
    ]
    statuses = []
    for path, token in routes:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        for raw in HOSTILE:
            async with http.post(server.base_url + path, data=raw, headers=headers) as response:
                body = await response.json()
                statuses.append(response.status)
                assert response.status == 400, (path, raw[:40], body)
                assert body["error"] == "bad_request" and body["message"]
    # Integers past SQLite's range, in a body and in a path.
    mark = {"kind": "false_positive", "span_id": 2**63}
    async with http.post(
        f"{server.base_url}/api/qa/calls/{call_id}/marks", json=mark, headers={"Authorization": f"Bearer {quinn.token}"}
    ) as response:
        assert response.status == 400
    async with http.delete(
        f"{server.base_url}/api/qa/calls/{call_id}/marks/{2**63}", headers={"Authorization": f"Bearer {quinn.token}"}
    ) as response:
        assert response.status == 404 and (await response.json())["error"] == "unknown_mark"
    await api.hangup(call_id)
    assert len(statuses) == len(routes) * len(HOSTILE)
    assert "Traceback" not in server.log() and "unhandled error" not in server.log()


async def test_a_slow_body_gets_408_and_the_connection_closes(strict: LocalServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", strict.port)
    started = time.monotonic()
    writer.write(
        b"POST /api/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 408")
    rest = await asyncio.wait_for(reader.read(), 10)  # the server closes the connection
    assert b"body_timeout" in rest
    assert time.monotonic() - started < 5  # body_timeout_s = 1
    writer.close()


async def test_an_oversized_body_is_413(server: LocalServer, http: aiohttp.ClientSession) -> None:
    async with http.post(
        server.base_url + "/api/login", data=b"{" + b" " * 300_000 + b"}", headers={"Content-Type": "application/json"}
    ) as response:
        assert response.status == 413 and (await response.json())["error"] == "body_too_large"
