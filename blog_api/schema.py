"""The schema is Alembic's (Flask-Migrate), in the top-level `migrations/` folder.

`flask --app blog_api db upgrade` brings a database to the migrations' head; the app never creates
tables itself. At start-up the app reads its head revision from the migrations folder (files, no
database); `problem()` then tells, in two small queries, whether a database is at that head.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from sqlalchemy.engine import Connection

from .config import ConfigError
from .extensions import db, migrate

UPGRADE_HINT = "run flask --app blog_api db upgrade"

_checking = threading.local()


class _QuietChecks(logging.Filter):
    """Alembic's MigrationContext says "Context impl ..." at INFO whenever one is made: right for
    `flask db upgrade`, noise from a check that runs every second."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_checking, "active", False)


_quiet_checks = _QuietChecks()


def migrations_directory() -> Path:
    """The `migrations/` folder beside the package (a checkout), else in the working directory.

    An installed package (the Docker image) has no checkout around it: there the folder is where
    the process runs, as Flask-Migrate itself assumes.
    """
    beside_package = Path(__file__).resolve().parent.parent / "migrations"
    if beside_package.is_dir():
        return beside_package
    in_working_directory = Path.cwd() / "migrations"
    if in_working_directory.is_dir():
        return in_working_directory
    raise ConfigError(
        f"no migrations folder at {beside_package} or {in_working_directory}: "
        "run the app from the project's folder (or copy migrations/ where it runs)"
    )


def init_app(app: Flask) -> tuple[str, ...]:
    """Register `flask db` for `app` and return the migrations' head revision(s)."""
    directory = migrations_directory()
    migrate.init_app(app, db, directory=str(directory))
    migration_log = logging.getLogger("alembic.runtime.migration")
    if _quiet_checks not in migration_log.filters:
        migration_log.addFilter(_quiet_checks)
    heads = tuple(ScriptDirectory(str(directory)).get_heads())
    if not heads:
        raise ConfigError(f"the migrations folder {directory} has no revision")
    return heads


def problem(connection: Connection, heads: tuple[str, ...]) -> str | None:
    """What keeps the database behind `connection` from being at `heads`, or None if nothing."""
    _checking.active = True
    try:
        current = MigrationContext.configure(connection).get_current_heads()
    finally:
        _checking.active = False
    if set(current) == set(heads):
        return None
    if not current:
        return f"schema missing: {UPGRADE_HINT}"
    return (
        f"schema at revision {', '.join(sorted(current))}, expected head {', '.join(heads)}: "
        f"{UPGRADE_HINT}"
    )
