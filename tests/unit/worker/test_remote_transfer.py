"""The remote worker's side of the transfer, in process: asking for audio, refusing damaged audio, handing back."""

from __future__ import annotations

import threading

import pytest

from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import SourceFingerprint, TranscriptionJob
from fleet.outputs.commit import LeaseLost
from fleet.settings import FleetSettings
from fleet.state.records import CommitRecord
from fleet.transfer.documents import put_document
from fleet.transfer.protocol import (
    TRANSFER_MESSAGE,
    ResultBundle,
    ResultReady,
    StagedAudio,
    StagedOutcome,
    StageRequest,
    TransferKeys,
)
from fleet.transport.memory import MemoryQueue
from fleet.transport.memory_objects import MemoryObjectStore
from fleet.transport.objects import BucketLocation
from worker.job.failures import TransientFailure
from worker.job.lease import Lease
from worker.remote.transfer import RemoteTransfer

LOCATION = BucketLocation("fleet", "")
JOB = TranscriptionJob(path="a.mp3", output_base="a", fingerprint=SourceFingerprint(size=3, mtime_ns=4),
                       settings=TranscriptionSettings(), enqueued_at=1.0)  # fmt: skip


@pytest.fixture
def remote(tmp_path) -> RemoteTransfer:
    queue = MemoryQueue(FleetSettings(transfer_bucket=LOCATION).transfer_queue_spec())
    queue.ensure()
    return RemoteTransfer(MemoryObjectStore(LOCATION, 1 << 20), TransferKeys(LOCATION), queue, tmp_path, "gaming-pc", 0.5)


def sent(remote: RemoteTransfer) -> list[object]:
    messages = []
    while (message := remote.queue.receive_one(0, 60)) is not None:
        messages.append(TRANSFER_MESSAGE.validate_json(message.body))
    return messages


def test_audio_not_staged_is_asked_for_once_and_waited_for_a_bounded_time(remote):
    with pytest.raises(TransientFailure, match="did not stage the audio"):
        remote.await_staged(JOB, Lease())
    assert sent(remote) == [StageRequest(job=JOB, worker="gaming-pc")]


def test_a_lost_lease_stops_the_wait(remote):
    lease = Lease()
    lease.lose()
    with pytest.raises(LeaseLost):
        remote.await_staged(JOB, lease)


def staged_in_bucket(remote: RemoteTransfer, tmp_path, audio: bytes = b"fLaC audio") -> StagedAudio:  # noqa: ANN001
    (tmp_path / "up.flac").write_bytes(audio)
    stored = remote.store.put_file(remote.keys.audio(JOB), tmp_path / "up.flac")
    staged = StagedAudio(outcome=StagedOutcome.STAGED, fingerprint=JOB.fingerprint, sha256=stored.sha256, size=stored.size)
    put_document(remote.store, remote.keys.staged(JOB), staged, tmp_path)
    return staged


def test_staged_audio_is_fetched_whole_and_verified(remote, tmp_path):
    staged = staged_in_bucket(remote, tmp_path)
    assert remote.await_staged(JOB, Lease()) == staged and sent(remote) == []
    assert remote.fetch_audio(JOB, staged).read_bytes() == b"fLaC audio"


def test_damaged_or_restaged_audio_is_refused_and_asked_for_afresh(remote, tmp_path):
    staged = staged_in_bucket(remote, tmp_path)
    remote.store._objects[remote.keys.audio(JOB)] = (b"bit rot", staged.sha256)  # noqa: SLF001 - damage it in place
    with pytest.raises(TransientFailure, match="staged again"):
        remote.fetch_audio(JOB, staged)
    assert remote.store.keys("") == []  # manifest and audio gone: the next delivery asks the home side again
    other = staged_in_bucket(remote, tmp_path, b"another version")
    with pytest.raises(TransientFailure, match="does not match its manifest"):
        remote.fetch_audio(JOB, staged.model_copy(update={"sha256": "0" * 64}))
    assert remote.store.head(remote.keys.audio(JOB)) is None and other.sha256 != staged.sha256


def test_outputs_go_into_the_bucket_before_the_message_that_says_so(remote):
    record = CommitRecord(source="a.mp3", fingerprint=JOB.fingerprint, settings_key="k", settings=JOB.settings)
    remote.hand_back_result(JOB, ResultBundle(record=record, result={"segments": []}, rendered={"srt": ""}), 12.5)
    [ready] = sent(remote)
    assert isinstance(ready, ResultReady) and ready.audio_s == 12.5
    assert remote.store.head(ready.key).sha256 == ready.sha256


def test_the_last_status_record_goes_up_even_when_asked_for_during_an_upload(tmp_path):

    from worker.queue_loop.beacon import WorkerState
    from worker.remote.status import UploadingBeacon

    class SlowStore(MemoryObjectStore):
        def put_file(self, key, path):  # noqa: ANN001, ANN201
            snapshot = tmp_path / f"sent-{len(sent)}.json"
            snapshot.write_bytes(path.read_bytes())  # what a real upload reads as it starts
            sent.append(snapshot)
            uploading.set()
            release.wait(5)
            return super().put_file(key, snapshot)

    uploading, release, sent = threading.Event(), threading.Event(), []
    store = SlowStore(LOCATION, 1 << 20)
    (tmp_path / ".fleet" / "workers").mkdir(parents=True)
    beacon = UploadingBeacon(tmp_path, WorkerState(worker="w", lost_after_s=35), store, "workers/w.json")
    beacon.beat(force=True)
    uploading.wait(5)  # an upload of the first record is under way
    beacon.state.files_done = 4
    beacon.beat(force=True)
    closing = threading.Thread(target=beacon.close)
    closing.start()
    release.set()
    closing.join(10)
    store.get_file("workers/w.json", tmp_path / "got.json")
    assert '"files_done":4' in (tmp_path / "got.json").read_text()


def test_a_status_record_rewritten_during_its_upload_never_goes_up_under_a_wrong_checksum(tmp_path):
    from fleet.transport.objects import file_sha256
    from worker.queue_loop.beacon import WorkerState
    from worker.remote.status import UploadingBeacon

    class HashThenReadStore(MemoryObjectStore):
        """Hashes the file, then reads it for sending, as boto3's upload_file does: the beacon rewrites it in between."""

        def put_file(self, key, path):  # noqa: ANN001, ANN201
            sha256 = file_sha256(path)
            if not rewritten.is_set():
                rewritten.set()
                beacon.state.files_done = 4
                beacon.beat(force=True)
            data = path.read_bytes()
            with self._lock:
                self._objects[key] = (data, sha256)
            uploaded.set()

    rewritten, uploaded = threading.Event(), threading.Event()
    store = HashThenReadStore(LOCATION, 1 << 20)
    (tmp_path / ".fleet" / "workers").mkdir(parents=True)
    beacon = UploadingBeacon(tmp_path, WorkerState(worker="w", lost_after_s=35), store, "workers/w.json")
    beacon.beat(force=True)
    assert uploaded.wait(5)
    beacon.close()
    store.get_file("workers/w.json", tmp_path / "got.json")  # ObjectCorrupt if the bytes sent were not the bytes hashed
    assert '"files_done":4' in (tmp_path / "got.json").read_text()
