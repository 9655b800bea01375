"""Worker records in the status report."""

from __future__ import annotations


def test_worker_records_silent_for_a_day_age_out_of_status(tmp_path):
    from app.status import WORKER_RECORD_TTL_S, worker_records

    folder = tmp_path / ".fleet" / "workers"
    folder.mkdir(parents=True)
    now = 10 * WORKER_RECORD_TTL_S
    for name, age_s in (("replaced-container", WORKER_RECORD_TTL_S + 1), ("recent", 60)):
        (folder / f"{name}.json").write_text(
            f'{{"worker": "{name}", "state": "stopped", "last_beat": {now - age_s}, "lost_after_s": 35}}')
    assert [r.worker for r in worker_records(tmp_path, now)] == ["recent"]
