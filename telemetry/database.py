"""Trace every SQL statement of one SQLAlchemy engine as a CLIENT span (db.system, db.statement).

Only the engine given is instrumented: `SQLAlchemyInstrumentor().instrument()` would also patch
`create_engine` for the whole process and refuses a second engine. sqlcommenter stays off: its
per-statement comments defeat statement caches.
"""

from __future__ import annotations

import weakref

from opentelemetry.instrumentation.sqlalchemy import __version__ as _instrumentation_version
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.semconv.metrics import MetricInstruments
from sqlalchemy.engine import Engine

_SCOPE = "opentelemetry.instrumentation.sqlalchemy"
_instrumented: weakref.WeakSet[Engine] = weakref.WeakSet()


def instrument_engine(
    engine: Engine, tracer_provider: TracerProvider, meter_provider: MeterProvider
) -> None:
    """Add span-making listeners to `engine`, once."""
    if engine in _instrumented:
        return
    tracer = tracer_provider.get_tracer(_SCOPE, _instrumentation_version)
    connections_usage = meter_provider.get_meter(
        _SCOPE, _instrumentation_version
    ).create_up_down_counter(
        name=MetricInstruments.DB_CLIENT_CONNECTIONS_USAGE,
        unit="connections",
        description="The number of connections that are currently in the state named by `state`.",
    )
    EngineTracer(tracer, engine, connections_usage, enable_commenter=False)
    _instrumented.add(engine)
