"""The counselor's voice on its way to the customer: Opus packets as the browser sent them.

No decode, no re-encode: nothing on this path needs the audio itself, and forwarding each
packet as it arrives adds no delay of its own. Only the RTP timeline is ours: it stays
continuous when the counselor reconnects (a new connection's timestamps start over), and
only moves forward: the server holds no jitter buffer (relay/webrtc/rtp_tap.py), so a
packet that arrives behind a later one is dropped here, where the customer's browser
would have played it late anyway, instead of going out under a newer sequence number.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Hashable
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import Packet

from relay.media.audio_format import FRAME_SAMPLES, RATE
from relay.webrtc.prompt_mix import PromptMix
from relay.webrtc.tracks import encoded_packet

# Packets kept while the customer's side is not reading (connecting, or reconnecting):
# older ones would only arrive late.
MAX_QUEUED = 5


class PacketForwarder:
    """A bounded hand-over point between the counselor's receiver and the customer's sender."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._queue: collections.deque[tuple[int, bytes]] = collections.deque(maxlen=MAX_QUEUED)
        self._ready = asyncio.Event()
        self._source: Hashable = None
        self._offset = 0  # added to the source's pts to get ours
        self._last_out: tuple[int, float] | None = None  # (our pts, wall time) of the newest packet
        self.forwarded = 0
        self.dropped = 0
        self.late = 0  # arrived behind a later packet: not sent

    def push(self, pts: int, payload: bytes, source: Hashable) -> int:
        """Queue a packet; returns its pts on our continuous timeline."""
        now = self._clock()
        if source == self._source and self._last_out is not None and pts + self._offset <= self._last_out[0]:
            self.late += 1
            return pts + self._offset
        if source != self._source:
            # Continue our timeline from the last packet, moved on by the time since.
            self._source = source
            if self._last_out is None:
                self._offset = -pts
            else:
                last_pts, last_wall = self._last_out
                self._offset = last_pts + max(round((now - last_wall) * RATE), FRAME_SAMPLES) - pts
        out = pts + self._offset
        self._last_out = (out, now)
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
        self._queue.append((out, payload))
        self._ready.set()
        return out

    async def next(self) -> tuple[int, bytes]:
        while not self._queue:
            self._ready.clear()
            await self._ready.wait()
        self.forwarded += 1
        return self._queue.popleft()

    def discard_queued(self) -> None:
        self.dropped += len(self._queue)
        self._queue.clear()


class ForwardedTrack(MediaStreamTrack):
    """One customer connection's outgoing audio: the forwarder's packets, as they come."""

    kind = "audio"

    def __init__(self, forwarder: PacketForwarder, mix: PromptMix | None = None) -> None:
        super().__init__()
        self._forwarder = forwarder
        # The call's prompt (the escalation warning), mixed in while it plays.
        self._mix = mix
        # What queued up before this connection could send is stale by now.
        forwarder.discard_queued()

    async def recv(self) -> Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        pts, payload = await self._forwarder.next()
        if self._mix is not None:
            payload = self._mix.mix(payload)
        return encoded_packet(payload, pts)
