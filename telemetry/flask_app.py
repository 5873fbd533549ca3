"""Instrument a Flask app: stable HTTP semantic conventions, operations paths left out.

Requests to the operations paths (`/metrics`, `/health...`) skip the instrumentation entirely:
they are not API traffic, are not counted in any metric, and make no spans (nor do the SQL
statements a health check runs).
"""

from __future__ import annotations

import os
import re

from flask import Flask
from opentelemetry import context, trace
from opentelemetry.instrumentation.propagators import (
    ResponsePropagator,
    Setter,
    default_setter,
    set_global_response_propagator,
)
from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider


def opt_in_to_stable_http_semconv() -> None:
    """Ask for the stable HTTP names; it must happen before any instrumentation initialises."""
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")


class _TraceResponse(ResponsePropagator):
    """`traceresponse: 00-<trace_id>-<span_id>-<sampled>` (W3C Trace Context), for clients.

    Only the sampled bit is sent: the SDK also sets the level-2 "random" bit (`-03`), which
    clients written against level 1 (and our contract, `-01`) do not expect.
    """

    def inject(self, carrier, context=None, setter: Setter = default_setter) -> None:
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid:
            return
        setter.set(
            carrier,
            "traceresponse",
            f"00-{trace.format_trace_id(span_context.trace_id)}"
            f"-{trace.format_span_id(span_context.span_id)}-{span_context.trace_flags & 1:02x}",
        )
        setter.set(carrier, "access-control-expose-headers", "traceresponse")


class _SkipPaths:
    """WSGI middleware: operations paths go to the plain app, with instrumentation suppressed."""

    def __init__(self, instrumented, plain, exact: frozenset[str], prefixes: tuple[str, ...]):
        self.instrumented = instrumented
        self.plain = plain
        self.exact = exact
        self.prefixes = prefixes

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path in self.exact or path.startswith(self.prefixes):
            token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
            try:
                return self.plain(environ, start_response)
            finally:
                context.detach(token)
        return self.instrumented(environ, start_response)


def _url_pattern(path: str) -> str:
    """A regex for the full URL of `path` and anything below it (the instrumentation's format)."""
    return rf"^[a-z]+://[^/]+{re.escape(path.rstrip('/'))}(/[^?]*)?(\?.*)?$"


def instrument_flask(
    app: Flask,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    skip_paths: tuple[str, ...],
) -> None:
    """Trace and measure every request of `app` except `skip_paths` (each exact or a prefix/)."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    if getattr(app, "_is_instrumented_by_opentelemetry", False):
        return
    set_global_response_propagator(_TraceResponse())
    plain = app.wsgi_app
    FlaskInstrumentor.instrument_app(
        app,
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        # The span is started by a before_request hook that the WSGI bypass cannot reach.
        excluded_urls=",".join(_url_pattern(path) for path in skip_paths),
    )
    # Start the span before any other before_request hook, so a request one of them aborts
    # (a 400 for a bad body, say) is still traced.
    hooks = app.before_request_funcs.setdefault(None, [])
    hooks.insert(0, hooks.pop(hooks.index(app._before_request)))
    app.wsgi_app = _SkipPaths(
        app.wsgi_app,
        plain,
        exact=frozenset(skip_paths),
        prefixes=tuple(p.rstrip("/") + "/" for p in skip_paths),
    )
