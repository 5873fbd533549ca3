"""A statement the server cancelled for taking too long: that request's 503, never an outage.

PostgreSQL's `statement_timeout` is set below the client's deadline (blog_api.database), so on a
server that answers, a slow statement (a search over a large table, say) is cancelled by the
server first and comes back as an error with SQLSTATE 57014 on a connection that still works.
That answers the one request 503 with Retry-After, logs a WARNING naming the route, and counts
`blog_api.database.statement_timeouts`; the breaker (blog_api.breaker), which stops every request
for a second, opens only when the connection itself fails: the client's deadline passing with no
answer at all, a refused or cut connection.
"""

from __future__ import annotations

import logging

from flask import Flask, current_app, request
from opentelemetry.metrics import Meter

QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement cancelled (statement_timeout)
_KEY = "blog_api.statement_timeouts"

log = logging.getLogger("blog_api.database")


def init_app(app: Flask, meter: Meter) -> None:
    """Create the counter on `meter` (a no-op meter when telemetry is off)."""
    app.extensions[_KEY] = meter.create_counter(
        "blog_api.database.statement_timeouts",
        unit="{statement}",
        description="Statements the database cancelled for running past statement_timeout.",
    )


def is_statement_timeout(driver_error: BaseException) -> bool:
    return getattr(driver_error, "pgcode", None) == QUERY_CANCELED


def record() -> None:
    """Log and count one cancelled statement of the current request."""
    route = request.url_rule.rule if request.url_rule is not None else None
    log.warning(
        "statement cancelled by statement_timeout; the request answered 503",
        extra={"route": route, "method": request.method},
    )
    counter = current_app.extensions.get(_KEY)
    if counter is not None:
        counter.add(1, {"http.route": route or ""})
