"""Traces: real spans sent over OTLP/HTTP to a real receiver, decoded from protobuf."""

import io
import json
import logging
import re
import threading
import time

import pytest
from opentelemetry import trace
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from blog_api import create_app
from telemetry.logs import JsonFormatter

from .otlp_receiver import OTLPReceiver, span_attributes

TRACERESPONSE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


@pytest.fixture
def receiver():
    with OTLPReceiver() as receiver:
        yield receiver


@pytest.fixture
def traced_app(app_config, receiver):
    app = create_app({**app_config, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint})
    yield app


def flush(app) -> None:
    assert app.extensions["telemetry"].providers.tracer_provider.force_flush(5000)


def trace_id_of(response) -> str:
    match = TRACERESPONSE.match(response.headers["traceresponse"])
    assert match, response.headers["traceresponse"]
    assert match.group(3) == "01", "sampled, and nothing else (DESIGN: -01)"
    return match.group(1)


def test_request_makes_a_server_span_with_sql_children(traced_app, receiver):
    client = traced_app.test_client()
    client.post(
        "/api/v1/users/register",
        json={"username": "alice", "email": "a@example.org", "password": "password1"},
    )
    headers = {
        "Authorization": "Bearer "
        + client.post(
            "/api/v1/users/login", json={"username": "alice", "password": "password1"}
        ).get_json()["access_token"]
    }
    post_id = client.post(
        "/api/v1/posts", json={"title": "t", "body": "b"}, headers=headers
    ).get_json()["id"]

    response = client.get(f"/api/v1/posts/{post_id}")
    trace_id = trace_id_of(response)
    flush(traced_app)
    spans = receiver.spans_of_trace(trace_id)

    servers = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER]
    assert len(servers) == 1
    server = servers[0]
    assert server.name == "GET /api/v1/posts/<int:post_id>"
    attrs = span_attributes(server)
    assert attrs["http.route"] == "/api/v1/posts/<int:post_id>"
    assert attrs["http.request.method"] == "GET"
    assert attrs["http.response.status_code"] == 200
    assert response.headers["traceresponse"].split("-")[2] == server.span_id.hex()

    # The SQLAlchemy instrumentation: fails if DB spans vanish after an upgrade (it silently
    # does nothing on SQLAlchemy 2.1 in 0.66b1).
    sql = [s for s in spans if s.kind == Span.SPAN_KIND_CLIENT]
    assert sql, "no SQL spans: is the SQLAlchemy instrumentation still working?"
    for span in sql:
        assert span.parent_span_id == server.span_id
        attrs = span_attributes(span)
        assert attrs["db.system"] in ("sqlite", "postgresql")
        assert "SELECT" in attrs["db.statement"] and "posts" in attrs["db.statement"]
        assert "traceparent" not in attrs["db.statement"]  # sqlcommenter stays off

    exporter = client.get("/health").get_json()["checks"]["trace_exporter"]
    assert exporter["status"] == "up"
    assert exporter["exporters"] == ["otlp"]
    assert exporter["endpoint"] == receiver.endpoint
    assert exporter["exported_spans"] >= len(spans)
    assert (exporter["failed_exports"], exporter["dropped_spans"]) == (0, 0)
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", exporter["last_success"])
    assert exporter["last_error"] is None

    resources = [res for res, s in receiver.spans() if s.trace_id.hex() == trace_id]
    assert all(res["service.name"] == "blog-api" for res in resources)
    assert all(res["service.version"] == "0.1.0" for res in resources)
    assert "application/x-protobuf" in receiver.content_types[0]


def test_incoming_traceparent_is_continued(traced_app, receiver):
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    response = traced_app.test_client().get(
        "/api/v1/posts", headers={"traceparent": f"00-{trace_id}-{parent}-01"}
    )
    assert trace_id_of(response) == trace_id
    flush(traced_app)
    server = next(s for s in receiver.spans_of_trace(trace_id) if s.kind == Span.SPAN_KIND_SERVER)
    assert server.parent_span_id.hex() == parent
    assert server.name == "GET /api/v1/posts"


def test_every_api_response_carries_traceresponse_even_errors(traced_app):
    client = traced_app.test_client()
    for response in (
        client.get("/api/v1/posts"),
        client.get("/nope"),
        client.post("/api/v1/posts", data="{", content_type="application/json"),
        client.delete("/api/v1/posts"),
    ):
        trace_id_of(response)


def test_log_lines_of_a_request_carry_its_trace_and_span_ids(traced_app, receiver):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(handler)
    level = logging.getLogger("blog_api").level
    logging.getLogger("blog_api").setLevel(logging.INFO)
    try:
        response = traced_app.test_client().post(
            "/api/v1/users/login", json={"username": "nobody", "password": "password1"}
        )
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger("blog_api").setLevel(level)
    trace_id = trace_id_of(response)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    login_lines = [line for line in lines if line["message"] == "login failed"]
    assert len(login_lines) == 1
    assert login_lines[0]["trace_id"] == trace_id
    assert login_lines[0]["span_id"] == response.headers["traceresponse"].split("-")[2]
    assert login_lines[0]["level"] == "INFO"


def test_operations_paths_make_no_spans(traced_app, receiver):
    client = traced_app.test_client()
    for path in ("/metrics", "/health", "/health/live", "/health/ready"):
        assert "traceresponse" not in client.get(path).headers
    flush(traced_app)
    names = {s.name for _, s in receiver.spans()}
    assert not any("health" in n or "metrics" in n for n in names)
    assert not any(n in ("SELECT", "connect") for n in names)  # the health check's SQL


def _request_times(client, n=20) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        assert client.get("/api/v1/posts").status_code == 200
        times.append(time.perf_counter() - started)
    return times


@pytest.mark.parametrize(
    "collector, error",
    [
        ("closed port", r"connection refused by 127\.0\.0\.1:\d+"),
        ("hanging", r"no answer from 127\.0\.0\.1:\d+ within 1\.0 s"),
    ],
)
def test_broken_collector_degrades_health_but_never_slows_requests(
    app_config, closed_port, collector, error
):
    with OTLPReceiver(mode="hang") as hanging:
        endpoint = (
            hanging.endpoint
            if collector == "hanging"
            else f"http://127.0.0.1:{closed_port}/v1/traces"
        )
        app = create_app({**app_config, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint})
        client = app.test_client()
        # More spans than one export batch (128): the export thread wakes now, not in 5 s, and
        # spends its 10 s budget on the collector while the requests below are served.
        _request_times(client, 80)

        # Requests do not wait for the exporter: each below its 1 s attempt bound, one by one.
        assert max(_request_times(client)) < 1.0

        deadline = time.monotonic() + 8
        while True:
            health = client.get("/health")
            exporter = health.get_json()["checks"]["trace_exporter"]
            if exporter["status"] == "down" or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert health.status_code == 200
        body = health.get_json()
        assert body["status"] == "degraded"
        assert exporter["status"] == "down"
        assert re.fullmatch(error, exporter["last_error"])  # what happened, not a guess
        assert exporter["endpoint"] == endpoint
        assert body["checks"]["database"]["status"] == "up"


def test_json_log_lines_carry_no_terminal_colours():
    record = logging.LogRecord(
        "werkzeug",
        logging.INFO,
        __file__,
        1,
        '"\x1b[35m\x1b[1mPOST /x HTTP/1.1\x1b[0m" 201 -',
        None,
        None,
    )
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == '"POST /x HTTP/1.1" 201 -'
    assert "trace_id" not in line  # no span is current here


def test_concurrent_requests_keep_their_own_spans(traced_app, receiver):
    """Threads serving at once: each request's SQL spans hang under its own server span."""
    trace_ids: list[str] = []
    errors: list = []

    def read(n: int) -> None:
        client = traced_app.test_client()
        for _ in range(n):
            response = client.get("/api/v1/posts")
            if response.status_code != 200:
                errors.append(response.status_code)
            trace_ids.append(trace_id_of(response))

    threads = [threading.Thread(target=read, args=(10,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(set(trace_ids)) == 80
    flush(traced_app)
    spans = receiver.spans()
    for trace_id in trace_ids:
        mine = [s for _, s in spans if s.trace_id.hex() == trace_id]
        (server,) = [s for s in mine if s.kind == Span.SPAN_KIND_SERVER]
        sql = [s for s in mine if s.kind == Span.SPAN_KIND_CLIENT]
        assert server.name == "GET /api/v1/posts"
        assert sql and all(s.parent_span_id == server.span_id for s in sql)
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached here


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/no/such/route/12345", 404), ("DELETE", "/api/v1/posts", 405)],
)
def test_unrouted_request_span_is_named_by_its_method_alone(
    traced_app, receiver, method, path, status
):
    """README's deliberate change to DESIGN's `<METHOD> <route>`: no route, no path in the name."""
    response = traced_app.test_client().open(path, method=method)
    assert response.status_code == status
    trace_id = trace_id_of(response)
    flush(traced_app)
    (server,) = [s for s in receiver.spans_of_trace(trace_id) if s.kind == Span.SPAN_KIND_SERVER]
    assert server.name == method
    attrs = span_attributes(server)
    assert "http.route" not in attrs
    assert attrs["http.request.method"] == method
    assert attrs["http.response.status_code"] == status
    assert response.headers["traceresponse"].split("-")[2] == server.span_id.hex()


def test_server_error_span_has_error_status(app_config, receiver):
    app = create_app({**app_config, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint})

    @app.get("/api/v1/boom")
    def boom():
        raise RuntimeError("boom")

    response = app.test_client().get("/api/v1/boom")
    assert response.status_code == 500
    trace_id = trace_id_of(response)
    flush(app)
    (server,) = [s for s in receiver.spans_of_trace(trace_id) if s.kind == Span.SPAN_KIND_SERVER]
    assert server.name == "GET /api/v1/boom"
    assert server.status.code == server.status.STATUS_CODE_ERROR
    assert span_attributes(server)["http.response.status_code"] == 500
