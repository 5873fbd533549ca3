"""Instrument a Flask app: stable HTTP semantic conventions, operations paths left out.

Requests to the operations paths (`/metrics`, `/health...`) skip the instrumentation entirely:
they are not API traffic, are not counted in any metric, and make no spans (nor do the SQL
statements a health check runs).
"""

from __future__ import annotations

import os
import re

from flask import Flask
from opentelemetry import context
from opentelemetry.instrumentation.propagators import (
    TraceResponsePropagator,
    set_global_response_propagator,
)
from opentelemetry.instrumentation.utils import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider


def opt_in_to_stable_http_semconv() -> None:
    """Ask for the stable HTTP names; it must happen before any instrumentation initialises."""
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")


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
    set_global_response_propagator(TraceResponsePropagator())
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
