"""Health endpoints: /health/live for "the process serves", /health for "and its dependencies work".

Every check runs on a small thread pool with one deadline, so the answer comes within 2 s even when
a dependency hangs; a check that misses the deadline is `down`. Error text never carries
credentials from a URL.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import redis
from apiflask import APIBlueprint
from flask import current_app
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from telemetry import exporter_status
from telemetry.redact import redact_url_credentials

bp = APIBlueprint("health", __name__, tag="Health")

CHECK_DEADLINE_S = 1.5  # leaves headroom inside the 2 s promise
REDIS_TIMEOUT_S = 1.0

_pool_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def _executor() -> ThreadPoolExecutor:
    """One small pool per process (a forked child makes its own: threads do not survive fork)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=4, thread_name_prefix="health"))
        return _pool[1]


def _timed(check: Callable[[], None], secrets: tuple[str, ...]) -> dict:
    started = time.perf_counter()
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure of a dependency means "down"
        return {"status": "down", "error": _clean_error(exc, secrets)}
    return {"status": "up", "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


def _clean_error(exc: Exception, secrets: tuple[str, ...]) -> str:
    """The first line of the driver's message, with URL credentials and passwords removed."""
    orig = getattr(exc, "orig", None) or exc
    message = (str(orig).strip().splitlines() or [""])[0] or exc.__class__.__name__
    message = redact_url_credentials(message)
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return f"{exc.__class__.__name__}: {message}"


class _Checks:
    """An app's checks, built once: a pool of its own for the database, one Redis client.

    The database check does not borrow from the app's pool: a busy instance whose pool is in use
    is not a database outage, and must not be taken out of a load balancer for it.
    """

    def __init__(self, database_url: str, engine_options: dict, redis_url: str | None) -> None:
        options = {k: v for k, v in engine_options.items() if k == "connect_args"}
        self.engine = create_engine(database_url, poolclass=NullPool, **options)
        self.database_secrets = (self.engine.url.password or "",)
        self.redis = None
        if redis_url:
            self.redis = redis.Redis.from_url(
                redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
            )
            self.redis_secrets = (
                self.redis.connection_pool.connection_kwargs.get("password") or "",
            )
        self.running: dict[str, Future] = {}

    def database(self) -> dict:
        def ping() -> None:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        return _timed(ping, self.database_secrets)

    def redis_ping(self) -> dict:
        return _timed(self.redis.ping, self.redis_secrets)

    def run(self) -> dict[str, dict]:
        """Run every check at once; whatever is not back by the deadline is down.

        A check still running from an earlier call is waited for, not started again, so a hung
        dependency holds one thread per check however often /health is polled.
        """
        checks = {"database": self.database}
        if self.redis is not None:
            checks["redis"] = self.redis_ping
        futures = {}
        for name, check in checks.items():
            future = self.running.get(name)
            if future is None or future.done():
                # In the request's context (copied), as if it ran in the request itself.
                future = _executor().submit(contextvars.copy_context().run, check)
                self.running[name] = future
            futures[name] = future
        deadline = time.monotonic() + CHECK_DEADLINE_S
        results = {}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=max(deadline - time.monotonic(), 0))
            except FutureTimeout:
                results[name] = {"status": "down", "error": f"no answer within {CHECK_DEADLINE_S}s"}
        return results


def init_app(app) -> None:
    """Register the endpoints and build the app's checks."""
    settings = app.extensions["blog_api.settings"]
    app.extensions["blog_api.health_checks"] = _Checks(
        settings.database_url, app.config["SQLALCHEMY_ENGINE_OPTIONS"], settings.redis_url
    )
    app.register_blueprint(bp)


@bp.get("/health/live")
def live() -> dict:
    """200 while the process can serve; checks nothing else."""
    return {"status": "healthy"}


@bp.get("/health")
@bp.get("/health/ready")
@bp.doc(responses={200: "healthy or degraded", 503: "The database (or a configured Redis) is down"})
def health():
    """Every dependency's state: `unhealthy` (503) if the database or Redis is down,
    `degraded` (200) if only a telemetry exporter is, else `healthy`."""
    results = current_app.extensions["blog_api.health_checks"].run()
    if "redis" not in results:
        results["redis"] = {"status": "disabled"}
    results.update(exporter_status(current_app))

    if any(results[name]["status"] == "down" for name in ("database", "redis")):
        status, code = "unhealthy", 503
    elif any(results[name]["status"] == "down" for name in ("metrics_exporter", "trace_exporter")):
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
