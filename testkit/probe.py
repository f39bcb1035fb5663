"""A marked test signal, and the analysis that measures delay and mutes end to end.

The sender plays a steady tone with a short notch every `period_s` of media time and
notes the wall time each frame left. The receiver finds the notches in what it got; each
one pairs a send time with an arrival time (the delay), and a media time with a
position in the received audio (where a mute should fall).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from relay.config import WebRTCConfig
from relay.media.audio_format import FRAME_S, FRAME_SAMPLES, RATE
from testkit.client import Recorder

# aiortc's receiver holds this many packets in its jitter buffer, whatever their length.
AIORTC_JITTER_PACKETS = 4


def delayed_overhead_s(ptime_ms: int = WebRTCConfig().delayed_ptime_ms) -> float:
    """What an aiortc peer hears of the delayed stream past D (transport, Opus, its own
    jitter buffer; the server holds none): about 0.07 s with 20 ms packets, and 4 x the
    extra length of longer ones."""
    return 0.07 + AIORTC_JITTER_PACKETS * (ptime_ms / 1000 - FRAME_S)


@dataclass
class SentAudio:
    """An AudioSource that notes the wall time each frame was handed out.

    Frame n starts at the sender's media sample n * 960, so a media time maps back to the
    wall time it left (send_wall), which is what end-to-end delays are measured from.
    """

    sent_walls: list[float] = field(default_factory=list)

    def pull(self, wall: float) -> np.ndarray:
        n = len(self.sent_walls)
        self.sent_walls.append(wall)
        return self.frame(n)

    def frame(self, n: int) -> np.ndarray:
        raise NotImplementedError

    def send_wall(self, media_s: float) -> float | None:
        sample = round(media_s * RATE)
        n = sample // FRAME_SAMPLES
        if n >= len(self.sent_walls):
            return None
        return self.sent_walls[n] + (sample - n * FRAME_SAMPLES) / RATE


@dataclass
class MarkerSource(SentAudio):
    """Tone at `freq` with a `notch_s` gap at every multiple of `period_s`."""

    period_s: float = 0.5
    notch_s: float = 0.01
    freq: float = 600.0
    amplitude: float = 0.3

    def frame(self, n: int) -> np.ndarray:
        index = np.arange(n * FRAME_SAMPLES, (n + 1) * FRAME_SAMPLES)
        tone = self.amplitude * np.sin(2 * np.pi * self.freq * index / RATE)
        period = round(self.period_s * RATE)
        tone[(index % period) < round(self.notch_s * RATE)] = 0.0
        return (tone * 32767).astype(np.int16)


@dataclass
class RecordingSource(SentAudio):
    """Plays `samples` (int16 mono, 48 kHz) once, then silence: speech for a call."""

    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))

    def frame(self, n: int) -> np.ndarray:
        out = np.zeros(FRAME_SAMPLES, np.int16)
        chunk = self.samples[n * FRAME_SAMPLES : (n + 1) * FRAME_SAMPLES]
        out[: len(chunk)] = chunk
        return out


def envelope(samples: np.ndarray, window: int = 48) -> np.ndarray:
    """RMS per `window` samples (1 ms at 48 kHz)."""
    usable = len(samples) // window * window
    blocks = samples[:usable].astype(np.float64).reshape(-1, window)
    rms: np.ndarray = np.sqrt((blocks**2).mean(axis=1))
    return rms


def quiet_runs(
    samples: np.ndarray, min_s: float, max_s: float = math.inf, window: int = 48, threshold: float = 0.05
) -> list[tuple[int, int]]:
    """[start, end) sample ranges quieter than `threshold` of the signal's level for min_s..max_s."""
    env = envelope(samples, window)
    if not len(env):
        return []
    loud = np.percentile(env, 90)
    quiet = env < threshold * max(loud, 1.0)
    edges = np.diff(np.concatenate([[0], quiet.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = []
    for s, e in zip(starts, ends):
        length_s = (e - s) * window / RATE
        if min_s <= length_s <= max_s:
            out.append((int(s * window), int(e * window)))
    return out


@dataclass(frozen=True)
class Marker:
    media_s: float  # when the notch was sent, in the sender's media time
    received_at: int  # sample index of the notch in the received audio
    delay_s: float  # arrival wall time minus send wall time


def find_markers(source: MarkerSource, recorder: Recorder, expected_delay_s: float) -> list[Marker]:
    """Pair each notch received with the notch sent; `expected_delay_s` within +-period/2."""
    markers = []
    # Voice-mode Opus fills a 10 ms notch's edges: it comes out 5-8 ms long, with up to
    # 10 % of the tone left at its start. A lost or skipped 20 ms frame is a longer gap.
    for start, _ in quiet_runs(
        recorder.samples, min_s=source.notch_s * 0.4, max_s=source.notch_s * 1.6, threshold=0.15
    ):
        arrival = recorder.arrival_of(start)
        first_sent = source.sent_walls[0] if source.sent_walls else None
        if first_sent is None:
            break
        k = round((arrival - expected_delay_s - first_sent) / source.period_s)
        # Refine with the exact send time of notch k (the sender's frames are paced, not exact).
        for candidate in (k - 1, k, k + 1):
            sent = source.send_wall(candidate * source.period_s) if candidate >= 0 else None
            if sent is not None and abs(arrival - sent - expected_delay_s) <= source.period_s / 2:
                markers.append(Marker(candidate * source.period_s, start, arrival - sent))
                break
    return markers


def media_time_of(markers: list[Marker], index: int, rate: int = RATE) -> float:
    """Sender media time of received sample `index`, from the nearest marker before it."""
    before = [m for m in markers if m.received_at <= index]
    ref = before[-1] if before else markers[0]
    return ref.media_s + (index - ref.received_at) / rate
