"""webrtcvad speech gate in call media time.

webrtcvad classifies 10/20/30 ms frames of 16-bit PCM as speech or not. On its own that
flickers inside words (stop closures, soft endings), so the gate turns frames into speech
*regions*: a region starts `preroll_s` before the first speech frame (soft onsets) and
ends `hangover_s` after the last one (word tails, short pauses). A region is open while
speech may still continue and closes once hangover_s of non-speech has passed; its end is
then final ("an utterance ended").

`decided_until` is the media time up to which speech/non-speech is final: a later speech
frame can only pull a region's start back by preroll_s, so everything before
frontier - preroll_s that lies in no region is silence for good.

Install: `pip install webrtcvad-wheels` (the plain webrtcvad sdist does not build/import here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

SAMPLE_RATE = 16000


def to_pcm16(samples: np.ndarray) -> bytes:
    """float32 [-1, 1] -> little-endian int16 bytes."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def webrtc_classifier(aggressiveness: int = 2, sample_rate: int = SAMPLE_RATE) -> Callable[[np.ndarray], bool]:
    import webrtcvad  # from the webrtcvad-wheels distribution

    vad = webrtcvad.Vad(int(aggressiveness))

    def is_speech(frame: np.ndarray) -> bool:
        return bool(vad.is_speech(to_pcm16(frame), sample_rate))

    return is_speech


def speech_flags(
    samples: np.ndarray, *, aggressiveness: int = 2, frame_ms: int = 30, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Raw per-frame webrtcvad decisions for a whole clip (no hangover); a trailing
    partial frame is left out."""
    classify = webrtc_classifier(aggressiveness, sample_rate)
    n = sample_rate * frame_ms // 1000
    samples = np.asarray(samples, dtype=np.float32).ravel()
    return np.array([classify(samples[i : i + n]) for i in range(0, len(samples) - n + 1, n)], dtype=bool)


@dataclass
class Region:
    start: float
    end: float  # final when closed; while open, the tentative end (last speech + hangover)
    closed: bool = False


class VadGate:
    """Streaming speech regions. Not thread-safe: the transcriber calls it under its lock."""

    def __init__(
        self,
        aggressiveness: int = 2,
        *,
        frame_ms: int = 30,
        hangover_s: float = 0.3,
        preroll_s: float = 0.2,
        min_level_dbfs: float | None = -60.0,
        sample_rate: int = SAMPLE_RATE,
        classifier: Callable[[np.ndarray], bool] | None = None,
    ) -> None:
        """min_level_dbfs: frames quieter than this (RMS) are never speech; webrtcvad alone
        calls the first frames of any stream speech, even -66 dBFS hiss. None: no floor."""
        if frame_ms not in (10, 20, 30):
            raise ValueError("webrtcvad takes 10, 20 or 30 ms frames")
        self.sample_rate = sample_rate
        self.frame_len = sample_rate * frame_ms // 1000
        self.frame_s = self.frame_len / sample_rate
        self.hangover_s = hangover_s
        self.preroll_s = preroll_s
        self._classify = classifier or webrtc_classifier(aggressiveness, sample_rate)
        self._floor = None if min_level_dbfs is None else 10 ** (min_level_dbfs / 20)
        self.regions: list[Region] = []
        self._pending = np.zeros(0, dtype=np.float32)
        self._stream_start = 0.0  # start of the current contiguous stream
        self._frames = 0  # frames classified since _stream_start
        self._last_speech_end: float | None = None
        self.speech_frames = 0
        self.frames = 0

    @property
    def frontier(self) -> float:
        """End of the last classified frame."""
        return self._stream_start + self._frames * self.frame_s

    @property
    def decided_until(self) -> float:
        return max(self._stream_start, self.frontier - self.preroll_s)

    def reset(self, start: float) -> None:
        """Start a new contiguous stream at media time `start` (after a long gap). An open
        region closes at the end of what was heard."""
        self._close_open(self.frontier)
        self._pending = np.zeros(0, dtype=np.float32)
        self._stream_start = start
        self._frames = 0

    def feed(self, samples: np.ndarray) -> None:
        """Audio contiguous with what came before (the transcriber zero-fills short gaps)."""
        buf = np.concatenate([self._pending, np.asarray(samples, dtype=np.float32).ravel()])
        n = self.frame_len
        whole = len(buf) // n
        for k in range(whole):
            self._frame(buf[k * n : (k + 1) * n])
        self._pending = buf[whole * n :]

    def _frame(self, frame: np.ndarray) -> None:
        t0 = self.frontier
        t1 = t0 + self.frame_s
        self._frames += 1
        self.frames += 1
        loud = self._floor is None or float(np.sqrt(np.mean(np.square(frame, dtype=np.float64)))) >= self._floor
        if loud and self._classify(frame):
            self.speech_frames += 1
            self._last_speech_end = t1
            cur = self.regions[-1] if self.regions else None
            if cur is not None and not cur.closed:
                cur.end = t1 + self.hangover_s
            else:
                start = max(self._stream_start, t0 - self.preroll_s)
                self.regions.append(Region(start, t1 + self.hangover_s))
        else:
            cur = self.regions[-1] if self.regions else None
            if cur is not None and not cur.closed and t1 >= cur.end:
                cur.closed = True

    def _close_open(self, at: float) -> None:
        cur = self.regions[-1] if self.regions else None
        if cur is not None and not cur.closed:
            cur.end = max(cur.start, min(cur.end, at))
            cur.closed = True

    # Queries (media time).

    def in_speech(self) -> bool:
        return bool(self.regions) and not self.regions[-1].closed

    def overlapping(self, t0: float, t1: float) -> list[Region]:
        """Regions that intersect [t0, t1]; an open region reaches to infinity."""
        out = []
        for r in self.regions:
            end = r.end if r.closed else float("inf")
            if r.start < t1 and end > t0:
                out.append(r)
        return out

    def has_speech(self, t0: float, t1: float) -> bool:
        return bool(self.overlapping(t0, t1))

    def silent_until(self, t: float) -> float:
        """The furthest point u >= t such that [t, u] is decided non-speech (t itself if t
        is inside a region or undecided)."""
        limit = self.decided_until
        if limit <= t:
            return t
        for r in self.regions:
            end = r.end if r.closed else float("inf")
            if end <= t:
                continue
            if r.start <= t:
                return t
            limit = min(limit, r.start)
            break
        return max(t, limit)

    def closed_ends(self, after: float, upto: float) -> list[float]:
        """Ends of closed regions in (after, upto]."""
        return [r.end for r in self.regions if r.closed and after < r.end <= upto]

    def forget_before(self, t: float) -> None:
        self.regions = [r for r in self.regions if not r.closed or r.end > t]
