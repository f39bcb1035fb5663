import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from moderation.keyword_config import BUILTIN_LISTS
from relay.config import DEFAULT_TOML
from relay.records.database import database_file
from testkit.client import ApiClient, ApiFailure

from .conftest import ROOT, start_server


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "relay.cli", *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=60
    )


async def test_first_start_creates_a_supervisor_and_prints_its_password(tmp_path: Path) -> None:
    server = start_server(tmp_path, users=False)
    try:
        printed = re.search(r"with password\n\s+(\S+)", server.log())
        assert printed, server.log()
        async with aiohttp.ClientSession() as http:
            api = ApiClient(server.base_url, http)
            signed_in = await api.login("supervisor", printed.group(1))
            assert signed_in["user"]["role"] == "supervisor" and signed_in["must_change_password"] is True
            # The printed password opens a session that may only change it.
            with pytest.raises(ApiFailure, match="password_change_required"):
                await api.create_call()
            body = {"current_password": printed.group(1), "new_password": "first-lantern-orchard"}
            await api.request("POST", "/api/me/password", body)
            assert (await api.create_call())["state"] == "waiting"  # a newcomer can try a call at once
    finally:
        server.stop()
    again = start_server(tmp_path, users=False)  # same data folder
    assert "with password" not in again.stop()


def test_corrupt_config_stops_start_up_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[delay]\ndelay_s = 45\n")
    result = _cli("serve", "--config", str(bad))
    assert result.returncode == 2 and "delay.delay_s" in result.stderr
    bad.write_text("[server]\nprot = 80\n")
    result = _cli("config", "--config", str(bad))
    assert result.returncode == 2 and "unknown key server.prot" in result.stderr
    result = _cli("serve", "--delay", "-1")
    assert result.returncode == 2 and "delay.delay_s" in result.stderr
    assert _cli("config", "--config", str(DEFAULT_TOML)).returncode == 0


def test_the_default_config_and_the_lists_come_out_of_the_package(tmp_path: Path) -> None:
    printed = _cli("config", "--default")
    assert printed.returncode == 0 and printed.stdout == DEFAULT_TOML.read_text(encoding="utf-8")
    copied = _cli("config", "--lists", str(tmp_path / "lists"))
    assert copied.returncode == 0, copied.stderr
    assert sorted(p.name for p in (tmp_path / "lists").iterdir()) == sorted(p.name for p in BUILTIN_LISTS.iterdir())
    assert _cli("config", "--lists", str(tmp_path / "lists")).returncode == 2  # never over an edited folder


def test_users_add_and_list(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n[auth]\nscrypt_n = 1024\n')
    added = _cli("users", "add", "mia", "--role", "qa", "--config", str(config))
    assert added.returncode == 0 and re.search(r"password: \S{12,}", added.stdout)
    assert _cli("users", "add", "mia", "--role", "qa", "--config", str(config)).returncode == 2
    assert (
        _cli(
            "users", "add", "leo", "--role", "counselor", "--password-stdin", "--config", str(config), stdin="short\n"
        ).returncode
        == 2
    )
    listed = _cli("users", "list", "--config", str(config))
    assert listed.stdout.split() == ["mia", "qa", "must-change-password"]  # a generated password
    assert _cli("users", "add", "MIA", "--role", "qa", "--config", str(config)).returncode == 2  # same name
    assert _cli("users", "unlock", "Mia", "--config", str(config)).stdout.strip() == "unlocked mia"
    assert _cli("users", "unlock", "nobody", "--config", str(config)).returncode == 2


def test_users_disable_enable_reset_and_revoke(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n[auth]\nscrypt_n = 1024\n')
    password = "orchard-lantern-violet"
    _cli("users", "add", "mia", "--role", "qa", "--password-stdin", "--config", str(config), stdin=password + "\n")
    assert _cli("users", "list", "--config", str(config)).stdout.split() == ["mia", "qa"]
    assert _cli("users", "disable", "MIA", "--config", str(config)).stdout.strip() == "disabled mia; its sessions ended"
    assert _cli("users", "list", "--config", str(config)).stdout.split() == ["mia", "qa", "disabled"]
    assert _cli("users", "enable", "mia", "--config", str(config)).stdout.strip() == "enabled mia"
    reset = _cli("users", "reset-password", "mia", "--config", str(config))
    assert reset.returncode == 0 and re.search(r"next sign-in; password: \S{12,}$", reset.stdout.strip())
    assert _cli("users", "list", "--config", str(config)).stdout.split() == ["mia", "qa", "must-change-password"]
    weak = _cli("users", "reset-password", "mia", "--password-stdin", "--config", str(config), stdin="short\n")
    assert weak.returncode == 2 and "at least 12" in weak.stderr
    given = _cli("users", "reset-password", "mia", "--password-stdin", "--config", str(config), stdin=password + "\n")
    assert given.returncode == 0 and password not in given.stdout
    assert _cli("users", "revoke", "mia", "--config", str(config)).stdout.strip() == "ended 0 sessions of mia"
    assert _cli("users", "disable", "nobody", "--config", str(config)).returncode == 2
    db = sqlite3.connect(database_file(tmp_path / "data"))
    logged = db.execute("SELECT user_name, role, action, detail FROM access_log ORDER BY id").fetchall()
    assert [a for _, _, a, _ in logged] == [
        "account_disabled",
        "account_enabled",
        "password_reset",
        "password_reset",
        "sessions_revoked",
    ]
    assert all(who.startswith("cli:") and role == "cli" and '"user":"mia"' in detail for who, role, _, detail in logged)
    assert all(password not in detail for *_, detail in logged)


def test_models_list_and_offline_pull(tmp_path: Path, tiny_whisper: Path) -> None:
    import os
    import shutil

    config = tmp_path / "c.toml"
    config.write_text(f'[stt]\nmodels_dir = "{tmp_path / "models"}"\n')
    assert "no models" in _cli("models", "list", "--config", str(config)).stdout
    shutil.copytree(tiny_whisper, tmp_path / "models" / "tiny-test")
    (tmp_path / "models" / "broken").mkdir()
    (tmp_path / "models" / "broken" / "config.json").write_text("{}")
    listed = _cli("models", "list", "--config", str(config)).stdout
    assert re.search(r"tiny-test\t\d+ MB\tcomplete", listed), listed
    assert re.search(r"broken\t0 MB\tINCOMPLETE, missing .*model.bin", listed), listed
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    pulled = subprocess.run(
        [sys.executable, "-m", "relay.cli", "models", "pull", "tiny", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=env,
    )
    assert pulled.returncode == 2 and "offline" in pulled.stderr


def test_models_pull_fetches_every_model_the_config_uses(
    tmp_path: Path, tiny_whisper: Path, tiny_bert_model: Path
) -> None:
    """Against the stand-in hub: `callguard models pull` with no name brings Whisper and kor_unsmile."""
    import os

    from moderation import classifier, model_store
    from testkit.stand_in_hub import StandInHub, serving

    config = tmp_path / "c.toml"
    models = tmp_path / "models"
    config.write_text(f'[stt]\nmodels_dir = "{models}"\n[classifier]\nmodels_dir = "{models}"\n')
    folders = {"Systran/faster-whisper-base": tiny_whisper, "smilegate-ai/kor_unsmile": tiny_bert_model}
    with serving(StandInHub.of_folders(folders)) as hub:
        env = {**os.environ, "HF_HUB_OFFLINE": "0", "HF_ENDPOINT": hub.url}
        pulled = subprocess.run(
            [sys.executable, "-m", "relay.cli", "models", "pull", "--config", str(config)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            env=env,
        )
    assert pulled.returncode == 0, pulled.stderr
    assert 'stt.model = "base"' in pulled.stdout and 'classifier.model = "smilegate-ai/kor_unsmile"' in pulled.stdout
    assert "fetching speech model base: " in pulled.stderr and "(100%)" in pulled.stderr
    assert not model_store.missing_files(models / "base")
    assert not classifier.missing_files(models / "smilegate-ai--kor_unsmile")
