"""Speech and scoring shared by the STT benches: espeak-ng calls in Korean or English,
an offline reference transcript from the same model, and character error rate.

No labelled recordings exist here. espeak-ng Korean is nearly unreadable to real Whisper,
so for Korean the reference is the SAME model's offline beam-1 transcript of the same
audio (does streaming lose what the model can hear?); English espeak-ng is read fairly
well, an extra check against the script itself.
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np

from moderation.agreement import normalise
from tests.tiny_models import KOREAN_LINES

SAMPLE_RATE = 16000

LINES = {
    "ko": KOREAN_LINES,  # the call-centre lines the tests speak
    "en": [
        "Hello, I am calling about the order I placed last month.",
        "It still has not arrived and nobody answers my emails.",
        "I was charged twice for the same delivery, please check my account.",
        "This is really frustrating, how many times do I have to call you?",
        "Put me through to your manager right now.",
        "Fine, I will wait, but please hurry up.",
    ],
}


def espeak(text: str, lang: str, speed: int = 160) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:
        path = Path(tmp) / "out.wav"
        subprocess.run(
            ["espeak-ng", "-v", lang, "-s", str(speed), "-w", str(path), text], check=True, capture_output=True
        )
        with wave.open(str(path), "rb") as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    n_out = int(round(len(pcm) * SAMPLE_RATE / rate))
    return np.interp(np.arange(n_out) * rate / SAMPLE_RATE, np.arange(len(pcm)), pcm).astype(np.float32)


def call_audio(
    seconds: float, lang: str = "ko", seed: int = 0, pause_s: tuple[float, float] = (0.4, 1.2)
) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """A customer's side of a call: utterances with pauses, exactly `seconds` long; seed
    changes the order and the pauses, so several calls are not in lock step."""
    rng = np.random.default_rng(seed)
    lines = LINES[lang]
    order = list(rng.permutation(len(lines)))
    speech = {i: espeak(lines[i], lang) for i in order}
    total = int(seconds * SAMPLE_RATE)
    out = np.zeros(total, dtype=np.float32)
    spans = []
    pos = int(rng.uniform(0.2, 0.6) * SAMPLE_RATE)
    k = 0
    while pos < total:
        i = order[k % len(order)]
        clip = speech[i][: total - pos]
        out[pos : pos + len(clip)] = 0.6 * clip
        spans.append((pos / SAMPLE_RATE, (pos + len(clip)) / SAMPLE_RATE, lines[i]))
        pos += len(clip) + int(rng.uniform(*pause_s) * SAMPLE_RATE)
        k += 1
    return out, spans


def cer(hypothesis: str, reference: str) -> float | None:
    """Character error rate on normalised text (no spaces or punctuation)."""
    hyp, ref = normalise(hypothesis), normalise(reference)
    if not ref:
        return None if not hyp else 1.0
    prev = list(range(len(hyp) + 1))
    for i, rc in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, hc in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rc != hc))
        prev = cur
    return prev[-1] / len(ref)


def offline_transcript(model_path: str, audio: np.ndarray, language: str, threads: int = 2) -> str:
    """The same model's offline transcript: faster-whisper over the whole clip, beam 1, no
    temperature fallback, not conditioned on its previous window (on espeak-ng Korean the
    conditioned decode loops a phrase for the rest of the clip), the accuracy reference."""
    from faster_whisper import WhisperModel

    model = WhisperModel(model_path, device="cpu", compute_type="int8", cpu_threads=threads, local_files_only=True)
    segments, _ = model.transcribe(
        audio,
        language=language,
        beam_size=1,
        best_of=1,
        temperature=0.0,
        vad_filter=False,
        without_timestamps=False,
        condition_on_previous_text=False,
    )
    return " ".join(s.text.strip() for s in segments)
