"""`/metrics` on the app's own port: the Prometheus text format of the process's registry.

Set METRICS_TOKEN to require `Authorization: Bearer <token>`; errors are raised as Werkzeug HTTP
exceptions so the app's own error handlers shape them.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from flask import Flask, Response, request
from prometheus_client import Metric, generate_latest
from werkzeug.exceptions import Unauthorized

from .providers import Providers

# The exposition format Prometheus negotiates by default; the version is part of the contract.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_PATH = "/metrics"


class _Families:
    """What `generate_latest` needs: something whose collect() yields metric families."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def add_metrics_route(
    app: Flask,
    providers: Providers,
    token: str | None,
    collect: Callable[[], list[Metric]] | None = None,
) -> None:
    """Serve `/metrics` (from `collect`, by default this process's registry), behind `token`."""
    expected = f"Bearer {token}".encode() if token else None
    collect = collect or providers.collect

    def metrics() -> Response:
        if expected is not None:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise Unauthorized(
                    "Scraping /metrics needs Authorization: Bearer <METRICS_TOKEN>.",
                    www_authenticate='Bearer realm="metrics"',
                )
        body = generate_latest(_Families(collect()))
        providers.scrape_stats.record()
        return Response(body, content_type=CONTENT_TYPE)

    app.add_url_rule(METRICS_PATH, endpoint="telemetry_metrics", view_func=metrics)
