"""A dead collector costs nothing, under real gunicorn with worker recycling (DESIGN, issue 9).

Two workers recycled every ~50 requests, traces sent to an OTLP endpoint that accepts and never
answers, or to a port that refuses: no request takes over 2 s, SIGTERM stops gunicorn within 3 s,
and `/health` and `/metrics` name the failure. A healthy collector still gets the spans made just
before SIGTERM.
"""

import json
import re
import signal
import threading
import time

import pytest

from .live_server import LiveServer, total
from .otlp_receiver import OTLPReceiver

pytestmark = pytest.mark.slow

ROUTE = "/api/v1/posts"
MAX_REQUESTS = 50
REQUESTS, CONNECTIONS = 300, 3
EXPORTED = "otel_sdk_exporter_span_exported"


def _timed_requests(server: LiveServer, requests: int, connections: int) -> list[float]:
    """Send exactly `requests` GETs from `connections` threads; the latency of each."""
    latencies, errors = [], []

    def run(n: int) -> None:
        for _ in range(n):
            started = time.perf_counter()
            status, _ = server.request("GET", ROUTE)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)

    share = [requests // connections + (i < requests % connections) for i in range(connections)]
    threads = [threading.Thread(target=run, args=(n,)) for n in share]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert len(latencies) == requests
    return latencies


def _sigterm(server: LiveServer) -> float:
    """Stop gunicorn as an orchestrator does; the seconds until it has exited."""
    started = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    server.process.wait(timeout=15)
    return time.monotonic() - started


def _wait_for_health(server: LiveServer, error: str) -> dict:
    """/health's trace exporter once the worker that answers has seen `error` (bounded)."""
    deadline = time.monotonic() + 5
    while True:
        server.request("GET", ROUTE)  # a span, for a fresh worker to try to export
        exporter = json.loads(server.request("GET", "/health")[1])["checks"]["trace_exporter"]
        if re.fullmatch(error, exporter.get("last_error") or "") or time.monotonic() > deadline:
            return exporter
        time.sleep(0.2)


@pytest.mark.parametrize("collector", ["hanging", "refused"])
def test_recycling_and_sigterm_never_wait_on_a_dead_collector(tmp_path, collector, closed_port):
    with OTLPReceiver(mode="hang") as hanging:
        if collector == "hanging":
            env = {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": hanging.endpoint}
        else:  # exports every 0.5 s, so that each worker soon has something to say in /health
            env = {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{closed_port}/v1/traces",
                "OTEL_BSP_SCHEDULE_DELAY": "500",
            }
        with LiveServer(
            tmp_path, workers=2, GUNICORN_MAX_REQUESTS=str(MAX_REQUESTS), **env
        ) as server:
            latencies = _timed_requests(server, REQUESTS, CONNECTIONS)
            recycled = len(re.findall(r"Booting worker with pid", server.log())) - 2
            assert recycled >= 4, "max_requests did not recycle the workers"
            assert max(latencies) < 2.0, sorted(latencies)[-5:]

            error_type = "timeout" if collector == "hanging" else "connection_refused"
            families = server.scrape()  # every worker's counts, the exited ones' included
            assert total(families, EXPORTED, EXPORTED + "_total", error_type=error_type) > 0
            assert total(families, EXPORTED, EXPORTED + "_total", error_type="") == 0
            if collector == "refused":
                exporter = _wait_for_health(
                    server, rf"connection refused by 127\.0\.0\.1:{closed_port}"
                )
                assert exporter["status"] == "down", exporter
                assert exporter["last_error"] == f"connection refused by 127.0.0.1:{closed_port}"

            assert _sigterm(server) < 3.0


def test_spans_made_just_before_sigterm_reach_a_healthy_collector(tmp_path):
    with OTLPReceiver() as receiver:
        with LiveServer(
            tmp_path, workers=2, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=receiver.endpoint
        ) as server:
            trace_ids = set()
            for _ in range(20):  # ~40 spans: no batch is full, the 5 s schedule has not come
                connection = server.connection()
                connection.request("GET", ROUTE)
                response = connection.getresponse()
                response.read()
                connection.close()
                trace_ids.add(response.getheader("traceresponse").split("-")[1])
            assert _sigterm(server) < 3.0
        received = {span.trace_id.hex() for _, span in receiver.spans()}
    assert trace_ids <= received
