"""OpenTelemetry for any Flask app: metrics at /metrics, traces over OTLP, correlated logs.

Usage, in an app factory::

    from telemetry import init_telemetry, exporter_status
    handle = init_telemetry(app, engine, env=os.environ, service_name="my-api",
                            service_version="1.2.3", skip_paths=("/metrics", "/health"))
    logins = handle.meter.create_counter("my_api.logins")
    ...
    exporter_status(app)  # -> {"metrics_exporter": {...}, "trace_exporter": {...}}

Configuration (standard OpenTelemetry variables; `env` is usually os.environ):

- `OTEL_SDK_DISABLED=true`: nothing is set up; `/metrics` is not served (404) and the meter is a
  no-op, so the app works unchanged.
- `OTEL_TRACES_EXPORTER`: `otlp` (default), `console`, `none`, or a comma-separated list.
- `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`: where
  spans go over OTLP/HTTP protobuf. Unset: spans are still made (logs carry their ids) but not sent.
  With `OTEL_EXPORTER_OTLP(_TRACES)_HEADERS`, `_COMPRESSION`, `_TIMEOUT` (milliseconds, per
  batch; each attempt is cut at 1 s), `_CERTIFICATE`, `_CLIENT_CERTIFICATE`, `_CLIENT_KEY`
  (see `otlp_http`). A dead collector never holds up a request or a process's exit by more than
  about a second (see `span_export`).
- `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*`:
  honoured by the SDK as the specification says.
- `METRICS_TOKEN`: when set, `/metrics` needs `Authorization: Bearer <token>`.
- `TELEMETRY_INSTRUMENTATION`: `lean` (default: `http_server` and `sql_spans`, our own) or
  `contrib` (opentelemetry-instrumentation-flask and -sqlalchemy, the reference they are held to).
- `ACCESS_LOG`: `true` (default) writes one line a request to the `access` logger, with the
  request's trace id (see `access_log`); `false` writes none.
- `METRICS_MULTIPROCESS_DIR`: merge the metrics of every worker process (see `multiprocess`);
  gunicorn.conf.py sets it by itself whenever gunicorn runs the app, and counts its workers'
  exits (see `gunicorn_workers`).

Besides the app's own instruments, /metrics has the process's CPU, memory, descriptors, threads
and garbage collector (`runtime`) and the engine's connection pool (`pool`), under OpenTelemetry's
semantic-convention names, all read when the metrics are collected: nothing per request.

Providers are built once per process and reused, so calling this for many apps (as tests do) is
harmless; the last call decides where spans go. This package never imports the app it instruments.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flask import Flask
from opentelemetry.metrics import Meter, NoOpMeter
from sqlalchemy.engine import Engine

from . import contrib, http_server, sql_spans
from .access_log import AccessLog, log_requests
from .config import TelemetryConfig
from .logs import configure_logging
from .multiprocess import start_worker
from .prometheus import METRICS_PATH, add_metrics_route
from .providers import Providers, get_providers
from .timestamps import iso_utc

__all__ = ["Telemetry", "configure_logging", "exporter_status", "init_telemetry"]

_EXTENSION = "telemetry"


@dataclass(frozen=True)
class Telemetry:
    """What an app gets back: a meter for its own instruments, and the providers (None if off)."""

    meter: Meter
    providers: Providers | None


def init_telemetry(
    app: Flask,
    engine: Engine | None,
    *,
    env: Mapping[str, str],
    service_name: str,
    service_version: str,
    skip_paths: tuple[str, ...] = (),
) -> Telemetry:
    """Instrument `app` (and `engine`), serve /metrics, and return the app's meter.

    `/metrics` and `skip_paths` (each exact, or a prefix of `path/...`) are not instrumented and
    write no access line.
    """
    config = TelemetryConfig.from_mapping(env)
    skipped = (METRICS_PATH, *skip_paths)
    access = AccessLog() if config.access_log else None
    if config.disabled:
        if access is not None:
            log_requests(app, access, http_server.SkipPaths(skipped))
        handle = Telemetry(meter=NoOpMeter("telemetry"), providers=None)
        app.extensions[_EXTENSION] = handle
        return handle

    contrib.opt_in_to_stable_http_semconv()
    providers = get_providers(service_name, service_version)
    providers.span_exporter.configure(config.traces)
    collect = None
    if config.multiprocess_dir:
        collect = start_worker(config.multiprocess_dir, providers.collect).collect_merged
    add_metrics_route(app, providers, config.metrics_token, collect)
    if config.instrumentation == "lean":
        http_server.instrument_app(
            app, providers.tracer_provider, providers.meter_provider, skipped, access
        )
        instrument_engine = sql_spans.instrument_engine
    else:
        contrib.instrument_app(app, providers.tracer_provider, providers.meter_provider, skipped)
        if access is not None:
            log_requests(app, access, http_server.SkipPaths(skipped))
        instrument_engine = contrib.instrument_engine
    if engine is not None:
        instrument_engine(engine, providers.tracer_provider)
        providers.pools.observe(engine)

    handle = Telemetry(meter=providers.meter_provider.get_meter(service_name), providers=providers)
    app.extensions[_EXTENSION] = handle
    return handle


def exporter_status(app: Flask) -> dict[str, dict]:
    """The exporters' state for /health: `up`, `down` or `disabled`, with their numbers."""
    handle: Telemetry | None = app.extensions.get(_EXTENSION)
    if handle is None or handle.providers is None:
        return {
            "metrics_exporter": {"status": "disabled"},
            "trace_exporter": {"status": "disabled"},
        }
    scrapes = handle.providers.scrape_stats
    return {
        "metrics_exporter": {
            "status": "up",
            "scrapes": scrapes.scrapes,
            "last_scrape": iso_utc(scrapes.last_scrape),
        },
        "trace_exporter": handle.providers.span_exporter.status(),
    }
