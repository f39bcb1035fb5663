"""Per-call event fan-out to WebSocket subscribers, each behind a bounded queue."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Event = dict[str, Any]


@dataclass(eq=False)
class Subscription:
    staff: bool
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(maxsize=32))
    # Set when a must-deliver event found the queue full: the client is hopelessly behind
    # and is disconnected; on reconnect it gets the current state first.
    overflowed: bool = False


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        # Called with every event, subscribers or not (the call log).
        self.observers: list[Callable[[Event], None]] = []

    def subscribe(self, staff: bool) -> Subscription:
        sub = Subscription(staff)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    def publish(self, event: Event, staff_only: bool = False, droppable: bool = False) -> None:
        for observer in self.observers:
            observer(event)
        for sub in list(self._subs):
            if staff_only and not sub.staff:
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                if not droppable:
                    sub.overflowed = True
                    self._close(sub)

    def close(self) -> None:
        for sub in list(self._subs):
            self._close(sub)

    def _close(self, sub: Subscription) -> None:
        self._subs.discard(sub)
        # Make room for the end marker so the reader always wakes up.
        while sub.queue.full():
            sub.queue.get_nowait()
        sub.queue.put_nowait(None)

    def __len__(self) -> int:
        return len(self._subs)
