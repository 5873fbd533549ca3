"""OTLP/HTTP protobuf export of spans that never waits long on a collector, and says what failed.

`OTLPHttpExporter(config).send(spans, deadline, retry, stop, on_failure)` posts one batch to the
traces endpoint (stdlib `http.client`, one keep-alive connection):

- each attempt (connect, send, answer) is bounded by `ATTEMPT_TIMEOUT_S` (about 1 s) and by the
  deadline the caller gives (the batch's `OTEL_EXPORTER_OTLP_TIMEOUT` budget, or less at exit);
- transient failures are retried with exponential backoff and jitter, as the OTLP specification
  says: HTTP 429, 502, 503 and 504 (honouring `Retry-After`), refused, reset or timed-out
  connections; never past the deadline, and not at all once `stop` is set (shutdown);
- every failed attempt is reported at once (`on_failure`) as a `Failure`: a low-cardinality
  `error_type` (`connection_refused`, `timeout`, `503`, ...) and a short sentence that names the
  collector by host and port only, so no credential from the URL can leak.

Settings come from `TraceExportConfig` (telemetry.config): `OTEL_EXPORTER_OTLP(_TRACES)_HEADERS`
(`key=value,...`, URL-encoded values), `_COMPRESSION` (`gzip`, `deflate` or `none`) sent with
`Content-Encoding`, `_CERTIFICATE` (CA file), `_CLIENT_CERTIFICATE` and `_CLIENT_KEY` (mutual TLS).
The request body is made by `_encode(spans)`.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import os
import random
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from urllib.parse import unquote, urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.version import __version__ as sdk_version

from .config import TraceExportConfig
from .otlp_encoding import encode_spans

ATTEMPT_TIMEOUT_S = 1.0
# An attempt shorter than this would only measure our own deadline, not the collector; a retry
# needs at least MIN_RETRY_S left.
MIN_ATTEMPT_S, MIN_RETRY_S = 0.05, 0.25
BACKOFF_FIRST_S, BACKOFF_MAX_S, BACKOFF_JITTER = 0.5, 5.0, 0.2
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
USER_AGENT = f"OTel-OTLP-Exporter-Python/{sdk_version} (telemetry)"


def _encode(spans: Sequence[ReadableSpan]) -> bytes:
    """An ExportTraceServiceRequest for `spans`, serialized (telemetry.otlp_encoding)."""
    return encode_spans(spans)


@dataclass(frozen=True)
class Failure:
    """One failed attempt: a label for metrics, a sentence for people, and whether to retry."""

    error_type: str
    message: str
    retryable: bool = False
    retry_after: float | None = None


class NotSent(Exception):
    """The exporter was closed (replaced, or the process is exiting) before the batch went out."""


class OTLPHttpExporter:
    """Post span batches to one OTLP/HTTP traces endpoint."""

    def __init__(self, config: TraceExportConfig) -> None:
        if not config.endpoint:
            raise ValueError("OTLPHttpExporter needs an endpoint")
        self._config = config
        url = urlsplit(config.endpoint)
        self._https = url.scheme.lower() == "https"
        self._host = url.hostname or ""
        try:
            port = url.port or (443 if self._https else 80)
        except ValueError:  # not a number, or out of range
            port = 0
        self._port = port
        # How messages name the collector: host and port, never the URL's credentials.
        self._where = f"[{self._host}]:{port}" if ":" in self._host else f"{self._host}:{port}"
        self._path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._invalid: Failure | None = None
        if url.scheme.lower() not in ("http", "https") or not self._host or not port:
            self._invalid = Failure(
                "invalid_endpoint", "the OTLP traces endpoint is not an http(s) URL with a host"
            )
        self._headers = self._request_headers(config, url)
        self._lock = threading.Lock()  # one attempt at a time on the connection
        self._connection: http.client.HTTPConnection | None = None
        self._pid = os.getpid()
        self._closed = False
        self._tls: ssl.SSLContext | None = None

    @staticmethod
    def _request_headers(config: TraceExportConfig, url) -> dict[str, str]:
        headers = {"user-agent": USER_AGENT}
        if url.username is not None:
            credentials = f"{unquote(url.username)}:{unquote(url.password or '')}"
            headers["authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
        headers.update((key.lower(), value) for key, value in config.headers)
        headers["content-type"] = "application/x-protobuf"
        if config.compression != "none":
            headers["content-encoding"] = config.compression
        else:
            headers.pop("content-encoding", None)
        return headers

    def send(
        self,
        spans: Sequence[ReadableSpan],
        deadline: float,
        retry: bool,
        stop: threading.Event,
        on_failure: Callable[[Failure], None],
    ) -> Failure | None:
        """Export one batch by about `deadline` (time.monotonic()); None when the collector took it.

        The first attempt is always made (for at least MIN_ATTEMPT_S); raises NotSent when the
        exporter is closed before or during an attempt.
        """
        if self._invalid:
            on_failure(self._invalid)
            return self._invalid
        body = self._compress(_encode(spans))
        retries = 0
        while True:
            timeout = min(ATTEMPT_TIMEOUT_S, deadline - time.monotonic())
            failure = self._attempt(body, max(timeout, MIN_ATTEMPT_S))
            if failure is None:
                return None
            on_failure(failure)
            if not (retry and failure.retryable) or stop.is_set():
                return failure
            delay = failure.retry_after
            if delay is None:
                delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2**retries)
                delay *= random.uniform(1 - BACKOFF_JITTER, 1 + BACKOFF_JITTER)
            if time.monotonic() + delay + MIN_RETRY_S > deadline or stop.wait(delay):
                return failure
            retries += 1

    def close(self) -> None:
        """Drop the connection, waking an attempt that is waiting on it."""
        self._closed = True
        connection = self._connection
        sock = connection.sock if connection is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._lock.acquire(blocking=False):
            try:
                self._drop_connection()
            finally:
                self._lock.release()

    def _compress(self, body: bytes) -> bytes:
        if self._config.compression == "gzip":
            return gzip.compress(body, compresslevel=6, mtime=0)
        if self._config.compression == "deflate":
            return zlib.compress(body)
        return body

    def _attempt(self, body: bytes, timeout: float) -> Failure | None:
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            if self._closed:
                raise NotSent
            reused = self._connection is not None and self._connection.sock is not None
            failure = self._post(body, timeout)
            if failure is not None and self._closed:
                raise NotSent
            if failure is not None and reused and failure.error_type == "connection_reset":
                # The collector closed the idle keep-alive connection: try once on a new one.
                failure = self._post(body, timeout)
            return failure

    def _post(self, body: bytes, timeout: float) -> Failure | None:
        started = time.monotonic()
        phase = "connect"
        try:
            connection = self._connection or self._new_connection()
            self._connection = connection
            if connection.sock is None:
                connection.timeout = timeout
                connection.connect()
            phase = "answer"
            connection.sock.settimeout(max(MIN_ATTEMPT_S, timeout - (time.monotonic() - started)))
            connection.request("POST", self._path, body, self._headers)
            response = connection.getresponse()
            response.read()  # drained, so the connection can carry the next batch
        except Exception as exc:  # noqa: BLE001 - every failure is classified, none escapes
            self._drop_connection()
            return self._classify(exc, phase, timeout)
        if response.will_close:
            self._drop_connection()
        if 200 <= response.status < 300:
            return None
        reason = response.reason or http.client.responses.get(response.status, "")
        return Failure(
            str(response.status),
            f"HTTP {response.status} {reason} from {self._where}".replace("  ", " "),
            retryable=response.status in RETRYABLE_STATUS,
            retry_after=_retry_after(response.getheader("Retry-After")),
        )

    def _after_fork(self) -> None:
        """In a forked child: never share the parent's connection (nor a lock it held)."""
        self._pid, self._lock = os.getpid(), threading.Lock()
        self._drop_connection()  # closes this process's copy of the socket only

    def _new_connection(self) -> http.client.HTTPConnection:
        if not self._https:
            return http.client.HTTPConnection(self._host, self._port)
        if self._tls is None:
            tls = ssl.create_default_context(cafile=self._config.certificate)
            if self._config.client_certificate:
                tls.load_cert_chain(self._config.client_certificate, self._config.client_key)
            self._tls = tls
        return http.client.HTTPSConnection(self._host, self._port, context=self._tls)

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    def _classify(self, exc: Exception, phase: str, timeout: float) -> Failure:
        where = self._where
        if isinstance(exc, ConnectionRefusedError):
            return Failure("connection_refused", f"connection refused by {where}", True)
        if isinstance(exc, TimeoutError):  # socket.timeout is TimeoutError
            if phase == "connect":
                return Failure("timeout", f"no connection to {where} within {timeout:.1f} s", True)
            return Failure("timeout", f"no answer from {where} within {timeout:.1f} s", True)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return Failure("tls", f"TLS certificate of {where} rejected: {exc.verify_message}")
        if isinstance(exc, ssl.SSLError):
            return Failure("tls", f"TLS with {where} failed: {exc.reason or exc}")
        if isinstance(exc, socket.gaierror):
            return Failure("name_resolution", f"cannot resolve {self._host}: {exc.strerror}", True)
        if isinstance(exc, ConnectionError):  # reset, aborted, broken pipe, RemoteDisconnected
            return Failure("connection_reset", f"connection to {where} closed without answer", True)
        if isinstance(exc, http.client.HTTPException):
            return Failure("protocol_error", f"not an HTTP answer from {where}: {exc!r}")
        if isinstance(exc, FileNotFoundError | PermissionError) and phase == "connect":
            return Failure("tls", f"cannot read the TLS files: {exc}")
        if isinstance(exc, OSError):
            return Failure("connection_error", f"cannot reach {where}: {exc.strerror or exc}", True)
        return Failure("export_failed", f"{exc.__class__.__name__}: {exc}")


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    return max(0.0, seconds) if seconds == seconds and seconds != float("inf") else None
