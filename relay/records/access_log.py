"""Who looked at which call, and when: every QA or supervisor view, play and export.

Recordings are personal data; the access log is how a data-protection officer answers
"who listened to this call". It is written before the data is handed out (an access that
cannot be logged is refused), and it has no foreign key to the calls: it outlives the
calls that retention purges.
"""

from __future__ import annotations

import getpass
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

# "list", "view", "audio", "export", "mark", "unmark", "marks_export", "replay", "access_log";
# accounts: "account_locked", "account_unlocked", "account_disabled", "account_enabled",
# "sessions_revoked", "password_reset", "password_changed"; "config_reloaded",
# "config_reload_refused" (SIGHUP, relay/calls/config_reload.py); "call_settings_changed",
# "default_settings_changed" (relay/web/settings_api.py).
Action = str


@dataclass(frozen=True)
class Access:
    id: int
    at: float
    user_name: str
    role: str
    call_id: str | None
    action: str
    detail: dict[str, Any]


def record_access(
    db: sqlite3.Connection,
    user_name: str,
    role: str,
    call_id: str | None,
    action: Action,
    detail: dict[str, Any] | None = None,
    now: float | None = None,
) -> None:
    """Raises sqlite3.Error when it cannot be written: the caller must not hand the data out."""
    db.execute(
        "INSERT INTO access_log (at, user_name, role, call_id, action, detail) VALUES (?, ?, ?, ?, ?, ?)",
        (
            time.time() if now is None else now,
            user_name,
            role,
            call_id,
            action,
            json.dumps(detail or {}, ensure_ascii=False, separators=(",", ":")),
        ),
    )


def cli_user() -> tuple[str, str]:
    """The name and role the command line logs under: the operating-system account."""
    try:
        name = getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name (a container): still log the access
        name = "unknown"
    return f"cli:{name}", "cli"


def accesses(db: sqlite3.Connection, call_id: str | None = None, limit: int = 1000) -> list[Access]:
    """Newest first; one call's, or all."""
    where, params = ("WHERE call_id = ?", (call_id,)) if call_id is not None else ("", ())
    rows = db.execute(f"SELECT * FROM access_log {where} ORDER BY at DESC, id DESC LIMIT ?", (*params, limit))
    return [
        Access(r["id"], r["at"], r["user_name"], r["role"], r["call_id"], r["action"], json.loads(r["detail"]))
        for r in rows
    ]
