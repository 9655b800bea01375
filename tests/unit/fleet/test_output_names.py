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
