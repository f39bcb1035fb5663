"""A test double for the network between relay nodes and the inference tier: a loopback
TCP forwarder the test can cut (listener closed, live connections reset) and restore on
the same port, so "the tier is unreachable" is exercised without restarting Ray.

    with LinkSwitch(target_port) as link:        # starts cut
        url = f"http://127.0.0.1:{link.port}/stt"
        link.restore(); ...; link.cut()

It runs its own event loop on a thread: the test's loop (and its aiortc peers) never
carries the tier's traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

from testkit.local_server import free_port


class LinkSwitch:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = free_port()
        self._target = target_port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="link-switch", daemon=True)
        self._thread.start()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def restore(self) -> None:
        asyncio.run_coroutine_threadsafe(self._open(), self._loop).result(5)

    def cut(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(5)

    def __enter__(self) -> LinkSwitch:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.cut()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _open(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._forward, self.host, self.port)

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        self._writers -= {writer, up_writer}
