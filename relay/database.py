"""The SQLite database: one file under the data folder, WAL, schema created on open.

Every statement is short and indexed, so they run on the event loop; a call's media
path never touches the database.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

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
"""


def open_database(path: str | Path) -> sqlite3.Connection:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # The database holds password hashes and (later) call records: owner-only.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.executescript(SCHEMA)
    return conn
