"""The anchors bench/overhead.py measures ours against: blog-api with another library instead.

Each factory wraps `blog_api.create_app()` the way a user of that library would set it up; run
with telemetry off (`OTEL_SDK_DISABLED=true`), from the repository root, in the venv made by
`make bench` (the `bench` extra, from uv.lock):

    gunicorn -c gunicorn.conf.py --pythonpath bench "anchor_apps:prometheus_app()"
    ddtrace-run gunicorn -c gunicorn.conf.py --pythonpath bench "anchor_apps:ddtrace_app()"

Nothing in blog_api/ or telemetry/ knows about them.
"""

from __future__ import annotations

import os

from blog_api import create_app


def prometheus_app():
    """blog-api with prometheus_flask_exporter's default metrics at /metrics, by URL rule."""
    from prometheus_flask_exporter import PrometheusMetrics
    from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

    app = create_app()
    # As a careful user would: label by URL rule (the default, "path", makes a series per post
    # id) and leave /health out, as our telemetry does. Several gunicorn workers need its
    # multiprocess mode, which PROMETHEUS_MULTIPROC_DIR selects (overhead.py sets it then).
    multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    metrics = GunicornInternalPrometheusMetrics if multiprocess else PrometheusMetrics
    metrics(app, group_by="url_rule", excluded_paths=["^/health"])
    return app


def ddtrace_app():
    """blog-api traced by ddtrace (Flask patched by `ddtrace-run`), SQLAlchemy engine included."""
    import flask
    from ddtrace.contrib.sqlalchemy import trace_engine

    if not getattr(flask, "_datadog_patch", False):
        raise RuntimeError("start this app under ddtrace-run: Flask is not patched")
    app = create_app()
    # ddtrace's SQLAlchemy integration wraps sqlalchemy.create_engine, which Flask-SQLAlchemy
    # never calls (it builds engines with engine_from_config): attach it to the engine itself.
    with app.app_context():
        trace_engine(app.extensions["sqlalchemy"].engine)
    return app
