"""A speech engine double for the streaming logic: words are tone bursts.

Test audio writes word k as a tone of a known frequency between known times (webrtcvad
calls such tones speech). ScriptedEngine finds the bursts in whatever buffer it is given
and answers with the word for each frequency, timed relative to that buffer's start, the
way a real engine answers. A burst that runs into the end of the buffer is half heard: by
default it comes back garbled ("word~"), so hypotheses change between passes as they do
with Whisper. `revisions` makes a fully heard word come back differently on successive
sightings; `on_silence` invents a phrase over trailing silence, as Whisper does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from moderation.speech import SAMPLE_RATE, EngineSegment, EngineWord

SR = SAMPLE_RATE
HOP = 160  # 10 ms hop
WIN = 320  # 20 ms analysis window
# One tone per word; webrtcvad calls these speech steadily (it learns some other pure
# tones, e.g. 600 or 2400-2700 Hz, as background within a second).
FREQS = [900.0 + 200.0 * k for k in range(7)] + [3000.0 + 200.0 * k for k in range(5)]


def vocab(*words: str) -> dict[str, float]:
    if len(words) > len(FREQS):
        raise ValueError("too many words for the tone table")
    return {w: FREQS[i] for i, w in enumerate(words)}


def render(
    script: list[tuple[str, float, float]],
    total_s: float,
    voc: dict[str, float],
    amplitude: float = 0.3,
    noise: float = 0.0,
    seed: int = 1,
) -> np.ndarray:
    """script: (word, start, end) in seconds from the start of the returned audio."""
    out = np.zeros(int(round(total_s * SR)), dtype=np.float64)
    if noise:
        out += noise * np.random.default_rng(seed).standard_normal(len(out))
    fade = int(0.005 * SR)
    for word, start, end in script:
        i0, i1 = int(round(start * SR)), int(round(end * SR))
        t = np.arange(i1 - i0) / SR
        burst = amplitude * np.sin(2 * np.pi * voc[word] * t)
        ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(fade) / fade)
        burst[:fade] *= ramp
        burst[-fade:] *= ramp[::-1]
        out[i0:i1] += burst
    return out.astype(np.float32)


@dataclass
class Call:
    duration: float
    prompt: str
    language: str
    texts: list[str]  # words answered (after revisions), dropped ones included


class ScriptedEngine:
    version = "scripted-1"

    def __init__(
        self,
        voc: dict[str, float],
        *,
        revisions: dict[str, list[str]] | None = None,
        on_silence: str | None = None,
        on_silence_min_s: float = 0.5,
        partial: str = "garble",
        segment_gap_s: float = 0.25,
        delay: Callable[[float], float] | float = 0.0,
        during: Callable[[float], None] | None = None,
        no_speech: dict[str, tuple[float, float]] | None = None,
        fail_on: set[int] | None = None,
    ) -> None:
        self.voc = voc
        self.by_freq = {f: w for w, f in voc.items()}
        self.revisions = revisions or {}
        self.on_silence = on_silence
        self.on_silence_min_s = on_silence_min_s  # trailing silence that makes it invent
        self.partial = partial  # "garble" | "drop" | "keep"
        self.segment_gap_s = segment_gap_s
        self.delay = delay
        self.during = during  # called with the buffer duration while "computing"
        self.no_speech = no_speech or {}  # word -> (no_speech_prob, avg_logprob) of its segment
        self.fail_on = fail_on or set()  # call numbers (0-based) that raise
        self.attempts = 0
        self.calls: list[Call] = []
        self.sightings: dict[str, int] = {}
        self._lock = threading.Lock()

    def bursts(self, audio: np.ndarray) -> list[tuple[str, float, float]]:
        n = len(audio) // HOP
        if n == 0:
            return []
        padded = np.concatenate([audio.astype(np.float64), np.zeros(WIN)])
        frames = np.lib.stride_tricks.sliding_window_view(padded, WIN)[: n * HOP : HOP]
        rms = np.sqrt((padded[: n * HOP].reshape(n, HOP) ** 2).mean(axis=1))
        spec = np.abs(np.fft.rfft(frames * np.hanning(WIN), n=1600, axis=1))
        peak = np.fft.rfftfreq(1600, 1 / SR)[spec.argmax(axis=1)]
        freqs = np.array(sorted(self.by_freq))
        out: list[tuple[str, float, float]] = []
        cur: str | None = None
        start = 0
        for i in range(n + 1):
            word = None
            if i < n and rms[i] > 0.05:
                f = freqs[np.abs(freqs - peak[i]).argmin()]
                if abs(f - peak[i]) < 80:
                    word = self.by_freq[f]
            if word != cur:
                if cur is not None:
                    out.append((cur, start * HOP / SR, i * HOP / SR))
                cur, start = word, i
        return out

    def transcribe(self, audio: np.ndarray, prompt: str, language: str) -> list[EngineSegment]:
        dur = len(audio) / SR
        with self._lock:
            attempt = self.attempts
            self.attempts += 1
        if attempt in self.fail_on:
            raise RuntimeError("engine failed (scripted)")
        if self.during is not None:
            self.during(dur)
        d = self.delay(dur) if callable(self.delay) else self.delay
        if d:
            time.sleep(d)
        words: list[EngineWord] = []
        for word, s, e in self.bursts(audio):
            if e >= dur - 0.015:  # runs into the end of the buffer: half heard
                if self.partial == "drop":
                    continue
                if self.partial == "garble":
                    words.append(EngineWord(word + "~", s, e, 0.4))
                    continue
            with self._lock:
                k = self.sightings.get(word, 0)
                self.sightings[word] = k + 1
            forms = self.revisions.get(word)
            text = forms[min(k, len(forms) - 1)] if forms else word
            words.append(EngineWord(" " + text, s, e, 0.9))
        segments: list[EngineSegment] = []
        group: list[EngineWord] = []
        for w in words:
            if group and w.start - group[-1].end > self.segment_gap_s:
                segments.append(self._segment(group))
                group = []
            group.append(w)
        if group:
            segments.append(self._segment(group))
        last = words[-1].end if words else 0.0
        if self.on_silence and dur - last >= self.on_silence_min_s:
            parts = self.on_silence.split()
            step = (dur - last - 0.15) / len(parts)
            fake = [
                EngineWord(" " + p, last + 0.1 + i * step, last + 0.1 + (i + 1) * step, 0.3)
                for i, p in enumerate(parts)
            ]
            segments.append(EngineSegment(fake, fake[0].start, fake[-1].end, 0.2, -0.5, " " + self.on_silence))
        with self._lock:
            self.calls.append(Call(dur, prompt, language, [w.text.strip() for s in segments for w in s.words]))
        return segments

    def _segment(self, words: list[EngineWord]) -> EngineSegment:
        text = "".join(w.text for w in words)
        nsp, lp = 0.01, -0.2
        for w in words:
            if w.text.strip() in self.no_speech:
                nsp, lp = self.no_speech[w.text.strip()]
        return EngineSegment(list(words), words[0].start, words[-1].end + 0.05, nsp, lp, text)


class PrefixEngine(ScriptedEngine):
    """ScriptedEngine that takes a forced prefix, as WhisperEngine does: the words the
    prefix names at the start of the buffer are not returned (only the tail is decoded)."""

    supports_prefix = True

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.prefixes: list[str] = []

    def transcribe(self, audio: np.ndarray, prompt: str, language: str, prefix: str = "") -> list[EngineSegment]:
        segments = super().transcribe(audio, prompt, language)
        with self._lock:
            self.prefixes.append(prefix)
        skip = len(prefix.split())
        out = []
        for seg in segments:
            keep = seg.words[skip:]
            skip = max(0, skip - len(seg.words))
            if keep:
                out.append(
                    EngineSegment(
                        keep, keep[0].start, seg.end, seg.no_speech_prob, seg.avg_logprob, "".join(w.text for w in keep)
                    )
                )
        return out
