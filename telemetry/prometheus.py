"""`/metrics` on the app's own port: the Prometheus text format of the process's registry.

Set METRICS_TOKEN to require `Authorization: Bearer <token>`; errors are raised as Werkzeug HTTP
exceptions so the app's own error handlers shape them.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

from flask import Flask, Response, request
from prometheus_client import Metric, generate_latest
from prometheus_client.openmetrics import exposition as openmetrics
from werkzeug.exceptions import Unauthorized

from .exemplars import attach
from .providers import Providers

# The classic text format; the version is part of the contract. A scraper that asks for
# OpenMetrics (Accept: application/openmetrics-text) gets it, with exemplars (see exemplars.py).
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
        families = collect()
        providers.scrape_stats.record()
        if "application/openmetrics-text" in request.headers.get("Accept", ""):
            families = attach(families, providers.reader.exemplars)
            body = openmetrics.generate_latest(_Families(families))
            return Response(body, content_type=openmetrics.CONTENT_TYPE_LATEST)
        return Response(generate_latest(_Families(families)), content_type=CONTENT_TYPE)

    app.add_url_rule(METRICS_PATH, endpoint="telemetry_metrics", view_func=metrics)
