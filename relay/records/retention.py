"""Retention: ended calls older than retention.days are deleted with everything logged.

A purge deletes a call's rows (the call, its config snapshot, recordings, words,
decisions, events, QA marks and replays: all ON DELETE CASCADE from `calls`) and its
folder of recordings, and writes one access_log row per call (action "purge"), which
outlives the call: the audit trail says when and by whom a call's data was destroyed.

Order, for a crash at any point: one short transaction per call deletes its rows and
logs the purge, then the folder goes. A crash between the two leaves a folder with no
row; every purge first sweeps such orphaned folders under calls/, so the recordings
never outlive their rows for more than one purge interval.

Calls left open: the server ends the calls a killed server left open when it starts
(relay/calls/registry.py), but a server that never restarts leaves them open, and the command
line cannot tell a running call from a dead one. So a call with no ended_at counts as
having ended OPEN_CALL_GRACE_S after it was created, well past any call's real length;
the server's own purge also skips the calls it is running.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from relay.config import Config
from relay.records.access_log import cli_user, record_access
from relay.records.call_log import call_dir
from relay.records.database import connect, open_call_log
from relay.records.s3_recordings import S3Recordings, StoreError, recording_store

log = logging.getLogger(__name__)

DAY_S = 86400.0
OPEN_CALL_GRACE_S = 7 * DAY_S
SERVER_USER = ("server", "retention")  # user_name and role of the server's own purges

# Effective end of a call: an open one ends OPEN_CALL_GRACE_S after its creation.
_ENDED = "COALESCE(ended_at, created_at + :grace)"


@dataclass(frozen=True)
class PurgedCall:
    call_id: str
    created_at: float | None  # None for an orphaned folder (its row is gone)
    ended_at: float | None  # None: left open (or an orphaned folder)
    files: int
    bytes: int

    @property
    def orphan(self) -> bool:
        return self.created_at is None


@dataclass
class PurgeReport:
    days: int
    cutoff: float  # calls that ended before this wall-clock time are purged
    dry_run: bool
    calls: list[PurgedCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # folders that could not be removed (retried next time)

    @property
    def files(self) -> int:
        return sum(c.files for c in self.calls)

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.calls)


def purge(
    db: sqlite3.Connection,
    data_dir: str | Path,
    days: int,
    user: tuple[str, str],
    *,
    dry_run: bool = False,
    running: Collection[str] = (),
    now: float | None = None,
    stop: threading.Event | None = None,
    store: S3Recordings | None = None,
) -> PurgeReport:
    """Deletes the calls that ended more than `days` ago (days > 0), rows and recordings.

    Blocking (file and database work): the server runs it in a thread, on a connection
    of its own, since each call's transaction must not take in the event loop's writes.
    `running` names calls never to touch; `stop` ends the purge between two calls.
    With `store` (recordings.backend = "s3") the call's objects there go first: a store
    that cannot delete them now keeps the call (rows and all) for the next purge.
    """
    if days <= 0:
        raise ValueError("days must be > 0 (retention.days = 0 keeps calls for ever)")
    now = time.time() if now is None else now
    report = PurgeReport(days, now - days * DAY_S, dry_run)
    # Orphans first: a folder this run fails to remove is retried next run, not twice now.
    for folder in _orphaned_folders(db, data_dir, report.cutoff, running):
        if stop is not None and stop.is_set():
            return report
        files, size = _measure(folder)
        call = PurgedCall(folder.name, None, None, files, size)
        if not dry_run:
            if not _remove(folder, report):
                continue
            record_access(
                db,
                *user,
                call.call_id,
                "purge",
                {"orphan": True, "files": files, "bytes": size, "retention_days": days},
            )
        report.calls.append(call)
    for row in _expired(db, report.cutoff, running):
        if stop is not None and stop.is_set():
            return report
        found = _folder(data_dir, row["call_id"])
        files, size = _measure(found) if found is not None else (0, 0)
        stored: list[tuple[str, int]] = []
        if store is not None and found is not None:
            try:
                stored = store.call_objects(row["call_id"])
                if not dry_run:
                    store.delete([key for key, _ in stored])
            except StoreError as exc:
                log.error("retention: call %s kept for the next purge: %s", row["call_id"], exc)
                report.errors.append(f"{row['call_id']}: {exc}")
                continue
        files, size = files + len(stored), size + sum(n for _, n in stored)
        call = PurgedCall(row["call_id"], row["created_at"], row["ended_at"], files, size)
        if not dry_run:
            if not _delete_rows(db, call, report, user):
                continue  # it changed since the select (an open call that ended)
            if found is not None:
                _remove(found, report)
        report.calls.append(call)
    return report


def _expired(db: sqlite3.Connection, cutoff: float, running: Collection[str]) -> list[sqlite3.Row]:
    rows = db.execute(
        f"SELECT call_id, created_at, ended_at FROM calls WHERE {_ENDED} < :cutoff ORDER BY created_at",
        {"grace": OPEN_CALL_GRACE_S, "cutoff": cutoff},
    ).fetchall()
    return [r for r in rows if r["call_id"] not in running]


def _delete_rows(db: sqlite3.Connection, call: PurgedCall, report: PurgeReport, user: tuple[str, str]) -> bool:
    """One call's rows and its access_log row, together or not at all."""
    db.execute("BEGIN IMMEDIATE")
    try:
        deleted = db.execute(
            f"DELETE FROM calls WHERE call_id = :id AND {_ENDED} < :cutoff",
            {"id": call.call_id, "grace": OPEN_CALL_GRACE_S, "cutoff": report.cutoff},
        ).rowcount
        if deleted:
            record_access(
                db,
                *user,
                call.call_id,
                "purge",
                {
                    "created_at": call.created_at,
                    "ended_at": call.ended_at,
                    "files": call.files,
                    "bytes": call.bytes,
                    "retention_days": report.days,
                },
            )
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return bool(deleted)


def _orphaned_folders(
    db: sqlite3.Connection, data_dir: str | Path, cutoff: float, running: Collection[str]
) -> list[Path]:
    """Folders under calls/ with no row, whose newest file is older than the cutoff (or empty).

    The server inserts a call's row before its folder exists, so a folder without a row
    is never a call in progress. Age is the newest *file's* mtime: a removal cut short
    has touched the folder's own mtime.
    """
    root = Path(data_dir) / "calls"
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    except FileNotFoundError:
        return []
    known = {r[0] for r in db.execute("SELECT call_id FROM calls")}
    return [
        p
        for p in folders
        if p.name not in known and p.name not in running and _newest_file_mtime(p, default=0.0) < cutoff
    ]


def _folder(data_dir: str | Path, call_id: str) -> Path | None:
    """The call's folder, when the id is one plain name (never a path out of calls/)."""
    folder = call_dir(data_dir, call_id)
    return folder if folder.name == call_id and call_id not in (".", "..") else None


def _files(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    except OSError:
        return []


def _measure(folder: Path) -> tuple[int, int]:
    """Files and bytes under `folder` (0, 0 when it is missing)."""
    sizes = []
    for p in _files(folder):
        try:
            sizes.append(p.lstat().st_size)
        except OSError:
            pass
    return len(sizes), sum(sizes)


def _newest_file_mtime(folder: Path, default: float) -> float:
    times = []
    for p in _files(folder):
        try:
            times.append(p.lstat().st_mtime)
        except OSError:
            pass
    return max(times, default=default)


def _remove(folder: Path, report: PurgeReport) -> bool:
    try:
        shutil.rmtree(folder)
    except FileNotFoundError:
        pass
    except OSError as exc:
        # The rows are gone: the folder is now an orphan, swept by the next purge.
        log.error("retention: could not remove %s: %s", folder, exc)
        report.errors.append(f"{folder}: {exc}")
        return False
    return True


# ---------------------------------------------------------------------- the server


class PeriodicPurge:
    """The server's purge: at start, then every retention.purge_interval_s, in a thread.

    Off when retention.days or purge_interval_s is 0. A failing purge is logged and
    retried next interval; it never stops the server.
    """

    def __init__(self, config: Config, running: Callable[[], Collection[str]]) -> None:
        self._data_dir = Path(config.server.data_dir)
        self._url = config.database.url
        self._days = config.retention.days
        self._interval_s = config.retention.purge_interval_s
        self._running = running
        self._recordings = config.recordings
        self._stop = threading.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self._days > 0 and self._interval_s > 0

    def start(self) -> None:
        if self.enabled:
            self._task = asyncio.ensure_future(self._run_forever())

    async def stop(self) -> None:
        self._stop.set()  # a purge in its thread stops after the call it is on
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run_once(self) -> PurgeReport | None:
        """None when it failed (logged)."""
        running = set(self._running())  # read on the event loop, where the calls live
        try:
            report = await asyncio.to_thread(self._purge, running)
        except Exception:  # noqa: BLE001 - a failing purge must never stop the server
            log.exception("retention: purge failed; retrying in %.0f s", self._interval_s)
            return None
        if report.calls:  # folders it could not remove are logged as errors by purge()
            log.info(
                "retention: purged %d calls (%d files, %d bytes) ended before %s",
                len(report.calls),
                report.files,
                report.bytes,
                _utc(report.cutoff),
            )
        return report

    async def _run_forever(self) -> None:
        while True:
            await self.run_once()
            await asyncio.sleep(self._interval_s)

    def _purge(self, running: set[str]) -> PurgeReport:
        db = connect(self._data_dir, self._url)
        try:
            store = recording_store(self._recordings)
            return purge(db, self._data_dir, self._days, SERVER_USER, running=running, stop=self._stop, store=store)
        finally:
            db.close()


# ---------------------------------------------------------------------- the command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--days",
        type=_days,
        help="purge calls that ended more than N days ago (overrides retention.days; 0 keeps everything)",
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")


def main(args: argparse.Namespace, config: Config) -> int:
    data_dir = Path(args.data_dir or config.server.data_dir)
    days = config.retention.days if args.days is None else args.days
    if days == 0:
        print("retention days = 0: calls are kept for ever; nothing purged")
        return 0
    db = open_call_log(data_dir, config.database.url)  # relay/cli.py reports a missing one
    try:
        report = purge(db, data_dir, days, cli_user(), dry_run=args.dry_run, store=recording_store(config.recordings))
    except sqlite3.Error as exc:  # e.g. the server held the database past busy_timeout
        print(f"callguard: purge stopped, run it again: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    _print_report(report)
    return 1 if report.errors else 0


def _print_report(report: PurgeReport) -> None:
    verb = "would purge" if report.dry_run else "purged"
    for call in report.calls:
        what = (
            "orphaned folder"
            if call.orphan
            else f"ended {_utc(call.ended_at)}"
            if call.ended_at is not None
            else f"left open, created {_utc(call.created_at or 0.0)}"
        )
        print(f"{verb} {call.call_id}\t{what}\t{call.files} files\t{call.bytes} bytes")
    print(
        f"{verb} {len(report.calls)} calls that ended before {_utc(report.cutoff)} ({report.days} days): "
        f"{report.files} files, {report.bytes} bytes"
    )
    for error in report.errors:
        print(f"callguard: not removed (retried next purge): {error}", file=sys.stderr)


def _days(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("days must be >= 0")
    return value


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
