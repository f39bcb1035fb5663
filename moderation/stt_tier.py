"""The shared inference tier: the batched Whisper service (and the abuse classifier,
moderation/classifier_tier.py) as Ray Serve deployments.

    callguard stt-tier --config callguard.toml       # on a GPU node (or the Ray head)

Relay nodes send it passes over HTTP (moderation/stt_remote.py, stt.backend = "ray").
Each replica loads the model once ([stt]) and batches the passes it holds, from every
call on every relay node, into one model call (serve.batch -> WhisperEngine.transcribe_
batch). The model call runs in a thread, so passes keep arriving on the replica's loop
meanwhile and form the next batch. Replicas take a GPU where the cluster has one;
Ray Serve adds replicas by queue length between replicas_min and replicas_max; at most
max_queued passes wait over the whole tier, past that it answers 503 at once.

A pass whose caller has already given up (it waited in the queue past its timeout_s) is
dropped unheard: under overload the tier spends its time on passes still wanted.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from moderation.classifier_config import ClassifierConfig
from moderation.speech import EngineSegment
from moderation.stt_config import SttConfig
from moderation.stt_tier_config import SttTierConfig
from moderation.stt_wire import PassRequest, WireError, decode_request, encode_segments

log = logging.getLogger(__name__)

APP_NAME = "stt"
_Item = tuple[PassRequest, float]  # the pass and when it reached the replica (monotonic)
_Out = TypeVar("_Out")


class _Timed(Protocol):
    @property
    def timeout_s(self) -> float: ...


class BatchStats:
    """What a replica has done, for GET .../stats: model calls, requests in them, the
    largest batch, requests dropped for coming too late, compute time."""

    def __init__(self) -> None:
        self.counts: dict[str, float] = {"batches": 0, "items": 0, "max_batch_seen": 0, "dropped_late": 0}
        self.counts["compute_s"] = 0.0
        self._started = time.monotonic()

    def wanted(self, items: list[tuple[_Timed, float]]) -> list[int]:
        """The items whose callers still wait (not queued past their timeout_s)."""
        now = time.monotonic()
        live = [i for i, (r, at) in enumerate(items) if not r.timeout_s or now - at < r.timeout_s]
        self.counts["dropped_late"] += len(items) - len(live)
        return live

    async def run(self, requests: int, compute: Callable[[Any], _Out], batch: Any) -> _Out:
        """One model call in a thread (the replica's loop goes on taking requests), counted."""
        started = time.perf_counter()
        result = await asyncio.to_thread(compute, batch)
        self.counts["compute_s"] += time.perf_counter() - started
        self.counts["batches"] += 1
        self.counts["items"] += requests
        self.counts["max_batch_seen"] = max(self.counts["max_batch_seen"], requests)
        return result

    def view(self) -> dict[str, Any]:
        return {**self.counts, "up_s": round(time.monotonic() - self._started, 1)}


async def answer(
    request: Request,
    verb: str,
    info: Callable[[], dict[str, Any]],
    stats: BatchStats,
    handle: Callable[[bytes], Awaitable[dict[str, Any] | None]],
) -> JSONResponse:
    """A deployment's HTTP face: GET info, GET stats, POST verb (None: came too late)."""
    tail = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    if request.method == "GET" and tail == "info":
        return JSONResponse(info())
    if request.method == "GET" and tail == "stats":
        return JSONResponse(stats.view())
    if request.method != "POST" or tail != verb:
        return JSONResponse({"error": "not found"}, status_code=404)
    try:
        result = await handle(await request.body())
    except WireError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if result is None:
        return JSONResponse({"error": "the request waited past its timeout"}, status_code=503)
    return JSONResponse(result)


@serve.deployment(name="whisper")
class WhisperDeployment:
    def __init__(self, stt: dict[str, Any], batch_max: int, batch_wait_s: float) -> None:
        from moderation.whisper_engine import WhisperEngine

        self.config = SttConfig(**stt)
        self.engine = WhisperEngine(self.config, allow_download=False)
        batcher: Any = self.transcribe_many  # serve.batch's wrapper; its setters are untyped
        batcher.set_max_batch_size(batch_max)
        batcher.set_batch_wait_timeout_s(batch_wait_s)
        self.stats = BatchStats()

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def transcribe_many(self, items: list[_Item]) -> list[list[EngineSegment] | None]:
        live = self.stats.wanted(list(items))
        answers: list[list[EngineSegment] | None] = [None] * len(items)
        if live:
            batch = [(items[i][0].audio, items[i][0].prompt, items[i][0].language, items[i][0].prefix) for i in live]
            results = await self.stats.run(len(live), self.engine.transcribe_batch, batch)
            for i, segments in zip(live, results):
                answers[i] = segments
        return answers

    def info(self) -> dict[str, Any]:
        engine = self.engine
        return {"version": engine.version, "supports_prefix": engine.supports_prefix, "device": engine.device}

    async def transcribe(self, body: bytes) -> dict[str, Any] | None:
        segments = await self.transcribe_many((decode_request(body), time.monotonic()))
        return None if segments is None else encode_segments(segments)

    async def __call__(self, request: Request) -> JSONResponse:
        return await answer(request, "transcribe", self.info, self.stats, self.transcribe)


def deployment_options(tier: SttTierConfig, gpus_in_cluster: float) -> dict[str, Any]:
    """Ray Serve options of the Whisper deployment: replicas, resources, queue bounds."""
    return _options(
        tier.gpus_per_replica if gpus_in_cluster > 0 else 0.0,
        tier.cpus_per_replica,
        tier.batch_max,
        tier.max_queued,
        (tier.replicas_min, tier.replicas_max, tier.target_queue),
    )


def classifier_options(tier: SttTierConfig, gpus_in_cluster: float) -> dict[str, Any]:
    """Ray Serve options of the classifier deployment, scaled by queue length as Whisper's."""
    gpus = tier.classifier_gpus_per_replica if gpus_in_cluster > 0 else 0.0
    return _options(
        gpus,
        tier.classifier_cpus_per_replica,
        tier.classifier_batch_max,
        tier.classifier_max_queued,
        (tier.classifier_replicas_min, tier.classifier_replicas_max, tier.target_queue),
    )


def _options(
    gpus: float, cpus: float, batch_max: int, max_queued: int, replicas: tuple[int, int, int]
) -> dict[str, Any]:
    low, high, target = replicas
    options: dict[str, Any] = {
        "ray_actor_options": {"num_cpus": cpus, "num_gpus": gpus},
        # A replica holds two batches' worth: one computing, the next one filling.
        "max_ongoing_requests": 2 * batch_max,
        "max_queued_requests": max_queued,
    }
    if high > low:
        options["autoscaling_config"] = {"min_replicas": low, "max_replicas": high, "target_ongoing_requests": target}
    else:
        options["num_replicas"] = low
    return options


def run_tier(stt: SttConfig, tier: SttTierConfig, classifier: ClassifierConfig | None = None) -> None:
    """Start (or join) Ray, deploy the services, serve until SIGTERM or SIGINT.

    The classifier is deployed too when given (the config's classifier.backend is "ray")."""
    import ray as ray_module

    ray: Any = ray_module  # largely untyped
    ray.init(address=tier.ray_address or None, include_dashboard=False, log_to_driver=False)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        gpus = float(ray.cluster_resources().get("GPU", 0.0))
        # The replica's engine runs on the device the replica was given.
        device = stt.device if gpus > 0 and tier.gpus_per_replica > 0 else "cpu"
        config = dataclasses.replace(stt, device=device)
        serve.start(http_options={"host": tier.host, "port": tier.port})
        deployment: Any = WhisperDeployment  # serve.deployment turned the class into a Deployment
        app = deployment.options(**deployment_options(tier, gpus)).bind(
            dataclasses.asdict(config), tier.batch_max, tier.batch_wait_s
        )
        serve.run(app, name=APP_NAME, route_prefix=tier.route)
        served = f"http://{tier.host}:{tier.port}{tier.route}"
        if classifier is not None:
            from moderation.classifier_tier import deploy_classifier

            deploy_classifier(classifier, tier, gpus)
            served += f" and http://{tier.host}:{tier.port}{tier.classifier_route}"
        print(f"stt tier ready at {served} (GPUs in cluster: {gpus:g})", flush=True)
        stop.wait()
    finally:
        serve_api: Any = serve
        serve_api.shutdown()
        ray.shutdown()
