"""The customer's page in headless Chromium as a phone: Korean by default, the recording
notice before joining, large touch targets, microphone refusal, a network drop, and the
escalation warning shown when the server plays it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from testkit.client import ApiClient, CallPeer, Recorder
from testkit.local_server import LocalServer
from testkit.probe import MarkerSource
from tests.accessibility import serious_violations
from tests.conftest import PASSWORD
from tests.screenshots import screenshot_path
from tests.test_browser import CHROMIUM, chromium_args
from tests.wav import tone_bursts, write_wav

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


async def _phone(browser: Browser, locale: str) -> Page:
    return await (await browser.new_context(locale=locale, **PHONE)).new_page()


async def _fits_the_screen(page: Page) -> None:
    overflow = await page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{overflow} px wider than the phone"


async def test_customer_page_on_a_phone(server, anna: ApiClient, tmp_path: Path) -> None:
    await asyncio.wait_for(_phone_flow(anna, tmp_path), timeout=60)


async def _phone_flow(anna: ApiClient, tmp_path: Path) -> None:
    mic = write_wav(tmp_path / "mic.wav", tone_bursts(600.0, (0.0, 0.5), 2.0))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(mic))
        # Without the fake permission prompt, and every prompt answered "block".
        denying = [a for a in chromium_args(mic) if a != "--use-fake-ui-for-media-stream"]
        refusing = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*denying, "--deny-permission-prompts"]
        )
        try:
            url = (await anna.create_call())["invite"]["url"]
            page = await _phone(browser, "ko-KR")
            await page.goto(url)
            # Korean by default, and told about recording and filtering before joining.
            await expect(page.locator("#status")).to_have_text("참여할 준비가 되었습니다")
            assert await page.evaluate("document.documentElement.lang") == "ko"
            await expect(page.locator("#notice")).to_contain_text("녹음")
            await expect(page.locator("#notice")).to_contain_text("걸러집니다")
            join = page.get_by_role("button", name="통화 참여")
            box = await join.bounding_box()
            assert box is not None and box["height"] >= 48 and box["width"] >= 300, box
            await _fits_the_screen(page)
            assert await serious_violations(page) == []
            await page.screenshot(path=screenshot_path("customer-phone-ready.png"))
            await join.tap()
            await expect(page.locator("#status")).to_have_text("연결됨", timeout=15000)
            await expect(page.locator("#detail")).to_have_text("상담원의 연결을 기다리고 있습니다…")
            await expect(page.get_by_role("button", name="통화 종료")).to_be_visible()
            assert await serious_violations(page) == []
            await page.screenshot(path=screenshot_path("customer-phone-connected.png"))

            # The phone loses its network, then gets it back: told so, and still on the call.
            await page.context.set_offline(True)
            await expect(page.locator("#detail")).to_contain_text("오프라인")
            await page.context.set_offline(False)
            await expect(page.locator("#status")).to_have_text("연결됨", timeout=15000)
            assert await page.evaluate("window.callguard.link.state") == "connected"
            assert await page.evaluate("window.callguardMissingMessages") == []

            # English on an English phone, and for anyone who picks it.
            other = (await anna.create_call())["invite"]["url"]
            english = await _phone(browser, "en-US")
            await english.goto(other)
            await expect(english.locator("#status")).to_have_text("Ready to join")
            await expect(english.locator("#notice")).to_contain_text("This call is recorded")
            await english.get_by_role("link", name="한국어").click()
            await expect(english.locator("#status")).to_have_text("참여할 준비가 되었습니다")

            # Microphone refused: what to do, and a way to try again.
            refused = await _phone(refusing, "ko-KR")
            await refused.goto(other)
            await refused.get_by_role("button", name="통화 참여").tap()
            await expect(refused.locator("#status")).to_have_text("마이크가 필요합니다")
            await expect(refused.locator("#mic-help")).to_be_visible()
            await expect(refused.locator("#mic-help")).to_contain_text("허용")
            await expect(refused.get_by_role("button", name="다시 시도")).to_be_visible()
            await _fits_the_screen(refused)
            assert await serious_violations(refused) == []
            await refused.screenshot(path=screenshot_path("customer-phone-mic-refused.png"))
        finally:
            await browser.close()
            await refusing.close()


async def test_customer_page_shows_the_escalation_warning(
    escalating_server: LocalServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    # Warned after two of the counselor's mutes: the page says what the prompt says.
    await asyncio.wait_for(_warned(escalating_server.base_url, http, tmp_path), timeout=60)


async def _warned(base_url: str, http: aiohttp.ClientSession, tmp_path: Path) -> None:
    mic = write_wav(tmp_path / "mic.wav", tone_bursts(600.0, (0.0, 0.5), 2.0))
    anna = ApiClient(base_url, http)
    await anna.login("anna", PASSWORD)
    created = await anna.create_call()
    call_id = created["call_id"]
    counselor = CallPeer(MarkerSource(freq=900.0), Recorder(20.0))
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(mic))
        try:
            await counselor.join(anna, call_id, "counselor")
            page = await _phone(browser, "ko-KR")
            await page.goto(created["invite"]["url"])
            await page.get_by_role("button", name="통화 참여").tap()
            await expect(page.locator("#detail")).to_have_text("상담원과 통화 중입니다.", timeout=15000)
            warning = page.locator("#warning")
            await expect(warning).to_be_hidden()
            for _ in range(2):
                await asyncio.sleep(0.9)  # a delay's worth of the customer is buffered again
                await anna.request("POST", f"/api/calls/{call_id}/dump", {})
            await expect(warning).to_have_text("상담원 보호를 위해 폭언이 계속되면 통화가 종료됩니다.", timeout=8000)
            await expect(warning).to_have_attribute("role", "alert")
            await _fits_the_screen(page)
            assert await serious_violations(page) == []
            await page.screenshot(path=screenshot_path("customer-phone-warning.png"))
        finally:
            await browser.close()
            await counselor.close()
            await anna.hangup(call_id)
