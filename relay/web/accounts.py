"""Staff accounts and their sign-in sessions.

Passwords are hashed with scrypt (a slow, memory-hard KDF). Session tokens are random
and only their SHA-256 is stored, so a copy of the database signs nobody in.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Literal, get_args

Role = Literal["counselor", "supervisor", "qa"]
ROLES: tuple[str, ...] = get_args(Role)


class AccountError(ValueError):
    pass


@dataclass(frozen=True)
class User:
    name: str
    role: Role


@dataclass(frozen=True)
class Session:
    token: str
    user: User
    expires_at: float


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _scrypt(password: str, salt: bytes, n: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, maxmem=256 * 1024 * 1024, dklen=32)


class Accounts:
    def __init__(self, db: sqlite3.Connection, scrypt_n: int, session_ttl_s: float) -> None:
        self._db = db
        self._n = scrypt_n
        self._ttl = session_ttl_s
        # Hash of a throwaway password: sign-in for an unknown name costs the same time
        # as for a known one, so response times do not reveal which names exist.
        self._dummy_salt = secrets.token_bytes(16)

    def add_user(self, name: str, role: str, password: str | None = None) -> str:
        """Create a user; returns the password (generated when none is given)."""
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if not name or len(name) > 64 or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise AccountError("user name must be 1-64 letters, digits, '.', '-' or '_'")
        if password is None:
            password = secrets.token_urlsafe(12)
        if len(password) < 8:
            raise AccountError("password must be at least 8 characters")
        salt = secrets.token_bytes(16)
        try:
            self._db.execute(
                "INSERT INTO users (name, role, pw_salt, pw_hash, pw_n, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (name, role, salt, _scrypt(password, salt, self._n), self._n, time.time()),
            )
        except sqlite3.IntegrityError:
            raise AccountError(f"user {name!r} already exists") from None
        return password

    def set_password(self, name: str, password: str) -> None:
        if len(password) < 8:
            raise AccountError("password must be at least 8 characters")
        salt = secrets.token_bytes(16)
        cur = self._db.execute(
            "UPDATE users SET pw_salt = ?, pw_hash = ?, pw_n = ? WHERE name = ?",
            (salt, _scrypt(password, salt, self._n), self._n, name),
        )
        if cur.rowcount == 0:
            raise AccountError(f"no user {name!r}")

    def users(self) -> list[User]:
        rows = self._db.execute("SELECT name, role FROM users WHERE disabled = 0 ORDER BY name")
        return [User(r["name"], r["role"]) for r in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM users").fetchone()[0])

    async def verify(self, name: str, password: str) -> User | None:
        """Check a password; the KDF runs in the thread pool, off the media event loop."""
        row = self._db.execute(
            "SELECT name, role, pw_salt, pw_hash, pw_n FROM users WHERE name = ? AND disabled = 0", (name,)
        ).fetchone()
        salt, n = (self._dummy_salt, self._n) if row is None else (row["pw_salt"], row["pw_n"])
        digest = await asyncio.get_running_loop().run_in_executor(None, _scrypt, password, salt, n)
        if row is None or not hmac.compare_digest(digest, row["pw_hash"]):
            return None
        return User(row["name"], row["role"])

    def open_session(self, user: User) -> Session:
        token = secrets.token_urlsafe(32)
        expires = time.time() + self._ttl
        self._db.execute(
            "INSERT INTO sessions (token_hash, user_name, expires_at) VALUES (?, ?, ?)",
            (token_digest(token), user.name, expires),
        )
        return Session(token, user, expires)

    def session_user(self, token: str) -> User | None:
        row = self._db.execute(
            "SELECT u.name, u.role FROM sessions s JOIN users u ON u.name = s.user_name "
            "WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled = 0",
            (token_digest(token), time.time()),
        ).fetchone()
        return None if row is None else User(row["name"], row["role"])

    def close_session(self, token: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_digest(token),))

    def purge_expired_sessions(self) -> None:
        self._db.execute("DELETE FROM sessions WHERE expires_at <= ?", (time.time(),))
