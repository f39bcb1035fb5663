"""Two relay nodes sharing a PostgreSQL call log and a data folder: accounts and sessions
work on either, a call's signalling reaches its node through the other, QA reads every
call from any node, either node lists the live calls of both, a draining node takes no
new calls, and a node killed mid-call leaves its calls ended and readable (and gone from
the live list at once) while the other node's call goes on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import async_playwright, expect

from relay.records.database import connect
from relay.web.accounts import Accounts
from testkit.client import ApiClient, ApiFailure, CallPeer, Recorder
from testkit.local_postgres import LocalPostgres
from testkit.local_server import LocalServer, prepare_server, stop_process
from testkit.probe import MarkerSource

from .conftest import PASSWORD, USERS, LiveCall, assert_flowing, open_call
from .test_supervisor_page import ARGS, CHROMIUM, _sign_in

DEAD_AFTER_S = 3.0


def start_node(workdir: Path, name: str, shared: Path, url: str) -> LocalServer:
    server = prepare_server(
        workdir / name,
        extra=f'[database]\nurl = "{url}"\n[cluster]\nnode = "{name}"\nheartbeat_s = 0.5\n'
        f"dead_after_s = {DEAD_AFTER_S}\n",
    )
    # Recordings on one folder both nodes mount (here: the same local folder).
    text = server.config_path.read_text().replace(f'data_dir = "{server.data_dir}"', f'data_dir = "{shared}"')
    server.config_path.write_text(text)
    server.data_dir = shared
    return server.start()


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, postgres: LocalPostgres
) -> Iterator[tuple[LocalServer, LocalServer]]:
    workdir = tmp_path_factory.mktemp("nodes")
    shared = workdir / "shared"
    url = postgres.database("nodes")
    # The accounts, once, in the shared database (what `callguard users add` does on any node).
    db = connect(shared, url)
    accounts = Accounts(db, 1024, 3600)
    for user, role in USERS.items():
        accounts.add_user(user, role, PASSWORD)
    db.close()
    a = start_node(workdir, "a", shared, url)
    b = start_node(workdir, "b", shared, url)
    yield a, b
    b.stop()
    stop_process(a.process)


@pytest.mark.browser  # the supervisor's console on one node, with both nodes' calls
async def test_two_nodes_share_the_log_route_signalling_drain_and_survive_one_dying(
    nodes: tuple[LocalServer, LocalServer], http: aiohttp.ClientSession
) -> None:
    a, b = nodes
    # Shared accounts and sessions: anna signs in on B and her session works on A.
    anna_b = ApiClient(b.base_url, http)
    await anna_b.login("anna", PASSWORD)
    anna_a = ApiClient(a.base_url, http, anna_b.token)
    created = await anna_a.create_call()
    call_a = created["call_id"]
    assert call_a.startswith("c_a.")
    # Every bit of that call's signalling goes through B, which proxies it to A.
    customer = CallPeer(MarkerSource(freq=600.0), Recorder(60.0))
    counselor = CallPeer(MarkerSource(freq=900.0), Recorder(60.0))
    await customer.join(ApiClient(b.base_url, http, created["invite"]["token"]), call_a, "customer")
    await counselor.join(anna_b, call_a, "counselor")
    await asyncio.gather(customer.wait_connected(), counselor.wait_connected())
    live_a = LiveCall(call_a, created["invite"]["token"], anna_b, customer, counselor, MarkerSource(), MarkerSource())
    live_b = await open_call(b, http, counselor="ben")
    assert live_b.call_id.startswith("c_b.")
    browsers = contextlib.AsyncExitStack()
    try:
        await asyncio.sleep(2.0)  # the delay line fills
        viewed = await anna_b.call(call_a)
        assert viewed["counselor"] == "anna" and viewed["state"] == "active"
        await asyncio.gather(assert_flowing(live_a), assert_flowing(live_b))
        headers = {"Authorization": f"Bearer {anna_b.token}"}
        events = await http.ws_connect(f"{b.base_url}/api/calls/{call_a}/events", headers=headers)
        assert (await asyncio.wait_for(events.receive_json(), 5.0))["type"] == "state"

        # The cluster's live calls, from either node, each with its node; a counselor
        # sees hers wherever it runs.
        sue = ApiClient(b.base_url, http)
        await sue.login("sue", PASSWORD)
        for base in (a.base_url, b.base_url):
            listed = await ApiClient(base, http, sue.token).request("GET", "/api/calls")
            assert {(c["call_id"], c["node"]) for c in listed["calls"]} == {(call_a, "a"), (live_b.call_id, "b")}
            assert listed["unreachable_nodes"] == []
        hers = await anna_b.request("GET", "/api/calls")
        assert [c["call_id"] for c in hers["calls"]] == [call_a] and hers["calls"][0]["state"] == "active"
        # The console on B lists both with their node, and A's call opens: its stats
        # arrive once a second over the events stream B proxies from A.
        pw = await browsers.enter_async_context(async_playwright())
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        browsers.push_async_callback(browser.close)
        page = await (await browser.new_context(viewport={"width": 1400, "height": 900})).new_page()
        page.set_default_timeout(10000)
        await _sign_in(page, b.base_url, "sue", "/supervisor")
        row_a = page.locator(f'#live-calls tr[data-call-id="{call_a}"]')
        await expect(row_a.locator(".sv-node")).to_have_text("a")
        await expect(page.locator(f'#live-calls tr[data-call-id="{live_b.call_id}"] .sv-node')).to_have_text("b")
        await row_a.click()
        heard = page.locator("#detail-stats dd").nth(1)
        await expect(heard).not_to_have_text("–")
        before = await heard.text_content()
        await expect(heard).not_to_have_text(before or "", timeout=4000)

        # Drain B: it takes no new call, tells load balancers so, and its call goes on.
        drained = await sue.request("POST", "/api/node/drain", {})
        assert drained["draining"] is True and drained["calls"] == 1
        with pytest.raises(ApiFailure) as refused:
            await sue.create_call()
        assert refused.value.status == 503 and refused.value.code == "draining"
        async with http.get(f"{b.base_url}/api/node") as state:
            assert state.status == 503

        # A dies mid-call: its event stream through B closes, its call is ended by B.
        assert a.process is not None
        killed_at = time.monotonic()
        a.process.kill()
        a.process.wait(timeout=10)
        ends = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)

        async def until_closed() -> aiohttp.WSMessage:
            while (message := await events.receive()).type not in ends:  # what A sent before it died
                pass
            return message

        await asyncio.wait_for(until_closed(), 5.0)
        await events.close()
        # Gone from B's live list at once: A, which heartbeat lately, does not answer.
        asked_at = time.monotonic()
        listed = await sue.request("GET", "/api/calls")
        assert [c["call_id"] for c in listed["calls"]] == [live_b.call_id]
        if asked_at - killed_at < DEAD_AFTER_S - 1.0:  # A still counts as alive, so it is named
            assert listed["unreachable_nodes"] == ["a"]
        await expect(row_a).to_have_count(0)  # and from the console
        deadline = time.monotonic() + DEAD_AFTER_S + 5.0
        while True:
            try:
                await anna_b.call(call_a)
            except ApiFailure as gone:
                if gone.status == 410:  # until A's silence passes dead_after_s: 502, A does not answer
                    assert gone.code == "node_lost"
                    break
                assert gone.status == 502 and gone.code == "node_unreachable"
            assert time.monotonic() < deadline, "B never noticed A was gone"
            await asyncio.sleep(0.3)
        # B's own call never noticed.
        await assert_flowing(live_b)
    finally:
        await browsers.aclose()
        await live_a.customer.close()
        await live_a.counselor.close()
        await live_b.close()

    # QA reads both calls from B: the shared log, the shared recordings folder.
    quinn = ApiClient(b.base_url, http)
    await quinn.login("quinn", PASSWORD)
    lost = await quinn.request("GET", f"/api/qa/calls/{call_a}")
    assert lost["summary"]["end_reason"] == "node_lost" and lost["summary"]["ended_at"] is not None
    customer_audio = [r for r in lost["recordings"] if r["stream"] == "customer"]
    assert customer_audio and customer_audio[0]["duration_s"] and customer_audio[0]["duration_s"] > 1.0
    async with http.get(
        f"{b.base_url}/api/qa/calls/{call_a}/audio/customer", headers={"Authorization": f"Bearer {quinn.token}"}
    ) as audio:
        assert audio.status == 200 and len(await audio.read()) > 1000
    ended = await quinn.request("GET", f"/api/qa/calls/{live_b.call_id}")
    assert ended["summary"]["end_reason"] == "hangup" and ended["summary"]["counselor"] == "ben"


def test_a_call_id_names_its_node_and_one_machine_ids_name_none() -> None:
    from relay.calls.nodes import call_node
    from relay.config import ConfigError, parse_config

    assert call_node("c_n3.AbC-_x") == "n3"
    assert call_node("c_AbC-_x") == "" and call_node("nonsense") == ""
    with pytest.raises(ConfigError, match="cluster.node"):
        parse_config({"cluster": {"node": "Bad.Name"}})
    with pytest.raises(ConfigError, match="database.url"):
        parse_config({"database": {"url": "mysql://x"}})
