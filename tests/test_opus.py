"""libopus through ctypes: the packets are ffmpeg's, the decoder reads them, bad packets are refused."""

import fractions

import numpy as np
import pytest
from av import AudioFrame, CodecContext, Packet

from relay.media.audio_format import FRAME_SAMPLES, RATE
from relay.media.opus import COMPLEXITY, OpusError, OpusVoiceDecoder, OpusVoiceEncoder
from testkit.probe import MarkerSource


def voice(frames: int) -> np.ndarray:
    t = np.arange(frames * FRAME_SAMPLES) / RATE
    tone = np.sin(2 * np.pi * 300 * t) * np.sin(2 * np.pi * 3 * t) * 9000
    return (tone + np.random.default_rng(0).normal(0, 400, t.size)).astype(np.int16)


@pytest.mark.parametrize(("application", "bitrate", "frames"), [("voip", 32000, 1), ("lowdelay", 40000, 3)])
def test_packets_are_byte_for_byte_those_of_ffmpegs_libopus_encoder(
    application: str, bitrate: int, frames: int
) -> None:
    # The settings ffmpeg's encoder uses by default (what the relay sent before it called
    # libopus itself): any difference in VBR, FEC, DTX or complexity changes the bytes.
    reference = CodecContext.create("libopus", "w")
    reference.bit_rate, reference.format, reference.layout = bitrate, "s16", "mono"
    reference.sample_rate, reference.time_base = RATE, fractions.Fraction(1, RATE)
    reference.options = {
        "application": application,
        "compression_level": str(COMPLEXITY),
        "frame_duration": str(frames * 20),
    }
    ours = OpusVoiceEncoder(bitrate, application, frames)
    pcm = voice(30 * frames)
    for i in range(0, pcm.size, ours.samples):
        frame = AudioFrame.from_ndarray(pcm[i : i + ours.samples].reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts = RATE, i
        (expected,) = reference.encode(frame)
        assert ours.encode(pcm[i : i + ours.samples]) == bytes(expected)


def test_decoder_gives_ffmpegs_samples_as_mono_from_each_packet() -> None:
    encoder, ours = OpusVoiceEncoder(), OpusVoiceDecoder()
    reference = CodecContext.create("libopus", "r")
    reference.format, reference.layout, reference.sample_rate = "s16", "mono", RATE
    source = MarkerSource(freq=600.0)
    decoded = []
    for _ in range(25):
        packet = encoder.encode(source.pull(0.0))
        got = ours.decode(packet)
        (expected,) = reference.decode(Packet(packet))
        assert got.dtype == np.int16 and np.array_equal(got, expected.to_ndarray().reshape(-1))
        decoded.append(got)
    assert np.concatenate(decoded[5:]).std() > 4000  # the tone, not silence


def test_a_packet_returned_is_not_changed_by_the_next_encode() -> None:
    encoder, pcm = OpusVoiceEncoder(), voice(10)
    kept = [(packet, bytes(packet)) for packet in (encoder.encode(c) for c in np.split(pcm, 10))]
    assert all(packet == copy for packet, copy in kept)
    decoder = OpusVoiceDecoder()
    first = decoder.decode(kept[3][0])
    first_copy = first.copy()
    decoder.decode(kept[4][0])
    assert np.array_equal(first, first_copy)


def test_a_stereo_browser_stream_decodes_to_mono() -> None:
    stereo = CodecContext.create("libopus", "w")
    stereo.bit_rate, stereo.format, stereo.layout, stereo.sample_rate = 64000, "s16", "stereo", RATE
    stereo.time_base = fractions.Fraction(1, RATE)
    pcm = np.repeat(voice(10).reshape(-1, 1), 2, axis=1)
    decoder = OpusVoiceDecoder()
    out = []
    for k in range(10):
        frame = AudioFrame.from_ndarray(
            pcm[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES].reshape(1, -1), format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts = RATE, k * FRAME_SAMPLES
        out.extend(decoder.decode(bytes(p)) for p in stereo.encode(frame))
    assert all(o.shape == (FRAME_SAMPLES,) for o in out)
    assert np.concatenate(out[3:]).std() > 3000


def test_corrupt_empty_and_wrong_length_input_are_refused_cleanly() -> None:
    decoder = OpusVoiceDecoder()
    for bad in (b"", b"\xff\xff\xff", b"\x03"):
        with pytest.raises(OpusError):
            decoder.decode(bad)
    assert decoder.decode(OpusVoiceEncoder().encode(voice(1))).size == FRAME_SAMPLES  # still usable
    with pytest.raises(ValueError):
        OpusVoiceEncoder(frames=3).encode(voice(1))
