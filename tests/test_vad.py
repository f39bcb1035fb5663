"""webrtcvad gate: real Korean speech from espeak-ng is speech, silence is not."""

from __future__ import annotations

import shutil
import subprocess
import wave

import numpy as np
import pytest

from moderation.vad import VadGate, speech_flags

SR = 16000


@pytest.fixture(scope="module")
def korean(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    assert shutil.which("espeak-ng") and shutil.which("sox"), "run scripts/install-test-deps"
    d = tmp_path_factory.mktemp("ko")
    raw, out = d / "raw.wav", d / "ko16k.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), "안녕하세요 상담원입니다"], check=True)
    subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(out)], check=True)
    with wave.open(str(out)) as w:
        assert w.getframerate() == SR
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def voiced(x: np.ndarray) -> np.ndarray:
    """The part of the clip between its first and last loud sample."""
    loud = np.flatnonzero(np.abs(x) > 0.02)
    return x[loud[0] : loud[-1]]


def test_korean_utterance_is_speech_and_silence_is_not(korean: np.ndarray) -> None:
    body = voiced(korean)
    assert len(body) > SR  # over a second of speech
    assert speech_flags(body).mean() > 0.7
    assert not speech_flags(np.zeros(SR)).any()


def test_gate_gives_one_region_around_the_utterance(korean: np.ndarray) -> None:
    body = voiced(korean)
    lead, trail = 1.0, 1.5
    audio = np.concatenate([np.zeros(int(lead * SR)), body, np.zeros(int(trail * SR))]).astype(np.float32)
    gate = VadGate(2, hangover_s=0.3, preroll_s=0.2)
    gate.reset(10.0)  # media time of the first sample
    for i in range(0, len(audio), 320):  # 20 ms feeds, 30 ms frames inside
        gate.feed(audio[i : i + 320])
    speech_start, speech_end = 10.0 + lead, 10.0 + lead + len(body) / SR
    assert len(gate.regions) == 1
    r = gate.regions[0]
    assert r.closed
    assert speech_start - 0.25 <= r.start <= speech_start + 0.05
    # webrtcvad keeps saying speech for a few frames after it ends (its own hangover).
    assert speech_end + 0.3 <= r.end <= speech_end + 0.3 + 0.15
    assert not gate.has_speech(10.0, speech_start - 0.25)
    assert gate.has_speech(speech_start + 0.5, speech_start + 0.6)
    assert gate.closed_ends(10.0, gate.frontier) == [r.end]
    # Silence before and after the region is decided; inside it nothing is.
    assert gate.silent_until(10.0) == pytest.approx(r.start)
    assert gate.silent_until(speech_start + 0.5) == speech_start + 0.5
    assert gate.silent_until(r.end) == pytest.approx(gate.frontier - 0.2)


def test_frames_below_the_level_floor_are_never_speech() -> None:
    hiss = (np.random.default_rng(5).standard_normal(2 * SR) * 0.0005).astype(np.float32)  # -66 dBFS
    assert speech_flags(hiss).any()  # webrtcvad alone: its first frames are "speech"
    gate = VadGate(2, min_level_dbfs=-60.0)
    gate.reset(0.0)
    gate.feed(hiss)
    assert gate.regions == []
    loose = VadGate(2, min_level_dbfs=None)
    loose.reset(0.0)
    loose.feed(hiss)
    assert loose.regions != []


def test_region_stays_open_through_short_pauses_and_closes_after_hangover() -> None:
    speech = {"on": True}
    gate = VadGate(hangover_s=0.3, preroll_s=0.0, min_level_dbfs=None, classifier=lambda frame: speech["on"])
    gate.reset(0.0)
    frame = np.zeros(480, dtype=np.float32)
    for _ in range(10):  # 0.3 s speech
        gate.feed(frame)
    speech["on"] = False
    for _ in range(5):  # 0.15 s pause: shorter than the hangover
        gate.feed(frame)
    assert gate.in_speech()
    speech["on"] = True
    for _ in range(10):  # to 0.75 s
        gate.feed(frame)
    speech["on"] = False
    for _ in range(9):  # 0.27 s after the last speech: not yet closed
        gate.feed(frame)
    assert gate.in_speech()
    gate.feed(frame)  # 0.30 s: closed
    assert not gate.in_speech()
    assert len(gate.regions) == 1
    assert gate.regions[0].start == 0.0
    assert gate.regions[0].end == pytest.approx(0.75 + 0.3)
