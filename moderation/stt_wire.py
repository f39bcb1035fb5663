"""What relay nodes and the inference tier send each other: transcription passes and
classifier batches.

A pass is a JSON header line and the pass's audio as 16 kHz mono int16 (half the bytes
of float32; the audio came from 16-bit Opus in the first place); its answer is the
segments as JSON. A classifier batch is JSON, the words of a node's waiting utterances;
its answer is each utterance's hits. Both sides use these functions, so each format has
one definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from moderation.hits import Hit
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


@dataclass(frozen=True)
class JudgeRequest:
    utterances: list[list[str]]  # each utterance's words, as transcribed
    timeout_s: float = 0.0  # as PassRequest's


def encode_judge_request(req: JudgeRequest) -> bytes:
    return json.dumps({"utterances": req.utterances, "timeout_s": req.timeout_s}, ensure_ascii=False).encode()


def decode_judge_request(body: bytes) -> JudgeRequest:
    try:
        data = json.loads(body)
        utterances = [[str(w) for w in u] for u in data["utterances"]]
        return JudgeRequest(utterances, float(data.get("timeout_s", 0.0)))
    except (ValueError, KeyError, TypeError) as exc:
        raise WireError(f"bad classifier request: {exc}") from None


def encode_hits(results: list[list[Hit]]) -> dict[str, Any]:
    return {"hits": [[h.record() for h in hits] for hits in results]}


def decode_hits(answer: dict[str, Any], utterances: int) -> list[list[Hit]]:
    try:
        results = [
            [
                Hit(
                    words=tuple(int(i) for i in h["words"]),
                    source="classifier",
                    category=str(h["category"]),
                    score=float(h["score"]),
                    threshold=float(h["threshold"]),
                    detail=str(h["detail"]),
                    version=str(h["version"]),
                )
                for h in hits
            ]
            for hits in answer["hits"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"bad classifier answer: {exc}") from None
    if len(results) != utterances:
        raise WireError(f"classifier answered {len(results)} utterances for {utterances}")
    return results
