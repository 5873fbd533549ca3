"""Databases for the tests, with the schema the migrations make (the real `flask db upgrade`).

The migrations run for real once per test session and backend; each test then gets that schema
with no rows: on SQLite a copy of a migrated file (0.2 ms, where a real upgrade takes 50 ms), on
PostgreSQL the migrated tables emptied and their ids restarted (2-3 ms on a kept connection, where
a real upgrade takes 300 ms and the former drop + create_all 55 ms). tests/test_migrations.py pins
that this schema is the models'.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import flask_migrate
import sqlalchemy as sa
from flask import Flask

from blog_api.extensions import db, migrate
from blog_api.schema import migrations_directory

_template: Path | None = None


def migration_app(url: str) -> Flask:
    """A Flask app that has `flask db` for `url` and nothing else: the app's migrations, env.py
    and Flask-Migrate, without building a whole blog_api app (its telemetry would be the first
    of the test process)."""
    app = Flask("blog_api_migrations")
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    db.init_app(app)
    migrate.init_app(app, db, directory=str(migrations_directory()))
    return app


def upgrade(url: str, revision: str = "head") -> None:
    """`flask --app blog_api db upgrade` on `url`, in this process."""
    app = migration_app(url)
    with app.app_context():
        flask_migrate.upgrade(revision=revision)
        db.engine.dispose()


def migrated_sqlite(path: Path) -> str:
    """Put an empty, migrated SQLite database at `path` and return its URL."""
    global _template
    if _template is None:
        directory = Path(tempfile.mkdtemp(prefix="blog-api-schema-"))
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        upgrade(f"sqlite:///{directory / 'migrated.db'}")
        _template = directory / "migrated.db"
    shutil.copyfile(_template, path)
    return f"sqlite:///{path}"


def drop_everything(url: str) -> None:
    """Drop every table of the database at `url` (the version table too)."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        metadata = sa.MetaData()
        with engine.begin() as connection:
            metadata.reflect(connection)
            metadata.drop_all(connection)
    finally:
        engine.dispose()


def remigrate_postgres(url: str) -> None:
    """Drop whatever is there and run the migrations from the start."""
    drop_everything(url)
    upgrade(url)


_engines: dict[str, sa.Engine] = {}


def empty_postgres(url: str) -> None:
    """Delete every row of the migrated tables, ids from 1 again; migrate anew if a test damaged
    the schema. On a kept connection: a new one costs more than the emptying."""
    engine = _engines.get(url)
    if engine is None:
        engine = _engines[url] = sa.create_engine(url, pool_size=1)
    statements = []
    for table in reversed(db.metadata.sorted_tables):  # children first
        statements.append(f"DELETE FROM {table.name}")
        for column in table.primary_key.columns:  # NULL (nothing done) if it has no sequence
            statements.append(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), 1, false)"
            )
    try:
        with engine.begin() as connection:
            connection.execute(sa.text("; ".join(statements)))
    except sa.exc.ProgrammingError:
        engine.dispose()
        remigrate_postgres(url)


def _as_admin(server_url: str, statement: str) -> None:
    """Run `statement` outside a transaction (CREATE/DROP DATABASE) on the server of the URL."""
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(statement))
    finally:
        admin.dispose()


def drop_postgres_database(url: str) -> None:
    """Drop the database of `url`, cutting its sessions (it is gone for whoever uses it)."""
    name = sa.make_url(url).database
    admin_url = sa.make_url(url).set(database="postgres")
    _as_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def new_postgres_database(server_url: str) -> Iterator[str]:
    """A database of its own on the server of `server_url`, with no tables; dropped afterwards."""
    name = f"blog_api_test_{uuid.uuid4().hex[:12]}"
    _as_admin(server_url, f'CREATE DATABASE "{name}"')
    url = sa.make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        drop_postgres_database(url)


def dispose_app(app) -> None:
    """Close every connection an app holds: its session, its pool, its health check's pool."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    app.extensions["blog_api.health_checks"].engine.dispose()
