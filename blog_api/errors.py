"""One error shape for every layer: routing, validation, auth, the database.

`{"error": "<Reason Phrase>", "message": "<for a person>"}` plus `"details"` for validation errors.
"""

from __future__ import annotations

import logging

from apiflask import APIFlask, HTTPError
from flask import Response, current_app, jsonify
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from werkzeug.exceptions import HTTPException, default_exceptions
from werkzeug.http import HTTP_STATUS_CODES

from telemetry.redact import redact_url_credentials

from . import slow_statements
from .extensions import db

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


def error_response(
    status: int,
    message: str | None = None,
    details: dict | None = None,
    headers: dict | None = None,
) -> Response:
    """Build the JSON error response every handler returns."""
    reason = HTTP_STATUS_CODES.get(status, "Unknown Error")
    body: dict = {"error": reason, "message": message or _default_message(status)}
    if details:
        body["details"] = details
    response = jsonify(body)
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _default_message(status: int) -> str:
    exc = default_exceptions.get(status)
    return exc.description if exc is not None and exc.description else HTTP_STATUS_CODES[status]


def _flatten_details(detail: dict) -> dict[str, list[str]]:
    """Turn webargs' `{location: {field: [msg]}}` into `{field: [msg]}`."""
    flat: dict[str, list[str]] = {}
    for location_errors in detail.values():
        if not isinstance(location_errors, dict):
            continue
        for field, messages in location_errors.items():
            if isinstance(messages, dict):  # nested or per-item errors
                messages = [f"{key}: {msg}" for key, msg in messages.items()]
            flat.setdefault(field, []).extend(messages)
    return flat


def _shape_http_error(error: HTTPError) -> Response:
    message = error.message
    if message == HTTP_STATUS_CODES.get(error.status_code):
        message = None  # only the reason phrase: give the person a sentence instead
    details = None
    if error.status_code == 422 and error.detail:
        details = _flatten_details(error.detail)
        message = "The request body or query did not pass validation; see details."
    return error_response(error.status_code, message, details, dict(error.headers or {}))


def _shape_werkzeug_error(exc: HTTPException) -> Response:
    """Like APIFlask's handler, but keep the exception's own description as the message."""
    headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
    return _shape_http_error(HTTPError(exc.code or 500, exc.description, headers=headers))


def database_unavailable_response() -> Response:
    """The 503 + Retry-After of a database that cannot be reached."""
    return error_response(
        503,
        "The database is unavailable; try again shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _database_unavailable(exc: Exception) -> Response:
    """Answer 503 with Retry-After when the database cannot be reached, never a 500 or a hang.

    A failure of the connection itself (refused, cut, no answer by the deadline) opens the
    breaker, which logs it once (blog_api.breaker); an error the server reports (a deadlock, a
    statement it cancelled for time: blog_api.slow_statements) is that request's alone, and
    logged as a warning.
    """
    orig = getattr(exc, "orig", None)
    breaker = current_app.extensions.get("blog_api.breaker")
    slow = orig is not None and slow_statements.is_statement_timeout(orig)
    if slow:
        slow_statements.record()  # the server answered: this statement's problem, not an outage
    elif orig is not None and _is_connection_failure(exc, orig) and breaker is not None:
        breaker.failure(f"{orig.__class__.__name__}: {driver_message(orig)}")
    else:
        log.warning("database error answered 503: %s", exc.__class__.__name__)
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection is already gone; nothing more to undo
        log.debug("rollback after a database failure failed too", exc_info=True)
    if slow:
        return error_response(
            503,
            "The database took too long to answer this request; try again later, or narrow it.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    return database_unavailable_response()


def _is_connection_failure(exc: Exception, orig: BaseException) -> bool:
    """The connection failed (SQLAlchemy saw a disconnect, or the driver reports no server code)."""
    return bool(getattr(exc, "connection_invalidated", False)) or (
        getattr(orig, "pgcode", None) is None
    )


def driver_message(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """The first line of the driver's message (no SQL, no parameters), without URL credentials
    or `secrets`: what logs, /health and the CLI may say of a database or Redis failure."""
    orig = getattr(exc, "orig", None) or exc
    message = (str(orig).strip().splitlines() or [""])[0] or orig.__class__.__name__
    message = redact_url_credentials(message)
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message


def init_app(app: APIFlask) -> None:
    """Route every error through the one shape."""
    app.error_processor(_shape_http_error)
    app.register_error_handler(HTTPException, _shape_werkzeug_error)
    for exc_type in (OperationalError, InterfaceError, PoolTimeoutError):
        app.register_error_handler(exc_type, _database_unavailable)
