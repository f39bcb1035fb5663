"""One side's WebRTC peer connection within a call."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Coroutine, Literal

import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from .config import IceServer
from .tracks import AudioSource, PacedTrack, to_mono

log = logging.getLogger(__name__)

Side = Literal["customer", "counselor"]
# Receives (pts, mono samples, arrival time, peer id) for every decoded incoming frame.
FrameSink = Callable[[int, np.ndarray, float, int], None]


def rtc_configuration(ice_servers: list[IceServer]) -> RTCConfiguration:
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s.urls, username=s.username or None, credential=s.credential or None)
            for s in ice_servers
        ]
    )


class PeerLink:
    """A peer connection that sends `outgoing` and feeds received audio to `sink`.

    Exactly one reader per remote track, always reading: aiortc queues decoded frames
    without bound, so an unread track leaks memory.
    """

    _next_id = 0

    def __init__(
        self,
        side: Side,
        ice_servers: list[IceServer],
        outgoing: AudioSource,
        sink: FrameSink,
        on_state: Callable[["PeerLink"], None],
        connect_timeout_s: float,
    ) -> None:
        PeerLink._next_id += 1
        self.peer_id = PeerLink._next_id
        self.side = side
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self._sink = sink
        self._on_state = on_state
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing: asyncio.Future[None] | None = None
        self.state = "connecting"
        self.pc.addTrack(PacedTrack(outgoing))
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)
        self._spawn(self._close_unless_connected(connect_timeout_s))

    async def answer(self, offer_sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp

    async def close(self) -> None:
        """Close once; every caller waits for that one close.

        Closing the connection fires its 'closed' state change, which calls close() again
        from inside the first close: running the body twice, or cancelling the first
        while aiortc is mid-close, leaves aiortc waiting forever on later closes.
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.pc.close()
        self._set_state("closed")

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(self._read(track))
        else:
            self._spawn(self._drain(track))

    async def _read(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self._sink(int(frame.pts or 0), to_mono(frame), time.monotonic(), self.peer_id)
        except MediaStreamError:
            pass

    async def _drain(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
        except MediaStreamError:
            pass

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state in ("failed", "closed"):
            await self.close()
            state = "failed" if state == "failed" else "closed"
        self._set_state(state)

    async def _close_unless_connected(self, timeout_s: float) -> None:
        await asyncio.sleep(timeout_s)
        if self.state != "connected":
            log.info("%s peer %d did not connect within %.0f s; closing", self.side, self.peer_id, timeout_s)
            self._set_state("failed")
            await self.close()

    def _set_state(self, state: str) -> None:
        if state == self.state or self.state in ("closed", "failed"):
            return
        self.state = state
        self._on_state(self)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
