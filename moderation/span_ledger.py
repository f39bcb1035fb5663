"""The mute spans a call has in force, kept under each decision's key as the policy adds
and lifts them.

The policy speaks in decisions (moderation/policy.py Changes: add these, lift those); a
mute sink speaks in span ids (the live delay line, the offline simulation's delay line,
a replay's list). The ledger is the one place that maps the first onto the second, so the
live call, eval-calls and replay apply a pass's changes exactly alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from moderation.policy import Changes, Decision


class SpanSink(Protocol):
    def add_span(self, decision: Decision) -> int:
        """Mute the decision's span; returns its id."""
        ...

    def lift_span(self, span_id: int) -> bool:
        """Lift a span; False where it was gone already (played out and forgotten)."""
        ...


@dataclass
class Applied:
    added: list[tuple[int, Decision]] = field(default_factory=list)
    lifted: list[tuple[int, Decision]] = field(default_factory=list)


class SpanLedger:
    def __init__(self, sink: SpanSink) -> None:
        self._sink = sink
        self._active: dict[tuple[float, float], tuple[int, Decision]] = {}
        self.lifted = 0

    def apply(self, changes: Changes) -> Applied:
        applied = Applied()
        for decision in changes.lift:
            entry = self._active.pop(decision.key, None)
            if entry is not None and self._sink.lift_span(entry[0]):
                self.lifted += 1
                applied.lifted.append(entry)
        for decision in changes.add:
            span_id = self._sink.add_span(decision)
            self._active[decision.key] = (span_id, decision)
            applied.added.append((span_id, decision))
        return applied

    def active(self) -> list[tuple[int, Decision]]:
        """The spans in force, by start."""
        return sorted(self._active.values(), key=lambda e: (e[1].start, e[0]))
