"""Process, garbage-collector and connection-pool families: read at collection, real values."""

from __future__ import annotations

import gc
import re
import threading
import time

import psutil
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from sqlalchemy import create_engine, text

from blog_api.config import DEFAULT_THREADS
from blog_api.extensions import db
from telemetry.pool import PoolMetrics, pool_name

from .live_server import LiveServer, total
from .test_metrics import scrape

POOL = "db_client_connections"


def value(families, family: str, sample: str | None = None, **labels: str) -> float:
    return total(families, family, sample or family, **labels)


def test_process_families_describe_this_process(client):
    families = scrape(client)
    me = psutil.Process()

    rss = value(families, "process_memory_usage_bytes")
    assert 0.5 * me.memory_info().rss < rss < 2 * me.memory_info().rss
    assert value(families, "process_memory_virtual_bytes") >= rss
    assert value(families, "process_unix_file_descriptors") >= 3
    assert value(families, "process_threads") >= 1
    cpu = families["process_cpu_time_seconds"]
    assert {s.labels["cpu_mode"] for s in cpu} == {"user", "system"}
    assert 0 < sum(s.value for s in cpu) <= sum(me.cpu_times()[:2]) + 0.1


def test_gc_collections_are_counted_by_generation(client):
    gen2 = "cpython_gc_collections"
    before = value(scrape(client), gen2, gen2 + "_total", cpython_gc_generation="2")
    gc.collect()
    gc.collect()
    after = scrape(client)

    assert value(after, gen2, gen2 + "_total", cpython_gc_generation="2") == before + 2
    assert {s.labels["cpython_gc_generation"] for s in after[gen2]} == {"0", "1", "2"}
    for family in ("cpython_gc_collected_objects", "cpython_gc_uncollectable_objects"):
        assert len(after[family]) == 3, family


def test_pool_counts_used_and_idle_connections_at_scrape_time(app, client):
    with app.app_context():
        engine = db.engine
    name = pool_name(engine)
    with engine.connect() as held:
        held.execute(text("SELECT 1"))
        during = scrape(client)
    after = scrape(client)

    pool = {"db_client_connection_pool_name": name}
    assert value(during, POOL, db_client_connection_state="used", **pool) == 1
    assert value(after, POOL, db_client_connection_state="used", **pool) == 0
    assert value(after, POOL, db_client_connection_state="idle", **pool) >= 1
    # the pool's size (5 on SQLite; on PostgreSQL a connection a gunicorn thread, 5 at least)
    # + QueuePool's default overflow of 10
    assert value(after, "db_client_connection_max", **pool) == engine.pool.size() + 10
    assert engine.pool.size() == (5 if engine.dialect.name == "sqlite" else max(5, DEFAULT_THREADS))
    assert value(after, "db_client_connection_pending_requests", **pool) == 0
    assert name and "@" not in name and ":" not in name


def _pool_points(reader: InMemoryMetricReader) -> dict[tuple, float]:
    points = {}
    data = reader.get_metrics_data()  # None when no instrument observed anything
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    state = point.attributes.get("db.client.connection.state")
                    points[(metric.name, state)] = point.value
    return points


def test_pending_requests_are_threads_waiting_for_a_connection(tmp_path):
    reader = InMemoryMetricReader()
    pools = PoolMetrics(MeterProvider(metric_readers=[reader]).get_meter("test"))
    engine = create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}", pool_size=1, max_overflow=0, pool_timeout=10
    )
    pools.observe(engine)
    waiter_done = threading.Event()

    def wait_for_a_connection():
        with engine.connect():
            waiter_done.set()

    try:
        with engine.connect():
            waiter = threading.Thread(target=wait_for_a_connection)
            waiter.start()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                points = _pool_points(reader)
                if points[("db.client.connection.pending_requests", None)] == 1:
                    break
                time.sleep(0.01)
            assert points[("db.client.connection.pending_requests", None)] == 1
            assert points[("db.client.connection.count", "used")] == 1
            assert points[("db.client.connection.max", None)] == 1
        assert waiter_done.wait(5)
        waiter.join(5)
        points = _pool_points(reader)
        assert points[("db.client.connection.pending_requests", None)] == 0
        assert points[("db.client.connection.count", "idle")] == 1
    finally:
        engine.dispose()


def test_an_engine_gone_is_no_longer_reported(tmp_path):
    reader = InMemoryMetricReader()
    pools = PoolMetrics(MeterProvider(metric_readers=[reader]).get_meter("test"))
    engine = create_engine(f"sqlite:///{tmp_path / 'gone.db'}")
    pools.observe(engine)
    assert ("db.client.connection.max", None) in _pool_points(reader)

    del engine
    gc.collect()
    assert ("db.client.connection.max", None) not in _pool_points(reader)


@pytest.mark.slow
def test_two_workers_report_their_sum(tmp_path):
    metrics_dir = tmp_path / "metrics"
    with LiveServer(tmp_path, workers=2, METRICS_MULTIPROCESS_DIR=str(metrics_dir)) as server:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            pids = [int(p) for p in re.findall(r"Booting worker with pid: (\d+)", server.log())]
            if len(pids) == 2 and all((metrics_dir / f"worker-{p}.json").exists() for p in pids):
                break
            time.sleep(0.2)
        time.sleep(1.0)  # past the snapshot interval: both workers' latest numbers are in
        families = server.scrape()
        workers = [psutil.Process(pid) for pid in pids]

        assert len(workers) == 2
        rss = sum(w.memory_info().rss for w in workers)
        assert 0.7 * rss < value(families, "process_memory_usage_bytes") < 1.3 * rss
        threads = sum(w.num_threads() for w in workers)
        assert value(families, "process_threads") == pytest.approx(threads, abs=4)
        # each worker's pool may open 15 (5 + 10 overflow): the service 30
        assert value(families, "db_client_connection_max") == 30
        assert value(families, "cpython_gc_collections", "cpython_gc_collections_total") > 0
