"""Container health checks read the services' own records: a stale record is unhealthy."""

from __future__ import annotations

import json
import os

from director.health import SLACK_S, director_health
from fleet.state.plan_summary import PlanCounts, PlanSummary
from worker.health import worker_health


def write_record(dest, name, **fields):
    folder = dest / ".fleet" / "workers"
    folder.mkdir(parents=True, exist_ok=True)
    record = {"worker": name, "host": "box", "pid": os.getpid(), "state": "idle", "lost_after_s": 35, "last_beat": 1000.0}
    (folder / f"{name}.json").write_text(json.dumps({**record, **fields}))


def test_a_worker_is_healthy_while_its_own_record_is_fresh_and_unhealthy_once_it_goes_silent(tmp_path):
    # Given this host's live worker, another host's fresh worker, and a dead process's record
    write_record(tmp_path, "mine", last_beat=1000.0)
    write_record(tmp_path, "elsewhere", host="other", last_beat=1100.0)
    write_record(tmp_path, "dead", pid=2**22 + 12345, last_beat=1100.0)
    # Then only this host's live worker counts: fresh within its limit, stale past it
    assert worker_health(tmp_path, now=1030.0, host="box")[0] is True
    healthy, why = worker_health(tmp_path, now=1036.0, host="box")
    assert not healthy and "silent for 36 s" in why
    assert worker_health(tmp_path, now=1000.0, host="nobody") == (
        False, f"no heartbeat record of a live worker on this host under {tmp_path / '.fleet' / 'workers'}")  # fmt: skip


def test_a_stopped_worker_is_unhealthy(tmp_path):
    write_record(tmp_path, "mine", state="stopped")
    assert worker_health(tmp_path, now=1000.0, host="box") == (False, "worker mine has stopped")


def test_the_director_is_unhealthy_when_no_round_finished_for_two_intervals(tmp_path):
    assert director_health(tmp_path, 300, now=0)[0] is False  # no round yet
    PlanSummary(at=1000.0, source="/s", dest=str(tmp_path), queue="q.fifo", settings_key="k", found=0,
                counts=PlanCounts()).write(tmp_path)  # fmt: skip
    assert director_health(tmp_path, 300, now=1000 + 600 + SLACK_S)[0] is True
    assert director_health(tmp_path, 300, now=1000 + 600 + SLACK_S + 1)[0] is False
