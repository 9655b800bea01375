"""Every path under <dest>/.fleet/: the one place that names where fleet state lives."""

from __future__ import annotations

import hashlib
from pathlib import Path

FLEET_DIR = ".fleet"


def fleet_dir(dest: Path) -> Path:
    """The folder for fleet state that people need to see; hidden, so scans skip it."""
    return dest / FLEET_DIR


def failed_dir(dest: Path) -> Path:
    """One failure record per source file that failed permanently."""
    return fleet_dir(dest) / "failed"


def failure_record_path(dest: Path, rel_path: str) -> Path:
    """A failure record's file name is a hash: source names may be long or odd."""
    return failed_dir(dest) / f"{path_digest(rel_path)}.json"


def subtitled_dir(dest: Path) -> Path:
    """One record per video a worker found already subtitled in the language it detected."""
    return fleet_dir(dest) / "subtitled"


def subtitled_record_path(dest: Path, rel_path: str) -> Path:
    return subtitled_dir(dest) / f"{path_digest(rel_path)}.json"


def path_digest(rel_path: str) -> str:
    """A short, fixed-length file name for state kept per source file."""
    return hashlib.sha256(rel_path.encode("utf-8")).hexdigest()[:32]


def delivery_journal_path(dest: Path, rel_path: str) -> Path:
    """Which deliveries of a file began and how each ended: the next delivery learns from it why the last one died."""
    return fleet_dir(dest) / "deliveries" / f"{path_digest(rel_path)}.json"


def workers_dir(dest: Path) -> Path:
    """One heartbeat record per worker."""
    return fleet_dir(dest) / "workers"


def director_dir(dest: Path) -> Path:
    """The director's ledger and last plan."""
    return fleet_dir(dest) / "director"


def last_plan_path(dest: Path) -> Path:
    """The director's last plan (counts, found, ignored): what status and the local run report."""
    return director_dir(dest) / "last-plan.json"


def ledger_path(dest: Path) -> Path:
    """What the director queued and to which queue: a rerun hours later enqueues nothing twice."""
    return director_dir(dest) / "enqueued.json"


def ledger_lock_path(dest: Path) -> Path:
    """Held by a director for a whole round: a second director waits instead of losing entries."""
    return director_dir(dest) / "ledger.lock"


def round_path(dest: Path) -> Path:
    """The files of the current round and how the finished ones ended: the round summary survives a restart."""
    return director_dir(dest) / "round.json"


def planned_settings_path(dest: Path) -> Path:
    """The settings each folder is planned with now: a worker tells a stale message from a current one."""
    return director_dir(dest) / "planned-settings.json"


def embedded_subtitles_cache_path(dest: Path) -> Path:
    """Each probed video's subtitle languages by fingerprint: a round probes only new or changed files."""
    return director_dir(dest) / "embedded-subtitles.json"


def front_door_dir(dest: Path) -> Path:
    """`fleet asr`'s state: uploads kept as FLAC, their jobs, their subtitles (a hidden folder: scans skip it)."""
    return fleet_dir(dest) / "asr"


def front_door_audio_dir(dest: Path) -> Path:
    """The front door's accepted audio, one FLAC per job: the source root of the workers' front-door lane."""
    return front_door_dir(dest) / "audio"


def front_door_results_dir(dest: Path) -> Path:
    """The front door's finished jobs (srt, vtt, txt, tsv and the JSON twin): the lane's destination root."""
    return front_door_dir(dest) / "results"
