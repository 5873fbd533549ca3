"""One log line a request, written while the request's span is current, so it carries its trace id.

Usage (`init_telemetry` does this for you; `ACCESS_LOG=false` turns it off)::

    from telemetry.access_log import AccessLog
    access = AccessLog()  # the `access` logger
    access.write("GET", "/api/v1/posts/<int:post_id>", 200, 0.0031, "10.0.0.7")

A line says: `method`, `route` (the URL rule Flask matched, None when none did: never the raw
path, whose ids and query belong to the span), `status` (None when no response was started),
`duration_ms` and `client_address` (`REMOTE_ADDR` as the app left it, so a proxy fix applied
inside the app is reflected). Under `logs.JsonFormatter` those are fields of the JSON object,
beside `trace_id` and `span_id`; under `TextFormatter` they are the message.

The lean instrumentation (`http_server`) writes the line as the request ends, just before its
span does, from values it has measured anyway: no hook, no lookup, no clock read of its own.
With the contrib instrumentation, or with the SDK disabled, `log_requests` writes it from Flask's
`after_request` hook instead (the contrib span is still current there). Paths the
instrumentation leaves out (/metrics and `skip_paths`, such as /health) write no line: probes
every few seconds would bury the API's own lines, and they are counted nowhere else either.

The `access` logger is set to INFO when nobody has set its level, so `LOG_LEVEL=WARNING` quiets
the app's own lines but not this one; set the logger's level yourself to change that.
"""

from __future__ import annotations

import logging
from time import perf_counter

import flask
from flask import Flask

LOGGER_NAME = "access"
_START = "telemetry.access_log.start"  # environ key: when the request reached Flask
_INFO = logging.INFO


class AccessLog:
    """Write access lines to one logger, built once: a request costs one record, one format."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._logger = logger or logging.getLogger(LOGGER_NAME)
        if self._logger.level == logging.NOTSET:
            self._logger.setLevel(_INFO)

    def write(
        self,
        method: str,
        route: str | None,
        status: int | None,
        seconds: float,
        client_address: str | None,
    ) -> None:
        """Log one request; call it while the request's span is current."""
        logger = self._logger
        if not logger.isEnabledFor(_INFO):
            return
        duration_ms = round(seconds * 1000, 3)
        fields = {
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
            "client_address": client_address,
        }
        record = logger.makeRecord(
            logger.name,
            _INFO,
            "",
            0,
            "%s %s %s %.1f ms %s",
            (method, route or "-", status or "-", duration_ms, client_address or "-"),
            None,
            extra=fields,
        )
        logger.handle(record)


def log_requests(app: Flask, access: AccessLog, skip) -> None:
    """Write `access` lines from Flask's hooks, for when `http_server` is not the instrumentation.

    `skip` is a container of paths (see `http_server.SkipPaths`) that write no line.
    """

    def start() -> None:
        flask.request.environ[_START] = perf_counter()

    def finish(response):
        request = flask.request
        environ = request.environ
        if request.path not in skip:
            started = environ.get(_START)
            access.write(
                request.method,
                request.url_rule.rule if request.url_rule is not None else None,
                response.status_code,
                perf_counter() - started if started is not None else 0.0,
                environ.get("REMOTE_ADDR"),
            )
        return response

    app.before_request_funcs.setdefault(None, []).insert(0, start)
    app.after_request(finish)
