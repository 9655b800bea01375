"""What a local run counts, from the fleet's state files: its own workers' files, and this run's share of remote
workers that serve many runs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fleet.job.outcome import Outcome
from fleet.state.records import read_failures
from fleet.state.worker_record import WorkerRecord, read_worker_records

# Outcomes (the worker record's names) of a file that is finished with; failures are counted from their records.
SETTLED = (Outcome.TRANSCRIBED, Outcome.RENDERED, Outcome.ALREADY_DONE, Outcome.SOURCE_GONE, Outcome.SUBTITLED)


@dataclass(frozen=True)
class RemoteBefore:
    """A remote worker's totals when the run began: only what it does after counts for this run."""

    started_at: float
    outcomes: Counter[str]
    audio_s_done: float


@dataclass
class RunRecords:
    """What this run's workers and the failure records say: read from the fleet's state files, never from logs.

    Remote workers (their records copied home by the home side) serve several runs in one life: each counts
    from what its record said when the run began.
    """

    dest: Path
    pids: set[int]
    started_at: float
    remote_before: dict[str, RemoteBefore] = field(default_factory=dict)

    def note_remote_workers(self) -> None:
        """Remember the remote workers' totals now, before anything of this run is queued."""
        self.remote_before = {record.worker: RemoteBefore(record.started_at, Counter(record.outcomes), record.audio_s_done)
                              for record in read_worker_records(self.dest) if record.remote}  # fmt: skip

    def workers(self) -> list[WorkerRecord]:
        """This run's worker processes (a record of an earlier run under the same id is not ours) and remote workers."""
        return [record for record in read_worker_records(self.dest) if record.remote or record.pid in self.pids]

    def outcomes(self) -> Counter[str]:
        """How this run's deliveries ended, over all its workers."""
        total: Counter[str] = Counter()
        for record in self.workers():
            total.update(Counter(record.outcomes) - self._before(record).outcomes)
        return total

    def audio_s_done(self) -> float:
        """Seconds of audio this run's workers transcribed."""
        return sum(record.audio_s_done - self._before(record).audio_s_done for record in self.workers())

    def by_remote_workers(self) -> int:
        """Files remote workers transcribed during this run."""
        return sum((Counter(r.outcomes) - self._before(r).outcomes)[Outcome.TRANSCRIBED] for r in self.workers() if r.remote)

    def _before(self, record: WorkerRecord) -> RemoteBefore:
        before = self.remote_before.get(record.worker) if record.remote else None
        if before is None or before.started_at != record.started_at:  # a local worker, or a remote one (re)started since
            return RemoteBefore(record.started_at, Counter(), 0.0)
        return before

    def failures(self) -> dict[str, str]:
        """Files that failed for good during this run, with the reason their failure record gives."""
        return {source: record.reason for source, record in read_failures(self.dest).items()
                if record.failed_at >= self.started_at}  # fmt: skip

    def settled(self) -> int:
        """Files finished one way or another so far: the progress bar's count."""
        outcomes = self.outcomes()
        return sum(outcomes[outcome] for outcome in SETTLED) + len(self.failures())
