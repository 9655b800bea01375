"""A benchmark corpus: espeak-ng stories of 15-60 s in a mix of formats (built once, cached)."""

from __future__ import annotations

import json
import random
import shutil
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


# The same little story in each language espeak-ng speaks well enough for whisper to follow (issue 12).
STORIES = {
    "en": SENTENCES[:5],
    "de": [
        "Es war einmal ein kleiner Fuchs, der am Rande eines ruhigen Waldes lebte.",
        "Jeden Morgen ging sie zum Fluss hinunter, um die Boote vorbeifahren zu sehen.",
        "Der alte Müller erzählte Geschichten über Stürme, die aus den Bergen kamen.",
        "Am Abend leuchteten die Lichter des Hafens über dem ruhigen Wasser.",
        "Der Bäcker öffnete seinen Laden vor Sonnenaufgang, und die ganze Straße roch nach Brot.",
    ],
    "fr": [
        "Il était une fois un petit renard qui vivait au bord d'une forêt tranquille.",
        "Chaque matin, elle descendait à la rivière pour regarder passer les bateaux.",
        "Le vieux meunier racontait des histoires de tempêtes venues des montagnes.",
        "Le soir, les lumières du port brillaient sur l'eau calme.",
        "Le boulanger ouvrait sa boutique avant le lever du soleil et toute la rue sentait le pain.",
    ],
    "es": [
        "Había una vez un pequeño zorro que vivía al borde de un bosque tranquilo.",
        "Cada mañana bajaba al río para ver pasar los barcos.",
        "El viejo molinero contaba historias sobre tormentas que venían de las montañas.",
        "Por la noche, las luces del puerto brillaban sobre el agua tranquila.",
        "El panadero abría su tienda antes del amanecer y toda la calle olía a pan.",
    ],
    "it": [
        "C'era una volta una piccola volpe che viveva ai margini di un bosco tranquillo.",
        "Ogni mattina scendeva al fiume per guardare passare le barche.",
        "Il vecchio mugnaio raccontava storie di tempeste che venivano dalle montagne.",
        "La sera le luci del porto brillavano sull'acqua calma.",
        "Il fornaio apriva il negozio prima dell'alba e tutta la strada profumava di pane.",
    ],
    "nl": [
        "Er was eens een kleine vos die aan de rand van een rustig bos woonde.",
        "Elke ochtend liep ze naar de rivier om de boten voorbij te zien varen.",
        "De oude molenaar vertelde verhalen over stormen die uit de bergen kwamen.",
        "In de avond schenen de lichten van de haven over het kalme water.",
        "De bakker opende zijn winkel voor zonsopgang en de hele straat rook naar brood.",
    ],
    "pt": [
        "Era uma vez uma pequena raposa que vivia na beira de uma floresta tranquila.",
        "Todas as manhãs ela descia ao rio para ver os barcos passarem.",
        "O velho moleiro contava histórias sobre tempestades que vinham das montanhas.",
        "À noite, as luzes do porto brilhavam sobre a água calma.",
        "O padeiro abria a loja antes do nascer do sol e a rua inteira cheirava a pão.",
    ],
}
REAL_SPEECH = {  # tests/data/real-speech: the language, and the reference where the whole text is known
    "jfk.flac": ("en", "And so my fellow Americans, ask not what your country can do for you, "
                       "ask what you can do for your country."),
    "hotwords.mp3": ("en", None),
    "multilingual.mp3": ("en", None),
}  # fmt: skip


def build_languages_corpus(root: Path, real_speech: Path) -> tuple[Path, float, dict[str, tuple[str, str | None]]]:
    """(folder, audio seconds, {file: (language, reference or None)}): real speech plus espeak-ng in seven languages.

    Each language gets a short story (its five sentences) and a long one (them, shuffled, twice).
    """
    folder = root / "audio"
    manifest_path = root / ".languages-corpus.json"
    if manifest_path.exists():
        saved = json.loads(manifest_path.read_text())
        return folder, saved["seconds"], {k: tuple(v) for k, v in saved["files"].items()}
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(12)
    files: dict[str, tuple[str, str | None]] = {}
    for name, entry in REAL_SPEECH.items():
        shutil.copyfile(real_speech / name, folder / name)
        files[name] = entry
    for i, (language, sentences) in enumerate(STORIES.items()):
        long_story = rng.sample(sentences, len(sentences)) + rng.sample(sentences, len(sentences))
        for kind, text in (("short", " ".join(sentences)), ("long", " ".join(long_story))):
            wav = folder / f".{language}-{kind}.wav"
            subprocess.run(["espeak-ng", "-v", language, "-s", "150", "-w", str(wav), text], check=True)
            target = folder / f"{language} {kind}.{FORMATS[i % len(FORMATS)]}"
            subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(wav), str(target)], check=True)
            wav.unlink()
            files[target.name] = (language, text)
    seconds = sum(duration_s(folder / name) for name in files)
    manifest_path.write_text(json.dumps({"seconds": seconds, "files": files}))
    return folder, seconds, files
