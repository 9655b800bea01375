"""`fleet subtitles list|remove`: exactly the subtitles the fleet wrote beside videos, hash verified, dry run first."""

from __future__ import annotations

import os
import subprocess
import sys

from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import SourceFingerprint
from fleet.media.layout import MediaLayout
from fleet.outputs.commit import BesideVideo
from fleet.state.records import CommitRecord
from tests.support.paths import REPO_ROOT
from worker.job.writers import write_outputs

RESULT = {"segments": [{"text": " Hello there.", "start": 0.5, "end": 1.75}], "language": "en"}
OPTIONS = {"max_line_width": None, "max_line_count": None, "highlight_words": False}
BAZARR = "1\n00:00:00,000 --> 00:00:02,000\nBazarr's\n"


def fleet(*args: str, source, dest) -> subprocess.CompletedProcess:  # noqa: ANN001
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLEET_", "WHISPER_"))}
    env.update({"FLEET_SOURCE_DIR": str(source), "FLEET_DEST_DIR": str(dest), "FLEET_LOG_FORMAT": "json"})
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=60)  # fmt: skip


def test_leaving_the_media_layout_removes_exactly_the_fleets_own_subtitles_after_a_dry_run(tmp_path):
    # Given three films: one with the fleet's subtitle, one whose fleet subtitle was edited since, one with Bazarr's
    source, dest = tmp_path / "media", tmp_path / "transcripts"
    (source / "Films").mkdir(parents=True)
    for name in ("Ours", "Edited", "Other"):
        (source / "Films" / f"{name}.mkv").write_bytes(b"v")
        record = CommitRecord(source=f"Films/{name}.mkv", fingerprint=SourceFingerprint(size=1, mtime_ns=2), settings_key="k",
                              settings=TranscriptionSettings(media=MediaLayout()))  # fmt: skip
        if name == "Other":
            (source / "Films" / "Other.en.srt").write_text(BAZARR)
        beside = BesideVideo(source, {"srt": source / "Films" / f"{name}.en.srt"})
        write_outputs(dest, f"Films/{name}", ("srt", "json"), RESULT, record, OPTIONS, lambda: True, None, beside)
    (source / "Films" / "Edited.en.srt").write_text("1\n00:00:00,500 --> 00:00:01,750\nHello there, fixed by hand.\n")
    # When the user lists them, then asks to remove them without confirming
    listed = fleet("subtitles", "list", source=source, dest=dest)
    dry = fleet("subtitles", "remove", source=source, dest=dest)
    # Then the list names the fleet's own and the edited one (Bazarr's is no record's), and the dry run removes nothing
    assert listed.returncode == 0 and listed.stdout.splitlines() == [
        "edited  Films/Edited.en.srt",
        "fleet   Films/Ours.en.srt",
        "1 subtitle(s) written by the fleet beside videos; 1 edited since it was written: kept",
    ]
    assert dry.returncode == 0 and dry.stdout.splitlines()[-1].startswith("would remove 1 subtitle(s)")
    assert (source / "Films" / "Ours.en.srt").exists()
    # And with --yes exactly the fleet's own unedited subtitle goes
    removed = fleet("subtitles", "remove", "--yes", source=source, dest=dest)
    assert removed.returncode == 0 and removed.stdout.splitlines()[-1].startswith("removed 1 subtitle(s)")
    assert sorted(p.name for p in (source / "Films").iterdir()) == ["Edited.en.srt", "Edited.mkv", "Other.en.srt", "Other.mkv",
                                                                    "Ours.mkv"]  # fmt: skip
    assert (source / "Films" / "Other.en.srt").read_text() == BAZARR
