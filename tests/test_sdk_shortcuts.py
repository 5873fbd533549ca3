"""The SDK shortcuts give exactly what the public API gives, and step aside where they can't."""

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.metrics.view import View
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBasedTraceIdRatio,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import SpanKind

from telemetry.sdk_shortcuts import FastHistogram, FastSpans

BUCKETS = (0.005, 0.01, 0.1, 1, 10)
ROUTES = ("/a", "/b", "/c")


def _histogram_points(fast: bool, views=()) -> list:
    """Record the same measurements (three attribute sets, some in a span) and collect them."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader], views=list(views)).get_meter("test")
    histogram = meter.create_histogram("d", unit="s", explicit_bucket_boundaries_advisory=BUCKETS)
    recorder = FastHistogram(histogram)
    tracer = TracerProvider().get_tracer("test")
    for i in range(60):
        route = ROUTES[i % 3]
        attributes = {"http.route": route, "http.response.status_code": 200}
        value = (i % 7) * 0.013
        with tracer.start_as_current_span("request") as span:
            context = trace.set_span_in_context(span)
            if fast:
                recorder.record(value, route, attributes, context)
            else:
                histogram.record(value, attributes, context=context)
    (metric,) = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics
    return sorted(
        (
            (
                dict(point.attributes),
                point.count,
                round(point.sum, 9),
                list(point.bucket_counts),
                point.min,
                point.max,
                sorted(round(e.value, 9) for e in point.exemplars),
                all(e.trace_id for e in point.exemplars),
            )
            for point in metric.data.data_points
        ),
        key=repr,
    )


def test_fast_histogram_records_what_the_public_api_records():
    fast = _histogram_points(fast=True)
    assert fast == _histogram_points(fast=False)
    assert [p[1] for p in fast] == [20, 20, 20] and all(p[6] and p[7] for p in fast)


def test_fast_histogram_leaves_attribute_filtering_views_to_the_sdk():
    view = View(instrument_name="d", attribute_keys={"http.route"})
    points = _histogram_points(fast=True, views=[view])
    assert points == _histogram_points(fast=False, views=[view])
    assert all(set(p[0]) == {"http.route"} for p in points)


class _ByRoute(Sampler):
    """A sampler that reads attributes: the shortcut must not hide them from it."""

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None):
        keep = (attributes or {}).get("http.route") == "/kept"
        return SamplingResult(Decision.RECORD_AND_SAMPLE if keep else Decision.DROP, attributes)

    def get_description(self):
        return "ByRoute"


@pytest.mark.parametrize(
    "sampler, limits, direct",
    [
        (ALWAYS_ON, SpanLimits(), True),
        (ParentBasedTraceIdRatio(1.0), SpanLimits(), True),
        (_ByRoute(), SpanLimits(), False),
        (ALWAYS_ON, SpanLimits(max_span_attribute_length=3), False),
        (ALWAYS_ON, SpanLimits(max_span_attributes=2), False),
    ],
)
def test_fast_spans_are_the_public_apis(sampler, limits, direct):
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler, span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    writer = FastSpans(provider)
    assert writer.direct is direct
    attributes = {"http.route": "/kept", "http.request.method": "GET", "server.port": 8000}
    span = writer.start(
        provider.get_tracer("t"),
        "GET /kept",
        context=None,
        kind=SpanKind.SERVER,
        attributes=attributes,
    )
    writer.update(span, {"http.response.status_code": 200})
    span.end()
    reference = provider.get_tracer("t").start_span("GET /kept", attributes=attributes)
    reference.set_attributes({"http.response.status_code": 200})
    reference.end()
    ours, theirs = exporter.get_finished_spans()
    assert dict(ours.attributes) == dict(theirs.attributes)
    assert ours.attributes["http.response.status_code"] == 200
    assert ours.dropped_attributes == theirs.dropped_attributes
