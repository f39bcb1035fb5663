"""The database thread: every statement a server issues runs on one thread of its own,
so a slow or hung database (a held lock, a stalled PostgreSQL) never holds the event loop
that paces every call's audio.

    database = DatabaseThread(db, queue_max=50_000, spill=data_dir / "db-spill.jsonl")
    database.write("INSERT INTO call_events ...", params)   # queued, in order; returns at once
    user = await database.run(accounts.session_user, token)  # fn(*args) on the thread, awaited

Writes are queued in the order they were made and applied one by one. A write that fails
for a passing reason (sqlite3.OperationalError: locked, a statement timeout, a connection
lost) is retried, with backoff, until it succeeds: what a call logs waits for the database
rather than being lost. A write the database refuses outright (an IntegrityError: the
same row twice) is a bug, not an outage: it is logged with its statement and counted.
Calls through `run` are ordered after the writes queued before them (a read sees them)
and are not retried: their caller gets the error, or sqlite3.OperationalError after
read_timeout_s.

The queue is bounded. When it is full (the database has been away for long: at 56
writes a second, a full node, 50,000 is a quarter of an hour), the writes that follow go
to a spill file on the local disk, in order, and the thread applies that file once the
queue has drained; the backlog is in /metrics (callguard_database_*) and the log says when
spilling starts and ends. At close the thread gets close_timeout_s to apply what is
queued; what is left (the database is still away) is spilled too, and the next start
applies it before anything else. So nothing a call logged is dropped; the cost of a long
outage is disk, not memory, and rows that show up in QA late. A crash while a spill is
being applied may apply some of its rows twice (at least once, never lost).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import concurrent.futures
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
# Retry backoff for a write the database cannot take now.
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0
# Spilled writes are read back this many at a time (the spill file may be large).
SPILL_BATCH = 1000


@dataclass(frozen=True)
class RowId:
    """In a write's params: the row id an earlier write remembered under `key`."""

    key: str


@dataclass(frozen=True)
class Statement:
    sql: str
    params: Sequence[Any] = ()
    many: bool = False  # params is a list of rows, applied in one transaction
    key: str | None = None  # remember the inserted row's id under this key (see RowId)


class Writes(Protocol):
    """Where a call log's rows go: the database thread in the server, the database itself
    in a command with no event loop (DirectWrites)."""

    def write(self, sql: str, params: Sequence[Any] = (), *, many: bool = False, key: str | None = None) -> None: ...


def apply(db: sqlite3.Connection, statement: Statement, row_ids: dict[str, int]) -> None:
    """One write, with its RowId params filled in and its own row id remembered."""

    def filled(params: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(row_ids.pop(p.key, None) if isinstance(p, RowId) else p for p in params)

    if statement.many:
        db.execute("BEGIN")
        try:
            db.executemany(statement.sql, [filled(p) for p in statement.params])
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return
    cursor = db.execute(statement.sql, filled(statement.params))
    if statement.key is not None and cursor.lastrowid is not None:
        row_ids[statement.key] = cursor.lastrowid


class DirectWrites:
    """Writes applied at once on the caller's thread: for the commands and tools that
    have no event loop to keep free (and the tests that read rows straight back)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._row_ids: dict[str, int] = {}

    def write(self, sql: str, params: Sequence[Any] = (), *, many: bool = False, key: str | None = None) -> None:
        try:
            apply(self._db, Statement(sql, params, many, key), self._row_ids)
        except sqlite3.Error:
            log.exception("call log write failed: %s", sql)


@dataclass
class DatabaseStats:
    queued: int  # writes waiting in memory (the one being tried included)
    queue_max: int
    spilled: int  # writes waiting in the spill file
    written: int
    retries: int
    failed: int  # refused by the database (IntegrityError): logged with the statement
    oldest_s: float  # how long the oldest waiting write has waited


@dataclass
class _Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: concurrent.futures.Future[Any]


class DatabaseThread:
    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        queue_max: int,
        spill: Path,
        read_timeout_s: float = 10.0,
        name: str = "database",
    ) -> None:
        self.db = db
        self._queue_max = queue_max
        self._spill = spill
        self._read_timeout_s = read_timeout_s
        self._jobs: collections.deque[tuple[float, Statement | _Call]] = collections.deque()
        self._writes = 0  # of the jobs, how many are writes (the bound counts writes only)
        self._cond = threading.Condition()
        self._spilled = 0
        self._spill_offset = 0  # bytes of the spill file already applied
        self._spill_since = 0.0
        self._written = self._retries = self._failed = 0
        self._row_ids: dict[str, int] = {}
        self._closing = False
        self._give_up_at = float("inf")  # at close: stop retrying then and spill the rest
        self._current: Statement | None = None
        if spill.exists() and spill.stat().st_size > 0:
            self._spilled = sum(1 for _ in spill.open("rb"))
            self._spill_since = time.monotonic()
            log.warning("database: %d writes spilled by the last run are applied first (%s)", self._spilled, spill)
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # ----------------------------------------------------------- the loop's side

    def write(self, sql: str, params: Sequence[Any] = (), *, many: bool = False, key: str | None = None) -> None:
        """Queue a write; never blocks (a full queue spills to disk)."""
        statement = Statement(sql, params, many, key)
        with self._cond:
            if self._closing and not self._thread.is_alive():
                self._spill_out([statement])
                return
            if self._spilled or self._writes >= self._queue_max:
                if not self._spilled:
                    self._spill_since = time.monotonic()
                    log.error(
                        "database: %d writes are waiting (the queue is full); the rest go to %s until it catches up",
                        self._writes,
                        self._spill,
                    )
                self._spill_out([statement])
            else:
                self._jobs.append((time.monotonic(), statement))
                self._writes += 1
            self._cond.notify()

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """fn(*args, **kwargs) on the database thread, after the writes queued before it."""
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        with self._cond:
            if self._closing:
                raise sqlite3.OperationalError("the database is closing")
            self._jobs.append((time.monotonic(), _Call(fn, args, kwargs, future)))
            self._cond.notify()
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self._read_timeout_s)
        except TimeoutError:
            raise sqlite3.OperationalError(f"the database did not answer in {self._read_timeout_s:g} s") from None

    def stats(self) -> DatabaseStats:
        with self._cond:
            oldest = next((at for at, job in self._jobs if isinstance(job, Statement)), None)
            if oldest is None and self._spilled:
                oldest = self._spill_since
            return DatabaseStats(
                self._writes + (self._current is not None),
                self._queue_max,
                self._spilled,
                self._written,
                self._retries,
                self._failed,
                0.0 if oldest is None else time.monotonic() - oldest,
            )

    def close(self, timeout_s: float) -> None:
        """Apply what is queued, for timeout_s at most; spill what is left; close the database."""
        with self._cond:
            self._closing = True
            self._give_up_at = time.monotonic() + timeout_s
            self._cond.notify()
        self._thread.join(timeout_s + 1.0)
        with self._cond:
            left = [job for _, job in self._jobs if isinstance(job, Statement)]
            if self._thread.is_alive() and self._current is not None:
                # Stuck in a statement the database never answers: it may yet have been
                # applied, so the spill holds it again (at least once).
                left.insert(0, self._current)
            self._refuse_calls()
            self._jobs.clear()
            self._writes = 0
            if left:
                # Older than anything spilled: they go to the spill file's head.
                self._spill_before(left)
                log.error("database: %d writes not applied before the close; %s keeps them", len(left), self._spill)
        if not self._thread.is_alive():
            try:
                self.db.close()
            except sqlite3.Error:
                log.exception("database: close failed")

    # ------------------------------------------------------------ the thread

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._jobs and not self._spilled and not self._closing:
                    self._cond.wait()
                if self._jobs:
                    _, job = self._jobs.popleft()
                    if isinstance(job, _Call):
                        self._current = None
                    else:
                        self._writes -= 1
                        self._current = job
                elif self._spilled:
                    job = None
                else:
                    return  # closing, and everything is applied
            if isinstance(job, _Call):
                self._call(job)
            elif job is not None:
                if not self._apply(job):
                    with self._cond:  # closing with the database still away: close() spills it
                        self._jobs.appendleft((0.0, job))
                        self._writes += 1
                        self._current = None
                    return
            elif not self._apply_spill():
                return
            with self._cond:
                self._current = None

    def _apply_spill(self) -> bool:
        """The next batch of spilled writes; False: closing and the database still away."""
        with self._cond:
            batch = self._read_spill()
        for statement, end in batch:
            if not self._apply(statement):
                return False
            with self._cond:
                self._spill_offset = end
                self._spilled -= 1
                if self._spilled == 0:
                    self._spill.unlink(missing_ok=True)
                    self._spill_offset = 0
                    log.warning("database: the spilled writes are applied; writes are queued again")
        return True

    def _call(self, job: _Call) -> None:
        if not job.future.set_running_or_notify_cancel():
            return  # its caller stopped waiting
        try:
            job.future.set_result(job.fn(*job.args, **job.kwargs))
        except BaseException as exc:
            job.future.set_exception(exc)

    def _apply(self, statement: Statement) -> bool:
        """Apply one write, retrying a passing failure; False: closing and still failing."""
        wait = RETRY_FIRST_S
        while True:
            try:
                apply(self.db, statement, self._row_ids)
                self._written += 1
                return True
            except sqlite3.OperationalError as exc:
                self._retries += 1
                if self._retries % 100 == 1:
                    log.warning(
                        "database: a write failed (%s); retrying, in order (%d retries so far)", exc, self._retries
                    )
                if time.monotonic() + wait > self._give_up_at:
                    return False
                time.sleep(wait)
                wait = min(wait * 2, RETRY_MAX_S)
            except sqlite3.Error as exc:
                self._failed += 1
                log.error(
                    "database: a write was refused and is not retried: %s; %s %r", exc, statement.sql, statement.params
                )
                return True

    # ------------------------------------------------------------ the spill file

    def _spill_out(self, statements: list[Statement]) -> None:
        """Append writes to the spill file (caller holds the lock)."""
        try:
            with self._spill.open("ab") as f:
                f.write(b"".join(_line(s) for s in statements))
        except OSError:
            # No disk either: the log is the last place the row can go, whole.
            for s in statements:
                log.critical("database: a write is lost (spill file %s failed): %s %r", self._spill, s.sql, s.params)
            return
        self._spilled += len(statements)

    def _read_spill(self) -> list[tuple[Statement, int]]:
        """The next spilled writes, in order, each with the file offset after it (caller
        holds the lock)."""
        out = []
        with self._spill.open("rb") as f:
            f.seek(self._spill_offset)
            for _ in range(SPILL_BATCH):
                line = f.readline()
                if not line.endswith(b"\n"):
                    break
                sql, params, many, key = json.loads(line)
                out.append((Statement(sql, _decode(params, many), many, key), f.tell()))
        if not out:  # the count and the file disagree (a torn last line): start afresh
            self._spill.unlink(missing_ok=True)
            self._spill_offset = self._spilled = 0
        return out

    def _spill_before(self, statements: list[Statement]) -> None:
        """Put writes ahead of what the spill file still holds (caller holds the lock)."""
        rest = b""
        if self._spill.exists():
            rest = self._spill.read_bytes()[self._spill_offset :]
        tmp = self._spill.with_suffix(".tmp")
        try:
            tmp.write_bytes(b"".join(_line(s) for s in statements) + rest)
            tmp.replace(self._spill)
        except OSError:
            for s in statements:
                log.critical("database: a write is lost (spill file %s failed): %s %r", self._spill, s.sql, s.params)
            return
        self._spill_offset = 0
        self._spilled += len(statements)

    def _refuse_calls(self) -> None:
        for _, job in self._jobs:
            if isinstance(job, _Call) and job.future.set_running_or_notify_cancel():
                job.future.set_exception(sqlite3.OperationalError("the database closed"))


def _line(s: Statement) -> bytes:
    return json.dumps([s.sql, _encode(s.params, s.many), s.many, s.key], separators=(",", ":")).encode() + b"\n"


def _encode(params: Sequence[Any], many: bool) -> Any:
    def one(v: Any) -> Any:
        if isinstance(v, bytes):
            return {"b": base64.b64encode(v).decode()}
        if isinstance(v, RowId):
            return {"row": v.key}
        return v

    return [[one(v) for v in row] for row in params] if many else [one(v) for v in params]


def _decode(params: Any, many: bool) -> Any:
    def one(v: Any) -> Any:
        if isinstance(v, dict):
            return base64.b64decode(v["b"]) if "b" in v else RowId(v["row"])
        return v

    return [tuple(one(v) for v in row) for row in params] if many else tuple(one(v) for v in params)
