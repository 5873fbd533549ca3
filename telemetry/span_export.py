"""Trace export that knows how it is going: spans exported, failed, dropped, the last error.

`TrackedSpanExporter` wraps the OTLP/HTTP exporter and can be pointed at another endpoint later
(tests build many apps in one process; the providers are built only once).
`TrackedBatchSpanProcessor` is the SDK's batch processor that also counts spans dropped because its
queue was full. The
numbers feed both `/health` and the `otel_sdk_*` metrics, so the two never disagree.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.environment_variables import OTEL_BSP_MAX_EXPORT_BATCH_SIZE
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from .redact import redact_url_credentials
from .timestamps import iso_utc

# An export still running after this long means the collector is not answering.
STUCK_EXPORT_SECONDS = 2.0
_EXPORTER_LOGGER = "opentelemetry.exporter.otlp"


@dataclass
class ExportStats:
    exported_spans: int = 0
    failed_spans: Counter = field(default_factory=Counter)  # error type -> spans
    failed_exports: int = 0
    dropped_spans: int = 0
    last_success: float | None = None
    last_failure: float | None = None
    last_error: str | None = None
    export_started: float | None = None


class _ErrorCapture(logging.Handler):
    """Keep the message the OTLP client logs while our export call runs on this thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.local = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(self.local, "active", False):
            self.local.message = record.getMessage()


class TrackedSpanExporter(SpanExporter):
    """Export spans over OTLP/HTTP (or nowhere, when no endpoint is set) and keep score."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inner: SpanExporter | None = None
        self.endpoint: str | None = None
        self.stats = ExportStats()
        self._capture = _ErrorCapture()
        logging.getLogger(_EXPORTER_LOGGER).addHandler(self._capture)

    def set_endpoint(self, endpoint: str | None) -> None:
        """Send future batches to `endpoint` (None: drop them); counts start again."""
        with self._lock:
            if endpoint == self.endpoint:
                return
            old, self._inner = (
                self._inner,
                (OTLPSpanExporter(endpoint=endpoint) if endpoint else None),
            )
            self.endpoint = endpoint
            self.stats = ExportStats()
        if old is not None:
            old.shutdown()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        inner, stats = self._inner, self.stats
        if inner is None:
            return SpanExportResult.SUCCESS
        stats.export_started = time.time()
        self._capture.local.active, self._capture.local.message = True, None
        try:
            result = inner.export(spans)
            error = None if result is SpanExportResult.SUCCESS else self._capture.local.message
        except Exception as exc:  # noqa: BLE001 - an exporter bug must not kill the worker
            result, error = SpanExportResult.FAILURE, f"{exc.__class__.__name__}: {exc}"
        finally:
            self._capture.local.active = False
            stats.export_started = None
        now = time.time()
        if result is SpanExportResult.SUCCESS:
            stats.exported_spans += len(spans)
            stats.last_success = now
        else:
            stats.failed_exports += 1
            stats.failed_spans[_error_type(error)] += len(spans)
            stats.last_failure = now
            stats.last_error = redact_url_credentials(error or "export failed")
        return result

    def shutdown(self) -> None:
        if self._inner is not None:
            self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def status(self) -> dict:
        """The trace exporter's entry in /health."""
        stats = self.stats
        if self.endpoint is None:
            return {"status": "disabled", "endpoint": None, "dropped_spans": stats.dropped_spans}
        stuck_for = time.time() - stats.export_started if stats.export_started else 0.0
        failing = stats.last_failure is not None and (
            stats.last_success is None or stats.last_failure > stats.last_success
        )
        last_error = stats.last_error
        if stuck_for > STUCK_EXPORT_SECONDS:
            last_error = f"export to the collector has not answered for {stuck_for:.1f}s"
        return {
            "status": "down" if failing or stuck_for > STUCK_EXPORT_SECONDS else "up",
            "endpoint": redact_url_credentials(self.endpoint),
            "exported_spans": stats.exported_spans,
            "failed_exports": stats.failed_exports,
            "dropped_spans": stats.dropped_spans,
            "last_success": iso_utc(stats.last_success),
            "last_error": last_error,
        }


def _error_type(message: str | None) -> str:
    """A short, low-cardinality label for a failed export."""
    if not message:
        return "export_failed"
    lowered = message.lower()
    if "timeout" in lowered or "timed out" in lowered:
        return "timeout"
    if "code: " in lowered:
        code = lowered.split("code: ", 1)[1].split(",", 1)[0].strip()
        if code.isdigit():
            return code
    if "connection" in lowered or "refused" in lowered:
        return "connection_error"
    return "export_failed"


# Smaller than the SDK's 512: encoding a batch holds the GIL, and a 512-span batch stalled requests
# for ~50 ms (p99 halved at 64-128 in bench/overhead.py, same CPU). OTEL_BSP_MAX_EXPORT_BATCH_SIZE
# still decides when it is set.
DEFAULT_EXPORT_BATCH_SIZE = 128


class TrackedBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor, counting the spans it drops when its queue is full."""

    def __init__(self, exporter: TrackedSpanExporter) -> None:
        batch_size = (
            None if os.environ.get(OTEL_BSP_MAX_EXPORT_BATCH_SIZE) else DEFAULT_EXPORT_BATCH_SIZE
        )
        queue_size = BatchSpanProcessor._default_max_queue_size()
        super().__init__(exporter, max_export_batch_size=batch_size and min(batch_size, queue_size))
        self._tracked = exporter
        batch = getattr(self, "_batch_processor", None)
        if not hasattr(batch, "_queue") or not hasattr(batch, "_max_queue_size"):
            raise RuntimeError(
                "opentelemetry-sdk changed BatchSpanProcessor's internals: dropped spans can no "
                "longer be counted; update telemetry/span_export.py for the new SDK"
            )
        self._queue, self._capacity = batch._queue, batch._max_queue_size  # pinned SDK 1.45
        self._drop_lock = threading.Lock()

    def on_end(self, span: ReadableSpan) -> None:
        if span.context.trace_flags.sampled and len(self._queue) >= self._capacity:
            with self._drop_lock:  # request threads may end spans at the same time
                self._tracked.stats.dropped_spans += 1
        super().on_end(span)
