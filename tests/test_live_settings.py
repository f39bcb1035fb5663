"""Delay changed live (relay/calls/live_settings.py), end to end: real aiortc peers over
loopback through the running server. A supervisor raises the delay mid-call, then lowers
it again; the counselor's received audio shows each new delay (measured from the notches
of the customer's marked tone, as tests/test_relay.py measures it) and no gap: the rise
is a stretch, the fall is taken from the customer's pauses.
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass

import aiohttp
import numpy as np

from testkit.client import ApiClient
from testkit.local_server import LocalServer
from testkit.probe import MarkerSource, delayed_overhead_s, find_markers, media_time_of, quiet_runs

from .conftest import PASSWORD, LiveCall, open_call

RISE_S = 0.5
CYCLE_S = 4.0
SPEECH = (0.2, 2.7)  # of each cycle: the tone (notches at 1.0 and 2.0 s), then a 1.5 s pause


@dataclass
class SpeechWithPauses(MarkerSource):
    """The marker tone (a notch every second) in 2.5 s stretches, with 1.5 s pauses between."""

    period_s: float = 1.0

    def frame(self, n: int) -> np.ndarray:
        out = super().frame(n)
        at = (n * out.size + np.arange(out.size)) / 48000 % CYCLE_S
        out[(at < SPEECH[0]) | (at >= SPEECH[1])] = 0
        return out


async def _stats_until(api: ApiClient, call_id: str, reached, timeout: float = 12.0) -> dict:  # type: ignore[no-untyped-def,type-arg]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        stats = (await api.call(call_id))["stats"]
        if reached(stats["delay_now_s"]) or loop.time() > end:
            return stats  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)


async def test_a_supervisor_raises_and_lowers_the_delay_mid_call(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    d = server.delay_s
    source = SpeechWithPauses(freq=600.0)
    call: LiveCall = await open_call(server, http, counselor="anna", record_s=40.0, customer_source=source)
    sue = ApiClient(server.base_url, http)
    await sue.login("sue", PASSWORD)
    path = f"/api/calls/{call.call_id}/settings"
    try:
        await asyncio.sleep(4.0)
        at_rise = (await call.counselor_api.call(call.call_id))["stats"]
        await sue.request("PATCH", path, {"delay_s": d + RISE_S, "max_s": d + RISE_S})
        risen = await _stats_until(call.counselor_api, call.call_id, lambda now: now >= d + RISE_S - 1e-6)
        await asyncio.sleep(5.0)
        at_fall = (await call.counselor_api.call(call.call_id))["stats"]
        await sue.request("PATCH", path, {"delay_s": d, "max_s": d})
        back = await _stats_until(call.counselor_api, call.call_id, lambda now: abs(now - d) < 1e-6)
        await asyncio.sleep(4.0)
        final = (await call.counselor_api.call(call.call_id))["stats"]
    finally:
        await call.close()

    assert risen["delay_now_s"] >= d + RISE_S - 1e-6 and back["delay_now_s"] == d, (risen, back)
    heard = call.counselor.recorder
    # Notches a second apart: the window of +-0.5 s around the midpoint holds one match each.
    markers = find_markers(source, heard, expected_delay_s=d + delayed_overhead_s() + RISE_S / 2)
    during = [m.delay_s for m in markers if risen["playout_media_s"] < m.media_s < at_fall["playout_media_s"]]
    after = [m.delay_s for m in markers if m.media_s > back["playout_media_s"]]
    assert len(during) >= 2 and len(after) >= 1, (markers, risen, at_fall, back)
    base = statistics.median(after)
    # D + 0.13..0.21 s on an idle machine; the receiving peer's buffer adds more under load
    # (tests/test_relay.py holds the absolute delay; this test, the change).
    assert d <= base <= d + delayed_overhead_s() + 0.35, f"delay {base:.3f} s for D = {d}"
    # The counselor hears the new delay (to within 30 ms), then the old one again. Single
    # markers may wander more on a loaded machine (the receiving peer shares the CPU).
    assert abs(statistics.median(during) - (base + RISE_S)) <= 0.03, (base, during)
    assert all(abs(x - (base + RISE_S)) <= 0.15 for x in during) and all(abs(x - base) <= 0.15 for x in after)

    # No gap from the rise on: silence in what the counselor heard is the notches (under
    # 20 ms) and the customer's pauses (1.5 s, 1 s where the fall shortened one), nothing between.
    changed = [m for m in markers if m.media_s >= at_rise["playout_media_s"]]
    start, end = changed[0].received_at - 24000, markers[-1].received_at
    gaps = [(a, b) for a, b in quiet_runs(heard.samples, min_s=0.018, max_s=0.8) if start < a < end]
    assert gaps == [], ([(media_time_of(markers, a), (b - a) / 48000) for a, b in gaps], at_rise, final)
    assert final["lost_s"] - at_rise["lost_s"] < 0.02  # nothing went missing on the way either
    assert final["delay_now_s"] == d and final["pause_cut_s"] >= RISE_S - 0.02
    assert final["stretched_s"] > 0 and final["late_frames"] == 0
