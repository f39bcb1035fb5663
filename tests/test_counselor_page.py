"""The counselor page in headless Chromium, with an aiortc customer: in Korean, its states
(waiting, in call, customer lost) without serious accessibility violations, screenshots of
each at desktop and phone width, and dump (D) and hold (M) from the keyboard; then, on an
escalating server, the warning with "End and report", which ends the call; the supervisor
console is notified; QA then has the manual decisions and the report.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Page, async_playwright, expect

from testkit.client import ApiClient, CallPeer, Recorder
from testkit.local_server import LocalServer
from testkit.probe import MarkerSource

from .accessibility import serious_violations
from .conftest import PASSWORD
from .screenshots import screenshot_path
from .test_browser import CHROMIUM, COUNSELOR_ONSETS, COUNSELOR_TONE, LOOP_S, chromium_args
from .wav import tone_bursts, write_wav

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 800}
PROTECTION_LEVELS = """import("/static/protection.js").then(({ protection }) => {
  const stats = { received_media_s: 10, cleared_until_s: 9.4, buffered_s: 1.5, undecided_s: 0 };
  const ready = { state: "ready" };
  return [
    protection(ready, stats), protection(ready, { ...stats, cleared_until_s: 8.2 }), protection(ready, stats, 2),
    protection({ state: "fetching" }, stats), protection(null, null),
  ].map((p) => p.level);
})"""
PHONE = {"width": 390, "height": 844}


async def test_counselor_page_in_korean(server: LocalServer, tmp_path: Path) -> None:
    assert os.path.exists(CHROMIUM), "Debian's chromium is missing: run scripts/install-test-deps"
    mic = write_wav(tmp_path / "counselor.wav", tone_bursts(COUNSELOR_TONE, COUNSELOR_ONSETS, LOOP_S))
    await asyncio.wait_for(_korean(server.base_url, mic), timeout=60)


async def looks_right(page: Page, state: str) -> None:
    """No serious violations, and a screenshot at each width (the phone's without sideways scrolling)."""
    assert await serious_violations(page) == [], state
    for width, size in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(size)
        overflow = await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{state} at {width}: {overflow} px too wide"
        await page.screenshot(path=screenshot_path(f"counselor-{width}-{state}.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)


async def _korean(base_url: str, mic: Path) -> None:
    customer = CallPeer(MarkerSource(freq=600.0), Recorder(30.0))
    async with async_playwright() as pw, aiohttp.ClientSession() as http:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(mic))
        try:
            page = await (await browser.new_context(locale="ko-KR", viewport=DESKTOP)).new_page()
            page.set_default_timeout(10000)
            await page.goto(f"{base_url}/login")
            await page.get_by_label("사용자 이름").fill("ben")
            await page.get_by_label("비밀번호").fill(PASSWORD)
            await page.get_by_role("button", name="로그인").click()
            await page.wait_for_url("**/counselor")
            assert await page.evaluate("document.documentElement.lang") == "ko"
            await expect(page.locator("#who")).to_have_text("ben님 로그인됨 (상담원)")
            await page.get_by_role("button", name="통화 시작").click()
            status = page.locator("#call-status")
            await expect(status).to_have_text("고객의 참여를 기다리는 중")
            await expect(page.locator("#peer-you")).to_have_text("연결됨")
            await expect(page.locator("#peer-customer")).to_have_text("아직 참여 전")
            # This server has no speech model: the light says so, in a word and an icon.
            light = page.locator("#protection")
            await expect(light).to_have_attribute("data-level", "off")
            await expect(page.locator("#protection-word")).to_have_text("보호 꺼짐")
            unchecked = "필터를 쓸 수 없습니다: 고객의 말이 검사 없이 들립니다."
            await expect(page.locator("#moderation")).to_have_text(unchecked)
            await looks_right(page, "waiting")
            # The light's rule, for the states this server cannot show: checks keeping up,
            # falling behind the buffer, unchecked audio played lately, still starting.
            levels = await page.evaluate(PROTECTION_LEVELS)
            assert levels == ["protected", "degraded", "degraded", "off", "off"]

            link = page.get_by_label("고객 초대 링크")
            await expect(link).to_have_value(re.compile(r"/join/\S+#\S+$"))
            invite = await link.input_value()
            path, token = invite.split("#", 1)
            await customer.join(ApiClient(base_url, http, token), path.rsplit("/", 1)[1], "customer")
            await customer.wait_connected()
            await expect(status).to_have_text("통화 중")
            await expect(page.locator("#peer-customer")).to_have_text("연결됨")
            await expect(page.locator("#call-timer")).to_have_text(re.compile(r"^0:0[1-9]$"))
            await asyncio.sleep(2.0)  # past the delay: the customer plays, and some is buffered unheard

            # Dump and hold from the keyboard, with the page's shortcuts.
            notice = page.locator("#protect-notice")
            await page.locator("body").press("d")
            await expect(notice).to_have_text(re.compile(r"^아직 듣지 않은 \d\.\d초를 차단했습니다\.$"))
            await page.keyboard.down("m")
            await expect(page.locator("#hold")).to_have_attribute("aria-pressed", "true")
            await expect(notice).to_have_text("누르고 있는 동안 고객의 음성을 차단하는 중…")
            await asyncio.sleep(0.5)
            await page.keyboard.up("m")
            await expect(page.locator("#hold")).to_have_attribute("aria-pressed", "false")
            await expect(notice).to_have_text(re.compile(r"^누르고 있는 동안 (0\.[3-9]|1\.\d)초를 차단했습니다\.$"))
            # Reached with Tab, the hold button holds while Space is down.
            for _ in range(20):
                await page.keyboard.press("Tab")
                if await page.evaluate("document.activeElement.id") == "hold":
                    break
            else:
                raise AssertionError("the hold button is not reachable with Tab")
            await page.keyboard.down("Space")
            await expect(page.locator("#hold")).to_have_attribute("aria-pressed", "true")
            await asyncio.sleep(0.4)
            await page.keyboard.up("Space")
            await expect(notice).to_have_text(re.compile(r"^누르고 있는 동안 (0\.[2-9]|1\.\d)초를 차단했습니다\.$"))
            # All counted once their audio comes due, by category, the latest one told.
            await expect(page.locator("#mute-count")).to_have_text("3 (직접 차단 3건)", timeout=5000)
            await expect(page.locator("#mute-notice")).to_have_text("걸러짐: 직접 차단")
            await looks_right(page, "in-call")

            # The customer's side goes away: lost, with the seconds left, in words.
            await customer.close()
            await expect(status).to_contain_text("고객 연결 끊김", timeout=9000)
            await expect(page.locator("#peer-customer")).to_have_text(re.compile(r"^연결 끊김, \d+초 대기 중$"))
            await looks_right(page, "customer-lost")
            assert await page.evaluate("window.callguardMissingMessages") == []
            await page.get_by_role("button", name="통화 종료").click()
            await expect(status).to_have_text("통화가 종료되었습니다.")
        finally:
            await browser.close()
            await customer.close()


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
            # The hold's own notice may be replaced at once by the warning its span brings
            # (whichever of the answer and the event comes first): count the mutes instead.
            await expect(page.locator("#mute-count")).to_have_text("2 (by hand 2)")

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
