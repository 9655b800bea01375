"""The dashboard in a real browser (Debian's headless Chromium via selenium), and its file guard."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from fleet.state.plan_summary import PlanCounts, PlanSummary
from fleet.transport.queue import OutgoingMessage
from tests.support.browser import chromium
from tests.support.fleet_procs import fleet_env
from tests.support.paths import REPO_ROOT
from tests.support.ports import free_port

pytestmark = pytest.mark.queue
ARTIFACTS = Path(os.environ.get("FLEET_TEST_ARTIFACTS", REPO_ROOT / ".artifacts"))


def prepare_dest(dest: Path, outside: Path) -> None:
    """A fleet mid-run: a plan, a busy worker, a failure, two finished transcripts."""
    fleet = dest / ".fleet"
    (fleet / "director").mkdir(parents=True)
    PlanSummary(at=time.time(), source="/source", dest=str(dest), queue="q.fifo", settings_key="k", found=5,
                counts=PlanCounts(done=1, enqueue=4), ignored={"not media": 2}).write(dest)  # fmt: skip
    (fleet / "workers").mkdir()
    (fleet / "workers" / "w-1.json").write_text(json.dumps(
        {"worker": "w-1", "state": "working", "file": "talks/long one.mp3", "stage": "transcribe",
         "stage_progress": 40.0, "files_done": 2, "audio_s_done": 7200, "started_at": time.time() - 3600,
         "last_beat": time.time() + 3600, "lost_after_s": 30}))  # fmt: skip
    (fleet / "workers" / "w-2.json").write_text(json.dumps(
        {"worker": "w-2", "state": "waiting", "waiting": "source not available: source folder /source is empty",
         "waiting_since": time.time() - 60, "last_beat": time.time() + 3600, "lost_after_s": 30}))  # fmt: skip
    (fleet / "failed").mkdir()
    (fleet / "failed" / "x.json").write_text(json.dumps(
        {"source": "broken.mp3", "fingerprint": {"size": 1, "mtime_ns": 1}, "settings_key": "k",
         "reason": "not decodable (corrupt or not a media file)", "failed_at": time.time()}))  # fmt: skip
    (dest / "talks").mkdir()
    for name in ("ep1", "ünï 2"):
        (dest / "talks" / f"{name}.txt").write_text(f"transcript of {name}\n")
        (dest / "talks" / f"{name}.json").write_text(json.dumps({"fleet": {"source": f"talks/{name}.mp3"}, "segments": []}))
    (outside / "secret.txt").write_text("do not serve")
    (dest / "talks" / "leak.txt").symlink_to(outside / "secret.txt")


@pytest.fixture
def dashboard(localstack_endpoint, make_settings, open_queue, tmp_path):
    settings = make_settings(localstack_endpoint)
    outside = tmp_path / "outside"
    outside.mkdir()
    prepare_dest(settings.dest_dir, outside)
    queue = open_queue(settings)
    queue.send_batch([OutgoingMessage("d1", "g1", "{}"), OutgoingMessage("d2", "g2", "{}")])
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "dashboard", "--port", str(port)],
                               env=fleet_env(settings), stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout.readline().startswith(f"dashboard: http://127.0.0.1:{port}/")
    yield f"http://127.0.0.1:{port}", settings.dest_dir, queue
    process.terminate()
    process.wait(10)


def test_the_page_shows_counts_progress_workers_failures_and_links(dashboard):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, dashboard_dest, dashboard_queue = dashboard
    browser = chromium()
    try:
        browser.get(url)
        WebDriverWait(browser, 20).until(lambda b: b.find_element(By.ID, "found").text == "5")
        text = {i: browser.find_element(By.ID, i).text for i in ("done", "queued", "failed", "ignored", "queue-visible")}
        assert text == {"done": "1", "queued": "4", "failed": "1", "ignored": "2", "queue-visible": "2"}
        # 5 found, 1 done before, 4 queued: 2 still in the queue, 2 left it (one of them failed since the plan)
        assert browser.find_element(By.ID, "overall-text").text.startswith("2 of 5 files transcribed, 2 to go, 1 failed (60%)")
        assert browser.find_element(By.ID, "overall-bar").get_attribute("style") == "width: 60%;"
        card = browser.find_element(By.CSS_SELECTOR, '.worker-card[data-worker="w-1"]')
        assert "talks/long one.mp3 · transcribe" in card.text and "2 done" in card.text and "working" in card.text
        waiting = browser.find_element(By.CSS_SELECTOR, '.worker-card.waiting[data-worker="w-2"]').text
        assert "waiting: source not available: source folder /source is empty since " in waiting
        (row,) = browser.find_elements(By.CSS_SELECTOR, "#failures tbody tr")
        cells = [td.text for td in row.find_elements(By.TAG_NAME, "td")]
        assert cells[:2] == ["broken.mp3", "not decodable (corrupt or not a media file)"]
        links = {a.text: a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#transcripts a")}
        assert set(links) == {"json", "txt"}
        WebDriverWait(browser, 10).until(lambda b: b.find_elements(By.CSS_SELECTOR, "#throughput-chart polyline"))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(ARTIFACTS / "dashboard.png"))
        # It updates itself: the worker moves on and the queue grows, and the page follows without a reload
        record_path = dashboard_dest / ".fleet" / "workers" / "w-1.json"
        record = json.loads(record_path.read_text())
        record_path.write_text(json.dumps({**record, "file": "talks/next.mp3", "stage": "align"}))
        dashboard_queue.send_batch([OutgoingMessage("d3", "g3", "{}")])
        WebDriverWait(browser, 10).until(lambda b: b.find_element(By.ID, "queue-visible").text == "3")
        WebDriverWait(browser, 10).until(lambda b: "talks/next.mp3 · align" in b.find_element(By.ID, "workers").text)
        browser.get(links["txt"])
        assert browser.find_element(By.TAG_NAME, "body").text.startswith("transcript of")
    finally:
        browser.quit()


@pytest.mark.parametrize(
    "path",
    ["/files/../../etc/passwd", "/files/%2e%2e/%2e%2e/etc/passwd", "/files//etc/passwd", "/files/talks/leak.txt",
     "/files/.fleet/director/last-plan.json", "/files/talks/../.fleet/failed/x.json", "/files/talks",
     "/assets/../server.py", "/files/talks/ep1.mp3"],
)  # fmt: skip
def test_nothing_outside_the_transcripts_can_be_requested(dashboard, path):
    host, port = dashboard[0].removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("GET", path)  # sent as written: no client-side normalisation
    response = connection.getresponse()
    body = response.read()
    assert response.status == 404, (path, response.status)
    assert b"do not serve" not in body and b"root:" not in body


def test_a_transcript_is_served_read_only(dashboard):
    url = dashboard[0]
    with urllib.request.urlopen(f"{url}/files/talks/%C3%BCn%C3%AF%202.txt", timeout=10) as response:
        assert response.read() == "transcript of ünï 2\n".encode()
    request = urllib.request.Request(f"{url}/files/talks/ep1.txt", data=b"x", method="PUT")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 501


@pytest.mark.parametrize(("host", "status"), [("evil.example", 421), ("evil.example:80", 421), ("127.0.0.1", 200),
                                              ("localhost:8080", 200), ("[::1]:8080", 200), ("192.168.1.20", 200)])  # fmt: skip
def test_only_addresses_and_known_names_are_answered(dashboard, host, status):
    # A page on evil.example whose DNS name is rebound to 127.0.0.1 sends Host: evil.example; it must read nothing
    address, port = dashboard[0].removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(address, int(port), timeout=10)
    connection.request("GET", "/api/status", headers={"Host": host})
    response = connection.getresponse()
    body = response.read()
    assert response.status == status, (host, response.status)
    assert (b"queue_name" in body) is (status == 200)
