from moderation.hits import Hit
from moderation.policy import PolicyConfig
from moderation.speech import TranscriptUpdate, Word
from relay.calls.events import EventBus
from relay.calls.moderation import CallModeration
from relay.config import DelayConfig
from relay.media.delay_line import DelayLine
from relay.media.watermark import ClearAll


async def planted_check(texts: list[str]) -> list[Hit]:
    """Test double for the server's checks: an insult hit on the word 멍청이."""
    return [
        Hit((i,), "keyword", "insult", 1.0, 1.0, "멍청이", "test-lists") for i, t in enumerate(texts) if t == "멍청이"
    ]


async def failing_check(texts: list[str]) -> list[Hit]:
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
