"""One call's decisions applied: mute spans into the delay line, notices to the counselor.

After each transcription pass the call's moderator picks the words to judge, the text
checks find hits, and the policy's changes land in the delay line as mute spans (or lift
provisional ones) through the span ledger. Only then is the pass's audio "judged": the
watermark moves after this, never before (relay/calls/transcription.py).
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from moderation.call_moderator import CallModerator, PrefixCheck
from moderation.hits import Hit
from moderation.policy import Decision, PolicyConfig
from moderation.span_ledger import SpanLedger
from moderation.speech import TranscriptUpdate
from relay.calls.events import EventBus
from relay.media.delay_line import DelayLine

log = logging.getLogger(__name__)

# The checks the server runs on a window's words, with the words before them as context
# (moderation/call_moderator.py's TextCheck, awaited): hits out.
AsyncTextCheck = Callable[[list[str], Sequence[str]], Awaitable[list[Hit]]]


class CallModeration:
    """The call's span sink: what the ledger adds or lifts reaches the delay line, the
    counselor's page and the call log."""

    def __init__(
        self,
        call_id: str,
        checks: AsyncTextCheck,
        policy: PolicyConfig,
        delay_line: DelayLine,
        events: EventBus,
        mute_skipped: bool = False,
        prefix_check: PrefixCheck | None = None,
    ) -> None:
        self._call_id = call_id
        self._checks = checks
        self._prefix_check = prefix_check
        self._delay_line = delay_line
        self._events = events
        self.moderator = CallModerator(policy, mute_skipped=mute_skipped)
        self._ledger = SpanLedger(self)
        # Seconds from a word's end reaching the server to its span being decided.
        self._decision_lags: list[float] = []
        self.late_s = 0.0
        self.check_errors = 0
        # Sees every span added, with its id and how late it came (the call log).
        self.on_decision: Callable[[Decision, int, float], None] | None = None
        # Sees each decision lag as it is measured (the server's metrics).
        self.on_lag: Callable[[float], None] | None = None

    async def judge(self, update: TranscriptUpdate) -> None:
        for start, end in update.skipped:
            # Never transcribed: played (or muted) as undecided, and counted as such.
            self._delay_line.mark_unjudged(start, end)
        window = self.moderator.window(update)
        hits: list[Hit] = []
        if window:
            try:
                hits = await self._checks([w.text for w in window], self.moderator.context(window))
            except Exception:  # a failing check must not stop the call; the miss is counted
                self.check_errors += 1
                log.exception("call %s: text checks failed", self._call_id)
            hits += self.moderator.tail_hits(window, self._prefix_check)
        self._ledger.apply(self.moderator.decide(window, hits, update.skipped))

    def add_span(self, decision: Decision) -> int:
        span, late_s = self._delay_line.add_mute(
            decision.start, decision.end, provisional=decision.provisional, reason=decision.reason
        )
        if self.on_decision is not None:
            self.on_decision(decision, span.span_id, late_s)
        if decision.words:
            newest = self._delay_line.received_media_s
            lag = max(0.0, newest - decision.words[-1].end)
            self._decision_lags.append(lag)
            if self.on_lag is not None:
                self.on_lag(lag)
        if late_s > 0:
            self.late_s += late_s
            log.warning("call %s: mute %.2f-%.2f decided %.3f s late", self._call_id, span.start, span.end, late_s)
        self._events.publish(
            {
                "type": "mute",
                "span_id": span.span_id,
                "start": span.start,
                "end": span.end,
                "provisional": span.provisional,
                "reason": span.reason,
            },
            staff_only=True,
        )
        return span.span_id

    def lift_span(self, span_id: int) -> bool:
        if not self._delay_line.lift_mute(span_id):
            return False
        self._events.publish({"type": "unmute", "span_id": span_id}, staff_only=True)
        return True

    def view(self) -> dict[str, Any]:
        lags = self._decision_lags
        return {
            "mute_decisions": len(self.moderator.decisions),
            "decision_lag_p50_s": round(statistics.median(lags), 3) if lags else None,
            "decision_lag_max_s": round(max(lags), 3) if lags else None,
            "late_mute_s": round(self.late_s, 3),
            "check_errors": self.check_errors,
        }
