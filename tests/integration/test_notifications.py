"""Notifications from a real worker: a webhook per finished file, an Apprise message per dead-lettered file."""

from __future__ import annotations

import base64
import shutil

import pytest

from tests.support.fleet_procs import direct, start_worker
from tests.support.ports import free_port
from tests.support.receiver import receiver

pytestmark = [pytest.mark.queue, pytest.mark.model]


def test_a_finished_file_posts_the_webhook_and_a_dead_lettered_one_an_apprise_message_once(
    localstack_endpoint, make_settings, speech_corpus, models_dir, tmp_path,
):  # fmt: skip
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    settings.source_dir.mkdir(parents=True)
    shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", settings.source_dir / "fox.mp3")
    (settings.source_dir / "empty.wav").write_bytes(b"")
    direct(settings)
    with receiver() as got:
        # The webhook behind Basic authentication, its credentials in the URL as users write them
        hook = got.url("/hook").replace("http://", "http://fleet:hook-pass%2Fword@")
        worker = start_worker(settings, tmp_path, "w", FLEET_WEBHOOK_URL=hook, FLEET_NOTIFY_URLS=got.url("/apprise", "json"))
        assert worker.wait() == 0  # the worker waits for its notifications (a few seconds at most) before it exits
        events = {event["file"]: event for event in got.bodies("/hook")}
        apprise = got.bodies("/apprise")
    assert len(got.bodies("/hook")) == 2 and set(events) == {"fox.mp3", "empty.wav"}
    hook_auth = {auth for (path, _), auth in zip(got.posts, got.authorizations, strict=True) if path == "/hook"}
    assert hook_auth == {"Basic " + base64.b64encode(b"fleet:hook-pass/word").decode()}
    assert "hook-pass" not in worker.log_path.read_text()
    fox = events["fox.mp3"]
    assert fox["event"] == "transcribed" and fox["language"] == "en" and 1 < fox["audio_s"] < 10
    assert sorted(fox["outputs"]) == sorted(f"fox.{fmt}" for fmt in ("txt", "srt", "vtt", "tsv", "json"))
    assert events["empty.wav"] == {"event": "dead-lettered", "file": "empty.wav", "reason": "empty file",
                                   "worker": events["empty.wav"]["worker"]}  # fmt: skip
    assert [(m["title"], m["message"]) for m in apprise] == [("whisper-fleet: a file failed", "empty.wav: empty file")]


def test_a_notification_service_that_is_down_does_not_fail_the_work(localstack_endpoint, make_settings, speech_corpus,
                                                                    models_dir, tmp_path):  # fmt: skip
    settings = make_settings(localstack_endpoint, models_dir=models_dir, whisper_model="tiny.en", whisper_align=False)
    settings.source_dir.mkdir(parents=True)
    shutil.copy(speech_corpus / "english" / "stories" / "fox.mp3", settings.source_dir / "fox.mp3")
    direct(settings)
    down = f"http://user:pass-{free_port()}-word@127.0.0.1:{free_port()}/hook?token=tok-{free_port()}-en&x=1"
    worker = start_worker(settings, tmp_path, "w", FLEET_WEBHOOK_URL=down, FLEET_NOTIFY_URLS=f"gotify://127.0.0.1:9/botTok{free_port()}xyz",
                          FLEET_LOG_LEVEL="debug")  # fmt: skip
    assert worker.wait() == 0
    assert worker.outcomes() == {"fox.mp3": "transcribed"} and (settings.dest_dir / "fox.txt").exists()
    assert [e["attempts"] for e in worker.events() if e.get("event") == "notification not delivered"] == [3]
    # And no password, token or key shows in its log, at debug level
    log = worker.log_path.read_text()
    assert "pass-" not in log and "tok-" not in log and "botTok" not in log
