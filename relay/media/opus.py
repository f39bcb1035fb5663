"""Mono Opus at 48 kHz straight from libopus: the voice encoder and decoder of the media path.

The call decodes every customer packet and encodes every delayed one, 50 times a second
each. Through PyAV (ffmpeg's libopus wrapper) about half of that time went to ffmpeg's
frame and packet plumbing around the codec (py-spy, bench/relay_load.py: the encode
call 17 % of the main thread against 9.5 % inside libopus); ctypes calls libopus
directly on numpy buffers. The library is the one PyAV ships (so the codec and its
version are the same as before and as the tests' reference decoder), else the system's.

The encoder is set up as ffmpeg's libopus encoder is by default (unconstrained VBR, no
FEC, no DTX, no expected loss), so its packets are byte for byte those ffmpeg gives
(tests/test_opus.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import glob
import importlib.util
import os
from typing import Literal

import numpy as np

from relay.media.audio_format import FRAME_SAMPLES, RATE

Application = Literal["voip", "audio", "lowdelay"]
_APPLICATIONS: dict[str, int] = {"voip": 2048, "audio": 2049, "lowdelay": 2051}
# What a browser sends for a voice: Opus's voice mode (SILK or hybrid) at 32 kb/s. The
# test and bench peers send this, and the prompt mix re-encodes the counselor's packets so.
VOICE_APPLICATION: Application = "voip"
VOICE_BITRATE = 32000
# libopus's effort (0-10; its and ffmpeg's default is 10). 5 costs about half of 10 a
# frame; speech at these rates does not need the top search effort.
COMPLEXITY = 5
# opus_defines.h request numbers.
_SET_BITRATE = 4002
_SET_VBR = 4006
_SET_COMPLEXITY = 4010
_SET_INBAND_FEC = 4012
_SET_PACKET_LOSS_PERC = 4014
_SET_DTX = 4016
_SET_VBR_CONSTRAINT = 4020
# The longest Opus packet is 120 ms; 1275 bytes a frame is the format's ceiling.
_MAX_PACKET_SAMPLES = 6 * FRAME_SAMPLES
_MAX_PACKET_BYTES = 6 * 1275 + 7


class OpusError(ValueError):
    """libopus refused a packet or a setting (a corrupt or truncated packet, most often)."""


def _candidates() -> list[str]:
    spec = importlib.util.find_spec("av")
    bundled: list[str] = []
    if spec is not None and spec.origin is not None:
        site = os.path.dirname(os.path.dirname(spec.origin))
        bundled = sorted(glob.glob(os.path.join(site, "av.libs", "libopus*.so*")))
    system = ctypes.util.find_library("opus")
    return bundled + ([system] if system else [])


@functools.cache
def libopus() -> ctypes.CDLL:
    """The process's libopus, loaded once (PyAV's copy, else the system's libopus0)."""
    for path in _candidates():
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        lib.opus_encoder_create.restype = ctypes.c_void_p
        lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_encode.restype = ctypes.c_int32
        lib.opus_encode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int32]
        lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [
            ctypes.c_void_p,
            ctypes.c_char_p,
            ctypes.c_int32,
            ctypes.c_void_p,
            ctypes.c_int,
            ctypes.c_int,
        ]
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        lib.opus_strerror.restype = ctypes.c_char_p
        lib.opus_strerror.argtypes = [ctypes.c_int]
        return lib
    raise OSError("libopus not found: install PyAV (which bundles it) or libopus0")


def _check(code: int) -> int:
    if code < 0:
        raise OpusError(libopus().opus_strerror(code).decode())
    return code


class OpusVoiceEncoder:
    """Mono Opus for a voice: one packet of `frames` 20 ms frames per encode()."""

    def __init__(
        self,
        bitrate: int = VOICE_BITRATE,
        application: Application = VOICE_APPLICATION,
        frames: int = 1,
        complexity: int = COMPLEXITY,
    ) -> None:
        self.samples = frames * FRAME_SAMPLES  # per packet
        lib = libopus()
        error = ctypes.c_int(0)
        state = lib.opus_encoder_create(RATE, 1, _APPLICATIONS[application], ctypes.byref(error))
        _check(error.value)
        self._state: ctypes.c_void_p | None = ctypes.c_void_p(state)
        for request, value in (
            (_SET_BITRATE, bitrate),
            (_SET_COMPLEXITY, complexity),
            (_SET_VBR, 1),
            (_SET_VBR_CONSTRAINT, 0),
            (_SET_PACKET_LOSS_PERC, 0),
            (_SET_INBAND_FEC, 0),
            (_SET_DTX, 0),
        ):
            _check(lib.opus_encoder_ctl(self._state, ctypes.c_int(request), ctypes.c_int32(value)))
        self._encode = lib.opus_encode
        self._out = ctypes.create_string_buffer(_MAX_PACKET_BYTES)
        self._destroy = lib.opus_encoder_destroy

    def encode(self, samples: np.ndarray) -> bytes:
        """One packet of `self.samples` int16 mono samples."""
        pcm = np.ascontiguousarray(samples, dtype=np.int16)
        if pcm.size != self.samples:
            raise ValueError(f"a packet takes {self.samples} samples, not {pcm.size}")
        size = _check(self._encode(self._state, pcm.ctypes.data, self.samples, self._out, _MAX_PACKET_BYTES))
        return ctypes.string_at(self._out, size)

    def __del__(self) -> None:
        if getattr(self, "_state", None) is not None:
            self._destroy(self._state)
            self._state = None


class OpusVoiceDecoder:
    """One stream's Opus packets to int16 mono at 48 kHz (libopus downmixes a stereo stream)."""

    def __init__(self) -> None:
        lib = libopus()
        error = ctypes.c_int(0)
        state = lib.opus_decoder_create(RATE, 1, ctypes.byref(error))
        _check(error.value)
        self._state: ctypes.c_void_p | None = ctypes.c_void_p(state)
        self._decode = lib.opus_decode
        self._pcm = np.zeros(_MAX_PACKET_SAMPLES, dtype=np.int16)
        self._pcm_address = self._pcm.ctypes.data
        self._destroy = lib.opus_decoder_destroy

    def decode(self, payload: bytes) -> np.ndarray:
        """The packet's samples (a copy); OpusError for one libopus cannot read."""
        if not payload:
            raise OpusError("empty packet")
        count = _check(self._decode(self._state, payload, len(payload), self._pcm_address, _MAX_PACKET_SAMPLES, 0))
        return self._pcm[:count].copy()

    def __del__(self) -> None:
        if getattr(self, "_state", None) is not None:
            self._destroy(self._state)
            self._state = None
