"""The retry and dead-letter policy: one pure decision per finished delivery, carried out by the loop.

Like dramatiq's Retries middleware: (outcome, attempts so far, age of the first attempt, limits) in, one
decision out. Nothing here touches the queue or the disk, so every outcome is tested as a table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from fleet.transport.backoff import retry_delay_s
from worker.job.result import Outcome

# A crash (an unexpected exception) is a bug that repeats: one more try, not every attempt the queue allows.
CRASH_ATTEMPTS = 2
# A worker that died with its resident memory above this share of its limit was most likely killed for memory.
OOM_EVIDENCE_SHARE = 0.8
# Outcomes whose work is finished (or was never needed): the message is deleted.
FINISHED = frozenset({Outcome.TRANSCRIBED, Outcome.RENDERED, Outcome.ALREADY_DONE, Outcome.SOURCE_GONE, Outcome.SUPERSEDED,
                      Outcome.SUBTITLED})  # fmt: skip


class SettleAction(StrEnum):
    """What the loop does with the message."""

    ACKNOWLEDGE = "acknowledge"  # delete it: its outputs are on disk, or there is nothing to do
    RETRY = "retry"  # leave it invisible for `delay_s`, then the queue delivers it again
    DEAD_LETTER = "dead-letter"  # move it to the dead-letter queue with a failure record
    LEAVE = "leave"  # not ours to settle: another worker holds it, or its queue is gone


@dataclass(frozen=True)
class SettleLimits:
    """The knobs of the policy, from the queue spec and the settings."""

    max_receive_count: int  # SQS's own net: past it the queue dead-letters silently, so never retry up to it
    retry_backoff_s: int
    retry_budget_s: float = 86400.0  # how long after its first delivery a transient failure is still retried
    crash_attempts: int = CRASH_ATTEMPTS


@dataclass(frozen=True)
class Death:
    """An earlier delivery of the file that never ended: what its last heartbeat knew."""

    worker: str
    stage: str | None
    rss_mb: float | None
    memory_limit_mb: float | None
    hung: bool = False  # abandoned by its own worker past the job's time limit

    @property
    def out_of_memory(self) -> bool:
        """Its last reading was close to the container's limit: the kernel's OOM killer, most likely."""
        return bool(self.rss_mb and self.memory_limit_mb and self.rss_mb >= OOM_EVIDENCE_SHARE * self.memory_limit_mb)

    @property
    def points_at_file(self) -> bool:
        """Whether this death is evidence against the file (and not a kill from outside, a reboot, a redeploy)."""
        return self.hung or self.out_of_memory

    def describe(self) -> str:
        stage = f" during {self.stage}" if self.stage else ""
        if self.hung:
            return f"hung{stage} past the job's time limit on {self.worker}"
        if self.out_of_memory:
            return f"out of memory{stage} on {self.worker} (last reading {self.rss_mb:.0f} of {self.memory_limit_mb:.0f} MB)"
        reading = f", last memory reading {self.rss_mb:.0f} MB" if self.rss_mb else ""
        return f"{self.worker} stopped{stage} without a trace (killed, restarted or the machine went down{reading})"


@dataclass(frozen=True)
class Settlement:
    """What to do, after how long, and the reason the failure record and the dead-letter message carry."""

    action: SettleAction
    delay_s: int = 0
    failure_reason: str | None = None


def decide(outcome: Outcome, attempts: int, first_attempt_age_s: float, limits: SettleLimits, reason: str = "",
           lease_orphaned: bool = False) -> Settlement:  # fmt: skip
    """The decision for a delivery that ended with `outcome` on its `attempts`-th receive.

    A transient failure is retried for a time budget after the first delivery (`first_attempt_age_s`), not a
    count: the backoff grows to an hour, so a day is some thirty deliveries. A crash is a bug: count-based.
    """
    if outcome is Outcome.LEASE_LOST or lease_orphaned:
        return Settlement(SettleAction.LEAVE)
    if outcome in FINISHED:
        return Settlement(SettleAction.ACKNOWLEDGE)
    if outcome is Outcome.RETRY:
        if first_attempt_age_s < limits.retry_budget_s and attempts < limits.max_receive_count:
            return Settlement(SettleAction.RETRY, retry_delay_s(attempts, limits.retry_backoff_s))
        return Settlement(SettleAction.DEAD_LETTER, failure_reason=f"gave up after {attempts} attempts over "
                                                           f"{duration(first_attempt_age_s)}: {reason}")  # fmt: skip
    if outcome is Outcome.CRASHED:
        allowed = min(limits.crash_attempts, limits.max_receive_count)
        if attempts < allowed:
            return Settlement(SettleAction.RETRY, retry_delay_s(attempts, limits.retry_backoff_s))
        return Settlement(SettleAction.DEAD_LETTER, failure_reason=f"gave up after {attempts} attempts: {reason}")
    return Settlement(SettleAction.DEAD_LETTER, failure_reason=reason)


def judge_redelivery(deaths: list[Death], first_attempt_age_s: float, limits: SettleLimits) -> Settlement | None:
    """Before a file runs again: dead-letter it when earlier deliveries died of it, else None (run it).

    Deaths that point at the file (out of memory, hung) count like crashes; deaths without a trace are
    kills from outside and only end within the time budget, as transient failures do.
    """
    if not deaths:
        return None
    evidence = [death for death in deaths if death.points_at_file]
    if len(evidence) >= limits.crash_attempts:
        reason = f"workers died on it {len(evidence)} times: {evidence[-1].describe()}"
        return Settlement(SettleAction.DEAD_LETTER, failure_reason=reason)
    if first_attempt_age_s >= limits.retry_budget_s:
        reason = (f"gave up after {duration(first_attempt_age_s)}: workers died on it {len(deaths)} times, "
                  f"last: {deaths[-1].describe()}")  # fmt: skip
        return Settlement(SettleAction.DEAD_LETTER, failure_reason=reason)
    return None


def duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3.5 h`: how long, for a person."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
