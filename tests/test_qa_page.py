"""The QA page in headless Chromium: open a logged call, its spans and words are shown,
both recordings decode, A/B playback runs, marks are saved (and land in qa_marks), and a
counselor gets the refusal and nothing else.

The call is written by the product's own CallLog (tests/logged_calls.py) into the data
folder of a running server, as if the server had logged it.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright, expect

from relay.records.database import database_file, open_database
from tests.conftest import PASSWORD, start_server
from tests.logged_calls import ABUSIVE_CALL, CLEAN_CALL, LoggedCall, write_logged_call
from tests.screenshots import screenshot_path

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CALL_ID = "c_qapage1"
UNCHECKED_ID = "c_qapage2"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]


async def test_qa_page(tmp_path: Path) -> None:
    assert os.path.exists(CHROMIUM), "Debian's chromium is missing: run scripts/install-test-deps"
    server = start_server(tmp_path)
    # The server's own database (WAL: this connection and the server's work side by side).
    db = open_database(database_file(server.data_dir))
    try:
        call = LoggedCall(CALL_ID, "anna", time.time() - 60, ABUSIVE_CALL, stretches=[(2.0, 2.6, 1.62)])
        write_logged_call(db, server.data_dir, call)
        # A call nobody checked (no speech model), whose counselor joined 2 s before the
        # customer's first audio: the counselor's file starts before media time 0.
        unchecked = LoggedCall(
            UNCHECKED_ID, "anna", time.time() - 600, CLEAN_CALL, stt_state="unavailable", undecided_s=9.0
        )
        write_logged_call(db, server.data_dir, unchecked)
        db.execute(
            "UPDATE call_recordings SET media_s = -2.0 WHERE call_id = ? AND stream = 'counselor'", (UNCHECKED_ID,)
        )
        # Its delivered file's media time stepped 0.5 s at 2.0 s into the file (playout re-anchored).
        db.execute("INSERT INTO call_recording_sync VALUES (?, 'delivered', 2.0, 2.5)", (UNCHECKED_ID,))
        await asyncio.wait_for(_review(server.base_url, db), timeout=60)
    finally:
        db.close()
        server.stop()


async def _sign_in(page: Page, base_url: str, user: str, lands_on: str) -> None:
    await page.goto(f"{base_url}/login")
    await page.get_by_label("User name").fill(user)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"**{lands_on}")


async def _review(base_url: str, db) -> None:  # type: ignore[no-untyped-def]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = await (await browser.new_context(viewport={"width": 1280, "height": 900})).new_page()
            page.set_default_timeout(10000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            # QA staff land on /qa after sign-in; the logged call is in the list.
            await _sign_in(page, base_url, "quinn", "/qa")
            row = page.locator(f'#calls tr[data-call-id="{CALL_ID}"]')
            await expect(row).to_contain_text("anna")
            # The call's own length (9 s of speech heard 1.5 s late), its moderation state, its mutes.
            await expect(row.locator("td").nth(2)).to_have_text("0:11")
            await expect(row.locator("td").nth(3)).to_have_text("Checked")
            await expect(row.locator("td").nth(4)).to_have_text("3")
            other = page.locator(f'#calls tr[data-call-id="{UNCHECKED_ID}"]')
            await expect(other.locator("td").nth(3)).to_have_text("Unchecked")
            await expect(other.locator("td").nth(4)).to_have_text("–")  # not "0": nothing was checked
            # The filters ask the server: an unchecked call is not one "without mutes".
            await page.get_by_label("Mutes").select_option("0")
            await expect(page.locator("#list-status")).to_have_text("No logged calls match these filters.")
            await page.get_by_label("Mutes").select_option("")
            await page.get_by_label("Moderation").select_option("unchecked")
            await expect(page.locator("#calls tbody tr")).to_have_count(1)
            await expect(other).to_be_visible()
            await page.get_by_label("Moderation").select_option("")
            await page.get_by_label("Mutes").select_option("1")

            # The original decodes last this time: playback must still start on A.
            async def late_original(route) -> None:  # type: ignore[no-untyped-def]
                await asyncio.sleep(1.0)
                await route.continue_()

            await page.route("**/audio/customer", late_original)
            await row.click()
            await page.wait_for_url(f"**/qa#{CALL_ID}")

            # The three spans with their reasons, the words under the timeline.
            spans = page.locator("#spans tbody tr")
            await expect(spans).to_have_count(3)
            await expect(spans.nth(0)).to_contain_text("씨발")
            await expect(spans.nth(0)).to_contain_text("profanity")
            await expect(spans.nth(1)).to_contain_text("insult")
            await expect(spans.nth(2)).to_contain_text("개새끼")
            await expect(spans.nth(0)).to_contain_text("keyword · profanity · 1.00 / 1.00")
            await expect(page.locator(".qa-span-layer .qa-span")).to_have_count(3)
            # Where the elastic delay slowed playout, along the top of the waveforms.
            stretch = page.locator(".qa-span-layer .qa-stretch")
            await expect(stretch).to_have_count(1)
            await expect(stretch).to_have_attribute("title", re.compile(r"playout slowed .*1\.62 s"))
            words = page.locator(".qa-word-lane .qa-word")
            await expect(words).to_have_count(len(ABUSIVE_CALL))
            await expect(words.first).to_have_text("안녕하세요")
            await expect(page.locator(".qa-word.muted")).to_have_count(3)

            # The moderation state and the checks in a sentence, the long detail folded away.
            await expect(page.locator("#call-facts")).to_contain_text(
                "Checked: the counselor heard nothing before it was judged."
            )
            checks = page.locator("#checks")
            await expect(checks).to_contain_text("Judged by speech recognition, keyword lists kw-")
            await expect(checks).to_contain_text("classifier off")
            await expect(checks.locator("details")).not_to_have_attribute("open", "")
            await expect(checks.get_by_text("test double: scripted words")).to_be_hidden()

            # All three recordings were fetched and decoded: ~9 s each on the timeline.
            for stream in ("customer", "delivered", "counselor"):
                wave = page.locator(f'.qa-wave[data-stream="{stream}"]')
                await expect(wave).to_have_attribute("data-decoded-s", re.compile(r"^\d+\.\d+$"))
                decoded = float(await wave.get_attribute("data-decoded-s") or "nan")
                assert abs(decoded - 9.0) < 0.2, (stream, decoded)

            # A/B playback starts on A; Play runs, B takes over at the same place, Pause stops.
            assert await page.evaluate("window.callguard.qa.call.loaded") is True
            assert await page.evaluate("window.callguard.qa.call.player.stream") == "customer"
            await expect(page.get_by_role("button", name="A · Original")).to_have_attribute("aria-pressed", "true")
            await page.get_by_role("button", name="Play", exact=True).click()
            await expect(page.get_by_role("button", name="Pause")).to_be_visible()
            # A function, not an expression: Playwright would eval() the string, which the CSP forbids.
            await page.wait_for_function("() => window.callguard.qa.call.player.now() > 0.2")
            await page.get_by_role("button", name="B · Delivered").click()
            await expect(page.get_by_role("button", name="B · Delivered")).to_have_attribute("aria-pressed", "true")
            assert await page.evaluate("window.callguard.qa.call.player.stream") == "delivered"
            # The counselor's voice mixed under B, then alone (C): the lanes heard are marked.
            await page.get_by_label("Mix in the counselor").check()
            heard = "window.callguard.qa.call.player.voice.parts.map((p) => p.stream)"
            assert await page.evaluate(heard) == ["delivered", "counselor"]
            await expect(page.locator(".qa-wave.active")).to_have_count(2)
            await page.get_by_role("button", name="C · Counselor").click()
            assert await page.evaluate(heard) == ["counselor"]
            await expect(page.get_by_label("Mix in the counselor")).to_be_disabled()
            await expect(page.locator('.qa-wave.active[data-stream="counselor"]')).to_have_count(1)
            await page.get_by_role("button", name="Pause").click()
            await expect(page.get_by_role("button", name="Play", exact=True)).to_be_visible()

            # A false positive on span #1: shown on the page, and a row in qa_marks.
            await page.get_by_label("Note for the next mark (optional)").fill("a test note")
            await spans.nth(0).get_by_role("button", name="False positive").click()
            await expect(spans.nth(0)).to_contain_text("Marked false positive")
            marks = page.locator("#marks li")
            await expect(marks).to_have_count(1)
            await expect(marks.first).to_contain_text("False positive")
            await expect(marks.first).to_contain_text("씨발")
            await expect(page.locator(".qa-mark-lane .qa-mark.false_positive")).to_have_count(1)
            rows = db.execute(
                "SELECT kind, span_id, text, note, by_user FROM qa_marks WHERE call_id = ?", (CALL_ID,)
            ).fetchall()
            assert [tuple(r) for r in rows] == [("false_positive", 1, "씨발", "a test note", "quinn")]

            # Missed abuse: drag across 2.3..3.7 s of the waveform, then mark it.
            await page.locator(".qa-timeline").scroll_into_view_if_needed()
            box = await page.locator('.qa-wave[data-stream="customer"]').bounding_box()
            track = await page.locator(".qa-track").bounding_box()
            assert box and track
            pps = track["width"] / await page.evaluate("window.callguard.qa.call.player.end")
            y = box["y"] + box["height"] / 2
            await page.mouse.move(track["x"] + 2.3 * pps, y)
            await page.mouse.down()
            await page.mouse.move(track["x"] + 3.0 * pps, y, steps=4)
            await page.mouse.move(track["x"] + 3.7 * pps, y, steps=4)
            await page.mouse.up()
            await expect(page.locator("#selection-text")).to_contain_text("환불 해주세요")
            await page.get_by_role("button", name="Mark missed abuse").click()
            await expect(marks).to_have_count(2)
            await expect(page.locator("#marks li[data-kind=missed_abuse]")).to_contain_text("환불 해주세요")
            missed = db.execute("SELECT start, end, text FROM qa_marks WHERE kind = 'missed_abuse'").fetchone()
            assert abs(missed["start"] - 2.3) < 0.1 and abs(missed["end"] - 3.7) < 0.1
            assert missed["text"] == "환불 해주세요"

            # Undo the false positive: gone from the page and the database.
            await spans.nth(0).get_by_role("button", name="Undo").click()
            await expect(marks).to_have_count(1)
            await expect(spans.nth(0).get_by_role("button", name="False positive")).to_be_visible()
            assert db.execute("SELECT COUNT(*) FROM qa_marks WHERE kind = 'false_positive'").fetchone()[0] == 0
            await expect(page.get_by_role("link", name="Export evidence (zip)")).to_have_attribute(
                "href", f"/api/qa/calls/{CALL_ID}/export"
            )
            await page.screenshot(path=screenshot_path("callguard-qa.png"), full_page=True)

            # The unchecked call: said so, and its timeline starts where its counselor's file does.
            await page.goto(f"{base_url}/qa#{UNCHECKED_ID}")
            await expect(page.locator("#call-facts")).to_contain_text("Unchecked: moderation was not running; 9.0 s")
            await expect(page.locator("#checks")).to_contain_text("Not checked: speech recognition was unavailable")
            await expect(page.locator('.qa-wave[data-stream="counselor"]')).to_have_attribute(
                "data-decoded-s", re.compile(r"^\d+\.\d+$")
            )
            assert await page.evaluate("window.callguard.qa.call.timeline.start") == -2.0
            # The player and the waveform read the file where the server's Recording.file_at says.
            await page.wait_for_function("() => window.callguard.qa.call.loaded === true")
            clock = "window.callguard.qa.call.player.tracks.delivered.clock"
            assert await page.evaluate(f"[{clock}.toFile(1.0), {clock}.toFile(3.0), {clock}.toMedia(2.5)]") == [
                1.0,
                2.5,
                3.0,
            ]
            assert await page.evaluate("window.callguard.qa.call.player.stream") == "customer"
            assert not errors, errors

            # The same call in Korean: the page's words and sentences from the catalogue.
            await page.goto(f"{base_url}/qa?lang=ko#{CALL_ID}")
            await expect(page.locator("#timeline-title")).to_have_text("듣고 비교하기")
            await expect(page.locator("#call-facts")).to_contain_text(
                "검사됨: 상담원은 판정 전의 음성을 듣지 않았습니다."
            )
            await expect(page.locator("#spans tbody tr").nth(0)).to_contain_text("욕설")
            await page.screenshot(path=screenshot_path("qa-desktop-ko.png"), full_page=True)
            assert await page.evaluate("window.callguardMissingMessages") == []
            assert not errors, errors

            # A counselor (even the call's own) gets the refusal, and no call data.
            counselor = await (await browser.new_context()).new_page()
            counselor.set_default_timeout(10000)
            asked: list[str] = []
            counselor.on("request", lambda request: asked.append(request.url))
            await _sign_in(counselor, base_url, "anna", "/counselor")
            await counselor.goto(f"{base_url}/qa#{CALL_ID}")
            await expect(counselor.locator("#page-status")).to_have_text("QA pages are for QA staff and supervisors.")
            await expect(counselor.locator("#list-view")).to_be_hidden()
            await expect(counselor.locator("#call-view")).to_be_hidden()
            assert await counselor.locator("#spans tbody tr").count() == 0
            assert not [url for url in asked if "/api/qa/" in url], asked
        finally:
            await browser.close()
