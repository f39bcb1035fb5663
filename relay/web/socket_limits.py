"""How many event WebSockets may be open at once, per call and per token.

Each socket is a file descriptor and a subscriber on the call's event bus: without a cap
one invite token opened 500 in half a second. A token (session or invite) is counted by
its digest, never kept itself.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from relay.web.accounts import token_digest
from relay.web.errors import ApiError


class SocketLimits:
    def __init__(self, per_call: int, per_token: int) -> None:
        self.per_call = per_call
        self.per_token = per_token
        self._calls: Counter[str] = Counter()
        self._tokens: Counter[bytes] = Counter()

    @contextmanager
    def hold(self, call_id: str, token: str) -> Iterator[None]:
        """One socket for its lifetime; ApiError 429 when a limit is reached."""
        digest = token_digest(token)
        if self._calls[call_id] >= self.per_call:
            raise ApiError(429, "too_many_sockets", f"this call has {self.per_call} event sockets open already")
        if self._tokens[digest] >= self.per_token:
            raise ApiError(429, "too_many_sockets", f"this token has {self.per_token} event sockets open already")
        self._calls[call_id] += 1
        self._tokens[digest] += 1
        try:
            yield
        finally:
            self._calls[call_id] -= 1
            self._tokens[digest] -= 1
            self._calls += Counter()  # drops the keys at zero: the counters stay small
            self._tokens += Counter()

    def open(self, call_id: str | None = None) -> int:
        return self._calls[call_id] if call_id is not None else sum(self._calls.values())
