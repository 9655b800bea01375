"""One message when a round's queued work is finished: "whisper-fleet: 12 new transcripts, 1 failed".

The director queues files and never hears from the workers; what tells it a file is finished is its own next
plan (done, failed before, subtitled, gone). The files queued and not finished yet are kept in
`.fleet/director/round.json` with the outcomes so far, so a restart of the director loses nothing; when no
queued file is left, the message goes out (FLEET_NOTIFY_URLS) and the round starts afresh.
"""

from __future__ import annotations

from pathlib import Path

import structlog
from pydantic import BaseModel, Field, ValidationError

from director.plan import Action, Plan
from fleet.job.outcome import Outcome
from fleet.process.notify import Notifier
from fleet.state.atomic import write_atomic
from fleet.state.paths import round_path

log = structlog.get_logger()
LISTED_FAILURES = 10
# How a round's file ended, in the workers' words where they mean the same; the director's own otherwise.
SKIPPED, GONE = "skipped", "gone"
FINISHED = {Action.DONE: Outcome.TRANSCRIBED, Action.FAILED: Outcome.FAILED, Action.SUBTITLED: Outcome.SUBTITLED,
            Action.FOREIGN: SKIPPED, Action.SKIPPED: SKIPPED}  # fmt: skip


class RoundState(BaseModel):
    """Files queued and not finished (path -> when queued), and how the finished ones ended (path -> [outcome, why])."""

    waiting: dict[str, float] = Field(default_factory=dict)
    finished: dict[str, tuple[str, str]] = Field(default_factory=dict)


def follow_round(plan: Plan, sent: set[str], dest: Path, notify_urls: tuple[str, ...], now: float) -> str | None:
    """Update the round with this plan; when its last queued file is finished, send and return the summary title."""
    if not notify_urls:
        return None
    state = _load(dest)
    decisions = {decision.source.rel: decision for decision in plan.decisions}
    for decision in plan.of(Action.ENQUEUE):
        if decision.dedup_id in sent:
            state.waiting.setdefault(decision.source.rel, now)
    for rel in list(state.waiting):
        decision = decisions.get(rel)
        outcome = FINISHED.get(decision.action) if decision else GONE
        if outcome is not None:
            state.finished[rel] = (outcome, decision.reason if decision and outcome != Outcome.TRANSCRIBED else "")
            del state.waiting[rel]
    title = None
    if not state.waiting and state.finished:
        title, body = summary_message(state.finished)
        notifier = Notifier(notify_urls)
        notifier.message(title, body)
        notifier.close()
        log.info("round finished", summary=title)
        state = RoundState()
    write_atomic(round_path(dest), state.model_dump_json())
    return title


def summary_message(finished: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """("whisper-fleet: 12 new transcripts, 1 failed", one line per failure and the other counts)."""
    counts: dict[str, int] = {}
    for outcome, _ in finished.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    transcribed = counts.get(Outcome.TRANSCRIBED, 0)
    parts = [f"{transcribed} new transcript{'s' if transcribed != 1 else ''}"]
    parts += [f"{counts[kind]} {kind}" for kind in (Outcome.FAILED, Outcome.SUBTITLED, SKIPPED, GONE) if counts.get(kind)]
    failures = sorted((rel, why) for rel, (outcome, why) in finished.items() if outcome == Outcome.FAILED)
    lines = [f"failed: {rel}: {why}" for rel, why in failures[:LISTED_FAILURES]]
    if len(failures) > LISTED_FAILURES:
        lines.append(f"... and {len(failures) - LISTED_FAILURES} more failed (fleet status)")
    return "whisper-fleet: " + ", ".join(parts), "\n".join(lines) or ", ".join(parts)


def _load(dest: Path) -> RoundState:
    try:
        return RoundState.model_validate_json(round_path(dest).read_bytes())
    except (OSError, ValidationError):
        return RoundState()
