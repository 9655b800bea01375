"""The speech models and what runs them: windows, decoding, repetition, word timings, alignment, speakers."""

import os

# pyannote 4 (whisperX's VAD and its diarization pipeline) reports usage to its authors unless this is set
# before it is first imported: never from a home server. Here, because every model of the worker loads below.
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")
