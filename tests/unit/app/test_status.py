"""Status from state files alone: lost workers, throughput, the plain lines."""

from __future__ import annotations

import io
import time
from collections import Counter
from types import SimpleNamespace

from rich.console import Console

from app.local_run import _report, local_console
from app.status import gather_status
from app.status_view import live_view, status_lines
from fleet.settings import FleetSettings
from fleet.state.plan_summary import PlanCounts, PlanSummary
from fleet.state.worker_record import WorkerRecord, worker_record_path, write_worker_record


def write_worker(dest, name, **fields):
    record = WorkerRecord(**{"worker": name, "state": "idle", "lost_after_s": 20, "started_at": 1000.0, "last_beat": 1000.0,
                             **fields})  # fmt: skip
    write_worker_record(worker_record_path(dest, name), record)


def write_plan(dest, found, **counts):
    PlanSummary(at=0, source="/s", dest=str(dest), queue="q.fifo", settings_key="k", found=found,
                counts=PlanCounts(**counts)).write(dest)  # fmt: skip


def test_silent_workers_are_lost_stopped_ones_are_not(tmp_path):
    now = 5000.0
    write_worker(tmp_path, "fresh", last_beat=now - 5, files_done=10, audio_s_done=3600, started_at=now - 3600)
    write_worker(tmp_path, "silent", state="working", file="a.mp3", last_beat=now - 60)
    write_worker(tmp_path, "gone", state="stopped", last_beat=now - 600)
    report = gather_status(FleetSettings(dest_dir=tmp_path), queue=None, now=now)
    lost = {w.worker: w.lost for w in report.workers}
    assert lost == {"fresh": False, "silent": True, "gone": False}
    assert report.throughput == {"files_per_hour": 10.0, "audio_hours_per_hour": 1.0}
    lines = status_lines(report)
    assert "  silent: LOST a.mp3 [None]; 0 done, 0 failed, 0.00 h audio; beat 60s ago" in lines
    assert lines[1] == "last plan: none yet (run the director)"
    live_view(report)  # renders without a queue or a plan


def test_a_worker_waiting_for_its_roots_says_why_and_since_when(tmp_path):
    now = time.time()
    since = time.mktime(time.strptime(time.strftime("%Y-%m-%d 00:01", time.localtime(now)), "%Y-%m-%d %H:%M"))
    write_worker(tmp_path, "w", state="waiting", waiting="source not available: source folder /source is empty",
                 waiting_since=since, last_beat=now)  # fmt: skip
    report = gather_status(FleetSettings(dest_dir=tmp_path), queue=None, now=now)
    assert status_lines(report)[4].startswith("  w: waiting: source not available: source folder /source is empty since 00:01;")
    assert report.as_dict()["workers"][0]["shown_state"].endswith("since 00:01")


def test_a_worker_shows_the_device_it_uses_now(tmp_path):
    write_worker(tmp_path, "gpu", device="cuda:1", last_beat=time.time())
    write_worker(tmp_path, "moved", device="cpu", fallbacks={"align device": "CPU after CUDA out of memory (last file)"},
                 last_beat=time.time())  # fmt: skip
    lines = status_lines(gather_status(FleetSettings(dest_dir=tmp_path), queue=None, now=time.time()))
    assert any(line.startswith("  gpu on cuda:1: idle;") for line in lines), lines
    assert any(line.startswith("  moved on cpu: idle;") and "align device: CPU after CUDA" in line for line in lines)


def test_a_remote_worker_shows_its_host_and_the_file_it_holds(tmp_path):
    write_worker(tmp_path, "gaming-pc-7", device="cuda:0", remote=True, host="gaming-pc", state="working", file="Film.mkv",
                 stage="transcribe", last_beat=time.time())  # fmt: skip
    report = gather_status(FleetSettings(dest_dir=tmp_path), queue=None, now=time.time())
    assert any(line.startswith("  gaming-pc-7 on cuda:0 (remote: gaming-pc): working Film.mkv [transcribe]")
               for line in status_lines(report)), status_lines(report)  # fmt: skip
    assert report.as_dict()["workers"][0]["where"] == "cuda:0 (remote: gaming-pc)"


def test_progress_and_eta_come_from_the_plan_and_queue_counts(tmp_path):
    write_plan(tmp_path, 30, enqueue=20)
    now = 5000.0
    write_worker(tmp_path, "w", last_beat=now, files_done=10, started_at=now - 3600)
    report = gather_status(FleetSettings(dest_dir=tmp_path), queue=None, now=now)
    report.queue = {"visible": 4, "in_flight": 1, "delayed": 0, "dead_letter": 0}
    # progress is recomputed from the queue by gather_status; here the queue was absent, so 0 remaining
    assert report.progress == {"queued": 20, "remaining": 0, "completed": 20, "found": 30, "transcribed": 20, "failed": 0,
                               "percent": 67}  # fmt: skip


def test_progress_of_a_watching_director_whose_last_round_queued_nothing_says_all_is_done(tmp_path):
    # Given a watch round that found everything done or failed (it queued nothing)
    write_plan(tmp_path, 7, done=5, failed_before=2)
    # When status is gathered
    report = gather_status(FleetSettings(dest_dir=tmp_path), queue=None, now=10.0)
    # Then the work shows as finished, not as "0 of 0"
    assert report.progress["percent"] == 100 and report.progress["transcribed"] == 5
    assert "progress: 5/7 files transcribed, 0 to go, 2 failed (100%)" in status_lines(report)


MARKUP_NAME = "[/x] take [bold]1[/bold].mp3"  # a legal file name that rich would read as markup


def test_file_names_are_printed_as_text_in_the_live_view(tmp_path):
    # Given a worker busy with a file whose name looks like rich markup
    write_worker(tmp_path, "w", state="working", file=MARKUP_NAME, stage="transcribe", last_beat=5000.0)
    report = gather_status(FleetSettings(dest_dir=tmp_path), queue=None, now=5000.0)
    # When `fleet status --watch` draws it
    out = io.StringIO()
    Console(file=out, width=200).print(live_view(report))
    # Then the name is shown as it is, and nothing raised a MarkupError
    assert MARKUP_NAME in out.getvalue()


def test_file_names_are_printed_as_text_in_the_local_run_summary(tmp_path):
    # Given a local run in which a file with a markup-like name failed
    records = SimpleNamespace(outcomes=lambda: Counter({"transcribed": 1}), failures=lambda: {MARKUP_NAME: "not decodable"},
                              audio_s_done=lambda: 3.0, by_remote_workers=lambda: 0)  # fmt: skip
    out = io.StringIO()
    # When the summary is printed
    code = _report(records, [], 10.0, False, tmp_path, local_console(out))
    # Then the failure line names the file exactly
    assert f"  failed: {MARKUP_NAME}: not decodable" in out.getvalue().splitlines() and code == 1


def test_a_worker_that_freed_its_models_while_idle_says_so(tmp_path):
    now = time.time()
    write_worker(tmp_path, "gpu", state="idle", models_unloaded=True, last_beat=now)
    write_worker(tmp_path, "cpu", state="idle", last_beat=now)
    shown = {w.worker: w.shown_state for w in gather_status(FleetSettings(dest_dir=tmp_path), queue=None, now=now).workers}
    assert shown == {"gpu": "idle, models unloaded", "cpu": "idle"}
