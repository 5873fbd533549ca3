"""One log line a record on stderr, JSON or text, carrying the current trace and span ids.

Usage::

    from telemetry import configure_logging
    configure_logging(level="INFO", fmt="json")

Every record written while a span is current (for example while a request is served under the
Flask instrumentation) gets `trace_id` and `span_id`, so a log line leads to its trace in Jaeger.
Fields passed as `extra` (`log.info("login failed", extra={"username": name})`) become fields
of the JSON object. Calling it again replaces the handler it installed; other handlers are left
alone.

A process of our own (gunicorn's config, `run.py`) calls `log_uncaught_exceptions()` too, so that
an exception nobody caught, in any thread, is one record (its traceback inside) rather than raw
lines on stderr. It is not done here, because test runners install hooks of their own.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from datetime import UTC, datetime

from opentelemetry import trace

_HANDLER_NAME = "telemetry.stderr"
# Terminal colours (the Werkzeug dev server paints status codes) mean nothing in a JSON log.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TEXT_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [trace_id=%(trace_id)s span_id=%(span_id)s] %(message)s"
)


# What every LogRecord has; anything else on a record came from `extra`.
_RECORD_ATTRIBUTES = frozenset(
    (*vars(logging.LogRecord("", 0, "", 0, "", (), None)), "message", "asctime", "taskName")
)
_ENTRY_KEYS = frozenset({"time", "level", "logger", "message", "trace_id", "span_id", "exception"})


def _trace_ids() -> tuple[str, str]:
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return "", ""
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object on one line.

    Built for one line a request: the encoder is made once, and the time's text once a second.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._encode = json.JSONEncoder(ensure_ascii=False, default=str).encode
        self._second: tuple[int, str] = (-1, "")  # replaced whole: threads share it

    def _time(self, created: float) -> str:
        """`created` as ISO 8601 UTC with milliseconds (`2026-11-29T08:53:48.430+00:00`)."""
        whole = int(created)
        second = self._second
        if second[0] != whole:
            text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            second = self._second = (whole, text)
        return f"{second[1]}.{int((created - whole) * 1000):03d}+00:00"

    def format(self, record: logging.LogRecord) -> str:
        trace_id, span_id = _trace_ids()
        message = record.getMessage()
        entry = {
            "time": self._time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": _ANSI.sub("", message) if "\x1b" in message else message,
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in _ENTRY_KEYS:
                entry[key] = value
        if trace_id:
            entry["trace_id"] = trace_id
            entry["span_id"] = span_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self._encode(entry)


class TextFormatter(logging.Formatter):
    """Format a record for a person reading a terminal."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        record.trace_id, record.span_id = _trace_ids()
        return super().format(record)


class _StderrHandler(logging.StreamHandler):
    """Write to whatever sys.stderr is at the time (test runners swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    """Send the root logger's records to stderr, one line each, at `level`."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if handler.get_name() == _HANDLER_NAME:
            root.removeHandler(handler)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)


def log_uncaught_exceptions(logger_name: str = "uncaught") -> None:
    """Log an exception no code caught (main thread or any other) as one CRITICAL/ERROR record."""
    logger = logging.getLogger(logger_name)

    def main_thread(exc_type, exc, tb) -> None:
        if issubclass(exc_type, KeyboardInterrupt):
            sys.__excepthook__(exc_type, exc, tb)
            return
        logger.critical("uncaught exception", exc_info=(exc_type, exc, tb))

    def other_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit:
            return
        name = args.thread.name if args.thread is not None else "?"
        logger.error(
            "uncaught exception in thread %s",
            name,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    sys.excepthook = main_thread
    threading.excepthook = other_thread
    logging.captureWarnings(True)  # warnings.warn() becomes a record of `py.warnings`
