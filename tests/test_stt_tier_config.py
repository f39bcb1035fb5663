"""The inference tier's Ray Serve options, read from [stt_tier] (no cluster needed)."""

from __future__ import annotations

import dataclasses

import pytest

from moderation.stt_tier_config import SttTierConfig

stt_tier = pytest.importorskip("moderation.stt_tier")


def test_both_deployments_scale_by_queue_length_between_their_bounds() -> None:
    tier = dataclasses.replace(
        SttTierConfig(), replicas_min=1, replicas_max=4, classifier_replicas_min=1, classifier_replicas_max=3
    )
    whisper = stt_tier.deployment_options(tier, gpus_in_cluster=1.0)
    classifier = stt_tier.classifier_options(tier, gpus_in_cluster=1.0)
    assert whisper["autoscaling_config"]["max_replicas"] == 4
    assert classifier["autoscaling_config"] == {
        "min_replicas": 1,
        "max_replicas": 3,
        "target_ongoing_requests": tier.target_queue,
    }
    assert "num_replicas" not in classifier


def test_equal_bounds_give_a_fixed_number_of_replicas_and_a_cpu_classifier_without_a_gpu() -> None:
    tier = dataclasses.replace(SttTierConfig(), classifier_replicas_min=2, classifier_replicas_max=2)
    options = stt_tier.classifier_options(tier, gpus_in_cluster=0.0)
    assert options["num_replicas"] == 2 and "autoscaling_config" not in options
    assert options["ray_actor_options"]["num_gpus"] == 0.0


def test_a_maximum_below_the_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="classifier_replicas_max"):
        dataclasses.replace(SttTierConfig(), classifier_replicas_min=3, classifier_replicas_max=2).validate()
