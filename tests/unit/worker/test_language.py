"""The language vote of the first speech windows."""

from __future__ import annotations

import pytest

from worker.speech.language import vote_language


def test_language_vote_weighs_confident_speech_over_a_flat_guess():
    music = [("<|en|>", 0.43), ("<|nn|>", 0.13), ("<|de|>", 0.01)]
    speech = [("<|de|>", 0.71), ("<|en|>", 0.07), ("<|nn|>", 0.03)]
    guess = vote_language([music, speech], [23.6, 21.5])
    assert guess.language == "de" and guess.probability == pytest.approx(0.43, abs=0.01)
    assert [code for code, _ in guess.candidates] == ["de", "en", "nn"]
    # One window is whisper's own detection: its language and probability as they are
    assert vote_language([speech], [10.0]).probability == 0.71
    # A short greeting in another language does not outvote the talk after it
    assert vote_language([[("<|fr|>", 0.9)], [("<|de|>", 0.8)]], [1.5, 28.0]).language == "de"


def test_the_vote_keeps_every_language_share_so_a_chosen_runner_up_is_paired_with_its_own():
    guess = vote_language([[("<|en|>", 0.8), ("<|nn|>", 0.02), ("<|zh|>", 0.01)]], [3.0])
    assert guess.probability_of("nn") == 0.02 and guess.probability_of("en") == guess.probability == 0.8
    assert guess.probability_of("fr") == 0.0  # never voted: no share, not the winner's
    assert guess.weights == [pytest.approx(2.4)]  # what picks the windows the candidates decode
