"""The output-naming rule: every source gets its own output base, deterministically."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from director.naming import assign_output_bases

names = st.lists(
    st.tuples(st.sampled_from(["", "a/", "A/", "a/b/"]), st.sampled_from(["take", "Take", "take.mp3", "x"]),
              st.sampled_from(["mp3", "wav", "MP3", "flac"])),
    max_size=12,
).map(lambda parts: sorted({f"{d}{n}.{e}" for d, n, e in parts}))


def test_lonely_source_keeps_its_stem():
    naming = assign_output_bases(["talks/ep1.mp3"], owners={})
    assert naming.bases == {"talks/ep1.mp3": "talks/ep1"}
    assert not naming.renamed and not naming.conflicts


def test_same_stem_in_one_folder_uses_full_names_and_says_so():
    naming = assign_output_bases(["take.mp3", "take.wav", "other/take.mp3"], owners={})
    assert naming.bases == {"take.mp3": "take.mp3", "take.wav": "take.wav", "other/take.mp3": "other/take"}
    assert set(naming.renamed) == {"take.mp3", "take.wav"}
    assert "take.wav" in naming.renamed["take.mp3"]


def test_the_source_that_already_owns_the_stem_keeps_it():
    # Given take.mp3 transcribed to take.* earlier, and take.wav added since
    naming = assign_output_bases(["take.mp3", "take.wav"], owners={"take": "take.mp3"})
    # Then the existing transcripts do not move
    assert naming.bases == {"take.mp3": "take", "take.wav": "take.wav"}


def test_case_only_clash_counts_as_a_clash():
    naming = assign_output_bases(["Take.mp3", "take.wav"], owners={})
    assert naming.bases == {"Take.mp3": "Take.mp3", "take.wav": "take.wav"}


def test_full_name_clashing_with_another_stem_is_resolved():
    # take.mp3 falls back to its full name, which is the stem of take.mp3.wav
    naming = assign_output_bases(["take.mp3", "take.wav", "take.mp3.wav"], owners={})
    assert len(set(b.casefold() for b in naming.bases.values())) == len(naming.bases)
    assert not naming.conflicts


def test_names_equal_but_for_case_cannot_both_be_written():
    naming = assign_output_bases(["TAKE.MP3", "take.mp3"], owners={})
    assert naming.conflicts == {"take.mp3": "output name 'take.mp3' clashes with TAKE.MP3"}
    assert naming.bases == {"TAKE.MP3": "TAKE.MP3"}


@given(names)
def test_bases_are_unique_ignoring_case_and_every_source_is_accounted_for(sources):
    naming = assign_output_bases(sources, owners={})
    bases = [b.casefold() for b in naming.bases.values()]
    assert len(bases) == len(set(bases))
    assert set(naming.bases) | set(naming.conflicts) == set(sources)
    assert not set(naming.bases) & set(naming.conflicts)


@given(names)
def test_naming_ignores_input_order(sources):
    assert assign_output_bases(sources, {}).bases == assign_output_bases(list(reversed(sources)), {}).bases


@given(names)
def test_outputs_stay_in_the_source_folder(sources):
    for rel, base in assign_output_bases(sources, {}).bases.items():
        assert base.rpartition("/")[0] == rel.rpartition("/")[0]
