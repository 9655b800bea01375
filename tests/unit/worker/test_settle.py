"""The settle policy, every outcome as a table: acknowledge, retry after a delay, dead-letter, or leave."""

from __future__ import annotations

import pytest

from worker.job.result import Outcome
from worker.queue_loop.settle import Death, SettleAction, SettleLimits, Settlement, decide, judge_redelivery

LIMITS = SettleLimits(max_receive_count=100, retry_backoff_s=30, retry_budget_s=86400)
DAY = 86400

TABLE = [
    # outcome, attempts so far, expected decision (the first delivery was an hour ago)
    (Outcome.TRANSCRIBED, 1, Settlement(SettleAction.ACKNOWLEDGE)),
    (Outcome.RENDERED, 3, Settlement(SettleAction.ACKNOWLEDGE)),
    (Outcome.ALREADY_DONE, 1, Settlement(SettleAction.ACKNOWLEDGE)),
    (Outcome.SOURCE_GONE, 5, Settlement(SettleAction.ACKNOWLEDGE)),
    (Outcome.SUPERSEDED, 1, Settlement(SettleAction.ACKNOWLEDGE)),  # queued with settings no longer planned: not run
    (Outcome.SUBTITLED, 1, Settlement(SettleAction.ACKNOWLEDGE)),  # the video has a subtitle in its language: not transcribed
    (Outcome.LEASE_LOST, 1, Settlement(SettleAction.LEAVE)),
    (Outcome.FAILED, 1, Settlement(SettleAction.DEAD_LETTER, failure_reason="corrupt")),
    # transient: 30, 60, 120, 240 s apart, growing to an hour, for as many attempts as the time budget holds
    (Outcome.RETRY, 1, Settlement(SettleAction.RETRY, 30)),
    (Outcome.RETRY, 2, Settlement(SettleAction.RETRY, 60)),
    (Outcome.RETRY, 4, Settlement(SettleAction.RETRY, 240)),
    (Outcome.RETRY, 30, Settlement(SettleAction.RETRY, 3600)),
    # a crash is a bug that repeats: one more try, not five full-cost attempts
    (Outcome.CRASHED, 1, Settlement(SettleAction.RETRY, 30)),
    (Outcome.CRASHED, 2, Settlement(SettleAction.DEAD_LETTER, failure_reason="gave up after 2 attempts: corrupt")),
]


@pytest.mark.parametrize(("outcome", "attempts", "expected"), TABLE, ids=[f"{o.value}-{a}" for o, a, _ in TABLE])
def test_every_outcome_has_one_decision(outcome, attempts, expected):
    assert decide(outcome, attempts, 3600.0, LIMITS, reason="corrupt") == expected


def test_the_table_covers_every_outcome():
    assert {outcome for outcome, _, _ in TABLE} == set(Outcome)


def test_an_orphaned_lease_is_never_settled_whatever_the_outcome():
    # Given a delivery whose queue was recreated while it ran: nobody else can own it, nothing to acknowledge
    for outcome in Outcome:
        assert decide(outcome, 1, 0.0, LIMITS, lease_orphaned=True).action is SettleAction.LEAVE


def test_a_queue_that_allows_one_receive_dead_letters_a_crash_at_once():
    one = SettleLimits(max_receive_count=1, retry_backoff_s=30, retry_budget_s=DAY)
    expected = Settlement(SettleAction.DEAD_LETTER, failure_reason="gave up after 1 attempts: bug")
    assert decide(Outcome.CRASHED, 1, 0.0, one, "bug") == expected
    no_backoff = SettleLimits(5, retry_backoff_s=0, retry_budget_s=DAY)
    assert decide(Outcome.RETRY, 1, 0.0, no_backoff) == Settlement(SettleAction.RETRY, 0)


def test_a_transient_failure_ends_when_its_time_budget_is_spent_not_its_count():
    # Given a file that failed transiently on its 6th delivery (the old count limit was 5)
    assert decide(Outcome.RETRY, 6, 7 * 60.0, LIMITS, "source not readable").action is SettleAction.RETRY
    # When its first delivery is a day old, it is dead-lettered, with how long it was tried
    spent = decide(Outcome.RETRY, 31, DAY + 1.0, LIMITS, "source not readable")
    reason = "gave up after 31 attempts over 24.0 h: source not readable"
    assert spent == Settlement(SettleAction.DEAD_LETTER, failure_reason=reason)


def test_a_transient_failure_is_never_retried_into_sqs_silent_redrive():
    # SQS dead-letters without a record past maxReceiveCount: the policy gives up one receive before
    assert decide(Outcome.RETRY, 99, 60.0, LIMITS).action is SettleAction.RETRY
    assert decide(Outcome.RETRY, 100, 60.0, LIMITS).action is SettleAction.DEAD_LETTER


KILLED = Death("w1", "transcribe", rss_mb=900, memory_limit_mb=3000)
OOM = Death("w1", "align", rss_mb=2900, memory_limit_mb=3000)
HUNG = Death("w1", "decode", None, None, hung=True)


@pytest.mark.parametrize(
    ("deaths", "age_s", "dead_letter"),
    [
        ([], DAY * 2, False),  # nothing died: run it
        ([KILLED] * 12, 3600, False),  # killed from outside twelve times: not the file's fault, inside the budget
        ([KILLED] * 3, DAY + 1, True),  # ... until the time budget is spent
        ([OOM], 60, False),  # one death near the memory limit: maybe a neighbour's fault, one more try
        ([KILLED, OOM, OOM], 60, True),  # twice out of memory on this file: poison
        ([HUNG, HUNG], 60, True),  # twice past its time limit: poison
    ],
)
def test_a_redelivered_file_is_dead_lettered_on_evidence_against_it(deaths, age_s, dead_letter):
    decision = judge_redelivery(deaths, age_s, LIMITS)
    assert (decision is not None and decision.action is SettleAction.DEAD_LETTER) is dead_letter


def test_deaths_say_what_is_known_of_them():
    assert OOM.describe() == "out of memory during align on w1 (last reading 2900 of 3000 MB)"
    assert KILLED.describe().startswith("w1 stopped during transcribe without a trace")
    assert judge_redelivery([OOM, OOM], 60, LIMITS).failure_reason.startswith("workers died on it 2 times: out of memory")
