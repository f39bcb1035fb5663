"""Checks on offers from clients before aiortc sees them, and the packet length asked of them.

aiortc parses leniently and fails late: a candidate port of 99999999 reaches the socket
layer (OverflowError in the log), an unknown fingerprint algorithm or a garbled one ends
in the DTLS handshake (AssertionError). Here every line aiortc would act on is checked
first (ports, candidates, fingerprints, ICE credentials, SSRCs, the Opus clock) and the
client gets one 400 naming the line that is wrong.
"""

from __future__ import annotations

import ipaddress
import re

from aiortc.sdp import SessionDescription

MAX_SDP_BYTES = 64 * 1024
# RFC 8122 digests; aiortc checks the peer's certificate against one of these.
FINGERPRINT_BYTES = {"sha-1": 20, "sha-224": 28, "sha-256": 32, "sha-384": 48, "sha-512": 64}
CANDIDATE_TYPES = ("host", "srflx", "prflx", "relay")
_FOUNDATION = re.compile(r"[A-Za-z0-9+/]{1,32}")
_ICE_CHARS = re.compile(r"[A-Za-z0-9+/]+")
_MDNS = re.compile(r"[A-Za-z0-9-]{1,63}\.local")
_HEX_PAIR = re.compile(r"[0-9A-Fa-f]{2}")


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
    for line in sdp.splitlines():
        _check_line(line)
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
    opus = [codec for m in audio for codec in m.rtp.codecs if codec.mimeType.lower() == "audio/opus"]
    if not opus:
        raise BadSdp("sdp offers no Opus audio")
    if any(codec.clockRate != 48000 for codec in opus):
        raise BadSdp("sdp offers Opus at a clock rate other than 48000")
    if any(m.ice is None or m.ice.usernameFragment is None or m.dtls is None or not m.dtls.fingerprints for m in audio):
        raise BadSdp("sdp lacks ICE credentials or a DTLS fingerprint")
    return sdp


def _check_line(line: str) -> None:
    if line.startswith("m="):
        fields = line[2:].split()
        if len(fields) < 3 or not _in_range(fields[1].split("/")[0], 0, 65535):
            raise BadSdp(f"media line has no valid port: {_quote(line)}")
    elif line.startswith("a=candidate:"):
        _check_candidate(line)
    elif line.startswith("a=fingerprint:"):
        algorithm, _, value = line[len("a=fingerprint:") :].strip().partition(" ")
        size = FINGERPRINT_BYTES.get(algorithm.lower())
        pairs = value.strip().split(":")
        if size is None or len(pairs) != size or not all(_HEX_PAIR.fullmatch(p) for p in pairs):
            raise BadSdp(f"DTLS fingerprint is not a SHA digest in hex pairs: {_quote(line)}")
    elif line.startswith("a=ice-ufrag:"):
        _check_ice_chars(line, "a=ice-ufrag:", 4)
    elif line.startswith("a=ice-pwd:"):
        _check_ice_chars(line, "a=ice-pwd:", 22)
    elif line.startswith("a=ssrc:"):
        if not _in_range(line[len("a=ssrc:") :].split(" ")[0], 0, 2**32 - 1):
            raise BadSdp(f"SSRC out of range: {_quote(line)}")


def _check_ice_chars(line: str, prefix: str, shortest: int) -> None:
    value = line[len(prefix) :].strip()
    if not shortest <= len(value) <= 256 or not _ICE_CHARS.fullmatch(value):
        raise BadSdp(f"{prefix[2:-1]} must be {shortest}-256 ICE characters")


def _check_candidate(line: str) -> None:
    """RFC 8839: foundation component transport priority address port typ TYPE [raddr A rport P] ..."""
    fields = line[len("a=candidate:") :].split()
    ok = (
        len(fields) >= 8
        and _FOUNDATION.fullmatch(fields[0]) is not None
        and _in_range(fields[1], 1, 256)
        and fields[2].lower() in ("udp", "tcp")
        and _in_range(fields[3], 1, 2**32 - 1)
        and _is_address(fields[4])
        and _in_range(fields[5], 0 if fields[2].lower() == "tcp" else 1, 65535)
        and fields[6] == "typ"
        and fields[7] in CANDIDATE_TYPES
    )
    extensions = dict(zip(fields[8::2], fields[9::2]))
    if "rport" in extensions and not _in_range(extensions["rport"], 0, 65535):
        ok = False
    if not ok:
        raise BadSdp(f"malformed ICE candidate: {_quote(line)}")


def _in_range(text: str, low: int, high: int) -> bool:
    return text.isdigit() and len(text) <= 10 and low <= int(text) <= high


def _is_address(text: str) -> bool:
    if _MDNS.fullmatch(text):
        return True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _quote(line: str) -> str:
    return repr(line[:80] + ("..." if len(line) > 80 else ""))


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


def with_ptime(answer_sdp: str, ptime_ms: int) -> str:
    """The answer with `a=ptime` in its audio section (replacing any there).

    RFC 4566's ptime is the packet length the answering side would like to receive;
    libwebrtc applies a remote description's ptime to its Opus encoder's frame length.
    """
    out: list[str] = []
    in_audio = False
    for line in answer_sdp.splitlines(keepends=True):
        if line.startswith("m="):
            if in_audio:
                out.append(f"a=ptime:{ptime_ms}\r\n")
            in_audio = line.startswith("m=audio")
        elif in_audio and line.startswith("a=ptime:"):
            continue
        out.append(line)
    if in_audio:
        out.append(f"a=ptime:{ptime_ms}\r\n")
    return "".join(out)


def answered_ptime_ms(answer_sdp: str) -> int | None:
    """The audio section's `a=ptime` of an answer, if it has one."""
    in_audio = False
    for line in answer_sdp.splitlines():
        if line.startswith("m="):
            in_audio = line.startswith("m=audio")
        elif in_audio and line.startswith("a=ptime:") and line[len("a=ptime:") :].strip().isdigit():
            return int(line[len("a=ptime:") :].strip())
    return None
