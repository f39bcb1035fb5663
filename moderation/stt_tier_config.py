"""Settings of the shared inference tier ([stt_tier]): `callguard stt-tier` on Ray Serve.

The model and its decoding settings are [stt]'s, so a tier and a local engine transcribe
alike; these say how the tier is laid out on the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

from moderation.config_range import check_range


@dataclass(frozen=True)
class SttTierConfig:
    # "": a single-node Ray started by the command itself; "auto" joins the cluster this
    # machine is part of (`ray start`), or "ray://HEAD:10001".
    ray_address: str = ""
    # Ray Serve's HTTP listener: relay nodes set stt.tier_url to http://HOST:PORT/ROUTE.
    host: str = "127.0.0.1"
    port: int = 8000
    route: str = "/stt"
    # Replicas of the Whisper deployment; with replicas_max above replicas_min, Ray Serve
    # adds replicas while each has more than target_queue passes in hand.
    replicas_min: int = 1
    replicas_max: int = 1
    target_queue: int = 8
    # Passes waiting for a replica, over the whole tier; past it the tier answers 503 at
    # once and the call's pass fails fast (its audio stays for the next pass).
    max_queued: int = 256
    # Passes in one model call (serve.batch), and how long a batch waits to fill once its
    # first pass is in. Passes arriving while a batch computes form the next one.
    batch_max: int = 16
    batch_wait_s: float = 0.01
    # Resources per replica: a GPU where the cluster has one (Whisper then runs on CUDA),
    # else cpus_per_replica cores.
    gpus_per_replica: float = 1.0
    cpus_per_replica: float = 1.0
    # The abuse classifier, deployed beside Whisper when classifier.backend = "ray" (its
    # model and thresholds are [classifier]'s): relay nodes set classifier.tier_url to
    # http://HOST:PORT/CLASSIFIER_ROUTE. Replicas are added by queue length as Whisper's
    # (classifier_replicas_min..max, target_queue requests per replica); each model call
    # judges up to classifier_batch_max nodes' requests; past classifier_max_queued
    # waiting requests the tier answers 503. On CPU by default (int8 BERT, a few ms a
    # sentence); on a GPU node give it a share, and leave Whisper the rest
    # (gpus_per_replica = 0.75, classifier_gpus_per_replica = 0.25 on one GPU).
    classifier_route: str = "/classifier"
    classifier_replicas_min: int = 1
    classifier_replicas_max: int = 1
    classifier_batch_max: int = 16
    classifier_batch_wait_s: float = 0.01
    classifier_max_queued: int = 256
    classifier_gpus_per_replica: float = 0.0
    classifier_cpus_per_replica: float = 1.0

    def validate(self) -> None:
        """Raises ValueError naming the key (relative to [stt_tier])."""
        check_range("stt_tier.port", self.port, 1, 65535)
        check_range("stt_tier.replicas_min", self.replicas_min, 1, 1024)
        check_range("stt_tier.replicas_max", self.replicas_max, self.replicas_min, 1024)
        check_range("stt_tier.target_queue", self.target_queue, 1, 4096)
        check_range("stt_tier.max_queued", self.max_queued, 1, 100000)
        check_range("stt_tier.batch_max", self.batch_max, 1, 256)
        check_range("stt_tier.batch_wait_s", self.batch_wait_s, 0.0, 1.0)
        check_range("stt_tier.gpus_per_replica", self.gpus_per_replica, 0.0, 8.0)
        check_range("stt_tier.cpus_per_replica", self.cpus_per_replica, 0.1, 256.0)
        check_range("stt_tier.classifier_replicas_min", self.classifier_replicas_min, 1, 1024)
        check_range(
            "stt_tier.classifier_replicas_max", self.classifier_replicas_max, self.classifier_replicas_min, 1024
        )
        check_range("stt_tier.classifier_batch_max", self.classifier_batch_max, 1, 256)
        check_range("stt_tier.classifier_batch_wait_s", self.classifier_batch_wait_s, 0.0, 1.0)
        check_range("stt_tier.classifier_max_queued", self.classifier_max_queued, 1, 100000)
        check_range("stt_tier.classifier_gpus_per_replica", self.classifier_gpus_per_replica, 0.0, 8.0)
        check_range("stt_tier.classifier_cpus_per_replica", self.classifier_cpus_per_replica, 0.1, 256.0)
        for key, route in (("route", self.route), ("classifier_route", self.classifier_route)):
            if not route.startswith("/"):
                raise ValueError(f"stt_tier.{key} must start with '/', not {route!r}")
        if self.route == self.classifier_route:
            raise ValueError("stt_tier.route and stt_tier.classifier_route must differ")
