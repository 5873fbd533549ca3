"""Readiness means it: not ready (503) until the schema is at the migrations' head, ready by
itself once it is, and cheap to poll."""

import logging
import math
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from blog_api import create_app
from blog_api.extensions import db
from blog_api.health import REUSE_S

from . import databases
from .conftest import SECRET, assert_error
from .live_server import ROOT, LiveServer

MISSING = "schema missing: run flask --app blog_api db upgrade"
REGISTER = {"username": "alice", "email": "alice@example.org", "password": "password1"}


def _app(url: str):
    return create_app(
        {
            "APP_ENV": "production",
            "DATABASE_URL": url,
            "SECRET_KEY": SECRET,
            "BCRYPT_ROUNDS": "4",
            "LOG_LEVEL": "CRITICAL",
        }
    )


def _not_ready(response) -> None:
    """A 503 in the one error shape, with Retry-After, about the database."""
    body = assert_error(response, 503)
    assert int(response.headers["Retry-After"]) > 0
    assert "database" in body["message"].lower()


def _wait_for(get, status: int, within_s: float = 3.0):
    """Call `get()` until it answers `status`; the last response."""
    deadline = time.monotonic() + within_s
    while True:
        response = get()
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.05)


def test_an_empty_database_is_not_ready_and_becomes_ready_once_migrated(empty_database_url):
    app = _app(empty_database_url)
    client = app.test_client()
    try:
        assert client.get("/health/live").status_code == 200
        for path in ("/health", "/health/ready"):
            response = client.get(path)
            assert response.status_code == 503
            body = response.get_json()
            assert body["status"] == "unhealthy"
            assert body["checks"]["database"] == {"status": "down", "error": MISSING}
        _not_ready(client.get("/api/v1/posts"))
        _not_ready(client.get("/api/v2/todos"))
        _not_ready(client.post("/api/v1/users/register", json=REGISTER))
        assert client.get("/api/openapi.json").status_code == 200  # needs no database
        assert_error(client.get("/api/v1/no-such-thing"), 404)

        databases.upgrade(empty_database_url)  # someone runs `flask db upgrade` meanwhile

        # The same app, no restart: an API request notices by itself within about a second.
        assert _wait_for(lambda: client.get("/api/v1/posts"), 200).status_code == 200
        assert client.post("/api/v1/users/register", json=REGISTER).status_code == 201
        response = client.get("/health/ready")
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["checks"]["database"]["status"] == "up"
    finally:
        databases.dispose_app(app)


def test_readiness_notices_the_migration_by_itself(empty_database_url):
    """Only /health polled (a load balancer), no API request: ready within about a second."""
    app = _app(empty_database_url)
    client = app.test_client()
    try:
        assert client.get("/health/ready").status_code == 503
        databases.upgrade(empty_database_url)
        started = time.monotonic()
        assert _wait_for(lambda: client.get("/health/ready"), 200).status_code == 200
        assert time.monotonic() - started < REUSE_S + 1.0
        assert client.get("/api/v1/posts").status_code == 200
    finally:
        databases.dispose_app(app)


def test_a_schema_at_another_revision_is_not_ready(empty_database_url):
    databases.upgrade(empty_database_url)
    engine = sa.create_engine(empty_database_url, poolclass=sa.pool.NullPool)
    with engine.begin() as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = 'f00d'"))
    engine.dispose()
    app = _app(empty_database_url)
    client = app.test_client()
    (head,) = app.extensions["blog_api.schema_heads"]
    try:
        response = client.get("/health/ready")
        assert response.status_code == 503
        assert response.get_json()["checks"]["database"] == {
            "status": "down",
            "error": f"schema at revision f00d, expected head {head}: "
            "run flask --app blog_api db upgrade",
        }
        _not_ready(client.get("/api/v1/posts"))
    finally:
        databases.dispose_app(app)


def test_tables_gone_after_ready_are_503_never_500(empty_database_url):
    databases.upgrade(empty_database_url)
    app = _app(empty_database_url)
    client = app.test_client()
    try:
        assert client.get("/api/v1/posts").status_code == 200
        assert client.get("/health/ready").status_code == 200
        databases.drop_everything(empty_database_url)

        _not_ready(client.get("/api/v1/posts"))
        _not_ready(client.post("/api/v1/users/register", json=REGISTER))
        response = _wait_for(lambda: client.get("/health/ready"), 503)
        assert response.get_json()["checks"]["database"] == {"status": "down", "error": MISSING}

        databases.upgrade(empty_database_url)
        assert _wait_for(lambda: client.get("/api/v1/posts"), 200).status_code == 200
    finally:
        databases.dispose_app(app)


def _health_sessions(connection, database: str) -> set[tuple]:
    """The health check's sessions open on `database` now: (pid, backend_start)."""
    rows = connection.execute(
        sa.text(
            "SELECT pid, backend_start FROM pg_stat_activity "
            "WHERE datname = :database AND application_name = 'blog-api health'"
        ),
        {"database": database},
    )
    return {tuple(row) for row in rows}


@pytest.mark.postgres
def test_polling_health_reuses_one_connection_and_one_result_a_second(postgres_url):
    with databases.new_postgres_database(postgres_url) as url:
        databases.upgrade(url)
        app = _app(url)
        checks = app.extensions["blog_api.health_checks"]
        version_queries = []

        @event.listens_for(checks.engine, "before_cursor_execute")
        def count(conn, cursor, statement, *args):
            if "alembic_version" in statement and statement.lstrip().upper().startswith("SELECT"):
                version_queries.append(time.monotonic())

        observer = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
        database = sa.make_url(url).database
        client = app.test_client()
        seen, calls = set(), 0
        try:
            with observer.connect() as watch:
                started = time.monotonic()
                while time.monotonic() - started < 2.5:
                    response = client.get("/health")
                    assert response.status_code == 200, response.get_json()
                    calls += 1
                    if calls % 10 == 0:
                        now = _health_sessions(watch, database)
                        assert now, "the check's connection is kept between calls"
                        seen |= now
                elapsed = time.monotonic() - started
        finally:
            observer.dispose()
            databases.dispose_app(app)
        assert calls >= 100, calls
        assert 1 <= len(seen) <= 2, seen  # not one session per call
        # About one check a second, however fast /health is polled (not one per call).
        assert 1 <= len(version_queries) <= math.ceil(elapsed) + 1, len(version_queries)


@pytest.mark.slow
def test_gunicorn_workers_become_ready_when_the_documented_command_migrates(tmp_path):
    """Two workers on an empty database: never ready, API 503; `flask db upgrade`; all ready."""
    url = f"sqlite:///{tmp_path / 'late.db'}"
    with LiveServer(tmp_path, workers=2, DATABASE_URL=url) as server:
        for _ in range(6):  # both workers, whichever answers
            status, _ = server.request("GET", "/health/ready")
            assert status == 503
            status, _ = server.request("GET", "/api/v1/posts")
            assert status == 503

        upgrade = subprocess.run(
            [sys.executable, "-m", "flask", "--app", "blog_api", "db", "upgrade"],
            cwd=ROOT,
            env={**server.env, "LOG_LEVEL": "INFO"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert upgrade.returncode == 0, upgrade.stderr[-3000:]
        assert "Running upgrade  -> 0001" in upgrade.stderr

        deadline = time.monotonic() + 10
        in_a_row = 0
        while in_a_row < 10 and time.monotonic() < deadline:
            in_a_row = in_a_row + 1 if server.request("GET", "/health/ready")[0] == 200 else 0
            time.sleep(0.05)
        assert in_a_row == 10, "not every worker became ready"
        assert server.request("GET", "/api/v1/posts")[0] == 200
        assert "Traceback" not in server.log()


def test_checks_log_nothing_while_all_is_well(client, caplog):
    """A check a second must not write Alembic's "Context impl ..." lines a second."""
    with caplog.at_level(logging.INFO):
        assert client.get("/health").status_code == 200
        assert client.get("/api/v1/posts").status_code == 200
    assert [r.getMessage() for r in caplog.records if r.name.startswith("alembic")] == []


@pytest.mark.postgres
def test_a_query_of_a_table_that_never_existed_is_a_bug_500_not_a_503(postgres_url):
    """The schema at the head and a table missing all the same: the query is wrong."""
    databases.empty_postgres(postgres_url)
    app = _app(postgres_url)

    def bad_sql():
        db.session.execute(sa.text("SELECT * FROM no_such_table"))
        return {"unreachable": True}

    app.add_url_rule("/api/v1/bad-sql", "bad_sql", bad_sql)
    client = app.test_client()
    try:
        assert client.get("/api/v1/posts").status_code == 200
        assert_error(client.get("/api/v1/bad-sql"), 500)
        assert client.get("/api/v1/posts").status_code == 200
        assert client.get("/health/ready").status_code == 200
    finally:
        databases.dispose_app(app)
