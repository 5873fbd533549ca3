"""The telemetry package on its own: configuration, resource, log formats, independence."""

import json
import logging
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from telemetry.config import TelemetryConfig, TraceExportConfig
from telemetry.logs import JsonFormatter, TextFormatter
from telemetry.providers import _resource
from telemetry.redact import redact_url_credentials

from .live_server import ROOT


def test_traces_endpoint_follows_the_otlp_specification():
    assert TelemetryConfig.from_mapping({}).traces_endpoint is None
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    assert TelemetryConfig.from_mapping(base).traces_endpoint == "http://collector:4318/v1/traces"
    specific = {**base, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://other:4318/custom"}
    assert TelemetryConfig.from_mapping(specific).traces_endpoint == "http://other:4318/custom"


@pytest.mark.parametrize(
    "value, exporters, warns",
    [
        ("", ("otlp",), False),
        ("otlp", ("otlp",), False),
        ("console", ("console",), False),
        ("none", (), False),
        (" Console , OTLP ", ("console", "otlp"), False),
        ("otlp,otlp", ("otlp",), False),
        ("none,console", ("console",), False),
        ("console,zipkin", ("console",), True),
        ("zipkin", ("otlp",), True),  # nothing usable: the setting is ignored, as the spec says
    ],
)
def test_traces_exporter_is_read_as_the_specification_says(caplog, value, exporters, warns):
    caplog.set_level(logging.WARNING, logger="telemetry")
    config = TraceExportConfig.from_mapping({"OTEL_TRACES_EXPORTER": value})
    assert config.exporters == exporters
    assert ("zipkin" in caplog.text) is warns


def test_otlp_without_an_endpoint_exports_nothing():
    assert TraceExportConfig.from_mapping({}).active == ()
    console = {"OTEL_TRACES_EXPORTER": "otlp,console"}
    assert TraceExportConfig.from_mapping(console).active == ("console",)
    endpoint = {**console, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert TraceExportConfig.from_mapping(endpoint).active == ("otlp", "console")


@pytest.mark.parametrize(
    "env, timeout_s",
    [
        ({}, 10.0),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "2500"}, 2.5),  # milliseconds
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "500"}, 0.5),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "0"}, 3600.0),  # "no limit"
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "-5"}, 10.0),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "ten"}, 10.0),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "2500", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": ""}, 2.5),
    ],
)
def test_export_timeout_is_in_milliseconds(env, timeout_s):
    assert TraceExportConfig.from_mapping(env).timeout_s == timeout_s


@pytest.mark.parametrize(
    "env, compression",
    [
        ({}, "none"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}, "gzip"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "GZIP"}, "gzip"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "deflate"}, "deflate"),
        ({"OTEL_EXPORTER_OTLP_COMPRESSION": "br"}, "none"),
        (
            {
                "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
                "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION": "none",
            },
            "none",
        ),
    ],
)
def test_compression(env, compression):
    assert TraceExportConfig.from_mapping(env).compression == compression


def test_headers_are_parsed_as_the_specification_says():
    env = {"OTEL_EXPORTER_OTLP_HEADERS": "api-key=a%20b, X-Tenant = blog ,bad"}
    assert TraceExportConfig.from_mapping(env).headers == (("api-key", "a b"), ("x-tenant", "blog"))
    specific = {**env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "only=this"}
    assert TraceExportConfig.from_mapping(specific).headers == (("only", "this"),)


def test_sdk_disabled_accepts_the_usual_spellings():
    for value, disabled in (
        ("true", True),
        ("TRUE", True),
        ("1", True),
        ("false", False),
        ("", False),
    ):
        assert TelemetryConfig.from_mapping({"OTEL_SDK_DISABLED": value}).disabled is disabled


def test_service_name_defaults_to_ours_and_yields_to_otel_service_name(monkeypatch):
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    resource = _resource("blog-api", "1.2.3").attributes
    assert (resource["service.name"], resource["service.version"]) == ("blog-api", "1.2.3")

    monkeypatch.setenv("OTEL_SERVICE_NAME", "blog-api-canary")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=staging")
    resource = _resource("blog-api", "1.2.3").attributes
    assert resource["service.name"] == "blog-api-canary"
    assert resource["deployment.environment"] == "staging"


def test_text_log_format_carries_trace_and_span_ids():
    record = logging.LogRecord("blog_api", logging.WARNING, __file__, 1, "hello %s", ("you",), None)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        line = TextFormatter().format(record)
        context = span.get_span_context()
    assert "WARNING blog_api" in line and line.endswith("hello you")
    assert f"trace_id={trace.format_trace_id(context.trace_id)}" in line
    assert f"span_id={trace.format_span_id(context.span_id)}" in line


@pytest.mark.parametrize(
    "value, enabled, warns",
    [
        ("", True, False),
        ("true", True, False),
        ("FALSE", False, False),
        ("0", False, False),
        ("off", False, False),
        ("nope", True, True),
    ],
)
def test_access_log_setting(caplog, value, enabled, warns):
    caplog.set_level(logging.WARNING, logger="telemetry")
    assert TelemetryConfig.from_mapping({"ACCESS_LOG": value}).access_log is enabled
    assert ("ACCESS_LOG" in caplog.text) is warns


def test_json_log_lines_carry_extra_fields_but_never_replace_their_own():
    record = logging.makeLogRecord(
        {
            "name": "blog_api",
            "levelname": "INFO",
            "msg": "login failed",
            "username": "mallory",
            "client_address": "203.0.113.9",
            "level": "forged",
        }
    )
    line = json.loads(JsonFormatter().format(record))
    assert (line["username"], line["client_address"]) == ("mallory", "203.0.113.9")
    assert (line["level"], line["message"]) == ("INFO", "login failed")
    assert "args" not in line and "msecs" not in line  # a record's own attributes stay out


def test_json_time_is_iso_utc_with_milliseconds_across_seconds():
    formatter = JsonFormatter()
    for created in (1764406428.0, 1764406428.4309, 1764406428.9994, 1764406429.0005, 0.25):
        record = logging.makeLogRecord({"msg": "m", "created": created})
        expected = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
        assert json.loads(formatter.format(record))["time"] == expected


UNCAUGHT = """
import threading
from telemetry.logs import configure_logging, log_uncaught_exceptions
configure_logging("INFO", "json")
log_uncaught_exceptions()
thread = threading.Thread(target=lambda: 1 / 0, name="worker-thread")
thread.start()
thread.join()
raise RuntimeError("nobody caught this")
"""


def test_uncaught_exceptions_are_json_records_with_their_traceback():
    result = subprocess.run(
        [sys.executable, "-c", UNCAUGHT], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # no raw traceback line
    assert [line["message"] for line in lines] == [
        "uncaught exception in thread worker-thread",
        "uncaught exception",
    ]
    assert "ZeroDivisionError" in lines[0]["exception"]
    assert "RuntimeError: nobody caught this" in lines[1]["exception"]
    assert lines[1]["level"] == "CRITICAL"


def test_credentials_in_urls_are_redacted():
    text = "could not reach postgresql://blog:s3cret@db:5432/blog and redis://:pw@cache:6379/0"
    assert redact_url_credentials(text) == (
        "could not reach postgresql://***@db:5432/blog and redis://***@cache:6379/0"
    )


def test_telemetry_never_imports_the_app():
    code = (
        "import sys, telemetry, telemetry.multiprocess, telemetry.contrib, telemetry.prometheus\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'blog_api'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    for path in (ROOT / "telemetry").glob("*.py"):
        assert "blog_api" not in path.read_text(), path
