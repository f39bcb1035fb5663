"""The database: SQLite, one file under the data folder (WAL), by default; PostgreSQL when
database.url names one (relay/records/postgres.py), shared by several relay nodes. The
schema is brought up to date on open (relay/records/migrations.py).

In the server every statement runs on the database thread (relay/records/db_thread.py),
never on the event loop that paces the calls' audio; the commands (export, purge, replay,
users) use the connection directly.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import cast

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name        TEXT PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('counselor', 'supervisor', 'qa')),
    pw_salt     BLOB NOT NULL,
    pw_hash     BLOB NOT NULL,
    pw_n        INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    disabled    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash  BLOB PRIMARY KEY,
    user_name   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    expires_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS calls (
    call_id     TEXT PRIMARY KEY,
    counselor   TEXT NOT NULL,
    created_at  REAL NOT NULL,
    ended_at    REAL,
    end_reason  TEXT,
    delay_s     REAL NOT NULL,
    invite_hash BLOB NOT NULL UNIQUE,
    invite_expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_open ON calls(ended_at);
CREATE INDEX IF NOT EXISTS calls_created ON calls(created_at);

-- The call log (relay/records/call_log.py), written as the call runs. Times: `at` is wall clock
-- (time.time()), `media_s` and word/span times are call media seconds.
CREATE TABLE IF NOT EXISTS call_config (
    call_id     TEXT PRIMARY KEY REFERENCES calls(call_id) ON DELETE CASCADE,
    at          REAL NOT NULL,
    config      TEXT NOT NULL,  -- JSON: the config in force, secrets left out
    versions    TEXT NOT NULL   -- JSON: speech model, keyword lists, classifier
);
CREATE TABLE IF NOT EXISTS call_recordings (
    call_id     TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
    stream      TEXT NOT NULL CHECK (stream IN ('customer', 'delivered', 'counselor')),
    path        TEXT NOT NULL,  -- relative to the data folder
    channels    INTEGER NOT NULL,
    started_at  REAL NOT NULL,  -- wall clock of the first packet
    media_s     REAL,           -- call media time at the file's sample 0
    duration_s  REAL,           -- set when the call ends
    packets     INTEGER,
    filled_s    REAL,           -- gaps filled with concealment
    PRIMARY KEY (call_id, stream)
);
CREATE TABLE IF NOT EXISTS call_words (
    call_id     TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
    start       REAL NOT NULL,
    end         REAL NOT NULL,
    text        TEXT NOT NULL,
    confirmed   INTEGER NOT NULL,
    probability REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS call_words_call ON call_words(call_id, start);
CREATE TABLE IF NOT EXISTS call_decisions (
    call_id     TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
    span_id     INTEGER NOT NULL,
    start       REAL NOT NULL,  -- the muted span, padded
    end         REAL NOT NULL,
    word_start  REAL NOT NULL,  -- the words that carried the hits
    word_end    REAL NOT NULL,
    words       TEXT NOT NULL,  -- JSON list of the words' text
    provisional INTEGER NOT NULL,
    categories  TEXT NOT NULL,  -- JSON list
    hits        TEXT NOT NULL,  -- JSON: source, category, score, threshold, detail, version
    decided_at  REAL NOT NULL,
    late_s      REAL NOT NULL DEFAULT 0,
    lifted_at   REAL,
    PRIMARY KEY (call_id, span_id)
);
CREATE TABLE IF NOT EXISTS call_events (
    id          INTEGER PRIMARY KEY,
    call_id     TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
    at          REAL NOT NULL,
    media_s     REAL,
    kind        TEXT NOT NULL,
    detail      TEXT NOT NULL   -- JSON
);
CREATE INDEX IF NOT EXISTS call_events_call ON call_events(call_id, at);

-- QA (relay/web/qa_api.py): marks on a logged call, and replays under another config
-- (offline/replay.py). Both go with the call when retention purges it.
CREATE TABLE IF NOT EXISTS qa_marks (
    mark_id     INTEGER PRIMARY KEY,
    call_id     TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('false_positive', 'missed_abuse')),
    start       REAL NOT NULL,  -- media seconds
    end         REAL NOT NULL,
    span_id     INTEGER,        -- the decision marked a false positive
    text        TEXT NOT NULL,  -- the logged words under [start, end] when marked
    note        TEXT NOT NULL DEFAULT '',
    by_user     TEXT NOT NULL,
    at          REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS qa_marks_call ON qa_marks(call_id, start);
CREATE TABLE IF NOT EXISTS call_replays (
    replay_id   INTEGER PRIMARY KEY,
    call_id     TEXT NOT NULL REFERENCES calls(call_id) ON DELETE CASCADE,
    at          REAL NOT NULL,
    by_user     TEXT NOT NULL,
    mode        TEXT NOT NULL CHECK (mode IN ('audio', 'transcript')),
    config      TEXT NOT NULL,  -- JSON: the replay's config, secrets left out
    versions    TEXT NOT NULL,  -- JSON: the checks (and speech model) it ran
    words       TEXT NOT NULL,  -- JSON [{text, start, end}]: the words it judged
    spans       TEXT NOT NULL,  -- JSON: its final mute spans, shaped as call_decisions rows
    diff        TEXT NOT NULL   -- JSON {added, removed, changed} against the call's own spans
);
CREATE INDEX IF NOT EXISTS call_replays_call ON call_replays(call_id, at);

-- Every QA or supervisor access to a call (view, play, export, ...), and the CLI's.
-- No foreign key: the audit trail outlives the call it names.
CREATE TABLE IF NOT EXISTS access_log (
    id          INTEGER PRIMARY KEY,
    at          REAL NOT NULL,
    user_name   TEXT NOT NULL,
    role        TEXT NOT NULL,
    call_id     TEXT,
    action      TEXT NOT NULL,
    detail      TEXT NOT NULL   -- JSON
);
CREATE INDEX IF NOT EXISTS access_log_call ON access_log(call_id, at);
"""


DATABASE_NAME = "callguard.db"


def database_file(data_dir: str | Path) -> Path:
    return Path(data_dir) / DATABASE_NAME


def connect(data_dir: str | Path, url: str = "") -> sqlite3.Connection:
    """The server's database: PostgreSQL at `url` (database.url), else SQLite in data_dir."""
    if url:
        from relay.records import postgres

        # It takes the calls the call log makes of a sqlite3.Connection (see its docstring).
        return cast(sqlite3.Connection, postgres.connect(url))
    return open_database(database_file(data_dir))


class NoCallLog(Exception):
    """A data folder without a database: a mistyped --data-dir, not a log to start afresh."""


def open_call_log(data_dir: str | Path, url: str = "") -> sqlite3.Connection:
    """The existing database of a server's data folder, for the commands that read the call
    log (export, purge, replay); unlike open_database it never creates one."""
    if url:
        return connect(data_dir, url)
    path = database_file(data_dir)
    if not path.is_file():
        raise NoCallLog(f"no call log in {data_dir} (no {path.name}; --data-dir names the server's data folder)")
    return open_database(path)


def open_database(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    # A new data folder is the server's alone: it holds recordings and the call log.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # The database holds password hashes and call records: owner-only (SQLite gives its
    # -wal and -shm files the database's mode). Only a new file is created here: closing
    # a descriptor of a file this process already has open in SQLite would drop SQLite's
    # POSIX locks on it (a second connection, e.g. an export's thread, breaks the first).
    if not path.exists():
        try:
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    from relay.records.migrations import migrate

    migrate(conn)
    return conn
