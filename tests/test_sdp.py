import re

import pytest
from aiortc import RTCPeerConnection

from relay.webrtc.sdp import BadSdp, answered_ptime_ms, check_offer, with_ptime


async def _offer(audio: bool = True) -> str:
    pc = RTCPeerConnection()
    if audio:
        pc.addTransceiver("audio", direction="sendrecv")
    else:
        pc.createDataChannel("x")
    await pc.setLocalDescription(await pc.createOffer())
    sdp = pc.localDescription.sdp
    await pc.close()
    return sdp


async def test_a_real_offer_passes() -> None:
    sdp = await _offer()
    assert check_offer(sdp, []) == sdp


@pytest.mark.parametrize("bad", [None, "", 42, "v=0\r\nthis is not sdp", "x" * 70000])
def test_malformed_offers_are_refused(bad: object) -> None:
    with pytest.raises(BadSdp):
        check_offer(bad, [])


async def test_offer_without_audio_is_refused() -> None:
    with pytest.raises(BadSdp, match="no audio"):
        check_offer(await _offer(audio=False), [])


async def test_candidates_outside_allowed_networks_are_dropped() -> None:
    sdp = await _offer()
    extra = (
        "a=candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host\r\n"
        "a=candidate:2 1 udp 2122260223 abcd-1234.local 50001 typ host\r\n"
        "a=candidate:3 1 udp 2122260223 127.0.0.1 50002 typ host\r\n"
    )
    sdp = sdp.replace("a=end-of-candidates", extra + "a=end-of-candidates")
    kept = check_offer(sdp, ["127.0.0.0/8"])
    assert "127.0.0.1 50002" in kept
    assert "192.0.2.7" not in kept and ".local" not in kept
    assert "192.0.2.7" in check_offer(sdp, [])


@pytest.mark.parametrize("strip", ["a=ice-ufrag:", "a=fingerprint:"])
async def test_offer_without_ice_credentials_or_fingerprint_is_refused(strip: str) -> None:
    sdp = "\r\n".join(line for line in (await _offer()).split("\r\n") if not line.startswith(strip))
    with pytest.raises(BadSdp, match="ICE credentials or a DTLS fingerprint"):
        check_offer(sdp, [])


def _sub(sdp: str, pattern: str, replacement: str) -> str:
    changed = re.sub(pattern, replacement, sdp, flags=re.M)
    assert changed != sdp, pattern
    return changed


# Each of these passed the first pre-check and failed later inside aiortc or the socket
# layer (AssertionError, OverflowError in the log).
BROKEN = {
    "fingerprint md5": (r"^a=fingerprint:\S+", "a=fingerprint:md5", "DTLS fingerprint"),
    "fingerprint garbage": (r"^a=fingerprint:.*$", "a=fingerprint:sha-256 zz", "DTLS fingerprint"),
    "fingerprint empty": (r"^a=fingerprint:.*$", "a=fingerprint:", "DTLS fingerprint"),
    "candidate port": (r"^(a=candidate:\S+ \d+ \S+ \d+ \S+) \d+", r"\1 99999999", "ICE candidate"),
    "candidate garbage": (r"^a=candidate:.*$", "a=candidate:garbage here", "ICE candidate"),
    "candidate priority": (r"^(a=candidate:\S+ \d+ \S+) \d+", r"\1 99999999999999999999", "ICE candidate"),
    "candidate address": (r"^(a=candidate:\S+ \d+ \S+ \d+) \S+", r"\1 999.1.1.1", "ICE candidate"),
    "candidate type": (r"typ host", "typ bogus", "ICE candidate"),
    "candidate transport": (r"^(a=candidate:\S+ \d+) udp", r"\1 sctp", "ICE candidate"),
    "media port": (r"^m=audio \d+", "m=audio 99999999", "media line"),
    "ufrag": (r"^a=ice-ufrag:.*$", "a=ice-ufrag:" + "a" * 600, "ice-ufrag"),
    "pwd": (r"^a=ice-pwd:.*$", "a=ice-pwd:x", "ice-pwd"),
    "opus clock": (r"^a=rtpmap:(\d+) opus/48000/2", r"a=rtpmap:\1 opus/0/2", "clock rate"),
    "ssrc": (r"^a=ssrc:(\d+)", r"a=ssrc:99999999999\1", "SSRC"),
}


@pytest.mark.parametrize("name", BROKEN)
async def test_broken_lines_are_refused_before_aiortc(name: str) -> None:
    pattern, replacement, message = BROKEN[name]
    with pytest.raises(BadSdp, match=message):
        check_offer(_sub(await _offer(), pattern, replacement), [])


async def test_mdns_and_tcp_candidates_of_real_browsers_pass() -> None:
    sdp = (await _offer()).replace(
        "a=end-of-candidates",
        "a=candidate:1467250027 1 udp 2122260223 0b7c3a4e-1c3e-4e0a-9a52-5b7d6c1e2f3a.local 54321 typ host"
        " generation 0\r\n"
        "a=candidate:2 1 tcp 1518280447 192.0.2.7 9 typ host tcptype active\r\n"
        "a=candidate:3 1 udp 1686052607 203.0.113.5 61000 typ srflx raddr 192.0.2.7 rport 54321\r\n"
        "a=end-of-candidates",
    )
    assert check_offer(sdp, []) == sdp


def test_the_answer_asks_for_the_packet_length_in_its_audio_section_only() -> None:
    answer = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=ptime:20\r\na=rtpmap:96 opus/48000/2\r\nm=video 9 RTP 97\r\n"
    asked = with_ptime(answer, 60)
    audio = "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 opus/48000/2\r\na=ptime:60\r\n"
    assert asked == f"v=0\r\n{audio}m=video 9 RTP 97\r\n"
    assert answered_ptime_ms(asked) == 60
    assert answered_ptime_ms(with_ptime("v=0\r\nm=audio 9 RTP 96\r\n", 40)) == 40
    assert answered_ptime_ms("v=0\r\nm=audio 9 RTP 96\r\n") is None
