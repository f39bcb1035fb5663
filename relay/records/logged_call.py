"""The call log, read back: the list of logged calls and one call with all its evidence.

relay/records/call_log.py writes a call as it runs; this is the other side, for QA (the QA API
and page), the evidence export and replays. Everything is a plain dataclass, so the API
hands `dataclasses.asdict` to the browser and the shapes are documented here once.

Times: `at`, `created_at` and the like are wall clock (time.time()); word, span, mark
and recording `media_s` times are seconds on the call's media clock, on which the
customer's original and the audio delivered to the counselor line up.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay.records.ogg_opus import read_duration_s

STREAMS = ("customer", "delivered", "counselor")
# Whether moderation judged the call's audio before the counselor heard it: all of it
# (checked), not all (partly: some played undecided, e.g. while transcription lagged), or
# none (unchecked: no speech model, or moderation switched off).
MODERATION_STATES = ("checked", "partly", "unchecked")


class UnknownCall(LookupError):
    """No call with that id in the log (never logged, or purged)."""

    def __init__(self, call_id: str) -> None:
        super().__init__(f"no logged call {call_id!r}")
        self.call_id = call_id


@dataclass(frozen=True)
class CallFilter:
    since: float | None = None  # created at or after (wall clock)
    until: float | None = None  # created before
    counselor: str | None = None
    muted: bool | None = None  # True: at least one mute that stood; False: checked, and none
    moderation: str | None = None  # one of MODERATION_STATES
    limit: int = 200


@dataclass(frozen=True)
class CallSummary:
    call_id: str
    counselor: str
    created_at: float
    ended_at: float | None
    end_reason: str | None
    delay_s: float
    duration_s: float | None  # the call's length: created to ended (to its last audio if never ended)
    moderation: str | None  # one of MODERATION_STATES; None: not recorded
    undecided_s: float | None  # customer audio the counselor heard before moderation had judged it
    mutes: int  # mute spans that stood (not lifted)
    lifted: int  # provisional spans lifted when their words were revised away
    words: int
    marks: int
    replays: int


@dataclass(frozen=True)
class Recording:
    stream: str  # customer (original), delivered (what the counselor heard), counselor
    path: str  # relative to the data folder
    channels: int
    started_at: float
    media_s: float | None  # media time of the file's first sample
    duration_s: float | None  # from the database, else read from the file (after a kill)
    packets: int | None
    filled_s: float | None
    # [file seconds, media seconds] where the file's media time steps (see media_at).
    sync: list[list[float]] = dataclasses.field(default_factory=list)

    def media_at(self, file_s: float) -> float | None:
        """The call media time of the file's sample at `file_s` seconds (None: not placed).

        The file runs linearly from media_s, and from each sync point on from its media time.
        """
        if self.media_s is None:
            return None
        at_file, at_media = 0.0, self.media_s
        for f, m in self.sync:
            if f > file_s:
                break
            at_file, at_media = f, m
        return at_media + (file_s - at_file)

    def file_at(self, media_s: float) -> float | None:
        """Where in the file media time `media_s` is (the latest run that holds it)."""
        if self.media_s is None:
            return None
        runs = [(0.0, self.media_s), *((f, m) for f, m in self.sync)]
        for k in range(len(runs) - 1, -1, -1):
            f, m = runs[k]
            file_s = f + (media_s - m)
            if file_s >= f or k == 0:
                return file_s
        return None  # unreachable: the first run takes everything before it


@dataclass(frozen=True)
class LoggedWord:
    start: float
    end: float
    text: str
    probability: float


@dataclass(frozen=True)
class LoggedDecision:
    span_id: int
    start: float  # the muted span, padded
    end: float
    word_start: float
    word_end: float
    words: list[str]
    provisional: bool
    categories: list[str]
    hits: list[dict[str, Any]]  # source, category, score, threshold, detail, version, words
    decided_at: float
    late_s: float
    lifted_at: float | None

    @property
    def manual(self) -> bool:
        """A staff member's mute (span, dump, hold), not moderation's: a replay never makes one."""
        return bool(self.hits) and all(h.get("source") == "manual" for h in self.hits)


@dataclass(frozen=True)
class LoggedEvent:
    at: float
    media_s: float | None
    kind: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class Mark:
    mark_id: int
    call_id: str
    kind: str  # false_positive | missed_abuse
    start: float
    end: float
    span_id: int | None
    text: str
    note: str
    by_user: str
    at: float


@dataclass(frozen=True)
class Replay:
    replay_id: int
    call_id: str
    at: float
    by_user: str
    mode: str  # audio | transcript
    config: dict[str, Any]
    versions: dict[str, Any]
    words: list[dict[str, Any]]
    spans: list[dict[str, Any]]
    diff: dict[str, Any]  # added, removed, changed


@dataclass(frozen=True)
class CallHistory:
    summary: CallSummary
    config: dict[str, Any]  # the config in force, secrets left out
    versions: dict[str, Any]  # speech model, keyword lists, classifier
    recordings: list[Recording]
    words: list[LoggedWord]
    decisions: list[LoggedDecision]
    events: list[LoggedEvent]
    marks: list[Mark]
    replays: list[Replay]


# The speech model's state comes from the call's versions snapshot, the audio played
# undecided from its last statistics (the summary at its end, or the last 5 s tick when
# the server was killed).
_SUMMARY = """
SELECT *,
    CASE WHEN stt_state IS NULL THEN NULL WHEN stt_state != 'ready' THEN 'unchecked'
        WHEN COALESCE(undecided_s, 0) > 0 THEN 'partly' ELSE 'checked' END AS moderation
FROM (SELECT c.call_id, c.counselor, c.created_at, c.ended_at, c.end_reason, c.delay_s,
    COALESCE(c.ended_at, (SELECT MAX(r.started_at + r.duration_s) FROM call_recordings r
        WHERE r.call_id = c.call_id)) - c.created_at AS duration_s,
    (SELECT json_extract(g.versions, '$.stt.state') FROM call_config g WHERE g.call_id = c.call_id) AS stt_state,
    (SELECT CAST(json_extract(e.detail, '$.stats.undecided_s') AS REAL) FROM call_events e
        WHERE e.call_id = c.call_id AND e.kind IN ('summary', 'stats') ORDER BY e.id DESC LIMIT 1) AS undecided_s,
    (SELECT COUNT(*) FROM call_decisions d WHERE d.call_id = c.call_id AND d.lifted_at IS NULL) AS mutes,
    (SELECT COUNT(*) FROM call_decisions d WHERE d.call_id = c.call_id AND d.lifted_at IS NOT NULL) AS lifted,
    (SELECT COUNT(*) FROM call_words w WHERE w.call_id = c.call_id) AS words,
    (SELECT COUNT(*) FROM qa_marks m WHERE m.call_id = c.call_id) AS marks,
    (SELECT COUNT(*) FROM call_replays p WHERE p.call_id = c.call_id) AS replays
FROM calls c {where}) AS summary
"""


def list_calls(db: sqlite3.Connection, f: CallFilter = CallFilter()) -> list[CallSummary]:
    """Newest first."""
    where: list[str] = []  # on the calls table (indexed), inside
    params: list[Any] = []
    if f.since is not None:
        where.append("c.created_at >= ?")
        params.append(f.since)
    if f.until is not None:
        where.append("c.created_at < ?")
        params.append(f.until)
    if f.counselor:
        where.append("c.counselor = ?")
        params.append(f.counselor)
    outer: list[str] = []  # on the summary's computed columns
    if f.muted is not None:
        # "Without mutes" means judged and found clean: an unchecked call is not clean.
        outer.append("mutes > 0" if f.muted else "mutes = 0 AND moderation IN ('checked', 'partly')")
    if f.moderation is not None:
        outer.append("moderation = ?")
        params.append(f.moderation)
    sql = (
        _SUMMARY.format(where=" WHERE " + " AND ".join(where) if where else "")
        + (" WHERE " + " AND ".join(outer) if outer else "")
        + " ORDER BY created_at DESC LIMIT ?"
    )
    return [_summary(r) for r in db.execute(sql, (*params, f.limit))]


def load_call(db: sqlite3.Connection, data_dir: str | Path, call_id: str) -> CallHistory | None:
    row = db.execute(_SUMMARY.format(where=" WHERE c.call_id = ?"), (call_id,)).fetchone()
    if row is None:
        return None
    snapshot = db.execute("SELECT config, versions FROM call_config WHERE call_id = ?", (call_id,)).fetchone()
    recordings = call_recordings(db, data_dir, call_id)
    summary = _summary(row)
    if summary.duration_s is None:
        # Never ended, and the killed server wrote no durations: up to the end of its audio as read.
        ends = [r.started_at + r.duration_s for r in recordings if r.duration_s is not None]
        if ends:
            summary = dataclasses.replace(summary, duration_s=max(ends) - summary.created_at)
    return CallHistory(
        summary=summary,
        config=json.loads(snapshot["config"]) if snapshot else {},
        versions=json.loads(snapshot["versions"]) if snapshot else {},
        recordings=recordings,
        words=logged_words(db, call_id),
        decisions=logged_decisions(db, call_id),
        events=[
            LoggedEvent(r["at"], r["media_s"], r["kind"], json.loads(r["detail"]))
            for r in db.execute(
                "SELECT at, media_s, kind, detail FROM call_events WHERE call_id = ? ORDER BY id", (call_id,)
            )
        ],
        marks=marks(db, call_id),
        replays=replays(db, call_id),
    )


def call_recordings(db: sqlite3.Connection, data_dir: str | Path, call_id: str) -> list[Recording]:
    sync: dict[str, list[list[float]]] = {}
    for r in db.execute(
        "SELECT stream, file_s, media_s FROM call_recording_sync WHERE call_id = ? ORDER BY stream, file_s", (call_id,)
    ):
        sync.setdefault(r["stream"], []).append([r["file_s"], r["media_s"]])
    return [
        dataclasses.replace(_recording(data_dir, r), sync=sync.get(r["stream"], []))
        for r in db.execute("SELECT * FROM call_recordings WHERE call_id = ? ORDER BY stream", (call_id,))
    ]


def logged_words(db: sqlite3.Connection, call_id: str) -> list[LoggedWord]:
    return [
        LoggedWord(r["start"], r["end"], r["text"], r["probability"])
        for r in db.execute(
            "SELECT start, end, text, probability FROM call_words WHERE call_id = ? ORDER BY start, rowid", (call_id,)
        )
    ]


def logged_decisions(db: sqlite3.Connection, call_id: str) -> list[LoggedDecision]:
    return [
        LoggedDecision(
            r["span_id"],
            r["start"],
            r["end"],
            r["word_start"],
            r["word_end"],
            json.loads(r["words"]),
            bool(r["provisional"]),
            json.loads(r["categories"]),
            json.loads(r["hits"]),
            r["decided_at"],
            r["late_s"],
            r["lifted_at"],
        )
        for r in db.execute("SELECT * FROM call_decisions WHERE call_id = ? ORDER BY start, span_id", (call_id,))
    ]


def marks(
    db: sqlite3.Connection, call_id: str | None = None, since: float | None = None, until: float | None = None
) -> list[Mark]:
    """One call's marks, or every call's (optionally by when they were marked), in call then time order."""
    where, params = ["1"], []  # type: list[str], list[Any]
    for clause, value in (("call_id = ?", call_id), ("at >= ?", since), ("at < ?", until)):
        if value is not None:
            where.append(clause)
            params.append(value)
    return [
        Mark(
            r["mark_id"],
            r["call_id"],
            r["kind"],
            r["start"],
            r["end"],
            r["span_id"],
            r["text"],
            r["note"],
            r["by_user"],
            r["at"],
        )
        for r in db.execute(
            f"SELECT * FROM qa_marks WHERE {' AND '.join(where)} ORDER BY call_id, start, mark_id", params
        )
    ]


def replays(db: sqlite3.Connection, call_id: str) -> list[Replay]:
    return [
        Replay(
            r["replay_id"],
            r["call_id"],
            r["at"],
            r["by_user"],
            r["mode"],
            json.loads(r["config"]),
            json.loads(r["versions"]),
            json.loads(r["words"]),
            json.loads(r["spans"]),
            json.loads(r["diff"]),
        )
        for r in db.execute("SELECT * FROM call_replays WHERE call_id = ? ORDER BY at, replay_id", (call_id,))
    ]


def recording_file(data_dir: str | Path, recording: Recording) -> Path | None:
    """The recording's file, if it exists and lies inside the data folder."""
    root = Path(data_dir).resolve()
    path = (root / recording.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def _recording(data_dir: str | Path, r: sqlite3.Row) -> Recording:
    rec = Recording(
        r["stream"],
        r["path"],
        r["channels"],
        r["started_at"],
        r["media_s"],
        r["duration_s"],
        r["packets"],
        r["filled_s"],
    )
    if rec.duration_s is None and (path := recording_file(data_dir, rec)) is not None:
        try:
            rec = dataclasses.replace(rec, duration_s=read_duration_s(path))
        except OSError:
            pass
    return rec


def _summary(r: sqlite3.Row) -> CallSummary:
    return CallSummary(
        r["call_id"],
        r["counselor"],
        r["created_at"],
        r["ended_at"],
        r["end_reason"],
        r["delay_s"],
        r["duration_s"],
        r["moderation"],
        r["undecided_s"],
        r["mutes"],
        r["lifted"],
        r["words"],
        r["marks"],
        r["replays"],
    )
