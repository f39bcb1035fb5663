"""The abuse classifier on the shared inference tier (classifier.backend = "ray").

    remote = RemoteClassifier("http://tier:8000/classifier", timeout_s=0.5)
    remote.connect()                               # the tier's model version; TierUnavailable if down
    batcher = ClassifierBatcher(remote, executor)  # this node's calls, one request per batch

A drop-in for AbuseClassifier behind the node's ClassifierBatcher: judge_many() sends the
node's waiting utterances in one request, and the tier batches the requests of every node
into one model pass (moderation/classifier_tier.py). Thresholds, labels and attribution
are the tier's [classifier] settings. Everything a tier can do wrong comes out as
TierUnavailable within timeout_s; the relay then judges by the other checks, as it does
without a classifier (relay/calls/text_service.py).
"""

from __future__ import annotations

from typing import Any

from moderation.hits import Hit
from moderation.stt_wire import JudgeRequest, WireError, decode_hits, encode_judge_request
from moderation.tier_client import TierClient, TierUnavailable


class RemoteClassifier:
    def __init__(self, url: str, timeout_s: float) -> None:
        self._tier = TierClient(url, timeout_s)
        self.url = self._tier.url
        self.timeout_s = timeout_s
        self.version = ""
        self.device = "remote"

    @property
    def connected(self) -> bool:
        return bool(self.version)

    def connect(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Ask the tier what it serves; raises TierUnavailable when it cannot be reached."""
        info = self._tier.get("/info", timeout_s)
        try:
            self.version, self.device = f"{info['version']} @ {self.url}", str(info.get("device", "remote"))
        except KeyError:
            raise TierUnavailable(f"inference tier at {self.url} serves no classifier") from None
        return info

    def stats(self) -> dict[str, Any]:
        return self._tier.get("/stats")

    def judge_many(self, utterances: list[list[str]]) -> list[list[Hit]]:
        if not self.connected:  # within the request's own time
            self.connect(self.timeout_s)
        answer = self._tier.post("/judge", encode_judge_request(JudgeRequest(utterances, self.timeout_s)))
        try:
            return decode_hits(answer, len(utterances))
        except WireError as exc:
            raise TierUnavailable(f"inference tier at {self.url}: {exc}") from None
