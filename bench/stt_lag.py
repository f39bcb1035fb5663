#!/usr/bin/env python3
"""Streaming STT lag on this machine: Whisper tiny/base/small, real cost, random weights.

    python bench/stt_lag.py --model-size small --seconds 30 --json

No weights can be downloaded here, so the model is the REAL architecture of the size
(dimensions, vocabulary, special tokens) with random weights, converted to CTranslate2
int8 and cached under ~/.cache/callguard-bench (tests/tiny_models.py builds it). Compute
per pass is the real one; the text is garbage. A random model never says end-of-text, so
every window decodes exactly up to the cap, and the cap sets the decoding cost:

- default, realistic: 6 tokens per second of audio + 4. Korean speech runs at 5-7
  syllables/s and the multilingual Whisper tokenizer spends ~0.75 tokens per syllable
  (measured on call-centre sentences), ~4-5 text tokens/s, plus two timestamps per
  segment and the end token;
- --tokens-per-s 10 --tokens-base 10: the engine's production cap (the most a
  hallucinating real model can cost).

A random model also never closes its last segment, so faster-whisper re-decodes the tail
in a second encoder window every pass (windows_per_pass ~2). A real model usually closes
it; --no-tail-redecode measures one window per pass.

The customer's side of a call (Korean espeak-ng utterances with pauses, S seconds) is fed
in 20 ms chunks at real-time pace (the main thread plays the event loop: feed() only);
passes run in one worker thread as the relay runs them, on 2 CPU threads (one engine
worker, cpu_threads=2), beam 1.

The driver is the real moderation.transcriber.StreamingTranscriber: webrtcvad gate,
LocalAgreement-2, trimming, a final pass at each utterance end, skip-ahead past max_lag_s.

Figures:
- lag_p50_s / lag_p95_s, per engine pass: wall time the pass finished minus wall time
  the newest audio it covered arrived. With random weights the words are garbage, so this
  is "word end to word known" for a word ending at the newest audio (earlier words waited
  longer; LocalAgreement-2 confirms one pass later, or at the utterance's final pass).
- watermark_lag_p50_s / _p95_s / _max_s: sampled every 50 ms, wall
  "now" minus cleared_until; the delay line's D must exceed it, or audio plays undecided.
- skipped_s: audio dropped unheard by skip-ahead (played under the undecided policy).
- rtf: engine compute seconds / audio seconds; cpu_pct: this process, % of one core.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from moderation.speech import SAMPLE_RATE  # noqa: E402
from moderation.stt_config import SttConfig  # noqa: E402
from moderation.whisper_engine import DECODE_TOKENS_BASE, DECODE_TOKENS_PER_S, WhisperEngine  # noqa: E402
from tests import tiny_models  # noqa: E402

CACHE = Path(os.environ.get("CALLGUARD_BENCH_CACHE", Path.home() / ".cache" / "callguard-bench"))
FRAME_S = 0.02


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(size: str, seconds: float, chunk_s: float, buffer_max_s: float, threads: int, quiet: bool,
        tail_redecode: bool = True, tokens_per_s: float = 6.0, tokens_base: int = 4,
        max_lag_s: float = SttConfig.max_lag_s) -> dict:
    built = time.monotonic()
    model_dir = tiny_models.cached_whisper_ct2(CACHE, size, "int8")
    build_s = time.monotonic() - built
    audio, spans = tiny_models.korean_call(seconds, SAMPLE_RATE)
    config = SttConfig(model=str(model_dir), device="cpu", compute_type="int8", beam_size=1, workers=1,
                       chunk_s=chunk_s, buffer_max_s=buffer_max_s, max_lag_s=max_lag_s)
    engine = WhisperEngine(config, cpu_threads=threads, tail_redecode=tail_redecode, tokens_per_s=tokens_per_s,
                           tokens_base=tokens_base)
    if not quiet:
        print(f"model {engine.version} ({'built' if build_s > 2 else 'cached'} in {build_s:.1f} s), "
              f"{len(spans)} utterances in {seconds:.0f} s", file=sys.stderr)
    cpu0 = cpu_seconds()
    result = drive_transcriber(engine, config, audio, spans)
    cpu = cpu_seconds() - cpu0
    passes = result.pop("passes")
    lags = [p["lag_s"] for p in passes]
    compute = [p["compute_s"] for p in passes]
    out = {
        "model_size": size,
        "seconds": seconds,
        "rtf": round(sum(compute) / seconds, 3),
        "lag_p50_s": percentile(lags, 50),
        "lag_p95_s": percentile(lags, 95),
        **result,
        "cpu_pct": round(100 * cpu / result["wall_s"], 1),
        "passes": len(passes),
        "mean_pass_s": round(float(np.mean(compute)), 3) if compute else None,
        "max_pass_s": round(max(compute), 3) if compute else None,
        "mean_pass_audio_s": round(float(np.mean([p["audio_s"] for p in passes])), 2) if passes else None,
        "windows_per_pass": round(float(np.mean([p["windows"] for p in passes])), 2) if passes else None,
        "tail_redecode": tail_redecode,
        "decode_cap_tokens_per_s": tokens_per_s,
        "decode_cap_base_tokens": tokens_base,
        "engine_default_cap": f"{DECODE_TOKENS_PER_S:g}/s + {DECODE_TOKENS_BASE}",
        "cpu_threads": threads,
        "chunk_s": chunk_s,
        "max_lag_s": max_lag_s,
        "model_version": engine.version,
    }
    return out


class TimedEngine:
    """The engine as the transcriber sees it, recording each pass's wall times."""

    def __init__(self, engine: WhisperEngine, covered_start: "callable") -> None:
        self.engine = engine
        self.covered_start = covered_start  # media time of the audio's first sample
        self.t0 = 0.0
        self.passes: list[dict] = []

    @property
    def version(self) -> str:
        return self.engine.version

    def transcribe(self, audio: np.ndarray, prompt: str, language: str):
        start_media = self.covered_start()
        started = time.monotonic()
        result = self.engine.transcribe(audio, prompt, language)
        finished = time.monotonic()
        end_media = start_media + len(audio) / SAMPLE_RATE
        self.passes.append({"compute_s": finished - started, "lag_s": finished - (self.t0 + end_media),
                            "audio_s": len(audio) / SAMPLE_RATE, "windows": self.engine.last_pass().get("windows", 0)})
        return result


def feed_real_time(audio: np.ndarray, t0: float, on_frame) -> None:
    frame = int(FRAME_S * SAMPLE_RATE)
    for i in range(len(audio) // frame):
        due = t0 + (i + 1) * FRAME_S  # the frame's last sample has been "spoken" by now
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        on_frame(i, audio[i * frame:(i + 1) * frame])


def drive_transcriber(engine: WhisperEngine, config: SttConfig, audio: np.ndarray, spans) -> dict:
    from moderation.transcriber import StreamingTranscriber

    holder: dict = {}
    timed = TimedEngine(engine, lambda: holder["tr"].buffer_start)
    tr = StreamingTranscriber(timed, config)
    holder["tr"] = tr
    stop = threading.Event()
    confirmed: list[tuple[float, float]] = []  # (word end, wall time known), media/wall
    skipped: list[tuple[float, float]] = []
    watermark: list[float] = []

    def worker() -> None:
        while not stop.is_set():
            if tr.pending():
                upd = tr.step()
                now = time.monotonic()
                confirmed.extend((w.end, now) for w in upd.confirmed)
                skipped.extend(upd.skipped)
            else:
                time.sleep(0.005)

    def sampler() -> None:
        while not stop.is_set():
            now = time.monotonic() - timed.t0
            watermark.append(min(now, tr.received_until) - tr.cleared_until)
            time.sleep(0.05)

    timed.t0 = t0 = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True), threading.Thread(target=sampler, daemon=True)]
    for t in threads:
        t.start()
    feed_real_time(audio, t0, lambda i, chunk: tr.feed(chunk, i * FRAME_S))
    stop.set()
    for t in threads:
        t.join()
    final = tr.finish()
    wall = time.monotonic() - t0
    word_lags = [known - (t0 + end) for end, known in confirmed]
    return {
        "passes": timed.passes,
        "watermark_lag_p50_s": percentile(watermark, 50),
        "watermark_lag_p95_s": percentile(watermark, 95),
        "watermark_lag_max_s": round(max(watermark), 3) if watermark else None,
        "confirmed_word_lag_p50_s": percentile(word_lags, 50),
        "confirmed_word_lag_p95_s": percentile(word_lags, 95),
        "confirmed_words": len(confirmed),
        "skipped_s": round(sum(b - a for a, b in skipped + list(final.skipped)), 2),
        "transcriber_stats": {"passes": tr.stats.passes, "final_passes": tr.stats.final_passes,
                              "silent_steps": tr.stats.silent_steps, "skips": tr.stats.skips,
                              "forced_cuts": tr.stats.forced_cuts, "dropped": dict(tr.stats.dropped)},
        "wall_s": round(wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model-size", choices=["tiny", "base", "small"], default="base")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--chunk-s", type=float, default=SttConfig.chunk_s)
    parser.add_argument("--buffer-max-s", type=float, default=SttConfig.buffer_max_s)
    parser.add_argument("--threads", type=int, default=2, help="CTranslate2 CPU threads (default 2)")
    parser.add_argument("--tokens-per-s", type=float, default=6.0,
                        help="decoding cap per second of audio (default 6: realistic Korean speech)")
    parser.add_argument("--tokens-base", type=int, default=4, help="decoding cap, fixed part (default 4)")
    parser.add_argument("--no-tail-redecode", action="store_true",
                        help="one encoder window per pass (WhisperEngine(tail_redecode=False))")
    parser.add_argument("--max-lag-s", type=float, default=SttConfig.max_lag_s,
                        help="transcriber skips ahead past this lag (default: SttConfig's)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    result = run(args.model_size, args.seconds, args.chunk_s, args.buffer_max_s, args.threads, quiet=args.json,
                 tail_redecode=not args.no_tail_redecode, tokens_per_s=args.tokens_per_s,
                 tokens_base=args.tokens_base, max_lag_s=args.max_lag_s)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
