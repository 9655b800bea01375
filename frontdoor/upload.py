"""Reading an upload: the multipart body streamed to a file in the state folder, hashed on the way, never in memory.

Bazarr sends the whole decoded track (~115 MB an hour) in one part named `audio_file` and gives the server only its
connect timeout to start reading; so the body is read as it arrives, and parsing, hashing and writing run in a
worker thread a megabyte at a time, leaving the event loop free for the other requests.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

FIELD = "audio_file"  # whisper-asr-webservice's name, which Bazarr sends
FEED_BYTES = 1 << 20  # parsed and written per hop to the thread pool
MULTIPART_OVERHEAD = 64 << 10  # headers and boundaries around the audio, allowed beyond the size cap


class UploadRefused(Exception):
    """The request cannot be taken: `status` is the HTTP answer, str() the one line that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Upload:
    """The uploaded audio as it lies in the state folder."""

    path: Path
    sha256: str
    size: int
    head: bytes  # its first bytes: what kind of file it is


class _AudioPart:
    """The parser's callbacks: the `audio_file` part into `sink`, hashed and counted; every other part dropped."""

    def __init__(self, sink: BinaryIO, cap: int) -> None:
        self.sink, self.cap = sink, cap
        self.hash = hashlib.sha256()
        self.size = 0
        self.head = b""
        self.found = self.writing = False
        self._field = self._value = b""
        self._disposition = b""

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field, "on_header_value": self._header_value,
                "on_header_end": self._header_end, "on_headers_finished": self._headers_finished, "on_part_data": self._data,
                "on_part_end": self._end}  # fmt: skip

    def _begin(self) -> None:
        self._disposition = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def _header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def _header_end(self) -> None:
        if self._field.lower() == b"content-disposition":
            self._disposition = self._value
        self._field = self._value = b""

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        self.writing = not self.found and options.get(b"name") == FIELD.encode()
        self.found = self.found or self.writing

    def _data(self, data: bytes, start: int, end: int) -> None:
        if not self.writing:
            return
        chunk = data[start:end]
        self.size += len(chunk)
        if self.size > self.cap:
            raise UploadRefused(413, f"upload larger than FLEET_ASR_MAX_UPLOAD_MB ({self.cap >> 20} MB)")
        if len(self.head) < 64:
            self.head = (self.head + chunk)[:64]
        self.hash.update(chunk)
        self.sink.write(chunk)

    def _end(self) -> None:
        self.writing = False


def _boundary(request: Request) -> bytes:
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadRefused(400, f"send the audio as multipart/form-data in the field {FIELD!r}")
    return boundary


async def receive_upload(request: Request, folder: Path, cap: int) -> Upload:
    """The `audio_file` part of the body in a new file under `folder`; UploadRefused for a body that cannot be one."""
    boundary = _boundary(request)
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap + MULTIPART_OVERHEAD:  # refused before a byte of it is stored
        raise UploadRefused(413, f"upload of {int(length) >> 20} MB is larger than FLEET_ASR_MAX_UPLOAD_MB ({cap >> 20} MB)")
    handle, name = tempfile.mkstemp(prefix=".upload-", dir=folder)
    path = Path(name)
    try:
        with os.fdopen(handle, "wb") as sink:
            part = _AudioPart(sink, cap)
            parser = MultipartParser(boundary, part.callbacks())
            pending = bytearray()
            try:
                async for chunk in request.stream():
                    pending += chunk
                    if len(pending) >= FEED_BYTES:
                        await run_in_threadpool(parser.write, bytes(pending))
                        pending.clear()
                await run_in_threadpool(_finish, parser, bytes(pending))
            except MultipartParseError as exc:
                raise UploadRefused(400, f"the multipart body is malformed or truncated: {exc}") from exc
        if not part.found:
            raise UploadRefused(400, f"no {FIELD!r} field in the upload")
        return Upload(path, part.hash.hexdigest(), part.size, part.head)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _finish(parser: MultipartParser, rest: bytes) -> None:
    parser.write(rest)
    parser.finalize()
