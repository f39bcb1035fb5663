from pathlib import Path

import pytest

from moderation.keywords import KeywordMatcher
from relay.config import DEFAULT_TOML, Config, ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parent.parent


def test_default_file_matches_embedded_defaults() -> None:
    assert load_config(DEFAULT_TOML) == Config()


def test_no_file_gives_embedded_defaults() -> None:
    assert load_config(None) == Config()


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ({"delay": {"dely_s": 1.0}}, "delay.dely_s"),
        ({"nonsense": {}}, "nonsense"),
        ({"delay": {"delay_s": "2"}}, "delay.delay_s"),
        ({"delay": {"delay_s": -0.5}}, "delay.delay_s"),
        ({"delay": {"delay_s": 31}}, "delay.delay_s"),
        ({"delay": {"undecided_policy": "maybe"}}, "delay.undecided_policy"),
        ({"server": {"port": 70000}}, "server.port"),
        ({"server": {"port": True}}, "server.port"),
        ({"server": {"tls_cert": "a.pem"}}, "server.tls_key"),
        ({"calls": {"max_concurrent": 0}}, "calls.max_concurrent"),
        ({"webrtc": {"ice_servers": [{"urls": ["http://x"]}]}}, "webrtc.ice_servers[0].urls"),
        ({"webrtc": {"ice_servers": [{"urls": []}]}}, "webrtc.ice_servers[0].urls"),
        ({"webrtc": {"interfaces": ["not-an-ip"]}}, "webrtc.interfaces"),
        ({"webrtc": {"remote_networks": ["10.0.0.0/33"]}}, "webrtc.remote_networks"),
        ({"auth": {"scrypt_n": 1000}}, "auth.scrypt_n"),
        ({"auth": {"password_min_length": 8}}, "auth.password_min_length"),
        ({"auth": {"backoff_base_s": 10.0, "backoff_max_s": 5.0}}, "auth.backoff_max_s"),
        ({"auth": {"lockout_after": -1}}, "auth.lockout_after"),
        ({"server": {"trusted_proxies": ["proxy.example"]}}, "server.trusted_proxies"),
        ({"server": {"body_timeout_s": 0}}, "server.body_timeout_s"),
        ({"calls": {"max_per_counselor": 0}}, "calls.max_per_counselor"),
        ({"calls": {"max_sockets_per_token": 0}}, "calls.max_sockets_per_token"),
        ({"delay": 3}, "delay"),
    ],
)
def test_bad_values_name_the_key(raw: dict, names: str) -> None:
    with pytest.raises(ConfigError, match=names.replace("[", r"\[").replace("]", r"\]")):
        parse_config(raw)


def test_file_overlays_defaults_and_overrides_apply(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[delay]\ndelay_s = 2.5\nundecided_policy = "mute"\n'
        '[[webrtc.ice_servers]]\nurls = ["turn:t.example:3478"]\nusername = "u"\ncredential = "p"\n'
    )
    config = load_config(path)
    assert config.delay.delay_s == 2.5 and config.delay.undecided_policy == "mute"
    assert config.webrtc.ice_servers[0].username == "u"
    assert config.server == Config().server
    overridden = config.with_overrides(host="0.0.0.0", port=9000, delay=0.75)
    assert (overridden.server.host, overridden.server.port, overridden.delay.delay_s) == ("0.0.0.0", 9000, 0.75)
    with pytest.raises(ConfigError, match="delay.delay_s"):
        config.with_overrides(delay=45.0)


def test_corrupt_or_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[delay\ndelay_s = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")


def test_a_relative_lists_dir_in_a_config_file_is_taken_from_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf" / "keywords").mkdir(parents=True)
    (tmp_path / "conf" / "keywords" / "profanity.txt").write_text("씨발\n", encoding="utf-8")
    (tmp_path / "conf" / "callguard.toml").write_text('[keywords]\nlists_dir = "keywords"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = load_config(Path("conf") / "callguard.toml")
    assert config.keywords.folder() == tmp_path / "conf" / "keywords"
    assert KeywordMatcher(config.keywords).match(["씨발"])
