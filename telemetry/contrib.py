"""The reference: opentelemetry-instrumentation-flask and -sqlalchemy, wired as our own is.

`TELEMETRY_INSTRUMENTATION=contrib` selects these instead of `http_server` and `sql_spans`; they
make the same spans and metrics (bar the name of a request that matches no route) at about twice
the CPU. They stay because `tests/test_instrumentation_parity.py` holds our instrumentation to
them, and `bench/overhead.py` measures both.

Differences kept from the stock setup, as in ours: operations paths bypass the instrumentation
(WSGI middleware, suppressed context), the `traceresponse` header carries the sampled bit only,
sqlcommenter is off, and the pool-usage gauge (four updates a request) is left out.
"""

from __future__ import annotations

import os
import re
import weakref

from flask import Flask
from opentelemetry.metrics import MeterProvider, NoOpMeterProvider
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy.engine import Engine

from .http_server import SkipPaths, call_uninstrumented, traceresponse

_SQL_SCOPE = "opentelemetry.instrumentation.sqlalchemy"
_instrumented_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def opt_in_to_stable_http_semconv() -> None:
    """Ask for the stable HTTP names; it must happen before a contrib instrumentation loads."""
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")


def _response_propagator():
    from opentelemetry import trace
    from opentelemetry.instrumentation.propagators import ResponsePropagator, default_setter

    class TraceResponse(ResponsePropagator):
        """`traceresponse` (and its CORS exposure) for clients, as our instrumentation sends it."""

        def inject(self, carrier, context=None, setter=default_setter) -> None:
            span_context = trace.get_current_span(context).get_span_context()
            if span_context.is_valid:
                setter.set(carrier, "traceresponse", traceresponse(span_context))
                setter.set(carrier, "access-control-expose-headers", "traceresponse")

    return TraceResponse()


class _SkipPaths:
    """WSGI middleware: operations paths go to the plain app, with instrumentation suppressed."""

    def __init__(self, instrumented, plain, skip: SkipPaths):
        self.instrumented, self.plain, self.skip = instrumented, plain, skip

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "") in self.skip:
            return call_uninstrumented(self.plain, environ, start_response)
        return self.instrumented(environ, start_response)


def _url_pattern(path: str) -> str:
    """A regex for the full URL of `path` and anything below it (the instrumentation's format)."""
    return rf"^[a-z]+://[^/]+{re.escape(path.rstrip('/'))}(/[^?]*)?(\?.*)?$"


def instrument_app(
    app: Flask,
    tracer_provider: TracerProvider,
    meter_provider: MeterProvider,
    skip_paths: tuple[str, ...] = (),
) -> None:
    """Trace and measure every request of `app` with the contrib Flask instrumentation."""
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.instrumentation.propagators import set_global_response_propagator

    if getattr(app, "_is_instrumented_by_opentelemetry", False):
        return
    set_global_response_propagator(_response_propagator())
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
    app.wsgi_app = _SkipPaths(app.wsgi_app, plain, SkipPaths(skip_paths))


def instrument_engine(engine: Engine, tracer_provider: TracerProvider) -> None:
    """Add the contrib instrumentation's span-making listeners to `engine`, once.

    Only the engine given: `SQLAlchemyInstrumentor().instrument()` would also patch
    `create_engine` for the whole process.
    """
    from opentelemetry.instrumentation.sqlalchemy import __version__
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.semconv.metrics import MetricInstruments

    if engine in _instrumented_engines:
        return
    no_pool_gauge = (
        NoOpMeterProvider()
        .get_meter(_SQL_SCOPE)
        .create_up_down_counter(MetricInstruments.DB_CLIENT_CONNECTIONS_USAGE)
    )
    EngineTracer(
        tracer_provider.get_tracer(_SQL_SCOPE, __version__),
        engine,
        no_pool_gauge,
        enable_commenter=False,
    )
    _instrumented_engines.add(engine)
