"""Trace and measure every request of a Flask app, on the OpenTelemetry SDK, for little CPU.

Usage (`init_telemetry` does this for you)::

    from telemetry.http_server import instrument_app
    instrument_app(app, tracer_provider, meter_provider, skip_paths=("/metrics", "/health"))

It makes what opentelemetry-instrumentation-flask makes under the stable HTTP semantic
conventions (`OTEL_SEMCONV_STABILITY_OPT_IN=http`), and `tests/test_instrumentation_parity.py`
holds it to that:

- a SERVER span per request (INTERNAL when a span is already current), named
  `<METHOD> <route>`, continuing an incoming W3C `traceparent` through the global propagator, with
  the same request attributes (`http.request.method`, `url.path`, `url.query`, `client.address`,
  `user_agent.original`, ...), `http.route`, `http.response.status_code`, ERROR status and
  `error.type` on 5xx, and an exception event when a view raises;
- `http.server.request.duration` (seconds, the semconv buckets) and
  `http.server.active_requests`, with the same attributes;
- a `traceresponse` header (`00-<trace_id>-<span_id>-<sampled>`) on every response;
- given an `access_log.AccessLog`, one access line a request, written just before the span ends
  (so while it is current: the line carries its ids), from the values measured for the metrics.

One deliberate difference: a request that matches no route (or gets 405) is named `<METHOD>`
alone, as the semantic conventions say, not `<METHOD> <raw path>`: junk URLs must not become new
operations in Jaeger. Paths in `skip_paths` (each exact, or a prefix of `path/...`) are passed
through untouched, with instrumentation suppressed so their SQL makes no spans either.

Why it is cheaper: the request attributes are built once (contrib builds them twice and then
sets each again under the span's lock), the duration attributes of a (method, route, status)
are built once and reused, in-flight requests are counted in a dict and reported at collection
time, the propagator is skipped when the request carries no propagation header, one context is
attached instead of two, and no URL regex runs per request.

The span ends when the view has returned (a streamed body is sent after it, as with contrib).
`OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST/_RESPONSE` and
`OTEL_PYTHON_INSTRUMENTATION_HTTP_CAPTURE_ALL_METHODS` are honoured, read once at start-up;
paths are left out by `skip_paths`, not by `OTEL_PYTHON_FLASK_EXCLUDED_URLS`.
"""

from __future__ import annotations

import os
import threading
import weakref
from functools import partial
from time import perf_counter, time_ns

import flask
from flask import Flask, got_request_exception
from opentelemetry import context, propagate, trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace import SpanKind, Status, StatusCode, TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.http import (
    OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST,
    OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE,
    detect_synthetic_user_agent,
    sanitize_method,
)

from .access_log import AccessLog
from .sdk_shortcuts import FastHistogram, FastSpans

SCOPE = "telemetry.flask"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.21.0"
# The HTTP semantic conventions' buckets for http.server.request.duration, in seconds. Whole
# numbers stay ints: they are written `le="1"`, and Prometheus tells "1" and "1.0" apart.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

_STATE = "telemetry.request"  # environ key of the request's _Request
_CACHE_LIMIT = 1024  # entries per memo table; a flood of distinct values stops being memoised
_ERROR = StatusCode.ERROR
_UNSET = StatusCode.UNSET
_INVALID_SPAN = trace.INVALID_SPAN


def traceresponse(span_context: trace.SpanContext) -> str:
    """The W3C `traceresponse` value: only the sampled bit (`-01`/`-00`), as our contract says.

    The SDK also sets the level-2 "random" bit, which clients of level 1 do not expect.
    """
    return (
        f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}"
        f"-{span_context.trace_flags & 1:02x}"
    )


class SkipPaths:
    """Paths that are not API traffic: each exact, or a prefix of `path/...`."""

    def __init__(self, paths: tuple[str, ...]) -> None:
        self.exact = frozenset(paths)
        self.prefixes = tuple(p.rstrip("/") + "/" for p in paths)

    def __contains__(self, path: str) -> bool:
        return path in self.exact or path.startswith(self.prefixes)


def call_uninstrumented(app, environ, start_response):
    """Serve a request that is not API traffic: no span, no metric, no SQL spans."""
    token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        return app(environ, start_response)
    finally:
        context.detach(token)


class _Request:
    """What the middleware and the Flask hooks share about one request."""

    __slots__ = ("start_ns", "started", "method", "original", "span", "context", "token", "route")

    def __init__(self, method: str, original: str) -> None:
        self.start_ns = time_ns()
        self.started = perf_counter()
        self.method = method
        self.original = original
        self.span = None
        self.context = None
        self.token = None
        self.route = None


class _InFlight:
    """Requests in progress per attribute set, read by an observable instrument at collection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # threaded workers run requests concurrently
        self._counts: dict[tuple, list] = {}  # key -> [attributes, count]

    def add(self, key: tuple, attributes: dict, delta: int) -> None:
        with self._lock:
            entry = self._counts.get(key)
            if entry is None:
                entry = self._counts[key] = [attributes, 0]
            entry[1] += delta

    def observe(self, _options: CallbackOptions) -> list[Observation]:
        with self._lock:
            return [Observation(count, attributes) for attributes, count in self._counts.values()]


_in_flight_lock = threading.Lock()
_in_flight_by_provider: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _in_flight(meter_provider: MeterProvider, meter) -> _InFlight:
    """The provider's one count of requests in flight, shared by every app it instruments.

    An instrument is registered once per name, and so is its callback: a second app's own count
    would never be read.
    """
    with _in_flight_lock:
        found = _in_flight_by_provider.get(meter_provider)
        if found is None:
            found = _in_flight_by_provider[meter_provider] = _InFlight()
            meter.create_observable_up_down_counter(
                "http.server.active_requests",
                callbacks=[found.observe],
                unit="{request}",
                description="Number of active HTTP server requests.",
            )
        return found


def _default_propagator_fields(propagator) -> tuple[str, ...] | None:
    """The environ keys the SDK's default propagator reads, or None for any other propagator.

    With the default (W3C trace context + baggage), a request without those headers has nothing
    to extract, so extraction is skipped. Reads CompositePropagator's list (pinned SDK 1.45).
    """
    known = {TraceContextTextMapPropagator, W3CBaggagePropagator}
    parts = getattr(propagator, "_propagators", None)
    if not isinstance(propagator, CompositePropagator) or parts is None:
        return None
    if not parts or any(type(p) not in known for p in parts):
        return None
    return tuple("HTTP_" + field.upper().replace("-", "_") for field in propagator.fields)


def _environ_getter():
    from opentelemetry.propagators.textmap import Getter

    class EnvironGetter(Getter):
        """Read propagation headers from a WSGI environ (`traceparent` -> `HTTP_TRACEPARENT`)."""

        def get(self, carrier, key):
            value = carrier.get("HTTP_" + key.upper().replace("-", "_"))
            return None if value is None else [value]

        def keys(self, carrier):
            return [k[5:].lower().replace("_", "-") for k in carrier if k.startswith("HTTP_")]

    return EnvironGetter()


class FlaskInstrumentation:
    """WSGI middleware (timing, metrics, response attributes, span end) plus a first
    `before_request` hook (the span, started once Flask knows the route) and a
    `got_request_exception` receiver (the exception event)."""

    def __init__(
        self,
        app: Flask,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        skip_paths: tuple[str, ...],
        access_log: AccessLog | None = None,
    ) -> None:
        self._app = app.wsgi_app
        self._access_log = access_log
        self._skip = SkipPaths(skip_paths)
        self._tracer = tracer_provider.get_tracer(SCOPE, schema_url=SCHEMA_URL)
        meter = meter_provider.get_meter(SCOPE, schema_url=SCHEMA_URL)
        self._duration = meter.create_histogram(
            "http.server.request.duration",
            unit="s",
            description="Duration of HTTP server requests.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
        )
        self._record_duration = FastHistogram(self._duration).record
        self._spans = FastSpans(tracer_provider)
        self._in_flight = _in_flight(meter_provider, meter)
        self._getter = _environ_getter()
        self._propagator = None
        self._propagator_fields: tuple[str, ...] | None = None
        self._capture_request = bool(
            os.environ.get(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST)
        )
        self._capture_response = bool(
            os.environ.get(OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_RESPONSE)
        )
        # Memo tables, filled on first use (plain dict reads are safe across threads).
        self._methods: dict[str, tuple[str, str]] = {}
        self._active_attributes: dict[tuple, dict] = {}
        self._duration_attributes: dict[tuple, dict] = {}
        self._synthetic: dict[str, str | None] = {}

        app.before_request_funcs.setdefault(None, []).insert(0, self._start_span)
        got_request_exception.connect(self._record_exception, app, weak=False)
        app.wsgi_app = self

    # --- the WSGI middleware -------------------------------------------------------------------
    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "") in self._skip:
            return call_uninstrumented(self._app, environ, start_response)

        method, original = self._method(environ.get("REQUEST_METHOD", ""))
        request = environ[_STATE] = _Request(method, original)
        scheme = environ.get("wsgi.url_scheme", "")
        active_key = (method, scheme)
        active = self._active_attributes.get(active_key)
        if active is None:
            active = {"http.request.method": method}
            if scheme:
                active["url.scheme"] = scheme
            if len(self._active_attributes) < _CACHE_LIMIT:
                self._active_attributes[active_key] = active
        self._in_flight.add(active_key, active, 1)
        status: list = [None, None]  # http.response.status_code, error.type

        def _start_response(status_line, headers, *args):
            self._response_started(request, environ, status, status_line, headers)
            return start_response(status_line, headers, *args)

        try:
            result = self._app(environ, _start_response)
        except BaseException as exc:
            if status[1] is None:
                status[1] = type(exc).__qualname__
            self._finish(request, environ, status, scheme)
            raise
        else:
            self._finish(request, environ, status, scheme)
            return result
        finally:
            self._in_flight.add(active_key, active, -1)

    def _method(self, raw: str) -> tuple[str, str]:
        """(sanitized method, original) as contrib computes them, memoised."""
        found = self._methods.get(raw)
        if found is None:
            found = (sanitize_method(raw).strip(), raw.strip())
            if len(self._methods) < _CACHE_LIMIT:
                self._methods[raw] = found
        return found

    def _response_started(self, request: _Request, environ, status: list, line, headers) -> None:
        """Status attributes, span status and `traceresponse`, as the response starts."""
        code_text = line.split(" ", 1)[0]
        try:
            code = int(code_text)
        except ValueError:
            code = -1
        if code >= 0:
            status[0] = code
        if code < 0 or code >= 500:
            status[1] = code_text
        span = request.span
        if span is None:  # a hook before ours answered (a url_value_preprocessor's abort)
            span = self._begin(request, environ, _current_rule())
        span_context = span.get_span_context()
        if span_context.is_valid:
            headers.append(("traceresponse", traceresponse(span_context)))
            headers.append(("access-control-expose-headers", "traceresponse"))
        if not span.is_recording():
            return
        if status[1] is None:
            self._spans.update(span, {"http.response.status_code": code})
        else:
            attributes = {"http.response.status_code": code} if code >= 0 else {}
            attributes["error.type"] = status[1]
            self._spans.update(span, attributes)
            if code < 0:
                span.set_status(Status(_ERROR, "Non-integer HTTP status: " + code_text))
            elif span.status.status_code is _UNSET:  # keep an exception's description
                span.set_status(Status(_ERROR))
        if self._capture_response:
            from opentelemetry.instrumentation.wsgi import (
                collect_custom_response_headers_attributes,
            )

            span.set_attributes(collect_custom_response_headers_attributes(headers))

    def _finish(self, request: _Request, environ, status: list, scheme: str) -> None:
        """Write the access line (the span still current), end the span, leave its context, and
        record the duration."""
        span = request.span
        if span is None:  # Flask never reached our hook nor started a response
            span = self._begin(request, environ, None)
        elapsed = max(perf_counter() - request.started, 0.0)
        if self._access_log is not None:
            self._access_log.write(
                request.original, request.route, status[0], elapsed, environ.get("REMOTE_ADDR")
            )
        span.end()
        if request.token is not None:
            context.detach(request.token)
            request.token = None
        key = (
            request.method,
            scheme,
            status[0],
            status[1],
            request.route,
            environ.get("SERVER_PROTOCOL", ""),
        )
        attributes = self._duration_attributes.get(key)
        if attributes is None:
            attributes = _duration_attributes(*key)
            if len(self._duration_attributes) < _CACHE_LIMIT:
                self._duration_attributes[key] = attributes
        self._record_duration(elapsed, key, attributes, request.context)

    # --- the Flask hooks -----------------------------------------------------------------------
    def _start_span(self) -> None:
        """First before_request hook: the route is known now, so the sampler sees the final name."""
        flask_request = flask.request._get_current_object()
        request = flask_request.environ.get(_STATE)
        if request is not None and request.span is None:
            self._begin(request, flask_request.environ, flask_request.url_rule)

    def _begin(self, request: _Request, environ, rule):
        """Start the request's span and make it current; return it."""
        request.route = rule.rule if rule is not None else None
        method = request.method
        name_method = "HTTP" if method == "_OTHER" else method
        name = f"{name_method} {request.route}" if request.route else name_method

        if trace.get_current_span() is _INVALID_SPAN:
            kind = SpanKind.SERVER
            parent = self._extract(environ)
        else:
            kind = SpanKind.INTERNAL
            parent = context.get_current()
        span = self._spans.start(
            self._tracer,
            name,
            context=parent,
            kind=kind,
            attributes=partial(self._request_attributes, environ, request),
            start_time=request.start_ns,
        )
        if self._capture_request and kind is SpanKind.SERVER and span.is_recording():
            from opentelemetry.instrumentation.wsgi import collect_custom_request_headers_attributes

            span.set_attributes(collect_custom_request_headers_attributes(environ))
        request.span = span
        request.context = trace.set_span_in_context(span, parent)
        request.token = context.attach(request.context)
        return span

    def _extract(self, environ) -> context.Context:
        """The incoming trace context, if the request carries one."""
        propagator = propagate.get_global_textmap()
        if propagator is not self._propagator:  # set_global_textmap may replace it at any time
            self._propagator_fields = _default_propagator_fields(propagator)
            self._propagator = propagator
        fields = self._propagator_fields
        if fields is not None and not any(field in environ for field in fields):
            return context.get_current()
        return propagator.extract(environ, getter=self._getter)

    def _record_exception(self, _sender, exception=None, **_extra) -> None:
        """An unhandled exception (Flask answers 500): an event and ERROR on the request's span."""
        request = flask.request.environ.get(_STATE)
        span = request.span if request is not None else None
        if span is None or not span.is_recording() or not isinstance(exception, Exception):
            return
        span.record_exception(exception)
        span.set_status(Status(_ERROR, f"{type(exception).__name__}: {exception}"))

    def _request_attributes(self, environ, request: _Request) -> dict:
        """The request attributes of the contrib WSGI instrumentation (stable names only)."""
        attributes: dict = {}
        if request.original != request.method and request.original:
            attributes["http.request.method_original"] = request.original
        if request.method:
            attributes["http.request.method"] = request.method
        scheme = environ.get("wsgi.url_scheme")
        if scheme:
            attributes["url.scheme"] = scheme
        host = environ.get("HTTP_HOST")
        if host:
            attributes["server.address"] = host
        _set_int(attributes, "server.port", environ.get("SERVER_PORT"))
        target = environ.get("RAW_URI")
        if target is None:
            target = environ.get("REQUEST_URI")
        if target:
            path, query = environ.get("PATH_INFO"), environ.get("QUERY_STRING")
            if path:
                attributes["url.path"] = path
            if query:
                attributes["url.query"] = query
        remote_addr = environ.get("REMOTE_ADDR")
        if remote_addr:
            attributes["client.address"] = remote_addr
        _set_int(attributes, "client.port", environ.get("REMOTE_PORT"))
        remote_host = environ.get("REMOTE_HOST")
        if remote_host and remote_host != remote_addr:
            attributes["client.address"] = remote_host
        user_agent = environ.get("HTTP_USER_AGENT")
        if user_agent:
            attributes["user_agent.original"] = user_agent
            synthetic = self._synthetic.get(user_agent, "")
            if synthetic == "":
                synthetic = detect_synthetic_user_agent(user_agent)
                if len(self._synthetic) < _CACHE_LIMIT:
                    self._synthetic[user_agent] = synthetic
            if synthetic:
                attributes["user_agent.synthetic.type"] = synthetic
        version = _protocol_version(environ.get("SERVER_PROTOCOL", ""))
        if version:
            attributes["network.protocol.version"] = version
        if request.route:
            attributes["http.route"] = request.route
        return attributes


def _current_rule():
    """The URL rule Flask matched, when a request context is active."""
    return flask.request.url_rule if flask.has_request_context() else None


def _set_int(attributes: dict, key: str, value) -> None:
    if value:
        try:
            attributes[key] = int(value)
        except (TypeError, ValueError):
            pass


def _protocol_version(server_protocol: str) -> str:
    if server_protocol[:5].upper() == "HTTP/":
        return server_protocol[5:]
    return server_protocol


def _duration_attributes(method, scheme, code, error_type, route, server_protocol) -> dict:
    """http.server.request.duration's attributes, in contrib's order."""
    attributes = {"http.request.method": method}
    if scheme:
        attributes["url.scheme"] = scheme
    version = _protocol_version(server_protocol)
    if version:
        attributes["network.protocol.version"] = version
    if code is not None:
        attributes["http.response.status_code"] = code
    if error_type is not None:
        attributes["error.type"] = error_type
    if route:
        attributes["http.route"] = route
    return attributes


def instrument_app(
    app: Flask,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    skip_paths: tuple[str, ...] = (),
    access_log: AccessLog | None = None,
) -> None:
    """Instrument `app` once (and write `access_log` lines); a second call is a no-op."""
    if app.extensions.get(SCOPE):
        return
    FlaskInstrumentation(app, tracer_provider, meter_provider, skip_paths, access_log)
    app.extensions[SCOPE] = True
