"""Outputs the fleet did not write (another tool's subtitles, hand edits, a plain whisperX JSON) are never replaced."""

from __future__ import annotations

import json

import pytest

from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import SourceFingerprint
from fleet.outputs.commit import ForeignOutput
from fleet.state.records import CommitRecord
from worker.job.writers import write_outputs

RESULT = {"segments": [{"text": " Hello there.", "start": 0.5, "end": 1.75}], "language": "en"}
OPTIONS = {"max_line_width": None, "max_line_count": None, "highlight_words": False}
RECORD = CommitRecord(source="a.mp3", fingerprint=SourceFingerprint(size=1, mtime_ns=2), settings_key="k",
                      settings=TranscriptionSettings())  # fmt: skip
FORMATS = ("txt", "srt", "json")


def record_of(dest):
    return CommitRecord.model_validate(json.loads((dest / "a.json").read_text())["fleet"])


def test_another_tools_subtitles_stay_byte_for_byte_and_the_record_says_so(tmp_path):
    # Given Bazarr's a.srt where the fleet would write one
    bazarr = b"1\r\n00:00:00,000 --> 00:00:02,000\r\nFrom another tool\r\n"
    (tmp_path / "a.srt").write_bytes(bazarr)
    # When the fleet writes its outputs
    written = write_outputs(tmp_path, "a", FORMATS, RESULT, RECORD, OPTIONS, lambda: True)
    # Then the srt is untouched, the rest is written, and the record names what it kept
    assert (tmp_path / "a.srt").read_bytes() == bazarr
    assert [p.name for p in written] == ["a.txt", "a.json"]
    assert record_of(tmp_path).kept == ["srt"] and set(record_of(tmp_path).outputs) == {"txt"}
    # And a later run (new settings) still leaves it alone
    write_outputs(tmp_path, "a", FORMATS, RESULT, RECORD, OPTIONS, lambda: True)
    assert (tmp_path / "a.srt").read_bytes() == bazarr and record_of(tmp_path).kept == ["srt"]


def test_a_hand_edited_subtitle_is_the_users_and_an_untouched_one_is_rewritten(tmp_path):
    write_outputs(tmp_path, "a", FORMATS, RESULT, RECORD, OPTIONS, lambda: True)
    (tmp_path / "a.srt").write_text("1\n00:00:00,500 --> 00:00:01,750\nHello there, corrected by hand.\n")
    edited = (tmp_path / "a.srt").read_bytes()
    changed = {**RESULT, "segments": [{"text": " Hello again.", "start": 0.5, "end": 1.75}]}
    write_outputs(tmp_path, "a", FORMATS, changed, RECORD, OPTIONS, lambda: True)
    assert (tmp_path / "a.srt").read_bytes() == edited  # the person's edit survives a new transcript
    assert (tmp_path / "a.txt").read_text() == "Hello again.\n"  # the fleet's own file follows the transcript
    assert record_of(tmp_path).kept == ["srt"]


def test_a_json_the_fleet_did_not_write_stops_the_job_and_nothing_is_written(tmp_path):
    plain_whisperx = json.dumps({"segments": [], "language": "en"}).encode()
    (tmp_path / "a.json").write_bytes(plain_whisperx)
    with pytest.raises(ForeignOutput, match="a.json exists and was not written by whisper-fleet"):
        write_outputs(tmp_path, "a", FORMATS, RESULT, RECORD, OPTIONS, lambda: True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"] and (tmp_path / "a.json").read_bytes() == plain_whisperx


def test_only_the_missing_format_is_written_when_the_rest_is_current(tmp_path):
    write_outputs(tmp_path, "a", FORMATS, RESULT, RECORD, OPTIONS, lambda: True)
    txt_before = (tmp_path / "a.txt").stat().st_mtime_ns
    (tmp_path / "a.srt").unlink()
    write_outputs(tmp_path, "a", ("srt", "json"), RESULT, RECORD, OPTIONS, lambda: True)
    assert (tmp_path / "a.srt").exists() and (tmp_path / "a.txt").stat().st_mtime_ns == txt_before
    assert set(record_of(tmp_path).outputs) == {"txt", "srt"}  # the untouched txt is still known as the fleet's


@pytest.mark.parametrize("kind", ["fifo", "folder", "symlink", "unreadable"])
def test_whatever_sits_at_an_outputs_name_is_kept_unread_and_the_job_goes_on(tmp_path, kind):
    import os

    dest = tmp_path / "dest"
    dest.mkdir()
    srt = dest / "a.srt"
    if kind == "fifo":
        os.mkfifo(srt)  # read blindly, this hangs the job until its time limit, at every delivery
    elif kind == "folder":
        srt.mkdir()
    elif kind == "symlink":
        (tmp_path / "film.mkv").write_bytes(b"\0" * 4096)
        srt.symlink_to(tmp_path / "film.mkv")
    else:
        srt.write_text("mine")
        srt.chmod(0)
    # Twice: the first commit (no record yet) and a rewrite that has the fleet's own record to compare against
    for _ in range(2):
        written = write_outputs(dest, "a", FORMATS, RESULT, RECORD, OPTIONS, lambda: True)
        assert [p.name for p in written] == ["a.txt", "a.json"] and record_of(dest).kept == ["srt"]
    assert srt.is_symlink() if kind == "symlink" else srt.exists()


def test_a_fifo_where_the_json_goes_is_someone_elses_found_at_once(tmp_path):
    import os

    os.mkfifo(tmp_path / "a.json")
    with pytest.raises(ForeignOutput, match="cannot be read"):
        write_outputs(tmp_path, "a", FORMATS, RESULT, RECORD, OPTIONS, lambda: True)


def test_a_record_from_before_output_hashes_vouches_only_for_files_that_still_read_as_written(tmp_path):
    # Given outputs under a record written before the fleet kept their hashes, the srt edited by hand since
    write_outputs(tmp_path, "a", FORMATS, RESULT, RECORD, OPTIONS, lambda: True)
    document = json.loads((tmp_path / "a.json").read_text())
    document["fleet"]["outputs"] = {}
    (tmp_path / "a.json").write_text(json.dumps(document))
    (tmp_path / "a.srt").write_text("1\n00:00:00,500 --> 00:00:01,750\nHello there, edited.\n")
    # When the fleet writes the file again (new settings)
    newer = {**RESULT, "segments": [{"text": " Hello again.", "start": 0.5, "end": 1.75}]}
    write_outputs(tmp_path, "a", FORMATS, newer, RECORD, OPTIONS, lambda: True)
    # Then the hand-edited srt is kept, the untouched txt (what the old JSON renders to) is the fleet's to replace
    assert "edited" in (tmp_path / "a.srt").read_text() and record_of(tmp_path).kept == ["srt"]
    assert (tmp_path / "a.txt").read_text() == "Hello again.\n"
