from collections.abc import Sequence
from pathlib import Path

import numpy as np

from moderation.classifier_config import ClassifierConfig
from moderation.hits import Hit
from moderation.keyword_config import KeywordConfig
from moderation.policy import Changes, PolicyConfig
from moderation.speech import TranscriptUpdate, Word
from moderation.text_model_config import TextModelConfig
from offline.eval_calls import CallSpec, ReferenceTranscriber, TruthWord, simulate_call
from offline.eval_text import load_checks
from offline.replay import judge_transcript
from relay.calls.events import EventBus
from relay.calls.moderation import CallModeration
from relay.calls.text_service import TextChecks
from relay.config import Config, DelayConfig
from relay.media.delay_line import DelayLine
from relay.media.watermark import ClearAll
from relay.records.logged_call import LoggedWord
from tests.context_model import write_context_model


async def planted_check(texts: list[str], context: Sequence[str] = ()) -> list[Hit]:
    """Test double for the server's checks: an insult hit on the word 멍청이."""
    return [
        Hit((i,), "keyword", "insult", 1.0, 1.0, "멍청이", "test-lists") for i, t in enumerate(texts) if t == "멍청이"
    ]


async def failing_check(texts: list[str], context: Sequence[str] = ()) -> list[Hit]:
    raise RuntimeError("classifier went away")


def setup(check=planted_check):  # type: ignore[no-untyped-def]
    line, events = DelayLine(DelayConfig(delay_s=1.5), ClearAll()), EventBus()
    return line, events, events.subscribe(staff=True), CallModeration("c_test", check, PolicyConfig(), line, events)


async def test_hits_become_mute_spans_and_notices_without_the_words() -> None:
    line, _, staff, moderation = setup()
    await moderation.judge(TranscriptUpdate(confirmed=[Word("이", 2.0, 2.2, True), Word("멍청이", 2.3, 2.8, True)]))
    (span,) = line.mutes.spans()
    assert (span.start, span.end) == (2.3 - 0.08, 2.8 + 0.12) and not span.provisional
    assert span.reason == "keyword:insult"
    event = staff.queue.get_nowait()
    assert event["type"] == "mute" and event["reason"] == "keyword:insult" and "멍청이" not in str(event)
    assert moderation.view()["mute_decisions"] == 1


async def test_provisional_span_lifted_from_the_delay_line_when_revised() -> None:
    line, _, staff, moderation = setup()
    await moderation.judge(TranscriptUpdate(provisional=[Word("멍청이", 5.0, 5.4, False)]))
    (span,) = line.mutes.spans()
    assert span.provisional
    await moderation.judge(TranscriptUpdate(provisional=[Word("멍청하게", 5.0, 5.5, False)]))
    assert line.mutes.spans() == []
    events = [staff.queue.get_nowait()["type"] for _ in range(staff.queue.qsize())]
    assert events == ["mute", "unmute"]


async def test_a_failing_check_is_counted_and_the_call_goes_on() -> None:
    line, _, _, moderation = setup(failing_check)
    await moderation.judge(TranscriptUpdate(confirmed=[Word("멍청이", 1.0, 1.4, True)]))
    assert moderation.view()["check_errors"] == 1 and line.mutes.spans() == []


# A call where the harassment is in the context: neither sentence is abusive alone.
CONTEXT_CALL = (
    TruthWord("목소리", 0.5, 0.9, False),
    TruthWord("예쁘네", 1.0, 1.5, False),
    TruthWord("오늘", 3.0, 3.3, False),
    TruthWord("밤에", 3.4, 3.7, False),
    TruthWord("만날래", 3.8, 4.3, True),
    TruthWord("감사합니다", 6.0, 6.6, False),
)


async def test_a_hit_on_context_mutes_the_current_words_live_in_eval_calls_and_in_replay(tmp_path: Path) -> None:
    """The same words through the live path (the server's TextChecks, fed by a test-double
    transcriber releasing known words), eval-calls' simulation and a transcript replay:
    one span, on 만날래 only, in all three."""
    config = Config(
        keywords=KeywordConfig(enabled=False),  # the lists hold 밤에 만날래: the model alone here
        text_model=TextModelConfig(model_dir=str(write_context_model(tmp_path / "model"))),
        classifier=ClassifierConfig(enabled=False),
    )
    checks = TextChecks(config)
    await checks.load()
    line, events = DelayLine(DelayConfig(delay_s=1.5), ClearAll()), EventBus()
    live = CallModeration("c_context", checks.check, PolicyConfig(), line, events)
    updates: list[TranscriptUpdate] = []
    transcriber = ReferenceTranscriber(CONTEXT_CALL, lag_s=0.8)
    transcriber.run_until(10.0, True, lambda _at, update: updates.append(update) or Changes(), lambda *_: None)
    try:
        for update in updates:
            await live.judge(update)
    finally:
        await checks.close()
    ((decision,),) = [live.moderator.decisions]
    assert [w.text for w in decision.words] == ["만날래"] and decision.reason == "text_model:abusive"
    assert [(s.start, s.end) for s in line.mutes.spans()] == [(decision.start, decision.end)]

    offline = load_checks(config, classifier=False)
    simulated = simulate_call(
        CallSpec("c_context", tmp_path / "unused.wav", CONTEXT_CALL),
        np.zeros(8 * 48000, dtype=np.int16),
        ReferenceTranscriber(CONTEXT_CALL, lag_s=0.8),
        offline.as_list(),
        config,
        delay_s=1.5,
    )
    assert [(start, end) for _, start, end, _ in simulated.spans] == [decision.key]
    logged = [LoggedWord(w.start, w.end, w.text, 0.9) for w in CONTEXT_CALL]
    replayed = judge_transcript(logged, offline.as_list(), PolicyConfig())
    assert [(s["word_start"], s["word_end"], s["words"]) for s in replayed.spans] == [(*decision.key, ["만날래"])]
