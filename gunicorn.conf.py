"""gunicorn settings from the environment: `gunicorn -c gunicorn.conf.py "blog_api:create_app()"`.

HOST (127.0.0.1) and PORT (5000) as everywhere else; a PaaS sets PORT, and its Procfile line sets
HOST=0.0.0.0. WEB_CONCURRENCY workers (default: one a CPU this process may run on), each with
GUNICORN_THREADS threads (4): gthread workers, so /health/live and /health answer while up to
three requests a worker wait on a frozen database (a sync worker could not). Chosen by
bench/threads.py (README, Benchmarks: the worker-model table): a worker a CPU doubles what one
worker serves here, and 2-4 threads serve as much as 8 at that count with less CPU a request,
where one worker with 8 threads serves 0.6 of one with sync. Sync workers still serve more on
PostgreSQL (about 1.3x at two workers), without that promise: GUNICORN_THREADS=1 runs them.
The app is never preloaded: OpenTelemetry's exporter
threads do not survive fork(), so each worker builds its own providers after the fork. The master
only imports the app's code, so that a worker boots fast; a worker that exits sends its last spans
within about a second, whatever the collector does.
"""

import gc
import importlib
import os

from blog_api.config import DEFAULT_THREADS


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask: a container's cpuset; a CPU quota is
    not seen, so set WEB_CONCURRENCY where one applies, as deploy/k8s does)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY") or _usable_cpus())
threads = int(os.environ.get("GUNICORN_THREADS") or DEFAULT_THREADS)
worker_class = "gthread" if threads > 1 else "sync"
preload_app = False
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
# Every line on stderr is one record in the app's format, JSON unless LOG_FORMAT=text: gunicorn's
# own (booting, worker exits, timeouts), the app's, and anything nobody caught. The root handler
# is named as telemetry.configure_logging names its own, so create_app replaces it in each worker
# instead of adding a second one.
_log_format = os.environ.get("LOG_FORMAT", "json").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {
        "level": os.environ.get("LOG_LEVEL", "INFO").upper(),
        "handlers": ["telemetry.stderr"],
    },
    "formatters": {
        "line": {
            "()": f"telemetry.logs.{'TextFormatter' if _log_format == 'text' else 'JsonFormatter'}"
        }
    },
    "handlers": {
        "telemetry.stderr": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["telemetry.stderr"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
        # Alembic announces its plugins at INFO when the master imports the app's code.
        "alembic.runtime.plugins": {"level": "WARNING"},
    },
}


def _quiet_logger_class():
    """gunicorn's logger without its access log.

    The app writes one line a request, with the request's trace id (telemetry.access_log, see
    ACCESS_LOG); gunicorn's would be a second line without it. And with a logging config,
    gunicorn builds every request's log atoms (all headers, all of environ) even when its access
    logger drops the line.
    """
    from gunicorn.glogging import Logger

    class QuietAccessLogger(Logger):
        def access(self, resp, req, environ, request_time):
            return

    return QuietAccessLogger


logger_class = _quiet_logger_class()


def post_fork(server, worker):
    """Log an app that fails to build in a worker as one record, traceback inside.

    gunicorn itself logs the exception and then prints its message as a raw line on stderr; this
    exits the worker first, with gunicorn's exit code, so the master stops as it would.
    """
    from gunicorn.errors import AppImportError

    load_wsgi = worker.load_wsgi

    def load_wsgi_or_exit():
        try:
            load_wsgi()
        except Exception as exc:  # noqa: BLE001 - any failure to build the app ends the worker
            worker.log.error(
                "the app could not be built in worker %s: %s", worker.pid, exc, exc_info=True
            )
            raise SystemExit(
                server.APP_LOAD_ERROR
                if isinstance(exc, AppImportError)
                else server.WORKER_BOOT_ERROR
            ) from None

    worker.load_wsgi = load_wsgi_or_exit


# Bound how long a worker lives, so a slow leak cannot grow forever (0: never recycle).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10


def on_starting(server):
    from telemetry import multiprocess
    from telemetry.logs import log_uncaught_exceptions

    log_uncaught_exceptions()

    # Each scrape must report every worker's counts, not one worker's share, and keep the counts
    # of workers that exited: the hooks below share metric snapshots through a directory
    # (telemetry.multiprocess), and count the workers' exits (telemetry.gunicorn_workers).
    server.metrics_dir = multiprocess.prepare()
    _import_app_code(server)


def _import_app_code(server):
    """Import the app's module (not the app) in the master, so a new worker only builds the app.

    Importing is most of a worker's boot (~1 s of ~1.4 s here); building the app, its database
    pool and OpenTelemetry's threads still happens in each worker after the fork. A recycled or
    crashed worker is then replaced in a fraction of the time. The price is preload's: new code on
    disk needs a restart (or USR2), not HUP. GUNICORN_IMPORT_APP=false turns it off.
    """
    uri = getattr(server.app, "app_uri", None)
    if not uri or os.environ.get("GUNICORN_IMPORT_APP", "true").lower() == "false":
        return
    try:
        importlib.import_module(uri.split(":", 1)[0])
    except Exception:  # noqa: BLE001 - each worker will import it again and report the error
        server.log.warning("could not import %s in the master", uri, exc_info=True)


def post_worker_init(worker):
    """The app is built: move what lives now out of the garbage collector's sight.

    Every full collection walks every tracked object, and most of them are the modules and the
    app, alive until exit; frozen, they are never walked again (callgrind: 5% fewer instructions
    a request with telemetry off, 1% with it on).
    """
    gc.collect()
    gc.freeze()


def worker_exit(server, worker):
    from telemetry import gunicorn_workers, providers

    try:
        # The last spans go now (a second at most, even with a dead collector), so that what was
        # dropped at exit is in the worker's last metrics snapshot.
        providers.shutdown_tracing()
    finally:
        gunicorn_workers.worker_exiting(worker)
        # The interpreter's teardown walks every object with the garbage collector (~0.25 s
        # here), and gunicorn replaces a worker only once it is gone: leave them to the exit.
        gc.freeze()


def child_exit(server, worker):
    from telemetry import gunicorn_workers

    gunicorn_workers.worker_exited(worker)


def on_exit(server):
    from telemetry import multiprocess

    multiprocess.cleanup(getattr(server, "metrics_dir", None))


# gunicorn 24+ opens a control socket at one per-user path, which a second gunicorn on the same
# machine (another app, a test) takes over. Off unless a path is given.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True
