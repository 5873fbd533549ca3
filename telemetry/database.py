"""Trace every SQL statement of one SQLAlchemy engine as a CLIENT span (db.system, db.statement).

Only the engine given is instrumented: `SQLAlchemyInstrumentor().instrument()` would also patch
`create_engine` for the whole process and refuses a second engine. sqlcommenter stays off: its
per-statement comments defeat statement caches. The instrumentation's pool-usage gauge
(`db.client.connections.usage`, four updates a request on pool checkout and checkin) is left out:
it cost 3% of a worker's CPU in bench/overhead.py for a number no dashboard reads.
"""

from __future__ import annotations

import weakref

from opentelemetry.instrumentation.sqlalchemy import __version__ as _instrumentation_version
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.semconv.metrics import MetricInstruments
from sqlalchemy.engine import Engine

_SCOPE = "opentelemetry.instrumentation.sqlalchemy"
_instrumented: weakref.WeakSet[Engine] = weakref.WeakSet()


def instrument_engine(engine: Engine, tracer_provider: TracerProvider) -> None:
    """Add span-making listeners to `engine`, once."""
    if engine in _instrumented:
        return
    tracer = tracer_provider.get_tracer(_SCOPE, _instrumentation_version)
    no_pool_gauge = (
        NoOpMeterProvider()
        .get_meter(_SCOPE)
        .create_up_down_counter(MetricInstruments.DB_CLIENT_CONNECTIONS_USAGE)
    )
    EngineTracer(tracer, engine, no_pool_gauge, enable_commenter=False)
    _instrumented.add(engine)
