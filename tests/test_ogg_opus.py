"""Ogg/Opus written from packets: pages, CRC, granules, gaps, and files cut short."""

import os
import struct
from pathlib import Path

import av
import numpy as np

from relay.media.opus import OpusVoiceEncoder
from relay.records.ogg_opus import EMPTY_20MS, OggOpusWriter, ogg_crc, packet_samples
from relay.webrtc.tracks import delayed_encoder


def packets(count: int) -> list[bytes]:
    enc = OpusVoiceEncoder()
    out = []
    for i in range(count):
        t = (np.arange(960) + i * 960) / 48000
        out.append(enc.encode((np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)))
    return out


def pages(data: bytes) -> list[tuple[int, int, int, int, bytes]]:
    """(header type, granule, sequence, crc, whole page) of each page in `data`."""
    out, pos = [], 0
    while pos < len(data):
        assert data[pos : pos + 4] == b"OggS"
        _, _, kind, granule, _, seq, crc, nseg = struct.unpack_from("<4sBBqIIIB", data, pos)
        lacing = data[pos + 27 : pos + 27 + nseg]
        end = pos + 27 + nseg + sum(lacing)
        out.append((kind, granule, seq, crc, data[pos:end]))
        pos = end
    return out


def decoded_seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        return sum(frame.samples for frame in container.decode(audio=0)) / 48000


def test_crc_matches_the_ogg_reference() -> None:
    # The CRC libogg computes for "123456789" (CRC-32/MPEG-2 without its init and xorout).
    assert ogg_crc(b"123456789") == 0x89A1897F
    assert ogg_crc(b"") == 0


def test_packet_durations_from_the_toc() -> None:
    assert packet_samples(EMPTY_20MS) == 960
    assert packet_samples(bytes([0x48])) == 960  # config 9: SILK WB 20 ms
    assert packet_samples(bytes([0xF0])) == 480  # config 30: CELT FB 10 ms
    assert packet_samples(bytes([0xE1])) == 2 * 120  # config 28: CELT FB 2.5 ms, code 1: two frames
    assert packet_samples(bytes([0x4B, 0x03])) == 3 * 960  # code 3, three 20 ms frames
    assert packet_samples(b"") == 0


def test_pages_headers_crc_and_granules(tmp_path: Path) -> None:
    path = tmp_path / "a.opus"
    writer = OggOpusWriter(path, channels=1)
    for i, p in enumerate(packets(100)):
        writer.write(p, i * 960)
        if i % 25 == 24:
            writer.flush()
    writer.close()
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    found = pages(path.read_bytes())
    assert found[0][4][28:36] == b"OpusHead" and found[0][0] == 0x02
    assert found[1][4][28:36] == b"OpusTags"
    assert [seq for _, _, seq, _, _ in found] == list(range(len(found)))
    for _, _, _, crc, whole in found:
        assert ogg_crc(whole[:22] + b"\0\0\0\0" + whole[26:]) == crc
    audio = found[2:]
    assert [g for _, g, _, _, _ in audio][:4] == [25 * 960, 50 * 960, 75 * 960, 100 * 960]
    assert audio[-1][0] & 0x04  # end of stream
    assert abs(decoded_seconds(path) - 2.0) < 0.021


def test_gaps_are_filled_and_late_packets_dropped(tmp_path: Path) -> None:
    path = tmp_path / "gap.opus"
    writer = OggOpusWriter(path, channels=2)
    ps = packets(60)
    for i, p in enumerate(ps[:30]):
        writer.write(p, i * 960)
    for i, p in enumerate(ps[30:]):  # half a second missing
        writer.write(p, (i + 55) * 960)
    assert not writer.write(ps[0], 10 * 960)  # from the past
    writer.close()
    assert writer.dropped == 1 and abs(writer.filled_s - 0.5) < 1e-9
    assert abs(writer.duration_s - 1.7) < 1e-9
    assert abs(decoded_seconds(path) - 1.7) < 0.021


def test_a_file_cut_mid_page_decodes_its_complete_pages(tmp_path: Path) -> None:
    path = tmp_path / "cut.opus"
    writer = OggOpusWriter(path, channels=1)
    for i, p in enumerate(packets(150)):
        writer.write(p, i * 960)
        if i % 25 == 24:
            writer.flush()
    writer.close()
    data = path.read_bytes()
    found = pages(data)
    assert found[-1][1] == found[-2][1] == 150 * 960  # audio pages, then an empty end-of-stream page
    last_audio = found[-2][4]
    start = len(data) - len(found[-1][4]) - len(last_audio)
    cut = tmp_path / "cut2.opus"
    cut.write_bytes(data[: start + len(last_audio) // 2])  # the last audio page half written
    assert abs(decoded_seconds(cut) - 2.5) < 0.021
    # Unflushed packets never reach the file: what is there is whole pages.
    open_writer = OggOpusWriter(tmp_path / "open.opus", channels=1)
    for i, p in enumerate(packets(40)):
        open_writer.write(p, i * 960)
        if i == 24:
            open_writer.flush()
    assert abs(decoded_seconds(tmp_path / "open.opus") - 0.5) < 0.021
    open_writer.close()


def _bitwise_ogg_crc(data: bytes) -> int:
    """The Ogg spec's CRC, bit by bit: the reference the fast one must match."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


def test_the_crc_matches_the_bitwise_definition_on_random_pages() -> None:
    rng = np.random.default_rng(7)
    for size in (1, 2, 3, 27, 255, 4096):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert ogg_crc(data) == _bitwise_ogg_crc(data)


def test_a_gap_of_no_whole_frames_is_filled_to_within_a_fine_frame(tmp_path: Path) -> None:
    # A reconnect resumes a stream anywhere, not on the 20 ms grid: the file must keep its clock.
    path = tmp_path / "fine.opus"
    writer = OggOpusWriter(path, channels=1)
    ps = packets(40)
    for i, p in enumerate(ps[:20]):
        writer.write(p, i * 960)
    resume = 20 * 960 + 24590  # 0.5123 s later
    writer.write(ps[20], resume)
    assert abs(writer.duration_s * 48000 - 960 - resume) <= 60  # the packet sits within 1.25 ms of its place
    for i, p in enumerate(ps[21:]):
        writer.write(p, resume + (i + 1) * 960)
    writer.close()
    assert writer.unfilled_s == 0.0 and writer.dropped == 0
    # Decoders play the 2.5 ms empty frames too (as concealment): the decoded length is the file's.
    assert abs(decoded_seconds(path) - writer.duration_s) < 0.0013


def test_a_sixty_ms_stream_with_a_gap_keeps_its_duration(tmp_path: Path) -> None:
    # The delayed stream at webrtc.delayed_ptime_ms = 60: code-3 packets of three CELT
    # frames, placed on the playout timeline 2880 samples apart; a gap (a reconnect) is
    # filled in 20 ms and 2.5 ms frames as for any stream.
    enc = delayed_encoder(3)
    t = np.arange(40 * 2880) / 48000
    voice = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    ps = [enc.encode(voice[i * 2880 : (i + 1) * 2880]) for i in range(40)]
    assert all(packet_samples(p) == 2880 for p in ps)
    path = tmp_path / "delivered.opus"
    writer = OggOpusWriter(path, channels=1)
    for i, p in enumerate(ps[:20]):
        assert writer.write(p, i * 2880)
    gap = 12345  # not a whole number of frames
    for i, p in enumerate(ps[20:]):
        assert writer.write(p, (20 + i) * 2880 + gap)
    writer.close()
    expected = (40 * 2880 + gap) / 48000
    assert writer.dropped == 0 and abs(writer.duration_s - expected) < 60 / 48000
    assert abs(decoded_seconds(path) - writer.duration_s) < 1e-9
    with av.open(str(path)) as container:
        assert {frame.samples for frame in container.decode(audio=0)} >= {2880}
