"""Connection-pool metrics of an SQLAlchemy engine, read when /metrics is collected.

Names are OpenTelemetry's database semantic conventions, each with `db.client.connection.pool.name`
(the database's name, never its host or credentials):

- `db.client.connection.count` (`db_client_connections` in Prometheus, which refuses a gauge's
  `_count` suffix; telemetry.providers), by `db.client.connection.state`:
  `idle` (in the pool) or `used` (checked out);
- `db.client.connection.max` (`db_client_connection_max`): pool size + max overflow;
- `db.client.connection.pending_requests` (`db_client_connection_pending_requests`): threads
  waiting for a connection.

Nothing is counted on checkout: the callbacks read the pool's own numbers (`checkedin()`,
`checkedout()`, `size()`) at collection time, so a request pays nothing (the pool gauge an
earlier version updated on every checkout cost 3% of a worker's CPU). Under several workers each
worker's pool is its own and the merged scrape sums them: the service's connections.

Pending requests are the threads waiting on the pool's queue; SQLAlchemy does not publish that
number, so it is read from the queue's condition variable (0 where that cannot be read, and
always 0 for a single-threaded worker). Pools without a queue (SQLite in memory) are skipped.
"""

from __future__ import annotations

import threading
import weakref

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from sqlalchemy.engine import Engine

POOL_NAME = "db.client.connection.pool.name"
STATE = "db.client.connection.state"


def pool_name(engine: Engine) -> str:
    """The database's name: `blog` for postgresql://u:p@host/blog, the file's name for SQLite."""
    database = engine.url.database or engine.url.get_backend_name()
    return database.rstrip("/").rsplit("/", 1)[-1] or database


class PoolMetrics:
    """The pools of this process, by name: the newest engine of a name replaces the older one."""

    def __init__(self, meter: Meter) -> None:
        self._engines: dict[str, weakref.ref[Engine]] = {}
        self._lock = threading.Lock()
        meter.create_observable_up_down_counter(
            "db.client.connection.count",
            callbacks=[self._count],
            unit="{connection}",
            description="Connections in the pool, idle or used.",
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.max",
            callbacks=[self._max],
            unit="{connection}",
            description="The most connections the pool may open.",
        )
        meter.create_observable_up_down_counter(
            "db.client.connection.pending_requests",
            callbacks=[self._pending],
            unit="{request}",
            description="Requests waiting for a connection from the pool.",
        )

    def observe(self, engine: Engine) -> None:
        """Report `engine`'s pool from now on (its pool is looked up at every collection)."""
        with self._lock:
            self._engines[pool_name(engine)] = weakref.ref(engine)

    def _pools(self):
        with self._lock:
            engines = [(name, ref()) for name, ref in self._engines.items()]
        for name, engine in engines:
            pool = engine.pool if engine is not None else None
            if hasattr(pool, "checkedout") and hasattr(pool, "size"):
                yield name, pool

    def _count(self, _options: CallbackOptions) -> list[Observation]:
        observations = []
        for name, pool in self._pools():
            observations.append(Observation(pool.checkedin(), {POOL_NAME: name, STATE: "idle"}))
            observations.append(Observation(pool.checkedout(), {POOL_NAME: name, STATE: "used"}))
        return observations

    def _max(self, _options: CallbackOptions) -> list[Observation]:
        return [
            Observation(pool.size() + overflow, {POOL_NAME: name})
            for name, pool in self._pools()
            if (overflow := getattr(pool, "_max_overflow", 0)) >= 0
        ]

    def _pending(self, _options: CallbackOptions) -> list[Observation]:
        return [Observation(_waiting(pool), {POOL_NAME: name}) for name, pool in self._pools()]


def _waiting(pool) -> int:
    """Threads blocked in the pool's `get()`: the waiters of its queue's `not_empty` condition."""
    condition = getattr(getattr(pool, "_pool", None), "not_empty", None)
    return len(getattr(condition, "_waiters", ()))
