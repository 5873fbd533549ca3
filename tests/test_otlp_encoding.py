"""The direct OTLP encoder writes what opentelemetry's own encoder writes, for every kind of span.

Real spans (an SDK TracerProvider into an InMemorySpanExporter) go through both
`telemetry.otlp_encoding.encode_spans` and the stock `trace_encoder.encode_spans`; both outputs
are decoded with opentelemetry-proto and must be equal messages that hold every span.
"""

from __future__ import annotations

import logging
import math

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as stock_encode
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span as PB2Span
from opentelemetry.proto.trace.v1.trace_pb2 import Status as PB2Status
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TraceState,
)

from telemetry import otlp_encoding
from telemetry.otlp_encoding import encode_spans

RESOURCE = Resource({"service.name": "encoder-test", "service.instance.id": "i-1"})
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
REMOTE_PARENT = SpanContext(
    TRACE_ID,
    0x00F067AA0BA902B7,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("congo", "t61rcWkgMzE"), ("rojo", "00f067aa0ba902b7")]),
)
LINKED = SpanContext(0xABC, 0xDEF, is_remote=True, trace_state=TraceState([("k", "v")]))
LINKED_LOCAL = SpanContext(0x123, 0x456, is_remote=False)


class Tracing:
    """A provider of its own whose tracers' finished spans are kept in memory."""

    def __init__(self, resource: Resource = RESOURCE, limits: SpanLimits | None = None):
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(
            resource=resource, span_limits=limits, shutdown_on_exit=False
        )
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def tracer(self, name="test.scope", version="1.0", **kwargs) -> trace.Tracer:
        return self.provider.get_tracer(name, version, **kwargs)

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


def decode(data: bytes) -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest.FromString(data)


def all_spans(request: ExportTraceServiceRequest) -> list[PB2Span]:
    return [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]


def assert_encodes_like_stock(spans: list[ReadableSpan]) -> ExportTraceServiceRequest:
    """Both encoders' outputs decode to equal messages carrying every span; return ours."""
    ours = decode(encode_spans(spans))
    stock = decode(stock_encode(spans).SerializePartialToString())
    assert str(ours) == str(stock)  # the readable diff, when they differ
    assert ours == stock
    assert len(all_spans(ours)) == len(spans)
    return ours


def attribute_values(attributes) -> dict:
    return {kv.key: kv.value for kv in attributes}


# value -> the AnyValue field the stock encoder sets for it (None: none, an empty AnyValue)
ATTRIBUTE_VALUES = {
    "empty string": ("", "string_value"),
    "ascii": ("GET", "string_value"),
    "latin and cjk": ("caf\u00e9 \u4e2d\u6587", "string_value"),
    "non-BMP": ("\U0001f600 \U0001d11e", "string_value"),
    "NUL inside": ("a\x00b", "string_value"),
    "large string": ("x" * 200_000, "string_value"),
    "large non-BMP string": ("\u00e9\U0001f600" * 50_000, "string_value"),
    "zero": (0, "int_value"),
    "one-byte varint": (127, "int_value"),
    "two-byte varint": (128, "int_value"),
    "negative": (-1, "int_value"),
    "int64 min": (-(2**63), "int_value"),
    "int64 max": (2**63 - 1, "int_value"),
    "true": (True, "bool_value"),
    "false": (False, "bool_value"),
    "float zero": (0.0, "double_value"),
    "negative zero": (-0.0, "double_value"),
    "float": (-2.25, "double_value"),
    "subnormal": (5e-324, "double_value"),
    "float max": (1.7976931348623157e308, "double_value"),
    "infinity": (math.inf, "double_value"),
    "negative infinity": (-math.inf, "double_value"),
    "nan": (math.nan, "double_value"),
    "empty bytes": (b"", "bytes_value"),
    "bytes": (b"\x00\xff\x80", "bytes_value"),
    "string sequence": (["a", "", "\u00fc\U0001f600"], "array_value"),
    "int sequence": ([1, -2, 2**40], "array_value"),
    "float sequence": ([0.5, -1.0], "array_value"),
    "bool sequence": ([True, False], "array_value"),
    "bytes sequence": ([b"a", b""], "array_value"),
    "empty sequence": ([], "array_value"),
    "sequence with None": (["a", None], "array_value"),
    "mixed sequence": ([1, "a", True, 1.5], "array_value"),
    "nested sequence": ([[1, 2], []], "array_value"),
    "mapping": ({"k": "v", "n": -1, "nested": {"list": [1.5]}}, "kvlist_value"),
    "empty mapping": ({}, "kvlist_value"),
    "None": (None, None),
}


@pytest.mark.parametrize(("value", "field"), ATTRIBUTE_VALUES.values(), ids=list(ATTRIBUTE_VALUES))
def test_attribute_value(value, field):
    tracing = Tracing()
    tracing.tracer().start_span("s", attributes={"v": value, "after": "x"}).end()
    (span,) = all_spans(assert_encodes_like_stock(tracing.spans()))
    decoded = attribute_values(span.attributes)
    assert list(decoded) == ["v", "after"]
    assert decoded["v"].WhichOneof("value") == field


# Values the SDK accepts but protobuf cannot carry: logged and left out, the rest kept.
UNENCODABLE_VALUES = {
    "int64 max + 1": 2**63,
    "int64 min - 1": -(2**63) - 1,
    "uint64 range": 2**64 - 1,
    "lone surrogate": "a\ud800b",
    "in a sequence": [1, 2**70],
    "in a mapping": {"k": "\udfff"},
}


@pytest.mark.parametrize("value", UNENCODABLE_VALUES.values(), ids=list(UNENCODABLE_VALUES))
def test_unencodable_attribute_is_logged_and_left_out(value, caplog):
    caplog.set_level(logging.ERROR, logger="telemetry.otlp_encoding")
    tracing = Tracing()
    tracing.tracer().start_span("s", attributes={"before": 1, "bad": value, "after": 2}).end()
    (span,) = all_spans(assert_encodes_like_stock(tracing.spans()))
    assert list(attribute_values(span.attributes)) == ["before", "after"]
    assert any(
        r.name == "telemetry.otlp_encoding" and "Failed to encode key bad" in r.getMessage()
        for r in caplog.records
    )


def child_of_local_parent(tracer):
    with tracer.start_as_current_span("parent"):
        tracer.start_span("child").end()


def child_of_remote_parent(tracer):
    context = trace.set_span_in_context(NonRecordingSpan(REMOTE_PARENT))
    tracer.start_span("child of remote", context=context, kind=SpanKind.SERVER).end()


def events(tracer):
    span = tracer.start_span("events")
    span.add_event("no attributes")
    span.add_event("attributes", {"s": "\u00fc", "i": -7, "f": 0.5, "b": False, "a": [1, 2]})
    span.add_event("", timestamp=1)
    span.add_event("explicit time", {"k": ""}, timestamp=1_700_000_000_123_456_789)
    span.end()


def recorded_exception(tracer):
    with tracer.start_as_current_span("raises") as span:
        try:
            raise ValueError("bad \u4e2d\U0001f600 value")
        except ValueError as error:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def links(tracer):
    tracer.start_span(
        "linked",
        links=[
            Link(LINKED, {"l": 1, "s": "\u00e9", "a": ["x"]}),
            Link(LINKED_LOCAL),
            Link(REMOTE_PARENT, {"why": "batch"}),
        ],
    ).end()


def explicit_times(tracer):
    tracer.start_span("timed", start_time=1, attributes={"k": "v"}).end(end_time=2**63 + 5)


def many_attributes(tracer):
    span = tracer.start_span("many")
    for i in range(300):
        span.set_attribute(f"key.{i}", i if i % 2 else f"value {i}")
    span.end()


SPANS = {
    "root": lambda tracer: tracer.start_span("root").end(),
    "empty name": lambda tracer: tracer.start_span("").end(),
    "unicode name": lambda tracer: tracer.start_span("GET /\u4e2d/\U0001f600").end(),
    "large name": lambda tracer: tracer.start_span("n" * 100_000).end(),
    "child of a local parent": child_of_local_parent,
    "child of a remote parent, trace_state": child_of_remote_parent,
    "events": events,
    "recorded exception": recorded_exception,
    "links": links,
    "explicit times": explicit_times,
    "many attributes": many_attributes,
}
SPANS.update(
    {
        f"kind {kind.name}": lambda tracer, kind=kind: tracer.start_span("k", kind=kind).end()
        for kind in SpanKind
    }
)
STATUSES = {
    "unset": Status(StatusCode.UNSET),
    "ok": Status(StatusCode.OK),
    "error": Status(StatusCode.ERROR),
    "error with description": Status(StatusCode.ERROR, "boom"),
    "error with unicode description": Status(StatusCode.ERROR, "\u00e9chec \U0001f4a5"),
}


@pytest.mark.parametrize("build", SPANS.values(), ids=list(SPANS))
def test_span(build):
    tracing = Tracing()
    build(tracing.tracer())
    assert_encodes_like_stock(tracing.spans())


@pytest.mark.parametrize("status", STATUSES.values(), ids=list(STATUSES))
def test_status(status):
    tracing = Tracing()
    span = tracing.tracer().start_span("s")
    span.set_status(status)
    span.end()
    (decoded,) = all_spans(assert_encodes_like_stock(tracing.spans()))
    assert decoded.HasField("status")
    assert (decoded.status.code, decoded.status.message) == (
        status.status_code.value,
        status.description or "",
    )


def over_limits(tracer):
    span = tracer.start_span(
        "over limits",
        attributes={f"a{i}": "long value" for i in range(5)},
        links=[Link(LINKED, {"x": 1, "y": 2, "z": 3}), Link(LINKED_LOCAL)],
    )
    for i in range(3):
        span.add_event(f"e{i}", {"x": 1, "y": 2})
    span.end()


# limits -> what the decoded span must show
LIMITS = {
    "attributes": (SpanLimits(max_span_attributes=2), lambda s: s.dropped_attributes_count == 3),
    "no attributes at all": (
        SpanLimits(max_span_attributes=0),
        lambda s: s.dropped_attributes_count == 5 and not s.attributes,
    ),
    "attribute length": (
        SpanLimits(max_attribute_length=4),
        lambda s: s.attributes[0].value.string_value == "long",
    ),
    "events": (SpanLimits(max_events=1), lambda s: s.dropped_events_count == 2),
    "event attributes": (
        SpanLimits(max_event_attributes=1),
        lambda s: [e.dropped_attributes_count for e in s.events] == [1, 1, 1],
    ),
    "links": (SpanLimits(max_links=1), lambda s: s.dropped_links_count == 1),
    "link attributes": (
        SpanLimits(max_link_attributes=1),
        lambda s: [link.dropped_attributes_count for link in s.links] == [2, 0],
    ),
}


@pytest.mark.parametrize(("limits", "shows"), LIMITS.values(), ids=list(LIMITS))
def test_over_limits(limits, shows):
    tracing = Tracing(limits=limits)
    over_limits(tracing.tracer())
    (span,) = all_spans(assert_encodes_like_stock(tracing.spans()))
    assert shows(span)


def test_several_resources_and_scopes_grouped_like_stock():
    first = Tracing()
    second = Tracing(
        Resource(
            {"service.name": "other", "n": 3, "f": 1.5, "b": True, "arr": ["a", "b"]},
            schema_url="https://opentelemetry.io/schemas/1.21.0",
        )
    )
    equal_to_first = Tracing(Resource(dict(RESOURCE.attributes)))  # another, equal object
    tracers = [
        first.tracer("flask", "0.66b1", schema_url="https://opentelemetry.io/schemas/1.11.0"),
        first.tracer("no.version", None),
        first.tracer("with.attributes", "2", attributes={"scope.attr": "x", "scope.n": 1}),
        first.tracer("with.attributes", "2", attributes={"scope.attr": "y"}),
        first.tracer("", ""),
        second.tracer("flask", "0.66b1"),
        equal_to_first.tracer(
            "flask", "0.66b1", schema_url="https://opentelemetry.io/schemas/1.11.0"
        ),
        equal_to_first.tracer("only.here"),
    ]
    for round_ in range(3):  # interleaved, so grouping and order within a group both show
        for i, tracer in enumerate(tracers):
            tracer.start_span(f"span {round_}.{i}").end()
    spans = [span for tracing in (first, second, equal_to_first) for span in tracing.spans()]
    spans.sort(key=lambda span: span.name)

    decoded = assert_encodes_like_stock(spans)
    assert [len(rs.scope_spans) for rs in decoded.resource_spans] == [6, 1]
    assert decoded.resource_spans[1].schema_url == "https://opentelemetry.io/schemas/1.21.0"
    flask = decoded.resource_spans[0].scope_spans[0]
    assert [s.name for s in flask.spans] == [f"span {r}.{i}" for r in range(3) for i in (0, 6)]


def test_span_without_scope_and_with_plain_attributes():
    # What another pipeline may hand over: a ReadableSpan made directly, with plain containers.
    span = ReadableSpan(
        "direct",
        context=SpanContext(TRACE_ID, 0x1, is_remote=False),
        parent=REMOTE_PARENT,
        resource=RESOURCE,
        attributes={"map": {"a": 1, "b": ["x", None]}, "none": None, "s": "v"},
        events=[Event("e", {"k": "v"}, timestamp=5), Event("bare", timestamp=6)],
        links=[Link(LINKED, {"l": True})],
        kind=SpanKind.CONSUMER,
        start_time=10,
        end_time=20,
    )
    decoded = assert_encodes_like_stock([span])
    assert decoded.resource_spans[0].scope_spans[0].HasField("scope")


def test_empty_batch():
    assert encode_spans([]) == stock_encode([]).SerializePartialToString() == b""


def mixed_batch() -> list[ReadableSpan]:
    """Every case above, from two providers and several scopes, in one batch."""
    first, second = Tracing(), Tracing(Resource({"service.name": "second"}))
    for i, build in enumerate(SPANS.values()):
        build((first, second)[i % 2].tracer(f"scope.{i % 3}"))
    for name, (value, _) in ATTRIBUTE_VALUES.items():
        first.tracer("values", None).start_span(name, attributes={"v": value}).end()
    return first.spans() + second.spans()


def test_mixed_batch_bytes_identical_to_stock():
    spans = mixed_batch()
    assert_encodes_like_stock(spans)
    assert encode_spans(spans) == stock_encode(spans).SerializePartialToString()


def test_public_accessors_give_the_same_bytes(monkeypatch):
    # The path taken when the SDK no longer keeps attributes where 1.45 does.
    spans = mixed_batch()
    monkeypatch.setattr(otlp_encoding, "_READ_SDK_INTERNALS", False)
    assert encode_spans(spans) == stock_encode(spans).SerializePartialToString()


def test_memo_stays_bounded_and_correct(monkeypatch):
    monkeypatch.setattr(otlp_encoding, "_memo", {})
    monkeypatch.setattr(otlp_encoding, "_MEMO_ENTRIES", 8)
    tracing = Tracing()
    for i in range(50):
        tracing.tracer().start_span("s", attributes={"path": f"/posts/{i}", "n": i}).end()
    spans = tracing.spans()
    for _ in range(2):  # the second pass is served partly from the memo
        assert_encodes_like_stock(spans)
        assert len(otlp_encoding._memo) <= 8


def test_decoded_request_carries_the_spans():
    """Concrete fields, so that neither encoder can change (or return nothing) unnoticed."""
    tracing = Tracing()
    tracer = tracing.tracer("telemetry.flask", "1.2", schema_url="https://example.org/s")
    context = trace.set_span_in_context(NonRecordingSpan(REMOTE_PARENT))
    with tracer.start_as_current_span(
        "GET /api/v1/posts/<int:post_id>",
        context=context,
        kind=SpanKind.SERVER,
        attributes={"http.request.method": "GET", "http.response.status_code": 500},
        start_time=1_000,
    ) as server:
        tracer.start_span("SELECT blog", kind=SpanKind.CLIENT, start_time=1_100).end(2_000)
        server.add_event("exception", {"exception.type": "ValueError"}, timestamp=2_500)
        server.set_status(Status(StatusCode.ERROR, "ValueError: boom"))
        server.end(3_000)

    decoded = assert_encodes_like_stock(tracing.spans())
    (resource_spans,) = decoded.resource_spans
    resource = attribute_values(resource_spans.resource.attributes)
    assert resource["service.name"].string_value == "encoder-test"
    (scope_spans,) = resource_spans.scope_spans
    assert (scope_spans.scope.name, scope_spans.scope.version) == ("telemetry.flask", "1.2")
    assert scope_spans.schema_url == "https://example.org/s"
    sql, server_span = scope_spans.spans
    assert server_span.trace_id.hex() == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert server_span.parent_span_id.hex() == "00f067aa0ba902b7"
    assert server_span.trace_state == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
    assert server_span.name == "GET /api/v1/posts/<int:post_id>"
    assert server_span.kind == PB2Span.SPAN_KIND_SERVER
    assert (server_span.start_time_unix_nano, server_span.end_time_unix_nano) == (1_000, 3_000)
    attributes = attribute_values(server_span.attributes)
    assert attributes["http.request.method"].string_value == "GET"
    assert attributes["http.response.status_code"].int_value == 500
    assert server_span.status.code == PB2Status.STATUS_CODE_ERROR
    assert server_span.status.message == "ValueError: boom"
    (event,) = server_span.events
    assert (event.name, event.time_unix_nano) == ("exception", 2_500)
    assert server_span.flags == 0x300  # HAS_IS_REMOTE | IS_REMOTE
    assert sql.parent_span_id == server_span.span_id
    assert sql.kind == PB2Span.SPAN_KIND_CLIENT
    assert sql.flags == 0x100  # HAS_IS_REMOTE: a local parent
    assert sql.HasField("status") and sql.status.code == PB2Status.STATUS_CODE_UNSET
