"""The supervisor's console in headless Chromium: a live call (real aiortc peers) appears
with its counselor, state, delay and moderation health, updates live, opens into its stats
and event stream; a dump on it shows in the stream; once ended it links to QA. A counselor
gets the refusal.
"""

from __future__ import annotations

import asyncio
import os
import re

import aiohttp
import pytest
from playwright.async_api import Page, async_playwright, expect

from testkit.local_server import LocalServer

from .accessibility import serious_violations
from .conftest import PASSWORD, open_call
from .screenshots import screenshot_path

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]


async def _sign_in(page: Page, base_url: str, user: str, lands_on: str) -> None:
    await page.goto(f"{base_url}/login")
    await page.get_by_label("User name").fill(user)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{lands_on}")


async def test_supervisor_console(server: LocalServer, http: aiohttp.ClientSession) -> None:
    assert os.path.exists(CHROMIUM), "Debian's chromium is missing: run scripts/install-test-deps"
    await asyncio.wait_for(_console(server, http), timeout=60)


async def _console(server: LocalServer, http: aiohttp.ClientSession) -> None:
    call = await open_call(server, http, counselor="anna")
    ended = False
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = await (await browser.new_context(viewport={"width": 1400, "height": 900})).new_page()
            page.set_default_timeout(10000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            # Supervisors land on the console; the live call is listed with its health.
            await _sign_in(page, server.base_url, "sue", "/supervisor")
            row = page.locator(f'#live-calls tr[data-call-id="{call.call_id}"]')
            await expect(row).to_contain_text("anna")
            await expect(row.locator(".sv-state")).to_have_text("active")
            await expect(row.locator(".sv-delay")).to_have_text(f"{server.delay_s:.1f} s")
            await expect(row).to_contain_text("unavailable · kw ready · cls unavailable")
            await expect(page.locator("#health")).to_contain_text("Moderation cannot run")
            # Live: the duration moves on by itself.
            first = await row.locator(".sv-duration").text_content()
            await expect(row.locator(".sv-duration")).not_to_have_text(first or "", timeout=4000)

            # The call opens into its live stats and its event stream.
            await row.click()
            await expect(page.locator("#detail-title")).to_contain_text(call.call_id)
            heard = page.locator("#detail-stats dd").nth(1)
            await expect(heard).not_to_have_text("–")
            before = await heard.text_content()
            await expect(heard).not_to_have_text(before or "", timeout=4000)  # stats once a second
            await call.counselor_api.request("POST", f"/api/calls/{call.call_id}/dump", {})
            mute = page.locator('#detail-events li[data-type="mute"]')
            await expect(mute).to_contain_text('"kind":"dump"')

            # Ended, the call leaves the live list and links to QA.
            await call.close()
            ended = True
            await expect(row).to_have_count(0)
            link = page.locator(f'#ended-calls tr[data-call-id="{call.call_id}"] a')
            await expect(link).to_have_attribute("href", f"/qa#{call.call_id}")
            await expect(page.locator(f'#ended-calls tr[data-call-id="{call.call_id}"] .sv-reason')).to_have_text(
                "hangup"
            )
            assert errors == []

            # In Korean on asking (and by default for a Korean browser), every word in the catalogue.
            await page.goto(f"{server.base_url}/supervisor?lang=ko")
            await expect(page.locator("#live-title")).to_have_text("진행 중인 통화")
            await expect(page.locator("#page-status")).to_have_text(
                re.compile(r"^진행 중인 통화 \d+건\. 1초마다 갱신됩니다\.$")
            )
            await expect(page.locator("#ended-calls thead")).to_contain_text("종료 사유")
            assert await serious_violations(page) == []
            await page.screenshot(path=screenshot_path("supervisor-desktop-ko.png"), full_page=True)
            assert await page.evaluate("window.callguardMissingMessages") == []
            await page.goto(f"{server.base_url}/supervisor?lang=en")

            # A counselor is told the console is not theirs.
            other = await (await browser.new_context()).new_page()
            await _sign_in(other, server.base_url, "ben", "/counselor")
            await other.goto(f"{server.base_url}/supervisor")
            await expect(other.locator("#page-status")).to_have_text("This console is for supervisors.")
            await expect(other.locator("#live-card")).to_be_hidden()
        finally:
            await browser.close()
            if not ended:
                await call.close()


async def test_accounts_on_the_console_and_a_reset_password_changed_at_sign_in(server: LocalServer) -> None:
    await asyncio.wait_for(_accounts(server), timeout=60)


async def _accounts(server: LocalServer) -> None:
    server.add_user("rita", "counselor", PASSWORD)  # this test's own account
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = await (await browser.new_context(viewport={"width": 1400, "height": 900})).new_page()
            page.set_default_timeout(10000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await _sign_in(page, server.base_url, "sue", "/supervisor")
            rita = page.locator('#accounts tr[data-user="rita"]')
            await expect(rita).to_contain_text("counselor")
            await expect(rita.locator(".account-state")).to_have_text("active")
            await expect(page.locator('#accounts tr[data-user="sue"] [data-action="disable"]')).to_have_count(0)
            await rita.locator('[data-action="reset-password"]').click()
            await expect(rita.locator(".account-state")).to_have_text("must change password")
            shown = await page.locator("#account-password").text_content()
            password = (shown or "").rsplit(": ", 1)[1]

            # Rita signs in with it and is asked for her own before anything else.
            other = await (await browser.new_context()).new_page()
            other.set_default_timeout(10000)
            await other.goto(f"{server.base_url}/login")
            await other.locator("#username").fill("rita")
            await other.locator("#password").fill(password)
            await other.locator("#submit").click()
            await expect(other.locator("#change")).to_be_visible()
            await other.locator("#new-password").fill("quiet-meadow-lantern")
            await other.locator("#repeat-password").fill("quiet-meadow-lanter")
            await other.locator("#change-submit").click()
            await expect(other.locator("#change-error")).to_be_visible()  # the two differ
            await other.locator("#repeat-password").fill("quiet-meadow-lantern")
            await other.locator("#change-submit").click()
            await other.wait_for_url("**/counselor")
            await page.reload()
            await expect(page.locator('#accounts tr[data-user="rita"] .account-state')).to_have_text("active")
            assert errors == []
        finally:
            await browser.close()
