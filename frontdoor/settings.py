"""The front door's own settings (FLEET_ASR_*); the queue, the destination and the transcription come from FleetSettings."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# Bazarr's read timeout defaults to 3600 s: an answer a little before it never looks like a timed-out connection.
DEFAULT_WAIT_S = 3300.0


class FrontDoorSettings(BaseSettings):
    """Where the door listens, how long a request waits for its subtitle, what it accepts."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    # Bazarr has no authentication: loopback unless the user puts the door on a network on purpose.
    host: str = Field("127.0.0.1", validation_alias="FLEET_ASR_HOST")
    port: int = Field(9000, ge=0, le=65535, validation_alias="FLEET_ASR_PORT")  # whisper-asr-webservice's port
    wait_s: float = Field(DEFAULT_WAIT_S, gt=0, validation_alias="FLEET_ASR_WAIT_S")
    # ~115 MB per hour of 16 kHz PCM: 2 GB is ~18 hours of audio.
    max_upload_mb: int = Field(2048, ge=1, validation_alias="FLEET_ASR_MAX_UPLOAD_MB")
    # Uploads read at once; more requests wait their turn (TCP holds their bodies), none is refused.
    uploads: int = Field(8, ge=1, le=256, validation_alias="FLEET_ASR_UPLOADS")
    user: str | None = Field(None, validation_alias="FLEET_ASR_USER")
    password: str | None = Field(None, validation_alias="FLEET_ASR_PASSWORD", repr=False)
    detect_threads: int = Field(2, ge=1, validation_alias="FLEET_ASR_DETECT_THREADS")

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb << 20


def front_door_environment_names() -> set[str]:
    """Every variable the front door reads besides FleetSettings'."""
    return {str(field.validation_alias) for field in FrontDoorSettings.model_fields.values()}
