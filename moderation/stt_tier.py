"""The shared inference tier: the batched Whisper service as a Ray Serve deployment.

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
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse

from moderation.speech import EngineSegment
from moderation.stt_config import SttConfig
from moderation.stt_tier_config import SttTierConfig
from moderation.stt_wire import PassRequest, WireError, decode_request, encode_segments

log = logging.getLogger(__name__)

APP_NAME = "stt"
_Item = tuple[PassRequest, float]  # the pass and when it reached the replica (monotonic)


@serve.deployment(name="whisper")
class WhisperDeployment:
    def __init__(self, stt: dict[str, Any], batch_max: int, batch_wait_s: float) -> None:
        from moderation.whisper_engine import WhisperEngine

        self.config = SttConfig(**stt)
        self.engine = WhisperEngine(self.config, allow_download=False)
        batcher: Any = self.transcribe_many  # serve.batch's wrapper; its setters are untyped
        batcher.set_max_batch_size(batch_max)
        batcher.set_batch_wait_timeout_s(batch_wait_s)
        self.stats = {"batches": 0, "items": 0, "max_batch_seen": 0, "dropped_late": 0, "compute_s": 0.0}
        self._started = time.monotonic()

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def transcribe_many(self, items: list[_Item]) -> list[list[EngineSegment] | None]:
        now = time.monotonic()
        live = [i for i, (p, at) in enumerate(items) if not p.timeout_s or now - at < p.timeout_s]
        self.stats["dropped_late"] += len(items) - len(live)
        answers: list[list[EngineSegment] | None] = [None] * len(items)
        if live:
            batch = [(items[i][0].audio, items[i][0].prompt, items[i][0].language, items[i][0].prefix) for i in live]
            started = time.perf_counter()
            results = await asyncio.to_thread(self.engine.transcribe_batch, batch)
            self.stats["compute_s"] += time.perf_counter() - started
            self.stats["batches"] += 1
            self.stats["items"] += len(live)
            self.stats["max_batch_seen"] = max(self.stats["max_batch_seen"], len(live))
            for i, segments in zip(live, results):
                answers[i] = segments
        return answers

    async def __call__(self, request: Request) -> JSONResponse:
        tail = request.url.path.rstrip("/").rsplit("/", 1)[-1]
        if request.method == "GET" and tail == "info":
            engine = self.engine
            return JSONResponse(
                {"version": engine.version, "supports_prefix": engine.supports_prefix, "device": engine.device}
            )
        if request.method == "GET" and tail == "stats":
            return JSONResponse({**self.stats, "up_s": round(time.monotonic() - self._started, 1)})
        if request.method != "POST" or tail != "transcribe":
            return JSONResponse({"error": "not found"}, status_code=404)
        try:
            req = decode_request(await request.body())
        except WireError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        segments = await self.transcribe_many((req, time.monotonic()))
        if segments is None:
            return JSONResponse({"error": "the pass waited past its timeout"}, status_code=503)
        return JSONResponse(encode_segments(segments))


def deployment_options(tier: SttTierConfig, gpus_in_cluster: float) -> dict[str, Any]:
    """Ray Serve options of the Whisper deployment: replicas, resources, queue bounds."""
    gpus = tier.gpus_per_replica if gpus_in_cluster > 0 else 0.0
    options: dict[str, Any] = {
        "ray_actor_options": {"num_cpus": tier.cpus_per_replica, "num_gpus": gpus},
        # A replica holds two batches' worth: one computing, the next one filling.
        "max_ongoing_requests": 2 * tier.batch_max,
        "max_queued_requests": tier.max_queued,
    }
    if tier.replicas_max > tier.replicas_min:
        options["autoscaling_config"] = {
            "min_replicas": tier.replicas_min,
            "max_replicas": tier.replicas_max,
            "target_ongoing_requests": tier.target_queue,
        }
    else:
        options["num_replicas"] = tier.replicas_min
    return options


def run_tier(stt: SttConfig, tier: SttTierConfig) -> None:
    """Start (or join) Ray, deploy the service, serve until SIGTERM or SIGINT."""
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
        print(f"stt tier ready at http://{tier.host}:{tier.port}{tier.route} (GPUs in cluster: {gpus:g})", flush=True)
        stop.wait()
    finally:
        serve_api: Any = serve
        serve_api.shutdown()
        ray.shutdown()
