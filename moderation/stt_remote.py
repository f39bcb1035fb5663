"""A SpeechEngine whose passes run on the shared inference tier (moderation/stt_tier.py).

    engine = RemoteEngine("http://tier:8000/stt", timeout_s=1.5)
    engine.connect()                       # the tier's model version; TierUnavailable if down
    tr = StreamingTranscriber(engine, config)

transcribe() blocks its worker thread (never an event loop) for at most timeout_s, then
raises TierUnavailable: the transcriber keeps that pass's audio for the next one and its
own lag bound (stt.max_lag_s) skips ahead if the tier stays slow, so a slow or
unreachable tier costs a call exactly what a slow local model costs it. Plain HTTP with
the standard library: a relay node needs neither Ray nor any client library.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import numpy as np

from moderation.speech import EngineSegment
from moderation.stt_wire import PassRequest, WireError, decode_segments, encode_request


class TierUnavailable(RuntimeError):
    """The inference tier did not answer a pass in time (down, unreachable, overloaded)."""


class RemoteEngine:
    def __init__(self, url: str, timeout_s: float) -> None:
        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self._version = ""
        self._supports_prefix = False

    def connect(self) -> dict[str, Any]:
        """Ask the tier what it serves; raises TierUnavailable when it cannot be reached."""
        info = self._get("/info", timeout_s=max(self.timeout_s, 5.0))
        self._version = f"{info['version']} @ {self.url}"
        self._supports_prefix = bool(info.get("supports_prefix", False))
        return info

    def stats(self) -> dict[str, Any]:
        return self._get("/stats", timeout_s=max(self.timeout_s, 5.0))

    @property
    def version(self) -> str:
        return self._version

    @property
    def supports_prefix(self) -> bool:
        return self._supports_prefix

    def transcribe(self, audio: np.ndarray, prompt: str, language: str, prefix: str = "") -> list[EngineSegment]:
        body = encode_request(PassRequest(audio, prompt, language, prefix, self.timeout_s))
        request = urllib.request.Request(
            self.url + "/transcribe", data=body, headers={"Content-Type": "application/octet-stream"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read())
            return decode_segments(answer)
        except urllib.error.HTTPError as exc:  # 503: the tier's queue is full, or the pass came too late
            raise TierUnavailable(f"inference tier answered {exc.code}: {_reason(exc)}") from None
        except (OSError, ValueError, WireError) as exc:  # refused, reset, timed out, garbled
            raise TierUnavailable(f"inference tier at {self.url}: {type(exc).__name__}: {exc}") from None

    def _get(self, path: str, timeout_s: float) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=timeout_s) as response:
                answer = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise TierUnavailable(f"inference tier at {self.url}: {type(exc).__name__}: {exc}") from None
        if not isinstance(answer, dict):
            raise TierUnavailable(f"inference tier at {self.url}: unexpected answer to {path}")
        return answer


def _reason(exc: urllib.error.HTTPError) -> str:
    try:
        return str(exc.read()[:200].decode(errors="replace"))
    except OSError:
        return str(exc.reason)
