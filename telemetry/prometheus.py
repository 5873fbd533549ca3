"""`/metrics` on the app's own port: the Prometheus text format of the process's registry.

Set METRICS_TOKEN to require `Authorization: Bearer <token>`; errors are raised as Werkzeug HTTP
exceptions so the app's own error handlers shape them.
"""

from __future__ import annotations

import hmac
import time

from flask import Flask, Response, request
from prometheus_client import generate_latest
from werkzeug.exceptions import Unauthorized

from .providers import Providers

# The exposition format Prometheus negotiates by default; the version is part of the contract.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_PATH = "/metrics"


def add_metrics_route(app: Flask, providers: Providers, token: str | None) -> None:
    """Serve `/metrics` from `providers.registry`, guarded by `token` when one is set."""
    expected = f"Bearer {token}".encode() if token else None

    def metrics() -> Response:
        if expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise Unauthorized(
                    "Scraping /metrics needs Authorization: Bearer <METRICS_TOKEN>.",
                    www_authenticate='Bearer realm="metrics"',
                )
        body = generate_latest(providers.registry)
        stats = providers.scrape_stats
        stats.scrapes += 1
        stats.last_scrape = time.time()
        return Response(body, content_type=CONTENT_TYPE)

    app.add_url_rule(METRICS_PATH, endpoint="telemetry_metrics", view_func=metrics)
