"""gunicorn settings from the environment: `gunicorn -c gunicorn.conf.py "blog_api:create_app()"`.

HOST (127.0.0.1) and PORT (5000) as everywhere else; a PaaS sets PORT, and its Procfile line sets
HOST=0.0.0.0. WEB_CONCURRENCY workers (1). The app is never preloaded: OpenTelemetry's exporter
threads do not survive fork(), so each worker builds its own providers after the fork. The master
only imports the app's code, so that a worker boots fast; a worker that exits sends its last spans
within about a second, whatever the collector does.
"""

import gc
import importlib
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
preload_app = False
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 10
keepalive = 5
# gunicorn's own lines (booting, worker exits, timeouts) in the app's format: one line a record on
# stderr, JSON unless LOG_FORMAT=text. The root logger is left to the app (create_app sets it up).
_log_format = os.environ.get("LOG_FORMAT", "json").lower()
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": os.environ.get("LOG_LEVEL", "INFO").upper(), "handlers": []},
    "formatters": {
        "line": {
            "()": f"telemetry.logs.{'TextFormatter' if _log_format == 'text' else 'JsonFormatter'}"
        }
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "stream": "ext://sys.stderr",
        }
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        # No access log, as gunicorn's default: every request is in the metrics and the traces.
        "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
    },
}

# Bound how long a worker lives, so a slow leak cannot grow forever (0: never recycle).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10


def on_starting(server):
    from telemetry import multiprocess

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
