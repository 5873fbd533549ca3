"""The migrations make exactly the models' schema, on SQLite and PostgreSQL, and go both ways.

After `upgrade head`, Alembic's autogenerate comparison (what `flask db migrate` would write into a
new revision) finds nothing: a model changed without a migration fails here.
"""

import subprocess
import sys

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from blog_api.extensions import db
from blog_api.schema import migrations_directory

from . import databases
from .live_server import ROOT

HEADS = tuple(ScriptDirectory(str(migrations_directory())).get_heads())


def _differences(url: str, metadata: sa.MetaData = db.metadata) -> list:
    """What autogenerate would put into a new revision for `url` against `metadata`."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return compare_metadata(context, metadata)
    finally:
        engine.dispose()


def _revisions(url: str) -> tuple[str, ...]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_heads()
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_there_is_one_head():
    assert len(HEADS) == 1, HEADS


def test_upgrade_makes_exactly_the_models_schema(empty_database_url):
    databases.upgrade(empty_database_url)
    assert _revisions(empty_database_url) == HEADS
    assert _differences(empty_database_url) == []
    assert _tables(empty_database_url) == {*db.metadata.tables, "alembic_version"}


def test_downgrade_to_base_and_up_again(empty_database_url):
    databases.upgrade(empty_database_url)
    app = databases.migration_app(empty_database_url)
    with app.app_context():
        flask_migrate.downgrade(revision="base")
        db.engine.dispose()
    assert _tables(empty_database_url) == {"alembic_version"}
    assert _revisions(empty_database_url) == ()

    databases.upgrade(empty_database_url)
    assert _revisions(empty_database_url) == HEADS
    assert _differences(empty_database_url) == []


def test_the_comparison_sees_a_column_the_migrations_lack(empty_database_url):
    """Guard against a comparison that cannot fail: a model grown by a column is a difference."""
    databases.upgrade(empty_database_url)
    grown = sa.MetaData()
    for table in db.metadata.sorted_tables:
        table.to_metadata(grown)
    grown.tables["users"].append_column(sa.Column("nickname", sa.String(40), nullable=True))

    differences = _differences(empty_database_url, grown)
    assert [(d[0], d[2], d[3].name) for d in differences] == [("add_column", "users", "nickname")]


def test_the_documented_command_migrates(tmp_path):
    """`flask --app blog_api db upgrade` as the README says, in a process of its own."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"PATH": "/usr/bin:/bin", "APP_ENV": "development", "DATABASE_URL": url}
    flask = [sys.executable, "-m", "flask", "--app", "blog_api", "db"]
    upgrade = subprocess.run(
        [*flask, "upgrade"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert upgrade.returncode == 0, upgrade.stderr[-3000:]
    assert "Running upgrade  -> 0001" in upgrade.stderr
    assert _revisions(url) == HEADS
    assert _differences(url) == []


def _insert_users(url: str, *names: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.begin() as connection:
            for name in names:
                connection.execute(
                    sa.text(
                        "INSERT INTO users (username, email, password_hash, is_admin, created_at)"
                        " VALUES (:name, :email, 'x', false, CURRENT_TIMESTAMP)"
                    ),
                    {"name": name, "email": f"{name}@example.org"},
                )
    finally:
        engine.dispose()


def test_0002_refuses_names_that_differ_only_in_case(empty_database_url, caplog):
    """A database holding `alice` and `Alice` stays at 0001, and the one-line error names them."""
    databases.upgrade(empty_database_url, "0001")
    _insert_users(empty_database_url, "alice", "Alice", "bob")
    app = databases.migration_app(empty_database_url)
    with app.app_context():
        try:
            with pytest.raises(SystemExit):  # Flask-Migrate's exit status 1, as `db upgrade` has
                flask_migrate.upgrade(revision="head")
        finally:
            db.engine.dispose()
    assert "different cases: alice. Rename all but one of each" in caplog.text
    assert _revisions(empty_database_url) == ("0001",)


def test_0002_keeps_the_rows_and_their_ids(empty_database_url):
    databases.upgrade(empty_database_url, "0001")
    _insert_users(empty_database_url, "alice", "bob")
    databases.upgrade(empty_database_url)
    engine = sa.create_engine(empty_database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text("SELECT id, username FROM users ORDER BY id"))
            assert [tuple(row) for row in rows] == [(1, "alice"), (2, "bob")]
    finally:
        engine.dispose()
