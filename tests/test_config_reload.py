"""SIGHUP reloads `callguard serve`'s config file (relay/calls/config_reload.py): new calls
take the new delay and policy, a running call goes on, a bad file is refused whole."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import time
from pathlib import Path

import aiohttp

from relay.calls.config_reload import merge
from relay.config import Config, parse_config
from testkit.client import ApiClient
from testkit.local_server import LocalServer, prepare_server

from .conftest import PASSWORD, USERS, assert_flowing, open_call


def test_merge_takes_the_reloadable_sections_and_names_the_rest() -> None:
    running = Config()
    loaded = parse_config(
        {
            "delay": {"delay_s": 2.5, "undecided_policy": "mute"},
            "server": {"port": 9999},
            "classifier": {"model": "elsewhere", "thresholds": {"악플/욕설": 0.4}},
            "escalation": {"warn_after": 1},
        }
    )
    merged, changed, restart = merge(running, loaded)
    assert (merged.delay.delay_s, merged.delay.undecided_policy, merged.escalation.warn_after) == (2.5, "mute", 1)
    assert merged.server == running.server and merged.classifier.model == running.classifier.model
    assert merged.classifier.thresholds == {"악플/욕설": 0.4}
    assert changed == ["delay", "escalation", "classifier"]
    assert restart == ["server", "classifier.model"]
    assert merge(running, dataclasses.replace(running))[1:] == ([], [])


def _config_with(server: LocalServer, delay_s: float, tail: str = "") -> str:
    text = server.config_path.read_text()
    head = text.split("[delay]")[0]
    rest = text.split("[delay]")[1].split("\n", 2)[2]  # drops the old delay_s line
    return f"{head}[delay]\ndelay_s = {delay_s}\n{rest}{tail}"


async def _wait_for_log(server: LocalServer, text: str, count: int, timeout_s: float = 10.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if (log := server.log()).count(text) >= count:
            return log
        await asyncio.sleep(0.1)
    raise AssertionError(f"{text!r} not logged {count} times:\n{server.log()[-2000:]}")


async def test_sighup_reloads_for_new_calls_keeps_the_running_one_and_refuses_a_bad_file(tmp_path: Path) -> None:
    server = prepare_server(tmp_path, delay_s=0.6)
    for name in ("anna", "sue"):
        server.add_user(name, USERS[name], PASSWORD)
    server.start()
    assert server.process is not None
    try:
        async with aiohttp.ClientSession() as http:
            live = await open_call(server, http, counselor="anna")
            await asyncio.sleep(server.delay_s + 0.5)
            await assert_flowing(live)
            sue = ApiClient(server.base_url, http)
            await sue.login("sue", PASSWORD)

            server.config_path.write_text(_config_with(server, 0.9) + "\n[escalation]\nwarn_after = 2\n")
            server.process.send_signal(signal.SIGHUP)
            log = await _wait_for_log(server, "config reloaded: delay, escalation", 1)
            new = await sue.create_call()
            assert new["delay_s"] == 0.9
            running = await sue.call(live.call_id)
            assert running["state"] == "active" and running["delay_s"] == 0.6  # not rebuilt under the call
            await assert_flowing(live)

            server.config_path.write_text(_config_with(server, 45.0))  # out of range
            server.process.send_signal(signal.SIGHUP)
            log = await _wait_for_log(server, "config reload refused", 1)
            assert "delay.delay_s" in log.split("config reload refused")[1].split("\n")[0]
            server.config_path.write_text("[delay\ndelay_s = ")  # not TOML at all
            server.process.send_signal(signal.SIGHUP)
            log = await _wait_for_log(server, "config reload refused", 2)
            assert "not valid TOML" in log.split("config reload refused")[2].split("\n")[0]
            assert (await sue.create_call())["delay_s"] == 0.9  # the config in force stayed
            await assert_flowing(live)
            assert (await sue.call(live.call_id))["state"] == "active"

            accesses = (await sue.request("GET", "/api/qa/access"))["accesses"]
            reloads = [(a["user_name"], a["action"]) for a in accesses if a["action"].startswith("config_reload")]
            assert reloads == [
                ("signal:SIGHUP", "config_reload_refused"),
                ("signal:SIGHUP", "config_reload_refused"),
                ("signal:SIGHUP", "config_reloaded"),
            ]
            await live.close()
    finally:
        server.stop()
