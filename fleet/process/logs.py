"""structlog setup: readable lines on a terminal, one JSON object per line everywhere else."""

from __future__ import annotations

import logging
import sys

import structlog

from fleet.process.secrets import RedactingFilter, redact_event


def configure_logging(level: str = "info", fmt: str = "auto") -> None:
    """Route structlog to stderr; stdout is kept for results (plans, summaries)."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,  # last before rendering: exception texts too
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    # botocore logs its retries at DEBUG; keep them out of the way unless asked for.
    logging.basicConfig(level=logging.WARNING if level != "debug" else logging.DEBUG, stream=sys.stderr)
    for handler in logging.getLogger().handlers:  # at debug, botocore and urllib3 show URLs and headers
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
