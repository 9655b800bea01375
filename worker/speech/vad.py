"""Voice activity: which stretches of a file hold speech, heard a piece at a time, merged into whisper's windows."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from worker.audio.samples import Audio

# The VAD hears a file this many seconds at a time (38 MB of float32), so its memory does not grow with the
# file; a speech region reaching into a piece's last VAD_PIECE_MARGIN_S is heard again by the next piece
# (longer than the longest region, 30 s, and its padding).
VAD_PIECE_S = 600.0
VAD_PIECE_MARGIN_S = 40.0


def load_vad(method: str, options: dict[str, Any], torch_device: str, load_s: dict[str, float]) -> Any:
    """The VAD whisperX would load, loaded here so its cost shows on its own (importing pyannote.audio is most of it)."""
    import torch

    started = time.perf_counter()
    from whisperx.vads import Pyannote, Silero

    load_s["vad import"] = time.perf_counter() - started
    started = time.perf_counter()
    vad = Silero(**options) if method == "silero" else Pyannote(torch.device(torch_device), token=None, **options)
    load_s["vad model"] = time.perf_counter() - started
    return vad


def speech_spans(asr: Any, audio: Audio) -> list[tuple[float, float]]:
    """whisperX's VAD (`asr.vad_model`) over the file a piece at a time, then its chunk merging over the whole file.

    A speech region that runs into the last VAD_PIECE_MARGIN_S of a piece is left to the next piece,
    which starts where that region starts: each region is found whole, by one piece, as in one pass.
    """
    from whisperx.diarize import Segment
    from whisperx.vads.vad import Vad

    params = asr._vad_params
    regions: list[tuple[float, float]] = []
    start = 0.0
    while start < audio.duration_s:
        end = min(start + VAD_PIECE_S, audio.duration_s)
        found = [(start + first, start + last) for first, last in speech_regions(asr, audio.read(start, end))]
        if end >= audio.duration_s:
            regions.extend(found)
            break
        cut = end - VAD_PIECE_MARGIN_S
        late = [region for region in found if region[1] >= cut]
        following = min([first for first, last in late] + [cut])
        if following <= start:  # one region fills the piece up to its margin: taken as found, the rest follows
            following = late[0][1]
        regions.extend(region for region in found if region[0] < following)
        start = following
    if not regions:
        return []
    segments = [Segment(first, last, "UNKNOWN") for first, last in regions]
    merged = Vad.merge_chunks(segments, params.get("chunk_size", 30), onset=params["vad_onset"], offset=params["vad_offset"])
    return [(chunk["start"], chunk["end"]) for chunk in merged]


def speech_regions(asr: Any, piece: np.ndarray) -> list[tuple[float, float]]:
    """The VAD's speech regions in one piece of audio (seconds from the piece's start), before merging."""
    from whisperx.audio import SAMPLE_RATE
    from whisperx.vads import Pyannote, Vad
    from whisperx.vads.pyannote import Binarize

    vad = asr.vad_model
    params = asr._vad_params
    if piece.shape[0] == 0:
        return []
    if isinstance(vad, Vad) and not isinstance(vad, Pyannote):  # silero: regions at once
        found = vad({"waveform": vad.preprocess_audio(piece), "sample_rate": SAMPLE_RATE})
        return [(segment.start, segment.end) for segment in found]
    # pyannote's scores, binarized as its merge_chunks does it
    scores = vad({"waveform": Pyannote.preprocess_audio(piece), "sample_rate": SAMPLE_RATE})
    binarize = Binarize(max_duration=params.get("chunk_size", 30), onset=params["vad_onset"], offset=params["vad_offset"])
    return [(region.start, region.end) for region in binarize(scores).get_timeline()]
