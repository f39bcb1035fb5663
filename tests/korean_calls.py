"""Korean customer calls synthesised word by word with espeak-ng, so every word's true
timing is known, for `callguard eval-calls` (tests/test_eval_calls.py).

Each word is spoken on its own (`espeak-ng -v ko -w out.wav WORD`), its leading and
trailing silence trimmed, and the words are laid end to end with short gaps (60-120 ms)
inside an utterance and longer pauses (0.5-1.4 s) between utterances. A word's manifest
[start, end] is exactly where its trimmed audio lies in the WAV. Abusive words (marked
with a leading "!" in the scripts) sit at the start, in the middle and at the end of
utterances, and back to back; the rest is what a customer says to a call centre.

    manifest = write_calls(tmp_path)          # WAVs + manifest.jsonl, returns its path

The WAVs are written at espeak-ng's own rate (22050 Hz), so eval-calls' resampling to
48 kHz (delay line) and 16 kHz (transcriber) is exercised as with any recorded call.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tempfile
import wave
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from offline.eval_calls import to_int16
from tests.wav import write_wav

RATE = 22050  # espeak-ng's output rate
GAP_S = (0.06, 0.12)  # between words of one utterance
PAUSE_S = (0.5, 1.4)  # between utterances
LEAD_S = 0.6  # silence before the first word
TAIL_S = 1.2  # silence after the last word
LEVEL = 0.6  # peak level of the spoken words (espeak-ng speaks near full scale)

# Calls as utterances; "!" marks an abusive word (ground truth, scoring only).
# Abuse at the start ("!씨발 도대체..."), in the middle ("...저한테 !병신 같이..."), at the
# end ("...걸려요 !씨발 !개새끼"), and back to back.
CALLS: dict[str, list[str]] = {
    "delivery": [
        "여보세요 주문한 상품 때문에 전화했는데요",
        "지난주 월요일에 주문했는데 아직도 배송이 안 왔어요",
        "!씨발 도대체 언제 오는 거예요",
        "주문 번호는 문자로 받은 거 불러 드릴게요",
        "네 맞아요 그 번호 맞습니다",
        "아니 그걸 왜 저한테 물어봐요 !병신 같이 일하시네",
        "택배 기사님 연락처라도 알려 주세요",
        "오늘 안에 안 오면 환불해 주세요",
        "알겠어요 그럼 기다려 볼게요 !지랄",
        "네 수고하세요",
    ],
    "billing": [
        "안녕하세요 요금 문의 좀 하려고요",
        "이번 달 요금이 두 번 청구됐어요",
        "카드 명세서에 같은 금액이 두 번 찍혀 있어요",
        "상담원 연결이 왜 이렇게 오래 걸려요 !씨발 !개새끼",
        "확인해 주시면 다시 연락 주세요",
        "!닥쳐 변명은 됐고요 돈이나 돌려줘요",
        "환불은 며칠이나 걸리나요",
        "그럼 이번 주 안에는 처리되는 거죠",
        "네 감사합니다",
    ],
    "internet": [
        "인터넷이 또 끊겼어요",
        "어제 기사님이 다녀가셨는데 똑같아요",
        "이게 무슨 !개새끼 !씨발 서비스야",
        "공유기 재부팅도 다 해 봤어요",
        "!또라이 같은 소리 하지 말고 담당자 바꿔",
        "내일 오전에 방문 가능하세요",
        "주소는 가입할 때 등록한 곳 그대로예요",
        "몇 번을 말해야 알아들어 !병신",
        "네 그럼 내일 뵐게요",
    ],
    "refund": [
        "여보세요 환불 신청한 거 확인하려고요",
        "벌써 삼 주째 기다리고 있어요",
        "!썅 이게 말이 돼요",
        "처음에 상담한 분이 일주일이면 된다고 했거든요",
        "그런데 아직 한 푼도 안 들어왔어요 !존나 어이가 없네",
        "계좌 번호는 바뀐 거 없어요",
        "당신들 일 처리가 !개같네",
        "!등신 !또라이 같이 굴지 말고 빨리 처리해요",
        "처리되면 문자 주세요",
        "네 알겠습니다",
    ],
}

# Abusive words longer than D - lag (1.5 - 0.8 = 0.7 s): a reference transcriber that
# releases a word at its end + lag decides it after its start has played (espeak-ng:
# 씨발놈아 0.76 s, 병신새끼 0.88 s, 미친놈 0.74 s, 죽여버린다 0.90 s).
LONG_CALLS: dict[str, list[str]] = {
    "long_words": [
        "주문한 거 언제 와요 !씨발놈아",
        "!병신새끼 전화 좀 빨리 받아",
        "!미친놈 아니야 진짜",
        "한 번만 더 그러면 !죽여버린다",
        "네 알겠습니다",
    ],
}


# Abusive words of every length, most longer than D - lag, beside clean words that share
# their first syllable (병원, 죽겠다, 미리, 개인, 지난번, 존경, 시발점): the calls of
# issue 12 (partial-word decisions, the elastic delay). 죽여버린다 0.90 s, 병신새끼 0.88 s.
PARTIAL_CALLS: dict[str, list[str]] = {
    "hospital": [
        "여보세요 병원 예약 때문에 전화했어요",
        "지난번에 예약한 시간이 바뀌었다고 문자가 왔는데요",
        "!병신아 그걸 왜 나한테 물어봐",
        "병원비도 두 번이나 냈어요",
        "아파 죽겠다고요 !씨발놈아 빨리 좀 해",
        "네 미리 말씀해 주셨으면 좋았잖아요",
    ],
    "threat": [
        "개인 정보 변경하려고 전화했어요",
        "몇 번을 말해야 알아들어 !미친놈아",
        "한 번만 더 이러면 !죽여버린다",
        "존경하는 고객님 소리 그만하고",
        "!좆같은 회사 진짜",
        "시발점이 어디였는지 다시 확인해 주세요",
        "네 알겠습니다",
    ],
    "shipping": [
        "택배가 또 안 왔어요",
        "!개새끼야 전화를 왜 안 받아",
        "주문 번호는 문자로 보내 드렸어요",
        "!병신새끼 같이 일하네",
        "지난주에도 똑같았어요 !씨발",
        "오늘 안에 꼭 보내 주세요",
    ],
    "billing_long": [
        "요금이 이상하게 나왔어요",
        "!닥쳐 변명 듣기 싫어",
        "이번 달에만 세 번째예요 !지랄하네",
        "!씨발년아 제대로 좀 해",
        "환불은 언제 되나요",
        "!또라이새끼 같으니",
        "네 기다릴게요",
    ],
}


@dataclass(frozen=True)
class SynthWord:
    text: str
    start: float
    end: float
    toxic: bool


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


@functools.cache
def synth_word(text: str, speed: int = 175) -> np.ndarray:
    """One word as float32 mono at RATE, its leading and trailing silence trimmed."""
    with tempfile.TemporaryDirectory(prefix="espeak-") as tmp:
        path = Path(tmp) / "out.wav"
        subprocess.run(
            ["espeak-ng", "-v", "ko", "-s", str(speed), "-w", str(path), text], check=True, capture_output=True
        )
        with wave.open(str(path), "rb") as wav:
            assert wav.getframerate() == RATE and wav.getsampwidth() == 2 and wav.getnchannels() == 1
            pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float32) / 32768.0
    return trim(pcm)


def trim(pcm: np.ndarray, hop: int = 110, floor: float = 0.01) -> np.ndarray:
    """Cut leading and trailing silence: 5 ms blocks quieter than `floor` of the peak."""
    peak = float(np.abs(pcm).max()) if pcm.size else 0.0
    if peak == 0.0:
        raise ValueError("espeak-ng produced silence")
    blocks = np.abs(pcm[: pcm.size - pcm.size % hop]).reshape(-1, hop).max(axis=1)
    loud = np.flatnonzero(blocks >= floor * peak)
    clip = pcm[loud[0] * hop : (loud[-1] + 1) * hop]
    # Start and end exactly at the first and last audible sample, with a 2 ms fade so
    # the cut does not click (the fade lies inside the word's extent).
    nz = np.flatnonzero(np.abs(clip) >= 0.002 * peak)
    clip = clip[nz[0] : nz[-1] + 1].copy()
    fade = min(44, clip.size // 4)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade + 2, dtype=np.float32)[1:-1]
        clip[:fade] *= ramp
        clip[-fade:] *= ramp[::-1]
    return clip


def render_call(utterances: list[str], seed: int = 0) -> tuple[np.ndarray, list[SynthWord]]:
    """The call's audio (float32 at RATE) and its words with their true times."""
    rng = np.random.default_rng(seed)
    tokens = [[(w[1:], True) if w.startswith("!") else (w, False) for w in u.split()] for u in utterances]
    with ThreadPoolExecutor(max_workers=4) as pool:  # espeak-ng runs as a process per word
        list(pool.map(synth_word, sorted({text for u in tokens for text, _ in u})))
    pieces: list[np.ndarray] = [np.zeros(round(LEAD_S * RATE), np.float32)]
    pos = pieces[0].size
    words: list[SynthWord] = []
    for u, utterance in enumerate(tokens):
        if u:
            gap = np.zeros(round(rng.uniform(*PAUSE_S) * RATE), np.float32)
            pieces.append(gap)
            pos += gap.size
        for i, (text, toxic) in enumerate(utterance):
            if i:
                gap = np.zeros(round(rng.uniform(*GAP_S) * RATE), np.float32)
                pieces.append(gap)
                pos += gap.size
            clip = LEVEL * synth_word(text) / float(np.abs(synth_word(text)).max())
            words.append(SynthWord(text, pos / RATE, (pos + clip.size) / RATE, toxic))
            pieces.append(clip.astype(np.float32))
            pos += clip.size
    pieces.append(np.zeros(round(TAIL_S * RATE), np.float32))
    return np.concatenate(pieces), words


def write_calls(out_dir: str | Path, calls: dict[str, list[str]] | None = None, seed: int = 0) -> Path:
    """WAVs and a manifest.jsonl for eval-calls in out_dir; returns the manifest's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for k, (call_id, utterances) in enumerate((calls or CALLS).items()):
        audio, words = render_call(utterances, seed=seed + k)
        write_wav(out / f"{call_id}.wav", to_int16(audio), RATE)
        lines.append(
            json.dumps(
                {
                    "id": call_id,
                    "audio": f"{call_id}.wav",
                    "words": [
                        {"text": w.text, "start": round(w.start, 6), "end": round(w.end, 6), "toxic": w.toxic}
                        for w in words
                    ],
                },
                ensure_ascii=False,
            )
        )
    manifest = out / "manifest.jsonl"
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return manifest
