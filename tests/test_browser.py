"""Two real Chromium browsers on a call through the server: login, invite, join, audio both ways.

Each browser's fake microphone plays a looping WAV of tone bursts at irregular times (the
customer at 600 Hz, the counselor at 900 Hz). With ?measure=1 each page records, in
wall-clock milliseconds, the onsets of bursts in its own microphone and in the audio it
receives (static/measure.js). Matching the customer's sent onsets with the counselor's
received ones gives the customer -> counselor delay (should be the configured D); the
other direction should be nearly immediate.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect

from relay.config import WebRTCConfig
from tests.conftest import PASSWORD
from tests.screenshots import screenshot_path
from tests.wav import tone_bursts, write_wav

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
LOOP_S = 3.0
CUSTOMER_TONE, CUSTOMER_ONSETS = 600.0, (0.0, 0.35, 1.0, 2.1)
COUNSELOR_TONE, COUNSELOR_ONSETS = 900.0, (0.0, 0.6, 1.1, 2.3)
MEASURE_S = 8.0


def chromium_args(mic_wav: Path) -> list[str]:
    return [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_wav}",
        "--allow-loopback-in-peer-connection",
        "--autoplay-policy=no-user-gesture-required",
    ]


def estimate_delay(sent_ms: list[float], received_ms: list[float], max_s: float = 3.5) -> tuple[float, int]:
    """The delay (s) that lines up the most received onsets with sent ones, and how many it lines up.

    The bursts loop, so each received onset is compared with every earlier sent onset; the
    irregular spacing means only the true delay collects a vote from nearly every one.
    """
    pairs = [(r, r - s) for r in received_ms for s in sent_ms if 0 < r - s < max_s * 1000]
    if not pairs:
        return float("nan"), 0
    best: list[tuple[float, float]] = []
    for _, centre in pairs:
        near = [(r, d) for r, d in pairs if abs(d - centre) <= 60]
        if len({r for r, _ in near}) > len({r for r, _ in best}):
            best = near
    return statistics.median(d for _, d in best) / 1000, len({r for r, _ in best})


def tone_levels(levels: list[dict[str, Any]], since_ms: float) -> tuple[float, float]:
    """Mean amplitude at (600 Hz, 900 Hz) over the windows that carry sound."""
    loud = [lv["tones"] for lv in levels if lv["at"] >= since_ms and lv["rms"] > 0.02]
    if not loud:
        return 0.0, 0.0
    return (statistics.fmean(t[0] for t in loud), statistics.fmean(t[1] for t in loud))


async def test_two_browsers_call(server, tmp_path: Path) -> None:
    # Never skipped: a CI machine without the browser must fail, not pass quietly.
    assert os.path.exists(CHROMIUM), "Debian's chromium is missing: run scripts/install-test-deps"
    await asyncio.wait_for(_call_flow(server, tmp_path), timeout=110)


async def _call_flow(server, tmp_path: Path) -> None:
    customer_wav = write_wav(tmp_path / "customer.wav", tone_bursts(CUSTOMER_TONE, CUSTOMER_ONSETS, LOOP_S))
    counselor_wav = write_wav(tmp_path / "counselor.wav", tone_bursts(COUNSELOR_TONE, COUNSELOR_ONSETS, LOOP_S))
    async with async_playwright() as pw:
        counselor_browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(counselor_wav)
        )
        customer_browser = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=chromium_args(customer_wav)
        )
        try:
            counselor = await (await counselor_browser.new_context()).new_page()
            customer = await (await customer_browser.new_context()).new_page()
            for page in (counselor, customer):
                page.set_default_timeout(15000)

            # Sign in: a wrong password first shows the API's message, then the right one.
            await counselor.goto(f"{server.base_url}/login?measure=1")
            await counselor.get_by_label("User name").fill("ben")
            await counselor.get_by_label("Password").fill("not-the-password")
            await counselor.get_by_role("button", name="Sign in").click()
            await expect(counselor.get_by_role("alert")).to_have_text("Wrong user name or password.")
            await counselor.screenshot(path=screenshot_path("callguard-login.png"))
            await counselor.get_by_label("Password").fill(PASSWORD)
            await counselor.get_by_role("button", name="Sign in").click()
            await counselor.wait_for_url("**/counselor?measure=1")
            await expect(counselor.locator("#who")).to_have_text("Signed in as ben (counselor)")

            await counselor.get_by_role("button", name="Start call").click()
            invite = counselor.get_by_label("Invite link for the customer")
            await expect(invite).to_have_value(re.compile(rf"^{re.escape(server.base_url)}/join/\S+#\S+$"))
            invite_url = await invite.input_value()
            await expect(counselor.locator("#call-status")).to_have_text("Waiting for the customer to join")
            # A reload before the customer has joined gives the counselor the same link back.
            await counselor.reload()
            await expect(invite).to_have_value(invite_url)
            await expect(counselor.locator("#invite-note")).to_be_hidden()
            await expect(counselor.locator("#peer-you")).to_have_text("connected")
            await expect(counselor.locator("#delay")).to_contain_text(
                f"Customer audio reaches you {server.delay_s} s late"
            )

            path, token = invite_url.split("#", 1)
            await customer.goto(f"{path}?measure=1#{token}")
            await expect(customer.locator("#status")).to_have_text("Ready to join")
            await customer.get_by_role("button", name="Join call").click()
            await expect(customer.locator("#status")).to_have_text("Connected")
            await expect(counselor.locator("#call-status")).to_have_text("Call in progress")
            await expect(counselor.locator("#peer-customer")).to_have_text("connected")
            await expect(counselor.locator("#peer-you")).to_have_text("connected")
            assert await customer.evaluate("window.callguard.peer") == "connected"
            assert await counselor.evaluate("window.callguard.peer") == "connected"

            connected_at = await customer.evaluate("performance.timeOrigin + performance.now()")
            await asyncio.sleep(MEASURE_S)
            heard_by_counselor = await counselor.evaluate("window.callguard.meters.snapshot()")
            heard_by_customer = await customer.evaluate("window.callguard.meters.snapshot()")
            await expect(counselor.locator("#stat-buffered")).to_contain_text(" s")
            await expect(counselor.locator("#stat-delay")).to_contain_text(" s")
            # The customer's Chromium sends the packet length the server's answer asked for
            # (webrtc.uplink_ptime_ms, a=ptime): libwebrtc sets its Opus frame length from it.
            stats = await counselor.evaluate("window.callguard.stats")
            packet_s = stats["received_media_s"] / stats["frames_in"]
            assert abs(packet_s - WebRTCConfig().uplink_ptime_ms / 1000) < 0.002, stats
            # This server has no speech model: the counselor is told, and nothing pretends to check.
            await expect(counselor.locator("#moderation")).to_have_text(
                "Moderation unavailable: you hear the customer unchecked."
            )
            await expect(counselor.locator("#stat-lag")).to_have_text("not checked")
            await expect(counselor.locator("#transcript-card")).to_be_hidden()
            await counselor.screenshot(path=screenshot_path("callguard-counselor.png"), full_page=True)
            await customer.screenshot(path=screenshot_path("callguard-customer.png"), full_page=True)

            # Customer -> counselor: late by the configured delay.
            delay, support = estimate_delay(
                heard_by_customer["local"]["onsets"], heard_by_counselor["remote"]["onsets"]
            )
            print(f"customer -> counselor: {delay:.3f} s over {support} bursts (configured {server.delay_s} s)")
            assert support >= 4, heard_by_counselor["remote"]["onsets"]
            assert abs(delay - server.delay_s) <= 0.3
            low, high = tone_levels(heard_by_counselor["remote"]["levels"], connected_at)
            assert low > 0.05 and low > 3 * high, (low, high)

            # Counselor -> customer: at once.
            back, support = estimate_delay(heard_by_counselor["local"]["onsets"], heard_by_customer["remote"]["onsets"])
            print(f"counselor -> customer: {back:.3f} s over {support} bursts")
            assert support >= 4, heard_by_customer["remote"]["onsets"]
            assert 0 < back < 0.5
            low, high = tone_levels(heard_by_customer["remote"]["levels"], connected_at)
            assert high > 0.05 and high > 3 * low, (low, high)

            # Reloads rejoin the running call: the customer with the same link, the counselor
            # from the list of running calls (the customer has joined: no invite shown).
            await customer.reload()
            await expect(customer.locator("#status")).to_have_text("Connected")
            await counselor.reload()
            await expect(counselor.locator("#invite-note")).to_be_visible()
            await expect(counselor.locator("#invite")).to_be_hidden()
            await expect(counselor.locator("#peer-you")).to_have_text("connected")
            await expect(counselor.locator("#peer-customer")).to_have_text("connected")

            # The customer's tab closes without hanging up: within about 5 s the counselor
            # sees them lost, with the time left to come back; the link brings them back.
            await customer.close()
            closed = asyncio.get_running_loop().time()
            await expect(counselor.locator("#call-status")).to_contain_text(
                "Customer lost: no audio from them. Waiting", timeout=9000
            )
            lost_after = asyncio.get_running_loop().time() - closed
            print(f"customer lost noticed after {lost_after:.1f} s")
            assert lost_after < 8.0
            await expect(counselor.locator("#peer-customer")).to_have_text(re.compile(r"^lost, waiting \d+ s$"))
            await expect(counselor.locator("#call-status")).to_have_attribute("data-tone", "bad")
            await counselor.screenshot(path=screenshot_path("callguard-counselor-lost.png"))
            customer = await (await customer_browser.new_context()).new_page()
            customer.set_default_timeout(15000)
            await customer.goto(f"{path}?measure=1#{token}")
            await customer.get_by_role("button", name="Join call").click()
            await expect(customer.locator("#status")).to_have_text("Connected")
            await expect(counselor.locator("#call-status")).to_have_text("Call in progress")
            await expect(counselor.locator("#peer-customer")).to_have_text("connected")

            # The customer hangs up: both pages say so.
            await customer.get_by_role("button", name="Hang up").click()
            await expect(customer.locator("#status")).to_have_text("Call ended")
            await expect(counselor.locator("#call-status")).to_have_text("Call ended.")
            await expect(counselor.get_by_role("button", name="Start a new call")).to_be_visible()

            # The used link, and a mangled one, are explained in plain words.
            await customer.reload()
            await expect(customer.locator("#status")).to_have_text("Call ended")
            await expect(customer.locator("#detail")).to_contain_text("ask for a new link")
            await customer.screenshot(path=screenshot_path("callguard-customer-ended.png"))
            await customer.goto(f"{path}#not-a-real-token")
            await expect(customer.locator("#status")).to_have_text("Link not valid")
            await expect(customer.get_by_role("button", name="Join call")).to_be_hidden()
        finally:
            await asyncio.gather(counselor_browser.close(), customer_browser.close(), return_exceptions=True)
