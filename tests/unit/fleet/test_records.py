"""Commit records are read from the head of the JSON transcript; failure records from .fleet/failed."""

from __future__ import annotations

import json

from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import Fingerprint, SourceFingerprint
from fleet.media.output_names import output_files, stem_base
from fleet.roots.confine import resolve_inside
from fleet.state.atomic import write_atomic
from fleet.state.paths import failure_record_path
from fleet.state.records import FailureRecord, read_commit_record, read_failures

RECORD = {
    "version": 1, "source": "a.mp3", "fingerprint": {"size": 1, "mtime_ns": 2},
    "settings_key": TranscriptionSettings().key(), "settings": TranscriptionSettings().model_dump(),
    "worker": "w1",
}


def test_record_at_the_head_of_a_huge_transcript_is_read_without_the_rest(tmp_path):
    path = tmp_path / "a.json"
    # the tail is not even valid JSON: only the head can have been parsed
    path.write_text('{"fleet": ' + json.dumps(RECORD) + ', "segments": [' + "1," * 200_000)
    summary = read_commit_record(path)
    assert (summary.source, summary.fingerprint) == ("a.mp3", Fingerprint(size=1, mtime_ns=2))


def test_pretty_printed_or_reordered_json_still_works(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps({"segments": [], "fleet": RECORD}, indent=2))
    assert read_commit_record(path).settings_key == RECORD["settings_key"]


def test_missing_or_broken_records_read_as_none(tmp_path):
    (tmp_path / "whisperx.json").write_text(json.dumps({"segments": []}))
    (tmp_path / "broken.json").write_text('{"fleet": {"source": ')
    (tmp_path / "evil.json").write_text(json.dumps({"fleet": {**RECORD, "source": "../x.mp3"}}))
    for name in ["whisperx.json", "broken.json", "evil.json", "missing.json"]:
        assert read_commit_record(tmp_path / name) is None


def test_failure_records_are_found_by_source(tmp_path):
    record = FailureRecord(source="x/y.mp3", fingerprint=SourceFingerprint(size=1, mtime_ns=1), settings_key="k",
                           reason="no audio stream", failed_at=3.0)
    write_atomic(failure_record_path(tmp_path, "x/y.mp3"), record.model_dump_json())
    (failure_record_path(tmp_path, "junk")).write_text("not json")
    assert read_failures(tmp_path) == {"x/y.mp3": record}


def test_atomic_write_leaves_no_temp_file_and_a_normal_mode(tmp_path):
    target = tmp_path / "deep" / "out.txt"
    write_atomic(target, "hello")
    assert target.read_text() == "hello"
    assert [p.name for p in target.parent.iterdir()] == ["out.txt"]
    assert target.stat().st_mode & 0o644 == 0o644


def test_layout_helpers():
    assert stem_base("a/take.mp3") == "a/take" and stem_base("a/take.mp3.wav") == "a/take.mp3"
    assert output_files("a/take", ("json", "txt", "srt")) == ["a/take.txt", "a/take.srt", "a/take.json"]


def test_resolve_inside_refuses_escapes(tmp_path):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "ok.mp3").write_text("x")
    (root / "out").symlink_to(tmp_path)
    assert resolve_inside(root, "d/ok.mp3") == (root / "d" / "ok.mp3").resolve()
    assert resolve_inside(root, "../etc/passwd") is None
    assert resolve_inside(root, "out/root/d/ok.mp3") is not None  # loops back inside: allowed
    assert resolve_inside(root, "out/elsewhere.mp3") is None


def test_a_fifo_where_a_transcript_should_be_is_no_record_and_never_waited_on(tmp_path):
    import os

    from fleet.state.records import read_commit_record

    os.mkfifo(tmp_path / "a.json")
    assert read_commit_record(tmp_path / "a.json") is None
