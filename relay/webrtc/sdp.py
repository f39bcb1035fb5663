"""Checks on offers from clients before aiortc sees them."""

from __future__ import annotations

import ipaddress

from aiortc.sdp import SessionDescription

MAX_SDP_BYTES = 64 * 1024


class BadSdp(ValueError):
    pass


def check_offer(sdp: object, remote_networks: list[str]) -> str:
    """A usable audio offer, with remote candidates outside `remote_networks` removed.

    aiortc raises assorted errors deep inside setRemoteDescription on bad input; checking
    here gives the client one clear 400 and keeps broken offers away from the call.
    """
    if not isinstance(sdp, str) or not sdp.strip():
        raise BadSdp("sdp must be a non-empty string")
    if len(sdp) > MAX_SDP_BYTES:
        raise BadSdp("sdp is too large")
    if networks := [ipaddress.ip_network(n) for n in remote_networks]:
        sdp = "".join(line for line in sdp.splitlines(keepends=True) if _candidate_allowed(line, networks))
    try:
        parsed = SessionDescription.parse(sdp)
    except Exception as exc:  # the parser raises whatever it trips on
        raise BadSdp(f"sdp could not be parsed: {exc.__class__.__name__}") from None
    audio = [m for m in parsed.media if m.kind == "audio"]
    if not audio:
        raise BadSdp("sdp offers no audio")
    if len(audio) > 1:
        raise BadSdp("sdp offers more than one audio track")
    if not any(codec.mimeType.lower() == "audio/opus" for m in audio for codec in m.rtp.codecs):
        raise BadSdp("sdp offers no Opus audio")
    if any(m.ice is None or m.ice.usernameFragment is None or m.dtls is None or not m.dtls.fingerprints for m in audio):
        raise BadSdp("sdp lacks ICE credentials or a DTLS fingerprint")
    return sdp


def _candidate_allowed(line: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    if not line.startswith("a=candidate:"):
        return True
    fields = line.split()
    if len(fields) < 6:
        return False
    try:
        address = ipaddress.ip_address(fields[4])
    except ValueError:  # an mDNS name (xxxx.local): not resolvable inside allowed networks
        return False
    return any(address in n for n in networks)
