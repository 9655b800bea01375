"""The job's identity: what changes a transcript (decoding options, transcription settings), hashed into every message.

Each option's default and bound is declared here once; `fleet.settings` reads them from the environment.
"""

from __future__ import annotations

import hashlib
import json
from functools import cached_property
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fleet.language import language_code_or_none, written_language
from fleet.media.layout import MediaLayout

PROMPT_MAX_CHARS = 2000

OutputFormat = Literal["txt", "srt", "vtt", "tsv", "json"]
OUTPUT_FORMATS: tuple[OutputFormat, ...] = ("txt", "srt", "vtt", "tsv", "json")


class DecodingOptions(BaseModel):
    """whisperX's decoding and VAD options (its command line's names and defaults), and the language floor.

    All of them change what a transcript says, so they are part of each job's settings key; at their
    defaults they leave the key as it was before they existed (nothing already done is re-queued).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Whisper reads at most ~220 tokens of a prompt; a longer one only bloats every message (a send batch holds 256 KB).
    initial_prompt: str | None = Field(None, max_length=PROMPT_MAX_CHARS)
    hotwords: str | None = Field(None, max_length=PROMPT_MAX_CHARS)
    beam_size: int = Field(5, ge=1, le=32)
    best_of: int = Field(5, ge=1, le=32)
    patience: float = Field(1.0, gt=0)
    length_penalty: float = Field(1.0, gt=0)
    temperature: float = Field(0.0, ge=0, le=1)
    temperature_increment_on_fallback: float | None = Field(0.2, gt=0, le=1)
    compression_ratio_threshold: float | None = Field(2.4, gt=0)
    logprob_threshold: float | None = -1.0
    no_speech_threshold: float | None = Field(0.6, ge=0, le=1)
    condition_on_previous_text: bool = False
    suppress_tokens: tuple[int, ...] = (-1,)
    suppress_numerals: bool = False
    vad_method: Literal["pyannote", "silero"] = "pyannote"
    vad_onset: float = Field(0.5, gt=0, lt=1)
    vad_offset: float = Field(0.363, gt=0, lt=1)
    chunk_size: int = Field(30, ge=1, le=30)
    # A detected language less likely than this gives way to the fallback language (when one is set).
    language_min_probability: float = Field(0.5, ge=0, le=1)
    fallback_language: str | None = None

    # `German` -> `de` where it is set, not after a decode per file.
    _fallback_code = field_validator("fallback_language")(classmethod(lambda cls, v: language_code_or_none(v)))

    def temperatures(self) -> tuple[float, ...]:
        """The temperature, then each fallback step up to 1.0 (whisperX's CLI computes them the same way)."""
        if self.temperature_increment_on_fallback is None:
            return (self.temperature,)
        steps = int((1.0 + 1e-6 - self.temperature) / self.temperature_increment_on_fallback) + 1
        return tuple(round(self.temperature + i * self.temperature_increment_on_fallback, 6) for i in range(steps))

    def vad(self) -> dict[str, object]:
        """The VAD part: the worker loads its VAD with these, so a job must match them."""
        return {"vad_method": self.vad_method, "vad_onset": self.vad_onset, "vad_offset": self.vad_offset,
                "chunk_size": self.chunk_size}  # fmt: skip


# Settings that change only how srt/vtt lay the words out, or where they go: a change re-renders from the JSON on disk.
LAYOUT_FIELDS = ("max_line_width", "max_line_count", "highlight_words", "media")
# Settings that change only who is said to speak: a change re-labels the words of the JSON on disk.
SPEAKER_FIELDS = ("diarize", "min_speakers", "max_speakers")


def check_speaker_bounds(low: int | None, high: int | None, low_name: str, high_name: str) -> None:
    """A minimum above the maximum cannot be satisfied by any diarization: ValueError naming both settings."""
    if low is not None and high is not None and low > high:
        raise ValueError(f"{low_name}={low} is above {high_name}={high}")


class TranscriptionSettings(BaseModel):
    """The settings that change what a transcript says; they are part of every job's identity.

    Speed knobs (device, compute type, batch size, threads) are deliberately left out, so moving
    the fleet from CPU to GPU does not re-transcribe everything that is already done.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "base"
    task: Literal["transcribe", "translate"] = "transcribe"
    language: str | None = None
    align: bool = True
    align_model: str | None = None
    diarize: bool = False
    min_speakers: int | None = Field(None, ge=1)
    max_speakers: int | None = Field(None, ge=1)
    max_line_width: int | None = None
    max_line_count: int | None = None
    highlight_words: bool = False
    decoding: DecodingOptions = DecodingOptions()
    audio_language: str | None = None  # which audio stream of a video to transcribe, by its language tag
    media: MediaLayout | None = None  # subtitles beside the videos (FLEET_LAYOUT=media); None: the mirror layout

    _language_code = field_validator("language")(classmethod(lambda cls, v: language_code_or_none(v)))

    def subtitle_options(self) -> dict[str, int | bool | None]:
        """The layout options whisperX's srt/vtt writers take."""
        return {
            "max_line_width": self.max_line_width,
            "max_line_count": self.max_line_count,
            "highlight_words": self.highlight_words,
        }

    def subtitle_language_known(self) -> str | None:
        """The subtitle's language where it is known before looking at the file: English for a translation, else the
        language given; None: per file. The audio track asked for (`audio_language`) is not enough: a video without
        that track is heard, and written, in the language of the track played instead."""
        return written_language(self.task, self.language) if self.language or self.task == "translate" else None

    @model_validator(mode="before")
    @classmethod
    def _bounds_only_with_speakers(cls, values: Any) -> Any:
        """Speaker bounds without speakers mean nothing: dropped, so they never change a job's key."""
        if isinstance(values, dict) and not values.get("diarize"):
            return {**values, "min_speakers": None, "max_speakers": None}
        return values

    @model_validator(mode="after")
    def _bounds_in_order(self) -> TranscriptionSettings:
        check_speaker_bounds(self.min_speakers, self.max_speakers, "min_speakers", "max_speakers")
        return self

    def key(self) -> str:
        """A short stable hash of these settings, used in dedup ids and commit records."""
        return self._key

    def transcript_key(self) -> str:
        """The key without the subtitle layout: equal keys mean the JSON on disk needs no new transcription."""
        return self._transcript_key

    def model_copy(self, *, update: dict[str, Any] | None = None, deep: bool = False) -> TranscriptionSettings:
        """A copy whose keys are computed afresh (pydantic would copy the cached keys of the original)."""
        copied = super().model_copy(update=update, deep=deep)
        for cached in ("_key", "_transcript_key", "_words_key"):
            copied.__dict__.pop(cached, None)
        return copied

    def words_key(self) -> str:
        """The key without layout and speakers: equal keys mean the JSON's words stand, only the speakers change."""
        return self._words_key

    @cached_property
    def _words_key(self) -> str:
        return self._hash(exclude=LAYOUT_FIELDS + SPEAKER_FIELDS)

    @cached_property
    def _key(self) -> str:
        # Cached: the planner asks once per source, and the settings are frozen.
        return self._hash(exclude=())

    @cached_property
    def _transcript_key(self) -> str:
        return self._hash(exclude=LAYOUT_FIELDS)

    def _hash(self, exclude: tuple[str, ...]) -> str:
        fields = self.model_dump(mode="json", exclude=set(exclude))
        # Settings added later count only where they differ from their defaults: at the defaults a
        # transcript keeps the key it had before they existed (an upgrade re-queues nothing).
        fields["decoding"] = self.decoding.model_dump(mode="json", exclude_defaults=True)
        if fields.get("media"):
            del fields["media"]["skip_subtitled"]  # decides whether a file is transcribed, not what it says
        for name in ("decoding", "audio_language", "media"):
            if name in fields and not fields[name]:
                del fields[name]
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]
