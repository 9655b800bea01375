"""Notifications: delivered in the background, retried a little, never slowing or failing the caller."""

from __future__ import annotations

import time

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from fleet.process.notify import ATTEMPTS, Notifier
from fleet.settings import FleetSettings
from tests.support.ports import free_port
from tests.support.receiver import receiver


def test_webhook_events_and_apprise_messages_arrive_as_json():
    with receiver() as got:
        notifier = Notifier((got.url("/apprise", "json"),), got.url("/hook"))
        notifier.event({"event": "transcribed", "file": "a.mp3"})
        notifier.message("whisper-fleet: a file failed", "b.mp3: empty file")
        notifier.close()
        assert got.wait_for("/hook", 1) == [{"event": "transcribed", "file": "a.mp3"}]
        apprise = got.wait_for("/apprise", 1)[0]
        assert apprise["title"] == "whisper-fleet: a file failed" and apprise["message"] == "b.mp3: empty file"


def test_an_unreachable_service_costs_the_caller_nothing_and_is_logged_after_a_few_tries():
    dead = f"http://127.0.0.1:{free_port()}/hook"
    notifier = Notifier(webhook_url=dead, backoff_s=0.01)
    started = time.perf_counter()
    with capture_logs() as logs:
        for index in range(20):
            notifier.event({"event": "transcribed", "file": f"{index}.mp3"})
        queued_s = time.perf_counter() - started
        notifier.close()
    assert queued_s < 0.5
    failures = [entry for entry in logs if entry["event"] == "notification not delivered"]
    assert len(failures) == 20 and all(entry["attempts"] == ATTEMPTS for entry in failures)


def test_nothing_configured_sends_nothing_and_starts_no_thread():
    notifier = Notifier()
    notifier.event({"event": "transcribed"})
    notifier.message("title", "body")
    assert not notifier.enabled and notifier._thread is None


def test_notify_urls_split_where_a_new_url_starts_and_a_typo_is_one_line(tmp_path):
    roots = {"source_dir": tmp_path / "s", "dest_dir": tmp_path / "d"}
    settings = FleetSettings(**roots, FLEET_NOTIFY_URLS="ntfy://fleet?tags=a,b, json://nas.lan/hook  gotify://h/Token")
    assert settings.notify_urls == ("ntfy://fleet?tags=a,b", "json://nas.lan/hook", "gotify://h/Token")
    with pytest.raises(ValidationError, match="not an Apprise URL Apprise can use: nosuch://"):
        FleetSettings(**roots, FLEET_NOTIFY_URLS="nosuch://x")
    with pytest.raises(ValidationError, match="FLEET_WEBHOOK_URL"):
        FleetSettings(**roots, FLEET_WEBHOOK_URL="ftp://x")
