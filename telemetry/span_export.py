"""Trace export that keeps score, and never keeps a request or an exiting worker waiting on it.

`TrackedSpanExporter` hands each batch to the exporters `OTEL_TRACES_EXPORTER` names:

- `otlp` (the default): OTLP/HTTP protobuf to `OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`
  (telemetry.otlp_http: attempts of about a second, retries within the batch's budget); with no
  endpoint set, nothing is exported and the trace exporter reports `disabled`;
- `console`: the SDK's ConsoleSpanExporter, one JSON object per span on stdout;
- `none`: nothing is exported (spans are still made, for log correlation and `traceresponse`);

a comma-separated list sends every batch to each. It keeps score (spans exported, failed by error
type, dropped by reason, the last success and the last error) for both `/health` and the
`otel_sdk_*` metrics, so the two never disagree. `configure(TraceExportConfig)` re-points it: the
providers are built once per process and tests build many apps; a changed configuration replaces
the exporters and starts the counts again.

`TrackedBatchSpanProcessor` is the SDK's batch processor, changed where a collector could make
someone wait or lose spans unseen:

- spans dropped because the queue is full are counted (`queue_full`);
- `shutdown()` (the TracerProvider's atexit hook, or gunicorn.conf.py's `worker_exit` when a
  worker is recycled or stopped) takes SHUTDOWN_BUDGET_S (1 s) at most: retries stop at once, the
  attempt in flight keeps its own bound, and the final flush makes one attempt a batch (of at most
  SHUTDOWN_ATTEMPT_S) until the first failure or the budget's end; the spans left over are dropped
  and counted (`shutdown`), as are spans ended after shutdown began;
- `force_flush(timeout_millis)` exports in the caller's thread and returns by its timeout, leaving
  what it could not send queued.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, attach, detach, set_value
from opentelemetry.sdk.environment_variables import OTEL_BSP_MAX_EXPORT_BATCH_SIZE
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
    SpanExportResult,
)

from .config import TraceExportConfig
from .otlp_http import MIN_ATTEMPT_S, Failure, NotSent, OTLPHttpExporter
from .redact import redact_url_credentials
from .timestamps import iso_utc

SHUTDOWN_BUDGET_S = 1.0
# A batch's one attempt during shutdown: a healthy collector answers in milliseconds, and a hung
# one should not cost a recycled worker the whole budget.
SHUTDOWN_ATTEMPT_S = 0.5
# Beyond the budget, how long shutdown waits for the export thread to finish its last step.
_JOIN_GRACE_S = 0.25
_logger = logging.getLogger("telemetry.export")


@dataclass
class ExportStats:
    """The score of one configuration, updated by the export thread and request threads."""

    exported_spans: int = 0
    failed_spans: Counter = field(default_factory=Counter)  # error type -> spans of failed batches
    failed_exports: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> spans never handed over
    last_success: float | None = None
    last_failure: float | None = None  # of an attempt: /health says down at once
    last_error: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def dropped_spans(self) -> int:
        return sum(self.dropped.values())

    @property
    def failing(self) -> bool:
        return self.last_failure is not None and (
            self.last_success is None or self.last_failure > self.last_success
        )

    def exported(self, spans: int) -> None:
        with self._lock:
            self.exported_spans += spans
            self.last_success = time.time()

    def failed(self, spans: int, error_type: str) -> None:
        with self._lock:
            self.failed_exports += 1
            self.failed_spans[error_type] += spans

    def attempt_failed(self, failure: Failure) -> None:
        with self._lock:
            self.last_failure = time.time()
            self.last_error = redact_url_credentials(failure.message)

    def drop(self, spans: int, reason: str) -> None:
        with self._lock:
            self.dropped[reason] += spans


class _Sink(Protocol):
    def send(
        self,
        spans: Sequence[ReadableSpan],
        deadline: float,
        retry: bool,
        stop: threading.Event,
        on_failure,
    ) -> Failure | None: ...

    def close(self) -> None: ...


class _Stdout:
    """sys.stdout as it is when written to (a test, or a logging setup, may replace it)."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


class _ConsoleSink:
    """The SDK's ConsoleSpanExporter, with its failures named."""

    def __init__(self) -> None:
        self._exporter = ConsoleSpanExporter(out=_Stdout())

    def send(self, spans, deadline, retry, stop, on_failure) -> Failure | None:
        try:
            self._exporter.export(spans)
        except (OSError, ValueError) as exc:  # a closed or broken stdout
            failure = Failure("console_error", f"cannot write spans to stdout: {exc}")
            on_failure(failure)
            return failure
        return None

    def close(self) -> None:
        pass


def _sinks(config: TraceExportConfig) -> tuple[_Sink, ...]:
    made = {"otlp": lambda: OTLPHttpExporter(config), "console": _ConsoleSink}
    return tuple(made[name]() for name in config.active)


@dataclass(frozen=True)
class _State:
    config: TraceExportConfig | None
    sinks: tuple[_Sink, ...]
    stats: ExportStats
    stop: threading.Event  # set when these sinks are replaced or shutdown starts: no more retries


class TrackedSpanExporter(SpanExporter):
    """Export spans where the configuration says (or nowhere) and keep score."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state = _State(None, (), ExportStats(), threading.Event())
        self._closing_deadline: float | None = None
        self._closing_failed = False
        self._local = threading.local()  # .deadline: a force_flush's, in its own thread
        self._logged_error: str | None = None

    @property
    def stats(self) -> ExportStats:
        return self._state.stats

    @property
    def active(self) -> bool:
        """Whether spans go anywhere (if not, the processor need not queue them)."""
        return bool(self._state.sinks)

    def configure(self, config: TraceExportConfig) -> None:
        """Export future batches as `config` says; a changed configuration starts a new score."""
        with self._lock:
            old = self._state
            if config == old.config:
                return
            self._state = _State(config, _sinks(config), ExportStats(), threading.Event())
            self._logged_error = None
        old.stop.set()
        for sink in old.sinks:
            sink.close()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        state = self._state
        if not state.sinks:
            return SpanExportResult.SUCCESS
        closing = self._closing_deadline
        if closing is not None:
            if self._closing_failed or closing - time.monotonic() < MIN_ATTEMPT_S:
                state.stats.drop(len(spans), "shutdown")
                return SpanExportResult.FAILURE
            deadline, retry = min(closing, time.monotonic() + SHUTDOWN_ATTEMPT_S), False
        else:
            deadline, retry = time.monotonic() + state.config.timeout_s, True
            flush_deadline = getattr(self._local, "deadline", None)
            if flush_deadline is not None:
                deadline = min(deadline, flush_deadline)
        failure = None
        try:
            for sink in state.sinks:
                failure = sink.send(spans, deadline, retry, state.stop, self._on_failure) or failure
        except NotSent:
            state.stats.drop(len(spans), "shutdown")
            return SpanExportResult.FAILURE
        except Exception as exc:  # noqa: BLE001 - an exporter bug must not kill the export thread
            failure = Failure("export_failed", f"{exc.__class__.__name__}: {exc}")
            self._on_failure(failure)
        if failure is None:
            state.stats.exported(len(spans))
            if self._logged_error is not None:
                self._logged_error = None
                _logger.info("trace export works again")
            return SpanExportResult.SUCCESS
        if self._closing_deadline is not None:
            self._closing_failed = True  # the collector failed us during shutdown: stop trying
        state.stats.failed(len(spans), failure.error_type)
        return SpanExportResult.FAILURE

    def _on_failure(self, failure: Failure) -> None:
        """Record a failed attempt at once (so /health says `down`), and log each new kind."""
        self._state.stats.attempt_failed(failure)
        if failure.error_type != self._logged_error:
            self._logged_error = failure.error_type
            _logger.warning("trace export failing: %s", redact_url_credentials(failure.message))

    def drop(self, spans: int, reason: str) -> None:
        """Count spans that never reached the exporter (`queue_full`, `shutdown`)."""
        self._state.stats.drop(spans, reason)

    def begin_shutdown(self, deadline: float) -> None:
        """From now on: no retries, one attempt a batch, nothing after `deadline` or a failure."""
        self._closing_deadline = deadline
        self._state.stop.set()

    @contextlib.contextmanager
    def flushing(self, deadline: float) -> Iterator[None]:
        """Exports made by this thread inside the block end by `deadline`."""
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = None

    def shutdown(self) -> None:
        state = self._state
        state.stop.set()
        for sink in state.sinks:
            sink.close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True

    def status(self) -> dict:
        """The trace exporter's entry in /health."""
        state = self._state
        stats = state.stats
        if not state.sinks:
            return {
                "status": "disabled",
                "exporters": [],
                "endpoint": None,
                "dropped_spans": stats.dropped_spans,
            }
        exporters = list(state.config.active)
        endpoint = state.config.endpoint if "otlp" in exporters else None
        return {
            "status": "down" if stats.failing else "up",
            "exporters": exporters,
            "endpoint": redact_url_credentials(endpoint) if endpoint else None,
            "exported_spans": stats.exported_spans,
            "failed_exports": stats.failed_exports,
            "dropped_spans": stats.dropped_spans,
            "last_success": iso_utc(stats.last_success),
            "last_error": stats.last_error,
        }


# Smaller than the SDK's 512: encoding a batch holds the GIL, and a 512-span batch stalled requests
# for ~50 ms (p99 halved at 64-128 in bench/overhead.py, same CPU). OTEL_BSP_MAX_EXPORT_BATCH_SIZE
# still decides when it is set.
DEFAULT_EXPORT_BATCH_SIZE = 128
# The SDK 1.45 BatchProcessor internals this module relies on, checked at start-up.
_BATCH_INTERNALS = (
    "_queue",
    "_max_queue_size",
    "_max_export_batch_size",
    "_export_lock",
    "_metrics",
    "_shutdown",
)


class TrackedBatchSpanProcessor(BatchSpanProcessor):
    """The SDK's batch processor, with drops counted and a bounded shutdown and force_flush."""

    def __init__(self, exporter: TrackedSpanExporter) -> None:
        batch_size = (
            None if os.environ.get(OTEL_BSP_MAX_EXPORT_BATCH_SIZE) else DEFAULT_EXPORT_BATCH_SIZE
        )
        queue_size = BatchSpanProcessor._default_max_queue_size()
        super().__init__(exporter, max_export_batch_size=batch_size and min(batch_size, queue_size))
        self._tracked = exporter
        batch = getattr(self, "_batch_processor", None)
        if not all(hasattr(batch, name) for name in _BATCH_INTERNALS):
            raise RuntimeError(
                "opentelemetry-sdk changed BatchSpanProcessor's internals: dropped spans can no "
                "longer be counted nor shutdown bounded; update telemetry/span_export.py"
            )
        self._batch = batch  # pinned SDK 1.45
        self._queue, self._capacity = batch._queue, batch._max_queue_size

    def on_end(self, span: ReadableSpan) -> None:
        if not self._tracked.active or not span.context.trace_flags.sampled:
            return  # nowhere to send it: not even queued
        if self._batch._shutdown:
            self._tracked.drop(1, "shutdown")
            return
        if len(self._queue) >= self._capacity:
            self._tracked.drop(1, "queue_full")
        super().on_end(span)

    def shutdown(self) -> None:
        """Flush for about SHUTDOWN_BUDGET_S at most, then drop and count what is left."""
        batch = self._batch
        if batch._shutdown:
            return
        self._tracked.begin_shutdown(time.monotonic() + SHUTDOWN_BUDGET_S)
        batch.shutdown(timeout_millis=(SHUTDOWN_BUDGET_S + _JOIN_GRACE_S) * 1000)
        left = len(self._queue)
        if left:
            self._queue.clear()
            self._tracked.drop(left, "shutdown")

    def force_flush(self, timeout_millis: int | None = None) -> bool:
        """Export what is queued, in this thread, by `timeout_millis`; False if some is left."""
        batch = self._batch
        timeout = 30.0 if timeout_millis is None else max(0.0, timeout_millis / 1000)
        deadline = time.monotonic() + timeout
        if batch._shutdown or not batch._export_lock.acquire(timeout=timeout):
            return False  # the export thread holds the lock for one batch, a budget at most
        token = attach(set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            with self._tracked.flushing(deadline):
                while self._queue and deadline - time.monotonic() >= MIN_ATTEMPT_S:
                    count = min(batch._max_export_batch_size, len(self._queue))
                    spans = [self._queue.pop() for _ in range(count)]  # oldest at the right
                    batch._metrics.finish_items(count)
                    self._tracked.export(spans)
            return not self._queue
        finally:
            detach(token)
            batch._export_lock.release()
