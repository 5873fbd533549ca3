"""Trace export against a real OTLP receiver, a closed port and a collector that never answers.

Every failure is named for what it is, in /health and in /metrics alike; attempts are bounded to
about a second, retried only as the OTLP specification says; compression, headers and
OTEL_TRACES_EXPORTER are honoured; shutdown and force_flush return in bounded time.
"""

import base64
import json
import re
import subprocess
import sys
import time

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families

from blog_api import create_app
from telemetry.config import TraceExportConfig
from telemetry.span_export import TrackedSpanExporter

from . import databases
from .conftest import SECRET
from .live_server import ROOT
from .otlp_receiver import OTLPReceiver

EXPORTED = "otel_sdk_exporter_span_exported"
PROCESSED = "otel_sdk_processor_span_processed"


@pytest.fixture
def settings(tmp_path) -> dict:
    """An app on its own SQLite file: the exporter is under test here, not the database."""
    return {
        "APP_ENV": "production",
        "DATABASE_URL": databases.migrated_sqlite(tmp_path / "export.db"),
        "SECRET_KEY": SECRET,
        "BCRYPT_ROUNDS": "4",
        "LOG_LEVEL": "WARNING",
    }


def _traced_request(app) -> str:
    """One API request; its trace id."""
    response = app.test_client().get("/api/v1/posts")
    assert response.status_code == 200
    return response.headers["traceresponse"].split("-")[1]


def _flush(app, timeout_millis: int = 5000) -> bool:
    return app.extensions["telemetry"].providers.tracer_provider.force_flush(timeout_millis)


def _trace_exporter(app) -> dict:
    return app.test_client().get("/health").get_json()["checks"]["trace_exporter"]


def _samples(app, family: str) -> dict[str, float]:
    """{error_type or "": value} of one otel_sdk_* counter in a real scrape."""
    text = app.test_client().get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return {s.labels.get("error_type", ""): s.value for s in families[family].samples}


def _spans(n: int = 3):
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    for i in range(n):
        with provider.get_tracer("test").start_as_current_span(f"span {i}"):
            pass
    return memory.get_finished_spans()


FAILURES = [
    # collector, error_type, last_error, attempts the collector sees (None: cannot count)
    ("refused", "connection_refused", r"connection refused by 127\.0\.0\.1:{port}", None),
    ("hanging", "timeout", r"no answer from 127\.0\.0\.1:{port} within 1\.0 s", 1),
    ("503", "503", r"HTTP 503 Service Unavailable from 127\.0\.0\.1:{port}", 2),  # retried
    ("400", "400", r"HTTP 400 Bad Request from 127\.0\.0\.1:{port}", 1),  # never retried
]


@pytest.mark.parametrize("collector, error_type, message, attempts", FAILURES)
def test_failures_are_named_for_what_they_are(
    settings, closed_port, collector, error_type, message, attempts
):
    mode = {"hanging": "hang", "503": "error", "400": "error"}.get(collector, "ok")
    with OTLPReceiver(mode=mode, status=int(error_type) if mode == "error" else 503) as receiver:
        endpoint = (
            f"http://127.0.0.1:{closed_port}/v1/traces"
            if collector == "refused"
            else receiver.endpoint
        )
        port = endpoint.split(":")[2].split("/")[0]
        # A budget of 1.5 s: one 1 s attempt, or two quick ones half a second apart.
        app = create_app(
            {
                **settings,
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "1500",
            }
        )
        _traced_request(app)
        started = time.monotonic()
        _flush(app)
        assert time.monotonic() - started < 2.0

        health = app.test_client().get("/health")
        assert (health.status_code, health.get_json()["status"]) == (200, "degraded")
        exporter = _trace_exporter(app)
        assert exporter["status"] == "down"
        assert re.fullmatch(message.format(port=port), exporter["last_error"])
        assert (exporter["exported_spans"], exporter["failed_exports"]) == (0, 1)
        if attempts is not None:
            assert len(receiver.arrivals) == attempts

        exported = _samples(app, EXPORTED)
        assert set(exported) == {"", error_type}
        assert exported[""] == 0 and exported[error_type] > 0
        processed = _samples(app, PROCESSED)
        assert processed[""] == exported[error_type]  # handed to the exporter, then failed


@pytest.mark.parametrize(
    "change, error_type, message",
    [
        ({"scheme": "https"}, "tls", r"TLS with 127\.0\.0\.1:\d+ failed: WRONG_VERSION_NUMBER"),
        (
            {"scheme": "https", "certificate": "/nonexistent/ca.pem"},
            "tls",
            r"cannot read the TLS files: \[Errno 2\] No such file or directory",
        ),
        (
            {"endpoint": "collector:4318"},
            "invalid_endpoint",
            r"the OTLP traces endpoint is not an http\(s\) URL with a host",
        ),
    ],
)
def test_configuration_mistakes_are_named_too(change, error_type, message):
    with OTLPReceiver() as receiver:  # speaks plain HTTP
        settings = {k: v for k, v in change.items() if k != "scheme"}
        endpoint = receiver.endpoint.replace("http:", change.get("scheme", "http") + ":")
        exporter = TrackedSpanExporter()
        exporter.configure(TraceExportConfig(**{"endpoint": endpoint, **settings}))
        exporter.export(_spans())
        exporter.shutdown()
    assert dict(exporter.stats.failed_spans) == {error_type: 3}  # not retried
    assert re.fullmatch(message, exporter.status()["last_error"])


def test_retry_after_is_honoured_and_the_retry_succeeds(settings):
    with OTLPReceiver(mode="error", status=503, retry_after="1", failures=1) as receiver:
        app = create_app({**settings, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint})
        trace_id = _traced_request(app)
        assert _flush(app)
        assert receiver.spans_of_trace(trace_id)
        first, second = receiver.arrivals
        assert 0.95 <= second - first < 1.5  # Retry-After: 1, not the 0.5 s backoff
        exporter = _trace_exporter(app)
        assert exporter["status"] == "up"
        assert exporter["exported_spans"] == len(receiver.spans())
        assert exporter["failed_exports"] == 0
        assert exporter["last_error"].startswith("HTTP 503")  # it did fail once, and says so


def test_a_retry_after_beyond_the_budget_ends_the_export_at_once():
    with OTLPReceiver(mode="error", status=429, retry_after="30") as receiver:
        exporter = TrackedSpanExporter()
        exporter.configure(TraceExportConfig(endpoint=receiver.endpoint))
        started = time.monotonic()
        exporter.export(_spans())
        assert time.monotonic() - started < 0.5
        assert len(receiver.arrivals) == 1
        assert dict(exporter.stats.failed_spans) == {"429": 3}
        exporter.shutdown()


def test_a_batch_against_a_hanging_collector_takes_about_a_second_per_attempt():
    with OTLPReceiver(mode="hang") as receiver:
        exporter = TrackedSpanExporter()
        exporter.configure(TraceExportConfig(endpoint=receiver.endpoint, timeout_s=2.5))
        started = time.monotonic()
        exporter.export(_spans())
        took = time.monotonic() - started
        exporter.shutdown()
    # attempt (1 s), backoff (0.5 s +- 20 %), attempt (1 s): within the 2.5 s budget, no third
    assert 2.2 <= took <= 2.9, took
    first, second = receiver.arrivals
    assert 1.3 <= second - first <= 1.8
    assert dict(exporter.stats.failed_spans) == {"timeout": 3}


@pytest.mark.parametrize("compression", ["gzip", "deflate", "none"])
def test_compression_and_headers_reach_the_collector(settings, compression):
    with OTLPReceiver() as receiver:
        app = create_app(
            {
                **settings,
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
                "OTEL_EXPORTER_OTLP_COMPRESSION": compression,
                "OTEL_EXPORTER_OTLP_HEADERS": "x-general=overridden",
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "authorization=Bearer%20s3cret,x-tenant=blog",
            }
        )
        trace_id = _traced_request(app)
        assert _flush(app)
        assert receiver.spans_of_trace(trace_id)  # the receiver decoded the body it was sent
        headers = receiver.headers[0]
        assert headers.get("content-encoding", "none") == compression
        assert headers["content-type"] == "application/x-protobuf"
        assert (headers["authorization"], headers["x-tenant"]) == ("Bearer s3cret", "blog")
        assert "x-general" not in headers  # the traces variable replaces the general one
        assert "s3cret" not in json.dumps(app.test_client().get("/health").get_json())


def test_url_credentials_become_basic_auth_and_are_never_shown(settings, closed_port):
    with OTLPReceiver() as receiver:
        endpoint = receiver.endpoint.replace("http://", "http://blog:s3cret@")
        app = create_app({**settings, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint})
        _traced_request(app)
        assert _flush(app)
        assert receiver.headers[0]["authorization"] == "Basic " + base64.b64encode(
            b"blog:s3cret"
        ).decode("ascii")
        assert _trace_exporter(app)["endpoint"] == receiver.endpoint.replace(
            "http://", "http://***@"
        )
    refused = create_app(
        {
            **settings,
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://blog:s3cret@127.0.0.1:{closed_port}/",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "100",
        }
    )
    _traced_request(refused)
    _flush(refused)
    exporter = _trace_exporter(refused)
    assert exporter["last_error"] == f"connection refused by 127.0.0.1:{closed_port}"
    assert "s3cret" not in json.dumps(exporter)


def test_console_exporter_writes_spans_to_stdout(settings, capsys):
    app = create_app({**settings, "OTEL_TRACES_EXPORTER": "console"})
    trace_id = _traced_request(app)
    assert _flush(app)
    out = capsys.readouterr().out
    assert f'"trace_id": "0x{trace_id}"' in out
    assert '"name": "GET /api/v1/posts"' in out
    exporter = _trace_exporter(app)
    assert (exporter["status"], exporter["exporters"], exporter["endpoint"]) == (
        "up",
        ["console"],
        None,
    )
    assert exporter["exported_spans"] >= 1


def test_a_list_of_exporters_sends_every_batch_to_each(settings, capsys):
    with OTLPReceiver() as receiver:
        app = create_app(
            {
                **settings,
                "OTEL_TRACES_EXPORTER": "console,otlp",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
            }
        )
        trace_id = _traced_request(app)
        assert _flush(app)
        assert receiver.spans_of_trace(trace_id)
        assert f'"trace_id": "0x{trace_id}"' in capsys.readouterr().out
        exporter = _trace_exporter(app)
        assert (exporter["status"], exporter["exporters"]) == ("up", ["console", "otlp"])
        assert exporter["endpoint"] == receiver.endpoint


def test_none_makes_spans_but_exports_nothing_and_says_disabled(settings):
    with OTLPReceiver() as receiver:
        app = create_app(
            {
                **settings,
                "OTEL_TRACES_EXPORTER": "none",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint,
            }
        )
        assert re.fullmatch(r"[0-9a-f]{32}", _traced_request(app))  # spans are still made
        assert _flush(app)
        assert receiver.arrivals == []
        assert _trace_exporter(app) == {
            "status": "disabled",
            "exporters": [],
            "endpoint": None,
            "dropped_spans": 0,
        }


def test_force_flush_returns_by_its_timeout(settings):
    with OTLPReceiver(mode="hang") as receiver:
        app = create_app({**settings, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint})
        _traced_request(app)
        started = time.monotonic()
        _flush(app, timeout_millis=300)
        assert time.monotonic() - started < 0.8
        exporter = _trace_exporter(app)
        assert exporter["last_error"].endswith("within 0.3 s")


SHUTDOWN_SCRIPT = """
import json, sys, time
from blog_api import create_app
app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": sys.argv[2],
                  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sys.argv[3], "LOG_LEVEL": "CRITICAL"})
client = app.test_client()
for _ in range(30):
    assert client.get("/api/v1/posts").status_code == 200
started = time.monotonic()
app.extensions["telemetry"].providers.tracer_provider.shutdown()  # what atexit does
took = time.monotonic() - started
print(json.dumps({"took": took,
                  "health": client.get("/health").get_json()["checks"]["trace_exporter"],
                  "metrics": client.get("/metrics").get_data(as_text=True)}), flush=True)
"""


@pytest.mark.parametrize("collector", ["healthy", "hanging", "refused"])
def test_shutdown_takes_a_second_at_most_and_counts_what_it_drops(tmp_path, closed_port, collector):
    with OTLPReceiver(mode="hang" if collector == "hanging" else "ok") as receiver:
        endpoint = (
            f"http://127.0.0.1:{closed_port}/v1/traces"
            if collector == "refused"
            else receiver.endpoint
        )
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                SHUTDOWN_SCRIPT,
                databases.migrated_sqlite(tmp_path / "s.db"),
                SECRET,
            ]
            + [endpoint],
            cwd=ROOT,
            # Healthy: batches of 128, so every span waits for the final flush. Dead: batches of
            # 8, so the export thread is busy (and retrying) when shutdown comes.
            env={
                "PATH": "/usr/bin:/bin",
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "128" if collector == "healthy" else "8",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        out = json.loads(result.stdout.strip().splitlines()[-1])
        received = len(receiver.spans())
    assert out["took"] < 1.3
    exporter = out["health"]
    families = {f.name: f for f in text_string_to_metric_families(out["metrics"])}
    processed = {s.labels.get("error_type", ""): s.value for s in families[PROCESSED].samples}
    assert processed["shutdown"] == exporter["dropped_spans"]
    assert processed["queue_full"] == 0
    if collector == "healthy":
        assert exporter["status"] == "up"
        assert exporter["exported_spans"] == received >= 30  # all of it, in the final flush
        assert exporter["dropped_spans"] == 0
    else:
        assert exporter["status"] == "down"
        assert exporter["exported_spans"] == 0
        assert exporter["dropped_spans"] > 0  # what was left when the collector failed us
