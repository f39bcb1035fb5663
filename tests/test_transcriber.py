"""StreamingTranscriber with a scripted engine: agreement, trimming, prompt, silence,
guard, watermark and skip-ahead, all in call media time. No models."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

from moderation.speech import SAMPLE_RATE, EngineSegment, TranscriptUpdate, Word
from moderation.stt_config import SttConfig
from moderation.transcriber import StreamingTranscriber
from tests.stt_doubles import ScriptedEngine, render, vocab

SR = SAMPLE_RATE
FRAME = 320  # 20 ms, what the relay feeds after resampling


@dataclass
class Trace:
    updates: list[tuple[float, TranscriptUpdate]] = field(default_factory=list)  # (received until, update)
    buffer_starts: list[float] = field(default_factory=list)
    calls: list[int] = field(default_factory=list)  # engine calls made by then

    @property
    def confirmed(self) -> list[Word]:
        return [w for _, u in self.updates for w in u.confirmed]

    @property
    def skipped(self) -> list[tuple[float, float]]:
        return [s for _, u in self.updates for s in u.skipped]


class Feeder:
    """Feeds audio frame by frame (media time `t0` + offset); steps when pending."""

    def __init__(
        self,
        tr: StreamingTranscriber,
        audio: np.ndarray,
        t0: float = 0.0,
        drop: set[int] | None = None,
        engine: ScriptedEngine | None = None,
    ) -> None:
        self.tr, self.audio, self.t0, self.engine = tr, audio, t0, engine
        self.drop = drop or set()  # frame numbers lost in transit
        self.i = 0
        self.trace = Trace()

    @property
    def done(self) -> bool:
        return self.i >= len(self.audio)

    def feed_seconds(self, seconds: float) -> None:
        end = min(len(self.audio), self.i + int(round(seconds * SR)))
        while self.i < end:
            self.feed_one()

    def feed_one(self) -> None:
        if self.i // FRAME not in self.drop:
            self.tr.feed(self.audio[self.i : self.i + FRAME], self.t0 + self.i / SR)
        self.i += FRAME

    def run(self, finish: bool = True) -> Trace:
        while not self.done:
            self.feed_one()
            if self.tr.pending():
                self.step()
        if finish:
            self.trace.updates.append((self.tr.received_until, self.tr.finish()))
        return self.trace

    def step(self) -> None:
        u = self.tr.step()
        self.trace.updates.append((self.tr.received_until, u))
        self.trace.buffer_starts.append(self.tr.buffer_start)
        self.trace.calls.append(len(self.engine.calls) if self.engine else 0)


def check_watermark(trace: Trace, overlap: float = 0.1) -> None:
    """cleared_until is monotonic, never ahead of the audio received, never past a
    provisional word, and no word confirmed later starts before an earlier watermark."""
    prev = float("-inf")
    for i, (received, u) in enumerate(trace.updates):
        assert u.cleared_until >= prev
        prev = u.cleared_until
        assert u.cleared_until <= received + 1e-6
        for p in u.provisional:
            assert p.start >= u.cleared_until - overlap, (p, u.cleared_until)
        for _, later in trace.updates[i + 1 :]:
            for w in later.confirmed:
                assert w.start >= u.cleared_until - overlap, (w, u.cleared_until)


def texts(words: list[Word]) -> list[str]:
    return [w.text for w in words]


VOC = vocab("안녕하세요", "상담원", "입니다", "무엇을", "도와", "드릴까요", "네", "잠시만요", "음")


def test_words_are_confirmed_once_in_order_in_media_time() -> None:
    script = [
        ("안녕하세요", 0.5, 0.9),
        ("상담원", 1.0, 1.4),
        ("입니다", 1.5, 1.9),
        ("무엇을", 3.0, 3.3),
        ("도와", 3.4, 3.7),
        ("드릴까요", 3.8, 4.3),
    ]
    engine = ScriptedEngine(VOC)
    tr = StreamingTranscriber(engine, SttConfig())
    trace = Feeder(tr, render(script, 5.5, VOC), t0=100.0).run()
    got = trace.confirmed
    assert texts(got) == [w for w, _, _ in script]
    for w, (_, s, e) in zip(got, script):
        assert w.confirmed
        assert w.start == pytest.approx(100.0 + s, abs=0.03)
        assert w.end == pytest.approx(100.0 + e, abs=0.03)
    assert all(engine_call.language == "ko" for engine_call in engine.calls)
    # Half-heard words ("입니다~") were answered but never confirmed.
    assert any(t.endswith("~") for c in engine.calls for t in c.texts)
    check_watermark(trace)
    assert trace.updates[-1][1].cleared_until == pytest.approx(105.5)
    assert trace.updates[-1][1].provisional == []


def test_revised_word_waits_until_two_passes_agree() -> None:
    # 상담원 is heard as 상담, then 상단, before settling; words 0.1 s apart keep it one
    # utterance, so no end-of-utterance pass confirms anything early.
    script = [
        ("안녕하세요", 0.3, 0.7),
        ("상담원", 0.8, 1.2),
        ("입니다", 1.3, 1.7),
        ("무엇을", 1.8, 2.2),
        ("도와", 2.3, 2.7),
        ("드릴까요", 2.8, 3.2),
        ("네", 3.3, 3.7),
    ]
    engine = ScriptedEngine(VOC, revisions={"상담원": ["상담", "상단", "상담원"]})
    tr = StreamingTranscriber(engine, SttConfig(confirm_after_s=0))
    feeder = Feeder(tr, render(script, 4.5, VOC), engine=engine)
    trace = feeder.run()
    got = texts(trace.confirmed)
    assert got == [w for w, _, _ in script]
    assert "상담" not in got and "상단" not in got
    heard = [c.texts for c in engine.calls]
    assert any("상담" in h for h in heard) and any("상단" in h for h in heard)
    # The update that confirms it is the one whose pass heard 상담원 for the second time.
    k = next(i for i, (_, u) in enumerate(trace.updates) if "상담원" in texts(u.confirmed))
    calls_so_far = heard[: trace.calls[k]]
    assert sum("상담원" in h for h in calls_so_far) == 2
    assert "상담원" in heard[trace.calls[k] - 1]
    assert any("상담원" in texts(u.provisional) for _, u in trace.updates[:k])
    check_watermark(trace)


def test_word_before_a_pause_is_confirmed_when_the_utterance_ends() -> None:
    script = [("네", 0.5, 0.9)]
    engine = ScriptedEngine(VOC)
    tr = StreamingTranscriber(engine, SttConfig(), hangover_s=0.3)
    trace = Feeder(tr, render(script, 3.0, VOC)).run(finish=False)
    when = [received for received, u in trace.updates if texts(u.confirmed) == ["네"]]
    assert len(when) == 1
    # Speech end 0.9 + webrtcvad's own tail (~0.1) + hangover 0.3, then one pass.
    assert when[0] <= 0.9 + 0.15 + 0.3 + 0.05
    last = trace.updates[-1][1]
    assert last.cleared_until >= 3.0 - 0.2 - 0.5  # through the silence, without finish()
    assert last.provisional == []
    check_watermark(trace)


def test_pure_silence_never_reaches_the_engine_and_the_watermark_moves_through_it() -> None:
    engine = ScriptedEngine(VOC, on_silence="시청해주셔서 감사합니다")
    tr = StreamingTranscriber(engine, SttConfig())
    hiss = (np.random.default_rng(5).standard_normal(4 * SR) * 0.0005).astype(np.float32)
    trace = Feeder(tr, hiss, t0=20.0).run(finish=False)
    assert engine.calls == []
    marks = [u.cleared_until for _, u in trace.updates]
    assert len(marks) >= 6
    assert all(b > a for a, b in zip(marks, marks[1:]))  # it moves at every step
    assert marks[-1] >= 24.0 - 0.2 - 0.05  # all but the VAD's pre-roll
    assert all(u.lag_s <= 0.5 + 1e-6 for _, u in trace.updates)
    assert tr.stats.silent_steps == len(trace.updates)


def test_silence_between_utterances_is_not_sent_to_the_engine() -> None:
    script = [("네", 0.5, 0.9), ("잠시만요", 6.0, 6.5)]
    engine = ScriptedEngine(VOC)
    tr = StreamingTranscriber(engine, SttConfig())
    trace = Feeder(tr, render(script, 7.5, VOC)).run()
    assert texts(trace.confirmed) == ["네", "잠시만요"]
    assert max(c.duration for c in engine.calls) < 2.5  # never the 5 s of silence
    assert len(engine.calls) <= 8
    check_watermark(trace)


def phrases(
    n_phrases: int, words_per: int, t0: float = 0.3, word_s: float = 0.3, gap_s: float = 0.1, pause_s: float = 0.35
) -> list[tuple[str, float, float]]:
    names = ["안녕하세요", "상담원", "입니다", "무엇을", "도와", "드릴까요", "네", "잠시만요"]
    out, t, k = [], t0, 0
    for _ in range(n_phrases):
        for _ in range(words_per):
            out.append((names[k % len(names)], t, t + word_s))
            t += word_s + gap_s
            k += 1
        t += pause_s - gap_s
    return out


def test_buffer_is_trimmed_at_confirmed_segment_ends_without_splitting_words() -> None:
    # Phrases separated by 0.35 s: a new Whisper segment each, but one VAD utterance
    # (hangover 0.6 s), so only trimming keeps the buffer short.
    script = phrases(6, 4)
    cfg = SttConfig(buffer_max_s=4.0)
    engine = ScriptedEngine(VOC, segment_gap_s=0.25)
    tr = StreamingTranscriber(engine, cfg, hangover_s=0.6)
    feeder = Feeder(tr, render(script, script[-1][2] + 1.5, VOC))
    trace = feeder.run()
    assert texts(trace.confirmed) == [w for w, _, _ in script]
    for w, (_, s, e) in zip(trace.confirmed, script):
        assert w.start == pytest.approx(s, abs=0.03) and w.end == pytest.approx(e, abs=0.03)
    durations = [c.duration for c in engine.calls]
    assert max(durations) <= cfg.buffer_max_s / 2 + 1.6  # trimmed at segment ends early
    assert tr.stats.forced_cuts == 0
    # The buffer moved on while the speech went on, and never cut through a word.
    speaking = [b for b in trace.buffer_starts if b < script[-1][1]]
    assert max(speaking) > 5.0
    for b in trace.buffer_starts:
        for _, s, e in script:
            assert not (s + 0.02 < b < e - 0.02), (b, s, e)
    check_watermark(trace)


def test_hard_cut_at_the_last_confirmed_word_when_no_segment_end_is_confirmed() -> None:
    script = phrases(1, 24)  # one long segment: 24 words, 0.1 s apart, ~9.6 s
    cfg = SttConfig(buffer_max_s=3.0)
    engine = ScriptedEngine(VOC, segment_gap_s=10.0)
    tr = StreamingTranscriber(engine, cfg)
    trace = Feeder(tr, render(script, script[-1][2] + 1.0, VOC)).run()
    assert texts(trace.confirmed) == [w for w, _, _ in script]
    assert max(c.duration for c in engine.calls) <= cfg.buffer_max_s + cfg.chunk_s + 0.05
    assert tr.stats.forced_cuts == 0
    for b in trace.buffer_starts:
        for _, s, e in script:
            assert not (s + 0.02 < b < e - 0.02), (b, s, e)
    check_watermark(trace)


def test_forced_cut_when_hypotheses_never_agree() -> None:
    script = phrases(1, 16)
    names = {w for w, _, _ in script}
    # Every sighting of every word reads differently: LocalAgreement never confirms.
    engine = ScriptedEngine(VOC, revisions={w: [f"{w}{k}" for k in range(200)] for w in names})
    cfg = SttConfig(buffer_max_s=3.0, confirm_after_s=0)
    tr = StreamingTranscriber(engine, cfg)
    trace = Feeder(tr, render(script, script[-1][2] + 1.0, VOC)).run()
    assert tr.stats.forced_cuts >= 1
    assert max(c.duration for c in engine.calls) <= cfg.buffer_max_s + cfg.chunk_s + 0.05
    got = trace.confirmed
    assert len(got) == len(script)  # every word confirmed once, as last heard
    assert all(w.text.rstrip("0123456789") == s[0] for w, s in zip(got, script))
    check_watermark(trace)


def test_prompt_is_the_recent_confirmed_text_that_left_the_buffer() -> None:
    script = phrases(6, 4)
    cfg = SttConfig(buffer_max_s=4.0, prompt_chars=12)
    seen: list[tuple[float, list[Word]]] = []
    holder: dict[str, object] = {}

    def during(_dur: float) -> None:
        tr_ = holder["tr"]
        trace_ = holder["trace"]
        seen.append((tr_.buffer_start, list(trace_.confirmed)))

    engine = ScriptedEngine(VOC, during=during)
    tr = StreamingTranscriber(engine, cfg, hangover_s=0.6)
    feeder = Feeder(tr, render(script, script[-1][2] + 1.0, VOC))
    holder["tr"], holder["trace"] = tr, feeder.trace
    feeder.run()
    assert len(seen) == len(engine.calls)
    nonempty = 0
    for (buf_start, confirmed), call in zip(seen, engine.calls):
        gone = [w.text for w in confirmed if w.end <= buf_start + 1e-6]
        expect: list[str] = []
        for t in reversed(gone):
            if len(" ".join([t] + expect)) > 12:
                break
            expect.insert(0, t)
        assert call.prompt == " ".join(expect)
        assert len(call.prompt) <= 12
        nonempty += bool(call.prompt)
    assert nonempty >= 3


def test_hallucination_on_silence_is_dropped() -> None:
    script = [("안녕하세요", 0.5, 0.9), ("상담원", 1.0, 1.4)]
    # The engine invents the sign-off over any 0.25 s of trailing silence it is given.
    engine = ScriptedEngine(VOC, on_silence="시청해주셔서 감사합니다", on_silence_min_s=0.25)
    tr = StreamingTranscriber(engine, SttConfig())
    trace = Feeder(tr, render(script, 4.0, VOC)).run()
    assert any("시청해주셔서" in c.texts for c in engine.calls)  # the engine did invent it
    every = [w.text for _, u in trace.updates for w in u.confirmed + u.provisional]
    assert "시청해주셔서" not in every and "감사합니다" not in every
    assert texts(trace.confirmed) == ["안녕하세요", "상담원"]
    assert tr.stats.dropped["blocklist"] >= 1


def test_low_confidence_no_speech_segment_is_dropped() -> None:
    script = [("네", 0.5, 0.8), ("음", 1.6, 1.9), ("잠시만요", 2.7, 3.1)]
    engine = ScriptedEngine(VOC, no_speech={"음": (0.9, -1.6)})
    tr = StreamingTranscriber(engine, SttConfig())
    trace = Feeder(tr, render(script, 4.0, VOC)).run()
    assert any("음" in c.texts for c in engine.calls)
    assert texts(trace.confirmed) == ["네", "잠시만요"]
    assert tr.stats.dropped["no_speech"] >= 1


class LostWayEngine(ScriptedEngine):
    """Test double: from `lost_at` seconds of buffer on, a pass keeps its first word and
    then piles prompt text onto one instant, as real Whisper did on an utterance's final
    pass ("to call you right now i was" at 0.68 s, bench/stt_lag.py --lang en)."""

    def __init__(self, *args, lost_at: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lost_at = lost_at
        self.lost = 0

    def transcribe(self, audio: np.ndarray, prompt: str, language: str) -> list[EngineSegment]:
        segments = super().transcribe(audio, prompt, language)
        words = [w for s in segments for w in s.words]
        if len(audio) / SR < self.lost_at or not words:
            return segments
        self.lost += 1
        t = words[0].end
        piled = [replace(words[0], text=" " + x, start=t, end=t) for x in ("to", "call", "you", "now")]
        kept = [words[0], *piled]
        return [replace(segments[0], words=kept, text="".join(w.text for w in kept))]


def test_a_pass_that_loses_its_way_does_not_unsay_what_the_pass_before_heard() -> None:
    script = [("안녕하세요", 0.3, 0.7), ("상담원", 0.8, 1.2), ("입니다", 1.3, 1.7), ("무엇을", 1.8, 2.2)]
    # The regular pass over 2.5 s hears all four words; the utterance's final pass, when
    # the VAD closes the region (2.52 s), goes astray. Before, it unsaid 무엇을 for good.
    engine = LostWayEngine(VOC, partial="drop", lost_at=2.51)
    tr = StreamingTranscriber(engine, SttConfig(confirm_after_s=0))
    trace = Feeder(tr, render(script, 4.0, VOC), engine=engine).run()
    assert engine.lost >= 1
    assert texts(trace.confirmed) == [w for w, _, _ in script]
    every = [w.text for _, u in trace.updates for w in u.confirmed + u.provisional]
    assert not {"to", "call", "you", "now"} & set(every)
    assert tr.stats.dropped["collapsed"] == engine.lost
    check_watermark(trace)


def test_gaps_in_the_stamps_keep_media_time() -> None:
    # 100 ms lost inside the first word's phrase; then a 6 s hole (no packets at all).
    script = [("안녕하세요", 0.5, 0.9), ("상담원", 1.2, 1.6), ("네", 8.0, 8.4)]
    audio = render(script, 9.5, VOC)
    lost = set(range(int(1.0 / 0.02), int(1.1 / 0.02))) | set(range(int(2.0 / 0.02), int(8.0 / 0.02) - 10))
    engine = ScriptedEngine(VOC)
    tr = StreamingTranscriber(engine, SttConfig(), max_gap_fill_s=2.0)
    trace = Feeder(tr, audio, t0=50.0, drop=lost).run()
    got = trace.confirmed
    assert texts(got) == ["안녕하세요", "상담원", "네"]
    for w, (_, s, _e) in zip(got, script):
        assert w.start == pytest.approx(50.0 + s, abs=0.03)
    assert max(c.duration for c in engine.calls) < 3.0  # the hole never went to the engine
    assert trace.updates[-1][1].cleared_until == pytest.approx(59.5)
    check_watermark(trace)


def test_finish_confirms_the_tail_and_clears_to_the_end() -> None:
    script = [("무엇을", 0.3, 0.7), ("도와", 0.8, 1.2), ("드릴까요", 1.3, 1.8)]
    engine = ScriptedEngine(VOC)
    tr = StreamingTranscriber(engine, SttConfig())
    audio = render(script, 1.85, VOC)  # speech runs to the end: no pause to finish it
    feeder = Feeder(tr, audio)
    trace = feeder.run(finish=False)
    before = texts(trace.confirmed)
    assert before != [w for w, _, _ in script]
    assert trace.updates[-1][1].cleared_until < 1.8
    final = tr.finish()
    assert before + texts(final.confirmed) == [w for w, _, _ in script]
    assert final.provisional == [] and final.cleared_until == pytest.approx(1.85)
    tr.feed(audio[:FRAME], 1.85)  # after finish: ignored
    assert not tr.pending()


def slow_run(
    max_lag_s: float, seconds: float = 20.0, slowness: float = 1.5
) -> tuple[Trace, ScriptedEngine, StreamingTranscriber]:
    """An engine that needs `slowness` x the audio it is given, plus 0.3 s; while it
    "computes", that much new audio arrives (simulated time: no sleeping)."""
    script = phrases(int(seconds / 2.0), 4, pause_s=0.5)
    audio = render(script, seconds, VOC)
    holder: dict[str, Feeder] = {}
    engine = ScriptedEngine(VOC, during=lambda dur: holder["f"].feed_seconds(0.3 + slowness * dur))
    tr = StreamingTranscriber(engine, SttConfig(max_lag_s=max_lag_s, buffer_max_s=15.0))
    holder["f"] = feeder = Feeder(tr, audio)
    return feeder.run(), engine, tr


def test_slow_engine_skips_ahead_and_lag_stays_bounded() -> None:
    trace, engine, tr = slow_run(max_lag_s=1.0)
    lags = [u.lag_s for _, u in trace.updates[:-1]]
    spans = trace.skipped
    assert spans, "a slow engine must skip"
    assert tr.stats.skips == len(spans)
    assert tr.stats.skipped_s == pytest.approx(sum(b - a for a, b in spans))
    for a, b in spans:
        assert b > a
    assert all(b1 <= a2 for (_, b1), (a2, _) in zip(spans, spans[1:]))
    # Lag: the audio that arrives during one pass over at most max_lag + keep + a pass.
    assert max(lags) <= 0.3 + 1.5 * 3.5
    assert max(c.duration for c in engine.calls) <= 3.5
    # The watermark passes a skipped span only in the update that reports it.
    for _received, u in trace.updates:
        for _a, b in u.skipped:
            assert u.cleared_until >= b
    prev = 0.0
    for _, u in trace.updates:
        if u.skipped:
            assert prev <= u.skipped[0][0] + 1e-6
        prev = u.cleared_until
    # Confirmed words still come out in order, none inside a skipped span.
    starts = [w.start for w in trace.confirmed]
    assert starts == sorted(starts)
    for w in trace.confirmed:
        assert not any(a + 0.05 < w.start and w.end < b - 0.05 for a, b in spans)
    check_watermark(trace)


def test_without_skipping_the_same_engine_falls_ever_further_behind() -> None:
    # The control for the test above: with skipping effectively off, lag keeps growing.
    trace, engine, tr = slow_run(max_lag_s=30.0)
    assert trace.skipped == []
    lags = [u.lag_s for _, u in trace.updates[:-1]]
    assert max(lags) > 0.3 + 1.5 * 3.5


def test_skip_ahead_with_a_sleeping_engine_and_real_threads() -> None:
    # The relay's pattern: frames fed on one thread at (2x) real time, step() on a worker,
    # an engine that sleeps 1.5 x the audio it is given.
    script = phrases(2, 4, pause_s=0.5)
    total = script[-1][2] + 0.4
    audio = render(script, total, VOC)
    engine = ScriptedEngine(VOC, delay=lambda dur: 1.5 * dur)
    # min_pass_audio_s lowered so the skip keeps a short clip and the lag bound is tight.
    tr = StreamingTranscriber(engine, SttConfig(max_lag_s=0.5, chunk_s=0.2, min_pass_audio_s=0.25))
    updates: list[TranscriptUpdate] = []
    stop = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            if tr.pending():
                updates.append(tr.step())
            else:
                time.sleep(0.005)

    th = threading.Thread(target=worker)
    th.start()
    try:
        for i in range(0, len(audio), FRAME):
            tr.feed(audio[i : i + FRAME], i / SR)
            time.sleep(0.01)
    finally:
        stop.set()
        th.join()
    final = tr.finish()
    spans = [s for u in updates + [final] for s in u.skipped]
    assert spans and tr.stats.skips == len(spans)
    assert max(u.lag_s for u in updates) < 2.0
    assert final.cleared_until == pytest.approx(total)
    marks = [u.cleared_until for u in updates + [final]]
    assert marks == sorted(marks)
    words = [w for u in updates + [final] for w in u.confirmed]
    assert [w.start for w in words] == sorted(w.start for w in words)


def test_feed_caps_the_backlog_when_step_is_never_called() -> None:
    script = phrases(23, 4, pause_s=0.2)  # speech to the end, ~39 s
    total = script[-1][2] + 0.1
    audio = render(script, total, VOC)
    engine = ScriptedEngine(VOC)
    tr = StreamingTranscriber(engine, SttConfig())
    for i in range(0, len(audio), FRAME):
        tr.feed(audio[i : i + FRAME], i / SR)
    assert total > tr.backlog_cap_s + 5
    assert tr.buffered_s() <= tr.backlog_cap_s + 0.1
    u = tr.step()
    assert u.skipped
    assert u.skipped[0][0] == pytest.approx(0.1, abs=0.05)  # from the first speech (pre-roll)
    assert u.skipped[-1][1] > total - 1.5
    assert u.cleared_until >= u.skipped[-1][1]
    # The pass covers only the newest audio.
    assert len(engine.calls) == 1 and engine.calls[0].duration <= 1.0
    assert tr.stats.skips == len(u.skipped)


def test_a_failing_engine_call_loses_nothing() -> None:
    script = [("안녕하세요", 0.5, 0.9), ("상담원", 1.0, 1.4), ("입니다", 1.5, 1.9), ("네", 3.0, 3.3)]
    engine = ScriptedEngine(VOC, fail_on={2, 3})
    tr = StreamingTranscriber(engine, SttConfig())
    audio = render(script, 4.5, VOC)
    feeder = Feeder(tr, audio)
    failures = 0
    while not feeder.done:
        feeder.feed_one()
        if tr.pending():
            try:
                feeder.step()
            except RuntimeError:
                failures += 1
    feeder.trace.updates.append((tr.received_until, tr.finish()))
    assert failures == 2
    assert texts(feeder.trace.confirmed) == [w for w, _, _ in script]
    check_watermark(feeder.trace)


# --- the issue-11 schedule: prefix mode, aged confirmation, no pass on silence or fragments


def long_utterance(
    n: int, word_s: float = 0.35, gap_s: float = 0.05, start: float = 0.4
) -> list[tuple[str, float, float]]:
    names = list(VOC)
    out, t = [], start
    for k in range(n):
        out.append((names[k % len(names)], t, t + word_s))
        t += word_s + gap_s
    return out


def test_prefix_mode_keeps_the_buffer_short_and_decodes_only_the_tail() -> None:
    from tests.stt_doubles import PrefixEngine

    script = long_utterance(20)  # 8 s without a pause: no utterance end to cut at
    audio = render(script, script[-1][2] + 1.0, VOC)
    engine = PrefixEngine(VOC)
    tr = StreamingTranscriber(engine, SttConfig(confirm_after_s=0, prefix_confirmed=True))
    trace = Feeder(tr, audio, engine=engine).run()
    assert texts(trace.confirmed) == [w for w, _, _ in script]
    # Cut at confirmed words after every pass: no pass re-hears the whole utterance.
    assert max(c.duration for c in engine.calls) < 3.5
    # The last confirmed word stays in the buffer and goes in as the prefix.
    assert any(p for p in engine.prefixes)
    check_watermark(trace)


def test_without_prefix_support_the_buffer_is_re_transcribed() -> None:
    script = long_utterance(20)
    audio = render(script, script[-1][2] + 1.0, VOC)
    engine = ScriptedEngine(VOC)
    tr = StreamingTranscriber(engine, SttConfig(confirm_after_s=0))
    Feeder(tr, audio, engine=engine).run()
    assert max(c.duration for c in engine.calls) > 5.0


def test_aged_provisional_words_are_confirmed_within_confirm_after_s() -> None:
    # Every sighting reads differently: LocalAgreement alone would wait for the utterance end.
    script = long_utterance(16)
    names = {w for w, _, _ in script}
    engine = ScriptedEngine(VOC, revisions={w: [f"{w}{k}" for k in range(200)] for w in names})
    tr = StreamingTranscriber(engine, SttConfig(confirm_after_s=0.6, chunk_s=0.5))
    trace = Feeder(tr, render(script, script[-1][2] + 1.0, VOC), engine=engine).run()
    assert tr.stats.aged_confirms > 5
    # Before the utterance ends, the watermark trails the newest audio by about
    # confirm_after_s + one pass interval, not by the utterance.
    speech_end = script[-1][2]
    lags = [received - u.cleared_until for received, u in trace.updates if received < speech_end]
    assert max(lags[3:]) < 0.6 + 0.5 + 0.5
    check_watermark(trace)


def test_no_regular_pass_on_silence_or_on_a_fragment() -> None:
    script = [("안녕하세요", 0.5, 0.9), ("상담원", 1.0, 1.4)]
    audio = render(script, 4.0, VOC)
    engine = ScriptedEngine(VOC)
    tr = StreamingTranscriber(engine, SttConfig(min_pass_audio_s=1.0))
    feeder = Feeder(tr, audio, engine=engine)
    feeder.feed_seconds(0.7)  # 0.7 s buffered, speech in it
    tr.step()
    assert engine.calls == []  # a fragment: Whisper would hallucinate on it
    assert not tr.pending()
    feeder.run()
    # Passes: regular ones while the words arrive, one final at the utterance end; none
    # over the trailing silence.
    assert all(c.duration <= 2.0 for c in engine.calls)
    assert texts([w for _, u in feeder.trace.updates for w in u.confirmed]) == ["안녕하세요", "상담원"]


def test_pass_interval_grows_with_pass_cost() -> None:
    script = long_utterance(12)
    engine = ScriptedEngine(VOC)
    tr = StreamingTranscriber(
        engine,
        SttConfig(chunk_s=0.5, pass_interval_max_s=1.5),
        clock=iter([x for k in range(1000) for x in (10.0 * k, 10.0 * k + 1.2)]).__next__,
    )
    Feeder(tr, render(script, script[-1][2] + 0.5, VOC), engine=engine).run()
    assert tr._interval > 1.0  # every pass "took" 1.2 s: passes come about that often


def two_utterances(pause_s: float) -> tuple[list[tuple[str, float, float]], float]:
    first = [("안녕하세요", 0.3, 0.7), ("상담원", 0.8, 1.2), ("입니다", 1.3, 1.7)]
    b = 1.7 + pause_s
    second = [("무엇을", b, b + 0.4), ("도와", b + 0.5, b + 0.9), ("드릴까요", b + 1.0, b + 1.4)]
    return first + second, b


def test_the_utterance_before_is_heard_again_as_forced_context_after_a_short_pause() -> None:
    from tests.stt_doubles import PrefixEngine

    script, second_at = two_utterances(pause_s=0.8)
    durations: list[tuple[float, float]] = []  # (buffer start, duration) of each call
    holder: dict[str, StreamingTranscriber] = {}
    engine = PrefixEngine(VOC, during=lambda d: durations.append((holder["tr"].buffer_start, d)))
    tr = StreamingTranscriber(engine, SttConfig(context_s=2.0), hangover_s=0.3)
    holder["tr"] = tr
    trace = Feeder(tr, render(script, script[-1][2] + 1.0, VOC), engine=engine).run()
    assert texts(trace.confirmed) == [w for w, _, _ in script]  # each once: the context is not said again
    heard_with_context = [
        (start, prefix)
        for (start, d), prefix in zip(durations, engine.prefixes)
        if start < 1.7 and start + d > second_at + 0.2
    ]
    assert heard_with_context, "no pass of the second utterance heard the first"
    assert all(prefix.split()[-1] == "입니다" for _, prefix in heard_with_context)
    # Once a word of the second utterance is confirmed, its passes stop paying for the first.
    first_confirmed = next(w.end for w in trace.confirmed if w.text == "무엇을")
    later = [start for (start, d) in durations if start + d > first_confirmed + 0.6]
    assert later and min(later) >= 1.7
    check_watermark(trace)


def test_no_context_after_a_pause_longer_than_context_s() -> None:
    from tests.stt_doubles import PrefixEngine

    script, second_at = two_utterances(pause_s=3.0)
    durations: list[tuple[float, float]] = []
    holder: dict[str, StreamingTranscriber] = {}
    engine = PrefixEngine(VOC, during=lambda d: durations.append((holder["tr"].buffer_start, d)))
    tr = StreamingTranscriber(engine, SttConfig(context_s=2.0), hangover_s=0.3)
    holder["tr"] = tr
    trace = Feeder(tr, render(script, script[-1][2] + 1.0, VOC), engine=engine).run()
    assert texts(trace.confirmed) == [w for w, _, _ in script]
    assert all(start >= 1.7 for start, d in durations if start + d > second_at)
    assert not any(engine.prefixes)


def test_words_whisper_was_unsure_of_are_not_forced_as_context() -> None:
    from tests.stt_doubles import PrefixEngine

    class UnsureEngine(PrefixEngine):
        def transcribe(self, audio: np.ndarray, prompt: str, language: str, prefix: str = "") -> list[EngineSegment]:
            return [
                replace(seg, words=[replace(w, probability=0.2) for w in seg.words])
                for seg in super().transcribe(audio, prompt, language, prefix)
            ]

    script, _ = two_utterances(pause_s=0.8)
    engine = UnsureEngine(VOC)
    tr = StreamingTranscriber(engine, SttConfig(context_s=2.0), hangover_s=0.3)
    trace = Feeder(tr, render(script, script[-1][2] + 1.0, VOC), engine=engine).run()
    assert texts(trace.confirmed) == [w for w, _, _ in script]
    assert not any(engine.prefixes)


def _context_after_backlog(fed_s: float) -> float:
    """Buffer start of the first pass after fed_s more seconds arrive unprocessed in the
    second of two utterances (the first kept as context; its audio since the first
    utterance was finished, 0.4 s before, is waiting too); every word is confirmed once."""
    from tests.stt_doubles import PrefixEngine

    script, second_at = two_utterances(pause_s=0.8)
    starts: list[float] = []
    holder: dict[str, StreamingTranscriber] = {}
    engine = PrefixEngine(VOC, during=lambda _d: starts.append(holder["tr"].buffer_start))
    tr = StreamingTranscriber(engine, SttConfig(context_s=2.0, max_lag_s=2.0), hangover_s=0.3)
    holder["tr"] = tr
    feeder = Feeder(tr, render(script, script[-1][2] + 1.0, VOC), engine=engine)
    while feeder.i < int((second_at - 0.1) * SR):  # in step up to the second utterance
        feeder.feed_one()
        if tr.pending():
            feeder.step()
    assert tr.buffer_start < 1.7  # the first utterance is kept as context
    feeder.feed_seconds(fed_s)
    calls = len(starts)
    feeder.step()
    assert len(starts) > calls
    trace = feeder.run()
    assert texts(trace.confirmed) == [w for w, _, _ in script]
    return starts[calls]


def test_context_is_dropped_when_transcription_falls_halfway_to_a_skip() -> None:
    start = _context_after_backlog(1.2)  # 1.6 s waiting: past max_lag_s / 2
    assert start >= 1.7  # that pass no longer pays for the utterance before


def test_context_is_kept_by_a_machine_that_keeps_up_with_slow_passes() -> None:
    # 0.8 s waiting: a pass every 0.5 s that takes 0.5 s (one base call on 2 cores).
    start = _context_after_backlog(0.4)
    assert start < 1.7
