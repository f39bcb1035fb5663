"""The tap against the installed aiortc: real peers over loopback."""

import asyncio
import threading

import pytest
from aiortc import RTCPeerConnection

from relay.webrtc.rtp_tap import TapUnavailable, tap_receiver
from relay.webrtc.tracks import OpusVoiceDecoder, PacedTrack
from testkit.probe import MarkerSource


async def test_tap_delivers_encoded_frames_on_the_loop_and_no_decoder_thread_runs() -> None:
    sender, receiver = RTCPeerConnection(), RTCPeerConnection()
    sender.addTrack(PacedTrack(MarkerSource()))
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
        decoder = OpusVoiceDecoder()
        assert max(decoder.decode(data).std() for _, data, _, _ in got[10:20]) > 4000
        assert not [t for t in threading.enumerate() if t.name == "audio-decoder"]
        with pytest.raises(TapUnavailable):
            tap_receiver(transceiver.receiver, lambda *a: None)  # already started
    finally:
        await sender.close()
        await receiver.close()
