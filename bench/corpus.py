"""A benchmark corpus: espeak-ng stories of 15-60 s in a mix of formats (built once, cached)."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

SENTENCES = [
    "Once upon a time a small fox lived at the edge of a quiet forest.",
    "Every morning she walked down to the river to watch the boats go by.",
    "The old miller told stories about storms that came from the mountains.",
    "Children gathered in the square to hear the music of the travelling band.",
    "In the evening the lights of the harbour shone across the calm water.",
    "The baker opened his shop before sunrise and the whole street smelled of bread.",
    "A letter arrived from a distant city with news of a wedding in the spring.",
    "The teacher explained how the moon pulls the tides twice every day.",
    "They packed sandwiches, a map and a warm blanket for the long journey.",
    "At the top of the hill the wind was strong and the view was wonderful.",
]
FORMATS = ("mp3", "wav", "m4a", "flac", "ogg")


def build_corpus(root: Path, files: int = 16, seed: int = 7) -> tuple[Path, float]:
    """(folder, total audio seconds); stories of 4-14 sentences, i.e. roughly 15-60 s each."""
    marker = root / f".corpus-{files}-{seed}.json"
    if marker.exists():
        return root / "audio", json.loads(marker.read_text())["seconds"]
    rng = random.Random(seed)
    folder = root / "audio"
    folder.mkdir(parents=True, exist_ok=True)
    total = 0.0
    for i in range(files):
        text = " ".join(rng.choice(SENTENCES) for _ in range(rng.randint(4, 14)))
        wav = folder / f".story-{i:02d}.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(wav), text], check=True)
        target = folder / f"story {i:02d}.{FORMATS[i % len(FORMATS)]}"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), str(target)], check=True)
        wav.unlink()
        total += duration_s(target)
    marker.write_text(json.dumps({"seconds": total}))
    return folder, total


def duration_s(path: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(out.stdout.strip())
