"""Exact metrics under gunicorn with several workers: every scrape reports every worker's counts."""

import json
import os
import re
import threading
import time

import pytest
from prometheus_client import Metric
from prometheus_client.openmetrics import parser as openmetrics_parser

from telemetry.multiprocess import merge, to_snapshot

from .live_server import LiveServer, total
from .services import promtool_check_metrics

ROUTE = "/api/v1/posts"
DURATION = "http_server_request_duration_seconds"


def _hammer(server: LiveServer, requests: int, connections: int) -> None:
    """Send exactly `requests` GETs over `connections` keep-alive connections."""
    errors = []

    def run(n: int) -> None:
        connection = server.connection()
        try:
            for _ in range(n):
                connection.request("GET", ROUTE)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(response.status)
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = server.connection()
        finally:
            connection.close()

    share = [requests // connections + (i < requests % connections) for i in range(connections)]
    threads = [threading.Thread(target=run, args=(n,)) for n in share]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors


def _failed_logins(server: LiveServer, n: int) -> None:
    server.request(
        "POST",
        "/api/v1/users/register",
        {"username": "alice", "email": "a@example.org", "password": "password1"},
    )
    for _ in range(n):
        status, _ = server.request(
            "POST", "/api/v1/users/login", {"username": "alice", "password": "wrong-password"}
        )
        assert status == 401


def _assert_exact_scrapes(server: LiveServer, requests: int, failures: int) -> None:
    deadline = time.monotonic() + 2.0  # the staleness bound is 0.5 s
    while True:
        families = server.scrape()
        done = total(families, DURATION, DURATION + "_count", http_route=ROUTE) == requests
        if done or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for _ in range(10):
        families = server.scrape()
        assert total(families, DURATION, DURATION + "_count", http_route=ROUTE) == requests
        assert (
            total(families, "blog_api_logins", "blog_api_logins_total", outcome="failure")
            == failures
        )
        assert len(families["target_info"]) == 1
        assert "service_instance_id" not in families["target_info"][0].labels


@pytest.mark.slow
def test_four_workers_every_scrape_is_exact(tmp_path):
    with LiveServer(tmp_path, workers=4) as server:
        _failed_logins(server, 5)
        traffic = threading.Thread(target=_hammer, args=(server, 1000, 8))
        traffic.start()
        seen = []  # scrapes while the traffic runs, answered by whichever worker
        while traffic.is_alive() and len(seen) < 200:
            seen.append(total(server.scrape(), DURATION, DURATION + "_count", http_route=ROUTE))
        traffic.join()
        assert seen == sorted(seen), "a counter went down between two scrapes"
        _assert_exact_scrapes(server, 1000, 5)
        pids = set(re.findall(r"Booting worker with pid: (\d+)", server.log()))
        assert len(pids) == 4
    # gunicorn's own lines are in the app's format too: one JSON object a line
    lines = [json.loads(line) for line in server.log().splitlines()]
    assert any(line["logger"] == "gunicorn.error" for line in lines)


@pytest.mark.slow
@pytest.mark.prometheus
def test_promtool_accepts_a_merged_scrape(tmp_path):
    with LiveServer(tmp_path, workers=2) as server:
        _failed_logins(server, 2)
        _hammer(server, 50, connections=4)
        time.sleep(1.0)  # past the snapshot interval: the other worker's numbers are in
        status, body = server.request("GET", "/metrics")
        # Exemplars are the answering worker's own: scrape over a keep-alive connection that has
        # just been served requests, so the worker that answers is one that has them.
        connection = server.connection()
        try:
            for _ in range(3):
                connection.request("GET", ROUTE)
                connection.getresponse().read()
            connection.request(
                "GET", "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
            )
            response = connection.getresponse()
            om_status, om_body = response.status, response.read()
        finally:
            connection.close()
    assert status == 200 and om_status == 200
    om = {f.name: f for f in openmetrics_parser.text_string_to_metric_families(om_body.decode())}
    assert (
        total(
            {k: f.samples for k, f in om.items()}, DURATION, DURATION + "_count", http_route=ROUTE
        )
        == 53
    )
    assert any(s.exemplar for s in om[DURATION].samples)
    promtool_check_metrics(body)


@pytest.mark.slow
def test_recycled_workers_keep_their_counts_and_files_stay_bounded(tmp_path):
    metrics_dir = tmp_path / "metrics"
    with LiveServer(
        tmp_path, workers=4, GUNICORN_MAX_REQUESTS="100", METRICS_MULTIPROCESS_DIR=str(metrics_dir)
    ) as server:
        _failed_logins(server, 5)
        _hammer(server, 1000, connections=8)
        _assert_exact_scrapes(server, 1000, 5)
        booted = set(re.findall(r"Booting worker with pid: (\d+)", server.log()))
        assert len(booted) > 4, "no worker was recycled: max_requests did not take effect"
        # every recycle is counted as one, once the master has reaped the worker
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            recycled = total(
                server.scrape(), "gunicorn_worker_exits", "gunicorn_worker_exits_total",
                reason="recycled",
            )  # fmt: skip
            booted = set(re.findall(r"Booting worker with pid: (\d+)", server.log()))
            if recycled == len(booted) - 4:
                break
            time.sleep(0.1)
        assert recycled == len(booted) - 4
        # a `.tmp-` file is a snapshot being written, an `exit-` file a worker exiting: neither
        # may stay
        for _ in range(20):
            files = sorted(os.listdir(metrics_dir))
            if not any(f.startswith((".tmp-", "exit-")) for f in files):
                break
            time.sleep(0.05)
        workers = [f for f in files if f.startswith("worker-")]
        assert len(workers) <= 4
        assert set(files) - set(workers) <= {"archive.json", ".lock"}


def _family(name: str, typ: str, *samples) -> Metric:
    metric = Metric(name, "help", typ)
    for sample_name, labels, value in samples:
        metric.add_sample(sample_name, labels, value)
    return metric


def test_merge_sums_counters_and_histograms_and_keeps_gauges_of_live_workers_only():
    def worker(n: int, active: int, instance: str):
        return to_snapshot(
            [
                _family("logins", "counter", ("logins_total", {"outcome": "failure"}, n)),
                _family("dur", "histogram", ("dur_bucket", {"le": "0.1"}, n), ("dur_count", {}, n)),
                _family("active", "gauge", ("active", {"m": "GET"}, active)),
                _family(
                    "target",
                    "info",
                    ("target_info", {"service_instance_id": instance, "service_name": "x"}, 1),
                ),
            ]
        )

    merged = {
        m.name: m for m in merge(worker(1, 2, "a"), [worker(10, 3, "b")], worker(100, 7, "c"))
    }
    assert merged["logins"].samples[0].value == 111
    assert {s.name: s.value for s in merged["dur"].samples} == {"dur_bucket": 111, "dur_count": 111}
    assert merged["active"].samples[0].value == 5  # the archived (exited) worker's 7 is gone
    assert [s.labels for s in merged["target"].samples] == [{"service_name": "x"}]


def test_a_reused_directory_keeps_dead_workers_counts_and_live_workers_files(tmp_path, monkeypatch):
    from telemetry import multiprocess

    def snapshot(n: int):
        return to_snapshot(
            [
                _family("logins", "counter", ("logins_total", {}, n)),
                _family("active", "gauge", ("active", {}, 1)),
            ]
        )

    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    for pid, n in ((dead_pid, 7), (os.getpid(), 5)):
        (tmp_path / f"worker-{pid}.json").write_text(json.dumps(snapshot(n)))
    (tmp_path / ".tmp-leftover").write_text("half a file")
    monkeypatch.setenv("METRICS_MULTIPROCESS_DIR", str(tmp_path))

    assert multiprocess.prepare() == str(tmp_path)
    assert sorted(os.listdir(tmp_path)) == [".lock", "archive.json", f"worker-{os.getpid()}.json"]
    archive = json.loads((tmp_path / "archive.json").read_text())
    assert archive == [["logins", "counter", "help", "", [["logins_total", {}, 7]]]]
