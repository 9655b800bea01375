"""Exponential backoff: how long a transiently failed message stays invisible, or a lost queue is left alone."""

from __future__ import annotations

# SQS's limit for one visibility timeout.
MAX_VISIBILITY_S = 43_200
CAP_S = 3_600


def retry_delay_s(receive_count: int, base_s: int, cap_s: int = CAP_S) -> int:
    """Exponential: base, 2x base, 4x base ... per receive, capped (a full disk needs minutes, not seconds)."""
    if base_s <= 0:
        return 0
    exponent = max(0, receive_count - 1)
    delay = base_s * (2 ** min(exponent, 20))
    return int(min(delay, cap_s, MAX_VISIBILITY_S))
