"""Health endpoints: /health/live for "the process serves", /health for "and its dependencies work".

Every check runs on a small thread pool with one deadline, so the answer comes within 2 s even when
a dependency hangs; a check that misses the deadline is `down`. A result is reused for up to
REUSE_S when /health is polled faster, and the database check has a pool of its own (one
connection, at most two), so polling opens no connection per call. Error text never carries
credentials from a URL.

The database check is also the schema check: the database is `up` only when it answers and its
schema is at the migrations' head (blog_api.schema). Until the app has seen that, API requests
answer 503 with Retry-After instead of reaching for tables that may not exist; an instance whose
database is migrated while it runs becomes ready by itself, within about a second.

The check asks the database itself even while the app's breaker (blog_api.breaker) has API
requests fail fast, so readiness tells the truth; a check that reaches the database closes it.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import redis
from apiflask import APIBlueprint
from flask import current_app, request
from sqlalchemy import create_engine
from sqlalchemy.exc import ProgrammingError

from telemetry import exporter_status

from . import deadline, schema
from .errors import (
    RETRY_AFTER_SECONDS,
    database_unavailable_response,
    driver_message,
    error_response,
)
from .extensions import db

log = logging.getLogger(__name__)

bp = APIBlueprint("health", __name__, tag="Health")

CHECK_DEADLINE_S = 1.5  # leaves headroom inside the 2 s promise
REUSE_S = 1.0  # a result this young answers a poll without asking the dependency again
REDIS_TIMEOUT_S = 1.0
# PostgreSQL's codes for a table or a column that is not there: a schema behind the code.
_UNDEFINED_TABLE_OR_COLUMN = frozenset({"42P01", "42703"})

_pool_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    """One small pool per process (a forked child makes its own: threads do not survive fork)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=4, thread_name_prefix="health"))
        return _pool[1]


class SchemaNotReady(Exception):
    """The database answers, but its schema is not at the migrations' head."""


def _timed(check: Callable[[], None], secrets: tuple[str, ...]) -> dict:
    started = time.perf_counter()
    try:
        check()
    except SchemaNotReady as exc:
        return {"status": "down", "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "down"
        return {"status": "down", "error": _clean_error(exc, secrets)}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _clean_error(exc: Exception, secrets: tuple[str, ...]) -> str:
    return f"{exc.__class__.__name__}: {driver_message(exc, secrets)}"


def _check_engine(database_url: str, engine_options: dict):
    """A pool of one connection (two at most) with the app's connect timeout and pre-ping."""
    shared = ("connect_args", "pool_pre_ping", "pool_timeout")
    options = {k: v for k, v in engine_options.items() if k in shared}
    if database_url.startswith("postgresql"):
        connect_args = {
            **options.get("connect_args", {}),
            # Named in pg_stat_activity, apart from the app's own connections.
            "application_name": "blog-api health",
            # The driver gives up when the check does: no thread left waiting on a frozen server.
            "connection_factory": deadline.connection_class(CHECK_DEADLINE_S),
        }
        options["connect_args"] = connect_args
    return create_engine(database_url, pool_size=1, max_overflow=1, **options)


class _Checks:
    """An app's checks, built once: a pool of its own for the database, one Redis client.

    The database check does not borrow from the app's pool: a busy instance whose pool is in use
    is not a database outage, and must not be taken out of a load balancer for it.
    """

    def __init__(
        self,
        database_url: str,
        engine_options: dict,
        redis_url: str | None,
        heads: tuple[str, ...],
    ) -> None:
        self.engine = _check_engine(database_url, engine_options)
        self.breaker = None  # the app's CircuitBreaker, once the app has one (PostgreSQL)
        self.database_secrets = (self.engine.url.password or "",)
        self.heads = heads
        self.redis = None
        if redis_url:
            self.redis = redis.Redis.from_url(
                redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
            )
            self.redis_secrets = (
                self.redis.connection_pool.connection_kwargs.get("password") or "",
            )
        # What the last answer of the database said of the schema: None while it never answered.
        self.schema_problem: str | None = None
        self.schema_ready = False
        self._lock = threading.Lock()
        self._running: dict[str, Future] = {}
        self._results: dict[str, tuple[float, dict]] = {}

    def database(self) -> dict:
        def ping() -> None:
            with self.engine.connect() as connection:
                problem = schema.problem(connection, self.heads)
            if self.breaker is not None:
                self.breaker.success()  # the database answers: API requests may use it again
            self._schema_seen(problem)
            if problem is not None:
                raise SchemaNotReady(problem)

        return _timed(ping, self.database_secrets)

    def _schema_seen(self, problem: str | None) -> None:
        """Note what the database said of its schema; log only the changes."""
        was_ready, self.schema_ready = self.schema_ready, problem is None
        if problem is not None and problem != self.schema_problem:
            log.warning("database not ready, API requests answer 503: %s", problem)
        elif problem is None and not was_ready and self.schema_problem is not None:
            log.info("database schema at the migrations' head (%s): ready", ", ".join(self.heads))
        self.schema_problem = problem

    def schema_is_gone(self) -> None:
        """A request found a table or column missing: ask the database again before trusting it."""
        self.schema_ready = False
        with self._lock:
            self._results.pop("database", None)

    def redis_ping(self) -> dict:
        return _timed(self.redis.ping, self.redis_secrets)

    def run(self, names: tuple[str, ...] = ("database", "redis")) -> dict[str, dict]:
        """Run the checks named at once; whatever is not back by the deadline is down.

        A result younger than REUSE_S is given again without asking. A check still running
        from an earlier call is waited for, not started again, so a hung dependency holds one
        thread per check however often /health is polled.
        """
        checks = {"database": self.database}
        if self.redis is not None:
            checks["redis"] = self.redis_ping
        results, futures = {}, {}
        with self._lock:
            now = time.monotonic()
            for name in names:
                if name not in checks:
                    continue
                fresh = self._results.get(name)
                if fresh is not None and now - fresh[0] < REUSE_S:
                    results[name] = fresh[1]
                    continue
                future = self._running.get(name)
                if future is None or future.done():
                    # In the request's context (copied), as if it ran in the request itself.
                    future = _executor().submit(contextvars.copy_context().run, checks[name])
                    self._running[name] = future
                futures[name] = future
        deadline = time.monotonic() + CHECK_DEADLINE_S
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=max(deadline - time.monotonic(), 0))
            except FutureTimeout:
                results[name] = {"status": "down", "error": f"no answer within {CHECK_DEADLINE_S}s"}
        with self._lock:
            answered = time.monotonic()
            for name in futures:
                self._results[name] = (answered, results[name])
        return results


def init_app(app) -> None:
    """Register the endpoints, build the app's checks, and hold API requests until ready."""
    settings = app.extensions["blog_api.settings"]
    app.extensions["blog_api.health_checks"] = _Checks(
        settings.database_url,
        app.config["SQLALCHEMY_ENGINE_OPTIONS"],
        settings.redis_url,
        app.extensions["blog_api.schema_heads"],
    )
    app.register_blueprint(bp)
    app.before_request(_require_ready_database)
    app.register_error_handler(ProgrammingError, _schema_behind_the_code)


def _not_ready(schema_problem: bool):
    if not schema_problem:
        return database_unavailable_response()
    return error_response(
        503,
        "The database schema is not ready (not migrated); try again shortly.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )


def _require_ready_database():
    """Answer an API request 503 until the database has been seen at the migrations' head.

    Once it has, this costs one attribute read a request; before, one check a second at most
    (the /health check, shared), so a database migrated while the app runs is noticed by itself.
    """
    if request.url_rule is None or not request.path.startswith("/api/v"):
        return None  # 404/405, the docs and the OpenAPI document need no database
    checks = current_app.extensions["blog_api.health_checks"]
    breaker = checks.breaker
    if breaker is not None and not breaker.allow():
        return database_unavailable_response()  # known out: no driver call, no wait
    if checks.schema_ready:
        return None
    checks.run(("database",))
    if checks.schema_ready:
        return None
    return _not_ready(checks.schema_problem is not None)


def _schema_behind_the_code(exc: ProgrammingError):
    """A table or column missing (PostgreSQL) is a database not migrated: 503, not 500.

    Unless a fresh check finds the schema at the head after all: then the query is wrong, a bug,
    and the 500 it deserves.
    """
    if getattr(exc.orig, "pgcode", None) not in _UNDEFINED_TABLE_OR_COLUMN:
        raise exc
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the transaction is aborted already; nothing more to undo
        log.debug("rollback after a schema error failed too", exc_info=True)
    checks = current_app.extensions["blog_api.health_checks"]
    checks.schema_is_gone()
    checks.run(("database",))
    if checks.schema_ready:
        raise exc
    return _not_ready(schema_problem=True)


@bp.get("/health/live")
def live() -> dict:
    """200 while the process can serve; checks nothing else."""
    return {"status": "healthy"}


@bp.get("/health")
@bp.get("/health/ready")
@bp.doc(
    responses={
        200: "healthy or degraded (Redis or a telemetry exporter down)",
        503: "The database is down or not at the migrations' head",
    }
)
def health():
    """Every dependency's state: `unhealthy` (503) if the database is down or not migrated,
    `degraded` (200) if Redis or a telemetry exporter is (no route needs them to answer: the
    rate limits count in memory meanwhile), else `healthy`."""
    results = current_app.extensions["blog_api.health_checks"].run()
    if "redis" not in results:
        results["redis"] = {"status": "disabled"}
    results.update(exporter_status(current_app))

    if results["database"]["status"] == "down":
        status, code = "unhealthy", 503
    elif any(
        results[name]["status"] == "down"
        for name in ("redis", "metrics_exporter", "trace_exporter")
    ):
        status, code = "degraded", 200
    else:
        status, code = "healthy", 200
    body = {
        "status": status,
        "checks": results,
        "version": current_app.config["APP_VERSION"],
        "uptime_s": round(time.monotonic() - current_app.config["STARTED_AT"], 1),
    }
    return body, code
