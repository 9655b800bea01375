"""Hallucination loops: what counts as one, and what is left after cutting it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from worker.speech.repetition import Confidence, compression_ratio, cut_loops, find_loop, loop_reason

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


def test_a_repeat_is_a_loop_only_when_the_decoding_doubts_it_too():
    sure, unsure, too_long = Confidence(-0.3, -1.0, 3.0), Confidence(-1.4, -1.0, 3.0), Confidence(-0.2, -1.0, 20.0)
    chant = " No. No. No. No. No. No."
    assert loop_reason(chant, 2.4, sure) is None  # said six times, and the model is sure of it
    assert loop_reason(chant, 2.4, unsure) == "repeats 'No.' x6, avg log probability -1.40 < -1.0"
    assert loop_reason(chant, 2.4, too_long) == "repeats 'No.' x6, 20.0 tokens/s > 12"
    assert loop_reason(chant, 2.4, Confidence(-1.4, None, 3.0)) is None  # WHISPER_LOGPROB_THRESHOLD=none
    # German decoded as Finnish, sure of itself (-0.86) and not compressible enough: no words, so a loop
    dashes = " De Beker öffnitte seinen laden voidaan afgan," + " –" * 14
    assert compression_ratio(dashes) < 2.4 and loop_reason(dashes, 2.4, sure) == "repeats '–' x14"
    # The loops caught before are caught still, however sure the decoding: they compress too well
    for text in (" it's my girl," * 40, " Hello. " + "oh " * 80, " Minä" * 13):
        assert loop_reason(text, 2.4, sure).startswith("compression ratio"), text
