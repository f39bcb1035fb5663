"""`callguard eval-calls MANIFEST.jsonl`: how much abuse the server-side path silences, and
how much clean speech it takes with it, on recorded calls, in simulated time.

Each manifest line is one call:
    {"id": "c1", "audio": "c1.wav", "words": [{"text": "씨발", "start": 1.2, "end": 1.7, "toxic": true}, ...]}
with "audio" a WAV (mono) relative to the manifest, and word times in seconds of it. The
"toxic" flags are ground truth for scoring only: the moderation never sees them.

Per call, the path a live call takes on the server, on a simulated clock (no sleeping):
- the audio, resampled to 48 kHz int16, goes into a real DelayLine (relay/media/delay_line.py,
  the server's [delay] config with delay_s = --delay) in 20 ms frames; frame n arrives at
  simulated wall time n * 0.02 s with pts n * 960, and the line is pulled as the
  counselor's track pulls it: each 20 ms frame at its own wall time, a packet's frames
  (webrtc.delayed_ptime_ms) together when its first is due, after whatever moderation
  decided by then has been applied;
- a transcriber turns the audio into words:
  * reference: each manifest word's text is released, as a confirmed word, at its end +
    --reference-lag; the watermark (cleared_until) is the media time up to which every
    word has been released: now - lag, held back to the start of a word still unreleased;
  * whisper: the real StreamingTranscriber over the configured WhisperEngine ([stt]), fed
    16 kHz float32 through the server's own resampler. Computationally aware, as
    whisper_streaming's simulation is: a pass (with the text checks after it) started at
    simulated time t delivers its words, spans and watermark at t + its measured compute
    time, while audio keeps arriving; one pass at a time, as on the server;
- each update goes through CallModerator.judge with the configured checks (keywords, and
  the classifier when it loads); the policy's Changes become add_mute / lift_mute on the
  delay line through the same span ledger relay/calls/moderation.py uses (provisional
  spans included); skipped (never transcribed) audio is undecided, muted when
  delay.undecided_policy = "mute".

What was silenced at playout is recorded per media sample when it is played: after each
pull, the delay line's own judgement of the samples it consumed (DelayLine.played: mute
spans, watermark, skipped audio, undecided policy) is read back. The pulled audio is checked
against that record (silenced samples must come out as zeros, the rest as the source, a
fade's width away from every edge), so the scoring cannot drift from what a counselor hears.

Scoring: a toxic word is fully muted when all of [start, end] was silenced at playout,
partly when some was, missed otherwise; clean_speech_muted_pct is the share of the total
duration of the non-toxic words that was silenced; a toxic word's decision lag runs from
its end to the simulated moment the first mute span over it reached the delay line;
undecided_playout_pct is the share of word audio that reached playout not yet judged
(past the watermark, or skipped) and not inside a mute span: played unjudged under
undecided_policy = "play", silenced for it under "mute".
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from moderation.call_moderator import CallModerator, PrefixCheck, TextCheck
from moderation.policy import Changes, Decision, PolicyConfig
from moderation.resample import Resampler48kTo16k
from moderation.span_ledger import SpanLedger
from moderation.speech import TranscriptUpdate, Word
from offline.eval_text import Checks, EvalError, load_checks
from relay.config import Config
from relay.media.audio_format import FRAME_S, FRAME_SAMPLES, RATE, frames_per_packet
from relay.media.delay_line import DelayLine
from relay.media.mute_map import sample_at
from relay.media.wav_file import WavError, read_wav

# Fade context excluded from the playout check around every silenced edge (delay.fade_ms).
_CHECK_MARGIN = 2


# ------------------------------------------------------------------------ the manifest


@dataclass(frozen=True)
class TruthWord:
    text: str
    start: float
    end: float
    toxic: bool


@dataclass(frozen=True)
class CallSpec:
    id: str
    audio: Path
    words: tuple[TruthWord, ...]


def read_manifest(path: str | Path) -> list[CallSpec]:
    manifest = Path(path)
    try:
        raw = manifest.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise EvalError(f"{manifest}: no such file") from None
    calls: list[CallSpec] = []
    for n, line in enumerate(raw.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{manifest}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{where}: not JSON ({exc})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not isinstance(obj.get("audio"), str):
            raise EvalError(f'{where}: needs "id" (string), "audio" (path) and "words" (list)')
        words_raw = obj.get("words")
        if not isinstance(words_raw, list):
            raise EvalError(f'{where}: "words" must be a list')
        words = []
        for i, w in enumerate(words_raw):
            try:
                word = TruthWord(str(w["text"]), float(w["start"]), float(w["end"]), w["toxic"])
            except (KeyError, TypeError, ValueError):
                raise EvalError(f"{where}: word {i} needs text, start, end (seconds) and toxic") from None
            if not isinstance(word.toxic, bool):
                raise EvalError(f"{where}: word {i}: toxic must be true or false")
            if not (math.isfinite(word.start) and math.isfinite(word.end)) or word.start < 0 or word.end < word.start:
                raise EvalError(f"{where}: word {i} ({word.text!r}) has bad times [{word.start}, {word.end}]")
            words.append(word)
        words.sort(key=lambda w: (w.start, w.end))
        audio = Path(obj["audio"])
        calls.append(CallSpec(obj["id"], audio if audio.is_absolute() else manifest.parent / audio, tuple(words)))
    if not calls:
        raise EvalError(f"{manifest}: no calls")
    return calls


# --------------------------------------------------------------------------- the audio


def resample(x: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Band-limited resampling of a whole recording (FFT, zero-padded against wrap-around)."""
    if rate_in == rate_out or x.size == 0:
        return x.astype(np.float64)
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    pad = max(1024, rate_in // 10)
    n_in = -(-(x.size + pad) // down) * down  # a whole number of output samples
    n_out = n_in // down * up
    spectrum = np.fft.rfft(x, n_in)
    keep = min(spectrum.size, n_out // 2 + 1)
    out_spec = np.zeros(n_out // 2 + 1, dtype=complex)
    out_spec[:keep] = spectrum[:keep]
    y = np.fft.irfft(out_spec, n_out) * (n_out / n_in)
    return y[: round(x.size * rate_out / rate_in)]


def to_int16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 32767.0), -32768, 32767).astype(np.int16)


# --------------------------------------------------------------------- transcription


class _Watermark:
    """The delay line's watermark in the simulation: whatever the transcriber says now."""

    def __init__(self, transcriber: Any) -> None:
        self._transcriber = transcriber

    def cleared_until(self) -> float:
        return float(self._transcriber.cleared_until())

    def heard_until(self) -> float:
        return float(self._transcriber.heard_until())


Judge = Callable[[float, TranscriptUpdate], Changes]  # (simulated time, update) -> changes
Deliver = Callable[[float, TranscriptUpdate, Changes], None]


class ReferenceTranscriber:
    """The manifest's words, released as confirmed words at their end + lag.

    With `partial`, as a streaming recogniser gives them: each word's syllables (the
    characters of its text, their times spread evenly over the word) are released as the
    provisional tail at their own end + lag, and the word is confirmed at its end + lag.
    Only the text and times are released, never the toxic flag."""

    def __init__(self, words: tuple[TruthWord, ...], lag_s: float, partial: bool = False) -> None:
        self.lag_s = lag_s
        self.partial = partial
        self._words = sorted(words, key=lambda w: (w.end, w.start))
        # (release time, order, word index, characters released; the whole word = confirmed)
        events: list[tuple[float, int, int, int]] = []
        for i, w in enumerate(self._words):
            n = len(w.text)
            events.append((w.end + lag_s, 1, i, n))
            if partial:
                for k in range(1, n):
                    events.append((w.start + k * (w.end - w.start) / n + lag_s, 0, i, k))
        events.sort()
        self._events = events
        self._pos = 0  # first event not yet released
        self._next = 0  # first word not yet confirmed
        self._tail: Word | None = None  # the provisional word in progress
        self._now = 0.0

    def feed(self, pcm48: np.ndarray, media_start: float) -> None:
        pass

    def end_of_audio(self) -> None:
        pass

    def run_until(self, t: float, inclusive: bool, judge: Judge, deliver: Deliver) -> None:
        self._now = max(self._now, t)
        while self._pos < len(self._events):
            at = self._events[self._pos][0]
            if at > t or (at == t and not inclusive):
                break
            batch = []
            while self._pos < len(self._events) and self._events[self._pos][0] == at:
                _, _, i, k = self._events[self._pos]
                self._pos += 1
                w = self._words[i]
                if k == len(w.text):
                    batch.append(Word(w.text, w.start, w.end, True))
                    self._next = i + 1
                    if self._tail is not None and self._tail.start == w.start:
                        self._tail = None
                else:
                    self._tail = Word(w.text[:k], w.start, w.start + k * (w.end - w.start) / len(w.text), False)
            update = TranscriptUpdate(
                confirmed=batch,
                provisional=[self._tail] if self._tail is not None else [],
                cleared_until=self._cleared_at(at),
            )
            deliver(at, update, judge(at, update))

    def _cleared_at(self, now: float) -> float:
        cleared = now - self.lag_s
        if self._next < len(self._words):
            cleared = min(cleared, self._words[self._next].start)
        return max(0.0, cleared)

    def cleared_until(self) -> float:
        return self._cleared_at(self._now)

    def heard_until(self) -> float:
        """Up to where some text, provisional included, has been released."""
        cleared = self.cleared_until()
        return max(cleared, self._tail.end) if self._tail is not None else cleared

    def view(self) -> dict[str, Any]:
        return {"kind": "reference", "lag_s": self.lag_s, "partial": self.partial}


class WhisperTranscriber:
    """StreamingTranscriber over a loaded engine, its compute charged to simulated time."""

    def __init__(self, engine: Any, stt_config: Any, clock: Callable[[], float] = time.perf_counter) -> None:
        from moderation.transcriber import StreamingTranscriber

        self.engine = engine
        self.tr = StreamingTranscriber(engine, stt_config)
        self._resampler = Resampler48kTo16k()
        self._clock = clock
        self._inflight: tuple[float, TranscriptUpdate, Changes] | None = None
        self._audio_done = False
        self._finished = False
        self._cleared = 0.0
        self._heard = 0.0
        self.passes = 0
        self.compute_s = 0.0
        self.skipped_s = 0.0
        self.max_lag_s = 0.0

    def feed(self, pcm48: np.ndarray, media_start: float) -> None:
        self.tr.feed(self._resampler.process(pcm48), media_start)

    def end_of_audio(self) -> None:
        self._audio_done = True

    def run_until(self, t: float, inclusive: bool, judge: Judge, deliver: Deliver) -> None:
        """Deliver the pass in flight if it has finished by t, starting the next one as soon
        as the transcriber has work; with inclusive, also start one at t itself."""
        while self._inflight is not None:
            done = self._inflight[0]
            if done > t or (done == t and not inclusive):
                return
            _, update, changes = self._inflight
            self._inflight = None
            self._cleared = max(self._cleared, update.cleared_until)
            tail_end = update.provisional[-1].end if update.provisional else 0.0
            self._heard = max(self._cleared, tail_end)
            deliver(done, update, changes)
            self._maybe_start(done, judge)
        if inclusive:
            self._maybe_start(t, judge)

    def _maybe_start(self, at: float, judge: Judge) -> None:
        if self._finished or self._inflight is not None:
            return
        if self._audio_done:
            work = self.tr.finish
            self._finished = True
        elif self.tr.pending():
            work = self.tr.step
        else:
            return
        started = self._clock()
        update = work()
        changes = judge(at, update)  # the checks run after the pass, on the same budget
        spent = self._clock() - started
        self.passes += 1
        self.compute_s += spent
        self.skipped_s += sum(b - a for a, b in update.skipped)
        self.max_lag_s = max(self.max_lag_s, update.lag_s)
        self._inflight = (at + spent, update, changes)

    def cleared_until(self) -> float:
        # What the passes delivered so far, not the transcriber's own state (which is ahead
        # of simulated time while a pass is "in flight").
        return self._cleared

    def heard_until(self) -> float:
        """Up to where the delivered passes hold text, the provisional tail included."""
        return max(self._cleared, self._heard)

    def view(self) -> dict[str, Any]:
        return {
            "kind": "whisper",
            "model": str(getattr(self.engine, "version", "")),
            "passes": self.passes,
            "compute_s": round(self.compute_s, 3),
            "skipped_s": round(self.skipped_s, 3),
            "max_lag_s": round(self.max_lag_s, 3),
        }


# ----------------------------------------------------------------------- one call


@dataclass
class CallOutcome:
    id: str
    audio_s: float
    silenced: np.ndarray  # bool per 48 kHz media sample: silenced when it was played
    undecided: np.ndarray  # bool per sample: reached playout unjudged and not in a mute span
    # Every span added: (applied at, its words' start, their end, provisional); the words'
    # own extent, not the padded span, says which words a span was decided for.
    spans: list[tuple[float, float, float, bool]]
    lifted: int
    # Provisional spans revised away (not replaced by a grown or confirmed span) after
    # playout had reached them: speculation that muted audio it should not have.
    lifted_late: int
    late_mutes: int
    playout_mismatches: int
    playout_checked: int
    transcriber: dict[str, Any]
    # The elastic delay: the applied delay per frame played (seconds), seconds stretched,
    # seconds of pauses cut.
    delays: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    stretched_s: float = 0.0
    pause_cut_s: float = 0.0


class _SimulatedMutes:
    """The simulation's span sink: the delay line, with each span's simulated arrival kept."""

    def __init__(self, line: DelayLine) -> None:
        self._line = line
        self.now = 0.0
        # (applied at, its words' start, their end, provisional) for every span added.
        self.spans: list[tuple[float, float, float, bool]] = []

    def add_span(self, decision: Decision) -> int:
        span, _ = self._line.add_mute(
            decision.start, decision.end, provisional=decision.provisional, reason=decision.reason
        )
        start, end = decision.key
        self.spans.append((self.now, start, end, decision.provisional))
        return span.span_id

    def lift_span(self, span_id: int) -> bool:
        return self._line.lift_mute(span_id)


def simulate_call(
    call: CallSpec,
    pcm48: np.ndarray,
    transcriber: Any,
    checks: list[TextCheck],
    config: Config,
    delay_s: float,
    prefix_check: PrefixCheck | None = None,
) -> CallOutcome:
    """Runs one call through the delay line, the transcriber and the moderation."""
    delay_cfg = dataclasses.replace(config.delay, delay_s=delay_s)
    policy: PolicyConfig = getattr(config, "policy", None) or PolicyConfig()
    # As the call builds it: one outgoing packet a pull (relay/calls/call.py).
    per_packet = frames_per_packet(config.webrtc.delayed_ptime_ms)
    line = DelayLine(delay_cfg, _Watermark(transcriber), rate=RATE, frame_samples=per_packet * FRAME_SAMPLES)
    frames = -(-pcm48.size // FRAME_SAMPLES)
    total = frames * FRAME_SAMPLES
    audio = np.zeros(total, dtype=np.int16)
    audio[: pcm48.size] = pcm48
    silenced = np.zeros(total, dtype=bool)
    undecided = np.zeros(total, dtype=bool)
    played = np.zeros(total, dtype=np.int16)
    seen = np.zeros(total, dtype=bool)
    sink = _SimulatedMutes(line)
    ledger = SpanLedger(sink)
    sim_now = [0.0]
    moderator = CallModerator(policy, clock=lambda: sim_now[0], mute_skipped=delay_cfg.undecided_policy == "mute")

    def judge(at: float, update: TranscriptUpdate) -> Changes:
        sim_now[0] = at  # the decisions' decided_at, in simulated seconds
        return moderator.judge(update, checks, prefix_check)

    def deliver(at: float, update: TranscriptUpdate, changes: Changes) -> None:
        # As relay/calls/moderation.py applies a pass: skipped audio marked, then the changes.
        for a, b in update.skipped:
            line.mark_unjudged(a, b)
        sink.now = at
        ledger.apply(changes)

    # As the counselor's track pulls: a whole packet when its first frame is due
    # (relay/webrtc/tracks.py), so its later frames are judged early.
    ticks = -(-(frames + math.ceil(max(delay_s, delay_cfg.max_s) / FRAME_S) + 2) // per_packet) * per_packet
    delays = np.zeros(ticks)
    for k in range(ticks):
        wall = k * FRAME_S
        transcriber.run_until(wall, False, judge, deliver)
        if k < frames:
            frame = audio[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES]
            media = line.push(k * FRAME_SAMPLES, frame, wall)
            transcriber.feed(frame, media if media is not None else k * FRAME_S)
        elif k == frames:
            transcriber.end_of_audio()
        transcriber.run_until(wall, True, judge, deliver)
        if k % per_packet:
            continue  # pulled with its packet's first frame
        out = line.pull(wall)
        delays[k : k + per_packet] = line.elastic.delay_s
        # What the pull just played, as the delay line judged it.
        heard = line.played
        if heard is None:
            continue
        c0 = heard.start
        lo, hi = max(c0, 0), min(c0 + heard.muted.size, total)
        if lo >= hi:
            continue
        silenced[lo:hi] = heard.silenced[lo - c0 : hi - c0]
        undecided[lo:hi] = heard.unjudged[lo - c0 : hi - c0]
        if heard.aligned:  # a stretched or shortened frame is not compared sample for sample
            played[lo:hi] = out[lo - c0 : hi - c0]
            seen[lo:hi] = True

    stats = line.stats()
    checked, mismatches = _check_playout(audio, played, silenced, seen, round(delay_cfg.fade_ms * RATE / 1000))
    return CallOutcome(
        call.id,
        pcm48.size / RATE,
        silenced,
        undecided,
        sink.spans,
        ledger.lifted,
        stats.speculative_late_lifts,
        stats.late_mutes,
        mismatches,
        checked,
        transcriber.view(),
        delays[math.ceil(delay_s / FRAME_S) : frames + math.ceil(delay_s / FRAME_S)],  # while the call plays
        stats.stretched_s,
        stats.pause_cut_s,
    )


def _check_playout(
    audio: np.ndarray, played: np.ndarray, silenced: np.ndarray, seen: np.ndarray, fade: int
) -> tuple[int, int]:
    """Samples compared, and how many disagree with the silenced record: silenced ones
    must have played as zeros, the others as the source (both a fade away from any edge
    of the record, the call's start and end counting as edges)."""
    n = silenced.size
    edges = np.flatnonzero(np.diff(silenced.astype(np.int8))) + 1
    near = np.zeros(n + 1, dtype=np.int32)
    margin = fade + _CHECK_MARGIN
    for e in np.concatenate([edges, [0, n]]):
        near[max(0, e - margin)] += 1
        near[min(n, e + margin)] -= 1
    far = (np.cumsum(near)[:n] == 0) & seen
    bad = far & ((silenced & (played != 0)) | (~silenced & (played != audio)))
    return int(np.count_nonzero(far)), int(np.count_nonzero(bad))


# --------------------------------------------------------------------------- scoring


def score(calls: list[CallSpec], outcomes: list[CallOutcome]) -> dict[str, Any]:
    toxic = fully = partly = 0
    clean_samples = clean_muted = 0
    word_samples = undecided_samples = 0
    lags: list[float] = []
    per_call = []
    for call, out in zip(calls, outcomes):
        n = out.silenced.size
        c_toxic = c_fully = c_partly = 0
        c_clean = c_clean_muted = 0
        not_fully = []
        for w in call.words:
            i0, i1 = min(sample_at(w.start, RATE), n), min(sample_at(w.end, RATE), n)
            if i1 <= i0:
                continue
            muted = int(np.count_nonzero(out.silenced[i0:i1]))
            word_samples += i1 - i0
            undecided_samples += int(np.count_nonzero(out.undecided[i0:i1]))
            if w.toxic:
                c_toxic += 1
                known = [at for at, s, e, _ in out.spans if s < w.end and e > w.start]
                lag = min(known) - w.end if known else None
                if lag is not None:
                    lags.append(lag)
                if muted == i1 - i0:
                    c_fully += 1
                else:
                    c_partly += muted > 0
                    not_fully.append(
                        {
                            "text": w.text,
                            "start": round(w.start, 3),
                            "end": round(w.end, 3),
                            "muted_fraction": round(muted / (i1 - i0), 3),
                            "decision_lag_s": None if lag is None else round(lag, 3),
                        }
                    )
            else:
                c_clean += i1 - i0
                c_clean_muted += muted
        toxic += c_toxic
        fully += c_fully
        partly += c_partly
        clean_samples += c_clean
        clean_muted += c_clean_muted
        per_call.append(
            {
                "id": call.id,
                "audio_s": round(out.audio_s, 3),
                "words": len(call.words),
                "toxic_words": c_toxic,
                "toxic_fully_muted": c_fully,
                "toxic_partly_muted": c_partly,
                "clean_speech_muted_s": round(c_clean_muted / RATE, 3),
                "spans_added": len(out.spans),
                "spans_lifted": out.lifted,
                "speculative_spans_lifted_late": out.lifted_late,
                "late_mutes": out.late_mutes,
                "toxic_not_fully_muted": not_fully,
            }
        )

    def pct(a: int, b: int) -> float | None:
        return round(100.0 * a / b, 2) if b else None

    def percentile(q: float) -> float | None:
        return round(float(np.percentile(lags, q)), 3) if lags else None

    delays = np.concatenate([o.delays for o in outcomes]) if outcomes else np.zeros(0)

    return {
        "calls": len(calls),
        "toxic_words": toxic,
        "toxic_fully_muted_pct": pct(fully, toxic),
        "toxic_partly_muted_pct": pct(partly, toxic),
        "toxic_missed_pct": pct(toxic - fully - partly, toxic),
        "clean_speech_muted_pct": pct(clean_muted, clean_samples),
        "clean_speech_s": round(clean_samples / RATE, 3),
        "clean_speech_muted_s": round(clean_muted / RATE, 3),
        "decision_lag_p50_s": percentile(50),
        "decision_lag_p95_s": percentile(95),
        "decision_lag_max_s": round(max(lags), 3) if lags else None,
        "undecided_playout_pct": pct(undecided_samples, word_samples),
        "delay_mean_s": round(float(delays.mean()), 3) if delays.size else None,
        "delay_p95_s": round(float(np.percentile(delays, 95)), 3) if delays.size else None,
        "delay_max_s": round(float(delays.max()), 3) if delays.size else None,
        "stretched_s": round(sum(o.stretched_s for o in outcomes), 3),
        "pause_cut_s": round(sum(o.pause_cut_s for o in outcomes), 3),
        "speculative_spans": sum(1 for o in outcomes for *_, p in o.spans if p),
        "speculative_spans_lifted_late": sum(o.lifted_late for o in outcomes),
        "spans_added": sum(len(o.spans) for o in outcomes),
        "spans_lifted": sum(o.lifted for o in outcomes),
        "late_mutes": sum(o.late_mutes for o in outcomes),
        "playout_check": {
            "samples": sum(o.playout_checked for o in outcomes),
            "mismatches": sum(o.playout_mismatches for o in outcomes),
        },
        "per_call": per_call,
    }


# ------------------------------------------------------------------------ the command


def evaluate_calls(
    manifest: str | Path,
    config: Config,
    *,
    delay_s: float,
    transcriber: str = "reference",
    reference_lag_s: float = 0.8,
    reference_partial: bool = False,
    checks: Checks | None = None,
    engine: Any = None,
) -> dict[str, Any]:
    """The figures as a JSON-able dict. `checks` default to the configured ones; with
    transcriber = "whisper", `engine` defaults to a WhisperEngine from config.stt."""
    if not 0.0 < delay_s <= 30.0:
        raise EvalError(f"--delay {delay_s}: must be in (0, 30] seconds")
    if transcriber not in ("reference", "whisper"):
        raise EvalError(f"unknown transcriber {transcriber!r} (reference or whisper)")
    if transcriber == "reference" and not 0.0 <= reference_lag_s <= 30.0:
        raise EvalError(f"--reference-lag {reference_lag_s}: must be in [0, 30] seconds")
    calls = read_manifest(manifest)
    checks = checks if checks is not None else load_checks(config)
    if not checks.names():
        reasons = "; ".join(f"{k}: {v.get('reason')}" for k, v in checks.info.items())
        raise EvalError(f"no text check could be loaded ({reasons})")
    if transcriber == "whisper" and engine is None:
        engine = load_engine(config)
    outcomes = []
    started = time.perf_counter()
    audio_s = 0.0
    for call in calls:
        try:
            x, rate = read_wav(call.audio)
        except WavError as exc:
            raise EvalError(str(exc)) from None
        pcm48 = to_int16(resample(x, rate, RATE))
        audio_s += pcm48.size / RATE
        source: Any = (
            ReferenceTranscriber(call.words, reference_lag_s, partial=reference_partial)
            if transcriber == "reference"
            else WhisperTranscriber(engine, config.stt)
        )
        outcomes.append(simulate_call(call, pcm48, source, checks.as_list(), config, delay_s, checks.prefixes))
    wall_s = time.perf_counter() - started
    report = score(calls, outcomes)
    head = {
        "manifest": str(manifest),
        "delay_s": delay_s,
        "transcriber": transcriber,
        "reference_lag_s": reference_lag_s if transcriber == "reference" else None,
        "reference_partial": reference_partial if transcriber == "reference" else None,
        "undecided_policy": config.delay.undecided_policy,
        "checks": checks.info,
        "classifier_available": checks.classifier is not None,
        "audio_s": round(audio_s, 3),
        "wall_s": round(wall_s, 3),
        "speed_x": round(audio_s / wall_s, 1) if wall_s > 0 else None,
    }
    if transcriber == "whisper":
        views = [o.transcriber for o in outcomes]
        head["whisper"] = {
            "model": views[0]["model"] if views else "",
            "passes": sum(v["passes"] for v in views),
            "compute_s": round(sum(v["compute_s"] for v in views), 3),
            "skipped_s": round(sum(v["skipped_s"] for v in views), 3),
            "max_lag_s": max((v["max_lag_s"] for v in views), default=0.0),
        }
    return {**head, **report}


def load_engine(config: Config, purpose: str = "for --transcriber whisper") -> Any:
    """The WhisperEngine of config.stt (no download); an EvalError saying why not, `purpose` in it."""
    from moderation.model_store import ModelUnavailable

    try:
        from moderation.whisper_engine import WhisperEngine

        return WhisperEngine(config.stt, allow_download=False)
    except ModelUnavailable as exc:
        raise EvalError(f"no speech model could be loaded {purpose}: {exc}") from None
    except ImportError as exc:
        raise EvalError(f"faster-whisper cannot be imported {purpose}: {exc}") from None


SUMMARY_KEYS = (
    "calls",
    "toxic_words",
    "toxic_fully_muted_pct",
    "toxic_partly_muted_pct",
    "toxic_missed_pct",
    "clean_speech_muted_pct",
    "decision_lag_p50_s",
    "decision_lag_p95_s",
    "undecided_playout_pct",
    "delay_mean_s",
    "delay_p95_s",
    "stretched_s",
    "speculative_spans",
    "speculative_spans_lifted_late",
    "late_mutes",
    "speed_x",
)


def format_summary(report: dict[str, Any]) -> str:
    lag = ""
    if report["transcriber"] == "reference":
        partial = ", partial words" if report["reference_partial"] else ""
        lag = f", reference lag {report['reference_lag_s']} s{partial}"
    lines = [
        f"{report['manifest']}: delay {report['delay_s']} s, transcriber {report['transcriber']}{lag}, "
        f"undecided policy {report['undecided_policy']}"
    ]
    for name, info in report["checks"].items():
        state = f"version {info.get('version') or '?'}" if info.get("available") else f"UNAVAILABLE: {info['reason']}"
        lines.append(f"  {name}: {state}")
    for key in SUMMARY_KEYS:
        lines.append(f"  {key:<26} {report[key]}")
    check = report["playout_check"]
    lines.append(f"  {'playout_check':<26} {check['mismatches']} mismatches in {check['samples']} samples")
    for call in report["per_call"]:
        for w in call["toxic_not_fully_muted"]:
            lines.append(
                f"  not fully muted: {call['id']} {w['text']} [{w['start']}, {w['end']}] "
                f"muted {w['muted_fraction']:.0%}, decision lag {w['decision_lag_s']}"
            )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", type=Path, help="JSON lines: {id, audio (WAV, relative to the manifest), words}")
    parser.add_argument("--delay", type=float, help="delay D in seconds (default: delay.delay_s from the config)")
    parser.add_argument(
        "--transcriber",
        choices=("reference", "whisper"),
        default="reference",
        help="reference: the manifest's words at end + --reference-lag; whisper: the configured "
        "model, its compute time charged to the simulated clock",
    )
    parser.add_argument(
        "--reference-lag",
        type=float,
        default=0.8,
        help="seconds from a word's end to its release by the reference transcriber (default 0.8)",
    )
    parser.add_argument(
        "--reference-partial",
        action="store_true",
        help="the reference releases each word's syllables as provisional text at their own end + lag "
        "(spread evenly over the word), and confirms the word at its end + lag",
    )
    parser.add_argument("--no-classifier", action="store_true", help="keywords only, even if a classifier loads")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def main(args: argparse.Namespace, config: Config) -> int:
    delay_s = args.delay if args.delay is not None else config.delay.delay_s
    try:
        checks = load_checks(config, classifier=not getattr(args, "no_classifier", False))
        report = evaluate_calls(
            args.manifest,
            config,
            delay_s=delay_s,
            transcriber=args.transcriber,
            reference_lag_s=args.reference_lag,
            reference_partial=getattr(args, "reference_partial", False),
            checks=checks,
        )
    except EvalError as exc:
        print(f"callguard eval-calls: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        print(format_summary(report))
    return 0
