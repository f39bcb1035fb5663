"""One side's WebRTC peer connection within a call."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from relay.config import IceServer
from relay.webrtc.rtp_tap import tap_receiver
from relay.webrtc.sdp import with_ptime

log = logging.getLogger(__name__)

Side = Literal["customer", "counselor"]
# Receives (pts, encoded Opus frame, arrival time, peer id) for every incoming frame.
FrameSink = Callable[[int, bytes, float, int], None]


def rtc_configuration(ice_servers: list[IceServer]) -> RTCConfiguration:
    return RTCConfiguration(
        iceServers=[
            RTCIceServer(urls=s.urls, username=s.username or None, credential=s.credential or None) for s in ice_servers
        ]
    )


class PeerLink:
    """A peer connection that sends `outgoing` and hands received audio frames to `sink`.

    Audio arrives encoded, through a tap on the receiver (relay/webrtc/rtp_tap.py). Any other
    remote track is read and dropped: aiortc queues decoded frames without bound, so an
    unread track leaks memory.
    """

    _next_id = 0

    def __init__(
        self,
        side: Side,
        ice_servers: list[IceServer],
        outgoing: MediaStreamTrack,
        sink: FrameSink,
        on_state: Callable[[PeerLink], None],
        connect_timeout_s: float,
        clock: Callable[[], float],
        ptime_ms: int = 20,
    ) -> None:
        PeerLink._next_id += 1
        self.peer_id = PeerLink._next_id
        self.side = side
        self.pc = RTCPeerConnection(rtc_configuration(ice_servers))
        self._sink = sink
        self._clock = clock  # the call's monotonic clock: stamps each frame's arrival
        self._on_state = on_state
        self._ptime_ms = ptime_ms  # the packet length asked of the remote side
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing: asyncio.Future[None] | None = None
        self.state = "connecting"
        self.pc.addTrack(outgoing)
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)
        self._spawn(self._close_unless_connected(connect_timeout_s))

    async def answer(self, offer_sdp: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio":
                tap_receiver(transceiver.receiver, self._frame, self._clock)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        # Only the remote side acts on ptime: aiortc's own sender keeps the track's packets.
        return with_ptime(self.pc.localDescription.sdp, self._ptime_ms)

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

    def _frame(self, pts: int, payload: bytes, arrival: float) -> None:
        self._sink(pts, payload, arrival, self.peer_id)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind != "audio":  # audio is tapped before decoding; its track stays empty
            self._spawn(self._drain(track))

    async def _drain(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
        except MediaStreamError:
            pass

    async def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        self._set_state(state)  # 'failed' and 'closed' are final: close() keeps them
        if state in ("failed", "closed"):
            await self.close()

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
