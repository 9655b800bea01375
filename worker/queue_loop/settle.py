"""The retry and dead-letter policy: one pure decision per finished delivery, carried out by the loop.

Like dramatiq's Retries middleware: (outcome, attempts so far, age of the first attempt, limits) in, one
decision out. Nothing here touches the queue or the disk, so every outcome is tested as a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fleet.backoff import retry_delay_s
from worker.job.result import Outcome

# A crash (an unexpected exception) is a bug that repeats: one more try, not every attempt the queue allows.
CRASH_ATTEMPTS = 2
# Outcomes whose work is finished (or was never needed): the message is deleted.
FINISHED = frozenset({Outcome.TRANSCRIBED, Outcome.RENDERED, Outcome.ALREADY_DONE, Outcome.SOURCE_GONE})


class Action(StrEnum):
    """What the loop does with the message."""

    ACKNOWLEDGE = "acknowledge"  # delete it: its outputs are on disk, or there is nothing to do
    RETRY = "retry"  # leave it invisible for `delay_s`, then the queue delivers it again
    DEAD_LETTER = "dead-letter"  # move it to the dead-letter queue with a failure record
    LEAVE = "leave"  # not ours to settle: another worker holds it, or its queue is gone


@dataclass(frozen=True)
class SettleLimits:
    """The knobs of the policy, from the queue spec and the settings."""

    max_receive_count: int
    retry_backoff_s: int
    crash_attempts: int = CRASH_ATTEMPTS


@dataclass(frozen=True)
class Decision:
    """What to do, after how long, and the reason the failure record and the dead-letter message carry."""

    action: Action
    delay_s: int = 0
    failure_reason: str | None = None


def decide(outcome: Outcome, attempts: int, first_attempt_age_s: float, limits: SettleLimits, reason: str = "",
           lease_orphaned: bool = False) -> Decision:  # fmt: skip
    """The decision for a delivery that ended with `outcome` on its `attempts`-th receive.

    `first_attempt_age_s` (how long ago the first delivery was received) is not used by this policy yet:
    it is here so that a budget in time can replace the count without changing any caller.
    """
    del first_attempt_age_s
    if outcome is Outcome.LEASE_LOST or lease_orphaned:
        return Decision(Action.LEAVE)
    if outcome in FINISHED:
        return Decision(Action.ACKNOWLEDGE)
    allowed = {Outcome.RETRY: limits.max_receive_count,
               Outcome.CRASHED: min(limits.crash_attempts, limits.max_receive_count)}.get(outcome, 0)  # fmt: skip
    if attempts < allowed:
        return Decision(Action.RETRY, retry_delay_s(attempts, limits.retry_backoff_s))
    if allowed:
        reason = f"gave up after {attempts} attempts: {reason}"
    return Decision(Action.DEAD_LETTER, failure_reason=reason)
