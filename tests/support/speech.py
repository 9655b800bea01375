"""Real speech for tests: espeak-ng sentences, converted by ffmpeg into the formats people have."""

from __future__ import annotations

import subprocess
from pathlib import Path

ENGLISH = {
    "stories/fox.mp3": "The quick brown fox jumps over the lazy dog.",
    "stories/river.m4a": "Every morning I walk to the river and watch the boats.",
    "meetings/budget review.wav": "We need to finish the budget report before the end of the month.",
    "podcasts/ünïcødé 'q'.flac": "Please remember to water the garden while I am away.",
}
FRENCH = "Bonjour tout le monde. Je m'appelle Marie et j'habite à Paris depuis dix ans."
LONG_TEXT = " ".join(
    [
        "This is a long recording that keeps a worker busy for a while.",
        "It talks about the weather, the garden, the river and the boats.",
        "Every sentence adds a few more seconds of speech to the file.",
    ]
    * 6
)


def normalise(text: str) -> str:
    """Lower case, letters, digits and apostrophes only: what a word error rate compares."""
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace() or c == "'").split())


def speak(text: str, target: Path, voice: str = "en", words_per_minute: int = 175) -> Path:
    """espeak-ng to WAV, then ffmpeg to whatever format the file name asks for."""
    target.parent.mkdir(parents=True, exist_ok=True)
    wav = target.with_name(target.name + ".tmp.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(wav), text], check=True)
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), str(target)], check=True)
    wav.unlink()
    return target


def silence(target: Path, seconds: float) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono",
         "-t", str(seconds), str(target)],
        check=True,
    )  # fmt: skip
    return target


def chords(target: Path, seconds: float) -> Path:
    """A synthetic music intro: a pulsing A-major chord with a beat, which pyannote's VAD takes for speech."""
    tone = ("0.25*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*3*t))+0.15*sin(2*PI*277.2*t)+0.15*sin(2*PI*329.6*t)"
            "+0.1*sin(2*PI*440*t)*lt(t-floor(t)\\,0.3)")  # fmt: skip
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"aevalsrc='{tone}':s=16000:d={seconds}",
         str(target)],
        check=True,
    )  # fmt: skip
    return target


def video_without_audio(target: Path) -> Path:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=1:size=64x64:rate=5",
         "-pix_fmt", "yuv420p", str(target)],
        check=True,
    )  # fmt: skip
    return target


def concatenate(parts: list[Path], target: Path) -> Path:
    """One file of the parts in order (each resampled to 16 kHz mono first, so any mix of sources joins)."""
    inputs = [arg for part in parts for arg in ("-i", str(part))]
    resampled = "".join(f"[{i}:a]aresample=16000,aformat=channel_layouts=mono[a{i}];" for i in range(len(parts)))
    joined = "".join(f"[a{i}]" for i in range(len(parts))) + f"concat=n={len(parts)}:v=0:a=1"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *inputs, "-filter_complex", resampled + joined, str(target)],
        check=True,
    )
    return target


def two_language_video(english: Path, german: Path, target: Path) -> Path:
    """A video with two audio tracks: English (tagged eng, the default) and German (tagged ger)."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=duration=2:size=64x64:rate=5",
         "-i", str(english), "-i", str(german), "-map", "0:v", "-map", "1:a", "-map", "2:a", "-c:v", "libx264",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=ger",
         "-disposition:a:0", "default", "-disposition:a:1", "0", str(target)],
        check=True,
    )  # fmt: skip
    return target


def video(audio: Path, target: Path, subtitle: tuple[str, bool] | None = None) -> Path:
    """A small video with `audio` as its one audio track; `subtitle` (language, forced) adds an embedded text subtitle."""
    target.parent.mkdir(parents=True, exist_ok=True)
    inputs = ["-f", "lavfi", "-i", "testsrc=duration=2:size=64x64:rate=5", "-i", str(audio)]
    maps = ["-map", "0:v", "-map", "1:a"]
    if subtitle:
        cues = target.with_name(target.name + ".cues.srt")
        cues.write_text("1\n00:00:00,000 --> 00:00:02,000\nA subtitle that came with the film.\n", encoding="utf-8")
        inputs += ["-i", str(cues)]
        maps += ["-map", "2:s", "-metadata:s:s:0", f"language={subtitle[0]}", "-disposition:s:0",
                 "forced" if subtitle[1] else "default"]  # fmt: skip
        maps += ["-c:s", "mov_text" if target.suffix == ".mp4" else "srt"]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", *inputs, *maps, "-c:v", "libx264", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-metadata:s:a:0", "language=eng", str(target)],
        check=True,
    )  # fmt: skip
    if subtitle:
        cues.unlink()
    return target
