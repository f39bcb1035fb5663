#!/usr/bin/env python3
"""Cost profile of one transcription pass, and what a short encoder window costs in text
and word times.

    python bench/stt_profile.py --model /work/whisper-base [--lang ko|en] [--threads 2] [--json]

For a clip of S seconds (two espeak-ng sentences with pauses), median over --repeat runs:
- features (log-mel), encoder over the full 30 s window (3000 frames) and over the clip
  plus P seconds of padding, greedy decoding, word alignment (moderation/whisper_pass.py,
  straight on CTranslate2);
- faster-whisper's own transcribe() on the same clip (word timestamps, beam 1, no
  temperature fallback), which pads to 30 s whatever chunk_length says;
- per padding P: the transcript's CER against the full-window transcript of the same
  model, and the mean / max shift of word start and end times (matched words only).
- clip lengths 1..8 s at the chosen padding: pass cost vs audio length (the streaming
  schedule's cost model).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from stt_speech import LINES, SAMPLE_RATE, cer, espeak  # noqa: E402

from moderation.whisper_pass import PassRequest, PassTiming, WhisperPass  # noqa: E402


def clip(lang: str, n_lines: int = 2) -> np.ndarray:
    pause = np.zeros(int(0.5 * SAMPLE_RATE), dtype=np.float32)
    parts = [pause]
    for line in LINES[lang][:n_lines]:
        parts += [0.6 * espeak(line, lang), pause]
    return np.concatenate(parts).astype(np.float32)


def timed_pass(wp: WhisperPass, audio: np.ndarray, repeat: int, cap: int = 120) -> tuple[dict, object]:
    runs = []
    result = None
    wp.run([PassRequest(audio, [], cap)])  # warm this window size
    for _ in range(repeat):
        t = PassTiming()
        result = wp.run([PassRequest(audio, [], cap)], t)[0]
        runs.append(t)
    med = {
        k: round(1000 * statistics.median(getattr(r, k) for r in runs), 1)
        for k in ("features_s", "encode_s", "generate_s", "align_s")
    }
    out = {k.replace("_s", "_ms"): v for k, v in med.items()}
    out["total_ms"] = round(sum(med.values()), 1)
    out["window_frames"] = runs[-1].window_frames
    out["tokens"] = result.tokens
    return out, result


def words_of(result) -> list:
    return [w for s in result.segments for w in s.words]


def text_of(result) -> str:
    return " ".join(s.text for s in result.segments)


def time_shift(ref_words: list, words: list) -> dict:
    """Start/end differences of words matched in order by text."""
    from moderation.agreement import normalise

    ds, de = [], []
    j = 0
    for w in words:
        for k in range(j, len(ref_words)):
            if normalise(ref_words[k].text) == normalise(w.text) and normalise(w.text):
                ds.append(abs(ref_words[k].start - w.start))
                de.append(abs(ref_words[k].end - w.end))
                j = k + 1
                break
    if not ds:
        return {"matched": 0}
    return {
        "matched": len(ds),
        "start_mean_ms": round(1000 * float(np.mean(ds)), 1),
        "start_max_ms": round(1000 * max(ds), 1),
        "end_mean_ms": round(1000 * float(np.mean(de)), 1),
        "end_max_ms": round(1000 * max(de), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="CTranslate2 Whisper folder")
    parser.add_argument("--lang", default="ko")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pads", default="0,0.5,1,2,3,4")
    parser.add_argument("--pad", type=float, default=2.0, help="padding for the length sweep")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    model = WhisperModel(args.model, device="cpu", compute_type="int8", cpu_threads=args.threads, local_files_only=True)
    audio = clip(args.lang)
    report: dict = {
        "model": args.model,
        "lang": args.lang,
        "threads": args.threads,
        "clip_s": round(len(audio) / SAMPLE_RATE, 2),
    }

    full = WhisperPass(model, args.lang, full_window=True)
    report["full_window"], ref = timed_pass(full, audio, args.repeat)
    ref_text, ref_words = text_of(ref), words_of(ref)
    report["full_window"]["text"] = ref_text

    pads = {}
    for pad in [float(p) for p in args.pads.split(",")]:
        wp = WhisperPass(model, args.lang, pad_s=pad)
        figures, result = timed_pass(wp, audio, args.repeat)
        figures["cer_vs_full_window"] = round(cer(text_of(result), ref_text) or 0.0, 3)
        figures["word_times_vs_full_window"] = time_shift(ref_words, words_of(result))
        figures["text"] = text_of(result)
        pads[str(pad)] = figures
    report["padded"] = pads

    # faster-whisper's own path on the same clip: pads to 30 s whatever chunk_length says.
    for chunk in (30, 10):
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            segs, _ = model.transcribe(
                audio,
                language=args.lang,
                beam_size=1,
                best_of=1,
                temperature=0.0,
                word_timestamps=True,
                condition_on_previous_text=False,
                chunk_length=chunk,
                vad_filter=False,
            )
            list(segs)
            times.append(time.perf_counter() - t0)
        report[f"faster_whisper_transcribe_chunk{chunk}_ms"] = round(1000 * statistics.median(times), 1)

    # Pass cost against clip length (the streaming cost model).
    wp = WhisperPass(model, args.lang, pad_s=args.pad)
    sweep = {}
    for seconds in (1, 2, 4, 6, 8):
        part = audio[: int(seconds * SAMPLE_RATE)]
        figures, _ = timed_pass(wp, part, args.repeat, cap=int(10 + 10 * seconds))
        sweep[str(seconds)] = {
            k: figures[k] for k in ("encode_ms", "generate_ms", "align_ms", "total_ms", "window_frames", "tokens")
        }
    report[f"by_clip_length_pad{args.pad:g}"] = sweep
    # Per-token decode cost: a longer decode of the same window.
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(json.dumps(report, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
