"""`fleet dlq list | redrive | purge`: what was dead-lettered and why, and sending it back once fixed."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from typing import TextIO

from fleet import exits
from fleet.queue import DeadLetter, JobQueue
from fleet.settings import FleetSettings

# Received dead letters stay hidden this long while the rest are listed, then are shown again.
LIST_HIDE_S = 30


def _path_of(letter: DeadLetter) -> str:
    try:
        return str(json.loads(letter.message.body)["path"])
    except (ValueError, KeyError, TypeError):
        return "(not a valid job message)"


def _all_dead_letters(queue: JobQueue) -> list[DeadLetter]:
    """Every dead letter, each received once (they stay hidden LIST_HIDE_S, so each batch brings new ones)."""
    letters: list[DeadLetter] = []
    while batch := queue.receive_dead_letters(LIST_HIDE_S):
        letters.extend(batch)
    return letters


def run_dlq(settings: FleetSettings, action: str, *, yes: bool = False, out: TextIO = sys.stdout) -> int:
    """List, redrive or purge the dead-letter queue; prints one line per message and a summary line."""
    if action == "purge" and not yes:
        print("fleet: dlq purge drops every dead-lettered message for good: add --yes", file=sys.stderr)
        return exits.BAD_INPUT
    queue = JobQueue.connect(settings.queue_endpoint(), settings.queue_spec())
    queue.ensure()
    if action == "purge":
        count = queue.counts().dead_letter
        queue.purge_dead_letters()
        print(f"dlq: purged about {count} message(s); failure records under .fleet/failed/ stay", file=out)
        return exits.OK
    letters = _all_dead_letters(queue)
    for letter in sorted(letters, key=lambda item: item.dead_lettered_at):
        when = datetime.fromtimestamp(letter.dead_lettered_at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(f"{_path_of(letter)}: {letter.reason} (dead-lettered {when})", file=out)
        queue.settle_dead_letter(letter, redrive=action == "redrive")
    verb = "sent back to the job queue" if action == "redrive" else "dead-lettered"
    print(f"dlq: {len(letters)} message(s) {verb}", file=out)
    return exits.OK
