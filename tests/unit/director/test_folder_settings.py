"""Per-folder settings files: inheritance from the root down, and one-line errors naming file and line."""

from __future__ import annotations

import os

import pytest

from director.folder_settings import (
    FOLDER_SETTINGS_NAME,
    FolderSettings,
    FolderSettingsError,
    apply_folder_file,
    read_folder_file,
)
from fleet.job.identity import TranscriptionSettings

BASE = TranscriptionSettings()


def write(root, folder: str, text: str) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / FOLDER_SETTINGS_NAME).write_text(text)


def test_nearer_files_override_farther_ones_key_by_key(tmp_path):
    write(tmp_path, "", 'language = "de"\ninitial_prompt = "Energiewende"\n')
    write(tmp_path, "talks/en", 'language = "en"\ntask = "transcribe"\n')
    folders = FolderSettings(BASE, tmp_path, {"", "talks/en"})
    root, nested, between = folders.for_source("a.mp3"), folders.for_source("talks/en/b.mp3"), folders.for_source("talks/c.mp3")
    assert root.language == "de" and root.decoding.initial_prompt == "Energiewende"
    assert nested.language == "en" and nested.decoding.initial_prompt == "Energiewende"
    assert between is root  # one settings object per distinct folder chain: its key is hashed once
    assert folders.errors() == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('language = "de"\nlanguage = "fr"\n', "x/.whisper-fleet.toml: not valid TOML: Cannot overwrite a value (at line 2, column 16)"),  # noqa: E501
        ('\n\ntask = "summarise"\n', "x/.whisper-fleet.toml: line 3: task: Input should be 'transcribe' or 'translate'"),
        ("hotwords = 3\n", "x/.whisper-fleet.toml: line 1: hotwords must be a string in quotes"),
        ('\nlanguage = "Klingon"\n', "x/.whisper-fleet.toml: line 2: language: unknown language 'Klingon': "
                                    "use a code like 'de' or a name like 'German'"),  # fmt: skip
        (f'initial_prompt = "{"word " * 500}"\n', "x/.whisper-fleet.toml: line 1: initial_prompt: String should have "
                                                  "at most 2000 characters"),  # fmt: skip
    ],
)
def test_an_unusable_file_is_one_line_naming_file_and_line(text, message):
    with pytest.raises(FolderSettingsError) as caught:
        apply_folder_file(BASE, text, "x/.whisper-fleet.toml")
    assert str(caught.value) == message


def test_a_language_may_be_named_as_people_say_it():
    assert apply_folder_file(BASE, 'language = "German"\nfallback_language = "French"\n', "x").language == "de"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path, outside: os.mkfifo(path), "not a regular file: not read"),  # would hang a plain read
        (lambda path, outside: path.symlink_to("/dev/zero"), "symlink that leaves the source folder"),
        (lambda path, outside: path.symlink_to(outside), "symlink that leaves the source folder"),
        (lambda path, outside: path.write_bytes(b"#" * 70_000), "70000 bytes, more than a settings file needs"),
    ],
)
def test_only_a_small_regular_file_inside_the_source_is_read(tmp_path, make, message):
    source = tmp_path / "source"
    (source / "x").mkdir(parents=True)
    outside = tmp_path / "secret.toml"
    outside.write_text('language = "de"\n')
    make(source / "x" / FOLDER_SETTINGS_NAME, outside)
    with pytest.raises(FolderSettingsError, match=message):
        read_folder_file(source, f"x/{FOLDER_SETTINGS_NAME}")


def test_a_bad_file_stops_its_folder_and_the_folders_below_but_not_its_siblings(tmp_path):
    write(tmp_path, "bad", "language = \n")
    folders = FolderSettings(BASE, tmp_path, {"bad"})
    assert isinstance(folders.for_source("bad/deeper/a.mp3"), FolderSettingsError)
    assert folders.for_source("good/b.mp3") is BASE
    assert [str(e).split(":")[0] for e in folders.errors()] == ["bad/.whisper-fleet.toml"]
