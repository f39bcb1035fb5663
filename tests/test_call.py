"""Dump and hold to mute on a live call with real aiortc peers: the counselor stops hearing
what was muted, the call goes on, and both are decision records with source "manual" in QA.
"""

from __future__ import annotations

import asyncio

import aiohttp
import numpy as np

from testkit.client import ApiClient, ApiFailure
from testkit.local_server import LocalServer

from .conftest import PASSWORD, assert_flowing, open_call

RATE = 48000
LOUD = 3000  # the customer's tone peaks near 9800 at the counselor


def _loudest(samples: np.ndarray) -> int:
    return int(np.abs(samples.astype(np.int32)).max()) if samples.size else 0


async def test_dump_and_hold_silence_the_counselor_and_are_logged(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    call = await open_call(server, http, counselor="ben")
    api, recorder = call.counselor_api, call.counselor.recorder
    assert recorder is not None
    try:
        await asyncio.sleep(server.delay_s + 0.5)
        await assert_flowing(call)

        # Dump: everything received and not yet played, about the delay's worth.
        at = recorder.length
        span = await api.request("POST", f"/api/calls/{call.call_id}/dump", {})
        assert span["kind"] == "dump" and span["late_s"] == 0.0
        assert 0.8 * server.delay_s < span["end"] - span["start"] < server.delay_s + 0.5, span
        await asyncio.sleep(server.delay_s + 0.4)
        heard = recorder.samples[at:]
        # From just after the press until about the delay later, nothing is heard.
        assert _loudest(heard[int(0.25 * RATE) : int((server.delay_s - 0.3) * RATE)]) < LOUD
        await assert_flowing(call)  # then the customer is heard again

        # Hold: silent from the press to the release, then the customer again.
        await api.request("POST", f"/api/calls/{call.call_id}/hold", {})
        again = await api.request("POST", f"/api/calls/{call.call_id}/hold", {})  # a repeat is harmless
        assert again["holding"] is True
        pressed = recorder.length
        await asyncio.sleep(0.9)
        released = recorder.length
        held = await api.request("DELETE", f"/api/calls/{call.call_id}/hold", {})
        assert held["kind"] == "hold" and 0.6 < held["end"] - held["start"] < 1.3, held
        assert _loudest(recorder.samples[pressed + int(0.25 * RATE) : released]) < LOUD
        await assert_flowing(call, seconds=0.6)
        try:
            await api.request("DELETE", f"/api/calls/{call.call_id}/hold", {})
            raise AssertionError("a second release must be refused")
        except ApiFailure as failure:
            assert (failure.status, failure.code) == (409, "not_holding")
        listed = (await api.call(call.call_id))["stats"]
        assert listed["muted_s"] > 1.4
    finally:
        await call.close()

    # QA sees both, as manual decisions with who made them.
    sue = ApiClient(server.base_url, http)
    await sue.login("sue", PASSWORD)
    logged = await sue.request("GET", f"/api/qa/calls/{call.call_id}")
    manual = [d for d in logged["decisions"] if d["hits"] and d["hits"][0]["source"] == "manual"]
    assert [d["categories"] for d in manual] == [["dump"], ["hold"]]
    assert all(d["hits"][0]["detail"] == "by ben" and not d["provisional"] for d in manual)
    assert {"kind": "dump", "span_id": span["span_id"]}.items() <= next(
        e["detail"] for e in logged["events"] if e["kind"] == "mute"
    ).items()
    assert [e["detail"]["state"] for e in logged["events"] if e["kind"] == "hold"] == ["on", "off"]


async def test_dump_refusals(server: LocalServer, http: aiohttp.ClientSession, anna: ApiClient) -> None:
    created = await anna.create_call()
    call_id = created["call_id"]
    try:
        # Nothing received yet: nothing to dump.
        try:
            await anna.request("POST", f"/api/calls/{call_id}/dump", {})
            raise AssertionError("an empty buffer must not be dumped")
        except ApiFailure as failure:
            assert (failure.status, failure.code) == (409, "nothing_to_dump")
        ben = ApiClient(server.base_url, http)
        await ben.login("ben", PASSWORD)
        for method, path in (("POST", "dump"), ("POST", "hold"), ("DELETE", "hold"), ("POST", "report")):
            try:
                await ben.request(method, f"/api/calls/{call_id}/{path}", {})
                raise AssertionError(f"{method} {path} by another counselor must be refused")
            except ApiFailure as failure:
                assert failure.status == 403
    finally:
        await anna.hangup(call_id)
    try:
        await anna.request("POST", f"/api/calls/{call_id}/dump", {})
        raise AssertionError("an ended call must not be dumped")
    except ApiFailure as failure:
        assert failure.status == 404
