"""Ogg/Opus files (RFC 7845) written from Opus packets as they come: no decode, no re-encode.

The relay already holds every stream as Opus packets, so a recording is those packets in
Ogg pages. A page goes to the file whole (one os.write) when flush() is called, about
every half second: a killed server leaves a file that ends at its last complete page,
which every decoder reads. The granule position (48 kHz samples) follows the caller's
timeline: a gap in it (loss, a reconnect) is filled with empty Opus frames, which the
decoder plays as concealment fading to silence, so the file's duration is the stream's.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

from relay.media.audio_format import FRAME_SAMPLES, RATE

# A page holds at most 255 lacing values; keep one spare.
MAX_SEGMENTS = 254
# A gap longer than this is not filled (a call left alone for minutes): the file's clock
# then runs short by the rest, and the caller's log says where.
MAX_FILL_S = 600.0
# Empty frame (RFC 6716 3.2.1: a TOC byte, code 0, zero-length frame): CELT fullband,
# 20 ms, mono. Decoders treat it as lost and conceal.
EMPTY_20MS = b"\xf8"
# The same at 2.5 ms (CELT fullband, the shortest Opus frame): a gap that is not a whole
# number of 20 ms frames (a reconnect) is filled to within 1.25 ms, so the file's clock
# stays the stream's instead of shifting by up to half a frame.
EMPTY_2_5MS = b"\xe0"
FINE_SAMPLES = 120

_FRAME_SIZES_48K = (
    [480, 960, 1920, 2880] * 3  # SILK NB/MB/WB: 10, 20, 40, 60 ms
    + [480, 960] * 2  # hybrid SWB/FB: 10, 20 ms
    + [120, 240, 480, 960] * 4  # CELT NB/WB/SWB/FB: 2.5, 5, 10, 20 ms
)


# Ogg's CRC is zlib's CRC-32 seen in a mirror: the same polynomial, not reflected, with
# no initial or final inversion. Reflecting each byte (a C-speed translate), running zlib
# with the inversions cancelled, and reflecting the result gives it at C speed; a Python
# loop over every page byte cost about 6 % of the server's time per call.
_REFLECT_BYTE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def _reflect32(value: int) -> int:
    return int(f"{value:032b}"[::-1], 2)


def ogg_crc(data: bytes) -> int:
    """Ogg's CRC-32: polynomial 0x04c11db7, not reflected, initial 0, no final xor."""
    return _reflect32(zlib.crc32(data.translate(_REFLECT_BYTE), 0xFFFFFFFF) ^ 0xFFFFFFFF)


def packet_samples(packet: bytes) -> int:
    """Duration of an Opus packet in 48 kHz samples, from its TOC byte (RFC 6716 3.1)."""
    if not packet:
        return 0
    toc = packet[0]
    frame = _FRAME_SIZES_48K[toc >> 3]
    code = toc & 0x03
    if code == 0:
        count = 1
    elif code in (1, 2):
        count = 2
    else:
        count = (packet[1] & 0x3F) if len(packet) > 1 else 0
    return frame * count


def page(header_type: int, granule: int, serial: int, sequence: int, packets: list[bytes]) -> bytes:
    """One Ogg page holding whole packets (the caller keeps them within 255 lacing values)."""
    lacing = bytearray()
    for p in packets:
        lacing += b"\xff" * (len(p) // 255) + bytes([len(p) % 255])
    if len(lacing) > 255:
        raise ValueError("too many segments for one page")
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, header_type, granule, serial, sequence, 0, len(lacing))
    body = bytes(header) + bytes(lacing) + b"".join(packets)
    crc = ogg_crc(body)
    return body[:22] + struct.pack("<I", crc) + body[26:]


def opus_head(channels: int, pre_skip: int = 0, input_rate: int = RATE) -> bytes:
    return struct.pack("<8sBBHIhB", b"OpusHead", 1, channels, pre_skip, input_rate, 0, 0)


def opus_tags(vendor: str = "callguard", comments: tuple[str, ...] = ()) -> bytes:
    out = b"OpusTags" + struct.pack("<I", len(vendor.encode())) + vendor.encode() + struct.pack("<I", len(comments))
    for c in comments:
        out += struct.pack("<I", len(c.encode())) + c.encode()
    return out


def _segments(packet: bytes) -> int:
    return len(packet) // 255 + 1


class OggOpusWriter:
    """Appends Opus packets to an Ogg/Opus file; pages reach the file on flush().

    write(packet, start) places a packet at `start` (48 kHz samples on the stream's own
    timeline, starting at 0): within half a frame of where the last one ended it follows
    on; later, the gap is filled with empty frames first; earlier (a reordered or
    overlapping packet), it is dropped and counted.
    """

    def __init__(self, path: str | Path, channels: int, serial: int = 1, comments: tuple[str, ...] = ()) -> None:
        self.path = Path(path)
        self.channels = channels
        self._serial = serial
        self._sequence = 0
        self._fd: int | None = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        self._pending: list[bytes] = []
        self._segments = 0
        self._granule = 0  # end of the last packet accepted, in samples
        self._pages: list[bytes] = []
        self.packets = 0
        self.dropped = 0
        self.filled_s = 0.0
        self.unfilled_s = 0.0
        head = page(0x02, 0, serial, self._next_sequence(), [opus_head(channels)])
        tags = page(0x00, 0, serial, self._next_sequence(), [opus_tags(comments=comments)])
        os.write(self._fd, head + tags)

    @property
    def duration_s(self) -> float:
        return self._granule / RATE

    def write(self, packet: bytes, start: int) -> bool:
        if self._fd is None:
            return False
        samples = packet_samples(packet)
        if samples <= 0:
            self.dropped += 1
            return False
        if start < self._granule - samples // 2:
            self.dropped += 1
            return False
        gap = start - self._granule
        if gap >= FINE_SAMPLES // 2:
            usable = min(gap, int(MAX_FILL_S * RATE))
            fill = usable // FRAME_SAMPLES
            fine = round((usable - fill * FRAME_SAMPLES) / FINE_SAMPLES)
            for _ in range(fill):
                self._add(EMPTY_20MS, FRAME_SAMPLES)
            for _ in range(fine):
                self._add(EMPTY_2_5MS, FINE_SAMPLES)
            filled = fill * FRAME_SAMPLES + fine * FINE_SAMPLES
            self.filled_s += filled / RATE
            if gap > filled + FINE_SAMPLES:
                # Left unfilled (too long): the timeline shifts.
                self.unfilled_s += (gap - filled) / RATE
        self._add(packet, samples)
        self.packets += 1
        return True

    def _add(self, packet: bytes, samples: int) -> None:
        if self._segments + _segments(packet) > MAX_SEGMENTS:
            self._close_page()
        self._pending.append(packet)
        self._segments += _segments(packet)
        self._granule += samples

    def _close_page(self, last: bool = False) -> None:
        if not self._pending and not last:
            return
        # The granule of a page is the end of its last packet.
        self._pages.append(
            page(0x04 if last else 0x00, self._granule, self._serial, self._next_sequence(), self._pending)
        )
        self._pending, self._segments = [], 0

    def _next_sequence(self) -> int:
        self._sequence += 1
        return self._sequence - 1

    def flush(self) -> None:
        """Close the current page and append every closed page to the file (one write)."""
        if self._fd is None:
            return
        self._close_page()
        if self._pages:
            data = b"".join(self._pages)
            self._pages = []
            while data:
                written = os.write(self._fd, data)
                data = data[written:]

    def close(self) -> None:
        if self._fd is None:
            return
        self._close_page(last=True)
        self.flush()
        os.close(self._fd)
        self._fd = None


def read_duration_s(path: str | Path) -> float | None:
    """The duration of an Ogg/Opus file from its last complete page's granule position.

    For a file whose writer never closed (a killed server): the database does not have
    the duration then, the file does. None when no audio page is found."""
    tail = 65536
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        while True:
            start = max(0, size - tail)
            f.seek(start)
            data = f.read(size - start)
            at = len(data)
            while (at := data.rfind(b"OggS", 0, at)) >= 0:
                if at + 27 <= len(data):
                    (granule,) = struct.unpack_from("<q", data, at + 6)
                    segments = data[at + 26]
                    end = at + 27 + segments + sum(data[at + 27 : at + 27 + segments])
                    # A page cut short by a kill is not a page: look further back.
                    if end <= len(data) and granule > 0 and _crc_ok(data[at:end]):
                        return float(granule) / RATE
            if start == 0:
                return None
            tail *= 4


def _crc_ok(page_bytes: bytes) -> bool:
    (stored,) = struct.unpack_from("<I", page_bytes, 22)
    return bool(ogg_crc(page_bytes[:22] + b"\0\0\0\0" + page_bytes[26:]) == stored)
