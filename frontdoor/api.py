"""The HTTP routes whisper-asr-webservice has and Bazarr calls: /asr, /detect-language, /status, with its OpenAPI page."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool

from fleet import __version__
from fleet.job.identity import TranscriptionSettings
from fleet.language import language_code
from frontdoor.audio import PCM_BYTES_PER_S, NotAudio, looks_encoded, raw_problem, to_flac, to_pcm
from frontdoor.detect import LanguageDetector
from frontdoor.jobs import FrontDoorJobs, JobState, job_key
from frontdoor.settings import FrontDoorSettings
from frontdoor.upload import FIELD, Upload, UploadRefused, receive_upload

log = structlog.get_logger()
POLL_S = 0.5  # how often a waiting request looks for its subtitle
LOOK_AFTER_S = 15.0  # how often open jobs are checked against the queue (LocalStack restarted?)
ENCODE_TIMEOUT_S = 1800.0
Output = Literal["txt", "vtt", "srt", "tsv", "json"]
MEDIA_TYPES = {"json": "application/json", "vtt": "text/vtt; charset=utf-8"}
# The request body, for the OpenAPI page: the route reads it as a stream, so FastAPI cannot infer it.
UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": [FIELD], "properties": {FIELD: {"type": "string", "format": "binary"}}}}}}}  # fmt: skip


@dataclass
class FrontDoor:
    """What the routes share: the jobs, the detector, the transcription defaults, the upload slots."""

    settings: FrontDoorSettings
    jobs: FrontDoorJobs
    detector: LanguageDetector
    transcription: TranscriptionSettings
    slots: asyncio.Semaphore = field(init=False)
    locks: defaultdict[str, asyncio.Lock] = field(default_factory=lambda: defaultdict(asyncio.Lock))

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.settings.uploads)

    def settings_for(self, task: str, language: str | None) -> TranscriptionSettings:
        """The fleet's settings with the request's task and language; no media layout (the subtitle goes back)."""
        code = language_code(language) if language else None
        return self.transcription.model_copy(update={"task": task, "language": code, "media": None})

    async def upload(self, request: Request) -> Upload:
        async with self.slots:  # the others wait here, their bodies held back by TCP, none refused
            return await receive_upload(request, self.jobs.uploads, self.settings.max_upload_bytes)


def build_app(door: FrontDoor) -> FastAPI:
    """The ASGI application; `door.jobs` must be prepared (folders made) before it serves."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        looking = asyncio.create_task(_look_after(door.jobs))
        yield
        looking.cancel()

    about = "whisper-asr-webservice's API (Bazarr's Whisper provider) in front of the fleet's queue."
    app = FastAPI(title="whisper-fleet front door", version=__version__, lifespan=lifespan, description=about)
    _require_basic_auth(app, door.settings)

    @app.get("/", include_in_schema=False)
    async def index() -> RedirectResponse:
        return RedirectResponse("/docs")

    @app.get("/status")
    async def status() -> dict:
        """What Bazarr's "Test connection" asks: the version, and the front door's jobs."""
        return {"version": __version__, "jobs": await run_in_threadpool(door.jobs.counts)}

    @app.post("/asr", openapi_extra=UPLOAD_BODY)
    async def asr(request: Request, task: Literal["transcribe", "translate"] = "transcribe", language: str | None = None,
                  output: Output = "txt", encode: bool = True) -> Response:  # fmt: skip
        """Transcribe or translate the upload: the subtitle when done within FLEET_ASR_WAIT_S, else 202 (ask again)."""
        try:
            settings = door.settings_for(task, language)
        except ValueError as exc:
            return _error(400, str(exc))
        try:
            upload = await door.upload(request)
        except UploadRefused as exc:
            return _error(exc.status, str(exc))
        try:
            raw = not encode and not looks_encoded(upload.head)
            problem = raw_problem(upload.size) if raw else None
            if problem:
                return _error(400, problem)
            key = job_key(upload.sha256, settings)
            async with door.locks[key]:
                if await run_in_threadpool(door.jobs.state, key) is JobState.UNKNOWN:
                    flac = upload.path.with_name(f"{upload.path.name}.flac")
                    try:
                        await to_flac(upload.path, flac, raw, ENCODE_TIMEOUT_S)
                        await run_in_threadpool(door.jobs.accept, key, flac, settings, upload.sha256)
                    finally:
                        flac.unlink(missing_ok=True)
                    log.info("front-door job accepted", key=key, task=task, language=settings.language,
                             audio_s=round(upload.size / PCM_BYTES_PER_S) if raw else None)  # fmt: skip
                else:
                    log.info("front-door request joined its job", key=key)
        except NotAudio as exc:
            return _error(400, str(exc))
        finally:
            upload.path.unlink(missing_ok=True)
        return await _answer(door, key, output)

    @app.post("/detect-language", openapi_extra=UPLOAD_BODY)
    async def detect_language(request: Request, encode: bool = True) -> Response:
        """The spoken language, from speech spread over the whole track; `und` when it cannot tell."""
        try:
            upload = await door.upload(request)
        except UploadRefused as exc:
            return _error(exc.status, str(exc))
        pcm = upload.path.with_name(f"{upload.path.name}.pcm")
        try:
            raw = not encode and not looks_encoded(upload.head)
            problem = raw_problem(upload.size) if raw else None
            if problem:
                return _error(400, problem)
            cached = door.jobs.languages / f"{upload.sha256}.json"
            if cached.exists():
                return JSONResponse(json.loads(cached.read_text()))
            if not raw:
                await to_pcm(upload.path, pcm, ENCODE_TIMEOUT_S)
            started = time.monotonic()
            detected = await run_in_threadpool(door.detector.detect, upload.path if raw else pcm)
            log.info("language detected", language=detected.code, probability=round(detected.probability, 3),
                     speech_s=round(detected.speech_s, 1), seconds=round(time.monotonic() - started, 2))  # fmt: skip
            cached.write_text(json.dumps(detected.answer()))
            return JSONResponse(detected.answer())
        except NotAudio as exc:
            return _error(400, str(exc))
        finally:
            upload.path.unlink(missing_ok=True)
            pcm.unlink(missing_ok=True)

    return app


async def _answer(door: FrontDoor, key: str, output: str) -> Response:
    """Wait for the job: its output, its failure, or after FLEET_ASR_WAIT_S an empty 202 that Bazarr drops quietly."""
    deadline = time.monotonic() + door.settings.wait_s
    while True:
        state = await run_in_threadpool(door.jobs.state, key)
        if state is JobState.DONE:
            await run_in_threadpool(door.jobs.settle, key)
            body = door.jobs.result(key, output).read_bytes()
            headers = {"Content-Disposition": f'attachment; filename="{key[:16]}.{output}"', "X-Fleet-Job": key}
            return Response(body, media_type=MEDIA_TYPES.get(output, "text/plain; charset=utf-8"), headers=headers)
        if state is JobState.FAILED:
            failure = door.jobs.failure(key)
            await run_in_threadpool(door.jobs.settle, key)
            return _error(422, f"transcription failed: {failure.reason if failure else 'see the failure record'}", key)
        if time.monotonic() >= deadline:
            # Not a timeout for Bazarr (no exception, so no provider throttle) and not a subtitle (an empty body is
            # invalid): dropped until its next search, which finds the subtitle at once.
            return Response(b"", status_code=202, headers={"Retry-After": "600", "X-Fleet-Job": key})
        await asyncio.sleep(POLL_S)


def _error(status: int, message: str, key: str | None = None) -> JSONResponse:
    """An error as whisper-asr-webservice's clients expect one: JSON, never text that parses as a subtitle."""
    return JSONResponse({"detail": message}, status_code=status, headers={"X-Fleet-Job": key} if key else None)


async def _look_after(jobs: FrontDoorJobs) -> None:
    """Now and every LOOK_AFTER_S: send open jobs again where the queue lost them, settle the finished."""
    while True:
        try:
            await run_in_threadpool(jobs.look_after)
        except Exception:  # noqa: BLE001 - a bad record or a full disk must not stop the door from looking again
            log.exception("looking after the front-door jobs failed")
        await asyncio.sleep(LOOK_AFTER_S)


def _require_basic_auth(app: FastAPI, settings: FrontDoorSettings) -> None:
    """Optional HTTP basic auth (FLEET_ASR_USER and FLEET_ASR_PASSWORD) for clients that can send it; Bazarr cannot."""
    if not (settings.user and settings.password):
        return
    expected = "Basic " + base64.b64encode(f"{settings.user}:{settings.password}".encode()).decode()

    @app.middleware("http")
    async def basic_auth(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if secrets.compare_digest(request.headers.get("authorization", "").encode(), expected.encode()):
            return await call_next(request)
        return JSONResponse({"detail": "authentication required"}, status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="whisper-fleet"'})  # fmt: skip
