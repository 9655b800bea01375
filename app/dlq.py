"""`fleet dlq list | redrive | purge`: what was dead-lettered and why, sending it back once fixed, dropping it.

Every command walks the whole dead-letter queue once: in a FIFO queue a received message hides the rest of
its group, so each letter seen is moved behind the others (or dropped), and the walk ends when only its own
moved copies are left. It ends on any queue size, however long it takes, and sees every message.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import TextIO

from fleet.process import exits
from fleet.settings import FleetSettings
from fleet.transport.queue import DeadLetter, JobQueue
from fleet.transport.sqs import SqsQueue

# A letter this walk has moved stays hidden this long while the walk goes on (seen again only by a slower walk).
WALK_HIDE_S = 900


@dataclass(frozen=True)
class LetterFilter:
    """Which dead letters a redrive or purge acts on: a reason containing `reason`, a path matching `path`."""

    reason: str = ""
    path: str = ""  # a glob on the file's path (relative to the source), or a folder

    @property
    def everything(self) -> bool:
        return not self.reason and not self.path

    def matches(self, letter: DeadLetter) -> bool:
        if self.reason and self.reason.lower() not in letter.reason.lower():
            return False
        if not self.path:
            return True
        path = job_path(letter)
        folder = self.path.rstrip("/") + "/"
        return path is not None and (fnmatchcase(path, self.path) or path.startswith(folder))


@dataclass
class Walk:
    """What one walk saw: each letter once, in the order received, and the id of the copy kept of each."""

    seen: list[DeadLetter] = field(default_factory=list)
    copies: dict[str, str] = field(default_factory=dict)  # original message id -> its copy's
    dropped: list[DeadLetter] = field(default_factory=list)


def job_path(letter: DeadLetter) -> str | None:
    """The source path a dead letter is about; None for a message that is not a job."""
    try:
        path = json.loads(letter.message.body)["path"]
    except (ValueError, KeyError, TypeError):
        return None
    return path if isinstance(path, str) else None


def walk_dead_letters(queue: JobQueue, drop: Callable[[DeadLetter], bool] = lambda letter: False) -> Walk:
    """Every dead letter once: those `drop` picks are deleted, the others moved behind the rest, then shown again."""
    listing = uuid.uuid4().hex[:12]
    walk = Walk()
    held: dict[str, DeadLetter] = {}  # this walk's own copies, hidden until it ends
    handled: set[str] = set()  # originals moved or dropped: one whose delete came too late shows up again
    while batch := queue.receive_dead_letters(WALK_HIDE_S):
        for letter in batch:
            message_id = letter.message.message_id
            if letter.listing == listing:
                held[message_id] = letter
                continue
            if message_id in handled:
                queue.forget_dead_letter(letter)
                continue
            handled.add(message_id)
            walk.seen.append(letter)
            if drop(letter):
                queue.forget_dead_letter(letter)
                walk.dropped.append(letter)
            else:
                walk.copies[message_id] = queue.requeue_dead_letter(letter, listing)
    for letter in held.values():
        queue.release_dead_letter(letter)
    return walk


def describe(letter: DeadLetter) -> str:
    when = datetime.fromtimestamp(letter.dead_lettered_at, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{job_path(letter) or '(not a valid job message)'}: {letter.reason} (dead-lettered {when})"


def run_dlq(settings: FleetSettings, action: str, *, yes: bool = False, chosen: LetterFilter = LetterFilter(),
            out: TextIO = sys.stdout) -> int:  # fmt: skip
    """List, redrive or purge the dead-letter queue; prints one line per message and a summary line."""
    if action == "purge" and not yes:
        print("fleet: dlq purge drops dead-lettered messages for good: add --yes", file=sys.stderr)
        return exits.BAD_INPUT
    queue = SqsQueue.connect(settings.queue_endpoint(), settings.queue_spec())
    queue.ensure()
    if action == "purge" and chosen.everything:
        count = queue.counts().dead_letter
        queue.purge_dead_letters()
        print(f"dlq: purged about {count} message(s); failure records under .fleet/failed/ stay", file=out)
        return exits.OK
    if action == "purge":
        walk = walk_dead_letters(queue, drop=chosen.matches)
        for letter in sorted(walk.dropped, key=lambda item: item.dead_lettered_at):
            print(describe(letter), file=out)
        print(f"dlq: purged {len(walk.dropped)} of {len(walk.seen)} message(s)", file=out)
        return exits.OK
    walk = walk_dead_letters(queue)
    picked = [letter for letter in walk.seen if chosen.matches(letter)]
    for letter in sorted(picked, key=lambda item: item.dead_lettered_at):
        print(describe(letter), file=out)
    if action == "list":
        print(f"dlq: {len(picked)} message(s) dead-lettered" + ("" if chosen.everything else f" of {len(walk.seen)}"), file=out)
        return exits.OK
    return _redrive(settings, queue, walk, picked, out)


def _redrive(settings: FleetSettings, queue: JobQueue, walk: Walk, picked: list[DeadLetter], out: TextIO) -> int:
    """The picked files planned again by the director with today's settings, then their dead letters dropped.

    Not the old bodies: a message carries the settings of its day (maybe weeks ago), and the file may be done,
    renamed or gone since. A dead letter leaves only once the director has queued its file (or found it done).
    """
    from director.main import run_director

    jobs = [letter for letter in picked if job_path(letter) is not None]
    for letter in picked:
        if job_path(letter) is None:
            print(f"dlq: {letter.message.message_id} is not a job message and stays (purge it)", file=out)
    paths = frozenset(str(job_path(letter)) for letter in jobs)
    if not paths:
        print("dlq: 0 message(s) sent back to the job queue", file=out)
        return exits.OK
    run = run_director(settings, redrive=paths, out=out)
    if run.exit_code not in (exits.OK, exits.BAD_INPUT):  # BAD_INPUT: a folder's settings file, said above
        print(f"dlq: the director could not plan the files (exit {run.exit_code}); the dead letters stay", file=out)
        return run.exit_code
    sent_back = {walk.copies[letter.message.message_id] for letter in jobs if job_path(letter) in run.redriven}
    walk_dead_letters(queue, drop=lambda letter: letter.message.message_id in sent_back)
    for letter in jobs:
        if job_path(letter) not in run.redriven:
            print(f"dlq: {job_path(letter)} was not queued again (see the plan above) and stays", file=out)
    print(f"dlq: {len(sent_back)} message(s) sent back to the job queue, planned with today's settings", file=out)
    return run.exit_code
