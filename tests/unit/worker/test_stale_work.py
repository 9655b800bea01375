"""Stale work: a message queued with settings the director no longer plans is acknowledged without running."""

from __future__ import annotations

import time

from director.plan import PlanInputs, plan_sources
from director.scan import SourceFile
from fleet.job.identity import DecodingOptions, TranscriptionSettings
from fleet.job.messages import SourceFingerprint, TranscriptionJob
from fleet.settings import FleetSettings
from fleet.state.planned_settings import PlannedSettings, PlannedSettingsReader, write_planned_settings
from worker.job.result import Outcome
from worker.queue_loop.settle import SettleAction, SettleLimits, decide

TODAY = TranscriptionSettings(decoding=DecodingOptions(initial_prompt="A story about a fox."))
YESTERDAY = TranscriptionSettings()


def job(path: str, settings: TranscriptionSettings, enqueued_at: float) -> TranscriptionJob:
    return TranscriptionJob(path=path, output_base=path.rsplit(".", 1)[0], enqueued_at=enqueued_at, settings=settings,
                            fingerprint=SourceFingerprint(size=1, mtime_ns=1))  # fmt: skip


def test_only_an_older_message_with_other_settings_for_a_known_folder_is_stale():
    planned = PlannedSettings(written_at=1000.0, folders={"": TODAY.key(), "talks": YESTERDAY.key()})
    assert "settings changed since it was queued" in planned.superseded(job("a.mp3", YESTERDAY, 900.0))
    assert planned.superseded(job("a.mp3", TODAY, 900.0)) is None  # what is planned now
    assert planned.superseded(job("a.mp3", YESTERDAY, 1000.0)) is None  # sent with (or after) the map: the round's own
    assert planned.superseded(job("talks/b.mp3", YESTERDAY, 900.0)) is None  # that folder still plans these
    assert planned.superseded(job("new/c.mp3", YESTERDAY, 900.0)) is None  # a folder the map does not know: run


def test_the_plan_knows_each_folders_settings_key():
    sources = [SourceFile(rel, 1, 1) for rel in ("a.mp3", "talks/b.mp3", "talks/deep/c.mp3")]
    inputs = PlanInputs(sources=sources, outputs={}, failures={}, ledger={}, settings=YESTERDAY, formats=("json",),
                        now=time.time(), retention_s=3600,
                        settings_for=lambda rel: TODAY if rel.startswith("talks/") else YESTERDAY)  # fmt: skip
    assert plan_sources(inputs).folder_keys == {"": YESTERDAY.key(), "talks": TODAY.key(), "talks/deep": TODAY.key()}


def test_a_worker_acknowledges_a_stale_message_without_touching_the_file(tmp_path, monkeypatch):
    from worker.job import run as job_run
    from worker.job.lease import Lease
    from worker.job.run import JobContext, run_job

    dest = tmp_path / "dest"
    write_planned_settings(dest, PlannedSettings(written_at=time.time(), folders={"": TODAY.key()}))
    monkeypatch.setattr(job_run, "_locate_source", lambda *args: (_ for _ in ()).throw(AssertionError("file touched")))
    ctx = JobContext(settings=FleetSettings(source_dir=tmp_path / "source", dest_dir=dest), pipeline=None, worker_id="w",
                     planned=PlannedSettingsReader(dest))  # fmt: skip
    result = run_job(job("a.mp3", YESTERDAY, time.time() - 60), ctx, Lease(), lambda *args: None)
    assert result.outcome is Outcome.SUPERSEDED and "planned now with" in result.reason
    limits = SettleLimits(max_receive_count=100, retry_backoff_s=30)
    assert decide(result.outcome, 1, 0.0, limits).action is SettleAction.ACKNOWLEDGE


def test_a_missing_or_broken_map_makes_nothing_stale(tmp_path):
    reader = PlannedSettingsReader(tmp_path)
    assert reader.current() is None
    write_planned_settings(tmp_path, PlannedSettings(written_at=5.0, folders={"": TODAY.key()}))
    assert reader.current() == PlannedSettings(written_at=5.0, folders={"": TODAY.key()})
    reader.path.write_text("{not json")
    assert reader.current() is None
