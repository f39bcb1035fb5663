"""The abuse classifier as a deployment of the shared inference tier (moderation/stt_tier.py).

Relay nodes with classifier.backend = "ray" send it their waiting utterances over HTTP
(moderation/classifier_remote.py), one request per node-side batch. Each replica loads
kor_unsmile once ([classifier], so thresholds, labels and attribution are the tier's) and
judges the requests it holds, from every relay node, in one AbuseClassifier.judge_many
(serve.batch): all their sentences in one scorer call. At most
stt_tier.classifier_max_queued requests wait over the tier (then 503 at once), and a
request whose node has already given up on it is dropped unjudged.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from moderation.classifier_config import ClassifierConfig
from moderation.hits import Hit
from moderation.stt_tier import BatchStats, answer, classifier_options
from moderation.stt_tier_config import SttTierConfig
from moderation.stt_wire import JudgeRequest, decode_judge_request, encode_hits

APP_NAME = "classifier"
_Item = tuple[JudgeRequest, float]  # a node's utterances and when they reached the replica


@serve.deployment(name="classifier")
class ClassifierDeployment:
    def __init__(self, classifier: dict[str, Any], batch_max: int, batch_wait_s: float) -> None:
        from moderation.classifier import AbuseClassifier

        self.classifier = AbuseClassifier.load(ClassifierConfig(**classifier))
        batcher: Any = self.judge_requests  # serve.batch's wrapper; its setters are untyped
        batcher.set_max_batch_size(batch_max)
        batcher.set_batch_wait_timeout_s(batch_wait_s)
        self.stats = BatchStats()
        self.stats.counts["utterances"] = 0

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def judge_requests(self, items: list[_Item]) -> list[list[list[Hit]] | None]:
        live = self.stats.wanted(list(items))
        answers: list[list[list[Hit]] | None] = [None] * len(items)
        if live:
            utterances = [u for i in live for u in items[i][0].utterances]
            results = await self.stats.run(len(live), self.classifier.judge_many, utterances)
            self.stats.counts["utterances"] += len(utterances)
            at = 0
            for i in live:
                n = len(items[i][0].utterances)
                answers[i], at = results[at : at + n], at + n
        return answers

    def info(self) -> dict[str, Any]:
        c = self.classifier
        return {"version": c.version, "device": c.device, "labels": [label for _, label, _ in c.abusive]}

    async def judge(self, body: bytes) -> dict[str, Any] | None:
        hits = await self.judge_requests((decode_judge_request(body), time.monotonic()))
        return None if hits is None else encode_hits(hits)

    async def __call__(self, request: Request) -> JSONResponse:
        return await answer(request, "judge", self.info, self.stats, self.judge)


def deploy_classifier(classifier: ClassifierConfig, tier: SttTierConfig, gpus_in_cluster: float) -> None:
    """Deploys the classifier beside the Whisper service, on a GPU share where there is one."""
    device = classifier.device if gpus_in_cluster > 0 and tier.classifier_gpus_per_replica > 0 else "cpu"
    config = dataclasses.replace(classifier, device=device)
    deployment: Any = ClassifierDeployment  # serve.deployment turned the class into a Deployment
    app = deployment.options(**classifier_options(tier, gpus_in_cluster)).bind(
        dataclasses.asdict(config), tier.classifier_batch_max, tier.classifier_batch_wait_s
    )
    serve.run(app, name=APP_NAME, route_prefix=tier.classifier_route)
