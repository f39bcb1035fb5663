"""Retention: old calls go with every row and recording, the access log stays, nothing young is touched."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from relay import cli
from relay.config import Config, RetentionConfig, ServerConfig
from relay.records import retention
from relay.records.access_log import accesses
from relay.records.call_log import call_dir
from relay.records.database import database_file, open_database
from relay.records.retention import DAY_S, OPEN_CALL_GRACE_S, PeriodicPurge, purge
from testkit.local_server import prepare_server
from tests.logged_calls import ABUSIVE_CALL, CLEAN_CALL, LoggedCall, write_logged_call

NOW = time.time()
USER = ("cli:test", "cli")
CALL_TABLES = (
    "calls",
    "call_config",
    "call_recordings",
    "call_words",
    "call_decisions",
    "call_events",
    "qa_marks",
    "call_replays",
)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def db(data_dir: Path) -> Iterator[sqlite3.Connection]:
    conn = open_database(database_file(data_dir))
    yield conn
    conn.close()


def logged(
    db: sqlite3.Connection,
    data_dir: Path,
    call_id: str,
    age_days: float,
    words: list[tuple[str, float, float]] = CLEAN_CALL,
) -> LoggedCall:
    return write_logged_call(db, data_dir, LoggedCall(call_id, "anna", NOW - age_days * DAY_S, words))


def add_qa(db: sqlite3.Connection, call_id: str) -> None:
    """A QA mark, a replay and a view in the access log, as the QA pages would leave them."""
    db.execute(
        "INSERT INTO qa_marks (call_id, kind, start, end, text, by_user, at) "
        "VALUES (?, 'missed_abuse', 1.0, 2.0, '배송', 'quinn', ?)",
        (call_id, NOW),
    )
    db.execute(
        "INSERT INTO call_replays (call_id, at, by_user, mode, config, versions, words, spans, diff) "
        "VALUES (?, ?, 'quinn', 'transcript', '{}', '{}', '[]', '[]', '{}')",
        (call_id, NOW),
    )
    db.execute(
        "INSERT INTO access_log (at, user_name, role, call_id, action, detail) "
        "VALUES (?, 'quinn', 'qa', ?, 'view', '{}')",
        (NOW, call_id),
    )


def rows(db: sqlite3.Connection, call_id: str) -> dict[str, int]:
    return {t: db.execute(f"SELECT COUNT(*) FROM {t} WHERE call_id = ?", (call_id,)).fetchone()[0] for t in CALL_TABLES}


def folder_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.iterdir() if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files)


def age_files(folder: Path, days: float) -> None:
    t = NOW - days * DAY_S
    for p in folder.iterdir():
        os.utime(p, (t, t))


def test_purge_removes_old_calls_with_every_row_and_file_and_keeps_the_access_log(
    db: sqlite3.Connection, data_dir: Path
) -> None:
    logged(db, data_dir, "c_old", 100, ABUSIVE_CALL)
    logged(db, data_dir, "c_new", 10)
    for call_id in ("c_old", "c_new"):
        add_qa(db, call_id)
    assert all(rows(db, "c_old").values()), rows(db, "c_old")  # every table has something to purge
    files, size = folder_size(call_dir(data_dir, "c_old"))
    young = rows(db, "c_new")

    report = purge(db, data_dir, 90, USER, now=NOW)

    assert [(c.call_id, c.files, c.bytes) for c in report.calls] == [("c_old", files, size)]
    assert (report.files, report.bytes, report.errors) == (3, size, [])
    assert rows(db, "c_old") == dict.fromkeys(CALL_TABLES, 0)
    assert not call_dir(data_dir, "c_old").exists()
    assert rows(db, "c_new") == young and folder_size(call_dir(data_dir, "c_new"))[0] == 3
    trail = accesses(db, "c_old")
    assert [(a.action, a.user_name, a.role) for a in trail] == [("purge", "cli:test", "cli"), ("view", "quinn", "qa")]
    assert trail[0].detail["files"] == 3 and trail[0].detail["bytes"] == size
    assert trail[0].detail["retention_days"] == 90
    assert purge(db, data_dir, 90, USER, now=NOW).calls == []


def test_dry_run_removes_nothing(db: sqlite3.Connection, data_dir: Path) -> None:
    logged(db, data_dir, "c_old", 100)
    before = rows(db, "c_old")
    report = purge(db, data_dir, 90, USER, dry_run=True, now=NOW)
    assert report.dry_run and [c.call_id for c in report.calls] == ["c_old"] and report.files == 3
    assert rows(db, "c_old") == before
    assert folder_size(call_dir(data_dir, "c_old"))[0] == 3
    assert accesses(db, "c_old") == []


def test_calls_left_open_count_as_ended_a_grace_period_after_they_began(db: sqlite3.Connection, data_dir: Path) -> None:
    # Open calls (ended_at NULL): a young one may be running; one far older than any call
    # can last was left open by a server that was killed and never restarted.
    grace_days = OPEN_CALL_GRACE_S / DAY_S
    logged(db, data_dir, "c_open_young", 91)
    logged(db, data_dir, "c_open_dead", 90 + grace_days + 1)
    logged(db, data_dir, "c_running", 90 + grace_days + 1)
    db.execute("UPDATE calls SET ended_at = NULL")

    report = purge(db, data_dir, 90, USER, running=["c_running"], now=NOW)

    assert [c.call_id for c in report.calls] == ["c_open_dead"]
    assert report.calls[0].ended_at is None
    assert rows(db, "c_open_dead")["calls"] == 0 and not call_dir(data_dir, "c_open_dead").exists()
    for kept in ("c_open_young", "c_running"):
        assert rows(db, kept)["calls"] == 1 and call_dir(data_dir, kept).is_dir()


def test_orphaned_folders_are_swept_once_older_than_the_cutoff(db: sqlite3.Connection, data_dir: Path) -> None:
    for call_id in ("c_orphan_old", "c_orphan_young", "c_kept"):
        logged(db, data_dir, call_id, 100)
    age_files(call_dir(data_dir, "c_orphan_old"), 100)
    age_files(call_dir(data_dir, "c_kept"), 100)
    # What a crash between the rows' commit and the folders' removal leaves behind.
    db.execute("DELETE FROM calls WHERE call_id IN ('c_orphan_old', 'c_orphan_young')")
    empty = data_dir / "calls" / "c_emptied"  # a removal cut short: no files left
    empty.mkdir()

    report = purge(db, data_dir, 90, USER, running=["c_kept"], now=NOW)

    orphans = sorted((c.call_id, c.files) for c in report.calls if c.orphan)
    assert orphans == [("c_emptied", 0), ("c_orphan_old", 3)]
    assert not call_dir(data_dir, "c_orphan_old").exists() and not empty.exists()
    assert folder_size(call_dir(data_dir, "c_orphan_young"))[0] == 3  # its files are new: kept
    assert call_dir(data_dir, "c_kept").is_dir()
    assert accesses(db, "c_orphan_old")[0].detail["orphan"] is True


def test_a_folder_that_cannot_be_removed_is_swept_by_the_next_purge(
    db: sqlite3.Connection, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged(db, data_dir, "c_old", 100)
    age_files(call_dir(data_dir, "c_old"), 100)

    def refuse(path: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    with monkeypatch.context() as m:
        m.setattr(retention.shutil, "rmtree", refuse)
        first = purge(db, data_dir, 90, USER, now=NOW)
    assert [c.call_id for c in first.calls] == ["c_old"] and len(first.errors) == 1
    assert rows(db, "c_old")["calls"] == 0 and call_dir(data_dir, "c_old").is_dir()

    second = purge(db, data_dir, 90, USER, now=NOW)
    assert [(c.call_id, c.orphan) for c in second.calls] == [("c_old", True)] and second.errors == []
    assert not call_dir(data_dir, "c_old").exists()


def test_cli_purge_dry_run_then_purge_and_days_zero_keeps_everything(
    db: sqlite3.Connection, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logged(db, data_dir, "c_old", 40)
    logged(db, data_dir, "c_new", 5)
    keep = tmp_path / "keep.toml"
    keep.write_text("[retention]\ndays = 0\n")

    assert cli.main(["calls", "purge", "--config", str(keep), "--data-dir", str(data_dir)]) == 0
    assert "kept for ever" in capsys.readouterr().out
    assert cli.main(["calls", "purge", "--data-dir", str(data_dir), "--days", "0"]) == 0
    assert cli.main(["calls", "purge", "--data-dir", str(data_dir)]) == 0  # default 90 days: nothing that old
    assert "purged 0 calls" in capsys.readouterr().out
    assert rows(db, "c_old")["calls"] == 1

    assert cli.main(["calls", "purge", "--data-dir", str(data_dir), "--days", "30", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would purge c_old\t" in out and "c_new" not in out and "would purge 1 calls" in out
    assert rows(db, "c_old")["calls"] == 1

    assert cli.main(["calls", "purge", "--config", str(keep), "--data-dir", str(data_dir), "--days", "30"]) == 0
    assert "purged c_old\t" in capsys.readouterr().out
    assert rows(db, "c_old")["calls"] == 0 and rows(db, "c_new")["calls"] == 1
    assert accesses(db, "c_old")[0].user_name.startswith("cli:")

    assert cli.main(["calls", "purge", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(ValueError):
        purge(db, data_dir, 0, USER)


async def test_the_server_purges_periodically_in_a_thread_and_survives_a_failure(
    db: sqlite3.Connection, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    logged(db, data_dir, "c_old", 100)
    logged(db, data_dir, "c_running", 100)
    db.execute("UPDATE calls SET ended_at = NULL WHERE call_id = 'c_running'")
    db.execute("UPDATE calls SET created_at = created_at - ? WHERE call_id = 'c_running'", (OPEN_CALL_GRACE_S,))
    config = dataclasses.replace(
        Config(), server=ServerConfig(data_dir=str(data_dir)), retention=RetentionConfig(days=90, purge_interval_s=0.05)
    )
    threads: list[bool] = []
    real_purge = retention.purge

    def flaky_purge(*args: Any, **kwargs: Any) -> retention.PurgeReport:
        threads.append(threading.current_thread() is not threading.main_thread())  # off the event loop
        if len(threads) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real_purge(*args, **kwargs)

    monkeypatch.setattr(retention, "purge", flaky_purge)
    purger = PeriodicPurge(config, running=lambda: ["c_running"])
    purger.start()
    try:
        for _ in range(200):
            if rows(db, "c_old")["calls"] == 0:
                break
            await asyncio.sleep(0.02)
    finally:
        await purger.stop()
    assert len(threads) >= 2 and all(threads)
    assert rows(db, "c_old")["calls"] == 0 and not call_dir(data_dir, "c_old").exists()
    assert rows(db, "c_running")["calls"] == 1
    purge_log = accesses(db, "c_old")[0]
    assert (purge_log.action, purge_log.user_name, purge_log.role) == ("purge", "server", "retention")
    assert purge_log.detail["files"] == 3

    calls_before = len(threads)
    await asyncio.sleep(0.15)
    assert len(threads) == calls_before  # stopped: no purge after stop()


def test_the_server_does_not_purge_when_retention_is_off(data_dir: Path) -> None:
    for days, interval in ((0, 3600.0), (90, 0.0)):
        config = dataclasses.replace(Config(), retention=RetentionConfig(days=days, purge_interval_s=interval))
        assert not PeriodicPurge(config, running=lambda: []).enabled


def test_a_running_server_purges_on_its_own(tmp_path: Path) -> None:
    server = prepare_server(tmp_path, extra="[retention]\ndays = 30\npurge_interval_s = 0.2\n")
    db = open_database(database_file(server.data_dir))
    try:
        logged(db, server.data_dir, "c_old", 40)
        logged(db, server.data_dir, "c_new", 4)
        server.start()
        try:
            deadline = time.monotonic() + 20
            while rows(db, "c_old")["calls"] and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            server_log = server.stop()
        assert rows(db, "c_old")["calls"] == 0, server_log[-2000:]
        assert not call_dir(server.data_dir, "c_old").exists() and call_dir(server.data_dir, "c_new").is_dir()
        assert "retention: purged 1 calls" in server_log and "Traceback" not in server_log
    finally:
        db.close()
