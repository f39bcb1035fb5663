"""The server's metrics in the Prometheus exposition format: the one place that names them.

Most figures already exist as live stats (the calls' delay lines, transcriptions and
moderations, the speech service, the text checks): they are read at scrape time, not
copied as they change. What would vanish with a call (its undecided and muted seconds,
its passes) is added to running totals when it ends, so the counters never go backwards.
Decision lags and mutes are counted as they happen (a histogram cannot be rebuilt later).

Each server has its own registry (no process-global state): two apps in one process, as
in the tests, never see each other's figures.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from relay.calls.call import Call
    from relay.calls.speech_service import SttService
    from relay.calls.text_service import TextChecks
    from relay.records.db_thread import DatabaseStats
    from relay.records.s3_recordings import RecordingUploads

PREFIX = "callguard"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Word end reaching the server to its mute span decided: the delay (1.5 s) is the budget.
LAG_BUCKETS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0)
CALL_STATES = ("waiting", "active")


class ServerMetrics(Collector):
    def __init__(
        self,
        stt: SttService,
        checks: TextChecks,
        calls: Callable[[], Iterable[Call]],
        database: Callable[[], DatabaseStats] | None = None,
    ) -> None:
        self._database = database
        self.uploads: RecordingUploads | None = None  # recordings.backend = "s3"
        self._stt = stt
        self._checks = checks
        self._calls = calls
        self.registry = CollectorRegistry(auto_describe=False)
        # Unregistered on its own: collected through this collector, with the rest.
        self.decision_lag = Histogram(
            f"{PREFIX}_moderation_decision_lag_seconds",
            "Seconds from a muted word's end reaching the server to its mute span being decided",
            buckets=LAG_BUCKETS,
            registry=None,
        )
        self._mutes: Tally[tuple[str, str]] = Tally()
        self._ended: Tally[str] = Tally()
        self._ended_undecided_s = 0.0
        self._ended_muted_s = 0.0
        self._ended_passes = 0
        self.registry.register(self)
        # process_cpu_seconds_total, resident memory, open files: the relay's own cost.
        ProcessCollector(registry=self.registry)

    # ------------------------------------------------------------ as things happen

    def mute(self, sources: Iterable[tuple[str, str]]) -> None:
        """A mute span decided, with each (source, category) that fired for it."""
        for pair in set(sources):
            self._mutes[pair] += 1

    def call_ended(self, call: Call) -> None:
        stats = call.delay_line.stats()
        self._ended[call.record.end_reason or "unknown"] += 1
        self._ended_undecided_s += stats.undecided_s
        self._ended_muted_s += stats.muted_s
        if call.transcription is not None:
            self._ended_passes += call.transcription.passes

    # -------------------------------------------------------------------- scrape

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        calls = [c for c in self._calls() if c.state != "ended"]
        by_state = GaugeMetricFamily(f"{PREFIX}_calls", "Calls running now, by state", labels=["state"])
        for state in CALL_STATES:
            by_state.add_metric([state], sum(1 for c in calls if c.state == state))
        yield by_state
        ended = CounterMetricFamily(f"{PREFIX}_calls_ended", "Calls ended since the server started", labels=["reason"])
        for reason, count in sorted(self._ended.items()):
            ended.add_metric([reason], count)
        yield ended

        stats = [c.delay_line.stats() for c in calls]
        yield _counter(
            "undecided_seconds",
            "Customer audio played to counselors before moderation had cleared it",
            self._ended_undecided_s + sum(s.undecided_s for s in stats),
        )
        yield _counter(
            "muted_seconds",
            "Customer audio silenced before counselors heard it",
            self._ended_muted_s + sum(s.muted_s for s in stats),
        )
        mutes = CounterMetricFamily(
            f"{PREFIX}_mutes", "Mute spans decided, by source and category", labels=["source", "category"]
        )
        for (source, category), count in sorted(self._mutes.items()):
            mutes.add_metric([source, category], count)
        yield mutes
        yield from self.decision_lag.collect()

        transcriptions = [c.transcription for c in calls if c.transcription is not None]
        yield _gauge(
            "transcription_lag_seconds",
            "How far the slowest call's transcription trails its newest audio",
            max((t.lag_s for t in transcriptions), default=0.0),
        )
        yield _counter(
            "stt_passes", "Transcription passes run", self._ended_passes + sum(t.passes for t in transcriptions)
        )
        yield _gauge(
            "stt_queue_depth",
            "Transcription passes waiting for a free speech worker",
            max(0, self._stt.passes_in_flight - self._stt.config.workers),
        )
        available = GaugeMetricFamily(
            f"{PREFIX}_check_available", "1 where a moderation stage is loaded and running", labels=["check"]
        )
        for check, state in self.check_states().items():
            available.add_metric([check], 1.0 if state == "ready" else 0.0)
        yield available
        yield _counter(
            "classifier_overloaded",
            "Windows judged by the keyword lists alone because the classifier queue was full",
            self._checks.overloaded,
        )
        if self._database is not None:
            yield from _database_metrics(self._database())
        if self.uploads is not None:
            yield _gauge(
                "recordings_local_files",
                "Recordings on the local disk (running calls, uploads to come)",
                self.uploads.waiting(),
            )
            yield _counter("recordings_uploaded", "Recordings uploaded to the store", self.uploads.uploaded)
            yield _counter("recordings_upload_failures", "Uploads that failed (each retried)", self.uploads.failed)

    def check_states(self) -> dict[str, str]:
        checks = self._checks.view()
        return {
            "stt": self._stt.state,
            "keywords": checks["keywords"]["state"],
            "classifier": checks["classifier"]["state"],
        }


def _database_metrics(db: DatabaseStats) -> Iterator[Metric]:
    """The database thread (relay/records/db_thread.py): a backlog means the database is slow."""
    yield _gauge("database_queued_writes", "Writes waiting in memory for the database", db.queued)
    yield _gauge("database_queue_max", "Writes the memory queue holds before they spill to disk", db.queue_max)
    yield _gauge("database_spilled_writes", "Writes waiting in the spill file (the queue was full)", db.spilled)
    yield _gauge("database_oldest_write_seconds", "How long the oldest waiting write has waited", db.oldest_s)
    yield _counter("database_writes", "Writes applied", db.written)
    yield _counter("database_write_retries", "Writes retried after the database failed them for a while", db.retries)
    yield _counter("database_writes_refused", "Writes the database refused (logged with the statement)", db.failed)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}_{name}", doc, value=value)


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)
