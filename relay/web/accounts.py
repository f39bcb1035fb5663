"""Staff accounts and their sign-in sessions.

Passwords are hashed with scrypt (a slow, memory-hard KDF). Session tokens are random
and only their SHA-256 is stored, so a copy of the database signs nobody in.

A user name is unique as a person reads it: "Anna", "anna" and full-width "ａｎｎａ"
are one name (NFKC, then case folding: the `name_key` column), and names take only
ASCII letters and digits, Hangul, '.', '-' and '_', so Cyrillic "аnna" cannot pass for
Latin "anna". Sign-in takes any spelling of the key.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import sqlite3
import time
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from relay.web.password_policy import WeakPassword, check_password

if TYPE_CHECKING:
    from relay.config import AuthConfig

Role = Literal["counselor", "supervisor", "qa"]
ROLES: tuple[str, ...] = get_args(Role)
MAX_NAME = 64

log = logging.getLogger(__name__)


class AccountError(ValueError):
    pass


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    # The password was set by the server or a reset: the session may only change it.
    must_change_password: bool = False


@dataclass(frozen=True)
class AccountState:
    """An account as the supervisor's console and `callguard users list` show it."""

    name: str
    role: Role
    disabled: bool
    locked: bool
    must_change_password: bool
    sessions: int


@dataclass(frozen=True)
class Session:
    token: str
    user: User
    expires_at: float


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def name_key(name: str) -> str:
    """The form two names are compared in: NFKC, then case folding."""
    return unicodedata.normalize("NFKC", name).casefold()


def _name_char_ok(c: str) -> bool:
    return (c.isascii() and (c.isalnum() or c in ".-_")) or unicodedata.name(c, "").startswith("HANGUL")


def check_name(name: str) -> str:
    """The name as stored (NFKC), or AccountError saying what is allowed."""
    name = unicodedata.normalize("NFKC", name)
    if not name or len(name) > MAX_NAME or not all(_name_char_ok(c) for c in name):
        raise AccountError(f"user name must be 1-{MAX_NAME} ASCII letters or digits, Hangul, '.', '-' or '_'")
    return name


def _scrypt(password: str, salt: bytes, n: int) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, maxmem=256 * 1024 * 1024, dklen=32)


async def _at_once(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return fn(*args, **kwargs)


def accounts_for(
    db: sqlite3.Connection, auth: AuthConfig, run: Callable[..., Awaitable[Any]] | None = None
) -> Accounts:
    return Accounts(db, auth.scrypt_n, auth.session_ttl_s, auth.password_min_length, run=run)


class Accounts:
    def __init__(
        self,
        db: sqlite3.Connection,
        scrypt_n: int,
        session_ttl_s: float,
        password_min_length: int = 12,
        run: Callable[..., Awaitable[Any]] | None = None,
    ) -> None:
        self._db = db
        # How the async methods reach the database: the server's database thread
        # (DatabaseThread.run); by default at once, for the commands with no loop to keep free.
        self._run = run or _at_once
        self._n = scrypt_n
        self._ttl = session_ttl_s
        self._min_length = password_min_length
        # Hash of a throwaway password: sign-in for an unknown name costs the same time
        # as for a known one, so response times do not reveal which names exist.
        self._dummy_salt = secrets.token_bytes(16)
        self._fill_name_keys()

    @property
    def db(self) -> sqlite3.Connection:
        return self._db

    def _fill_name_keys(self) -> None:
        # Accounts made before names were compared by key: the first of a look-alike
        # group gets the key, a later one keeps signing in by its exact name only.
        for row in self._db.execute("SELECT name FROM users WHERE name_key IS NULL ORDER BY created_at").fetchall():
            try:
                self._db.execute("UPDATE users SET name_key = ? WHERE name = ?", (name_key(row["name"]), row["name"]))
            except sqlite3.IntegrityError:
                log.warning("user %r looks like another user's name; rename one of them", row["name"])

    def _check_password(self, name: str, password: str) -> None:
        try:
            check_password(password, name, self._min_length)
        except WeakPassword as exc:
            raise AccountError(str(exc)) from None

    def _acceptable(self, name: str, password: str) -> bool:
        try:
            check_password(password, name, self._min_length)
        except WeakPassword:
            return False
        return True

    def _generated(self, name: str) -> str:
        password = secrets.token_urlsafe(12)
        while not self._acceptable(name, password):  # a random one may contain the name
            password = secrets.token_urlsafe(12)
        return password

    def add_user(self, name: str, role: str, password: str | None = None, *, must_change_password: bool = False) -> str:
        """Create a user; returns the password (generated when none is given)."""
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        name = check_name(name)
        if password is None:
            password = self._generated(name)
        self._check_password(name, password)
        salt = secrets.token_bytes(16)
        try:
            self._db.execute(
                "INSERT INTO users (name, role, pw_salt, pw_hash, pw_n, created_at, name_key, must_change_password) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    role,
                    salt,
                    _scrypt(password, salt, self._n),
                    self._n,
                    time.time(),
                    name_key(name),
                    int(must_change_password),
                ),
            )
        except sqlite3.IntegrityError:
            existing = self._row(name)
            shown = existing["name"] if existing is not None else name
            raise AccountError(f"user {shown!r} already exists") from None
        return password

    def set_password(self, name: str, password: str) -> None:
        """A new password; the user's sessions end (whoever had them must sign in again)."""
        self._store_password(self._existing(name), password, must_change=False)

    def reset_password(self, name: str, password: str | None = None) -> tuple[str, str]:
        """An administrator's reset: (the user's name, the password, generated when none is
        given). It must be changed at the next sign-in; the user's sessions end."""
        row = self._existing(name)
        password = self._generated(row["name"]) if password is None else password
        self._store_password(row, password, must_change=True)
        return str(row["name"]), password

    async def change_password(self, name: str, current: str, password: str, keep_token: str) -> None:
        """The user's own change: the current password checked, the policy applied, the new
        one not the old one; the user's other sessions end (this one stays signed in).
        The KDF runs in the thread pool, as for sign-in."""
        if password == current:
            raise AccountError("the new password must differ from the current one")
        if await self.verify(name, current) is None:
            raise AccountError("the current password is wrong")
        row = await self._run(self._existing, name)
        self._check_password(row["name"], password)
        salt = secrets.token_bytes(16)
        digest = await asyncio.get_running_loop().run_in_executor(None, _scrypt, password, salt, self._n)
        await self._run(self._write_password, row["name"], salt, digest, must_change=False, keep_token=keep_token)

    def _store_password(self, row: sqlite3.Row, password: str, *, must_change: bool) -> None:
        self._check_password(row["name"], password)
        salt = secrets.token_bytes(16)
        self._write_password(row["name"], salt, _scrypt(password, salt, self._n), must_change=must_change)

    def _write_password(
        self, name: str, salt: bytes, digest: bytes, *, must_change: bool, keep_token: str = ""
    ) -> None:
        self._db.execute(
            "UPDATE users SET pw_salt = ?, pw_hash = ?, pw_n = ?, must_change_password = ? WHERE name = ?",
            (salt, digest, self._n, int(must_change), name),
        )
        self._db.execute(
            "DELETE FROM sessions WHERE user_name = ? AND token_hash != ?", (name, token_digest(keep_token))
        )

    def _existing(self, name: str) -> sqlite3.Row:
        row = self._row(name)
        if row is None:
            raise AccountError(f"no user {name!r}")
        return row

    def _row(self, name: str) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(
            "SELECT * FROM users WHERE name = ? OR name_key = ? ORDER BY name = ? DESC LIMIT 1",
            (name, name_key(name), name),
        ).fetchone()
        return row

    def users(self) -> list[User]:
        rows = self._db.execute("SELECT name, role FROM users WHERE disabled = 0 ORDER BY name")
        return [User(r["name"], r["role"]) for r in rows]

    def states(self) -> list[AccountState]:
        """Every account, disabled ones too, with its state."""
        rows = self._db.execute(
            "SELECT u.*, (SELECT COUNT(*) FROM sessions s WHERE s.user_name = u.name AND s.expires_at > ?) AS live "
            "FROM users u ORDER BY u.name",
            (time.time(),),
        )
        return [
            AccountState(
                r["name"],
                r["role"],
                bool(r["disabled"]),
                r["locked_at"] is not None,
                bool(r["must_change_password"]),
                int(r["live"]),
            )
            for r in rows
        ]

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM users").fetchone()[0])

    async def verify(self, name: str, password: str) -> User | None:
        """Check a password; the KDF runs in the thread pool, off the media event loop."""
        row = await self._run(self._row, name)
        if row is not None and row["disabled"]:
            row = None
        salt, n = (self._dummy_salt, self._n) if row is None else (row["pw_salt"], row["pw_n"])
        digest = await asyncio.get_running_loop().run_in_executor(None, _scrypt, password, salt, n)
        if row is None or not hmac.compare_digest(digest, row["pw_hash"]):
            return None
        return User(row["name"], row["role"], bool(row["must_change_password"]))

    # Lockout: the count of wrong passwords in a row lives with the account, so a
    # restart does not hand a guesser a fresh allowance.

    def locked(self, name: str) -> bool:
        row = self._row(name)
        return row is not None and row["locked_at"] is not None

    def record_failure(self, name: str) -> int:
        """One more wrong password for `name`; the count in a row (0 for no such user)."""
        row = self._row(name)
        if row is None:
            return 0
        self._db.execute("UPDATE users SET failed_logins = failed_logins + 1 WHERE name = ?", (row["name"],))
        return int(row["failed_logins"]) + 1

    def record_success(self, name: str) -> None:
        self._db.execute("UPDATE users SET failed_logins = 0 WHERE name = ?", (name,))

    def lock(self, name: str) -> None:
        if (row := self._row(name)) is not None:
            self._db.execute("UPDATE users SET locked_at = ? WHERE name = ?", (time.time(), row["name"]))

    def unlock(self, name: str) -> str:
        """Lifts a lockout (and the count of failures); returns the user's name."""
        row = self._row(name)
        if row is None:
            raise AccountError(f"no user {name!r}")
        self._db.execute("UPDATE users SET locked_at = NULL, failed_logins = 0 WHERE name = ?", (row["name"],))
        return str(row["name"])

    # Revocation: a disabled account signs in no more and its sessions end at once.

    # An open events WebSocket rechecks its session every auth.session_recheck_s, so it
    # closes soon after any of these, whichever process (server or CLI) made the change.

    def disable(self, name: str) -> str:
        """The account signs in no more and its sessions end; returns the user's name."""
        row = self._existing(name)
        self._db.execute("UPDATE users SET disabled = 1 WHERE name = ?", (row["name"],))
        self.revoke_sessions(row["name"])
        return str(row["name"])

    def enable(self, name: str) -> str:
        row = self._existing(name)
        self._db.execute("UPDATE users SET disabled = 0 WHERE name = ?", (row["name"],))
        return str(row["name"])

    def revoke(self, name: str) -> tuple[str, int]:
        """Ends every session of the user (any spelling of the name): (name, how many)."""
        row = self._existing(name)
        return str(row["name"]), self.revoke_sessions(row["name"])

    def revoke_sessions(self, name: str) -> int:
        """Ends every session of the user; how many there were."""
        return int(self._db.execute("DELETE FROM sessions WHERE user_name = ?", (name,)).rowcount)

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
            "SELECT u.name, u.role, u.must_change_password FROM sessions s JOIN users u ON u.name = s.user_name "
            "WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled = 0",
            (token_digest(token), time.time()),
        ).fetchone()
        return None if row is None else User(row["name"], row["role"], bool(row["must_change_password"]))

    def close_session(self, token: str) -> None:
        self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (token_digest(token),))

    def purge_expired_sessions(self) -> int:
        return int(self._db.execute("DELETE FROM sessions WHERE expires_at <= ?", (time.time(),)).rowcount)
