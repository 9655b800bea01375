"""The transfer bucket on S3 (any endpoint: LocalStack, MinIO, Garage, AWS): the only object-storage code that imports boto3."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from fleet.transport.objects import (
    BucketLocation,
    ObjectCorrupt,
    ObjectMissing,
    ObjectStoreError,
    StoredObject,
    StoreUnavailable,
    check_size,
    file_sha256,
)
from fleet.transport.spec import ServiceEndpoint

T = TypeVar("T")
SHA256_METADATA = "sha256"  # x-amz-meta-sha256: works on every S3 implementation (whole-object checksums do not)
MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
BUCKET_EXISTS_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
# Parts of 64 MB: a two-hour video's audio track in a few requests, and a cut upload redoes at most one part.
TRANSFER = TransferConfig(multipart_threshold=64 << 20, multipart_chunksize=64 << 20, max_concurrency=4)


def file_identity(path: Path) -> tuple[int, int, int]:
    """Inode, size and mtime: what changes when a file is rewritten or replaced (by rename) under an upload."""
    stat = path.stat()
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class S3ObjectStore:
    """The transfer bucket on an S3 endpoint (an `ObjectStore`): private objects, each with its SHA-256."""

    def __init__(self, client: Any, location: BucketLocation, max_object_bytes: int) -> None:
        self._client = client
        self.location = location
        self.max_object_bytes = max_object_bytes
        self.endpoint = client.meta.endpoint_url

    @classmethod
    def connect(cls, endpoint: ServiceEndpoint, location: BucketLocation, max_object_bytes: int) -> S3ObjectStore:
        """A client with botocore's standard retries; path-style addressing on any endpoint but AWS's own."""
        session = boto3.session.Session(region_name=endpoint.region)
        credentials = {}
        if session.get_credentials() is None and endpoint.url:
            # LocalStack accepts any key; a real store without credentials answers AccessDenied, said in one line.
            credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
        config = Config(retries={"mode": "standard", "total_max_attempts": endpoint.max_attempts},
                        # No long polls here (the queue's +25 s): a server silent for 3 timeouts mid-transfer is gone.
                        connect_timeout=endpoint.timeout_s, read_timeout=endpoint.timeout_s * 3,
                        s3={"addressing_style": "path" if endpoint.url else "auto"})  # fmt: skip
        client = session.client("s3", endpoint_url=endpoint.url, config=config, **credentials)
        return cls(client, location, max_object_bytes)

    def _call(self, operation: str, fn: Callable[..., T], **kwargs: Any) -> T:
        try:
            return fn(**kwargs)
        except NoCredentialsError as exc:
            raise ObjectStoreError("no AWS credentials for the transfer bucket: set AWS_ACCESS_KEY_ID and "
                                   "AWS_SECRET_ACCESS_KEY (any value for LocalStack)") from exc  # fmt: skip
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code"))
            if code in MISSING_CODES:
                raise ObjectMissing(f"{operation}: no such object in {self.location}", code) from exc
            raise ObjectStoreError(f"{operation} failed: {code}: {error.get('Message')}", code) from exc
        except S3UploadFailedError as exc:  # a managed upload's client error, wrapped by boto3 (its text names it)
            raise ObjectStoreError(f"{operation} failed: {str(exc).splitlines()[0]}") from exc
        except BotoCoreError as exc:
            raise StoreUnavailable(f"storage endpoint {self.endpoint} unreachable ({operation}): {exc}") from exc

    def ensure(self) -> None:
        """Create the bucket if missing, and keep it private (a store that cannot block public access is left as is)."""
        bucket = self.location.bucket
        try:
            self._call("look up bucket", self._client.head_bucket, Bucket=bucket)
            return
        except ObjectMissing:
            pass
        try:
            self._call("create bucket", self._client.create_bucket, Bucket=bucket)
        except ObjectStoreError as exc:
            if exc.code not in BUCKET_EXISTS_CODES:
                raise
        block = {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
        try:
            self._call("block public access", self._client.put_public_access_block, Bucket=bucket,
                       PublicAccessBlockConfiguration=block)  # fmt: skip
        except StoreUnavailable:
            raise
        except ObjectStoreError:
            pass  # MinIO and Garage have no such call; their buckets are private unless a policy says otherwise

    def put_file(self, key: str, path: Path) -> StoredObject:
        before = file_identity(path)
        check_size(key, before[1], self.max_object_bytes)
        sha256 = file_sha256(path)
        extra = {"Metadata": {SHA256_METADATA: sha256}, "ContentType": "application/octet-stream"}
        self._call(f"upload {key}", self._client.upload_file, Filename=str(path), Bucket=self.location.bucket, Key=key,
                   ExtraArgs=extra, Config=TRANSFER)  # fmt: skip
        if file_identity(path) != before:  # hashed one version, sent another: never leave it under a wrong checksum
            self._call(f"delete {key}", self._client.delete_object, Bucket=self.location.bucket, Key=key)
            raise ObjectStoreError(f"upload {key}: {path.name} changed while it was uploaded; upload a file nobody writes")
        return StoredObject(key, before[1], sha256)

    def get_file(self, key: str, dest: Path) -> StoredObject:
        stored = self.head(key)
        if stored is None:
            raise ObjectMissing(f"download {key}: no such object in {self.location}")
        check_size(key, stored.size, self.max_object_bytes)
        fd, temp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name[:40]}.", suffix=".part")
        os.close(fd)
        try:
            self._call(f"download {key}", self._client.download_file, Bucket=self.location.bucket, Key=key,
                       Filename=temp, Config=TRANSFER)  # fmt: skip
            arrived = file_sha256(Path(temp))
            if arrived != stored.sha256:
                raise ObjectCorrupt(f"download {key}: SHA-256 {arrived[:12]}... differs from the stored {stored.sha256[:12]}...")
            os.replace(temp, dest)
        finally:
            Path(temp).unlink(missing_ok=True)
        return stored

    def head(self, key: str) -> StoredObject | None:
        try:
            answer = self._call(f"look up {key}", self._client.head_object, Bucket=self.location.bucket, Key=key)
        except ObjectMissing:
            return None
        sha256 = answer.get("Metadata", {}).get(SHA256_METADATA)
        if not sha256:
            raise ObjectCorrupt(f"{key} has no SHA-256: not written by the fleet")
        return StoredObject(key, int(answer["ContentLength"]), sha256)

    def delete(self, key: str) -> None:
        self._call(f"delete {key}", self._client.delete_object, Bucket=self.location.bucket, Key=key)

    def keys(self, prefix: str) -> list[str]:
        paginator = self._client.get_paginator("list_objects_v2")
        pages = self._call(f"list {prefix}", lambda: list(paginator.paginate(Bucket=self.location.bucket, Prefix=prefix)))
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))
