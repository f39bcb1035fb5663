"""The metrics collector on its own: figures counted as they happen (decision lags, mutes,
ended calls) and read at scrape time, in each server's own registry."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from moderation.stt_config import SttConfig
from relay.calls.call_metrics import ServerMetrics
from relay.calls.speech_service import SttService
from relay.calls.text_service import TextChecks
from relay.config import Config


def _samples(metrics: ServerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(metrics.exposition().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_lags_mutes_and_checks() -> None:
    stt = SttService(SttConfig(enabled=False))
    try:
        metrics = ServerMetrics(stt, TextChecks(Config()), lambda: [])
        other = ServerMetrics(stt, TextChecks(Config()), lambda: [])
        for lag in (0.2, 0.6, 0.9, 4.0):
            metrics.decision_lag.observe(lag)
        metrics.mute([("keyword", "insult"), ("classifier", "악플/욕설"), ("keyword", "insult")])
        metrics.mute([("manual", "dump")])
        got = _samples(metrics)
        lag = "callguard_moderation_decision_lag_seconds"
        assert got[(f"{lag}_count", ())] == 4
        assert got[(f"{lag}_bucket", (("le", "0.75"),))] == 2
        assert got[(f"{lag}_bucket", (("le", "+Inf"),))] == 4
        # A span with two hits of one category counts once for it.
        assert got[("callguard_mutes_total", (("category", "insult"), ("source", "keyword")))] == 1
        assert got[("callguard_mutes_total", (("category", "악플/욕설"), ("source", "classifier")))] == 1
        assert got[("callguard_mutes_total", (("category", "dump"), ("source", "manual")))] == 1
        assert got[("callguard_check_available", (("check", "stt"),))] == 0
        assert got[("callguard_calls", (("state", "active"),))] == 0
        # Another server in the same process has figures of its own.
        assert (f"{lag}_count", ()) in _samples(other) and _samples(other)[(f"{lag}_count", ())] == 0
    finally:
        stt.close()
