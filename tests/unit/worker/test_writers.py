"""The output writers: every format, json last, atomic, only while the lease holds, inside the destination."""

from __future__ import annotations

import pytest

from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import SourceFingerprint
from fleet.outputs.commit import LeaseLost, OutputPathError, commit_json
from fleet.state.atomic import remove_temps_of, temp_prefix
from fleet.state.records import CommitRecord
from worker.job.writers import render, write_outputs

RESULT = {"segments": [{"text": " Hello there.", "start": 0.5, "end": 1.75}], "language": "en"}


OPTIONS = {"max_line_width": None, "max_line_count": None, "highlight_words": False}


RECORD = CommitRecord(source="a.mp3", fingerprint=SourceFingerprint(size=1, mtime_ns=2), settings_key="k",
                      settings=TranscriptionSettings())  # fmt: skip


def test_writers_render_every_format():
    assert render(RESULT, "txt", OPTIONS) == "Hello there.\n"
    assert "00:00:00,500 --> 00:00:01,750" in render(RESULT, "srt", OPTIONS)
    assert render(RESULT, "vtt", OPTIONS).startswith("WEBVTT")
    assert render(RESULT, "tsv", OPTIONS).splitlines()[1] == "500\t1750\tHello there."
    assert commit_json(RECORD, RESULT).startswith('{"fleet": {')


def test_outputs_are_written_json_last_with_owner_and_no_temp_left(tmp_path):
    written = write_outputs(tmp_path, "deep/er/a", ("json", "txt", "srt"), RESULT, RECORD, OPTIONS, lambda: True,
                            owner=(4321, 4321))  # fmt: skip
    assert [p.name for p in written] == ["a.txt", "a.srt", "a.json"]
    assert all(p.stat().st_uid == 4321 for p in written)
    assert (tmp_path / "deep").stat().st_uid == 4321 and (tmp_path / "deep" / "er").stat().st_gid == 4321
    assert not list(tmp_path.rglob(".fleet-tmp-*"))


def test_no_output_is_written_once_the_lease_is_lost(tmp_path):
    with pytest.raises(LeaseLost):
        write_outputs(tmp_path, "a", ("txt", "json"), RESULT, RECORD, OPTIONS, lambda: False)
    assert list(tmp_path.iterdir()) == []


def test_leftover_temps_of_exactly_these_outputs_are_removed(tmp_path):
    mine = tmp_path / f"{temp_prefix('take.txt')}abcd1234"
    other_base = tmp_path / f"{temp_prefix('take.txt.txt')}abcd1234"
    mine.touch()
    other_base.touch()
    assert remove_temps_of(tmp_path, ["take.txt"]) == 1
    assert not mine.exists() and other_base.exists()


def test_a_symlink_in_dest_cannot_make_the_worker_write_elsewhere(tmp_path):
    dest, elsewhere = tmp_path / "dest", tmp_path / "elsewhere"
    dest.mkdir()
    elsewhere.mkdir()
    (dest / "evil").symlink_to(elsewhere)
    for base in ("evil/a", "evil/new/deeper/a"):
        with pytest.raises(OutputPathError):
            write_outputs(dest, base, ("txt", "json"), RESULT, RECORD, OPTIONS, lambda: True)
    assert list(elsewhere.iterdir()) == []
