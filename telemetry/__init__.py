"""OpenTelemetry for any Flask app: metrics at /metrics, traces over OTLP, correlated logs.

This package knows nothing of the app it instruments.
"""

from .logs import configure_logging

__all__ = ["configure_logging"]
