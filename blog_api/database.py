"""Engine options that keep a broken database from hanging requests.

The tables are the migrations' (blog_api.schema): the app never creates them.
"""

from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url

from .extensions import db

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 2
STATEMENT_TIMEOUT_MS = 5000


def engine_options(url: str) -> dict:
    """Bound every wait on the database: connecting, a pooled connection, a statement."""
    backend = make_url(url).get_backend_name()
    if backend == "postgresql":
        return {
            "pool_pre_ping": True,
            "pool_timeout": CONNECT_TIMEOUT_S,
            "connect_args": {
                "connect_timeout": CONNECT_TIMEOUT_S,
                "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
                # A peer that vanishes mid-query is noticed in seconds, not after TCP's minutes.
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 2,
                "keepalives_count": 2,
                "tcp_user_timeout": STATEMENT_TIMEOUT_MS,
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
    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite" and not event.contains(
            engine, "connect", _sqlite_pragmas
        ):
            event.listen(engine, "connect", _sqlite_pragmas)
    return engine
