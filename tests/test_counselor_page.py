"""The counselor page's protection controls in headless Chromium, with an aiortc customer:
the D key dumps, holding M mutes, the escalation warning shows with "End and report",
which ends the call; the supervisor console is notified; QA then has the manual
decisions and the report.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import async_playwright, expect

from testkit.client import ApiClient, CallPeer, Recorder
from testkit.local_server import LocalServer
from testkit.probe import MarkerSource

from .conftest import PASSWORD
from .test_browser import CHROMIUM, COUNSELOR_ONSETS, COUNSELOR_TONE, LOOP_S, chromium_args
from .wav import tone_bursts, write_wav

pytestmark = pytest.mark.browser


async def test_dump_hold_and_end_and_report(escalating_server: LocalServer, tmp_path: Path) -> None:
    # Warned after two manual mutes; the counselor ends and reports it before a third.
    assert os.path.exists(CHROMIUM), "Debian's chromium is missing: run scripts/install-test-deps"
    mic = write_wav(tmp_path / "counselor.wav", tone_bursts(COUNSELOR_TONE, COUNSELOR_ONSETS, LOOP_S))
    await asyncio.wait_for(_protect(escalating_server.base_url, mic), timeout=60)


async def _protect(base_url: str, mic: Path) -> None:
    customer = CallPeer(MarkerSource(freq=600.0), Recorder(30.0))
    async with async_playwright() as pw, aiohttp.ClientSession() as http:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(mic))
        try:
            page = await (await browser.new_context()).new_page()
            page.set_default_timeout(10000)
            await page.goto(f"{base_url}/login")
            await page.get_by_label("User name").fill("anna")
            await page.get_by_label("Password").fill(PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url("**/counselor")
            await page.get_by_role("button", name="Start call").click()
            invite = page.get_by_label("Invite link for the customer")
            await expect(invite).to_have_value(re.compile(r"/join/\S+#\S+$"))
            path, token = (await invite.input_value()).split("#", 1)
            call_id = path.rsplit("/", 1)[1]
            await customer.join(ApiClient(base_url, http, token), call_id, "customer")
            await customer.wait_connected()
            await expect(page.locator("#call-status")).to_have_text("Call in progress")
            console = await (await browser.new_context()).new_page()
            console.set_default_timeout(10000)
            await console.goto(f"{base_url}/login")
            await console.get_by_label("User name").fill("sue")
            await console.get_by_label("Password").fill(PASSWORD)
            await console.get_by_role("button", name="Sign in").click()
            await console.wait_for_url("**/supervisor")
            await expect(console.locator(f'#live-calls tr[data-call-id="{call_id}"]')).to_have_count(1)
            await asyncio.sleep(0.8)  # a delay's worth of the customer is buffered

            notice = page.locator("#protect-notice")
            await page.locator("body").press("d")
            await expect(notice).to_have_text(re.compile(r"^Dumped 0\.[4-9] s you had not heard yet\.$"))
            await page.keyboard.down("m")
            await expect(page.locator("#hold")).to_have_attribute("aria-pressed", "true")
            await asyncio.sleep(0.6)
            await page.keyboard.up("m")
            await expect(notice).to_have_text(re.compile(r"^Muted (0\.[4-9]|1\.\d) s while you held\.$"))

            # Two manual spans played out: the customer was warned, the counselor is told.
            await expect(notice).to_have_text(re.compile(r"^The customer heard the warning after 2 "), timeout=5000)
            notified = console.locator(f'#notices li[data-call-id="{call_id}"][data-stage="warning"]')
            await expect(notified).to_contain_text("anna's call")
            await expect(console.locator(f'tr[data-call-id="{call_id}"] .sv-escalation')).to_have_text("warned")
            await page.get_by_role("button", name="End and report").click()
            await expect(page.locator("#call-status")).to_have_text("Call ended and reported for abuse.")
            reason = console.locator(f'#ended-calls tr[data-call-id="{call_id}"] .sv-reason')
            await expect(reason).to_have_text("ended and reported")
        finally:
            await browser.close()
            await customer.close()

        sue = ApiClient(base_url, http)
        await sue.login("sue", PASSWORD)
        logged = await sue.request("GET", f"/api/qa/calls/{call_id}")
    assert logged["summary"]["end_reason"] == "abuse_reported"
    assert [d["categories"] for d in logged["decisions"]] == [["dump"], ["hold"]]
    kinds = [e["kind"] for e in logged["events"]]
    assert kinds.index("escalation") < kinds.index("reported") < kinds.index("ended")
