"""The language when the model is unsure, and loops, on every real clip we have (issue 21), before and after.

Each clip runs through the worker's pipeline (base model, the defaults, language detected) twice in one process:
"before" with the rules of issue 20 (an unsure detection taken as it is, every repeat a loop), "after" with
today's (unsure detections decoded in the likeliest languages, repeats a loop only when the decoding doubts
them too). Printed per clip: the vote, the language chosen and why, loops re-decoded or cut, and the time.

    .venv/bin/python -m bench.language_loops
"""

from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tests.support import speech
from tests.support.paths import REPO_ROOT

REAL = REPO_ROOT / "tests" / "data" / "real-speech"
FRENCH_GREETING = "Bonjour. Je m'appelle Marie. J'habite à Paris."


def clips(folder: Path) -> list[tuple[str, np.ndarray, str]]:
    """(name, samples, expected language): the real clips, some cut short or spread out with silence."""
    from worker.audio.samples import SAMPLE_RATE, decode_audio

    def real(name: str) -> np.ndarray:
        return decode_audio(REAL / name, 600)

    def silence(seconds: float) -> np.ndarray:
        return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)

    jfk, multilingual, call = real("jfk.flac"), real("multilingual.mp3"), real("diarization/sample.wav")
    german = multilingual[int(42 * SAMPLE_RATE) :]  # the German reading, from its start
    greeting = decode_audio(speech.speak(FRENCH_GREETING, folder / "fr.wav", voice="fr"), 600)
    portuguese = decode_audio(speech.speak("Bom dia. Tudo bem? Até logo.", folder / "pt.wav", voice="pt"), 600)
    no = decode_audio(speech.speak("No. No. No. No. No. No.", folder / "no.wav", words_per_minute=120), 600)
    return [
        ("jfk (real, en)", jfk, "en"),
        ("jfk, first 3 s", jfk[: 3 * SAMPLE_RATE], "en"),
        ("hotwords (real, en)", real("hotwords.mp3"), "en"),
        ("multilingual (real, en then de)", multilingual, "en"),
        ("multilingual, German part", german, "de"),
        ("German part, first 4 s, 20 s silence around",
         np.concatenate([silence(10), german[: 4 * SAMPLE_RATE], silence(10)]), "de"),
        ("call (real, en, 2 speakers)", call, "en"),
        ("call, 'Hello? Hello?' (6.3-8.3 s)", call[int(6.3 * SAMPLE_RATE) : int(8.3 * SAMPLE_RATE)], "en"),
        ("call, 'Hello? Hello?' (6.6-8.2 s)", call[int(6.6 * SAMPLE_RATE) : int(8.2 * SAMPLE_RATE)], "en"),
        ("French greeting, long silences (espeak)",
         np.concatenate([silence(8), greeting, silence(14), greeting, silence(8)]), "fr"),
        ("Portuguese greeting (espeak)", portuguese, "pt"),
        ("'No.' x6, spoken (espeak)", no, "en"),
    ]  # fmt: skip


@contextmanager
def rules_of_issue_20():
    """Unsure detections taken as they are, every repeated phrase a loop: the decoder as it was."""
    from worker.speech import decoding, window_decoder
    from worker.speech.results import LanguageSource, SourceKind

    saved = window_decoder.decode_candidates, decoding.window_loop_reason
    window_decoder.decode_candidates = lambda decoder, encoded, batch, guess, options: (
        guess.language, LanguageSource(SourceKind.DETECTED))
    decoding.window_loop_reason = lambda text, seconds, options: decoding.loop_reason(
        text.text, options.compression_ratio_threshold
    )
    try:
        yield
    finally:
        window_decoder.decode_candidates, decoding.window_loop_reason = saved


def main() -> None:
    from fleet.settings import FleetSettings
    from worker.speech.pipeline import Pipeline

    settings = FleetSettings(source_dir="/nonexistent/source", dest_dir="/nonexistent/dest", whisper_align=False)
    pipeline = Pipeline(settings, threads=2)
    job = settings.transcription()
    rows, right = [], {"before": 0, "after": 0}
    with tempfile.TemporaryDirectory() as scratch:
        for name, samples, expected in clips(Path(scratch)):
            results = {}
            for when in ("before", "after"):
                if when == "before":
                    with rules_of_issue_20():
                        started = time.perf_counter()
                        transcript = pipeline.run(samples, job, lambda *args: None)
                else:
                    started = time.perf_counter()
                    transcript = pipeline.run(samples, job, lambda *args: None)
                results[when] = (transcript, time.perf_counter() - started)
                right[when] += transcript.language == expected
            rows.append((name, expected, results))
    print("| clip | vote | before: language, loops, time | after: language (why), loops, time |")
    print("|---|---|---|---|")
    for name, expected, results in rows:
        (before, before_s), (after, after_s) = results["before"], results["after"]
        vote = f"{before.language_candidates[0][0]} {before.language_candidates[0][1]:.2f}" if before.language_candidates else "-"
        mark = {True: "", False: " (wrong)"}
        print(f"| {name} | {vote} | {before.language}{mark[before.language == expected]}, {loops(before)}, "
              f"{before_s:.1f} s | {after.language}{mark[after.language == expected]} ({after.language_source}), "
              f"{loops(after)}, {after_s:.1f} s |")  # fmt: skip
    print(f"\nlanguage right: before {right['before']}/{len(rows)}, after {right['after']}/{len(rows)}")


def loops(transcript) -> str:  # noqa: ANN001 - a Transcript
    return ", ".join(f"{kind} {count}" for kind, count in transcript.loops.items() if kind != "silent") or "no loops"


if __name__ == "__main__":
    main()
