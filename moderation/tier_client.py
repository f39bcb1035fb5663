"""Plain HTTP to the shared inference tier (moderation/stt_tier.py), for every service on it.

    tier = TierClient("http://tier:8000/stt", timeout_s=1.5)
    info = tier.get("/info")                       # TierUnavailable if it cannot be reached
    answer = tier.post("/transcribe", body)        # JSON dict; TierUnavailable past timeout_s

The standard library only: a relay node needs neither Ray nor any client library. Calls
block their worker thread (never an event loop) for at most the timeout, and every way
the tier can fail (refused, reset, timed out, 503 from a full queue, a garbled answer)
comes out as TierUnavailable, which the caller turns into a degraded call, as it would a
missing model.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

# Asking a tier what it serves may wait on a replica still loading its model.
INFO_TIMEOUT_S = 5.0


class TierUnavailable(RuntimeError):
    """The inference tier did not answer in time (down, unreachable, overloaded)."""


class TierClient:
    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s

    def get(self, path: str, timeout_s: float | None = None) -> dict[str, Any]:
        """timeout_s: INFO_TIMEOUT_S (or the client's, if longer) unless given."""
        wait = max(self.timeout_s, INFO_TIMEOUT_S) if timeout_s is None else timeout_s
        return self._ask(urllib.request.Request(self.url + path), wait)

    def post(self, path: str, body: bytes, content_type: str = "application/json") -> dict[str, Any]:
        request = urllib.request.Request(self.url + path, data=body, headers={"Content-Type": content_type})
        return self._ask(request, self.timeout_s)

    def _ask(self, request: urllib.request.Request, timeout_s: float) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:  # 503: the tier's queue is full, or the request came too late
            raise TierUnavailable(f"inference tier answered {exc.code}: {_reason(exc)}") from None
        except (OSError, ValueError) as exc:  # refused, reset, timed out, not JSON
            raise TierUnavailable(f"inference tier at {self.url}: {type(exc).__name__}: {exc}") from None
        if not isinstance(answer, dict):
            raise TierUnavailable(f"inference tier at {self.url}: unexpected answer to {request.full_url}")
        return answer


def _reason(exc: urllib.error.HTTPError) -> str:
    try:
        return str(exc.read()[:200].decode(errors="replace"))
    except OSError:
        return str(exc.reason)
