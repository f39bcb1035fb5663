"""A prompt mixed into the counselor's voice on its way to the customer.

The counselor's packets are normally forwarded untouched (relay/webrtc/forwarding.py).
While a prompt plays, each packet is decoded, the prompt's next samples are added and
the sum is encoded again, under the packet's own timestamp: the customer hears both, with
no gap and no change to the RTP timeline. Once the prompt is over, packets go through
as they came. The mix's decoder joins the counselor's stream mid-way, so their voice
settles in over about 0.1 s at the prompt's start (measured: tests/test_prompt_mix.py);
decoding every packet all call long to avoid that would cost the whole forwarding path's
saving. The counselor's browser sends a packet every 20-60 ms while connected (Opus
without DTX), which is what paces the prompt; with no counselor connected it waits.
"""

from __future__ import annotations

import numpy as np

from relay.media.audio_format import FRAME_SAMPLES, RATE
from relay.media.opus import OpusError, OpusVoiceDecoder, OpusVoiceEncoder


class PromptMix:
    def __init__(self, prompt: np.ndarray) -> None:
        self.prompt = prompt.astype(np.int16).reshape(-1)
        self._position: int | None = None  # next prompt sample; None while not playing
        self._decoder: OpusVoiceDecoder | None = None
        self._encoder: OpusVoiceEncoder | None = None
        self.plays = 0

    @property
    def playing(self) -> bool:
        return self._position is not None

    @property
    def duration_s(self) -> float:
        return self.prompt.size / RATE

    def start(self) -> None:
        """Play the prompt from its start (again, if it is playing)."""
        self._position = 0
        # Fresh codec state: the mixed stretch is its own Opus stream within the forwarded one.
        self._decoder, self._encoder = OpusVoiceDecoder(), OpusVoiceEncoder()
        self.plays += 1

    def mix(self, payload: bytes) -> bytes:
        """The packet to send in place of `payload` (itself, when no prompt is playing)."""
        if self._position is None or self._decoder is None or self._encoder is None:
            return payload
        try:
            voice = self._decoder.decode(payload)
        except OpusError:
            voice = np.zeros(0, np.int16)
        # The mixed packet keeps the counselor's packet length (webrtc.uplink_ptime_ms): a
        # whole number of 20 ms frames; an undecodable one is taken for the last length.
        frames = voice.size // FRAME_SAMPLES
        if frames < 1 or voice.size % FRAME_SAMPLES:
            frames = self._encoder.samples // FRAME_SAMPLES
            voice = np.zeros(frames * FRAME_SAMPLES, np.int16)
        if self._encoder.samples != voice.size:
            self._encoder = OpusVoiceEncoder(frames=frames)
        chunk = self.prompt[self._position : self._position + voice.size]
        self._position += voice.size
        mixed = voice.astype(np.int32)
        mixed[: chunk.size] += chunk
        packet = self._encoder.encode(np.clip(mixed, -32768, 32767).astype(np.int16))
        if self._position >= self.prompt.size:
            self._position = None
            self._decoder = None
            self._encoder = None
        return packet
