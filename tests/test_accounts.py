import sqlite3
from pathlib import Path

import pytest

from relay.records.database import open_database
from relay.web.accounts import AccountError, Accounts


@pytest.fixture
def accounts(tmp_path: Path) -> Accounts:
    return Accounts(open_database(tmp_path / "db.sqlite"), scrypt_n=1024, session_ttl_s=60)


async def test_password_roundtrip_and_wrong_password(accounts: Accounts) -> None:
    password = accounts.add_user("anna", "counselor")
    assert len(password) >= 12
    user = await accounts.verify("anna", password)
    assert user is not None and user.role == "counselor"
    assert await accounts.verify("anna", password + "x") is None
    assert await accounts.verify("nobody", password) is None


def test_passwords_are_stored_hashed(accounts: Accounts, tmp_path: Path) -> None:
    accounts.add_user("anna", "counselor", "a-secret-password")
    raw = (tmp_path / "db.sqlite").read_bytes() + (tmp_path / "db.sqlite-wal").read_bytes()
    assert b"a-secret-password" not in raw
    assert (tmp_path / "db.sqlite").stat().st_mode & 0o077 == 0


def test_bad_accounts_are_refused(accounts: Accounts) -> None:
    accounts.add_user("anna", "counselor")
    with pytest.raises(AccountError, match="already exists"):
        accounts.add_user("anna", "qa")
    with pytest.raises(AccountError, match="role"):
        accounts.add_user("bob", "admin")
    with pytest.raises(AccountError, match="at least 12"):
        accounts.add_user("bob", "qa", "short")
    with pytest.raises(AccountError, match="user name"):
        accounts.add_user("bob smith", "qa")


def test_sessions_open_expire_and_close(accounts: Accounts) -> None:
    accounts.add_user("anna", "supervisor")
    (user,) = accounts.users()
    session = accounts.open_session(user)
    assert accounts.session_user(session.token) == user
    assert accounts.session_user(session.token + "x") is None
    accounts.close_session(session.token)
    assert accounts.session_user(session.token) is None
    expired = Accounts(accounts._db, 1024, session_ttl_s=-1).open_session(user)
    assert accounts.session_user(expired.token) is None


def test_session_tokens_are_not_stored(accounts: Accounts) -> None:
    accounts.add_user("anna", "qa")
    session = accounts.open_session(accounts.users()[0])
    rows = accounts._db.execute("SELECT token_hash FROM sessions").fetchall()
    assert all(session.token.encode() not in bytes(r[0]) for r in rows)
    assert isinstance(accounts._db, sqlite3.Connection)
