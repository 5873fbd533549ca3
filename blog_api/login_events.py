"""Count logins by outcome: the one place the login route reports to telemetry."""

from __future__ import annotations

from flask import Flask, current_app
from opentelemetry.metrics import Meter

_KEY = "blog_api.login_counter"


def init_app(app: Flask, meter: Meter) -> None:
    """Create the `blog_api.logins` counter on `meter` (a no-op meter when telemetry is off)."""
    app.extensions[_KEY] = meter.create_counter(
        "blog_api.logins", unit="{login}", description="Login attempts by outcome."
    )


def record_login(ok: bool) -> None:
    """Count one login attempt whose credentials were checked."""
    counter = current_app.extensions.get(_KEY)
    if counter is not None:
        counter.add(1, {"outcome": "success" if ok else "failure"})
