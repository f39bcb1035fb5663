"""Sign-in back-off: failures in a row for an account, or from an address, slow the next try.

The first few failures cost nothing (people mistype); after that every further attempt
must wait, doubling from auth.backoff_base_s up to auth.backoff_max_s, and an attempt
made too early is refused with 429 and Retry-After, without checking the password. The
account's count is by its name key, so an unknown name is throttled like a known one.
An address gets a larger allowance (a call centre signs in from one NAT address) and is
forgotten once it has been quiet for the longest back-off. Lockout, which a supervisor
lifts, is the account's (relay/web/accounts.py); this is the in-memory part, bounded.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from relay.config import AuthConfig

MAX_TRACKED = 10_000


@dataclass
class _Failures:
    count: int
    last: float


class _Tracker:
    def __init__(self, free: int, config: AuthConfig) -> None:
        self._free = free
        self._config = config
        self._entries: OrderedDict[str, _Failures] = OrderedDict()

    def wait_s(self, key: str, now: float) -> float:
        entry = self._entries.get(key)
        if entry is None or entry.count < self._free:
            return 0.0
        if now - entry.last > 2 * self._config.backoff_max_s:
            del self._entries[key]
            return 0.0
        backoff = self._config.backoff_base_s * 2.0 ** min(entry.count - self._free, 32)
        return max(0.0, entry.last + min(backoff, self._config.backoff_max_s) - now)

    def failed(self, key: str, now: float) -> None:
        entry = self._entries.pop(key, None) or _Failures(0, now)
        if now - entry.last > 2 * self._config.backoff_max_s:
            entry.count = 0
        entry.count += 1
        entry.last = now
        self._entries[key] = entry  # newest last: the oldest go first when full
        while len(self._entries) > MAX_TRACKED:
            self._entries.popitem(last=False)

    def clear(self, key: str) -> None:
        self._entries.pop(key, None)


class SignInThrottle:
    def __init__(self, config: AuthConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._accounts = _Tracker(config.account_free_failures, config)
        self._addresses = _Tracker(config.address_free_failures, config)
        self._clock = clock

    def wait_s(self, account: str, address: str) -> float:
        """Seconds before this account may be tried again from this address (0: now)."""
        now = self._clock()
        return max(self._accounts.wait_s(account, now), self._addresses.wait_s(address, now))

    def failed(self, account: str, address: str) -> None:
        now = self._clock()
        self._accounts.failed(account, now)
        self._addresses.failed(address, now)

    def succeeded(self, account: str, address: str) -> None:
        self._accounts.clear(account)
        self._addresses.clear(address)
