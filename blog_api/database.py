"""Engine options that keep a broken database from hanging requests, and the breaker that makes
requests fail fast while it is out.

On PostgreSQL every call has a client-side deadline (blog_api.deadline): DATABASE_TIMEOUT seconds
per call, and per request in all. SQLite needs none: its busy timeout bounds its only wait.
The tables are the migrations' (blog_api.schema): the app never creates them.
"""

from __future__ import annotations

import logging

from flask import Flask, g
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError

from . import deadline
from .breaker import CircuitBreaker
from .config import DEFAULT_THREADS
from .extensions import db

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2
DEFAULT_TIMEOUT_S = 2.5
# The share of DATABASE_TIMEOUT a statement may run on the server: its cancel must reach the
# client before the client's own deadline closes the connection.
STATEMENT_SHARE = 0.6


def engine_options(
    url: str, timeout: float = DEFAULT_TIMEOUT_S, threads: int = DEFAULT_THREADS
) -> dict:
    """Bound every wait on the database: connecting, a pooled connection, a statement.

    The pool holds a connection for each of a worker's `threads`, so no thread waits for one.
    """
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        timeout_ms = max(int(timeout * 1000), 1)
        statement_ms = max(int(timeout * STATEMENT_SHARE * 1000), 1)
        return {
            "pool_pre_ping": True,
            "pool_size": max(5, threads),
            "pool_timeout": CONNECT_TIMEOUT_S,
            "connect_args": {
                # The deadline the client enforces on every call, connecting included.
                "connection_factory": deadline.connection_class(timeout, statement_ms / 1000),
                "connect_timeout": CONNECT_TIMEOUT_S,
                # The server stops a slow statement before the client stops waiting: an answer
                # that says "cancelled" on a working connection, not an outage (slow_statements).
                "options": f"-c statement_timeout={statement_ms}",
                # A peer that vanishes mid-query is noticed in seconds, not after TCP's minutes.
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 2,
                "keepalives_count": 2,
                "tcp_user_timeout": timeout_ms,
            },
        }
    if backend == "sqlite":
        return {"connect_args": {"timeout": CONNECT_TIMEOUT_S}}
    return {}


def _sqlite_pragmas(dbapi_connection, connection_record) -> None:
    """WAL lets readers work while a worker writes; SQLite enforces foreign keys only if asked."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def init_app(app: Flask) -> Engine:
    """Bind the database to `app` and return the engine; nothing is asked of the database yet.

    A database that is down or not migrated at start-up is not fatal: requests answer 503 until it
    is back and at the migrations' head (see blog_api.health).
    """
    db.init_app(app)
    app.teardown_appcontext(_close_session)  # runs before Flask-SQLAlchemy's own (reverse order)
    with app.app_context():
        engine = db.engine
    if engine.dialect.name == "sqlite":
        if not event.contains(engine, "connect", _sqlite_pragmas):
            event.listen(engine, "connect", _sqlite_pragmas)
    elif engine.dialect.name == "postgresql":
        timeout = app.extensions["blog_api.settings"].database_timeout
        breaker = app.extensions["blog_api.breaker"] = CircuitBreaker(probe_timeout_s=timeout)
        app.extensions["blog_api.health_checks"].breaker = breaker
        # A connection checked out has connected or passed its pre-ping: the database answers.
        event.listen(engine, "checkout", lambda *_: breaker.success())
        app.before_request(lambda: _start_budget(timeout))
        app.teardown_request(_end_budget)
    return engine


def _close_session(exc: BaseException | None) -> None:
    """End the request's session; a connection that died after the work is not the request's 500.

    Closing rolls back whatever is open; when the server went away since the last statement,
    that rollback fails. The response is already decided (a commit had finished, or nothing was
    written), and SQLAlchemy has dropped the connection from the pool: forget the session.
    """
    try:
        db.session.remove()
    except DBAPIError:
        log.debug("the connection died before the session closed", exc_info=True)
        db.session.registry.clear()


def _start_budget(timeout: float) -> None:
    g.database_budget = deadline.request_budget(timeout)


def _end_budget(exc: BaseException | None) -> None:
    token = g.pop("database_budget", None)
    if token is not None:
        deadline.end_request_budget(token)
