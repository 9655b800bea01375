"""Scanning the source tree: media only, hidden and escaping entries ignored, odd names kept."""

from __future__ import annotations

import os

import pytest

from director.scan import SourceError, scan_sources


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_finds_media_case_insensitively_and_ignores_the_rest(tmp_path):
    # Given a messy tree
    for name in ["a.MP3", "sub/b.wav", "sub/deeper/c.Mkv", "sub/notes.txt", "cover.jpg", "noext"]:
        touch(tmp_path / name)
    touch(tmp_path / ".hidden.mp3")
    touch(tmp_path / ".stfolder" / "x.mp3")
    # When it is scanned
    result = scan_sources(tmp_path)
    # Then only media is listed, sorted, with size and mtime
    assert [f.rel for f in result.files] == ["a.MP3", "sub/b.wav", "sub/deeper/c.Mkv"]
    assert result.files[0].size == 1
    assert result.files[0].mtime_ns == os.stat(tmp_path / "a.MP3").st_mtime_ns
    assert result.ignored == {"not media": 3, "hidden": 2}


def test_odd_names_survive(tmp_path):
    names = ["with space.mp3", "ünïcødé/日本.flac", "quote's \"q\".m4a", "-leading-dash.mp3"]
    for name in names:
        touch(tmp_path / name)
    assert sorted(f.rel for f in scan_sources(tmp_path).files) == sorted(names)


def test_symlinks_out_of_the_root_are_ignored_with_a_warning(tmp_path):
    outside = touch(tmp_path / "outside" / "secret.mp3")
    root = tmp_path / "root"
    touch(root / "real.mp3")
    (root / "escape.mp3").symlink_to(outside)
    (root / "escape-dir").symlink_to(outside.parent)
    (root / "inside.mp3").symlink_to(root / "real.mp3")
    result = scan_sources(root)
    assert [f.rel for f in result.files] == ["inside.mp3", "real.mp3"]
    assert result.ignored["symlink outside source"] == 2
    assert any("escape.mp3" in w for w in result.warnings)


def test_symlinked_folders_inside_the_root_are_not_scanned_twice(tmp_path):
    touch(tmp_path / "real" / "a.mp3")
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    (tmp_path / "real" / "loop").symlink_to(tmp_path)
    result = scan_sources(tmp_path)
    assert [f.rel for f in result.files] == ["real/a.mp3"]
    assert result.ignored["symlinked folder"] == 2


def test_dest_inside_source_is_not_scanned(tmp_path):
    touch(tmp_path / "a.mp3")
    touch(tmp_path / "transcripts" / "a.mp3.wav")
    assert [f.rel for f in scan_sources(tmp_path, exclude=tmp_path / "transcripts").files] == ["a.mp3"]


def test_control_characters_in_names_are_ignored(tmp_path):
    touch(tmp_path / "bad\nname.mp3")
    result = scan_sources(tmp_path)
    assert result.files == [] and result.ignored["unusable name"] == 1


@pytest.mark.parametrize("make", ["missing", "file"])
def test_unusable_root_is_one_clear_error(tmp_path, make):
    root = tmp_path / "src"
    if make == "file":
        root.write_text("not a folder")
    with pytest.raises(SourceError, match=str(root)):
        scan_sources(root)
