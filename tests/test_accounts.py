import sqlite3
from pathlib import Path

import pytest

from relay.records.database import open_database
from relay.web.accounts import AccountError, Accounts, User


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


@pytest.mark.parametrize("twin", ["Anna", "ANNA", "ａｎｎａ", "ＡＮＮＡ"])
def test_look_alike_names_are_one_name(accounts: Accounts, twin: str) -> None:
    accounts.add_user("anna", "counselor")
    with pytest.raises(AccountError, match="'anna' already exists"):
        accounts.add_user(twin, "qa")


@pytest.mark.parametrize("name", ["аnna", "аnnа", "ánna", "anna\u200b", "an na", "Ωmega"])
def test_names_outside_latin_and_hangul_are_refused(accounts: Accounts, name: str) -> None:
    with pytest.raises(AccountError, match="user name"):
        accounts.add_user(name, "counselor")


async def test_any_spelling_of_the_name_signs_in_as_the_account(accounts: Accounts) -> None:
    accounts.add_user("김민지", "counselor", "correct-horse-battery")
    accounts.add_user("Anna", "qa", "correct-horse-battery")
    assert await accounts.verify("김민지", "correct-horse-battery") == User("김민지", "counselor")
    assert await accounts.verify("ＡＮＮＡ", "correct-horse-battery") == User("Anna", "qa")


async def test_disable_and_new_password_end_sessions(accounts: Accounts) -> None:
    accounts.add_user("anna", "counselor", "correct-horse-battery")
    user = User("anna", "counselor")
    first, second = accounts.open_session(user), accounts.open_session(user)
    accounts.set_password("ANNA", "tangerine kettle voyage")
    assert accounts.session_user(first.token) is None and accounts.session_user(second.token) is None
    assert await accounts.verify("anna", "correct-horse-battery") is None
    session = accounts.open_session(user)
    accounts.disable("anna")
    assert accounts.session_user(session.token) is None
    assert await accounts.verify("anna", "tangerine kettle voyage") is None
    accounts.enable("anna")
    assert await accounts.verify("anna", "tangerine kettle voyage") == user
    with pytest.raises(AccountError, match="too common"):
        accounts.set_password("anna", "password123456")


def test_lockout_counts_failures_in_a_row_and_unlock_clears(accounts: Accounts) -> None:
    accounts.add_user("anna", "counselor")
    assert [accounts.record_failure("anna") for _ in range(3)] == [1, 2, 3]
    assert accounts.record_failure("nobody") == 0
    accounts.record_success("anna")
    assert accounts.record_failure("Anna") == 1
    accounts.lock("ＡＮＮＡ")
    assert accounts.locked("anna")
    assert accounts.unlock("anna") == "anna"
    assert not accounts.locked("anna") and accounts.record_failure("anna") == 1
    with pytest.raises(AccountError, match="no user"):
        accounts.unlock("nobody")


def test_expired_sessions_are_purged(accounts: Accounts) -> None:
    accounts.add_user("anna", "qa")
    user = accounts.users()[0]
    Accounts(accounts._db, 1024, session_ttl_s=-1).open_session(user)
    live = accounts.open_session(user)
    assert accounts.purge_expired_sessions() == 1
    assert accounts.session_user(live.token) == user


def test_an_older_database_gains_the_new_columns_and_keys(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, pw_salt BLOB NOT NULL, pw_hash BLOB NOT NULL,"
        " pw_n INTEGER NOT NULL, created_at REAL NOT NULL, disabled INTEGER NOT NULL DEFAULT 0);"
        "INSERT INTO users VALUES ('Anna', 'qa', x'00', x'00', 1024, 1.0, 0);"
        "INSERT INTO users VALUES ('anna', 'qa', x'00', x'00', 1024, 2.0, 0);"
    )
    old.commit()
    old.close()
    accounts = Accounts(open_database(path), scrypt_n=1024, session_ttl_s=60)
    keys = dict(accounts._db.execute("SELECT name, name_key FROM users").fetchall())
    assert keys == {"Anna": "anna", "anna": None}  # the later look-alike keeps its exact name only
    with pytest.raises(AccountError, match="already exists"):
        accounts.add_user("ANNA", "qa")


async def test_a_reset_must_be_changed_and_the_change_keeps_only_its_own_session(accounts: Accounts) -> None:
    accounts.add_user("anna", "counselor", "tangerine kettle voyage")
    here = accounts.open_session(User("anna", "counselor"))
    name, password = accounts.reset_password("ANNA")
    assert name == "anna" and accounts.session_user(here.token) is None  # a reset ends every session
    user = await accounts.verify("anna", password)
    assert user is not None and user.must_change_password
    here, elsewhere = accounts.open_session(user), accounts.open_session(user)
    with pytest.raises(AccountError, match="current password is wrong"):
        await accounts.change_password("anna", "not-the-password", "violet lantern orchard", here.token)
    with pytest.raises(AccountError, match="differ"):
        await accounts.change_password("anna", password, password, here.token)
    with pytest.raises(AccountError, match="at least 12"):
        await accounts.change_password("anna", password, "short", here.token)
    await accounts.change_password("anna", password, "violet lantern orchard", here.token)
    kept = accounts.session_user(here.token)
    assert kept is not None and not kept.must_change_password
    assert accounts.session_user(elsewhere.token) is None
    assert await accounts.verify("anna", password) is None


async def test_states_list_disabled_locked_and_live_sessions(accounts: Accounts) -> None:
    accounts.add_user("anna", "counselor", "tangerine kettle voyage")
    accounts.add_user("bob", "qa", must_change_password=True)
    accounts.open_session(User("anna", "counselor"))
    accounts.lock("bob")
    by_name = {s.name: s for s in accounts.states()}
    assert (by_name["anna"].sessions, by_name["anna"].disabled, by_name["anna"].locked) == (1, False, False)
    assert by_name["bob"].locked and by_name["bob"].must_change_password
    assert accounts.revoke("Anna") == ("anna", 1)
    assert accounts.disable("BOB") == "bob"
    assert [s.name for s in accounts.states() if s.disabled] == ["bob"]
    with pytest.raises(AccountError, match="no user"):
        accounts.revoke("nobody")
