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
# Bound how long a worker lives, so a slow leak cannot grow forever (0: never recycle).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
