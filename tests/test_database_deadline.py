"""The client's deadline on every PostgreSQL call and the breaker, in the app itself, with the real
PostgreSQL behind a TCP proxy of the test's own (tests/tcp_proxy.py)."""

from __future__ import annotations

import logging
import time

import pytest
import sqlalchemy as sa
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from blog_api import create_app
from blog_api.extensions import db

from . import databases
from .conftest import SECRET, assert_error
from .otlp_receiver import OTLPReceiver
from .tcp_proxy import TcpProxy
from .test_traces import flush, trace_id_of

pytestmark = pytest.mark.postgres

TIMEOUT_S = 0.5  # DATABASE_TIMEOUT of these apps: short, so that the tests are too


@pytest.fixture
def proxy(postgres_url):
    databases.empty_postgres(postgres_url)
    server = sa.make_url(postgres_url)
    with TcpProxy((server.host or "127.0.0.1", server.port or 5432)) as proxy:
        proxy.url = server.set(port=proxy.port).render_as_string(hide_password=False)
        yield proxy


def _app(url: str, **extra: str):
    return create_app(
        {
            "APP_ENV": "production",
            "DATABASE_URL": url,
            "DATABASE_TIMEOUT": str(TIMEOUT_S),
            "SECRET_KEY": SECRET,
            "BCRYPT_ROUNDS": "4",
            "LOG_LEVEL": "WARNING",
            **extra,
        }
    )


@pytest.fixture
def app(proxy):
    app = _app(proxy.url)
    yield app
    databases.dispose_app(app)


def _unavailable(response) -> None:
    body = assert_error(response, 503)
    assert int(response.headers["Retry-After"]) > 0
    assert "database" in body["message"].lower()


def _wait_for(client, path: str, status: int, within_s: float):
    deadline = time.monotonic() + within_s
    while True:
        response = client.get(path)
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


def test_a_statement_the_frozen_server_never_answers_ends_at_the_deadline(proxy):
    """Frozen after the connection was checked out and pinged: the statement itself is cut,
    and its SQL span ends with the error."""
    with OTLPReceiver() as receiver:
        app = _app(proxy.url, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.endpoint)

        def freeze_then_query():
            db.session.execute(sa.text("SELECT 1"))
            proxy.mode = "freeze"
            db.session.execute(sa.text("SELECT 2"))
            return {"unreachable": True}

        app.add_url_rule("/api/v1/freeze-then-query", "freeze", freeze_then_query)
        client = app.test_client()
        try:
            assert client.get("/api/v1/posts").status_code == 200
            started = time.monotonic()
            response = client.get("/api/v1/freeze-then-query")
            elapsed = time.monotonic() - started
            _unavailable(response)
            assert elapsed < TIMEOUT_S + 0.5, elapsed

            flush(app)
            spans = receiver.spans_of_trace(trace_id_of(response))
            sql = sorted(
                (s for s in spans if s.kind == Span.SPAN_KIND_CLIENT),
                key=lambda s: s.start_time_unix_nano,
            )
            assert [s.status.code for s in sql] == [
                Status.STATUS_CODE_UNSET,  # SELECT 1
                Status.STATUS_CODE_ERROR,  # SELECT 2, cut at the deadline
            ], [(s.name, s.status.message) for s in sql]
            assert "no answer from the database within 0.5 s" in sql[1].status.message
        finally:
            proxy.mode = "forward"
            databases.dispose_app(app)


def test_while_frozen_requests_fail_fast_with_no_driver_call_and_recover(app, proxy, caplog):
    client = app.test_client()
    assert client.get("/api/v1/posts").status_code == 200

    with caplog.at_level(logging.INFO):
        proxy.mode = "freeze"
        started = time.monotonic()
        _unavailable(client.get("/api/v1/posts"))  # the pooled connection's pre-ping: deadline
        assert time.monotonic() - started < TIMEOUT_S + 0.5

        time.sleep(0.2)  # the proxy has counted every connection made so far
        accepted = proxy.accepted
        started = time.monotonic()
        for _ in range(20):
            _unavailable(client.get("/api/v1/posts"))
        assert time.monotonic() - started < 0.9, "open: answered at once"
        assert proxy.accepted == accepted, "open: no connection attempt, not even a probe yet"

        proxy.mode = "forward"
        response = _wait_for(client, "/api/v1/posts", 200, within_s=TIMEOUT_S + 2.0)
        assert response.status_code == 200, "the probe a second later finds it back"

    lines = [
        (r.name, r.levelname, r.getMessage())
        for r in caplog.records
        if r.name.startswith("blog_api") and r.levelno >= logging.INFO
    ]
    assert [line[:2] for line in lines] == [
        ("blog_api.breaker", "ERROR"),  # once when it went away
        ("blog_api.breaker", "INFO"),  # once when it was back: no line per refused request
    ], lines
    assert lines[0][2].startswith("database unavailable (DeadlineExceeded: no answer from the")
    message = lines[1][2]
    assert message.startswith("database available again after ")
    refused = int(message.split("; ")[1].split()[0])
    assert refused >= 21  # the first failure and the twenty refused


def test_the_first_failure_is_one_error_line_without_credentials(proxy, caplog):
    app = _app(proxy.url.replace("postgres@", "postgres:hunter2-secret@"))
    client = app.test_client()
    try:
        assert client.get("/api/v1/posts").status_code == 200
        proxy.mode = "refuse"
        with caplog.at_level(logging.INFO):
            for _ in range(10):
                _unavailable(client.get("/api/v1/posts"))
        errors = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert [(r.name, r.levelname) for r in errors] == [("blog_api.breaker", "ERROR")]
        message = errors[0].getMessage()
        assert message.startswith("database unavailable (OperationalError: ")
        assert "hunter2" not in message
    finally:
        proxy.mode = "forward"
        databases.dispose_app(app)


def test_health_asks_the_database_itself_while_the_breaker_is_open(app, proxy):
    client = app.test_client()
    assert client.get("/api/v1/posts").status_code == 200
    proxy.mode = "refuse"
    _unavailable(client.get("/api/v1/posts"))
    assert app.extensions["blog_api.breaker"].is_open

    time.sleep(1.05)  # no /health result to reuse
    response = client.get("/health")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"]["status"] == "down"

    proxy.mode = "forward"
    response = _wait_for(client, "/health", 200, within_s=3.0)
    assert response.status_code == 200, response.get_json()
    assert not app.extensions["blog_api.breaker"].is_open, "the check's success closes it"
    assert client.get("/api/v1/posts").status_code == 200


def test_a_connection_cut_after_the_work_is_not_a_500(app, proxy):
    """The request's answer is decided; closing its session (a rollback) then fails."""

    def read_then_cut():
        db.session.execute(sa.text("SELECT 1"))
        proxy.mode = "refuse"  # every connection cut before the session closes
        return {"read": True}

    app.add_url_rule("/api/v1/read-then-cut", "read_then_cut", read_then_cut)
    client = app.test_client()
    assert client.get("/api/v1/posts").status_code == 200
    response = client.get("/api/v1/read-then-cut")
    assert response.status_code == 200, response.get_data(as_text=True)
    proxy.mode = "forward"
    assert _wait_for(client, "/api/v1/posts", 200, within_s=3.0).status_code == 200
