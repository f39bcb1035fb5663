#!/usr/bin/env python3
"""Cost of the per-frame media work of one call, in microseconds per 20 ms frame.

    python bench/media_frame_cost.py [--frames 3000] [--json]

- delay line: push + pull per 20 ms frame, with arrivals jittered (one-sided, 2 ms sd),
  pulled 20 ms at a time and 60 ms at a time (one outgoing packet, as the call pulls);
  `slow_renders` counts the pulls that could not take the bit-exact copy (interpolated
  or faded); again with the sender's clock 1000 ppm fast, so that playout slews after it
  (resampled frames);
- the elastic delay (relay/media/elastic.py) on a moderated call whose decisions stall for
  0.8 s every 3 s: the frames played as usual, the frames stretched while a decision is
  pending (the splice search), and the frames shortened through a pause (catch-up);
- the delayed stream's Opus encode (CELT, 60 ms packets, its bitrate) at complexity 10, 5
  and 0, on Korean speech from espeak-ng that went through a browser-like encode first
  (tones and silence, as bench/relay_load.py sends, cost very differently: use speech):
  microseconds per 20 ms and, with the `pesq` package installed, PESQ wideband of what
  the counselor decodes against the original.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import relay.media.delay_line as delay_line_module  # noqa: E402
import relay.webrtc.tracks as tracks  # noqa: E402
from relay.config import DelayConfig  # noqa: E402
from relay.media.audio_format import FRAME_S, FRAME_SAMPLES  # noqa: E402
from relay.media.delay_line import DelayLine  # noqa: E402
from relay.media.opus import OpusVoiceDecoder, OpusVoiceEncoder  # noqa: E402
from relay.media.watermark import ClearNothing  # noqa: E402

SPEECH = (
    "안녕하세요 고객센터입니다 무엇을 도와드릴까요 요금이 왜 이렇게 많이 나왔는지 확인해 주세요 지금 당장 환불해 주세요"
)


def delay_line_cost(frames: int, drift_ppm: float = 0.0, pull_frames: int = 1) -> dict[str, float]:
    """`drift_ppm`: the sender's clock runs this much fast, so playout slews after it and
    reads slightly more input per frame (resampled frames, as on a real call's drift).
    `pull_frames`: 20 ms frames a pull renders (the call pulls one 60 ms packet: 3)."""
    faded = [False]
    envelope = delay_line_module.gain_envelope

    def counted(*args: object, **kwargs: object) -> np.ndarray:
        faded[0] = True
        return envelope(*args, **kwargs)  # type: ignore[arg-type]

    delay_line_module.gain_envelope = counted  # type: ignore[assignment]
    slow = 0
    try:
        line = DelayLine(DelayConfig(), ClearNothing(), frame_samples=pull_frames * FRAME_SAMPLES)
        rng = random.Random(1)
        frame = (np.sin(np.arange(FRAME_SAMPLES) / 10) * 3000).astype(np.int16)
        t0, spent = 1000.0, []
        for k in range(0, frames, pull_frames):
            faded[0] = False
            started = time.perf_counter()
            for j in range(k, k + pull_frames):
                arrival = t0 + j * FRAME_S * (1 - drift_ppm * 1e-6) + abs(rng.gauss(0, 0.002))
                line.push(j * FRAME_SAMPLES, frame, arrival)
            line.pull(t0 + k * FRAME_S)
            spent.append((time.perf_counter() - started) / pull_frames)
            played = line.played
            slow += faded[0] or (played is not None and not played.aligned)
    finally:
        delay_line_module.gain_envelope = envelope
    return {
        "push_pull_us_per_20ms_p50": round(float(np.median(spent)) * 1e6, 1),
        "slow_renders": slow,
        "pulls": len(spent),
    }


class _StallingDecisions:
    """A moderated call's watermark: judged up to 0.5 s behind the newest audio, except
    that every 3 s the decision on the next stretch stalls for 0.8 s."""

    def __init__(self) -> None:
        self.now = 0.0

    def cleared_until(self) -> float:
        stall = self.now % 3.0
        return self.now - 0.5 - (stall if stall < 0.8 else 0.0)

    def heard_until(self) -> float:
        return self.cleared_until()


def elastic_cost(frames: int) -> dict[str, float]:
    decisions = _StallingDecisions()
    line = DelayLine(DelayConfig(delay_s=1.0, max_s=1.5), decisions)
    n = np.arange(FRAME_SAMPLES * frames)
    # Voice for 2 s, a pause for 1 s, over and over.
    voice = (np.sin(2 * np.pi * 170 * n / 48000) * 6000 * ((n // 48000) % 3 < 2)).astype(np.int16)
    spent: dict[str, list[float]] = {"plain": [], "stretch": [], "catch_up": []}
    t0 = 1000.0
    for k in range(frames):
        decisions.now = k * FRAME_S
        before = (line.elastic.stretched_frames, line.elastic.cut_samples)
        started = time.perf_counter()
        line.push(k * FRAME_SAMPLES, voice[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES], t0 + k * FRAME_S)
        line.pull(t0 + k * FRAME_S)
        took = time.perf_counter() - started
        if line.elastic.stretched_frames != before[0]:
            spent["stretch"].append(took)
        elif line.elastic.cut_samples != before[1]:
            spent["catch_up"].append(took)
        else:
            spent["plain"].append(took)
    stats = line.stats()
    out: dict[str, float] = {f"{kind}_frames": len(v) for kind, v in spent.items()}
    for kind, v in spent.items():
        if v:
            out[f"{kind}_us_p50"] = round(float(np.median(v)) * 1e6, 1)
            out[f"{kind}_us_p95"] = round(float(np.percentile(v, 95)) * 1e6, 1)
    out.update(delay_mean_s=round(stats.delay_mean_s, 3), delay_p95_s=round(stats.delay_p95_s, 3))
    return out


def speech_48k() -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "ko.wav", Path(tmp) / "ko48.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), SPEECH], check=True)
        subprocess.run(["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(out)], check=True)
        with wave.open(str(out)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def browser_voice(speech: np.ndarray) -> np.ndarray:
    """The customer's voice as the server decodes it: a browser's Opus (voice mode, 32 kb/s,
    complexity 10, 20 ms packets) encoded and decoded."""
    encoder = OpusVoiceEncoder(complexity=10)
    decoder = OpusVoiceDecoder()
    frames = (speech[k * FRAME_SAMPLES : (k + 1) * FRAME_SAMPLES] for k in range(speech.size // FRAME_SAMPLES))
    return np.concatenate([decoder.decode(encoder.encode(frame)) for frame in frames])


def delayed_stream(voice: np.ndarray, original: np.ndarray, complexity: int, frames: int) -> dict[str, float | None]:
    """The delayed stream's encode as the call runs it (`frames` 20 ms frames a packet) at
    `complexity`: microseconds per 20 ms of audio, and PESQ wideband of what the counselor
    decodes against the original speech (None without the `pesq` package)."""
    encoder = tracks.delayed_encoder(frames, complexity)
    decoder = OpusVoiceDecoder()
    size = encoder.samples
    packets, spent = [], 0.0
    for k in range(voice.size // size):
        started = time.perf_counter()
        packets.append(encoder.encode(voice[k * size : (k + 1) * size]))
        spent += time.perf_counter() - started
    heard = np.concatenate([decoder.decode(p) for p in packets])
    return {
        "us_per_20ms": round(spent / (len(packets) * frames) * 1e6, 1),
        "pesq_wb": pesq_wb(original[: heard.size], heard),
    }


def pesq_wb(reference: np.ndarray, degraded: np.ndarray) -> float | None:
    try:
        from pesq import pesq
    except ImportError:
        return None
    # Opus's algorithmic delay (the browser's and CELT's look-ahead) shifts what is heard.
    lag = int(np.argmax(np.correlate(degraded[:48000].astype(float), reference[:24000].astype(float), "valid")))
    ref16 = reference[: degraded.size - lag][::3].astype(np.float32)
    deg16 = degraded[lag:][::3].astype(np.float32)
    return round(float(pesq(16000, ref16, deg16, "wb")), 3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    speech = np.tile(speech_48k(), 2)
    voice = browser_voice(speech)
    result = {
        "delay_line": delay_line_cost(args.frames),
        "delay_line_60ms_pulls": delay_line_cost(args.frames, pull_frames=3),
        "delay_line_drifting_1000ppm": delay_line_cost(args.frames, drift_ppm=1000.0),
        "delay_line_60ms_pulls_drifting_1000ppm": delay_line_cost(args.frames, drift_ppm=1000.0, pull_frames=3),
        "elastic_delay": elastic_cost(args.frames),
        "delayed_stream_by_complexity": {str(c): delayed_stream(voice, speech, c, 3) for c in (10, 5, 0)},
        "delayed_stream_in_use": {"complexity": tracks.DELAYED_COMPLEXITY, "bitrate": tracks.DELAYED_BITRATE},
    }
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
