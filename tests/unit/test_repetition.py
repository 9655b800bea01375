"""Hallucination loops: what counts as one, and what is left after cutting it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from worker.speech.repetition import compression_ratio, cut_loops, find_loop, loop_reason

JFK = " And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."


def test_loops_seen_on_noisy_radio_speech_are_found():
    assert find_loop(" it's my girl," * 40).describe() == "\"it's my girl,\" x40"
    assert find_loop(" Hello. " + "oh " * 80).describe() == "'oh' x80"
    assert loop_reason(" I've got a little bit of helmet in C1." * 17, 2.4).startswith("repeats \"I've got a little")
    assert loop_reason(" Minä" * 13, None) == "repeats 'Minä' x13"


def test_people_repeating_themselves_a_little_are_not_loops():
    for text in (JFK, " No, no, no, no, I said.", " Thank you, thank you, thank you.", " Ha ha ha ha."):
        assert loop_reason(text, 2.4) is None, text


def test_a_text_that_compresses_too_well_is_a_loop_even_without_back_to_back_repeats():
    text = " one two three four five six seven eight nine, one two three four five six seven eight ten," * 6
    assert find_loop(text) is None and compression_ratio(text) > 2.4
    assert loop_reason(text, 2.4).startswith("compression ratio") and loop_reason(text, None) is None


def test_cutting_keeps_one_saying_and_the_speech_around_it():
    text, cuts = cut_loops(" Hello there. " + "oh " * 80 + "and then we went home.")
    assert text == " Hello there. oh and then we went home." and cuts == ["'oh' x80"]
    assert cut_loops(JFK) == (JFK, [])


@given(st.lists(st.sampled_from(["a", "b", "cat", "dog", "sat"]), max_size=60))
def test_cutting_never_leaves_a_loop_and_never_adds_words(words):
    text = " " + " ".join(words)
    cut, _ = cut_loops(text)
    assert find_loop(cut) is None
    assert len(cut.split()) <= len(words)
