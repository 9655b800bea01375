"""Typed settings for every fleet process, read once from the environment in `main`."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)  # fmt: skip
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fleet.queue_spec import QueueSpec, load_queue_spec

OUTPUT_FORMATS = ("txt", "srt", "vtt", "tsv", "json")
REPO_ROOT = Path(__file__).resolve().parent.parent


class DecodingOptions(BaseModel):
    """whisperX's decoding and VAD options (its command line's names and defaults), and the language floor.

    All of them change what a transcript says, so they are part of each job's settings key; at their
    defaults they leave the key as it was before they existed (nothing already done is re-queued).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    initial_prompt: str | None = None
    hotwords: str | None = None
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


# Settings that change only how srt/vtt lay the words out: a change re-renders from the JSON on disk.
LAYOUT_FIELDS = ("max_line_width", "max_line_count", "highlight_words")


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
    min_speakers: int | None = None
    max_speakers: int | None = None
    max_line_width: int | None = None
    max_line_count: int | None = None
    highlight_words: bool = False
    decoding: DecodingOptions = DecodingOptions()
    audio_language: str | None = None  # which audio stream of a video to transcribe, by its language tag

    def subtitle_options(self) -> dict[str, int | bool | None]:
        """The layout options whisperX's srt/vtt writers take."""
        return {
            "max_line_width": self.max_line_width,
            "max_line_count": self.max_line_count,
            "highlight_words": self.highlight_words,
        }

    def key(self) -> str:
        """A short stable hash of these settings, used in dedup ids and commit records."""
        return self._key

    def transcript_key(self) -> str:
        """The key without the subtitle layout: equal keys mean the JSON on disk needs no new transcription."""
        return self._transcript_key

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
        for name in ("decoding", "audio_language"):
            if not fields[name]:
                del fields[name]
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _split_formats(value: object) -> object:
    """Accept `txt,srt` from the environment as well as a list from code."""
    if isinstance(value, str):
        return [part.strip().lower() for part in value.split(",") if part.strip()]
    return value


class FleetSettings(BaseSettings):
    """Everything a director or worker process needs, from environment variables (see README)."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    # Roots and queue.
    source_dir: Path = Field(Path("/source"), validation_alias="FLEET_SOURCE_DIR")
    dest_dir: Path = Field(Path("/dest"), validation_alias="FLEET_DEST_DIR")
    queue_config: Path = Field(REPO_ROOT / "create_queue.json", validation_alias="FLEET_QUEUE_CONFIG")
    queue_name: str | None = Field(None, validation_alias="FLEET_QUEUE_NAME")
    max_receive_count: int | None = Field(None, ge=1, le=1000, validation_alias="FLEET_MAX_RECEIVE_COUNT")
    queue_max_attempts: int = Field(6, ge=1, validation_alias="FLEET_QUEUE_MAX_ATTEMPTS")
    queue_timeout_s: float = Field(10.0, gt=0, validation_alias="FLEET_QUEUE_TIMEOUT_S")
    # boto3 reads these two itself; they are here so they are validated, logged and documented.
    aws_endpoint_url: str | None = Field(None, validation_alias="AWS_ENDPOINT_URL")
    aws_region: str = Field(
        "us-east-1", validation_alias=AliasChoices("AWS_DEFAULT_REGION", "AWS_REGION")
    )

    # Director.
    enqueue_threads: int = Field(4, ge=1, le=64, validation_alias="FLEET_ENQUEUE_THREADS")
    watch_interval_s: float = Field(0.0, ge=0, validation_alias="FLEET_WATCH_INTERVAL_S")
    # A file modified more recently may still be being copied in: the director leaves it for a later round.
    min_age_s: float = Field(60.0, ge=0, validation_alias="FLEET_MIN_AGE_S")
    preload_languages: Annotated[tuple[str, ...], NoDecode] = Field(("en",), validation_alias="FLEET_PRELOAD_LANGUAGES")

    # Worker.
    worker_id: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}", validation_alias="FLEET_WORKER_ID")
    workers: int = Field(1, ge=1, validation_alias="FLEET_WORKERS")
    threads: int = Field(0, ge=0, validation_alias="FLEET_THREADS")
    receive_wait_s: int = Field(20, ge=0, le=20, validation_alias="FLEET_RECEIVE_WAIT_S")
    visibility_timeout_s: int = Field(60, ge=5, le=43200, validation_alias="FLEET_VISIBILITY_TIMEOUT_S")
    heartbeat_interval_s: float = Field(20.0, gt=0, validation_alias="FLEET_HEARTBEAT_INTERVAL_S")
    grace_period_s: float = Field(30.0, ge=0, validation_alias="FLEET_GRACE_PERIOD_S")
    retry_backoff_s: int = Field(30, ge=0, validation_alias="FLEET_RETRY_BACKOFF_S")
    max_files: int = Field(0, ge=0, validation_alias="FLEET_MAX_FILES")
    max_rss_mb: int = Field(0, ge=0, validation_alias="FLEET_MAX_RSS_MB")
    output_uid: int | None = Field(None, ge=0, validation_alias="FLEET_OUTPUT_UID")
    output_gid: int | None = Field(None, ge=0, validation_alias="FLEET_OUTPUT_GID")
    models_dir: Path = Field(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "whisper-fleet" / "models",
        validation_alias="FLEET_MODELS_DIR",
    )
    align_cache_size: int = Field(3, ge=1, validation_alias="FLEET_ALIGN_CACHE_SIZE")
    decode_timeout_s: float = Field(1800.0, gt=0, validation_alias="FLEET_DECODE_TIMEOUT_S")
    # A job is abandoned past base + factor x audio duration (a hung native call would hold its message
    # for ever): the message goes back, counted as an attempt, and the worker exits to be restarted.
    job_time_limit_base_s: float = Field(900.0, ge=0, validation_alias="FLEET_JOB_TIME_LIMIT_BASE_S")
    job_time_limit_factor: float = Field(10.0, ge=0, validation_alias="FLEET_JOB_TIME_LIMIT_FACTOR")

    # Transcription (the output-changing ones feed TranscriptionSettings).
    whisper_model: str = Field("base", validation_alias="WHISPER_MODEL")
    whisper_device: Literal["auto", "cpu", "cuda"] = Field("auto", validation_alias="WHISPER_DEVICE")
    whisper_compute_type: str = Field("auto", validation_alias="WHISPER_COMPUTE_TYPE")
    whisper_batch_size: int = Field(8, ge=1, validation_alias="WHISPER_BATCH_SIZE")
    whisper_language: str | None = Field(None, validation_alias="WHISPER_LANGUAGE")
    whisper_task: Literal["transcribe", "translate"] = Field("transcribe", validation_alias="WHISPER_TASK")
    whisper_align: bool = Field(True, validation_alias="WHISPER_ALIGN")
    whisper_align_model: str | None = Field(None, validation_alias="WHISPER_ALIGN_MODEL")
    whisper_diarize: bool = Field(False, validation_alias="WHISPER_DIARIZE")
    whisper_min_speakers: int | None = Field(None, ge=1, validation_alias="WHISPER_MIN_SPEAKERS")
    whisper_max_speakers: int | None = Field(None, ge=1, validation_alias="WHISPER_MAX_SPEAKERS")
    whisper_max_line_width: int | None = Field(None, ge=1, validation_alias="WHISPER_MAX_LINE_WIDTH")
    whisper_max_line_count: int | None = Field(None, ge=1, validation_alias="WHISPER_MAX_LINE_COUNT")
    whisper_highlight_words: bool = Field(False, validation_alias="WHISPER_HIGHLIGHT_WORDS")
    # whisperX's decoding and VAD options (DecodingOptions, its CLI's defaults).
    whisper_initial_prompt: str | None = Field(None, validation_alias="WHISPER_INITIAL_PROMPT")
    whisper_hotwords: str | None = Field(None, validation_alias="WHISPER_HOTWORDS")
    whisper_beam_size: int = Field(5, validation_alias="WHISPER_BEAM_SIZE")
    whisper_best_of: int = Field(5, validation_alias="WHISPER_BEST_OF")
    whisper_patience: float = Field(1.0, validation_alias="WHISPER_PATIENCE")
    whisper_length_penalty: float = Field(1.0, validation_alias="WHISPER_LENGTH_PENALTY")
    whisper_temperature: float = Field(0.0, validation_alias="WHISPER_TEMPERATURE")
    whisper_temperature_increment_on_fallback: float | None = Field(
        0.2, validation_alias="WHISPER_TEMPERATURE_INCREMENT_ON_FALLBACK"
    )
    whisper_compression_ratio_threshold: float | None = Field(2.4, validation_alias="WHISPER_COMPRESSION_RATIO_THRESHOLD")
    whisper_logprob_threshold: float | None = Field(-1.0, validation_alias="WHISPER_LOGPROB_THRESHOLD")
    whisper_no_speech_threshold: float | None = Field(0.6, validation_alias="WHISPER_NO_SPEECH_THRESHOLD")
    whisper_condition_on_previous_text: bool = Field(False, validation_alias="WHISPER_CONDITION_ON_PREVIOUS_TEXT")
    whisper_suppress_tokens: Annotated[tuple[int, ...], NoDecode] = Field((-1,), validation_alias="WHISPER_SUPPRESS_TOKENS")
    whisper_suppress_numerals: bool = Field(False, validation_alias="WHISPER_SUPPRESS_NUMERALS")
    whisper_vad_method: Literal["pyannote", "silero"] = Field("pyannote", validation_alias="WHISPER_VAD_METHOD")
    whisper_vad_onset: float = Field(0.5, validation_alias="WHISPER_VAD_ONSET")
    whisper_vad_offset: float = Field(0.363, validation_alias="WHISPER_VAD_OFFSET")
    whisper_chunk_size: int = Field(30, validation_alias="WHISPER_CHUNK_SIZE")
    whisper_language_min_probability: float = Field(0.5, validation_alias="WHISPER_LANGUAGE_MIN_PROBABILITY")
    whisper_fallback_language: str | None = Field(None, validation_alias="WHISPER_FALLBACK_LANGUAGE")
    whisper_audio_language: str | None = Field(None, validation_alias="WHISPER_AUDIO_LANGUAGE")
    hf_token: str | None = Field(None, validation_alias="HF_TOKEN", repr=False)
    output_formats: Annotated[tuple[str, ...], NoDecode] = Field(
        OUTPUT_FORMATS, validation_alias="FLEET_OUTPUT_FORMATS"
    )

    # Dashboard.
    dashboard_host: str = Field("127.0.0.1", validation_alias="FLEET_DASHBOARD_HOST")
    dashboard_port: int = Field(8080, ge=0, le=65535, validation_alias="FLEET_DASHBOARD_PORT")

    # Logging.
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", validation_alias="FLEET_LOG_LEVEL")
    log_format: Literal["auto", "json", "console"] = Field("auto", validation_alias="FLEET_LOG_FORMAT")

    _split_lists = field_validator("output_formats", "preload_languages", mode="before")(_split_formats)

    @field_validator("output_formats")
    @classmethod
    def _known_formats_json_last(cls, formats: tuple[str, ...]) -> tuple[str, ...]:
        """Reject unknown formats; json is always written because it is the commit record."""
        unknown = sorted(set(formats) - set(OUTPUT_FORMATS))
        if unknown:
            raise ValueError(f"unknown output format(s) {', '.join(unknown)}; choose from {', '.join(OUTPUT_FORMATS)}")
        return tuple(f for f in OUTPUT_FORMATS if f in formats or f == "json")

    @field_validator(
        "whisper_language", "whisper_align_model", "aws_endpoint_url", "queue_name", "output_uid", "output_gid",
        "max_receive_count", "whisper_min_speakers", "whisper_max_speakers", "whisper_max_line_width",
        "whisper_max_line_count", "hf_token", "whisper_initial_prompt", "whisper_hotwords", "whisper_fallback_language",
        "whisper_audio_language", mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """Treat `VAR=` in an .env file as unset rather than as an empty string."""
        return None if value == "" else value

    @field_validator(
        "whisper_temperature_increment_on_fallback", "whisper_compression_ratio_threshold", "whisper_logprob_threshold",
        "whisper_no_speech_threshold", mode="before",
    )  # fmt: skip
    @classmethod
    def _none_disables(cls, value: object, info: ValidationInfo) -> object:
        """`none` turns a threshold off, as in whisperX's command line; empty keeps the default."""
        if isinstance(value, str) and value.strip().lower() == "none":
            return None
        if value == "":
            return cls.model_fields[info.field_name].default
        return value

    @field_validator("whisper_suppress_tokens", mode="before")
    @classmethod
    def _token_list(cls, value: object) -> object:
        """`-1,50363` from the environment, as whisperX's --suppress_tokens takes it."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def decoding(self) -> DecodingOptions:
        """The WHISPER_* decoding options, validated together (their bounds live in DecodingOptions)."""
        return DecodingOptions(**{name: getattr(self, f"whisper_{name}") for name in DecodingOptions.model_fields})

    @model_validator(mode="after")
    def _decoding_options_valid(self) -> FleetSettings:
        """Out-of-range decoding options fail at start-up, named by their variable."""
        try:
            self.decoding  # noqa: B018 - validates
        except ValidationError as exc:
            first = exc.errors()[0]
            name = "WHISPER_" + str(first["loc"][0]).upper()
            raise ValueError(f"{name}: {first['msg']}") from None
        return self

    @model_validator(mode="after")
    def _consistent(self) -> FleetSettings:
        """Catch combinations that can never work before any model is loaded."""
        if self.heartbeat_interval_s >= self.visibility_timeout_s:
            raise ValueError(
                f"FLEET_HEARTBEAT_INTERVAL_S={self.heartbeat_interval_s} must be below "
                f"FLEET_VISIBILITY_TIMEOUT_S={self.visibility_timeout_s}, or messages reappear mid-file"
            )
        return self

    @model_validator(mode="after")
    def _speakers_in_order(self) -> FleetSettings:
        """A minimum above the maximum cannot be satisfied by any diarization."""
        lo, hi = self.whisper_min_speakers, self.whisper_max_speakers
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"WHISPER_MIN_SPEAKERS={lo} is above WHISPER_MAX_SPEAKERS={hi}")
        return self

    def queue_spec(self) -> QueueSpec:
        """create_queue.json with FLEET_QUEUE_NAME / FLEET_MAX_RECEIVE_COUNT applied."""
        return load_queue_spec(self.queue_config, self.queue_name, self.max_receive_count)

    def transcription(self) -> TranscriptionSettings:
        """The output-changing subset, as it goes into job messages and commit records."""
        return TranscriptionSettings(
            model=self.whisper_model,
            task=self.whisper_task,
            language=self.whisper_language,
            align=self.whisper_align,
            align_model=self.whisper_align_model if self.whisper_align else None,
            diarize=self.whisper_diarize,
            min_speakers=self.whisper_min_speakers if self.whisper_diarize else None,
            max_speakers=self.whisper_max_speakers if self.whisper_diarize else None,
            max_line_width=self.whisper_max_line_width,
            max_line_count=self.whisper_max_line_count,
            highlight_words=self.whisper_highlight_words,
            decoding=self.decoding,
            audio_language=self.whisper_audio_language,
        )
