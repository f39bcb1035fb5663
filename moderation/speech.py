"""What a speech-to-text engine gives the streaming transcriber, and what it gives the relay.

The engine sees plain audio (16 kHz mono float32, times relative to the audio it was
given); the transcriber owns call media time. Keeping that split means a test double
engine, faster-whisper, or a remote GPU service all plug in the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class EngineWord:
    text: str
    start: float  # seconds from the start of the audio passed to transcribe()
    end: float
    probability: float = 1.0


@dataclass(frozen=True)
class EngineSegment:
    words: list[EngineWord]
    start: float
    end: float
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    text: str = ""


class SpeechEngine(Protocol):
    """One loaded model. Thread-safe: calls from several worker threads may overlap."""

    @property
    def version(self) -> str:
        """Model name and revision, recorded with every decision for QA."""
        ...

    def transcribe(self, audio: np.ndarray, prompt: str, language: str, prefix: str = "") -> list[EngineSegment]:
        """Words with timestamps for `audio` (float32, SAMPLE_RATE, mono). `prefix`: text the
        audio starts with, forced on the decoder and not returned (engines that support it;
        the transcriber passes one only to those, see moderation/transcriber.py)."""
        ...


@dataclass(frozen=True)
class Word:
    """A transcribed word in call media time."""

    text: str
    start: float
    end: float
    confirmed: bool
    probability: float = 1.0


@dataclass
class TranscriptUpdate:
    """What one transcription pass changed, for the relay and the moderation after it."""

    confirmed: list[Word] = field(default_factory=list)  # newly confirmed, in order
    provisional: list[Word] = field(default_factory=list)  # the current unconfirmed tail
    cleared_until: float = 0.0  # media time up to which all audio is transcribed or silent
    skipped: list[tuple[float, float]] = field(default_factory=list)  # audio dropped unheard (too slow)
    lag_s: float = 0.0  # newest audio received minus newest audio transcribed
    compute_s: float = 0.0  # time the engine took for this pass
