"""The telemetry package on its own: configuration, resource, log formats, independence."""

import logging
import subprocess
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from telemetry.config import TelemetryConfig
from telemetry.logs import TextFormatter
from telemetry.providers import _resource
from telemetry.redact import redact_url_credentials

from .live_server import ROOT


def test_traces_endpoint_follows_the_otlp_specification():
    assert TelemetryConfig.from_mapping({}).traces_endpoint is None
    base = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/"}
    assert TelemetryConfig.from_mapping(base).traces_endpoint == "http://collector:4318/v1/traces"
    specific = {**base, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://other:4318/custom"}
    assert TelemetryConfig.from_mapping(specific).traces_endpoint == "http://other:4318/custom"


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
