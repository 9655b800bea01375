"""Output names fit the destination: 255 bytes with the temp suffix, no characters SMB refuses, deterministic."""

from __future__ import annotations

import os
from pathlib import Path

from director.naming import assign_output_bases
from fleet.media.output_names import STEM_MAX, OutputNames, filesystem_type
from fleet.state.atomic import write_atomic

PLAIN, WINDOWS = OutputNames(), OutputNames(windows=True)


def test_ordinary_names_are_untouched():
    assert PLAIN.fit("talks/Q&A: part 1/take 1") == "talks/Q&A: part 1/take 1"


def test_a_name_too_long_with_its_temp_suffix_is_cut_and_marked_deterministically(tmp_path):
    # Given a 250-byte source name, legal on its own disk
    long = "talks/" + "ä" * 125
    fitted = PLAIN.fit(long)
    name = fitted.rpartition("/")[2]
    assert len(name.encode()) <= STEM_MAX and name.startswith("ä" * 100) and name[-9] == "~"
    assert PLAIN.fit(long) == fitted  # the same source always gets the same outputs: the done-check finds them
    assert PLAIN.fit(long[:-1] + "ö") != fitted  # two long names with one prefix stay apart
    # And the longest output with its temp name is accepted by a real filesystem
    (tmp_path / "talks").mkdir()
    write_atomic(tmp_path / f"{fitted}.json", "{}")
    assert os.listdir(tmp_path / "talks") == [f"{name}.json"]


def test_characters_smb_refuses_are_replaced_only_on_such_a_destination():
    assert WINDOWS.fit('Q&A: part 1/what? "x" <y>|z.') == "Q&A_ part 1/what_ _x_ _y__z_"


def test_names_made_equal_by_fitting_are_told_apart_or_skipped_never_merged():
    naming = assign_output_bases(["a:b.mp3", "a?b.mp3"], {}, WINDOWS)
    assert naming.bases["a:b.mp3"] != naming.bases.get("a?b.mp3")
    assert "a?b.mp3" in naming.renamed or "a?b.mp3" in naming.conflicts


def test_the_filesystem_type_comes_from_the_mount_table():
    assert filesystem_type(Path("/proc/self")) == "proc"


def test_a_temp_name_never_outgrows_what_a_name_may_be_and_its_leftovers_are_still_found(tmp_path):
    from fleet.state.atomic import remove_temps_of, temp_prefix, write_atomic

    final = "日" * 79 + ".en.srt"  # a 237-byte title: legal, and its subtitle's name too (244 bytes)
    assert len(temp_prefix(final).encode()) + 8 <= 255 and temp_prefix(final) != temp_prefix("月" + final[1:])
    write_atomic(tmp_path / final, "1\n")  # ENAMETOOLONG before: the temp name was 264 bytes
    assert (tmp_path / final).read_text() == "1\n"
    leftover = tmp_path / (temp_prefix(final) + "abcdefgh")
    leftover.write_text("half")
    assert remove_temps_of(tmp_path, [final]) == 1 and not leftover.exists()


def test_a_subtitle_name_that_cannot_fit_beside_its_video_is_found_before_any_work():
    from fleet.job.identity import TranscriptionSettings
    from fleet.job.messages import SourceFingerprint, TranscriptionJob
    from fleet.media.layout import MediaLayout
    from fleet.outputs.beside import beside_name_problem

    def job(name: str) -> TranscriptionJob:
        return TranscriptionJob(path=f"Films/{name}", output_base="x", fingerprint=SourceFingerprint(size=1, mtime_ns=2),
                                settings=TranscriptionSettings(media=MediaLayout()), enqueued_at=1.0)  # fmt: skip

    assert beside_name_problem(job("日" * 79 + ".mkv")) is None
    problem = beside_name_problem(job("日" * 83 + ".mkv"))  # 249 bytes: `.haw.srt` makes 257
    assert problem is not None and "257 bytes" in problem and "in Films" in problem
