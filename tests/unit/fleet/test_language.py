"""The core's copy of whisper's language table is whisper's table, and names become codes."""

from __future__ import annotations

import pytest

from fleet.language import ALIASES, LANGUAGES, language_code


def test_the_copy_equals_whispers_own_table():
    from whisperx.utils import LANGUAGES as WHISPER_LANGUAGES
    from whisperx.utils import TO_LANGUAGE_CODE

    assert WHISPER_LANGUAGES == LANGUAGES
    assert {**{name: code for code, name in LANGUAGES.items()}, **ALIASES} == TO_LANGUAGE_CODE


@pytest.mark.parametrize(("said", "code"), [("de", "de"), ("DE", "de"), ("German", "de"), (" castilian ", "es"), ("yue", "yue")])
def test_codes_and_names_become_codes(said, code):
    assert language_code(said) == code


def test_an_unknown_language_is_one_line():
    with pytest.raises(ValueError, match="unknown language 'Deutsch-ish': use a code like 'de' or a name like 'German'"):
        language_code("Deutsch-ish")
