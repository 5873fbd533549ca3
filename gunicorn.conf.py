"""gunicorn settings from the environment: `gunicorn -c gunicorn.conf.py "blog_api:create_app()"`.

HOST (127.0.0.1) and PORT (5000) as everywhere else; a PaaS sets PORT, and its Procfile line sets
HOST=0.0.0.0. WEB_CONCURRENCY workers (1). The app is never preloaded: OpenTelemetry's exporter
threads do not survive fork(), so each worker builds its own providers after the fork.
"""

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


# With more than one worker, each scrape must report every worker's counts, not one worker's
# share: the hooks below share metric snapshots through a directory (see telemetry.multiprocess).
def on_starting(server):
    from telemetry import multiprocess

    server.metrics_dir = multiprocess.prepare(server.cfg.workers)


def worker_exit(server, worker):
    from telemetry import multiprocess

    multiprocess.worker_exiting(worker.pid)


def child_exit(server, worker):
    from telemetry import multiprocess

    multiprocess.fold_exited_worker(worker.pid)


def on_exit(server):
    from telemetry import multiprocess

    multiprocess.cleanup(getattr(server, "metrics_dir", None))


# gunicorn 24+ opens a control socket at one per-user path, which a second gunicorn on the same
# machine (another app, a test) takes over. Off unless a path is given.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True
