"""The tap against the installed aiortc: real peers over loopback."""

import asyncio
import statistics
import threading
import time

import pytest
from aiortc import RTCPeerConnection

from relay.media.opus import OpusVoiceDecoder
from relay.webrtc.rtp_tap import TapUnavailable, TimestampUnwrap, tap_receiver
from relay.webrtc.tracks import PacedTrack
from testkit.probe import MarkerSource


async def test_tap_delivers_encoded_frames_on_the_loop_and_no_decoder_thread_runs() -> None:
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    sent: list[float] = []  # when each packet left the sender's track
    sender.addTrack(PacedTrack(MarkerSource(), on_packet=lambda packet, due: sent.append(time.monotonic())))
    got: list[tuple[int, bytes, float, str]] = []
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    (transceiver,) = receiver.getTransceivers()
    tap = tap_receiver(
        transceiver.receiver,
        lambda pts, data, arrival: got.append((pts, data, arrival, threading.current_thread().name)),
    )
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)
    try:
        for _ in range(100):
            await asyncio.sleep(0.05)
            if len(got) >= 40:
                break
        assert len(got) >= 40 and tap.frames == len(got)
        assert {name for *_, name in got} == {threading.current_thread().name}  # the event loop's thread
        steps = {b[0] - a[0] for a, b in zip(got, got[1:])}
        assert steps == {960}  # in order, 20 ms apart, nothing lost on loopback
        # Each frame is handed on as its packet arrives: aiortc's own jitter buffer held
        # four packets (80 ms) before letting one go.
        transit = [arrival - sent[k] for k, (_, _, arrival, _) in enumerate(got)]
        assert statistics.median(transit) < 0.03
        decoder = OpusVoiceDecoder()
        assert max(decoder.decode(data).std() for _, data, _, _ in got[10:20]) > 4000
        assert not [t for t in threading.enumerate() if t.name == "audio-decoder"]
        with pytest.raises(TapUnavailable):
            tap_receiver(transceiver.receiver, lambda *a: None)  # already started
    finally:
        await sender.close()
        await receiver.close()


def test_timestamps_unwrap_across_the_32_bit_wrap_and_a_reordered_packet_steps_back() -> None:
    unwrap = TimestampUnwrap()
    start = (1 << 32) - 1920
    raw = [start, start + 960, (start + 2880) % (1 << 32), (start + 1920) % (1 << 32), (start + 3840) % (1 << 32)]
    assert [unwrap.map(t) for t in raw] == [0, 960, 2880, 1920, 3840]
