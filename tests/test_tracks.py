import asyncio
import time

import numpy as np
import pytest
from av import AudioFrame, CodecContext

from relay.media.audio_format import frames_per_packet
from relay.media.opus import OpusVoiceEncoder
from relay.webrtc.tracks import (
    FRAME_SAMPLES,
    TIME_BASE,
    PacedTrack,
    delayed_encoder,
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


class StampingSource(CountingSource):
    """CountingSource that also notes the clock when each frame was asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked_at: list[float] = []

    def pull(self, wall: float) -> np.ndarray:
        self.asked_at.append(time.monotonic())
        return super().pull(wall)


async def test_sixty_ms_packets_pull_each_frame_at_its_own_time_when_the_first_is_due() -> None:
    source = StampingSource()
    track = PacedTrack(source, encode=False, frames_per_packet=3)
    start = time.monotonic()
    frames = [await track.recv() for _ in range(10)]
    elapsed = time.monotonic() - start
    assert 0.52 <= elapsed <= 0.65  # 9 intervals of 60 ms after the first packet
    assert [f.pts for f in frames] == [i * 3 * FRAME_SAMPLES for i in range(10)]
    assert all(f.samples == 3 * FRAME_SAMPLES for f in frames)
    # Frame n of the source fills the packet's 20 ms slot n: the packet holds 3k+1..3k+3.
    assert [int(v) for v in frames[2].to_ndarray()[0, ::FRAME_SAMPLES]] == [7, 8, 9]
    # The source sees the 20 ms schedule it sees today...
    assert np.allclose(np.diff(source.walls), 0.02)
    # ...and all three frames are asked for when the first is due: none later than its
    # playout time, the last one 40 ms early (the judgement budget they lose).
    for k in range(0, 30, 3):
        assert source.asked_at[k + 2] - source.asked_at[k] < 0.005
        assert source.asked_at[k] - source.walls[k] < 0.015


def test_sixty_ms_opus_decodes_to_the_samples_on_the_twenty_ms_timeline() -> None:
    # What a receiver does with the delayed stream: aiortc's decoder (the test and bench
    # peers) decodes a code-3 packet of three CELT frames into one 60 ms frame.
    from aiortc.codecs.opus import OpusDecoder
    from aiortc.jitterbuffer import JitterFrame

    from relay.records.ogg_opus import packet_samples

    t = np.arange(60 * FRAME_SAMPLES) / 48000
    voice = (np.sin(2 * np.pi * 300 * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t)) * 9000).astype(np.int16)

    def decoded(frames: int) -> np.ndarray:
        encoder, decoder = delayed_encoder(frames), OpusDecoder()
        out = []
        for i in range(0, voice.size, encoder.samples):
            packet = encoder.encode(voice[i : i + encoder.samples])
            assert packet_samples(packet) == encoder.samples
            (frame,) = decoder.decode(JitterFrame(packet, i))
            assert frame.samples == encoder.samples
            out.append(to_mono(frame))
        return np.concatenate(out)

    twenty, sixty = decoded(1), decoded(3)
    assert sixty.size == twenty.size == voice.size

    def lag(x: np.ndarray) -> int:  # the codec's look-ahead, in samples
        window = voice[4800:-4800].astype(np.float64)
        scores = [float(np.dot(window, x[4800 + d : 4800 + d + window.size])) for d in range(0, 400)]
        return int(np.argmax(scores))

    assert lag(sixty) == lag(twenty)  # the same samples at the same timestamps
    shift = lag(sixty)
    ref = voice[4800 : -4800 - 400].astype(np.float64)
    err = sixty[4800 + shift : 4800 + shift + ref.size] - ref
    assert 10 * np.log10(np.sum(ref**2) / np.sum(err**2)) > 10  # CELT at 40 kb/s, not noise


def test_frames_per_packet_takes_whole_twenty_ms_frames() -> None:
    assert [frames_per_packet(ms) for ms in (20, 40, 60)] == [1, 2, 3]
    with pytest.raises(ValueError):
        frames_per_packet(30)
    with pytest.raises(ValueError):
        PacedTrack(CountingSource(), encoder=OpusVoiceEncoder(), frames_per_packet=3)


async def test_a_sixty_ms_track_takes_each_packet_from_a_sixty_ms_delay_line_in_one_pull() -> None:
    # As the call wires it: the delay line renders 60 ms a pull, and the track asks once a
    # packet, when its first sample is due; what it sends is what the line rendered.
    from relay.config import DelayConfig
    from relay.media.delay_line import DelayLine

    class Until:
        def __init__(self, until: float) -> None:
            self.until = until

        def cleared_until(self) -> float:
            return self.until

        def heard_until(self) -> float:
            return self.until

    class Fed:
        """The line, fed each frame as it arrives (by the wall time asked for)."""

        def __init__(self, line: DelayLine) -> None:
            self.line, self.sent, self.walls = line, 1, []  # frame 0 is in already

        def pull(self, wall: float) -> np.ndarray:
            self.walls.append(wall)
            while self.sent < 150 and 100.0 + self.sent * 0.02 <= wall:
                k = self.sent
                self.line.push(k * FRAME_SAMPLES, voice[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES], 100.0 + k * 0.02)
                self.sent += 1
            return self.line.pull(wall)

    config = DelayConfig(delay_s=0.3, max_s=0.5, mute_sound="beep", undecided_policy="play")
    lines = [DelayLine(config, Until(1.2), frame_samples=3 * FRAME_SAMPLES) for _ in range(2)]  # stretches past 1.2 s
    t = np.arange(150 * FRAME_SAMPLES) / 48000
    voice = (np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16)
    for line in lines:
        line.push(0, voice[:FRAME_SAMPLES], 100.0)  # anchored, so the span can be placed
        line.add_mute(0.5, 0.73)
    first = 100.0 + 0.3 - 0.1  # five frames of silence before media 0
    ticks = iter(first + 0.06 * i for i in range(1000))
    source = Fed(lines[0])
    track = PacedTrack(source, clock=lambda: next(ticks), encode=False, frames_per_packet=3)
    sixty = np.concatenate([(await track.recv()).to_ndarray().reshape(-1) for _ in range(50)])
    assert source.walls == pytest.approx([first + 0.06 * i for i in range(50)])
    direct = Fed(lines[1])
    assert np.array_equal(sixty, np.concatenate([direct.pull(first + 0.06 * k) for k in range(50)]))
    assert lines[0].stats() == lines[1].stats()
    stats = lines[0].stats()
    assert stats.stretched_s > 0 and stats.muted_s > 0.2
    # The span is silenced where it falls (a beep in its place, no voice at 220 Hz).
    inside = sixty[round((0.1 + 0.55) * 48000) : round((0.1 + 0.68) * 48000)].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(inside))
    assert abs(np.argmax(spectrum) * 48000 / inside.size - 220) > 50
