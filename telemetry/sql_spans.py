"""A CLIENT span for every SQL statement one SQLAlchemy engine sends, for little CPU.

Usage (`init_telemetry` does this for you)::

    from telemetry.sql_spans import instrument_engine
    instrument_engine(engine, tracer_provider)

The spans are those of opentelemetry-instrumentation-sqlalchemy without sqlcommenter (held to
it by `tests/test_instrumentation_parity.py`): named `<first SQL word> <database>`, with
`db.system`, `db.name`, `db.user`, `db.statement`, `db.operation` and the server's
`server.address`/`server.port` (`net.transport` too, when PostgreSQL is reached without a host in
the URL), a child of the current span, ERROR with the driver's message when a statement fails.
Only the engine given is instrumented; a context with instrumentation suppressed (the operations
paths, the span exporter) makes no spans.

Why it is cheaper: it wraps the dialect's `do_execute`, `do_executemany` and
`do_execute_no_params` (called exactly where the `before/after_cursor_execute` events fire)
instead of listening to engine events, because any engine event listener sends every
execution through SQLAlchemy's slower dispatching path. Attributes are built once per engine and
per statement text (statements repeat: SQLAlchemy caches their compilation), and no span object
is made at all when the sampler is sure to drop it (a parent that is not sampled under the
default `parentbased_*` samplers, or `always_off`).
"""

from __future__ import annotations

import re
import weakref

from opentelemetry import context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased
from opentelemetry.trace import SpanKind, Status, StatusCode, get_current_span
from sqlalchemy.engine import Engine

from .sdk_shortcuts import FastSpans

SCOPE = "telemetry.sqlalchemy"
_STATEMENT_CACHE_LIMIT = 1024
_LEADING_COMMENT = re.compile(r"^/\*.*?\*/")
_instrumented: weakref.WeakSet[Engine] = weakref.WeakSet()


def _vendor(engine: Engine) -> str:
    """The `db.system` value contrib derives from the engine name."""
    name = engine.name or ""
    if "sqlite" in name:
        return "sqlite"
    if "postgres" in name or name == "psycopg2":
        return "postgresql"
    return name or "db"


def _drop_decision(tracer_provider: TracerProvider):
    """(drop every span, drop children of unsampled local parents) for the SDK's own samplers.

    Reads ParentBased's delegate (pinned SDK 1.45); any other sampler gets every span offered.
    """
    sampler = tracer_provider.sampler
    if sampler is ALWAYS_OFF:
        return True, False
    if isinstance(sampler, ParentBased):
        return False, getattr(sampler, "_local_parent_not_sampled", None) is ALWAYS_OFF
    return False, False


class _EngineSpans:
    """The spans of one engine: attributes it knows once, statements it has seen."""

    def __init__(self, engine: Engine, tracer_provider: TracerProvider) -> None:
        self._tracer = tracer_provider.get_tracer(SCOPE)
        self._spans = FastSpans(tracer_provider)
        self._vendor = _vendor(engine)
        self._drop_all, self._drop_unsampled_children = _drop_decision(tracer_provider)
        url = engine.url
        self._connection_attributes: dict | None = None
        self._database = url.database
        if url.host:  # everything comes from the URL, as contrib does
            attributes = {"server.address": url.host}
            if url.port:
                attributes["server.port"] = int(url.port)
            if url.database:
                attributes["db.name"] = url.database
            if url.username:
                attributes["db.user"] = url.username
            self._connection_attributes = attributes
        elif self._vendor != "postgresql":  # SQLite and others: the database named in the URL
            self._connection_attributes = {"db.name": url.database} if url.database else {}
        # (name, attributes) per statement text
        self._statements: dict[str, tuple[str, dict]] = {}

    def _from_connection(self, cursor) -> dict:
        """PostgreSQL without a host in the URL: ask the live connection, once."""
        info = getattr(getattr(cursor, "connection", None), "info", None)
        attributes: dict = {}
        if info is None:
            return attributes
        self._database = info.dbname
        if info.dbname:
            attributes["db.name"] = info.dbname
        if info.host and info.host.startswith("/"):
            attributes["net.transport"] = "other"
            if info.port:
                attributes["server.address"] = f"{info.host}/.s.PGSQL.{info.port}"
        else:
            attributes["net.transport"] = "ip_tcp"
            if info.host:
                attributes["server.address"] = info.host
            if info.port:
                attributes["server.port"] = int(info.port)
        self._connection_attributes = attributes
        return attributes

    def _describe(self, statement: str, cursor) -> tuple[str, dict]:
        """The span name and attributes of `statement`, built once per statement text."""
        found = self._statements.get(statement)
        if found is not None:
            return found
        base = self._connection_attributes
        if base is None:
            base = self._from_connection(cursor)
        parts = []
        if isinstance(statement, str):
            tokens = _LEADING_COMMENT.sub("", statement).split()
            if tokens:
                parts.append(tokens[0])
        if self._database:
            parts.append(self._database)
        name = " ".join(parts) if parts else self._vendor
        attributes = {
            **base,
            "db.statement": statement,
            "db.system": self._vendor,
            "db.operation": name,
        }
        if len(self._statements) >= _STATEMENT_CACHE_LIMIT:
            self._statements.clear()
        self._statements[statement] = (name, attributes)
        return name, attributes

    def start(self, cursor, statement: str):
        """A started span for `statement`, or None when no span should be made."""
        if self._drop_all or context.get_value(_SUPPRESS_INSTRUMENTATION_KEY):
            return None
        if self._drop_unsampled_children:
            parent = get_current_span().get_span_context()
            if parent.is_valid and not parent.is_remote and not parent.trace_flags.sampled:
                return None
        name, attributes = self._describe(statement, cursor)
        return self._spans.start(
            self._tracer, name, context=None, kind=SpanKind.CLIENT, attributes=attributes
        )

    def wrap(self, execute):
        """`execute(cursor, statement, ...)` inside a span of its own."""
        start = self.start

        def traced(cursor, statement, *args, **kwargs):
            span = start(cursor, statement)
            if span is None:
                return execute(cursor, statement, *args, **kwargs)
            try:
                return execute(cursor, statement, *args, **kwargs)
            except Exception as exc:
                if span.is_recording():
                    span.set_status(Status(StatusCode.ERROR, str(exc)))
                raise
            finally:
                span.end()

        return traced


def instrument_engine(engine: Engine, tracer_provider: TracerProvider) -> None:
    """Trace every statement `engine` sends; a second call for the same engine is a no-op."""
    if engine in _instrumented:
        return
    spans = _EngineSpans(engine, tracer_provider)
    dialect = engine.dialect
    for method in ("do_execute", "do_executemany", "do_execute_no_params"):
        setattr(dialect, method, spans.wrap(getattr(dialect, method)))
    dialect.initialize = _untraced(dialect.initialize)
    _instrumented.add(engine)


def _untraced(initialize):
    """The dialect's first-connect queries (server version, schema, settings) make no spans.

    SQLAlchemy sends them without engine events, so contrib never sees them; they land in
    whichever request connects first (the app creates no tables at start-up any more).
    """

    def quiet(connection):
        token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            return initialize(connection)
        finally:
            context.detach(token)

    return quiet
