"""`fleet director --check`: has the watching director finished a round lately? Read from its last plan."""

from __future__ import annotations

import time
from pathlib import Path

from fleet.state.paths import last_plan_path
from fleet.state.plan_summary import PlanSummary

# A round may take a while on a big tree, and the first one waits for the queue: allow for both.
SLACK_S = 120.0


def director_health(dest: Path, watch_interval_s: float, now: float | None = None) -> tuple[bool, str]:
    """(healthy, one line why): unhealthy when no round has finished for two intervals plus slack."""
    now = time.time() if now is None else now
    plan = PlanSummary.read(dest)
    if plan is None:
        return False, f"no finished round recorded in {last_plan_path(dest)}"
    age_s = now - plan.at
    limit_s = 2 * watch_interval_s + SLACK_S
    if watch_interval_s and age_s > limit_s:
        return False, f"last round finished {age_s:.0f} s ago (limit {limit_s:.0f} s)"
    return True, f"last round finished {age_s:.0f} s ago"
