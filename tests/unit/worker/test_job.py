"""One job's own decisions: a growing file, a source gone, decode failures, ffmpeg missing, a lost lease."""

from __future__ import annotations

import numpy as np
import pytest

from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import SourceFingerprint, TranscriptionJob
from fleet.settings import FleetSettings
from worker.job.result import Outcome


def test_a_file_that_grows_while_it_is_decoded_is_retried_not_failed(monkeypatch, tmp_path):
    from worker.audio.samples import DecodeError
    from worker.job import run as job
    from worker.job.failures import PermanentFailure, TransientFailure

    # Given a recording still being copied in: ffmpeg sees a broken file, and meanwhile it grows
    source = tmp_path / "copying.mp3"
    source.write_bytes(b"\xff\xfb" * 100)
    before = source.stat()
    fingerprint = SourceFingerprint(size=before.st_size, mtime_ns=before.st_mtime_ns)

    def decode_while_it_grows(path, timeout_s, stream_index):
        with open(path, "ab") as growing:
            growing.write(b"\x00" * 4096)
        raise DecodeError("not decodable (corrupt or not a media file)")

    monkeypatch.setattr(job, "spool_audio", decode_while_it_grows)
    # Then it is a transient failure (retried later), not a permanent one
    with pytest.raises(TransientFailure, match="source file changed while it was read"):
        job._decode(source, fingerprint, 10, None)
    # And the same failure on an unchanged file stays permanent
    monkeypatch.setattr(job, "spool_audio", lambda *args: (_ for _ in ()).throw(DecodeError("not decodable")))
    now = source.stat()
    with pytest.raises(PermanentFailure):
        job._decode(source, SourceFingerprint(size=now.st_size, mtime_ns=now.st_mtime_ns), 10, None)


def test_a_source_gone_for_good_clears_its_failure_record(tmp_path):
    from fleet.state.failures import write_failure_record
    from fleet.state.paths import failure_record_path
    from worker.job.lease import Lease
    from worker.job.run import JobContext, run_job

    # Given a last-attempt failure record for a file that was then deleted (the disk itself is there)
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir()
    (source / "other.mp3").write_bytes(b"x")
    job = TranscriptionJob(path="gone.mp3", output_base="gone", fingerprint=SourceFingerprint(size=1, mtime_ns=1),
                           settings=TranscriptionSettings(), formats=("json",), enqueued_at=0.0)  # fmt: skip
    write_failure_record(dest, job, job.fingerprint, "last attempt of 5", "", "w", None)
    assert failure_record_path(dest, "gone.mp3").exists()
    # When a worker takes its message
    ctx = JobContext(settings=FleetSettings(source_dir=source, dest_dir=dest), pipeline=None, worker_id="w")
    result = run_job(job, ctx, Lease(), lambda *_: None)
    # Then the file is gone, and so is the record that said it failed
    assert result.outcome is Outcome.SOURCE_GONE
    assert not failure_record_path(dest, "gone.mp3").exists()


def test_decode_failures_of_the_surroundings_are_transient_of_the_bytes_permanent():
    from worker.audio.samples import DecodeError, _reason

    assert DecodeError("decoding took longer than 1800 s", transient=True).transient
    for stderr in ("x.mp3: Permission denied", "x.mp3: Input/output error", "x.mp3: Stale file handle"):
        assert DecodeError(_reason(stderr)).transient, stderr
    for stderr in ("Invalid data found when processing input", "Stream map '0:a:0' matches no streams."):
        assert not DecodeError(_reason(stderr)).transient, stderr


def test_a_missing_ffmpeg_is_one_clear_start_up_error(tmp_path):
    import subprocess
    import sys

    env = {"PATH": str(tmp_path), "FLEET_SOURCE_DIR": str(tmp_path), "FLEET_DEST_DIR": str(tmp_path / "dest"),
           "HOME": str(tmp_path)}  # fmt: skip
    result = subprocess.run([sys.executable, "-m", "app.cli", "worker"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == ("fleet: ffmpeg not found on PATH: install it (Debian: apt-get install ffmpeg); "
                                     "every file is decoded with it")  # fmt: skip


def test_a_lost_lease_stops_the_job_within_one_window(monkeypatch, tmp_path):
    from worker.audio.samples import ArrayAudio
    from worker.job import run as job_run
    from worker.job.lease import Lease
    from worker.job.run import JobContext, run_job

    # Given a long recording being transcribed window by window
    source, dest = tmp_path / "source", tmp_path / "dest"
    source.mkdir()
    dest.mkdir()
    (source / "long.wav").write_bytes(b"x" * 100)
    info = (source / "long.wav").stat()
    job = TranscriptionJob(path="long.wav", output_base="long", enqueued_at=0.0, settings=TranscriptionSettings(),
                           fingerprint=SourceFingerprint(size=info.st_size, mtime_ns=info.st_mtime_ns))  # fmt: skip
    monkeypatch.setattr(job_run, "_decode", lambda *args: ArrayAudio(np.zeros(16000, dtype=np.float32)))
    monkeypatch.setattr(job_run, "probe_audio_streams", lambda *args: [])
    lease = Lease(visibility_timeout_s=60)
    windows_run = []

    class Pipeline:
        def run(self, audio, transcription, on_stage, on_language=None):
            for window in range(100):
                on_stage("transcribe", window)
                windows_run.append(window)
                if window == 2:
                    lease.lose()  # the heartbeat found the receipt handle refused
            raise AssertionError("ran to the end with a lost lease")

    ctx = JobContext(settings=FleetSettings(source_dir=source, dest_dir=dest, min_free_mb=0), pipeline=Pipeline(),
                     worker_id="w")  # fmt: skip
    # When the lease is lost after the third window
    result = run_job(job, ctx, lease, lambda *_: None)
    # Then the job stops before the fourth, and nothing is written
    assert result.outcome is Outcome.LEASE_LOST and windows_run == [0, 1, 2]
    assert list(dest.iterdir()) == []
