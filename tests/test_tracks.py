import asyncio
import time

import numpy as np
from av import AudioFrame, CodecContext

from relay.webrtc.tracks import (
    FRAME_SAMPLES,
    TIME_BASE,
    OpusVoiceDecoder,
    OpusVoiceEncoder,
    PacedTrack,
    mono_frame,
    to_mono,
)
from testkit.probe import MarkerSource


class CountingSource:
    """Test double: frame n is filled with the value n; records the wall times asked for."""

    def __init__(self) -> None:
        self.walls: list[float] = []

    def pull(self, wall: float) -> np.ndarray:
        self.walls.append(wall)
        return np.full(FRAME_SAMPLES, len(self.walls), dtype=np.int16)


async def test_paced_track_keeps_real_time_and_monotonic_pts() -> None:
    source = CountingSource()
    track = PacedTrack(source, encode=False)
    start = time.monotonic()
    frames = [await track.recv() for _ in range(25)]
    elapsed = time.monotonic() - start
    assert 0.46 <= elapsed <= 0.6  # 24 intervals of 20 ms after the first frame
    assert [f.pts for f in frames] == [i * FRAME_SAMPLES for i in range(25)]
    assert np.allclose(np.diff(source.walls), 0.02)
    assert frames[3].to_ndarray()[0, 0] == 4 and frames[0].sample_rate == 48000


async def test_paced_track_skips_ahead_after_a_stall() -> None:
    source = CountingSource()
    track = PacedTrack(source, encode=False)
    await track.recv()
    time.sleep(0.5)  # the event loop stalls
    frame = await track.recv()
    assert frame.pts >= 20 * FRAME_SAMPLES  # no burst of 25 catch-up frames
    started = time.monotonic()
    await asyncio.wait_for(track.recv(), 1.0)
    assert time.monotonic() - started < 0.05


async def test_paced_track_sends_opus_that_decodes_to_the_source() -> None:
    source = MarkerSource(freq=600.0)
    track = PacedTrack(source)
    packets = [await track.recv() for _ in range(30)]
    assert [p.pts for p in packets] == [i * FRAME_SAMPLES for i in range(30)]
    assert all(p.time_base == TIME_BASE and p.size < 200 for p in packets)  # ~32 kb/s, not 96
    decoder = CodecContext.create("libopus", "r")
    decoded = np.concatenate([to_mono(f) for p in packets for f in decoder.decode(p)])
    reference = MarkerSource(freq=600.0)
    sent = np.concatenate([reference.pull(0.0) for _ in range(30)])
    # Opus is lossy and delays by its look-ahead: compare levels and the dominant frequency.
    spectrum = np.abs(np.fft.rfft(decoded[4800:]))
    assert abs(np.argmax(spectrum) * 48000 / len(decoded[4800:]) - 600) < 10
    assert 0.7 < decoded[4800:].std() / sent[4800:].std() < 1.3


def test_to_mono_averages_stereo_and_keeps_mono() -> None:
    stereo = AudioFrame.from_ndarray(np.array([[100, 300, -50, -150]], dtype=np.int16), format="s16", layout="stereo")
    assert to_mono(stereo).tolist() == [200, -100]
    mono = mono_frame(np.arange(FRAME_SAMPLES, dtype=np.int16), 0)
    assert np.array_equal(to_mono(mono), np.arange(FRAME_SAMPLES))


def test_voice_decoder_gives_mono_from_each_frame() -> None:
    encoder, decoder = OpusVoiceEncoder(), OpusVoiceDecoder()
    source = MarkerSource(freq=600.0)
    decoded = [
        decoder.decode(bytes(encoder.encode(mono_frame(source.pull(0.0), i * FRAME_SAMPLES)))) for i in range(25)
    ]
    assert all(d.dtype == np.int16 and d.shape == (FRAME_SAMPLES,) for d in decoded)
    assert np.concatenate(decoded[5:]).std() > 4000  # the tone, not silence


def test_encode_samples_matches_encoding_a_fresh_frame_each_time() -> None:
    # The encoder refills one frame per packet: the packets must be those a new frame per
    # packet gives, and a packet already returned must not change when the frame is refilled.
    t = np.arange(20 * FRAME_SAMPLES) / 48000
    voice = (np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 3 * t) * 9000).astype(np.int16)
    fresh, reused = OpusVoiceEncoder(), OpusVoiceEncoder()
    packets = []
    for i in range(20):
        chunk = voice[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
        expected = fresh.encode(mono_frame(chunk, i * FRAME_SAMPLES))
        got = reused.encode_samples(chunk, i * FRAME_SAMPLES)
        assert (bytes(got), got.pts) == (bytes(expected), expected.pts)
        packets.append((got, bytes(got)))
    assert all(bytes(packet) == kept for packet, kept in packets)
