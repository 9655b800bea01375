"""The settle policy, every outcome as a table: acknowledge, retry after a delay, dead-letter, or leave."""

from __future__ import annotations

import pytest

from worker.job.result import Outcome
from worker.queue_loop.settle import Action, Decision, SettleLimits, decide

LIMITS = SettleLimits(max_receive_count=5, retry_backoff_s=30)

TABLE = [
    # outcome, attempts so far, expected decision
    (Outcome.TRANSCRIBED, 1, Decision(Action.ACKNOWLEDGE)),
    (Outcome.RENDERED, 3, Decision(Action.ACKNOWLEDGE)),
    (Outcome.ALREADY_DONE, 1, Decision(Action.ACKNOWLEDGE)),
    (Outcome.SOURCE_GONE, 5, Decision(Action.ACKNOWLEDGE)),
    (Outcome.LEASE_LOST, 1, Decision(Action.LEAVE)),
    (Outcome.FAILED, 1, Decision(Action.DEAD_LETTER, failure_reason="corrupt")),
    # transient: every attempt the queue allows, 30, 60, 120, 240 s apart, then dead-lettered
    (Outcome.RETRY, 1, Decision(Action.RETRY, 30)),
    (Outcome.RETRY, 2, Decision(Action.RETRY, 60)),
    (Outcome.RETRY, 4, Decision(Action.RETRY, 240)),
    (Outcome.RETRY, 5, Decision(Action.DEAD_LETTER, failure_reason="gave up after 5 attempts: corrupt")),
    # a crash is a bug that repeats: one more try, not five full-cost attempts
    (Outcome.CRASHED, 1, Decision(Action.RETRY, 30)),
    (Outcome.CRASHED, 2, Decision(Action.DEAD_LETTER, failure_reason="gave up after 2 attempts: corrupt")),
]


@pytest.mark.parametrize(("outcome", "attempts", "expected"), TABLE, ids=[f"{o.value}-{a}" for o, a, _ in TABLE])
def test_every_outcome_has_one_decision(outcome, attempts, expected):
    assert decide(outcome, attempts, 0.0, LIMITS, reason="corrupt") == expected


def test_the_table_covers_every_outcome():
    assert {outcome for outcome, _, _ in TABLE} == set(Outcome)


def test_an_orphaned_lease_is_never_settled_whatever_the_outcome():
    # Given a delivery whose queue was recreated while it ran: nobody else can own it, nothing to acknowledge
    for outcome in Outcome:
        assert decide(outcome, 1, 0.0, LIMITS, lease_orphaned=True).action is Action.LEAVE


def test_a_queue_that_allows_one_receive_dead_letters_a_crash_at_once():
    one = SettleLimits(max_receive_count=1, retry_backoff_s=30)
    expected = Decision(Action.DEAD_LETTER, failure_reason="gave up after 1 attempts: bug")
    assert decide(Outcome.CRASHED, 1, 0.0, one, "bug") == expected
    assert decide(Outcome.RETRY, 1, 0.0, SettleLimits(5, retry_backoff_s=0)) == Decision(Action.RETRY, 0)
