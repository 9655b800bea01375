"""The home side's loop, beside the watching director: answer stage requests, bring results home, copy remote
workers' status records into DEST_DIR. One long poll on the transfer queue, so results land seconds after a
remote worker finishes, not at the next watch round."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import structlog
from pydantic import ValidationError

from director.transfer.bring_in import bring_in
from director.transfer.stage import is_done, stage_job
from fleet.job.messages import TranscriptionJob
from fleet.outputs.commit import shown_path
from fleet.process.notify import Notifier
from fleet.roots.readiness import dest_problem
from fleet.settings import FleetSettings
from fleet.state.failures import save_failure_record
from fleet.state.planned_settings import PlannedSettingsReader
from fleet.state.worker_record import WorkerActivity, read_worker_records, worker_record_path
from fleet.transfer.documents import get_document
from fleet.transfer.protocol import TRANSFER_MESSAGE, FailureReady, ResultReady, StagedAudio, StageRequest, TransferKeys
from fleet.transport.backoff import retry_delay_s
from fleet.transport.objects import ObjectCorrupt, ObjectMissing, ObjectStore, ObjectStoreError
from fleet.transport.queue import JobQueue, QueueError, ReceivedMessage

log = structlog.get_logger()
# Short enough that remote workers' status records are copied well within the time status calls a worker lost.
RECEIVE_WAIT_S = 5
# A message being handled stays hidden this long: a result is committed in a second or two, so one left by a
# home side stopped mid-move comes back soon after it restarts; a stage request (encoding a film's audio can
# take a minute or two) is hidden for longer once it is taken on.
HANDLING_S = 60
STAGING_S = 900
# A result that cannot be written now (DEST_DIR full, read-only) is tried again after this long.
WRITE_RETRY_S = 60
# Files staged at once: ffmpeg decodes with several threads of its own; two keep a second worker from waiting.
STAGING_THREADS = 2
# Files staged ahead of the workers' asking, per remote worker seen (bench/transfer.py): one in its hands, two
# waiting, so a remote worker finds its next file staged instead of waiting for the encoding and the upload.
AHEAD_PER_REMOTE_WORKER = 3
AHEAD_CHECK_S = 1.0
# Staged audio nobody fetched for this long (its worker died and a local worker did the file) is swept away;
# a worker that still wants it asks again. Looked for every SWEEP_S.
STALE_STAGED_S = 6 * 3600
SWEEP_S = 600
OUTAGE_RETRY_BASE_S = 2
OUTAGE_RETRY_CAP_S = 60


class HomeTransfer:
    """Serves remote workers from the machine that sees SOURCE_DIR and DEST_DIR."""

    def __init__(self, settings: FleetSettings, store: ObjectStore, queue: JobQueue, notifier: Notifier,
                 owner: tuple[int, int] | None = None, scratch: Path | None = None) -> None:  # fmt: skip
        assert settings.transfer_bucket is not None
        self.settings = settings
        self.store = store
        self.queue = queue
        self.notifier = notifier
        self.owner = owner
        self.keys = TransferKeys(settings.transfer_bucket)
        self.planned = PlannedSettingsReader(settings.dest_dir)
        self.scratch = scratch or Path(tempfile.mkdtemp(prefix="fleet-home-transfer-"))
        self._own_scratch = scratch is None
        self._record_digests: dict[str, str] = {}
        self._stagers = ThreadPoolExecutor(STAGING_THREADS, thread_name_prefix="stage")
        self._next_sweep = 0.0
        self._outstanding: list[TranscriptionJob] = []  # on the queue, oldest first (the director's last round)
        self._staged: dict[str, TranscriptionJob] = {}  # dedup id -> job, staged by this process and not done yet
        self._staging: set[str] = set()  # dedup ids being staged now (by the loop's stagers or the stage-ahead thread)
        self._lock = threading.Lock()

    def close(self) -> None:
        """Remove the scratch folder this side made; once its threads have stopped."""
        if self._own_scratch:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def offer(self, outstanding: list[TranscriptionJob]) -> None:
        """The director's round: every job on the queue, oldest first (what workers take next is at the front)."""
        with self._lock:
            self._outstanding = list(outstanding)

    def stage_ahead(self) -> int:
        """Keep AHEAD_PER_REMOTE_WORKER files per live remote worker staged; drop what is done. How many were staged."""
        with self._lock:
            staged = dict(self._staged)
            outstanding = list(self._outstanding)
        for dedup_id, job in staged.items():
            if self._done(job):  # brought in, or done by a local worker: its staging is garbage now
                for key in (self.keys.staged(job), self.keys.audio(job)):
                    self.store.delete(key)
                with self._lock:
                    self._staged.pop(dedup_id, None)
        window = AHEAD_PER_REMOTE_WORKER * self._live_remote_workers()
        added = 0
        for job in outstanding:
            with self._lock:
                if len(self._staged) >= window:
                    break
                if job.dedup_id() in self._staged:
                    continue
            if not self._done(job):
                added += int(self._stage_once(job))
        return added

    def _stage_once(self, job: TranscriptionJob) -> bool:
        """Stage `job` unless it is staged already or being staged by the other thread; True when this call staged it."""
        dedup_id = job.dedup_id()
        with self._lock:
            if dedup_id in self._staging:
                return False
            self._staging.add(dedup_id)
        try:
            staged_now = self.store.head(self.keys.staged(job)) is None
            if staged_now:
                stage_job(job, self.settings, self.store, self.keys, self.scratch, self.planned)
            with self._lock:
                self._staged[dedup_id] = job
            return staged_now
        finally:
            with self._lock:
                self._staging.discard(dedup_id)

    def _done(self, job: TranscriptionJob) -> bool:
        return is_done(job, job.fingerprint, self.settings)

    def _live_remote_workers(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        records = read_worker_records(self.settings.dest_dir)
        live = [r for r in records if r.remote and r.state != WorkerActivity.STOPPED and now - r.last_beat <= r.lost_after_s]
        return len(live)

    def run_ahead(self, stop: threading.Event) -> None:
        """Stage ahead every AHEAD_CHECK_S until `stop`; outages are waited out by the main loop."""
        while not stop.wait(AHEAD_CHECK_S):
            try:
                self.stage_ahead()
            except (ObjectStoreError, OSError) as exc:
                log.debug("staging ahead paused", error=str(exc))
            except Exception:  # noqa: BLE001 - a bug here must not end staging for good; on-demand staging still works
                log.exception("staging ahead failed")

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: wait out outages (LocalStack restarting, the bucket emptied) and carry on, never crash."""
        ready, failures = False, 0
        while not stop.is_set():
            try:
                if not ready:
                    self.store.ensure()
                    self.queue.ensure()
                    ready = True
                    if failures:
                        log.info("transfer queue and bucket answer again")
                self.copy_worker_records()
                if time.monotonic() >= self._next_sweep:
                    self.sweep_stale_staging()
                    self._next_sweep = time.monotonic() + SWEEP_S
                message = self.queue.receive_one(RECEIVE_WAIT_S, HANDLING_S)
                failures = 0
                if message is not None:
                    self.handle(message)
            except (QueueError, ObjectStoreError) as exc:
                failures += 1
                ready = False
                delay = retry_delay_s(failures, OUTAGE_RETRY_BASE_S, cap_s=OUTAGE_RETRY_CAP_S)
                log.warning("transfer queue or bucket unavailable, waiting", error=str(exc), retry_in_s=delay)
                stop.wait(delay)
            except Exception:  # noqa: BLE001 - remote workers wait on this loop: log, back off, go on (a message comes back)
                failures += 1
                log.exception("serving remote workers failed; trying again")
                stop.wait(retry_delay_s(failures, OUTAGE_RETRY_BASE_S, cap_s=OUTAGE_RETRY_CAP_S))
        self._stagers.shutdown(wait=True, cancel_futures=True)

    def handle(self, message: ReceivedMessage) -> None:
        """One transfer message, deleted only once what it asks for is done (a stop mid-way repeats it, harmlessly)."""
        try:
            body = TRANSFER_MESSAGE.validate_json(message.body)
        except ValidationError as exc:
            log.error("transfer message rejected", reason=str(exc.errors()[0]["msg"]))
            self.queue.delete(message.receipt_handle)
            return
        if isinstance(body, StageRequest):  # beside the loop: encoding a film's audio must not hold up results
            self.queue.change_visibility(message.receipt_handle, STAGING_S)
            self._stagers.submit(self._stage, body, message)
            return
        if isinstance(body, ResultReady):
            if not self._bring_in(body, message):
                return
        elif isinstance(body, FailureReady):
            if not self.settings.dest_dir.is_dir():
                raise OSError(f"destination not available: {self.settings.dest_dir}")  # the message comes back
            save_failure_record(self.settings.dest_dir, body.record, self.owner)
            log.error("file failed on a remote worker", file=body.record.source, reason=body.record.reason)
        self.queue.delete(message.receipt_handle)

    def _stage(self, request: StageRequest, message: ReceivedMessage) -> None:
        """Stage unless staged already (a request repeated while a long file was encoded), then drop the request."""
        try:
            self._stage_once(request.job)  # staged already, or by the stage-ahead thread right now: the manifest comes
            self.queue.delete(message.receipt_handle)
        except (QueueError, ObjectStoreError, OSError) as exc:  # the request comes back after HANDLING_S, or is sent again
            log.warning("could not stage for a remote worker", file=request.job.path, error=str(exc))

    def _bring_in(self, ready: ResultReady, message: ReceivedMessage) -> bool:
        """True when handled; False when DEST_DIR cannot take it now (the message comes back after WRITE_RETRY_S)."""
        try:
            # As a local worker: a destination away, read-only or full is waited for, never created on a bare mount point.
            problem = dest_problem(self.settings.dest_dir, self.settings.min_free_mb)
            if problem:
                raise OSError(problem)
            written = bring_in(ready, self.settings, self.store, self.keys, self.scratch, self.owner)
        except OSError as exc:
            log.warning("outputs of a remote worker cannot be written now: trying again later", file=ready.job.path,
                        error=exc.strerror or str(exc), retry_in_s=WRITE_RETRY_S)  # fmt: skip
            self.queue.change_visibility(message.receipt_handle, WRITE_RETRY_S)
            return False
        if written:
            outputs = [shown_path(path, self.settings.dest_dir, self.settings.source_dir) for path in written]
            self.notifier.event({"event": "transcribed", "file": ready.job.path, "outputs": outputs,
                                 "audio_s": round(ready.audio_s, 3), "worker": ready.worker})  # fmt: skip
        return True

    def sweep_stale_staging(self, now: float | None = None) -> int:
        """Drop staged audio older than STALE_STAGED_S (and manifests that cannot be read); how many were dropped."""
        now = time.time() if now is None else now
        dropped = 0
        for key in self.store.keys(self.keys.location.key("audio") + "/"):
            if not key.endswith(".json"):
                continue
            try:
                stale = now - get_document(self.store, key, StagedAudio, self.scratch).staged_at > STALE_STAGED_S
            except (ObjectMissing, ObjectCorrupt):
                stale = True
            if stale:
                self.store.delete(key)
                self.store.delete(key.removesuffix(".json") + ".flac")
                dropped += 1
        if dropped:
            log.info("stale staged audio swept from the bucket", files=dropped)
        return dropped

    def copy_worker_records(self) -> None:
        """Remote workers' status records into DEST_DIR/.fleet/workers/, where `fleet status` and the dashboard read."""
        if not self.settings.dest_dir.is_dir():  # a destination away: never create it, or its state, on the mount point
            return
        for key in self.store.keys(self.keys.workers()):
            try:
                stored = self.store.head(key)
                if stored is None or self._record_digests.get(key) == stored.sha256:
                    continue
                target = worker_record_path(self.settings.dest_dir, key.rpartition("/")[2].removesuffix(".json"))
                target.parent.mkdir(parents=True, exist_ok=True)
                self.store.get_file(key, target)
            except (ObjectMissing, ObjectCorrupt):  # rewritten or removed between the look and the copy, or foreign
                continue
            self._record_digests[key] = stored.sha256


def connect_home_transfer(settings: FleetSettings) -> HomeTransfer:
    """The home side on the settings' transfer bucket and queue (nothing called yet: outages are waited out in `run`)."""
    from fleet.transport.s3 import S3ObjectStore
    from fleet.transport.sqs import SqsQueue

    assert settings.transfer_bucket is not None
    store = S3ObjectStore.connect(settings.transfer_endpoint(), settings.transfer_bucket, settings.transfer_max_mb << 20)
    queue = SqsQueue.connect(settings.queue_endpoint(), settings.transfer_queue_spec())
    return HomeTransfer(settings, store, queue, Notifier(settings.notify_urls, settings.webhook_url), settings.output_owner())


def start_home_transfer(home: HomeTransfer, stop: threading.Event) -> list[threading.Thread]:
    """The home side's two threads (the loop, staging ahead) beside a director: `fleet director --watch`, `fleet local`."""
    threads = [threading.Thread(target=home.run, args=(stop,), name="home-transfer", daemon=True),
               threading.Thread(target=home.run_ahead, args=(stop,), name="stage-ahead", daemon=True)]  # fmt: skip
    for thread in threads:
        thread.start()
    log.info("serving remote workers through the transfer bucket", bucket=str(home.settings.transfer_bucket))
    return threads
