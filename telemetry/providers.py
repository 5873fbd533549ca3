"""The process's OpenTelemetry providers, built once and reused by every app in the process.

OpenTelemetry's global providers can be set only once, and a Prometheus collector registers in
its registry only once; tests build many apps. So this module builds one TracerProvider, one
MeterProvider and one Prometheus registry per process (again after a fork, whose threads die) and
hands them to each app.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Metric

from .exemplars import ExemplarReader
from .pool import PoolMetrics
from .runtime import observe_runtime
from .span_export import TrackedBatchSpanProcessor, TrackedSpanExporter


@dataclass
class ScrapeStats:
    scrapes: int = 0
    last_scrape: float | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self) -> None:
        """Count one scrape (threaded workers may serve two at once)."""
        with self._lock:
            self.scrapes += 1
            self.last_scrape = time.time()


@dataclass
class Providers:
    pid: int
    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    registry: CollectorRegistry
    reader: ExemplarReader
    span_exporter: TrackedSpanExporter
    pools: PoolMetrics
    scrape_stats: ScrapeStats = field(default_factory=ScrapeStats)
    _collect_lock: threading.Lock = field(default_factory=threading.Lock)

    def collect(self) -> list[Metric]:
        """This process's metric families, one collection at a time.

        The OTel Prometheus reader queues each collection's data and drains the queue when
        collected; two collections at once could each drain both and repeat samples.
        """
        with self._collect_lock:
            return [_prometheus_name(family) for family in self.registry.collect()]


# Prometheus names for the semantic conventions' gauges that end in `.count`: promtool refuses a
# `_count` suffix on anything but a histogram or a summary ("non-histogram and non-summary metrics
# should not have _count suffix"). Every other metric keeps the name the exporter derives from
# its semantic-convention name; these three keep it everywhere but in Prometheus's exposition.
PROMETHEUS_NAMES = {
    "db_client_connection_count": "db_client_connections",
    "process_thread_count": "process_threads",
    "process_unix_file_descriptor_count": "process_unix_file_descriptors",
}


def _prometheus_name(family: Metric) -> Metric:
    new = PROMETHEUS_NAMES.get(family.name)
    if new is not None:
        old, family.name = family.name, new
        family.samples = [s._replace(name=new + s.name[len(old) :]) for s in family.samples]
    return family


_lock = threading.Lock()
_providers: Providers | None = None


def get_providers(service_name: str, service_version: str) -> Providers:
    """Return this process's providers, building them on first use (or first use after a fork)."""
    global _providers
    with _lock:
        if _providers is None or _providers.pid != os.getpid():
            _providers = _build(service_name, service_version)
        return _providers


def shutdown_tracing() -> None:
    """Flush and stop this process's span export now, as at exit (about a second at most).

    For a gunicorn worker that is exiting: its spans dropped or failed at exit are then counted
    before it writes its last metrics snapshot.
    """
    with _lock:
        providers = _providers
    if providers is not None and providers.pid == os.getpid():
        providers.tracer_provider.shutdown()


def _resource(service_name: str, service_version: str) -> Resource:
    """Our defaults for service.name/version, overridden by OTEL_SERVICE_NAME and friends."""
    from_env = OTELResourceDetector().detect().attributes
    defaults = {"service.name": service_name, "service.version": service_version}
    return Resource.create({k: v for k, v in defaults.items() if k not in from_env})


def _build(service_name: str, service_version: str) -> Providers:
    resource = _resource(service_name, service_version)
    registry = CollectorRegistry(auto_describe=True)
    reader = ExemplarReader(scope_info_enabled=False, registry=registry)
    # The SDK's default exemplar filter (trace_based) keeps one exemplar per histogram bucket from
    # measurements made in sampled spans; OTEL_METRICS_EXEMPLAR_FILTER=always_off saves that work.
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    span_exporter = TrackedSpanExporter()
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(TrackedBatchSpanProcessor(span_exporter))
    _observe_export_stats(meter_provider, span_exporter)
    # Read at collection time only (see runtime and pool): nothing is added to a request.
    observe_runtime(meter_provider.get_meter("telemetry.runtime"))
    pools = PoolMetrics(meter_provider.get_meter("telemetry.pool"))
    _set_globals_once(tracer_provider, meter_provider)
    return Providers(
        pid=os.getpid(),
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        registry=registry,
        reader=reader,
        span_exporter=span_exporter,
        pools=pools,
    )


def _observe_export_stats(meter_provider: MeterProvider, exporter: TrackedSpanExporter) -> None:
    """Expose the trace exporter's score under the SDK self-monitoring names (semconv)."""
    meter = meter_provider.get_meter("telemetry")

    def exported(_options: CallbackOptions) -> list[Observation]:
        stats = exporter.stats
        return [Observation(stats.exported_spans, {})] + [
            Observation(count, {"error.type": kind})
            for kind, count in dict(stats.failed_spans).items()  # a copy: the export thread adds
        ]

    def processed(_options: CallbackOptions) -> list[Observation]:
        stats = exporter.stats
        handed_over = stats.exported_spans + sum(stats.failed_spans.values())
        dropped = {"queue_full": 0, "shutdown": 0, **stats.dropped}
        return [Observation(handed_over, {})] + [
            Observation(count, {"error.type": reason}) for reason, count in dropped.items()
        ]

    meter.create_observable_counter(
        "otel.sdk.exporter.span.exported",
        callbacks=[exported],
        unit="{span}",
        description="Spans the trace exporter sent; error.type is set on failed exports.",
    )
    meter.create_observable_counter(
        "otel.sdk.processor.span.processed",
        callbacks=[processed],
        unit="{span}",
        description="Spans the batch processor handled; error.type=queue_full or shutdown when "
        "dropped.",
    )


_globals_set = False


def _set_globals_once(tracer_provider: TracerProvider, meter_provider: MeterProvider) -> None:
    """Make the first providers global, so `trace.get_tracer()` in app code reaches them."""
    global _globals_set
    if not _globals_set:
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(meter_provider)
        _globals_set = True
