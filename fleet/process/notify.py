"""Tell people and scripts what happened: Apprise messages (ntfy, Gotify, Discord, mail, ...) and a JSON webhook.

Delivery runs on a thread of its own, a few tries each, so a notification service that is down or slow never
fails or slows the work; what cannot be delivered is logged and dropped.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from fleet.process.errors import first_line
from fleet.process.secrets import redact, without_credentials

log = structlog.get_logger()
ATTEMPTS = 3
FIRST_BACKOFF_S = 1.0
TIMEOUT_S = 10.0
# Undelivered notifications held at most: beyond this the oldest are dropped (a service down for a day).
MAX_PENDING = 1000


@dataclass(frozen=True)
class Notification:
    """One thing to deliver: a webhook event (a JSON body) or an Apprise message (a title and a body)."""

    kind: str  # "webhook" or "apprise"
    payload: dict[str, object]


class Notifier:
    """Deliver notifications in the background; `close` waits a little for the last ones."""

    def __init__(self, apprise_urls: tuple[str, ...] = (), webhook_url: str | None = None,
                 backoff_s: float = FIRST_BACKOFF_S) -> None:  # fmt: skip
        self.apprise_urls = apprise_urls
        self.webhook_url = webhook_url
        # `http://user:password@host/hook`: the credentials go in a header, never in the request line or an error
        self._webhook_target, self._webhook_auth = without_credentials(webhook_url) if webhook_url else (None, None)
        self.backoff_s = backoff_s
        self._pending: queue.Queue[Notification | None] = queue.Queue()
        self._thread: threading.Thread | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.apprise_urls or self.webhook_url)

    def event(self, payload: dict[str, object]) -> None:
        """A webhook event (when FLEET_WEBHOOK_URL is set)."""
        if self.webhook_url:
            self._put(Notification("webhook", payload))

    def message(self, title: str, body: str) -> None:
        """An Apprise message (when FLEET_NOTIFY_URLS is set)."""
        if self.apprise_urls:
            self._put(Notification("apprise", {"title": title, "body": body}))

    def close(self, timeout_s: float = 15.0) -> None:
        """Deliver what is pending for at most `timeout_s`, then stop (what is left is logged as dropped)."""
        if self._thread is None:
            return
        self._pending.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("notifications not delivered before exit", pending=self._pending.qsize())

    def _put(self, notification: Notification) -> None:
        if self._pending.qsize() >= MAX_PENDING:
            try:
                dropped = self._pending.get_nowait()
                log.warning("notification dropped: too many undelivered", kind=dropped.kind if dropped else None)
            except queue.Empty:
                pass
        self._pending.put(notification)
        if self._thread is None:
            self._thread = threading.Thread(target=self._deliver_all, name="notify", daemon=True)
            self._thread.start()

    def _deliver_all(self) -> None:
        while (notification := self._pending.get()) is not None:
            send: Callable[[dict[str, object]], None] = self._post_webhook if notification.kind == "webhook" else self._apprise
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    send(notification.payload)
                    break
                except Exception as exc:  # noqa: BLE001 - any failure of a notification must stay a log line
                    if attempt == ATTEMPTS:
                        log.warning("notification not delivered", kind=notification.kind, attempts=attempt,
                                    error=redact(first_line(exc)))  # fmt: skip
                    else:
                        time.sleep(self.backoff_s * 4 ** (attempt - 1))

    def _post_webhook(self, payload: dict[str, object]) -> None:
        assert self._webhook_target is not None
        headers = {"Content-Type": "application/json", "User-Agent": "whisper-fleet"}
        if self._webhook_auth:
            headers["Authorization"] = self._webhook_auth
        request = urllib.request.Request(self._webhook_target, data=json.dumps(payload).encode(), method="POST", headers=headers)
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 - the user's own URL
            response.read()

    def _apprise(self, payload: dict[str, object]) -> None:
        import apprise

        notifier = apprise.Apprise()
        for url in self.apprise_urls:
            if not notifier.add(url):
                raise ValueError(f"not an Apprise URL: {url.split('://')[0]}://...")
        if not notifier.notify(title=str(payload["title"]), body=str(payload["body"])):
            raise RuntimeError("Apprise could not deliver to every service")
