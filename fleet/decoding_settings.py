"""The decoding options read from WHISPER_<NAME> variables: DecodingOptions' own fields, defaults and bounds."""

from __future__ import annotations

from pydantic import ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from fleet.job.identity import DecodingOptions

DECODING_PREFIX = "WHISPER_"
# Decoding options whose empty value means unset, and thresholds that `none` turns off (whisperX's CLI spelling).
_EMPTY_IS_UNSET = ("initial_prompt", "hotwords", "fallback_language")
_NONE_DISABLES = ("temperature_increment_on_fallback", "compression_ratio_threshold", "logprob_threshold",
                  "no_speech_threshold")  # fmt: skip


def empty_is_unset(value: object) -> object:
    """Treat `VAR=` in an .env file as unset rather than as an empty string."""
    return None if value == "" else value


class DecodingFromEnvironment(DecodingOptions, BaseSettings):
    """DecodingOptions read from WHISPER_<NAME>: the fields, defaults and bounds are DecodingOptions' own."""

    model_config = SettingsConfigDict(env_prefix=DECODING_PREFIX, extra="ignore", frozen=True, enable_decoding=False)

    _empty = field_validator(*_EMPTY_IS_UNSET, mode="before")(empty_is_unset)

    @field_validator(*_NONE_DISABLES, mode="before")
    @classmethod
    def _none_disables(cls, value: object, info: ValidationInfo) -> object:
        """`none` turns a threshold off, as in whisperX's command line; empty keeps the default."""
        if isinstance(value, str) and value.strip().lower() == "none":
            return None
        if value == "":
            return DecodingOptions.model_fields[info.field_name].default
        return value

    @field_validator("suppress_tokens", mode="before")
    @classmethod
    def _token_list(cls, value: object) -> object:
        """`-1,50363` from the environment, as whisperX's --suppress_tokens takes it."""
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value


def decoding_from_environment() -> DecodingOptions:
    """The WHISPER_* decoding options; an invalid one is a ValueError naming its variable."""
    try:
        read = DecodingFromEnvironment()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"{DECODING_PREFIX}{str(first['loc'][0]).upper()}: {first['msg']}") from None
    return DecodingOptions.model_validate(read.model_dump())
