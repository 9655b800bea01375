"""The pure planner: one decision per source, and 'done' only when the outputs are current."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from director.plan import Action, PlanInputs, plan_sources
from director.scan import SourceFile
from fleet.job.identity import OUTPUT_FORMATS, TranscriptionSettings
from fleet.job.messages import SourceFingerprint
from fleet.state.done import OutputState
from fleet.state.records import FailureRecord, RecordSummary

SETTINGS = TranscriptionSettings()
NOW = 1_000_000.0
RETENTION = 14 * 86400


def source(rel="a/ep1.mp3", size=100, mtime_ns=5):
    return SourceFile(rel, size, mtime_ns)


def done_state(src, settings=SETTINGS, formats=OUTPUT_FORMATS, record_source=None):
    record = RecordSummary(record_source or src.rel, src.fingerprint, settings.key())
    return OutputState(frozenset(formats), record)


def plan(sources, outputs=None, failures=None, ledger=None, **kwargs):
    inputs = PlanInputs(
        sources=sources,
        outputs=outputs or {},
        failures=failures or {},
        ledger=ledger or {},
        settings=kwargs.pop("settings", SETTINGS),
        formats=kwargs.pop("formats", OUTPUT_FORMATS),
        now=kwargs.pop("now", NOW),
        retention_s=RETENTION,
        **kwargs,
    )
    return plan_sources(inputs)


def only(result):
    (decision,) = result.decisions
    return decision


def failure(src, at=10.0, settings=SETTINGS):
    return FailureRecord(
        source=src.rel, fingerprint=SourceFingerprint(size=src.size, mtime_ns=src.mtime_ns),
        settings_key=settings.key(), reason="not decodable", failed_at=at,
    )


def test_new_source_is_enqueued_with_a_relative_path_job():
    result = plan([source()])
    decision = only(result)
    assert decision.action is Action.ENQUEUE and decision.reason == "new"
    job = result.job(decision)
    assert job.path == "a/ep1.mp3" and job.output_base == "a/ep1" and job.enqueued_at == NOW
    assert job.dedup_id() == decision.dedup_id  # the id the ledger keeps is the id SQS sees


def test_complete_current_outputs_are_done():
    src = source()
    assert only(plan([src], {"a/ep1": done_state(src)})).action is Action.DONE


def test_partial_outputs_are_not_done():
    src = source()
    state = done_state(src, formats=("txt", "json"))
    decision = only(plan([src], {"a/ep1": state}))
    assert decision.action is Action.ENQUEUE and "srt" in decision.reason


def test_deleted_outputs_of_a_finished_job_are_redone_under_a_fresh_id():
    # Given a job that ran (current commit record) and is still in the ledger, then srt was deleted
    src = source()
    first = only(plan([src]))
    state = done_state(src, formats=tuple(f for f in OUTPUT_FORMATS if f != "srt"))
    result = plan([src], {"a/ep1": state}, ledger={first.dedup_id: NOW})
    decision = only(result)
    # Then it is enqueued again, with an id SQS will not drop as a duplicate of the first run
    assert decision.action is Action.ENQUEUE
    assert decision.dedup_id != first.dedup_id == result.job(first).dedup_id()
    assert result.job(decision).dedup_id() == decision.dedup_id


def test_only_requested_formats_count():
    src = source()
    assert only(plan([src], {"a/ep1": done_state(src, formats=("txt", "json"))}, formats=("txt", "json"))).action is Action.DONE


def test_changed_source_is_enqueued_again():
    src = source()
    changed = source(mtime_ns=6)
    decision = only(plan([changed], {"a/ep1": done_state(src)}))
    assert decision.action is Action.ENQUEUE and decision.reason == "source changed since it was transcribed"


def test_changed_settings_re_enqueue():
    src = source()
    decision = only(plan([src], {"a/ep1": done_state(src)}, settings=TranscriptionSettings(language="fr")))
    assert decision.action is Action.ENQUEUE and decision.reason == "transcription settings changed"


def test_ledger_entry_means_already_queued_until_retention_runs_out():
    first = only(plan([source()]))
    ledger = {first.dedup_id: NOW}
    # hours later, the queue still holds it: nothing is sent twice
    assert only(plan([source()], ledger=ledger, now=NOW + 6 * 3600)).action is Action.QUEUED
    # past the queue's retention period SQS has dropped it: enqueue again
    assert only(plan([source()], ledger=ledger, now=NOW + RETENTION + 1)).action is Action.ENQUEUE


def test_failed_before_is_not_retried_unless_asked_or_changed():
    src = source()
    failures = {src.rel: failure(src)}
    assert only(plan([src], failures=failures)).action is Action.FAILED
    result = plan([src], failures=failures, retry_failed=True)
    retried = only(result)
    assert retried.action is Action.ENQUEUE and result.job(retried).attempt == "retry:10.0"
    assert retried.dedup_id == result.job(retried).dedup_id() != only(plan([src])).dedup_id
    assert only(plan([source(size=101)], failures=failures)).action is Action.ENQUEUE


def test_outputs_of_another_source_do_not_make_a_file_done():
    src = source("take.wav")
    decision = only(plan([src], {"take": done_state(src, record_source="take.mp3")}))
    assert decision.action is Action.ENQUEUE and decision.output_base == "take"


def test_collision_keeps_existing_owner_and_renames_the_newcomer():
    old, new = source("take.mp3"), source("take.wav")
    result = plan([old, new], {"take": done_state(old)})
    by_rel = {d.source.rel: d for d in result.decisions}
    assert by_rel["take.mp3"].action is Action.DONE
    assert by_rel["take.wav"].output_base == "take.wav"
    assert set(result.renamed) == {"take.wav"}


sources_strategy = st.lists(
    st.builds(
        SourceFile,
        st.sampled_from(["a.mp3", "a.wav", "b/c.flac", "b/C.flac", "d e/ü.mp4", "-x.ogg"]),
        st.integers(0, 3),
        st.integers(0, 3),
    ),
    max_size=8,
    unique_by=lambda s: s.rel,
)


@given(sources_strategy, st.data())
def test_every_source_gets_exactly_one_decision_and_jobs_are_unique(sources, data):
    sources = sorted(sources, key=lambda s: s.rel)
    done = data.draw(st.sets(st.sampled_from([s.rel for s in sources]))) if sources else set()
    outputs = {s.rel.rsplit(".", 1)[0]: done_state(s) for s in sources if s.rel in done}
    result = plan(sources, outputs)
    assert [d.source for d in result.decisions] == sources
    jobs = [result.job(d) for d in result.decisions if d.action is Action.ENQUEUE]
    assert len({j.dedup_id() for j in jobs}) == len(jobs)
    assert len({j.output_base.casefold() for j in jobs}) == len(jobs)


@given(sources_strategy)
def test_planning_twice_with_the_ledger_enqueues_nothing_new(sources):
    first = plan(sources)
    ledger = {d.dedup_id: NOW for d in first.decisions if d.action is Action.ENQUEUE}
    second = plan(sources, ledger=ledger, now=NOW + 3600)
    assert not second.of(Action.ENQUEUE)
    assert len(second.of(Action.QUEUED)) == len(first.of(Action.ENQUEUE))


def test_a_file_modified_moments_ago_is_left_to_settle_and_taken_once_it_has():
    # Given a file written 10 s ago (maybe still being copied in) and a minute's minimum age
    fresh = source(mtime_ns=int((NOW - 10) * 1e9))
    # Then it waits, and is taken once it is a minute old
    decision = only(plan([fresh], min_age_s=60))
    assert decision.action is Action.SETTLING and decision.reason == "modified less than 60 s ago"
    assert only(plan([fresh], min_age_s=60, now=NOW + 51)).action is Action.ENQUEUE
    # And a file dated far in the future (a wrong clock) is not held back for ever
    assert only(plan([source(mtime_ns=int((NOW + 86400) * 1e9))], min_age_s=60)).action is Action.ENQUEUE
    # And a finished transcript of the same version is done whatever its age
    assert only(plan([fresh], {"a/ep1": done_state(fresh)}, min_age_s=60)).action is Action.DONE


def test_a_layout_or_format_change_re_renders_and_a_transcript_change_re_transcribes():
    src = source()
    old = TranscriptionSettings()
    record = RecordSummary(src.rel, src.fingerprint, old.key(), old.transcript_key())
    state = OutputState(frozenset(("txt", "json")), record)
    layout = TranscriptionSettings(max_line_width=20)
    for settings, formats in ((layout, OUTPUT_FORMATS), (old, OUTPUT_FORMATS), (layout, ("txt", "json"))):
        result = plan([src], outputs={"a/ep1": state}, settings=settings, formats=formats)
        decision = only(result)
        assert decision.action is Action.ENQUEUE and result.job(decision).render_only, (settings, formats)
    prompted = TranscriptionSettings(decoding={"initial_prompt": "Kubernetes"})
    assert not only(plan([src], outputs={"a/ep1": state}, settings=prompted)).render_only
    # A record written before transcript keys existed cannot vouch for its transcript: transcribed again
    legacy = OutputState(frozenset(("txt", "json")), RecordSummary(src.rel, src.fingerprint, old.key()))
    assert not plan([src], outputs={"a/ep1": legacy}, settings=layout).decisions[0].render_only


def test_a_json_another_tool_wrote_is_foreign_never_queued():
    # Given a plain whisperX run's a/ep1.json (no commit record) where the fleet would commit
    src = source()
    result = plan([src], {"a/ep1": OutputState(frozenset({"json", "srt"}), None)})
    decision = only(result)
    assert decision.action is Action.FOREIGN and decision.reason == "a/ep1.json was not written by whisper-fleet: left alone"
    assert result.counts()[Action.FOREIGN] == 1


def test_another_tools_subtitles_alone_do_not_stop_the_fleet():
    # Given Bazarr's a/ep1.srt and no JSON: the fleet transcribes; its writer leaves the srt alone
    src = source()
    decision = only(plan([src], {"a/ep1": OutputState(frozenset({"srt"}), None)}))
    assert decision.action is Action.ENQUEUE and decision.formats is None


def test_a_redo_for_deleted_outputs_writes_only_those():
    src = source()
    state = OutputState(frozenset({"txt", "json", "vtt", "tsv"}),
                        RecordSummary(src.rel, src.fingerprint, SETTINGS.key(), SETTINGS.transcript_key()))  # fmt: skip
    result = plan([src], {"a/ep1": state})
    decision = only(result)
    assert decision.render_only and decision.formats == ("srt", "json")
    assert result.job(decision).formats == ("srt", "json")
