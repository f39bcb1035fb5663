"""Logged calls for the QA tests, written by the product's own CallLog and moderation.

The one test double here stands in for a call's *transcription*: the words are given, as
a scripted transcriber would give them (each confirmed at its end). Everything after
that is the product's: CallModerator with the project's keyword lists decides the spans,
CallLog writes the rows and the three Ogg/Opus files from packets of the relay's own
Opus encoder. The customer says each word as a tone (so the waveform shows it), the
delivered stream is that audio with the mute spans silenced, the counselor answers with
a tone after the customer's last word.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from moderation.call_moderator import CallModerator
from moderation.policy import Decision, PolicyConfig
from moderation.speech import TranscriptUpdate, Word
from moderation.text_model_config import TextModelConfig
from offline.eval_text import load_checks
from relay.config import Config
from relay.media.clock import CallClock
from relay.media.opus import OpusVoiceEncoder
from relay.records.call_log import CallLog
from relay.records.db_thread import DirectWrites

RATE = 48000
FRAME = 960

# A call with three listed words (profanity 씨발, insults 멍청이 and 개새끼) among clean ones.
ABUSIVE_CALL = [
    ("안녕하세요", 0.5, 1.1),
    ("씨발", 1.4, 1.8),
    ("환불", 2.4, 2.9),
    ("해주세요", 3.0, 3.6),
    ("멍청이", 4.2, 4.7),
    ("같으니", 4.8, 5.2),
    ("고맙습니다", 6.0, 6.8),
    ("개새끼", 7.4, 7.9),
]
CLEAN_CALL = [("안녕하세요", 0.5, 1.1), ("배송", 1.5, 1.9), ("문의", 2.0, 2.4), ("드립니다", 2.5, 3.1)]
# These calls are judged by the keyword lists alone (the shipped text model switched off),
# so their spans are the listed words and nothing a model's threshold could move.
KEYWORDS_ONLY = Config(text_model=TextModelConfig(enabled=False))


@dataclass
class LoggedCall:
    call_id: str
    counselor: str
    created_at: float
    words: list[tuple[str, float, float]]
    duration_s: float = 9.0
    delay_s: float = 1.5
    decisions: list[Decision] = field(default_factory=list)  # filled by write_logged_call
    # Where playout ran slowed (the elastic delay), logged as the call does: (start, end, delay_s).
    stretches: list[tuple[float, float, float]] = field(default_factory=list)
    # Each word's tone in Hz (e.g. stt_doubles.vocab(...), so a ScriptedEngine hears the
    # words again); words not named, and every word when None, are 440 Hz.
    tone_freqs: dict[str, float] | None = None
    # The speech model's state: anything but "ready" leaves the call unchecked (no words
    # logged, no decisions); and the audio played before a decision, as the final stats say.
    stt_state: str = "ready"
    undecided_s: float | None = None


class _FixedClock:
    """The call's media clock: playout of media time t happens at wall t + delay."""

    def __init__(self, delay_s: float) -> None:
        self._delay_s = delay_s

    @property
    def delay_now_s(self) -> float:
        return self._delay_s

    def media_time_at(self, wall: float) -> float:
        return wall - self._delay_s


def write_logged_call(
    db: sqlite3.Connection, data_dir: Path, call: LoggedCall, config: Config | None = None
) -> LoggedCall:
    """Writes `call` into the database and data folder as the server would have logged it."""
    config = config or KEYWORDS_ONLY
    db.execute(
        "INSERT INTO calls (call_id, counselor, created_at, ended_at, end_reason, delay_s, invite_hash, "
        "invite_expires_at) VALUES (?, ?, ?, ?, 'hangup', ?, ?, ?)",
        (
            call.call_id,
            call.counselor,
            call.created_at,
            call.created_at + call.duration_s + call.delay_s,
            call.delay_s,
            os.urandom(16),
            call.created_at + 3600,
        ),
    )
    # Events (lifts, the summary) are logged as if at the call's end, on its clock.
    ended = call.created_at + call.duration_s
    clock = CallClock(wall=lambda: ended, monotonic=lambda: call.duration_s)
    log = CallLog(DirectWrites(db), data_dir, call.call_id, clock=clock)
    checks = load_checks(config, classifier=False)
    # The server's versions snapshot (SttService.view, TextChecks.view), for these checks.
    keywords = checks.info["keywords"]
    log.snapshot(
        config.to_dict(),
        {
            "stt": {"state": call.stt_state, "detail": "test double: scripted words"},
            "keywords": {"state": "ready", "detail": keywords["version"]}
            if keywords["available"]
            else {"state": "off", "detail": keywords["reason"]},
            "classifier": {"state": "off", "detail": "left out", "overloaded": 0},
        },
    )
    log.set_playout(_FixedClock(call.delay_s))

    moderator = CallModerator(PolicyConfig(), clock=lambda: call.created_at)
    words = [Word(text, start, end, True, 0.9) for text, start, end in sorted(call.words, key=lambda w: w[1])]
    span_ids: dict[tuple[float, float], int] = {}
    for word in words if call.stt_state == "ready" else []:
        changes = moderator.judge(TranscriptUpdate(confirmed=[word], cleared_until=word.end), checks.as_list())
        for decision in changes.lift:
            log.on_bus_event({"type": "unmute", "span_id": span_ids.pop(decision.key)})
        for decision in changes.add:
            span_ids[decision.key] = len(span_ids) + 1
            log.decision(decision, span_ids[decision.key], 0.0)
    call.decisions = list(moderator.decisions)
    for start, end, delay_s in call.stretches:
        log.event("stretch", {"start": start, "end": end, "delay_s": delay_s})

    freqs = call.tone_freqs or {}
    customer = tones(
        [(w.start, w.end) for w in words], call.duration_s, freqs=[freqs.get(w.text, 440.0) for w in words]
    )
    delivered = customer.copy()
    for d in call.decisions:
        delivered[int(d.start * RATE) : int(d.end * RATE)] = 0
    last = max(w.end for w in words)
    counselor = tones([(last + 0.3, min(last + 1.0, call.duration_s))], call.duration_s, freq=330.0)
    for k, (c, d, s) in enumerate(zip(*(opus_packets(x) for x in (customer, delivered, counselor)))):
        t = k * FRAME / RATE
        log.customer_packet(c, t, t)
        log.delivered_packet(d, t + call.delay_s)
        log.counselor_packet(s, k * FRAME, t)
    stats = {} if call.undecided_s is None else {"undecided_s": call.undecided_s}
    log.close({"stats": stats}, words if call.stt_state == "ready" else [])
    return call


def tones(
    spans: list[tuple[float, float]], duration_s: float, freq: float = 440.0, freqs: list[float] | None = None
) -> np.ndarray:
    """int16 mono at 48 kHz: a tone over each span (at freqs[k] for span k, if given), silence elsewhere."""
    out = np.zeros(int(duration_s * RATE) // FRAME * FRAME, dtype=np.float64)
    for k, (start, end) in enumerate(spans):
        f = freqs[k] if freqs is not None else freq
        i0, i1 = int(start * RATE), min(int(end * RATE), out.size)
        out[i0:i1] = 0.3 * np.sin(2 * np.pi * f * np.arange(i1 - i0) / RATE)
    return (out * 32767).astype(np.int16)


def opus_packets(pcm: np.ndarray) -> list[bytes]:
    encoder = OpusVoiceEncoder()
    return [encoder.encode(pcm[k * FRAME : (k + 1) * FRAME]) for k in range(pcm.size // FRAME)]
