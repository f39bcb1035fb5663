"""The customer's page in headless Chromium as a phone: Korean by default, the recording
notice before joining, large touch targets, microphone refusal, and a network drop."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from testkit.client import ApiClient
from tests.accessibility import serious_violations
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
