"""Keep secrets out of every line the fleet writes: URL credentials, token-like query parameters, Apprise URLs,
and the values of the settings that are secrets (registered once the settings are read)."""

from __future__ import annotations

import base64
import logging
import re
import threading
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit, urlunsplit

from structlog.typing import EventDict, WrappedLogger

MASK = "***"
# user:password@ (or a bare token@) after any scheme.
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"<>]+@")
# ?token=..., &api_key=..., ;password=... : any parameter whose name says it holds a secret.
_SECRET_NAME = r"[a-z0-9_.-]*(?:token|key|secret|pass|pwd|auth|sig|credential)[a-z0-9_.-]*"
_SECRET_PARAM = re.compile(rf"(?i)([?&;]{_SECRET_NAME}=)[^&;#\s'\"<>]+")
# Apprise URLs (discord://id/token, tgram://bot-token/chat, gotify://host/token ...) carry their secret in the path:
# of a URL in any scheme but these, only the scheme is shown.
_PLAIN_SCHEMES = frozenset({"http", "https", "s3", "file"})
_ANY_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*)://[^\s'\"<>]+")
# Shorter values are no secret worth masking everywhere (LocalStack's AWS_SECRET_ACCESS_KEY is `test`).
MIN_SECRET_CHARS = 8
# A path segment this long in a webhook URL is a token (Discord's and Slack's webhooks carry theirs there).
TOKEN_SEGMENT_CHARS = 20
_known: set[str] = set()
_lock = threading.Lock()


def register_secrets(values: Iterable[str | None]) -> None:
    """Values that must never be shown (a token, a password, a whole webhook URL with its secret path)."""
    with _lock:
        _known.update(value for value in values if value and len(value) >= MIN_SECRET_CHARS)


def redact(text: str) -> str:
    """`text` with every secret it holds replaced by ***."""
    for value in sorted(_known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, MASK)
    text = _USERINFO.sub(rf"\1{MASK}@", text)
    text = _SECRET_PARAM.sub(rf"\1{MASK}", text)
    return _ANY_URL.sub(lambda m: m[0] if m[1].lower() in _PLAIN_SCHEMES else f"{m[1]}://{MASK}", text)


def url_secrets(url: str) -> list[str]:
    """What to register for a URL the user configured: its password, its secret-looking parameters, token-long path
    segments; all after the scheme for an Apprise URL (its path is its token)."""
    parts = urlsplit(url)
    found = [unquote(parts.password or "")]
    found += [m[0].split("=", 1)[1] for m in _SECRET_PARAM.finditer(f"?{parts.query}")]
    found += [segment for segment in parts.path.split("/") if len(segment) >= TOKEN_SEGMENT_CHARS]
    if parts.scheme.lower() not in _PLAIN_SCHEMES:
        found.append(url.split("://", 1)[-1])
    return found


def without_credentials(url: str) -> tuple[str, str | None]:
    """The URL with its user info taken out, and that user info as a Basic `Authorization` header (None if none):
    urllib would send `user:password@` nowhere, and put it in its error texts."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    host = parts.hostname or ""
    netloc = (f"[{host}]" if ":" in host else host) + (f":{parts.port}" if parts.port else "")
    token = base64.b64encode(f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()).decode()
    return urlunsplit(parts._replace(netloc=netloc)), f"Basic {token}"


def redact_event(_logger: WrappedLogger, _name: str, event: EventDict) -> EventDict:
    """structlog processor: every string in the event, nested ones too, redacted."""
    return {key: _redact_value(value) for key, value in event.items()}


def _redact_value(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value(item) for item in value)
    return value


class RedactingFilter(logging.Filter):
    """The standard library's log records (botocore, Apprise, whisperX) redacted the same way."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), ()
        return True
