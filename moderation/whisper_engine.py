"""faster-whisper (CTranslate2) behind the SpeechEngine protocol.

One WhisperEngine is loaded per server and shared by every call; transcribe() may be
called from several worker threads at once (CTranslate2 runs `workers` of them in
parallel and releases the GIL). The engine decodes what it is given and nothing more:
no VAD (the streaming layer gates silence with webrtcvad), no conditioning on earlier
windows (the streaming layer passes its own prompt), no temperature fallback (latency),
and a cap on decoded tokens proportional to the audio length, so a hallucinating model
cannot spend unbounded time on a pass.

faster-whisper is imported when a model is loaded, not at import time: the relay can
import ModelUnavailable from here cheaply and keep relaying when loading fails.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from moderation import model_store
from moderation.model_store import ModelUnavailable
from moderation.speech import SAMPLE_RATE, EngineSegment, EngineWord
from moderation.stt_config import SttConfig

if TYPE_CHECKING:  # loaded with the fit path, not at import
    from moderation.whisper_pass import PassRequest, PassResult, PassTiming, WhisperPass

__all__ = ["WhisperEngine", "ModelUnavailable", "DECODE_TOKENS_PER_S", "DECODE_TOKENS_BASE"]

log = logging.getLogger(__name__)

# Decoding cap. Conversational Korean runs at 5-7 syllables/s (fast speech ~9); the
# multilingual Whisper tokenizer spends ~0.75 tokens per Hangul syllable (measured on
# call-centre sentences), i.e. ~4-7 text tokens/s, plus two timestamp tokens per segment
# and the end token. 10 tokens/s + 10 leaves headroom for fast speech and punctuation,
# and cuts a looping hallucination off after about 1.5x the realistic length.
DECODE_TOKENS_PER_S = 10.0
DECODE_TOKENS_BASE = 10
WHISPER_MAX_LENGTH = 448  # decoder positions: prompt + generated tokens
# faster-whisper builds the decoder prompt as <|startofprev|> + at most 223 prompt tokens
# + <|startoftranscript|><|lang|><|task|>.
_PROMPT_TOKENS_MAX = WHISPER_MAX_LENGTH // 2 - 1
WINDOW_S = 30.0  # Whisper's input window
MIN_AUDIO_S = 0.05


class _WindowLimit(Exception):
    """Raised inside faster-whisper's segment loop when a pass used its window budget."""


def _max_new_tokens_for(cap: int, prompt_len: int) -> tuple[int, int]:
    """faster-whisper's max_new_tokens that lets CTranslate2 generate exactly `cap` tokens.

    CTranslate2's Whisper decodes at most min(max_length // 2, max_length - prompt_len)
    tokens (openai's n_text_ctx // 2 rule), where faster-whisper passes max_length =
    prompt_len + max_new_tokens; so max_new_tokens = cap would give about cap / 2 after a
    short prompt. Returns (max_new_tokens, the cap actually in force)."""
    cap = max(1, min(cap, WHISPER_MAX_LENGTH // 2, WHISPER_MAX_LENGTH - prompt_len))
    return max(cap, 2 * cap - prompt_len), cap


def _prompt_len(prompt_tokens: int) -> int:
    """Length of faster-whisper's decoder prompt for a text prompt of `prompt_tokens`."""
    return (1 + min(prompt_tokens, _PROMPT_TOKENS_MAX) if prompt_tokens else 0) + 3


def _make_model_class(base: type) -> type:
    class _BoundedWhisperModel(base):  # type: ignore[misc]
        """WhisperModel with per-pass bounds, kept per calling thread (passes may overlap).

        - windows: faster-whisper re-decodes from the last timestamp when a window ends
          unfinished; a random or hallucinating model can keep that loop going (or not
          advance), so a pass stops after its budget of encoder windows;
        - tokens: each window decodes at most `cap_tokens` new tokens (see
          _max_new_tokens_for for why faster-whisper's max_new_tokens is adjusted)."""

        _local = threading.local()

        def encode(self, features: Any) -> Any:  # noqa: D401 - faster-whisper's method
            left = getattr(self._local, "windows_left", None)
            if left is not None:
                if left <= 0:
                    raise _WindowLimit
                self._local.windows_left = left - 1
            return super().encode(features)

        def generate_with_fallback(self, encoder_output: Any, prompt: list[int], tokenizer: Any, options: Any) -> Any:
            cap = getattr(self._local, "cap_tokens", None)
            if cap is not None:
                max_new, _ = _max_new_tokens_for(cap, len(prompt))
                options = dataclasses.replace(options, max_new_tokens=max_new)
            return super().generate_with_fallback(encoder_output, prompt, tokenizer, options)

    return _BoundedWhisperModel


def _cpu_count() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class WhisperEngine:
    """SpeechEngine over faster_whisper.WhisperModel, loaded from an SttConfig.

    - config.model: a faster-whisper name (tiny, base, small, ...), a hub repo id, a folder
      under config.models_dir (see model_store), or a path to a model folder;
    - config.device auto|cpu|cuda, config.compute_type (int8, int8_float16, float16, ...);
    - config.workers parallel passes (CTranslate2 inter_threads); on CPU each gets
      cpu_threads (default: the CPUs this process may use // workers, at least 1);
    - config.beam_size, config.no_speech_threshold, config.logprob_threshold.

    allow_download: a name not found under models_dir may be fetched by faster-whisper
    into the Hugging Face cache (honours HF_HUB_OFFLINE); False: only local files.
    warmup: run one pass on a second of silence at load, so a broken model fails here
    (as ModelUnavailable) and the first real pass does not pay for allocation.
    tokens_per_s, tokens_base: the decoding cap per window (see DECODE_TOKENS_PER_S).
    tail_redecode: when a window's last segment is unfinished (no closing timestamp),
    faster-whisper drops it and runs a second window from the last timestamp: a second
    encoder pass. True (default) keeps that; False stops after the first window per 30 s,
    halving the worst-case cost and losing the unfinished tail from this pass.
    Raises ModelUnavailable (with the reason) when the model cannot be loaded.
    """

    def __init__(
        self,
        config: SttConfig,
        *,
        cpu_threads: int | None = None,
        allow_download: bool = True,
        warmup: bool = True,
        tokens_per_s: float = DECODE_TOKENS_PER_S,
        tokens_base: int = DECODE_TOKENS_BASE,
        tail_redecode: bool = True,
    ) -> None:
        self.config = config
        self._passes: dict[str, WhisperPass] = {}  # language -> the "fit" path
        self._pass_lock = threading.Lock()
        self.tail_redecode = tail_redecode
        self.tokens_per_s = float(tokens_per_s)
        self.tokens_base = int(tokens_base)
        self.cpu_threads = int(cpu_threads) if cpu_threads else max(1, _cpu_count() // max(1, config.workers))
        started = time.monotonic()
        self.model_path = self._locate(config, allow_download)
        self._model = self._open(config, self.model_path)
        self._tokenizer = self._model.hf_tokenizer
        self.device = str(getattr(self._model.model, "device", config.device))
        self._check_language(config.language)
        self._version = model_store.model_version(config.model, self.model_path, ["model.bin"])
        if warmup:
            try:
                self.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32), "", config.language)
            except Exception as exc:  # noqa: BLE001 - any failure here means the model is unusable
                raise ModelUnavailable(
                    f"model {config.model!r} loaded from {self.model_path} but failed a "
                    f"test pass: {type(exc).__name__}: {exc}"
                ) from exc
        self.load_s = time.monotonic() - started
        log.info(
            "speech model %s loaded in %.1f s (device %s, compute %s, %d worker(s) x %d thread(s))",
            self._version,
            self.load_s,
            self.device,
            config.compute_type,
            config.workers,
            self.cpu_threads,
        )

    # --- SpeechEngine ------------------------------------------------------------------

    @property
    def version(self) -> str:
        return self._version

    @property
    def supports_prefix(self) -> bool:
        return True

    def transcribe(self, audio: np.ndarray, prompt: str, language: str, prefix: str = "") -> list[EngineSegment]:
        """Segments with word timestamps (seconds from the start of `audio`).

        prefix: text already confirmed at the start of `audio`, forced as the decoder's
        prefix; only what follows it is decoded and returned.

        Segments keep their no_speech_prob and avg_logprob for the streaming layer's
        guard; faster-whisper itself drops a window whose no_speech_prob exceeds
        config.no_speech_threshold while its avg_logprob is under config.logprob_threshold.
        Word text is stripped of Whisper's leading space; empty words, and segments or
        words starting at or past the end of the audio, are left out; times are clamped
        into [0, len(audio)] and made monotonic."""
        if self.config.encoder_window == "fit":
            return self.transcribe_batch([(audio, prompt, language, prefix)])[0]
        samples = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))
        duration = samples.size / SAMPLE_RATE
        if duration < MIN_AUDIO_S:
            return []
        prompt_text = (prompt or "").strip()
        prompt_tokens = (
            len(self._tokenizer.encode(" " + prompt_text, add_special_tokens=False).ids) if prompt_text else 0
        )
        cap = self.decode_cap_tokens(duration, prompt_tokens)
        cfg = self.config
        local = self._model._local
        # First window per 30 s of audio, plus one re-decode of an unfinished tail.
        budget = math.ceil(duration / WINDOW_S) + (1 if self.tail_redecode else 0) + (0 if language else 1)
        local.windows_left = budget
        local.cap_tokens = cap
        results: list[EngineSegment] = []
        try:
            segments, _info = self._model.transcribe(
                samples,
                language=language or None,
                task="transcribe",
                beam_size=cfg.beam_size,
                best_of=1,
                temperature=0.0,  # no fallback: one decode per window
                log_prob_threshold=cfg.logprob_threshold,
                no_speech_threshold=cfg.no_speech_threshold,
                condition_on_previous_text=False,
                initial_prompt=prompt_text or None,
                prefix=(prefix or "").strip() or None,
                word_timestamps=True,
                vad_filter=False,
                # Set again per window from the real prompt (generate_with_fallback above).
                max_new_tokens=_max_new_tokens_for(cap, _prompt_len(prompt_tokens))[0],
                hallucination_silence_threshold=None,
                repetition_penalty=cfg.repetition_penalty,
                no_repeat_ngram_size=cfg.no_repeat_ngram_size,
            )
            prev_end = 0.0
            for seg in segments:
                converted = self._convert(seg, duration, prev_end)
                if converted is not None:
                    results.append(converted)
                    prev_end = converted.words[-1].end if converted.words else prev_end
        except _WindowLimit:
            log.debug("pass over %.1f s stopped at its window budget", duration)
        finally:
            local.last_pass = {"windows": budget - local.windows_left, "cap_tokens": cap, "duration_s": duration}
            local.windows_left = None
            local.cap_tokens = None
        return results

    def transcribe_batch(self, items: list[tuple[np.ndarray, str, str, str]]) -> list[list[EngineSegment]]:
        """transcribe() for several clips (audio, prompt, language, prefix) in one encode,
        generate and align call per language: the batched service's entry point. Same
        bounds and conversion as transcribe()."""
        from moderation.whisper_pass import PassRequest, PassTiming

        out: list[list[EngineSegment]] = [[] for _ in items]
        by_language: dict[str, list[int]] = {}
        for i, (audio, _p, language, _x) in enumerate(items):
            if np.asarray(audio).size / SAMPLE_RATE >= MIN_AUDIO_S:
                by_language.setdefault(language or self.config.language, []).append(i)
        timing = PassTiming()
        info: dict[str, Any] = {"windows": 0, "tokens": 0, "capped": 0, "batch": 0}
        for language, idx in by_language.items():
            runner = self._pass_for(language)
            requests = []
            for i in idx:
                audio, prompt, _l, prefix = items[i]
                samples = np.ascontiguousarray(np.asarray(audio, dtype=np.float32).reshape(-1))
                prompt_tokens = runner.encode_text(prompt or "")[-_PROMPT_TOKENS_MAX:]
                prefix_tokens = runner.encode_text(prefix or "")[: WHISPER_MAX_LENGTH // 4]
                duration = samples.size / SAMPLE_RATE
                cap = int(math.ceil(self.tokens_base + self.tokens_per_s * min(duration, WINDOW_S)))
                cap = max(self.tokens_base, cap - len(prefix_tokens))
                requests.append(PassRequest(samples, prompt_tokens, cap, prefix_tokens))
            results = self._run_grouped(runner, requests, timing)
            for i, (req, res) in enumerate(zip(requests, results)):
                duration = req.audio.size / SAMPLE_RATE
                prev_end = 0.0
                for seg in res.segments:
                    converted = self._convert_engine(seg, duration, prev_end)
                    if converted is not None:
                        out[idx[i]].append(converted)
                        prev_end = converted.words[-1].end if converted.words else prev_end
                info["tokens"] += res.tokens
                info["capped"] += int(res.capped)
            info["windows"] += 1
            info["batch"] += len(idx)
        info.update(
            window_frames=timing.window_frames,
            encode_s=timing.encode_s,
            generate_s=timing.generate_s,
            align_s=timing.align_s,
            features_s=timing.features_s,
        )
        self._model._local.last_pass = info
        return out

    @staticmethod
    def _run_grouped(runner: WhisperPass, requests: list[PassRequest], timing: PassTiming) -> list[PassResult]:
        """CTranslate2 wants <|startoftranscript|> at one position in a batch, i.e. prompts
        of one length: clips without a prompt go in one batch, clips with one in another,
        their prompts cut to the shortest (the most recent tokens kept)."""
        import dataclasses

        results: list[PassResult | None] = [None] * len(requests)
        plain = [i for i, r in enumerate(requests) if not r.prompt_tokens]
        prompted = [i for i, r in enumerate(requests) if r.prompt_tokens]
        if prompted:
            keep = min(len(requests[i].prompt_tokens) for i in prompted)
            for i in prompted:
                requests[i] = dataclasses.replace(requests[i], prompt_tokens=requests[i].prompt_tokens[-keep:])
        for group in (plain, prompted):
            if group:
                for i, res in zip(group, runner.run([requests[i] for i in group], timing)):
                    results[i] = res
        return [r for r in results if r is not None]

    def _pass_for(self, language: str) -> WhisperPass:
        from moderation.whisper_pass import WhisperPass

        with self._pass_lock:
            runner = self._passes.get(language)
            if runner is None:
                runner = self._passes[language] = WhisperPass(
                    self._model,
                    language,
                    beam_size=self.config.beam_size,
                    pad_s=self.config.window_pad_s,
                    repetition_penalty=self.config.repetition_penalty,
                    no_repeat_ngram_size=self.config.no_repeat_ngram_size,
                )
            return runner

    @staticmethod
    def _convert_engine(seg: EngineSegment, duration: float, prev_end: float) -> EngineSegment | None:
        """An EngineSegment from whisper_pass with clamped, monotonic word times and
        Whisper's leading spaces stripped (as _convert does for faster-whisper's)."""
        if seg.start >= duration:
            return None
        words: list[EngineWord] = []
        for w in seg.words:
            text = w.text.strip()
            if not text or w.start >= duration:
                continue
            start = min(max(w.start, prev_end, 0.0), duration)
            end = min(max(w.end, start), duration)
            words.append(EngineWord(text=text, start=start, end=end, probability=w.probability))
            prev_end = end
        return EngineSegment(
            words=words,
            start=seg.start,
            end=seg.end,
            no_speech_prob=seg.no_speech_prob,
            avg_logprob=seg.avg_logprob,
            text=seg.text.strip(),
        )

    # --- public helpers ----------------------------------------------------------------

    def last_pass(self) -> dict[str, Any]:
        """The calling thread's last pass: encoder windows run, token cap, audio seconds."""
        return dict(getattr(self._model._local, "last_pass", None) or {})

    def decode_cap_tokens(self, duration_s: float, prompt_tokens: int = 0) -> int:
        """New tokens a window over `duration_s` seconds of audio may decode after a text
        prompt of `prompt_tokens`: tokens_base + tokens_per_s * duration, within Whisper's
        own limits (224 per window, 448 decoder positions with the prompt)."""
        cap = int(math.ceil(self.tokens_base + self.tokens_per_s * min(duration_s, WINDOW_S)))
        return _max_new_tokens_for(cap, _prompt_len(prompt_tokens))[1]

    # --- loading -----------------------------------------------------------------------

    @staticmethod
    def _locate(config: SttConfig, allow_download: bool) -> str:
        model = config.model
        local = model_store.local_folder(
            model,
            config.models_dir,
            model_store.missing_files,
            "a faster-whisper model needs model.bin, config.json, tokenizer.json "
            "and vocabulary.*; re-run `callguard models pull`",
        )
        if local is not None:
            return local
        if "/" not in model and model not in model_store.known_repos():
            raise ModelUnavailable(
                f"model {model!r} is neither a folder under {config.models_dir} nor a "
                f"faster-whisper model name ({', '.join(model_store.known_repos())})"
            )
        try:
            from faster_whisper.utils import download_model
        except Exception as exc:  # noqa: BLE001
            raise ModelUnavailable(f"faster-whisper cannot be imported: {type(exc).__name__}: {exc}") from exc
        try:
            return str(download_model(model, local_files_only=not allow_download))
        except Exception as exc:  # noqa: BLE001 - hub errors come in many classes
            where = os.path.join(config.models_dir, model_store.folder_name(model))
            raise ModelUnavailable(
                f"model {model!r} is not in {where} nor in the Hugging Face cache, and fetching it failed "
                f"({type(exc).__name__}: {model_store.first_line(exc)}); run `callguard models pull {model}` "
                f"on a connected machine and copy the folder to {where}"
            ) from exc

    def _open(self, config: SttConfig, path: str) -> Any:
        try:
            from faster_whisper import WhisperModel
        except Exception as exc:  # noqa: BLE001
            raise ModelUnavailable(f"faster-whisper cannot be imported: {type(exc).__name__}: {exc}") from exc
        model_class = _make_model_class(WhisperModel)
        try:
            return model_class(
                path,
                device=config.device,
                compute_type=config.compute_type,
                cpu_threads=self.cpu_threads,
                num_workers=max(1, config.workers),
                local_files_only=True,
            )
        except Exception as exc:  # noqa: BLE001 - CTranslate2 raises RuntimeError/ValueError/OSError
            raise ModelUnavailable(
                f"cannot load model {config.model!r} from {path} on device {config.device} "
                f"({config.compute_type}): {type(exc).__name__}: "
                f"{model_store.first_line(exc)}"
            ) from exc

    def _check_language(self, language: str) -> None:
        if not language:
            return
        if not self._model.model.is_multilingual:
            raise ModelUnavailable(
                f"model {self.config.model!r} is English-only; stt.language = {language!r} needs a multilingual model"
            )
        if language not in self._model.supported_languages:
            raise ModelUnavailable(f"stt.language = {language!r} is not a language Whisper knows")

    # --- conversion --------------------------------------------------------------------

    @staticmethod
    def _convert(seg: Any, duration: float, prev_end: float = 0.0) -> EngineSegment | None:
        """faster-whisper's segment in the engine's terms, times clamped into the audio and
        monotonic; None for a segment that starts at or past the end of the audio."""
        if float(seg.start) >= duration:
            return None
        words: list[EngineWord] = []
        for w in seg.words or []:
            text = w.word.strip()
            if not text or float(w.start) >= duration:
                continue
            start = min(max(float(w.start), prev_end, 0.0), duration)
            end = min(max(float(w.end), start), duration)
            words.append(EngineWord(text=text, start=start, end=end, probability=float(w.probability)))
            prev_end = end
        start = min(max(float(seg.start), 0.0), duration)
        end = min(max(float(seg.end), start), duration)
        return EngineSegment(
            words=words,
            start=start,
            end=end,
            no_speech_prob=float(seg.no_speech_prob),
            avg_logprob=float(seg.avg_logprob),
            text=seg.text.strip(),
        )
