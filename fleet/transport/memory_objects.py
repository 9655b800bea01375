"""The transfer bucket in memory, for tests in one process: held to S3 by one contract suite (test_object_store_contract)."""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from pathlib import Path

from fleet.transport.objects import BucketLocation, ObjectCorrupt, ObjectMissing, StoredObject, check_size, file_sha256


class MemoryObjectStore:
    """Objects as bytes in a dict, each with the SHA-256 it was stored with (an `ObjectStore`)."""

    def __init__(self, location: BucketLocation, max_object_bytes: int) -> None:
        self.location = location
        self.max_object_bytes = max_object_bytes
        self._objects: dict[str, tuple[bytes, str]] = {}
        self._lock = threading.Lock()

    def ensure(self) -> None:
        """Nothing to create: the bucket is this object."""

    def put_file(self, key: str, path: Path) -> StoredObject:
        data = path.read_bytes()
        check_size(key, len(data), self.max_object_bytes)
        sha256 = hashlib.sha256(data).hexdigest()
        with self._lock:
            self._objects[key] = (data, sha256)
        return StoredObject(key, len(data), sha256)

    def get_file(self, key: str, dest: Path) -> StoredObject:
        with self._lock:
            found = self._objects.get(key)
        if found is None:
            raise ObjectMissing(f"download {key}: no such object in {self.location}")
        data, sha256 = found
        check_size(key, len(data), self.max_object_bytes)
        fd, temp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name[:40]}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as stream:
                stream.write(data)
            if file_sha256(Path(temp)) != sha256:
                raise ObjectCorrupt(f"download {key}: SHA-256 differs from the stored one")
            os.replace(temp, dest)
        finally:
            Path(temp).unlink(missing_ok=True)
        return StoredObject(key, len(data), sha256)

    def head(self, key: str) -> StoredObject | None:
        with self._lock:
            found = self._objects.get(key)
        return None if found is None else StoredObject(key, len(found[0]), found[1])

    def delete(self, key: str) -> None:
        with self._lock:
            self._objects.pop(key, None)

    def keys(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(key for key in self._objects if key.startswith(prefix))
