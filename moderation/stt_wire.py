"""One transcription pass on the wire, between a relay node and the inference tier.

A request is a JSON header line and the pass's audio as 16 kHz mono int16 (half the bytes
of float32; the audio came from 16-bit Opus in the first place). The answer is the
segments as JSON. Both sides use these functions, so the format has one definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from moderation.speech import EngineSegment, EngineWord


@dataclass(frozen=True)
class PassRequest:
    audio: np.ndarray  # float32, SAMPLE_RATE, mono
    prompt: str
    language: str
    prefix: str = ""
    # How long the caller waits for the answer: a pass still queued past it is dropped
    # unheard by the tier (its caller has given up on it, the GPU time would be wasted).
    timeout_s: float = 0.0


class WireError(ValueError):
    """A request or answer that does not parse: the sender's bug, answered with a 4xx."""


def encode_request(req: PassRequest) -> bytes:
    header = {"prompt": req.prompt, "language": req.language, "prefix": req.prefix, "timeout_s": req.timeout_s}
    pcm = (np.clip(req.audio, -1.0, 1.0) * 32767.0).astype("<i2")
    return json.dumps(header, ensure_ascii=False).encode() + b"\n" + pcm.tobytes()


def decode_request(body: bytes) -> PassRequest:
    head, sep, pcm = body.partition(b"\n")
    if not sep or len(pcm) % 2:
        raise WireError("expected a JSON header line and int16 audio")
    try:
        header = json.loads(head)
        prompt, language = str(header["prompt"]), str(header["language"])
        prefix, timeout_s = str(header.get("prefix", "")), float(header.get("timeout_s", 0.0))
    except (ValueError, KeyError, TypeError) as exc:
        raise WireError(f"bad header: {exc}") from None
    audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32767.0
    return PassRequest(audio, prompt, language, prefix, timeout_s)


def encode_segments(segments: list[EngineSegment], **extra: Any) -> dict[str, Any]:
    return {
        **extra,
        "segments": [
            {
                "start": s.start,
                "end": s.end,
                "no_speech_prob": s.no_speech_prob,
                "avg_logprob": s.avg_logprob,
                "text": s.text,
                "words": [[w.text, w.start, w.end, w.probability] for w in s.words],
            }
            for s in segments
        ],
    }


def decode_segments(answer: dict[str, Any]) -> list[EngineSegment]:
    try:
        return [
            EngineSegment(
                words=[EngineWord(str(t), float(a), float(b), float(p)) for t, a, b, p in s["words"]],
                start=float(s["start"]),
                end=float(s["end"]),
                no_speech_prob=float(s["no_speech_prob"]),
                avg_logprob=float(s["avg_logprob"]),
                text=str(s["text"]),
            )
            for s in answer["segments"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"bad answer: {exc}") from None
