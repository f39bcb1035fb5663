"""The measuring stick itself: markers found where they were sent, dropouts ignored."""

import numpy as np

from relay.media.opus import OpusVoiceDecoder, OpusVoiceEncoder
from testkit.client import Recorder
from testkit.probe import FRAME_SAMPLES, RATE, MarkerSource, find_markers, media_time_of, quiet_runs


def _through_opus(source: MarkerSource, frames: int, delay_s: float, drop: set[int] = frozenset()) -> Recorder:
    """Frames of `source` sent every 20 ms, Opus-coded, arriving `delay_s` later; `drop` lost."""
    encoder, decoder, recorder = OpusVoiceEncoder(), OpusVoiceDecoder(), Recorder(max_s=frames * 0.02 + 1)
    for n in range(frames):
        samples = source.pull(1000.0 + n * 0.02)
        decoded = decoder.decode(encoder.encode(samples))
        if n in drop:
            decoded = np.zeros(FRAME_SAMPLES, np.int16)
        recorder.add(decoded, source.sent_walls[n] + delay_s)
    return recorder


def test_markers_give_the_delay_they_were_sent_with() -> None:
    source = MarkerSource()
    recorder = _through_opus(source, frames=250, delay_s=1.7)  # 5 s
    markers = find_markers(source, recorder, expected_delay_s=1.65)
    assert [m.media_s for m in markers] == [0.5 * k for k in range(10)]
    # After the stream's first notch, each one reads late by Opus's 6.5 ms look-ahead and
    # its smeared edge: a constant the tests' tolerances absorb, never a drift.
    offsets = [m.delay_s - 1.7 for m in markers[1:]]
    assert all(0.0 <= o <= 0.012 for o in offsets), offsets
    assert max(offsets) - min(offsets) <= 0.002
    assert abs(media_time_of(markers, markers[3].received_at + RATE // 4) - (markers[3].media_s + 0.25)) < 1e-9


def test_a_lost_frame_is_not_taken_for_a_marker() -> None:
    source = MarkerSource()
    recorder = _through_opus(source, frames=100, delay_s=0.2, drop={37})  # 20 ms gap at 0.74 s
    markers = find_markers(source, recorder, expected_delay_s=0.2)
    assert [m.media_s for m in markers] == [0.0, 0.5, 1.0, 1.5]  # none at the lost frame
    gaps = quiet_runs(recorder.samples, min_s=0.015)
    assert any(abs(start / RATE - 0.74) < 0.005 for start, _ in gaps)


def test_quiet_runs_finds_a_silence_to_the_millisecond() -> None:
    tone = (np.sin(np.arange(RATE * 2) * 0.08) * 8000).astype(np.int16)
    tone[int(0.6 * RATE) : int(1.1 * RATE)] = 0
    (run,) = quiet_runs(tone, min_s=0.3)
    assert abs(run[0] / RATE - 0.6) <= 0.001 and abs(run[1] / RATE - 1.1) <= 0.001
