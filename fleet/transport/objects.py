"""The transfer bucket as the fleet uses it: where it is, the ObjectStore protocol, the values it passes, its errors."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# S3's bucket naming rules (3-63 lowercase letters, digits, dots, hyphens; starts and ends alphanumeric).
_TRANSFER_URL = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(?:/(?P<prefix>[^\s]*))?")
HASH_CHUNK_BYTES = 1 << 20


class ObjectStoreError(Exception):
    """A bucket operation failed; str() is one line fit for the user, `code` the server's error code if it gave one."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class StoreUnavailable(ObjectStoreError):
    """The storage endpoint did not answer, even after retries with backoff: wait, nothing is wrong with the object."""


class ObjectMissing(ObjectStoreError):
    """No object under that key (never staged, already collected, or the storage lost it in a restart)."""


class ObjectCorrupt(ObjectStoreError):
    """The bytes that arrived are not the bytes that were stored (their SHA-256 differs)."""


class ObjectTooLarge(ObjectStoreError):
    """Bigger than the fleet's cap on one object (FLEET_TRANSFER_MAX_MB)."""


@dataclass(frozen=True)
class BucketLocation:
    """`s3://bucket[/prefix]`: every key the fleet writes lies under the prefix."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> BucketLocation:
        """The bucket and prefix of a FLEET_TRANSFER_BUCKET value; ValueError (one line) if it is not one."""
        match = _TRANSFER_URL.fullmatch(url.strip())
        if not match or ".." in match["bucket"]:
            raise ValueError(f"not an S3 bucket URL: {url!r} (expected s3://bucket or s3://bucket/prefix)")
        prefix = (match["prefix"] or "").strip("/")
        if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
            raise ValueError(f"the prefix in {url!r} has an empty, '.' or '..' part")
        return cls(match["bucket"], prefix)

    def key(self, *parts: str) -> str:
        """The object key for `parts` under the prefix."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


@dataclass(frozen=True)
class StoredObject:
    """An object as stored: its key, size and the SHA-256 of its bytes (hex)."""

    key: str
    size: int
    sha256: str


def check_size(key: str, size: int, max_object_bytes: int) -> None:
    """ObjectTooLarge when an object is over the fleet's cap (checked before any byte moves)."""
    if size > max_object_bytes:
        raise ObjectTooLarge(f"{key} is {size >> 20} MB, over the {max_object_bytes >> 20} MB cap (FLEET_TRANSFER_MAX_MB)")


def file_sha256(path: Path) -> str:
    """The hex SHA-256 of a file, read a megabyte at a time."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


class ObjectStore(Protocol):
    """The transfer bucket: whole files in, whole verified files out, nothing ever public."""

    location: BucketLocation
    max_object_bytes: int

    def ensure(self) -> None:
        """Create the bucket if it is missing (idempotent), private."""
        ...

    def put_file(self, key: str, path: Path) -> StoredObject:
        """Upload a file under `key` with its SHA-256; ObjectTooLarge above the cap."""
        ...

    def get_file(self, key: str, dest: Path) -> StoredObject:
        """Download `key` to `dest`, whole and verified or not at all (ObjectMissing, ObjectCorrupt, ObjectTooLarge)."""
        ...

    def head(self, key: str) -> StoredObject | None:
        """The object under `key`, or None."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key`; a missing object is no error."""
        ...

    def keys(self, prefix: str) -> list[str]:
        """Every key that starts with `prefix`, sorted."""
        ...
