"""Streaming transcription of one call's customer audio, in call media time.

    tr = StreamingTranscriber(engine, config)        # one per call; the engine is shared
    tr.feed(samples_16k, start)                      # event loop, every frame; cheap (VAD)
    if tr.pending() and not busy:                    # at most one step() at a time per call
        update = await loop.run_in_executor(pool, tr.step)
    ...
    update = await loop.run_in_executor(pool, tr.finish)   # call end

How it works (the whisper_streaming scheme, rebuilt for a delay line):
- Audio goes into a buffer that starts at `buffer_start` (media time). Every pass
  re-transcribes the whole buffer with a short text prompt (confirmed text that has
  scrolled out of it) and hands the words to LocalAgreement-2: a word is confirmed when
  two consecutive hypotheses agree on it (moderation/agreement.py).
- webrtcvad runs in feed() on 30 ms frames and turns them into speech regions with
  pre-roll and hangover (moderation/vad.py). While the buffer holds no speech and nothing
  is provisional, step() calls no engine: it drops the silence (keeping the pre-roll) and
  moves the watermark through it.
- When a speech region closes (hangover_s of silence after speech), the utterance is
  finished: one final pass over the buffer up to the region's end (skipped when the last
  pass already covered it) and every provisional word before that end is confirmed, so a
  word right before a pause does not wait for the next utterance.
- Buffer trimming after each pass: past buffer_max_s / 2, cut at the latest Whisper
  segment end whose words are all confirmed; past buffer_max_s, cut at the last confirmed
  word end; if nothing is confirmed, confirm the older half as it stands (forced) and cut.
- Hallucination guard (moderation/hallucination.py) on every pass, plus: segments lying
  wholly outside VAD speech are dropped.

The schedule (issue 11: cost that grows with speech, not with buffer length x passes):
- prefix mode, with an engine that takes a forced decoder prefix (WhisperEngine): after
  every pass the buffer is cut just before the last confirmed word, which stays buffered
  and goes in as the prefix; so a pass decodes only the unconfirmed tail (decoding, not
  the fitted encoder window, is what a pass costs) and Whisper still hears a word of
  context. Confirmed text that left the buffer is the text prompt, as before; before any
  text is confirmed, config.initial_prompt is;
- context across utterances (config.context_s): when an utterance ends, the buffer keeps
  its last confirmed words (if Whisper was sure of them) while the pause lasts less than
  context_s; the next utterance's passes hear them first, their text forced as the
  decoder's prefix, until a word of the new utterance is confirmed or a pass finds the
  transcription behind (the context costs a pass about 14 %). Heard cold, with only
  a text prompt, an utterance's first words were where the streaming transcript most
  often differed from the offline one ("Hello" read as "the low");
- decision-lag bound: a provisional word ending config.confirm_after_s before the newest
  audio a pass heard is confirmed as that pass has it (stats.aged_confirms), so the
  watermark trails speech by about that plus one pass, not by a whole utterance when
  consecutive hypotheses keep disagreeing;
- no regular pass over only silence since the last pass (it cannot change a word; the
  utterance's final pass comes when the VAD closes the region), none on a buffer under
  config.min_pass_audio_s (a fragment Whisper hallucinates on), and a skip keeps at
  least that much;
- the pass interval follows the pass cost (chunk_s .. pass_interval_max_s), so a slow
  machine runs fewer, longer passes instead of queueing up into a skip.

The watermark, `cleared_until` (monotonic): media time up to which no word can change any
more: the end of the last confirmed word, or further through audio the VAD decided is
silence when nothing provisional lies there. It never passes provisional words, audio not
yet transcribed, or speech whose utterance has not been finished.

Lag and skipping: lag_s = newest audio fed minus the end of audio the passes have covered.
When step() finds more than config.max_lag_s of unprocessed audio that holds speech (the
machine is too slow), it skips ahead: the provisional words are confirmed as they stand
(so a provisional mute is not lifted), the oldest unprocessed audio is dropped and the next
pass covers only the newest max(chunk_s, max_lag_s / 2) seconds. The parts of the dropped
audio that were not decided silence by the VAD (speech regions, and anything after the last
confirmed word of the abandoned buffer) are reported in TranscriptUpdate.skipped, and
cleared_until moves past them in that same update, never before.
CONSUMERS MUST TREAT SKIPPED SPANS AS UNDECIDED (never transcribed, never judged): play
them under the undecided policy, count them, show them. cleared_until alone does not mean
"judged" inside a skipped span. The same happens, without a pass in between, if feed()
piles up more than a hard backlog (step() not being called, or an engine that hangs).

Threading: feed() and pending() are for the event-loop thread; step() and finish() are
heavy and belong in a worker thread. Shared state sits behind one lock held only for
bookkeeping, never during engine.transcribe(), so feed() never waits for inference.
step()/finish() calls on one transcriber serialise on a second lock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from moderation.agreement import LocalAgreement, normalise
from moderation.hallucination import INVENTED, HallucinationGuard, span
from moderation.speech import SAMPLE_RATE, EngineSegment, SpeechEngine, TranscriptUpdate, Word
from moderation.stt_config import SttConfig
from moderation.vad import VadGate

log = logging.getLogger(__name__)

_EPS = 1e-6
_TOL = 0.5 / SAMPLE_RATE  # feed() stamps closer than half a sample are contiguous
_AGAIN = object()
# Context kept for the next utterance (config.context_s): the words it holds must reach
# this mean probability, and the cut lies this far before the first of them.
CONTEXT_MIN_PROBABILITY = 0.5
CONTEXT_LEAD_S = 0.1
# ... and it is dropped when a pass finds more new audio waiting than this share of
# max_lag_s: halfway to a skip, the context is the part of a pass that goes first. Not a
# fixed 0.75 s: one real-time base call on 2 cores keeps up with passes of about 0.5 s,
# so a pass often found 0.75-1.0 s waiting and lost its context while nothing was behind
# (docs/OPERATIONS.md has the paired runs).
CONTEXT_MAX_BACKLOG_SHARE = 0.5


class _Run:
    """Contiguous audio from `start`; chunks are never modified in place (views are safe)."""

    __slots__ = ("start", "chunks", "n", "after_skip")

    def __init__(self, start: float, chunks: list[np.ndarray] | None = None, after_skip: bool = False) -> None:
        self.start = start
        self.chunks = chunks or []
        self.n = sum(len(c) for c in self.chunks)
        self.after_skip = after_skip  # the gap before this run is a skip, not a loss

    @property
    def end(self) -> float:
        return self.start + self.n / SAMPLE_RATE

    def append(self, x: np.ndarray) -> None:
        self.chunks.append(x)
        self.n += len(x)

    def audio(self) -> np.ndarray:
        if len(self.chunks) != 1:
            self.chunks = [np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)]
        return self.chunks[0]

    def index(self, t: float) -> int:
        return min(self.n, max(0, int(round((t - self.start) * SAMPLE_RATE))))

    def cut(self, t: float) -> None:
        """Drop the audio before t."""
        k = self.index(t)
        if k:
            self.chunks = [self.audio()[k:]]
            self.n -= k
            self.start += k / SAMPLE_RATE

    def upto(self, t: float) -> _Run:
        """A run with this one's audio before t."""
        k = self.index(t)
        return _Run(self.start, [self.audio()[:k]])

    def since(self, t: float, after_skip: bool = False) -> _Run:
        """A run with this one's audio from t."""
        k = self.index(t)
        return _Run(self.start + k / SAMPLE_RATE, [self.audio()[k:]], after_skip)


@dataclass
class _Job:
    kind: str  # "pass": a regular pass | "final": finish an utterance | "close": finish a run
    start: float
    end: float
    audio: np.ndarray
    prompt: str
    prefix: str = ""  # confirmed text at the start of `audio`, forced (prefix mode)


@dataclass
class TranscriberStats:
    passes: int = 0  # engine calls
    final_passes: int = 0  # of which finished an utterance or a run
    silent_steps: int = 0  # steps that moved through silence without the engine
    skips: int = 0  # skip-aheads that dropped unheard audio
    skipped_s: float = 0.0
    forced_cuts: int = 0  # buffer cuts that confirmed words without agreement
    aged_confirms: int = 0  # words confirmed by confirm_after_s, without agreement
    engine_s: float = 0.0
    dropped: Counter[str] = field(default_factory=Counter)  # hallucination guard, by reason


class StreamingTranscriber:
    def __init__(
        self,
        engine: SpeechEngine,
        config: SttConfig | None = None,
        *,
        vad: VadGate | None = None,
        guard: HallucinationGuard | None = None,
        max_gap_fill_s: float = 2.0,
        hangover_s: float = 0.3,
        preroll_s: float = 0.2,
        backlog_cap_s: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """max_gap_fill_s: gaps in the stamps up to this long are filled with zeros (loss);
        longer ones close the buffer (a final pass) and start a new one after the gap.
        backlog_cap_s: unprocessed audio feed() tolerates before it skips by itself
        (default max(10 * max_lag_s, 2 * buffer_max_s))."""
        self.engine = engine
        self.config = config or SttConfig()
        self.vad = vad or VadGate(self.config.vad_aggressiveness, hangover_s=hangover_s, preroll_s=preroll_s)
        self.guard = guard or HallucinationGuard(self.config)
        self.max_gap_fill_s = max_gap_fill_s
        self.backlog_cap_s = backlog_cap_s or max(10 * self.config.max_lag_s, 2 * self.config.buffer_max_s)
        # After a skip the next pass gets at least min_pass_audio_s: a shorter clip is a
        # fragment Whisper hallucinates on.
        self.keep_after_skip_s = max(self.config.chunk_s, self.config.min_pass_audio_s, self.config.max_lag_s / 2)
        # Prefix mode (engines that take one): the confirmed words still buffered are forced
        # as the decoder's prefix, and the buffer is cut at confirmed words after every pass,
        # so a pass decodes only the unconfirmed tail. Without it: whisper_streaming's
        # scheme, the buffer re-transcribed until a confirmed segment end.
        self._can_prefix = bool(getattr(engine, "supports_prefix", False))
        self._use_prefix = self.config.prefix_confirmed and self._can_prefix
        # Adaptive pass interval: under load a pass costs more, so passes come less often
        # (chunk_s .. pass_interval_max_s) instead of queueing up and ending in a skip.
        self._interval = self.config.chunk_s
        self._due_at = float("-inf")  # media time the next regular pass is due
        self._clock = clock
        self._lock = threading.Lock()  # feed() <-> step(): buffer, VAD, times
        self._step_lock = threading.Lock()  # one step()/finish() at a time
        self._runs: list[_Run] = []
        self._started = False
        self._finishing = False
        self._recv_end = 0.0
        self._inflight_end: float | None = None
        self._processed_until = 0.0  # end of the audio the passes (or the VAD, in silence) covered
        self._last_pass_end = 0.0  # end of the audio the latest engine pass saw
        self._final_done_until = 0.0  # utterance ends up to here are finished
        self._cleared = 0.0
        self._agree = LocalAgreement()
        self._history: deque[Word] = deque(maxlen=1024)  # confirmed words, for the prompt
        self._carry: TranscriptUpdate | None = None
        self.stats = TranscriberStats()

    # ---------------------------------------------------------------- event-loop side

    def feed(self, samples_16k: np.ndarray, start: float) -> None:
        """Audio (float32 mono 16 kHz) whose first sample is at media time `start`. Gaps
        after the previous audio are loss (silence); audio overlapping what was already fed
        is dropped. Ignored once finish() has begun."""
        x = np.asarray(samples_16k, dtype=np.float32).ravel()
        if x.size == 0:
            return
        with self._lock:
            if self._finishing:
                return
            if not self._started:
                self._started = True
                self._runs.append(_Run(start))
                self.vad.reset(start)
                self._recv_end = self._processed_until = self._last_pass_end = start
                self._final_done_until = self._cleared = start
            else:
                gap = start - self._recv_end
                if gap > _TOL:
                    fill = int(round(gap * SAMPLE_RATE))
                    if gap <= self.max_gap_fill_s:
                        if fill:
                            zeros = np.zeros(fill, dtype=np.float32)
                            self._runs[-1].append(zeros)
                            self.vad.feed(zeros)
                    else:
                        self._runs.append(_Run(start))
                        self.vad.reset(start)
                elif gap < -_TOL:
                    k = int(round(-gap * SAMPLE_RATE))
                    if k >= len(x):
                        return
                    x = x[k:]
            self._runs[-1].append(x)
            self.vad.feed(x)
            self._recv_end = self._runs[-1].end
            if self._recv_end - self._unprocessed_from() > self.backlog_cap_s:
                self._split_for_skip(self._recv_end - self.keep_after_skip_s)

    def pending(self) -> bool:
        """True when a step() would do work: chunk_s of new audio since the last pass, an
        utterance just ended, or a buffer closed after a long gap."""
        with self._lock:
            if not self._runs or self._finishing:
                return False
            if len(self._runs) > 1:
                return True
            if (
                self._recv_end - self._processed_until >= self._interval - _EPS
                and self._recv_end >= self._due_at - _EPS
            ):
                return True
            after = max(self._final_done_until, self._runs[0].start)
            return bool(self.vad.closed_ends(after, self._recv_end))

    @property
    def cleared_until(self) -> float:
        return self._cleared

    @property
    def received_until(self) -> float:
        return self._recv_end

    @property
    def lag_s(self) -> float:
        """Audio received but not yet covered by a pass (skipped audio left out)."""
        with self._lock:
            return max(0.0, self._recv_end - self._unprocessed_from())

    def buffered_s(self) -> float:
        """Seconds of audio held (the re-transcribed buffer plus what waits for a pass)."""
        with self._lock:
            return sum(r.n for r in self._runs) / SAMPLE_RATE

    @property
    def buffer_start(self) -> float:
        with self._lock:
            return self._runs[0].start if self._runs else self._recv_end

    # ---------------------------------------------------------------- worker side

    def step(self) -> TranscriptUpdate:
        """One transcription pass (at most one engine call). Run it in a worker thread."""
        with self._step_lock:
            return self._step()

    def finish(self) -> TranscriptUpdate:
        """Call end: transcribe what is left, confirm every word, move the watermark to the
        end of the audio. Later feed() calls are ignored. Run it in a worker thread."""
        with self._step_lock:
            with self._lock:
                self._finishing = True
            total = TranscriptUpdate(cleared_until=self._cleared)
            while True:
                with self._lock:
                    if not self._runs:
                        break
                u = self._step()
                total.confirmed.extend(u.confirmed)
                total.skipped.extend(u.skipped)
                total.compute_s += u.compute_s
            total.provisional = self._agree.tail
            total.cleared_until = self._cleared
            total.lag_s = 0.0
            return total

    def _step(self) -> TranscriptUpdate:
        # What a step did before its engine call failed is reported by the next one.
        upd, self._carry = self._carry or TranscriptUpdate(), None
        first = True
        while True:
            with self._lock:
                job = self._plan(upd, first)
                if isinstance(job, _Job):
                    self._inflight_end = job.end
            first = False
            if job is _AGAIN:
                continue
            if job is None:
                break
            assert isinstance(job, _Job)
            t0 = self._clock()
            try:
                if job.prefix:
                    segments = self.engine.transcribe(job.audio, job.prompt, self.config.language, job.prefix)
                else:
                    segments = self.engine.transcribe(job.audio, job.prompt, self.config.language)
            except BaseException:
                with self._lock:
                    self._inflight_end = None
                self._carry = upd
                raise
            dt = self._clock() - t0
            upd.compute_s += dt
            with self._lock:
                # Cleared in the same critical section as the results land, so feed() never
                # sees the pass as neither in flight nor applied.
                self._inflight_end = None
                self.stats.passes += 1
                self.stats.engine_s += dt
                self._adapt_interval(dt)
                self._apply(job, list(segments), upd)
            break
        with self._lock:
            self._extend_cleared()
            oldest = self._runs[0].start if self._runs else self._cleared
            self.vad.forget_before(min(self._cleared, oldest) - 1.0)
            upd.provisional = self._agree.tail
            upd.cleared_until = self._cleared
            upd.lag_s = max(0.0, self._recv_end - self._unprocessed_from())
        return upd

    # All methods below run with self._lock held.

    def _plan(self, upd: TranscriptUpdate, first: bool) -> _Job | object | None:
        if not self._runs:
            return None
        if not self._finishing:
            self._maybe_skip()
        run0 = self._runs[0]
        nxt = self._runs[1] if len(self._runs) > 1 else None
        if nxt is not None and nxt.after_skip:
            upd.confirmed.extend(self._confirm(self._agree.finalize()))
            self._close_run(upd, judged_end=float("-inf"))
            return _AGAIN
        b0, b1 = run0.start, run0.end
        # Speech not yet finished as an utterance; the context kept from the one before
        # (config.context_s) is judged already.
        speech = run0.n > 0 and self.vad.has_speech(max(b0, self._final_done_until), b1)
        tail = self._agree.tail
        if nxt is not None or self._finishing:
            # The run is complete (a long gap follows, or the call ended).
            if speech and self._last_pass_end < b1 - _EPS:
                return self._job("close", run0, b1)
            upd.confirmed.extend(self._confirm(self._agree.finalize()))
            self._close_run(upd, judged_end=b1)
            return _AGAIN
        if not speech and not tail:
            self._silence(run0)
            return None
        ends = self.vad.closed_ends(max(self._final_done_until, b0), b1)
        if ends:
            e = max(ends)
            if self._last_pass_end >= e - _EPS:
                self._finish_utterance(e, upd)
                return _AGAIN
            return self._job("final", run0, e)
        due = self._recv_end - self._processed_until >= self._interval - _EPS and self._recv_end >= self._due_at - _EPS
        if b1 > self._last_pass_end + _EPS and (first or due):
            if not self.vad.has_speech(max(b0, self._last_pass_end), b1):
                # Only silence since the last pass: it cannot change a word; the
                # utterance's final pass comes when the VAD closes the region.
                self._due_at = self._recv_end + self.config.chunk_s
                return None
            if self._recv_end - self._processed_until > CONTEXT_MAX_BACKLOG_SHARE * self.config.max_lag_s:
                # Behind (more calls than the machine keeps up with): the context is the
                # part of a pass that can go.
                self._drop_context(run0)
                b0 = run0.start
            if b1 - b0 < self.config.min_pass_audio_s - _EPS:
                self._due_at = b0 + self.config.min_pass_audio_s
                return None
            return self._job("pass", run0, b1)
        return None

    def _adapt_interval(self, dt: float) -> None:
        """Next interval: about one pass's cost (smoothed), within chunk_s..pass_interval_max_s."""
        cfg = self.config
        target = min(cfg.pass_interval_max_s, max(cfg.chunk_s, dt))
        self._interval = 0.7 * self._interval + 0.3 * target

    def _job(self, kind: str, run: _Run, end: float) -> _Job:
        audio = run.audio()[: run.index(end)].copy()
        prefix = ""
        # Context kept from the utterance before goes in as forced text, so Whisper hears
        # it but cannot transcribe it again differently.
        if self._use_prefix or (self._can_prefix and run.start < self._final_done_until - _EPS):
            prefix = " ".join(w.text for w in self._agree.confirmed_in_buffer() if w.start >= run.start - _EPS)
        return _Job(kind, run.start, run.start + len(audio) / SAMPLE_RATE, audio, self._prompt(run.start), prefix)

    def _apply(self, job: _Job, segments: list[EngineSegment], upd: TranscriptUpdate) -> None:
        words, cuts, lost_from = self._words(segments, job)
        if lost_from < job.end:
            # Where the guard found the decoder inventing, the hypothesis before this one
            # still stands: an empty or cut-short pass must not unsay the words a good
            # pass heard there (an utterance's final pass would then confirm nothing).
            words = [w for w in words if w.start < lost_from] + [w for w in self._agree.tail if w.start >= lost_from]
        upd.confirmed.extend(self._confirm(self._agree.insert(words)))
        if self.config.confirm_after_s > 0:
            aged = self._agree.finalize_ended(job.end - self.config.confirm_after_s)
            self.stats.aged_confirms += len(aged)
            upd.confirmed.extend(self._confirm(aged))
        self._last_pass_end = max(self._last_pass_end, job.end)
        self._processed_until = max(self._processed_until, job.end)
        if job.kind == "pass":
            self._due_at = job.end + self._interval
            self._trim(job, cuts, upd)
        elif job.kind == "final":
            self.stats.final_passes += 1
            self._finish_utterance(job.end, upd)
        else:
            self.stats.final_passes += 1
            upd.confirmed.extend(self._confirm(self._agree.finalize()))
            if self._runs and abs(self._runs[0].start - job.start) < _EPS:
                self._close_run(upd, judged_end=job.end)

    def _words(self, segments: list[EngineSegment], job: _Job) -> tuple[list[Word], list[float], float]:
        """Engine output -> guarded words in media time, the buffer cut points that
        Whisper's segment ends offer, and the media time from which the guard found the
        decoder inventing (job.end when it did not)."""
        dur = job.end - job.start

        def has_speech(s: float, e: float) -> bool:
            return self.vad.has_speech(job.start + s, job.start + max(e, s + _EPS))

        kept, dropped = self.guard.filter(segments, has_speech)
        lost_from = job.end
        for d in dropped:
            self.stats.dropped[d.reason] += 1
            log.debug("dropped segment %r (%s)", d.segment.text, d.reason)
            if d.reason in INVENTED:
                lost_from = min(lost_from, job.start + max(0.0, span(d.segment)[0]))
        words: list[Word] = []
        seg_words: list[list[Word]] = []
        seg_ends: list[float] = []
        for seg in kept:
            mine: list[Word] = []
            for w in seg.words:
                text = w.text.strip()
                if not normalise(text):
                    # Punctuation is dropped. Kept on the word before it (so the prompt
                    # has sentence ends), a pass decoded more tokens: on two espeak-ng
                    # Korean calls per machine, 17 % more per pass and twice the audio
                    # played undecided (bench/stt_lag.py --driver simulated --calls 2).
                    continue
                s = min(max(w.start, 0.0), dur)
                e = min(max(w.end, s), dur)
                mine.append(Word(text, job.start + s, job.start + e, False, w.probability))
            if mine:
                words.extend(mine)
                seg_words.append(mine)
                seg_ends.append(job.start + min(max(seg.end, 0.0), dur))
        words.sort(key=lambda w: w.start)
        cuts = []
        for i, mine in enumerate(seg_words):
            last_end = max(w.end for w in mine)
            nxt_start = seg_words[i + 1][0].start if i + 1 < len(seg_words) else job.end
            cuts.append(max(last_end, min(seg_ends[i], nxt_start)))
        return words, cuts, lost_from

    def _trim(self, job: _Job, cuts: list[float], upd: TranscriptUpdate) -> None:
        run0 = self._runs[0]
        # The utterance before, kept as context (config.context_s), has done its work
        # once a word of this one is confirmed; passes stop paying for it.
        if self._agree.committed_end > self._final_done_until + _EPS:
            self._drop_context(run0)
        if self._use_prefix:
            self._trim_at_confirmed(run0)
        half = self.config.buffer_max_s / 2
        done = self._agree.committed_end
        tail = self._agree.tail
        limit = tail[0].start if tail else float("inf")
        if job.end - run0.start > half:
            ok = [c for c in cuts if c <= done + _EPS and c <= limit + _EPS and c > run0.start + _EPS]
            if ok:
                self._cut(max(ok))
        if job.end - run0.start > self.config.buffer_max_s:
            if done > run0.start + _EPS:
                self._cut(min(done, limit))
        if job.end - run0.start > self.config.buffer_max_s:
            # Nothing confirmed to cut at: confirm the older half as it stands.
            target = job.end - half
            upd.confirmed.extend(self._confirm(self._agree.finalize(before=target)))
            cut = max(target, self._agree.committed_end)
            tail = self._agree.tail
            if tail:
                cut = min(cut, tail[0].start)
            self._cut(cut)
            self._set_cleared(min(cut, job.end))
            self.stats.forced_cuts += 1

    def _trim_at_confirmed(self, run0: _Run) -> None:
        """Cut before the last confirmed word still buffered: it stays as the prefix (and
        acoustic context for the next word), everything confirmed before it leaves."""
        done = [w for w in self._agree.confirmed_in_buffer() if w.start >= run0.start - _EPS]
        if len(done) < 2:
            return
        last, prev = done[-1], done[-2]
        cut = max(prev.end, last.start - 0.1)
        tail = self._agree.tail
        if tail:
            cut = min(cut, tail[0].start)
        if cut > run0.start + 0.2:
            self._cut(cut)

    def _cut(self, t: float) -> None:
        run0 = self._runs[0]
        run0.cut(t)
        self._agree.forget_before(run0.start)

    def _finish_utterance(self, e: float, upd: TranscriptUpdate) -> None:
        """Everything before e has been heard in full: confirm it, cut the buffer there."""
        upd.confirmed.extend(self._confirm(self._agree.finalize(before=e)))
        cut = max(e, self._agree.committed_end)
        tail = self._agree.tail
        if tail:
            cut = min(cut, tail[0].start)
        self._set_cleared(cut)
        self._cut(self._context_start(self._runs[0], cut))
        self._final_done_until = max(self._final_done_until, e)
        self._processed_until = max(self._processed_until, min(e, self._recv_end))

    def _close_run(self, upd: TranscriptUpdate, judged_end: float) -> None:
        """Retire runs[0], whose words are all confirmed; judged_end: how far its audio was
        judged (its end after a final pass; -inf when it is being abandoned for a skip)."""
        run0 = self._runs.pop(0)
        judged = max(self._cleared, self._agree.committed_end, judged_end)
        if not self._runs:
            target = max(judged, run0.end)
        else:
            nxt = self._runs[0]
            target = nxt.start
            if nxt.after_skip:
                for a, b in self._speech_spans(judged, target):
                    upd.skipped.append((a, b))
                    self.stats.skips += 1
                    self.stats.skipped_s += b - a
                    log.info("skipped %.2f..%.2f s unheard (lag)", a, b)
                nxt.after_skip = False
        self._set_cleared(target)
        self._agree.forget_before(target)
        self._processed_until = max(self._processed_until, target)
        self._last_pass_end = max(self._last_pass_end, target)
        self._final_done_until = max(self._final_done_until, target)

    def _speech_spans(self, t0: float, t1: float) -> list[tuple[float, float]]:
        """The parts of [t0, t1] the VAD did not decide were silence (merged spans)."""
        spans: list[tuple[float, float]] = []
        for r in self.vad.overlapping(t0, t1):
            a = max(t0, r.start)
            b = min(t1, r.end if r.closed else t1)
            if b - a <= _EPS:
                continue
            if spans and a <= spans[-1][1] + _EPS:
                spans[-1] = (spans[-1][0], max(spans[-1][1], b))
            else:
                spans.append((a, b))
        undecided = max(t0, self.vad.decided_until)
        if undecided < t1 - _EPS:  # not yet classified (cannot happen after feed(); be safe)
            if spans and undecided <= spans[-1][1] + _EPS:
                spans[-1] = (spans[-1][0], t1)
            else:
                spans.append((undecided, t1))
        return spans

    def _silence(self, run0: _Run) -> None:
        """No speech in the buffer since the last utterance and nothing provisional: drop
        the silence (keeping the VAD's pre-roll, which a starting word may still claim,
        and the context kept from the utterance before) and clear through it."""
        decided = max(run0.start, min(run0.end, self.vad.decided_until))
        self._cut(self._context_start(run0, decided))
        self._set_cleared(decided)
        self._processed_until = max(self._processed_until, run0.end)
        self._final_done_until = max(self._final_done_until, decided)
        self.stats.silent_steps += 1

    def _drop_context(self, run0: _Run) -> None:
        """Cut the buffer to the current utterance: away with the context kept before it."""
        if run0.start < self._final_done_until - _EPS:
            self._cut(self._final_done_until)

    def _context_start(self, run0: _Run, t: float) -> float:
        """Where to cut a buffer that is done up to t: at t, or before the confirmed words
        that start within context_s of it, which the next utterance's passes then hear
        again with their text forced. Only words Whisper was sure of: forced, a misreading
        (as of espeak-ng Korean, mean word probability 0.19 against 0.77 for English) is
        what the next utterance then repeats, and the decode loops on it."""
        if not self._can_prefix:
            return t  # heard again but not forced, the context came back transcribed anew, worse
        since = t - self.config.context_s
        words = [w for w in self._agree.confirmed_in_buffer() if since - _EPS <= w.start < t]
        if not words or float(np.mean([w.probability for w in words])) < CONTEXT_MIN_PROBABILITY:
            return t
        return max(run0.start, min(t, words[0].start - CONTEXT_LEAD_S))

    def _unprocessed_from(self) -> float:
        """Start of the audio no pass has covered or is covering (after a skip: the
        skipped-to point)."""
        t = max(self._processed_until, self._inflight_end or float("-inf"))
        for r in self._runs[1:]:
            if r.after_skip:
                t = max(t, r.start)
        return t

    def _maybe_skip(self) -> None:
        start = self._unprocessed_from()
        if self._recv_end - start <= self.config.max_lag_s + _EPS:
            return
        if not self._agree.tail and not self.vad.has_speech(start, self._recv_end):
            return  # only silence is waiting: the silence path clears it without a pass
        self._split_for_skip(self._recv_end - self.keep_after_skip_s)

    def _split_for_skip(self, skip_to: float) -> None:
        """Drop unprocessed audio before skip_to: runs[0] keeps what passes have covered
        (to be closed without another pass), the audio from skip_to on becomes a new run
        marked after_skip, and everything between is gone."""
        keep_end = max(self._processed_until, self._inflight_end or float("-inf"))
        if skip_to <= self._unprocessed_from() + _EPS:
            return
        head = self._runs[0].upto(max(keep_end, self._runs[0].start))
        pieces = [r.since(max(r.start, skip_to)) for r in self._runs if r.end > skip_to + _EPS]
        if not pieces:
            return
        pieces[0].after_skip = True
        self._runs = [head] + pieces

    def _confirm(self, words: list[Word]) -> list[Word]:
        self._history.extend(words)
        return words

    def _prompt(self, buffer_start: float) -> str:
        """Confirmed text whose audio has left the buffer, at most prompt_chars characters
        (whole words). Text still in the buffer is left out: Whisper would hear it again
        and might skip it as already said."""
        budget = self.config.prompt_chars
        out: list[str] = []
        used = 0
        for w in reversed(self._history):
            if w.end > buffer_start + _EPS:
                continue
            extra = len(w.text) + (1 if out else 0)
            if used + extra > budget:
                break
            out.append(w.text)
            used += extra
        if not out and not self._history:
            return self.config.initial_prompt[:budget]  # a call's first passes: domain words
        return " ".join(reversed(out))

    def _set_cleared(self, t: float) -> None:
        if t > self._cleared:
            self._cleared = t

    def _extend_cleared(self) -> None:
        """Confirmed words clear their audio; silence the VAD has decided clears itself,
        up to the first provisional word."""
        w = max(self._cleared, self._agree.committed_end)
        tail = self._agree.tail
        limit = tail[0].start if tail else float("inf")
        w = max(w, min(self.vad.silent_until(w), limit))
        self._set_cleared(w)
