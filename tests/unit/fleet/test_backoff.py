"""Exponential backoff: how long a failed message waits, capped."""

from __future__ import annotations

from fleet.transport.backoff import retry_delay_s


def test_backoff_doubles_and_is_capped():
    assert [retry_delay_s(n, 30) for n in (1, 2, 3)] == [30, 60, 120]
    assert retry_delay_s(50, 30) == 3600 and retry_delay_s(3, 0) == 0
