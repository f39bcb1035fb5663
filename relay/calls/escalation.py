"""Escalation: count a call's abuse spans; warn the customer after N, reach the limit after M.

Korean carriers' counselor-protection services warn an abusive caller, then end the
call. A span counts once its audio has been played as silence and it was never lifted:
a provisional span revised away before playout was no abuse. It counts once, whatever
fired for it, if any of its sources is one the config names (a counselor's dump or hold
counts as "manual").

The escalation only watches the call's event bus and says when a stage is reached; the
call acts (relay/calls/call.py): the prompt to the customer, the notices, the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from relay.config import EscalationConfig

Stage = Literal["none", "warning", "limit"]


def reason_sources(reason: str) -> set[str]:
    """The sources named in a mute's reason ("keyword:insult,classifier:악플/욕설", "manual")."""
    return {part.split(":", 1)[0] for part in reason.split(",") if part}


@dataclass
class Escalation:
    config: EscalationConfig
    abuse_spans: int = 0
    stage: Stage = "none"

    def __post_init__(self) -> None:
        self._pending: dict[int, float] = {}  # span id -> media end, for counted spans not yet played out

    def observe(self, event: dict[str, Any]) -> None:
        """An event from the call's bus."""
        kind = event.get("type")
        if kind == "mute" and reason_sources(str(event.get("reason", ""))) & set(self.config.sources):
            self._pending[int(event["span_id"])] = float(event["end"])
        elif kind == "unmute":
            self._pending.pop(int(event["span_id"]), None)

    def tick(self, played_s: float) -> list[Stage]:
        """Count the spans whose audio has played out by media time `played_s`; the stages
        reached by this tick, in order."""
        done = [span_id for span_id, end in self._pending.items() if end <= played_s]
        for span_id in done:
            del self._pending[span_id]
        self.abuse_spans += len(done)
        reached: list[Stage] = []
        warn, limit = self.config.warn_after, self.config.end_after
        if self.stage == "none" and warn and self.abuse_spans >= warn:
            self.stage = "warning"
            reached.append("warning")
        if self.stage != "limit" and limit and self.abuse_spans >= limit:
            self.stage = "limit"
            reached.append("limit")
        return reached

    def view(self) -> dict[str, Any]:
        return {"abuse_spans": self.abuse_spans, "stage": self.stage}
