#!/usr/bin/env python3
"""Cost of mixing the escalation warning into the counselor's voice, per 20 ms packet.

    python bench/prompt_mix_cost.py [--packets 1500] [--json]

Forwarding a counselor packet normally costs nothing (it is sent as it came); while the
warning plays each packet is decoded, summed with the prompt and encoded again
(relay/webrtc/prompt_mix.py). This times that path on the shipped Korean prompt over a
900 Hz voice stand-in, and the pass-through after the prompt, in microseconds a packet.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from relay.media.audio_format import FRAME_SAMPLES, RATE  # noqa: E402
from relay.media.opus import OpusVoiceEncoder  # noqa: E402
from relay.media.prompt import SHIPPED_WARNING, load_prompt  # noqa: E402
from relay.webrtc.prompt_mix import PromptMix  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--packets", type=int, default=1500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    n = np.arange(args.packets * FRAME_SAMPLES)
    voice = (0.3 * 32767 * np.sin(2 * np.pi * 900.0 * n / RATE)).astype(np.int16)
    encoder = OpusVoiceEncoder()
    packets = [encoder.encode(voice[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]) for i in range(args.packets)]
    mix = PromptMix(load_prompt(SHIPPED_WARNING))
    prompt_packets = -(-mix.prompt.size // FRAME_SAMPLES)
    mixed_us: list[float] = []
    passed_us: list[float] = []
    mix.start()
    for i, packet in enumerate(packets):
        if not mix.playing and i % (prompt_packets + 50) == 0:
            mix.start()
        playing = mix.playing
        t0 = time.perf_counter()
        mix.mix(packet)
        spent = (time.perf_counter() - t0) * 1e6
        (mixed_us if playing else passed_us).append(spent)
    result = {
        "packets": args.packets,
        "prompt_s": round(mix.duration_s, 2),
        "mixed_packets": len(mixed_us),
        "mixed_us_p50": round(float(np.median(mixed_us)), 1),
        "mixed_us_p99": round(float(np.percentile(mixed_us, 99)), 1),
        "passthrough_us_p50": round(float(np.median(passed_us)), 2) if passed_us else None,
        "mixed_core_pct_while_playing": round(float(np.median(mixed_us)) / 20000 * 100, 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:32} {value}")


if __name__ == "__main__":
    main()
