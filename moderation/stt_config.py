"""Settings of the streaming transcription ([stt] in the server's config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from moderation.config_range import check_range

# Whisper's well-known inventions on silence and noise, Korean first (subtitle credits
# and sign-offs it learned from video captions). Matched after normalising spaces.
DEFAULT_HALLUCINATIONS = [
    "시청해주셔서 감사합니다",
    "시청해 주셔서 감사합니다",
    "구독과 좋아요 부탁드립니다",
    "구독과 좋아요",
    "다음 영상에서 만나요",
    "MBC 뉴스",
    "자막 제공",
    "한글자막 by",
    "감사합니다",
    "Thank you for watching",
]


@dataclass(frozen=True)
class SttConfig:
    enabled: bool = True
    # Where passes run. "local": the model loaded in this process, for one machine. "ray":
    # the shared inference tier (`callguard stt-tier`, Ray Serve) at tier_url, which batches
    # the passes of every relay node; the model settings below are then the tier's.
    backend: Literal["local", "ray"] = "local"
    tier_url: str = "http://127.0.0.1:8000/stt"
    # A pass the tier has not answered in this long fails (the audio stays for the next
    # pass; past max_lag_s the call skips ahead, as with a slow local model).
    tier_timeout_s: float = 1.5
    # After a failed pass a call waits this long before asking the tier again.
    tier_retry_s: float = 1.0
    # Threads of this node that wait on the tier: passes in flight at once (a call has at
    # most one), so set it to calls.max_concurrent.
    tier_max_inflight: int = 32
    # A model name faster-whisper knows (tiny, base, small, medium, large-v3, ...), a
    # folder under models_dir where `callguard models pull` put one, or a path.
    model: str = "base"
    models_dir: str = "models"
    # "auto": a server that finds no model fetches it into models_dir on its first start
    # (resumable, checksummed; calls meanwhile play under the undecided policy). "never":
    # it reports the model missing and the command that fetches it.
    download: Literal["auto", "never"] = "auto"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "int8"
    beam_size: int = 1
    language: str = "ko"
    # Passes that run at once, shared by every call (one loaded model serves all); the
    # CPUs are split between them. 1: every pass gets every core (with 2 workers on 2
    # cores a lone call's pass ran on one thread while the other idled).
    workers: int = 1
    # "fit": encode the clip plus window_pad_s (moderation/whisper_pass.py, the cost
    # follows the speech); "full": faster-whisper's transcribe(), always a 30 s window.
    encoder_window: Literal["fit", "full"] = "fit"
    # Padding past the clip in the encoder window, as silence (whisper_pass.silence_level).
    # Without any, Whisper loops at the end; 2 s kept the full window's transcript and word
    # times within ~10 ms on the benches, and 4 or 8 s did not lower streaming CER.
    window_pad_s: float = 2.0
    # New audio that triggers a transcription pass (the shortest interval; under load the
    # interval grows up to pass_interval_max_s, see the transcriber).
    chunk_s: float = 0.5
    pass_interval_max_s: float = 1.5
    # A regular pass waits for at least this much buffered audio: Whisper hallucinates on
    # fragments ("아, 분 아, 분 ..." on 0.5 s clips). Utterance-final passes always run.
    min_pass_audio_s: float = 1.0
    # Force the confirmed words still in the buffer as the decoder's prefix, so a pass
    # decodes only the unconfirmed tail (engines that support it). Off by default: it
    # saves about a fifth of a pass's compute but costs accuracy (streaming-vs-offline CER
    # 0.20 against 0.08 on real base weights, espeak-ng English, 4 calls of 40 s).
    prefix_confirmed: bool = False
    # Decision-lag bound: a provisional word that ends this long before the newest audio a
    # pass heard is confirmed as the newest hypothesis has it, without waiting for two
    # passes to agree (with D = 1.5 s a word must be decided about 1 s after it ends;
    # 0.6 s, with the loop guard below, keeps CER nearer offline; the undecided share comes
    # from the judged provisional tail, which this does not hold back: bench/stt_lag.py).
    # 0 switches it off (LocalAgreement-2 and utterance ends only).
    confirm_after_s: float = 0.6
    # The batched service (moderation/stt_batcher.py): passes of different calls in one
    # model call, at most batch_max of them; at most queue_max passes wait.
    batch_max: int = 8
    queue_max: int = 64
    # Prompt for a call's first passes, before any text is confirmed (domain words).
    initial_prompt: str = ""
    # The re-transcribed buffer is cut at a confirmed segment end; past this it is cut anyway.
    buffer_max_s: float = 15.0
    # Confirmed text handed back to Whisper as context.
    prompt_chars: int = 200
    # An utterance's passes first hear the confirmed words of the one before that began
    # within this many seconds of its end, their text forced, so its first words are not
    # heard cold (only words Whisper was sure of; not while behind; 0: off).
    context_s: float = 2.0
    # Decoding against loops: a penalty > 1 on tokens already in the decode (the prompt's
    # included), and n-grams that may not repeat (0: off).
    repetition_penalty: float = 1.3
    no_repeat_ngram_size: int = 0
    # When transcription falls this far behind, skip ahead: the skipped audio is played
    # under the delay line's undecided policy rather than making every later word late.
    # Set above what a pass costs under load, or nearly every pass ends in a skip.
    max_lag_s: float = 2.0
    # webrtcvad's 0 (least) .. 3 (most aggressive at calling audio non-speech).
    vad_aggressiveness: int = 2
    no_speech_threshold: float = 0.6
    logprob_threshold: float = -1.0
    hallucinations: list[str] = field(default_factory=lambda: list(DEFAULT_HALLUCINATIONS))

    def validate(self) -> None:
        """Raises ValueError naming the key (relative to [stt])."""
        check_range("stt.beam_size", self.beam_size, 1, 10)
        check_range("stt.workers", self.workers, 1, 64)
        check_range("stt.chunk_s", self.chunk_s, 0.1, 5.0)
        check_range("stt.buffer_max_s", self.buffer_max_s, 2.0, 30.0)
        check_range("stt.prompt_chars", self.prompt_chars, 0, 1000)
        check_range("stt.repetition_penalty", self.repetition_penalty, 1.0, 3.0)
        check_range("stt.no_repeat_ngram_size", self.no_repeat_ngram_size, 0, 20)
        check_range("stt.max_lag_s", self.max_lag_s, 0.1, 30.0)
        check_range("stt.window_pad_s", self.window_pad_s, 0.0, 30.0)
        check_range("stt.pass_interval_max_s", self.pass_interval_max_s, self.chunk_s, 10.0)
        check_range("stt.batch_max", self.batch_max, 1, 256)
        check_range("stt.queue_max", self.queue_max, 1, 4096)
        check_range("stt.confirm_after_s", self.confirm_after_s, 0.0, 30.0)
        check_range("stt.context_s", self.context_s, 0.0, 10.0)
        check_range("stt.min_pass_audio_s", self.min_pass_audio_s, 0.0, 10.0)
        if self.backend not in ("local", "ray"):
            raise ValueError(f"stt.backend must be 'local' or 'ray', not {self.backend!r}")
        if not self.tier_url.startswith(("http://", "https://")):
            raise ValueError(f"stt.tier_url must start with http:// or https://, not {self.tier_url!r}")
        check_range("stt.tier_timeout_s", self.tier_timeout_s, 0.05, self.max_lag_s)
        check_range("stt.tier_retry_s", self.tier_retry_s, 0.05, 60.0)
        check_range("stt.tier_max_inflight", self.tier_max_inflight, 1, 1000)
        if self.download not in ("auto", "never"):
            raise ValueError(f"stt.download must be 'auto' or 'never', not {self.download!r}")
        if self.encoder_window not in ("fit", "full"):
            raise ValueError(f"stt.encoder_window must be 'fit' or 'full', not {self.encoder_window!r}")
        check_range("stt.vad_aggressiveness", self.vad_aggressiveness, 0, 3)
        check_range("stt.no_speech_threshold", self.no_speech_threshold, 0.0, 1.0)
        check_range("stt.logprob_threshold", self.logprob_threshold, -10.0, 0.0)
        if not self.model:
            raise ValueError("stt.model must name a model or a folder")
        if len(self.language) not in (2, 3):
            raise ValueError(f"stt.language must be a language code such as 'ko', not {self.language!r}")
