"""Encoded audio frames from an aiortc receiver, on the event loop, instead of decoded ones.

aiortc decodes every received frame on a thread of its own and hands each one back to
the event loop as a new task: two thread switches and a task per 20 ms, per stream,
about a fifth of the server's time per call. The relay wants the encoded frames anyway:
the counselor's voice is forwarded to the customer as the browser encoded it, and the
customer's voice is decoded in place.

aiortc has no public hook for this. Its receiver passes each complete frame (out of its
jitter buffer, timestamp unwrapped) to `queue.put` on the event loop, and its decoder
thread reads that queue. Before the receiver starts, the tap takes the queue's place: the
thread's first `get` ends it, and every `put` goes to the sink.

The tap also takes the jitter buffer's place. aiortc's holds four packets before it lets
one go (80 ms at 20 ms packets, 240 ms at 60), as a player must; a relay need not: the
browser at the far end has a jitter buffer of its own, and the delay line places the
customer's audio by its timestamps, whatever order it arrives in. So each packet goes on
as it arrives (in WebRTC an audio RTP packet carries one whole Opus packet, RFC 7587:
there is nothing to reassemble), which takes the hold off both directions of the call
and a Python loop off every packet. Timestamps are unwrapped relative to the previous
packet, so a packet that overtook another does not read as a wrap of the 32-bit clock.
tests/test_rtp_tap.py pins this down against the installed aiortc.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtp import RtpPacket

# Receives (pts in 48 kHz units, the encoded frame, monotonic arrival time).
EncodedSink = Callable[[int, bytes, float], None]

_QUEUE_ATTRIBUTE = "_RTCRtpReceiver__decoder_queue"
_THREAD_ATTRIBUTE = "_RTCRtpReceiver__decoder_thread"
_JITTER_ATTRIBUTE = "_RTCRtpReceiver__jitter_buffer"
_MAPPER_ATTRIBUTE = "_RTCRtpReceiver__timestamp_mapper"
_WRAP = 1 << 32


class TapUnavailable(RuntimeError):
    """The installed aiortc does not have the receiver internals the tap relies on."""


class EncodedFrameTap:
    """Stands in for the receiver's decoder queue."""

    def __init__(self, sink: EncodedSink, clock: Callable[[], float]) -> None:
        self._sink = sink
        self._clock = clock
        self.frames = 0

    def put(self, item: Any) -> None:
        if item is None:  # the receiver stopping: there is no thread left to wake
            return
        _codec, frame = item
        self.frames += 1
        self._sink(int(frame.timestamp), bytes(frame.data), self._clock())

    def get(self) -> None:
        # Called once, by the decoder thread aiortc starts: None makes it end at once.
        return None


class NoJitterBuffer:
    """Stands in for the receiver's jitter buffer: every packet is a frame, at once."""

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        # (no picture loss to report, the frame): aiortc's receiver set _data from the payload.
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)  # type: ignore[attr-defined]


class TimestampUnwrap:
    """Stands in for the receiver's timestamp mapper: 32-bit RTP timestamps to a count from
    the first packet, each taken as the nearest step from the one before (so a reordered
    packet steps back instead of being read as a wrap)."""

    def __init__(self) -> None:
        self._last: int | None = None
        self._unwrapped = 0

    def map(self, timestamp: int) -> int:
        if self._last is not None:
            step = (timestamp - self._last) % _WRAP
            self._unwrapped += step - _WRAP if step >= _WRAP // 2 else step
        self._last = timestamp
        return self._unwrapped


def tap_receiver(
    receiver: RTCRtpReceiver, sink: EncodedSink, clock: Callable[[], float] = time.monotonic
) -> EncodedFrameTap:
    """Route `receiver`'s encoded frames to `sink`. Call before the connection starts it."""
    needed = (_QUEUE_ATTRIBUTE, _THREAD_ATTRIBUTE, _JITTER_ATTRIBUTE, _MAPPER_ATTRIBUTE)
    if not all(hasattr(receiver, a) for a in needed):
        raise TapUnavailable("this aiortc version's RTCRtpReceiver lacks the decoder queue or jitter buffer to tap")
    if getattr(receiver, _THREAD_ATTRIBUTE) is not None:
        raise TapUnavailable("the receiver is already decoding")
    tap = EncodedFrameTap(sink, clock)
    setattr(receiver, _QUEUE_ATTRIBUTE, tap)
    setattr(receiver, _JITTER_ATTRIBUTE, NoJitterBuffer())
    setattr(receiver, _MAPPER_ATTRIBUTE, TimestampUnwrap())
    return tap
