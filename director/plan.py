"""Pure planning: (sources x existing outputs x failures x ledger) -> one decision per source."""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from director.naming import assign_output_bases
from director.scan import SourceFile
from fleet.job.identity import TranscriptionSettings
from fleet.job.messages import FIRST_ATTEMPT, Attempt, AttemptKind, SourceFingerprint, TranscriptionJob, job_dedup_id
from fleet.media.layout import is_video_name
from fleet.media.output_names import PLAIN_NAMES, OutputNames, stem_base
from fleet.state.done import OutputState, done_check, renders_only, same_job
from fleet.state.records import FailureRecord, SubtitledRecord


class Action(StrEnum):
    """What the director does with one source file."""

    DONE = "done"
    ENQUEUE = "enqueue"
    QUEUED = "already queued"
    FAILED = "failed before"
    SKIPPED = "skipped"
    SETTLING = "settling"  # modified moments ago: maybe still being copied in, left for a later round
    FOREIGN = "foreign"  # its JSON was written by another tool or person: never replaced, never transcribed
    SUBTITLED = "subtitled"  # a video with a subtitle in the language the fleet would write (the media layout)


@dataclass(frozen=True, slots=True)
class Decision:
    """The plan for one source; the job fields are set for ENQUEUE and QUEUED only.

    Plain values, not a TranscriptionJob: a plan can hold 100,000 of these, and the message
    object is built only when it is sent (Plan.job).
    """

    source: SourceFile
    action: Action
    reason: str
    output_base: str = ""
    attempt: Attempt = FIRST_ATTEMPT
    dedup_id: str = ""
    enqueued_at: float = 0.0
    settings: TranscriptionSettings | None = None  # this file's, where a folder's settings file changes them
    render_only: bool = False  # layout or formats changed: the worker renders from the JSON on disk
    formats: tuple[str, ...] | None = None  # only these (a redo for deleted outputs); None: the plan's formats


@dataclass
class Plan:
    """Every decision, in source order, plus the naming notes worth showing a person."""

    decisions: list[Decision]
    settings: TranscriptionSettings
    formats: tuple[str, ...]
    renamed: dict[str, str] = field(default_factory=dict)
    setting_errors: list[str] = field(default_factory=list)  # unusable folder settings files, one line each
    # The settings key each folder is planned with (folder relative to the source, "" for its root): workers
    # acknowledge a message queued earlier with other settings without running it (fleet/state/planned_settings.py).
    folder_keys: dict[str, str] = field(default_factory=dict)

    def job(self, decision: Decision) -> TranscriptionJob:
        """The message for an ENQUEUE or QUEUED decision."""
        source = decision.source
        return TranscriptionJob(
            path=source.rel,
            output_base=decision.output_base,
            fingerprint=SourceFingerprint(size=source.size, mtime_ns=source.mtime_ns),
            settings=decision.settings or self.settings,
            formats=decision.formats or self.formats,
            enqueued_at=decision.enqueued_at,
            attempt=str(decision.attempt),
            render_only=decision.render_only,
        )

    def counts(self) -> Counter[Action]:
        return Counter(d.action for d in self.decisions)

    def of(self, action: Action) -> list[Decision]:
        return [d for d in self.decisions if d.action is action]


@dataclass(frozen=True)
class PlanInputs:
    """Everything the planner looks at, gathered beforehand by the I/O steps."""

    sources: Sequence[SourceFile]
    outputs: Mapping[str, OutputState]
    failures: Mapping[str, FailureRecord]
    ledger: Mapping[str, float]
    settings: TranscriptionSettings
    formats: tuple[str, ...]
    now: float
    retention_s: float
    retry_failed: bool = False
    # Files sent back from the dead-letter queue (`fleet dlq redrive`): queued afresh with today's settings
    # unless done, whatever their failure record and the ledger say (their message left the queue).
    redrive: frozenset[str] = frozenset()
    min_age_s: float = 0.0
    # A source's own settings (a folder's .whisper-fleet.toml), or why they cannot be had; None: `settings` for all.
    settings_for: Callable[[str], TranscriptionSettings | Exception] | None = None
    names: OutputNames = PLAIN_NAMES  # the destination's naming rules
    # Why a video counts as subtitled in a language (a sidecar, an embedded stream), or None; the media layout only.
    subtitled: Callable[[SourceFile, str], str | None] | None = None
    # Videos a worker found subtitled in the language it detected, by source path.
    subtitled_records: Mapping[str, SubtitledRecord] = field(default_factory=dict)
    # Whether the sidecar such a record relied on is still there, unchanged, and still the video's own.
    sidecar_holds: Callable[[SourceFile, SubtitledRecord], bool] | None = None


def candidate_bases(sources: Sequence[SourceFile], names: OutputNames = PLAIN_NAMES) -> set[str]:
    """Every output base a source may end up with, so the outputs can be probed before naming."""
    return {names.fit(base) for s in sources for base in (stem_base(s.rel), s.rel)}


def plan_sources(inputs: PlanInputs) -> Plan:
    """Decide done / enqueue / already queued / failed before / skipped / settling for every source."""
    owners = {base: state.record.source for base, state in inputs.outputs.items() if state.record}
    naming = assign_output_bases((s.rel for s in inputs.sources), owners, inputs.names)
    wanted = frozenset(inputs.formats)
    oldest_live = inputs.now - inputs.retention_s
    # Fresh: modified within min_age_s of now, either side (a file server's clock may run a little ahead).
    # A date far in the future (a camera's wrong clock) says nothing about copying: that file is taken.
    fresh_ns = ((inputs.now - inputs.min_age_s) * 1e9, (inputs.now + inputs.min_age_s) * 1e9)
    decisions = []
    folder_keys: dict[str, str] = {}
    for source in inputs.sources:
        if source.rel in naming.conflicts:
            decisions.append(Decision(source, Action.SKIPPED, naming.conflicts[source.rel]))
            continue
        settings = inputs.settings_for(source.rel) if inputs.settings_for else inputs.settings
        if isinstance(settings, Exception):
            decisions.append(Decision(source, Action.SKIPPED, str(settings)))
            continue
        settings_key = settings.key()  # computed once per settings object: one per folder at most
        folder_keys[posixpath.dirname(source.rel)] = settings_key
        base = naming.bases[source.rel]
        fingerprint = source.fingerprint
        check = done_check(source.rel, fingerprint, settings_key, wanted, inputs.outputs.get(base))
        if check.done:
            decisions.append(Decision(source, Action.DONE, "outputs match source and settings"))
            continue
        state = inputs.outputs.get(base)
        if state is not None and "json" in state.formats and state.record is None:
            decisions.append(Decision(source, Action.FOREIGN, f"{base}.json was not written by whisper-fleet: left alone"))
            continue
        if fresh_ns[0] < source.mtime_ns <= fresh_ns[1]:
            decisions.append(Decision(source, Action.SETTLING, f"modified less than {inputs.min_age_s:g} s ago"))
            continue
        subtitled = _subtitled(inputs, source, settings) if state is None else None
        if subtitled:
            decisions.append(Decision(source, Action.SUBTITLED, subtitled))
            continue
        failure = inputs.failures.get(source.rel)
        failed_now = failure is not None and same_job(failure.summary(), source.rel, fingerprint, settings_key)
        redriven = source.rel in inputs.redrive
        if failed_now and not inputs.retry_failed and not redriven:
            decisions.append(Decision(source, Action.FAILED, failure.reason))
            continue
        if redriven:
            attempt, retry_reason = Attempt(AttemptKind.REDRIVE, repr(inputs.now)), "sent back from the dead-letter queue"
        elif failed_now:
            attempt, retry_reason = Attempt(AttemptKind.RETRY, repr(failure.failed_at)), "retry after failure"
        else:
            attempt = Attempt(AttemptKind.REDO, check.needed) if check.redo else FIRST_ATTEMPT
            retry_reason = check.needed
        dedup_id = job_dedup_id(source.rel, source.size, source.mtime_ns, settings_key, str(attempt))
        enqueued_at = inputs.ledger.get(dedup_id)
        if enqueued_at is not None and enqueued_at >= oldest_live:
            action, reason = Action.QUEUED, "enqueued earlier, not finished yet"
        else:
            action, reason, enqueued_at = Action.ENQUEUE, retry_reason, inputs.now
        own = settings if settings is not inputs.settings else None
        render = not failed_now and not redriven and renders_only(source.rel, fingerprint, settings, state)
        reason = f"{reason}: re-render from the json" if render and action is Action.ENQUEUE else reason
        # Outputs deleted from a current transcript: only those are written again, the others stay as they are.
        formats = tuple(f for f in inputs.formats if f == "json" or f not in state.formats) if check.redo and render else None
        decisions.append(Decision(source, action, reason, base, attempt, dedup_id, enqueued_at, own, render, formats))
    return Plan(decisions, inputs.settings, inputs.formats, naming.renamed, folder_keys=folder_keys)


def _subtitled(inputs: PlanInputs, source: SourceFile, settings: TranscriptionSettings) -> str | None:
    """Why a video not transcribed yet needs no subtitle from the fleet: one exists in the language it would write.

    Known before transcribing (a given language, a translation): checked here. Detected per file: a worker
    checks after detection and leaves a record for this version of the file.
    """
    media = settings.media
    if media is None or not media.skip_subtitled or not is_video_name(source.rel):
        return None
    earlier = inputs.subtitled_records.get(source.rel)
    if earlier is not None and _finding_holds(inputs, source, settings, earlier):
        return earlier.reason
    language = settings.subtitle_language_known()
    return inputs.subtitled(source, language) if language and inputs.subtitled else None


def _finding_holds(inputs: PlanInputs, source: SourceFile, settings: TranscriptionSettings, record: SubtitledRecord) -> bool:
    """A worker's "subtitled" stands while the video and the settings are as they were (a changed language to write
    means another subtitle is needed) and what it relied on is still there: a stream in the video (its fingerprint
    covers it), or a sidecar unchanged. A record that names neither (older) is checked again."""
    if record.fingerprint.value() != source.fingerprint or record.settings_key != settings.key():
        return False
    if record.stream:
        return True
    return bool(record.sidecar) and inputs.sidecar_holds is not None and inputs.sidecar_holds(source, record)
