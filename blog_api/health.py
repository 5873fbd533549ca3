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
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

import redis
from apiflask import APIBlueprint
from flask import current_app
from sqlalchemy import text

from telemetry import exporter_status
from telemetry.redact import redact_url_credentials

from .extensions import db

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


def _database_check() -> Callable[[], dict]:
    engine = db.engine
    secrets = (engine.url.password or "",)

    def check() -> dict:
        def ping() -> None:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))

        return _timed(ping, secrets)

    return check


def _redis_check(url: str) -> Callable[[], dict]:
    client = redis.Redis.from_url(
        url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )
    secrets = (client.connection_pool.connection_kwargs.get("password") or "",)
    return lambda: _timed(client.ping, secrets)


def _run_checks(checks: dict[str, Callable[[], dict]]) -> dict[str, dict]:
    """Run every check at once; whatever is not back by the deadline is down."""
    # Each check runs in the request's context (copied): no stray root spans from its SQL.
    futures = {
        name: _executor().submit(contextvars.copy_context().run, check)
        for name, check in checks.items()
    }
    deadline = time.monotonic() + CHECK_DEADLINE_S
    results = {}
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(deadline - time.monotonic(), 0))
        except FutureTimeout:
            results[name] = {"status": "down", "error": f"no answer within {CHECK_DEADLINE_S}s"}
    return results


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
    settings = current_app.extensions["blog_api.settings"]
    checks = {"database": _database_check()}
    if settings.redis_url:
        checks["redis"] = current_app.extensions.setdefault(
            "blog_api.redis_check", _redis_check(settings.redis_url)
        )
    results = _run_checks(checks)
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
