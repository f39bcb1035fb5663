import pytest
from aiortc import RTCPeerConnection

from relay.webrtc.sdp import BadSdp, check_offer


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
