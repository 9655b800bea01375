"""No password, token or key in what the fleet writes: URLs, query parameters, Apprise URLs, registered values."""

from __future__ import annotations

import logging

import pytest

from fleet.process.secrets import RedactingFilter, redact, redact_event, register_secrets, url_secrets, without_credentials


@pytest.mark.parametrize(("text", "shown"), [
    ("POST http://user:pa%40ss@host:8080/hook failed", "POST http://***@host:8080/hook failed"),
    ("http://h/x?token=abc&b=1&api_key=zz;password=p", "http://h/x?token=***&b=1&api_key=***;password=***"),
    ("ntfys://user:pass@ntfy.sh/topic, discord://1234/abcd", "ntfys://*** discord://***"),
    ("s3://bucket/prefix and https://host/path?page=2", "s3://bucket/prefix and https://host/path?page=2"),
])  # fmt: skip
def test_secrets_in_urls_are_masked_wherever_they_appear(text, shown):
    assert redact(text).replace(",", "") == shown.replace(",", "")


def test_a_registered_webhook_path_token_and_password_are_masked_even_outside_a_url():
    register_secrets(url_secrets("https://discord.com/api/webhooks/123/AbCdEfGhIjKlMnOpQrStUvWx?x=1"))
    register_secrets(url_secrets("http://me:correct-horse@nas/hook"))
    assert redact("bad token AbCdEfGhIjKlMnOpQrStUvWx") == "bad token ***"
    assert redact("login correct-horse refused") == "login *** refused"
    register_secrets(["test"])  # LocalStack's secret key: too short to mask everywhere
    assert redact("tests/test_x.py") == "tests/test_x.py"


def test_credentials_in_a_webhook_url_become_a_basic_authorization_header():
    assert without_credentials("http://user:pa%40ss@[::1]:8080/hook?x=1") == (
        "http://[::1]:8080/hook?x=1",
        "Basic dXNlcjpwYUBzcw==",
    )
    assert without_credentials("https://host/hook") == ("https://host/hook", None)


def test_log_events_and_standard_library_records_are_redacted_nested_ones_too():
    event = redact_event(None, "warning", {"event": "x", "error": "http://u:p@h/", "urls": ["a?key=1"], "n": 3})
    assert event == {"event": "x", "error": "http://***@h/", "urls": ["a?key=***"], "n": 3}
    record = logging.LogRecord("botocore", logging.DEBUG, "f", 1, "sending %s", ("https://h/?X-Amz-Signature=abc",), None)
    RedactingFilter().filter(record)
    assert record.getMessage() == "sending https://h/?X-Amz-Signature=***"
