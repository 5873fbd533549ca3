"""A real OTLP/HTTP receiver for the tests: decodes each POST /v1/traces with opentelemetry-proto.

`OTLPReceiver(mode="ok")` answers 200; `mode="hang"` accepts and never answers; `mode="error"`
answers `status` (with `Retry-After: retry_after` if given) to the first `failures` requests (all
of them if None), then 200. Every request's arrival time and headers are kept, and bodies sent with
`Content-Encoding: gzip` or `deflate` are decoded.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_DECODE = {"gzip": gzip.decompress, "deflate": zlib.decompress, "": lambda body: body}


class OTLPReceiver:
    def __init__(
        self,
        mode: str = "ok",
        status: int = 503,
        retry_after: str | None = None,
        failures: int | None = None,
    ) -> None:
        self.mode, self.status, self.retry_after = mode, status, retry_after
        self.failures = failures
        self.requests: list[ExportTraceServiceRequest] = []
        self.content_types: list[str] = []
        self.headers: list[dict[str, str]] = []  # of every request, names lower-cased
        self.arrivals: list[float] = []  # time.monotonic() of every request
        self._release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the Collector answers

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.arrivals.append(time.monotonic())
                    receiver.headers.append({k.lower(): v for k, v in self.headers.items()})
                    refuse = receiver.mode == "error" and (
                        receiver.failures is None or len(receiver.arrivals) <= receiver.failures
                    )
                if receiver.mode == "hang":
                    receiver._release.wait(30)
                    return
                if refuse:
                    self.send_response(receiver.status)
                    if receiver.retry_after is not None:
                        self.send_header("Retry-After", receiver.retry_after)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(_DECODE[self.headers.get("Content-Encoding", "")](body))
                with receiver._lock:
                    receiver.requests.append(request)
                    receiver.content_types.append(self.headers.get("Content-Type", ""))
                payload = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}/v1/traces"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OTLPReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def spans(self) -> list[tuple[dict, object]]:
        """Every received span with its resource attributes: [(resource_attrs, span)]."""
        found = []
        for request in list(self.requests):
            for resource_spans in request.resource_spans:
                attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    found.extend((attrs, span) for span in scope_spans.spans)
        return found

    def spans_of_trace(self, trace_id_hex: str, wait_s: float = 5.0) -> list:
        """The spans of one trace, waiting a little for the batch to arrive."""
        deadline = time.monotonic() + wait_s
        while True:
            spans = [s for _, s in self.spans() if s.trace_id.hex() == trace_id_hex]
            if spans or time.monotonic() > deadline:
                return spans
            time.sleep(0.05)


def span_attributes(span) -> dict:
    out = {}
    for attr in span.attributes:
        value = attr.value
        out[attr.key] = (
            value.string_value
            if value.HasField("string_value")
            else value.int_value
            if value.HasField("int_value")
            else value.bool_value
            if value.HasField("bool_value")
            else value.double_value
        )
    return out
