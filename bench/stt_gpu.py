#!/usr/bin/env python3
"""The inference tier's services on a GPU: batch throughput, calls per GPU.

    python bench/stt_gpu.py --model PATH|tiny|base|small [--compute-type float16] [--json]

Prepared for a CUDA machine (device "auto" picks it; never part of the tests). Three
parts, each printed as it finishes so a run cut short still reports:

1. batch sweep: B clips of 4 s (espeak-ng Korean, or noise when espeak-ng is missing)
   through WhisperEngine.transcribe_batch (fitted window, one encode/generate/align per
   batch), B = 1, 2, 4, ..., --max-batch: ms per batch, passes per second, and the full
   30 s window for comparison at B = 1;
2. live load: bench/stt_lag.py's real-time driver with --driver batched for N calls
   (--calls, default 1,8,32): lag p50/p95, undecided %, skipped s. A pass every ~0.5 s
   per call means calls ~= passes/s / 2 at the lag bound.
3. classifier: the model call of the classifier tier's replica (moderation/classifier_tier.py:
   AbuseClassifier.judge_many over every waiting node's utterances) for B = 1, 2, 4, ...,
   --max-batch utterances, on a bert-base-sized kor_unsmile with random weights
   (tests/tiny_bert.py, the real KcBERT tokenizer; --classifier-size): ms per batch and
   utterances/s, clean (one forward pass) and all flagged (thresholds 0: the leave-one-out
   pass too, what an abusive utterance costs). --classifier-size none skips it.

--model: a CTranslate2 Whisper folder, or a size for random weights of that size (built
with torch + transformers on the spot, as the CPU benches do). Random weights never say
end-of-text, so --tokens-per-s caps them at a realistic rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from moderation.stt_config import SttConfig  # noqa: E402
from moderation.whisper_engine import WhisperEngine  # noqa: E402

SIZES = ("tiny", "base", "small")


def model_path(model: str) -> str:
    if model not in SIZES:
        return model
    from tests import tiny_models

    cache = Path(os.environ.get("CALLGUARD_BENCH_CACHE", Path.home() / ".cache" / "callguard-bench"))
    return str(tiny_models.cached_whisper_ct2(cache, model, "int8"))


def clip(seconds: float, seed: int) -> np.ndarray:
    try:
        from stt_speech import call_audio

        audio, _ = call_audio(seconds, "ko", seed=seed)
        return audio
    except Exception:  # noqa: BLE001 - no espeak-ng on the GPU host: noise still costs the same
        return (0.05 * np.random.default_rng(seed).standard_normal(int(seconds * 16000))).astype(np.float32)


def median_ms(run: Callable[[], object]) -> float:
    """Median of three runs after one that warms this shape, in ms."""
    run()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 1000 * float(np.median(times))


def emit(record: dict, as_json: bool) -> None:
    print(json.dumps(record) if as_json else record, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="base")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compute-type", default="float16")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--clip-s", type=float, default=4.0)
    parser.add_argument("--calls", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=30.0, help="live-load run length per N")
    parser.add_argument("--tokens-per-s", type=float, default=6.0)
    parser.add_argument("--tokens-base", type=int, default=4)
    parser.add_argument("--classifier-size", default="base", help="tests/tiny_bert.py size (base, test), or none")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    path = model_path(args.model)
    random_weights = args.model in SIZES
    caps = {"tokens_per_s": args.tokens_per_s, "tokens_base": args.tokens_base} if random_weights else {}
    config = SttConfig(model=path, device=args.device, compute_type=args.compute_type, workers=1, language="ko")
    engine = WhisperEngine(config, **caps)
    emit(
        {"part": "load", "device": engine.device, "model": engine.version, "load_s": round(engine.load_s, 2)}, args.json
    )

    clips = [clip(args.clip_s, seed) for seed in range(args.max_batch)]
    batch = 1
    while batch <= args.max_batch:
        items = [(c, "", "ko", "") for c in clips[:batch]]
        ms = median_ms(lambda: engine.transcribe_batch(items))  # noqa: B023 - timed here, in the loop
        info = engine.last_pass()
        emit(
            {
                "part": "batch",
                "batch": batch,
                "ms_per_batch": round(ms, 1),
                "passes_per_s": round(batch / (ms / 1000), 1),
                "window_frames": info.get("window_frames"),
                "encode_ms": round(1000 * info.get("encode_s", 0), 1),
                "generate_ms": round(1000 * info.get("generate_s", 0), 1),
                "align_ms": round(1000 * info.get("align_s", 0), 1),
            },
            args.json,
        )
        batch *= 2

    full = WhisperEngine(
        SttConfig(
            model=path,
            device=args.device,
            compute_type=args.compute_type,
            workers=1,
            language="ko",
            encoder_window="full",
        ),
        warmup=True,
        **caps,
    )
    t0 = time.perf_counter()
    for _ in range(3):
        full.transcribe(clips[0], "", "ko")
    emit({"part": "full_window_b1", "ms_per_pass": round(1000 * (time.perf_counter() - t0) / 3, 1)}, args.json)

    for n in [int(x) for x in args.calls.split(",") if x]:
        cmd = [
            sys.executable,
            str(ROOT / "bench" / "stt_lag.py"),
            "--model",
            args.model,
            "--calls",
            str(n),
            "--seconds",
            str(args.seconds),
            "--driver",
            "batched",
            "--device",
            args.device,
            "--compute-type",
            args.compute_type,
            "--no-offline",
            "--json",
            "--set",
            "workers=1",
            "--set",
            "max_lag_s=2.0",
            "--set",
            f"batch_max={max(1, n)}",
        ]
        out = subprocess.run(cmd, capture_output=True, text=True)
        line = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
        try:
            record = json.loads(line)
            record = {
                k: record.get(k)
                for k in (
                    "calls",
                    "rtf",
                    "lag_p50_s",
                    "lag_p95_s",
                    "undecided_pct",
                    "skipped_s",
                    "passes",
                    "batches",
                    "mean_batch",
                    "cpu_pct",
                )
            }
        except json.JSONDecodeError:
            record = {"calls": n, "error": (out.stderr or "")[-500:]}
        emit({"part": "live", **record}, args.json)

    if args.classifier_size != "none":
        classifier_sweep(args)


def classifier_sweep(args: argparse.Namespace) -> None:
    import torch

    from moderation.classifier import AbuseClassifier, TransformersScorer
    from moderation.classifier_config import UNSMILE_LABELS, ClassifierConfig
    from tests import tiny_bert
    from tests.tiny_models import KOREAN_LINES

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    model = tiny_bert.build_bert_model(args.classifier_size).to(device)
    scorer = TransformersScorer(model, tiny_bert.kcbert_tokenizer(), UNSMILE_LABELS, device=device, max_length=300)
    lines = [line.split() for line in KOREAN_LINES]
    emit({"part": "classifier_load", "device": device, "size": args.classifier_size}, args.json)
    for case, thresholds in (("clean", {}), ("flagged", {label: 0.0 for label in UNSMILE_LABELS})):
        classifier = AbuseClassifier(scorer, UNSMILE_LABELS, ClassifierConfig(thresholds=thresholds))
        batch = 1
        while batch <= args.max_batch:
            utterances = [lines[i % len(lines)] for i in range(batch)]
            ms = median_ms(lambda: classifier.judge_many(utterances))  # noqa: B023 - timed here, in the loop
            emit(
                {
                    "part": "classifier",
                    "case": case,
                    "batch": batch,
                    "ms_per_batch": round(ms, 1),
                    "utterances_per_s": round(batch / (ms / 1000), 1),
                },
                args.json,
            )
            batch *= 2


if __name__ == "__main__":
    main()
