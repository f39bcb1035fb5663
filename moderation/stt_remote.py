"""A SpeechEngine whose passes run on the shared inference tier (moderation/stt_tier.py).

    engine = RemoteEngine("http://tier:8000/stt", timeout_s=1.5)
    engine.connect()                       # the tier's model version; TierUnavailable if down
    tr = StreamingTranscriber(engine, config)

transcribe() blocks its worker thread (never an event loop) for at most timeout_s, then
raises TierUnavailable: the transcriber keeps that pass's audio for the next one and its
own lag bound (stt.max_lag_s) skips ahead if the tier stays slow, so a slow or
unreachable tier costs a call exactly what a slow local model costs it. An engine that
has never reached the tier asks it what it serves before its first pass, so a call set up
while the tier was down is moderated as soon as it is back.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from moderation.speech import EngineSegment
from moderation.stt_wire import PassRequest, WireError, decode_segments, encode_request
from moderation.tier_client import TierClient, TierUnavailable

__all__ = ["RemoteEngine", "TierUnavailable"]


class RemoteEngine:
    def __init__(self, url: str, timeout_s: float) -> None:
        self._tier = TierClient(url, timeout_s)
        self.url = self._tier.url
        self.timeout_s = timeout_s
        self._version = ""
        self._supports_prefix = False

    def connect(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Ask the tier what it serves; raises TierUnavailable when it cannot be reached."""
        info = self._tier.get("/info", timeout_s)
        self._version = f"{info['version']} @ {self.url}"
        self._supports_prefix = bool(info.get("supports_prefix", False))
        return info

    @property
    def connected(self) -> bool:
        """The tier has answered at least once."""
        return bool(self._version)

    def stats(self) -> dict[str, Any]:
        return self._tier.get("/stats")

    @property
    def version(self) -> str:
        return self._version

    @property
    def supports_prefix(self) -> bool:
        return self._supports_prefix

    def transcribe(self, audio: np.ndarray, prompt: str, language: str, prefix: str = "") -> list[EngineSegment]:
        if not self.connected:  # within the request's own time
            self.connect(self.timeout_s)
        body = encode_request(PassRequest(audio, prompt, language, prefix, self.timeout_s))
        answer = self._tier.post("/transcribe", body, "application/octet-stream")
        try:
            return decode_segments(answer)
        except WireError as exc:
            raise TierUnavailable(f"inference tier at {self.url}: {exc}") from None
