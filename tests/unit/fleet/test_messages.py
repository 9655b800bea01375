"""Job messages: schema, path safety, and the ids SQS sees."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import SourceFingerprint, TranscriptionJob, job_dedup_id, unsafe_path_reason

FP = SourceFingerprint(size=10, mtime_ns=123)


def job(**overrides):
    values = dict(path="a/b.mp3", output_base="a/b", fingerprint=FP, settings=TranscriptionSettings(), enqueued_at=1.0)
    values.update(overrides)
    return TranscriptionJob(**values)


@pytest.mark.parametrize(
    "path",
    ["../../etc/passwd", "/etc/passwd", "a/../b.mp3", "./a.mp3", "a//b.mp3", "a/", "", "a\nb.mp3", "a\x00b", "x" * 5000],
)
def test_unsafe_paths_are_refused(path):
    assert unsafe_path_reason(path) is not None
    with pytest.raises(ValidationError):
        job(path=path)


@pytest.mark.parametrize("path", ["a.mp3", "-dash.mp3", "with space/ünï 'q\".flac", "a..b.mp3", "a/b/c.MP3"])
def test_odd_but_safe_names_are_accepted(path):
    assert unsafe_path_reason(path) is None
    assert job(path=path).path == path


def test_message_round_trips_through_json():
    original = job()
    assert TranscriptionJob.model_validate_json(original.model_dump_json()) == original


def test_unknown_schema_version_and_extra_fields_are_rejected():
    body = job().model_dump()
    with pytest.raises(ValidationError):
        TranscriptionJob.model_validate({**body, "version": 2})
    with pytest.raises(ValidationError):
        TranscriptionJob.model_validate({**body, "host_path": "/srv/a.mp3"})


def test_dedup_id_changes_with_path_fingerprint_settings_and_retry():
    base = job().dedup_id()
    assert job(enqueued_at=99.0).dedup_id() == base  # when it was enqueued is not identity
    assert job(path="a/c.mp3").dedup_id() != base
    assert job(fingerprint=SourceFingerprint(size=11, mtime_ns=123)).dedup_id() != base
    assert job(settings=TranscriptionSettings(language="de")).dedup_id() != base
    assert job(attempt="retry:5.0").dedup_id() != base


def test_group_id_is_per_file_and_fits_sqs_limits():
    assert job().group_id() != job(path="a/c.mp3").group_id()
    assert job().group_id() == job(fingerprint=SourceFingerprint(size=1, mtime_ns=1)).group_id()
    assert len(job().group_id()) <= 128 and job().group_id().isalnum()


@given(st.text(min_size=1, max_size=200), st.integers(0, 2**40), st.integers())
def test_dedup_ids_are_always_valid_sqs_ids(path, size, mtime):
    dedup = job_dedup_id(path, size, mtime, "k")
    assert len(dedup) == 64 and all(c in "0123456789abcdef" for c in dedup)


def test_settings_key_ignores_nothing_that_changes_output():
    assert TranscriptionSettings().key() == TranscriptionSettings().key()
    assert TranscriptionSettings(model="tiny.en").key() != TranscriptionSettings().key()
    assert TranscriptionSettings(max_line_width=42).key() != TranscriptionSettings().key()


@pytest.mark.parametrize(
    "field,value", [("output_base", ".fleet/director/enqueued"), ("path", ".hidden/a.mp3"), ("path", "a/.b.mp3")]
)
def test_jobs_never_name_hidden_paths(field, value):
    # hidden sources are never queued, and a hidden output base could overwrite the fleet's own state
    with pytest.raises(ValidationError, match="hidden"):
        job(**{field: value})
