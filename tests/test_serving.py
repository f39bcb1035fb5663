"""Requests aiohttp cannot parse: a short JSON error, nothing of the request echoed or logged."""

from __future__ import annotations

import asyncio
import json

from testkit.local_server import LocalServer


async def _raw(server: LocalServer, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


async def test_an_oversized_cookie_is_refused_without_echoing_the_token(server: LocalServer) -> None:
    secret = "SeSsIoNtOkEn" + "x" * 9000
    answer = await _raw(
        server, f"GET /api/me HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: cg_session={secret}\r\n\r\n".encode()
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400") or head.startswith(b"HTTP/1.0 400")
    assert json.loads(body) == {"error": "bad_request", "message": "a request line or header is too long"}
    assert b"SeSsIoNtOkEn" not in answer and b"Server: callguard" in head
    assert b"X-Content-Type-Options: nosniff" in head
    await asyncio.sleep(0.2)
    log = server.log()
    assert "SeSsIoNtOkEn" not in log
    assert "a request line or header is too long (LineTooLong)" in log


async def test_garbage_on_the_port_gets_a_clean_400(server: LocalServer) -> None:
    answer = await _raw(server, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n")
    assert b" 400 " in answer.split(b"\r\n")[0]
    assert "Traceback" not in server.log()
