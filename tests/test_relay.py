"""Real aiortc peers over loopback through the running server: delay, stability, mutes."""

from __future__ import annotations

import asyncio
import statistics

import aiohttp
import pytest

from relay.media.audio_format import RATE
from testkit.local_server import LocalServer
from testkit.probe import delayed_overhead_s, find_markers, media_time_of, quiet_runs

from .conftest import open_call

CALL_S = 60.0


@pytest.mark.slow
async def test_sixty_second_call_delay_stability_and_mute(server: LocalServer, http: aiohttp.ClientSession) -> None:
    call = await open_call(server, http, counselor="anna", record_s=CALL_S + 10)
    try:
        await asyncio.sleep(20.0)
        # Push a mute span for audio the counselor has not heard yet.
        stats = (await call.counselor_api.call(call.call_id))["stats"]
        start = int(stats["playout_media_s"] / 0.5) * 0.5 + 1.2  # 0.2 s after a marker, >= 0.7 s ahead
        end = start + 0.6
        pushed = await call.counselor_api.mute(call.call_id, start, end)
        assert pushed["late_s"] == 0.0
        await asyncio.sleep(CALL_S - 20.0)
        final = await call.counselor_api.call(call.call_id)
    finally:
        await call.close()

    d = server.delay_s
    heard = call.counselor.recorder
    overhead = delayed_overhead_s()
    markers = find_markers(call.customer_source, heard, expected_delay_s=d + overhead)
    delays = [m.delay_s for m in markers]
    # One marker every 0.5 s over ~58 s of delayed audio, less the muted one.
    assert len(markers) >= 100, f"only {len(markers)} markers found"
    median = statistics.median(delays)
    assert d <= median <= d + overhead + 0.1, f"delay {median:.3f} s for D = {d}"
    # Stable: the server never re-anchored, skipped or repeated audio. Measured on the heard
    # stream's own timeline (where each notch lies in the samples the counselor got), which
    # a step of the server's delay moves by 20 ms or more; the wall-clock delays also carry
    # the test process's scheduling on a loaded machine, so they get a looser bound.
    offsets = [m.received_at / RATE - m.media_s for m in markers]
    offset = statistics.median(offsets)
    assert max(abs(x - offset) for x in offsets) <= 0.005, (
        f"heard timeline moved {min(offsets):.4f}..{max(offsets):.4f}"
    )
    assert max(abs(x - median) for x in delays) <= 0.050, f"delay wandered {min(delays):.3f}..{max(delays):.3f}"
    # Stable over the call: the last markers are no later than the first ones.
    assert abs(statistics.mean(delays[-10:]) - statistics.mean(delays[:10])) <= 0.010

    # The mute silenced exactly [start, end) of the customer's media.
    gaps = quiet_runs(heard.samples, min_s=0.3)
    inside_call = [g for g in gaps if markers[0].received_at < g[0] < markers[-1].received_at]
    assert len(inside_call) == 1, f"expected one muted stretch, found {inside_call}"
    gap_start, gap_end = (media_time_of(markers, i) for i in inside_call[0])
    assert abs(gap_start - start) <= 0.020 and abs(gap_end - end) <= 0.020, (gap_start, gap_end, start, end)
    assert final["stats"]["muted_s"] == pytest.approx(0.6, abs=0.03)
    assert final["stats"]["late_frames"] == 0 and final["stats"]["lost_s"] < 0.1

    # The counselor's voice reaches the customer undelayed.
    back = find_markers(call.counselor_source, call.customer.recorder, expected_delay_s=0.15)
    assert len(back) >= 100
    assert max(m.delay_s for m in back) < 0.4
