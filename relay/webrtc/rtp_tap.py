"""Encoded audio frames from an aiortc receiver, on the event loop, instead of decoded ones.

aiortc decodes every received frame on a thread of its own and hands each one back to
the event loop as a new task: two thread switches and a task per 20 ms, per stream,
about a fifth of the server's time per call. The relay wants the encoded frames anyway:
the counselor's voice is forwarded to the customer as the browser encoded it, and the
customer's voice is decoded in place.

aiortc has no public hook for this. Its receiver passes each complete frame (already
reordered by its jitter buffer, timestamp unwrapped) to `queue.put` on the event loop,
and its decoder thread reads that queue. Before the receiver starts, the tap takes the
queue's place: the thread's first `get` ends it, and every `put` goes to the sink.
tests/test_rtp_tap.py pins this down against the installed aiortc.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpReceiver

# Receives (pts in 48 kHz units, the encoded frame, monotonic arrival time).
EncodedSink = Callable[[int, bytes, float], None]

_QUEUE_ATTRIBUTE = "_RTCRtpReceiver__decoder_queue"
_THREAD_ATTRIBUTE = "_RTCRtpReceiver__decoder_thread"


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


def tap_receiver(
    receiver: RTCRtpReceiver, sink: EncodedSink, clock: Callable[[], float] = time.monotonic
) -> EncodedFrameTap:
    """Route `receiver`'s encoded frames to `sink`. Call before the connection starts it."""
    if not hasattr(receiver, _QUEUE_ATTRIBUTE) or not hasattr(receiver, _THREAD_ATTRIBUTE):
        raise TapUnavailable("this aiortc version's RTCRtpReceiver has no decoder queue to tap")
    if getattr(receiver, _THREAD_ATTRIBUTE) is not None:
        raise TapUnavailable("the receiver is already decoding")
    tap = EncodedFrameTap(sink, clock)
    setattr(receiver, _QUEUE_ATTRIBUTE, tap)
    return tap
