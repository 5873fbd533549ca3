"""Count and log logins by outcome: the one place the login route reports to telemetry.

Failed and throttled logins are security events: their log records carry the username the client
sent (escaped and cut to USERNAME_LOG_CHARS, so a name cannot forge log lines) and the client
address, as fields of their own (`extra`) for the JSON log.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app
from opentelemetry.metrics import Meter

_KEY = "blog_api.login_counter"
USERNAME_LOG_CHARS = 64

log = logging.getLogger("blog_api.logins")


def init_app(app: Flask, meter: Meter) -> None:
    """Create the `blog_api.logins` counter on `meter` (a no-op meter when telemetry is off)."""
    app.extensions[_KEY] = meter.create_counter(
        "blog_api.logins", unit="{login}", description="Login attempts by outcome."
    )


def record_login(outcome: str) -> None:
    """Count one login attempt: `success`, `failure` (wrong password) or `throttled`."""
    counter = current_app.extensions.get(_KEY)
    if counter is not None:
        counter.add(1, {"outcome": outcome})


def loggable_username(name: str) -> str:
    """The name as sent, safe in one log line: control characters escaped, length capped."""
    cut = name[:USERNAME_LOG_CHARS]
    escaped = "".join(
        c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
        for c in cut
    )
    return escaped + ("..." if len(name) > USERNAME_LOG_CHARS else "")


def log_security_event(level: int, message: str, name: str, client_address: str) -> None:
    """A failed or throttled login, with the username and the address an operator looks for."""
    log.log(
        level,
        message,
        extra={"username": loggable_username(name), "client_address": client_address},
    )
