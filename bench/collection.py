"""What the process, GC and pool metrics cost: nothing per request, a little per collection.

They are read by callbacks when the metrics are collected (a scrape, or a worker's snapshot
every METRICS_SNAPSHOT_INTERVAL under gunicorn), never while a request runs. This measures one
collection of a meter provider that holds only them against an empty one, and turns it into
microseconds per request at a given request rate and collection rate:

    .venv/bin/python bench/collection.py [--rounds 2000] [--rate 700] [--collections 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from telemetry.pool import PoolMetrics  # noqa: E402 - the project's own package
from telemetry.runtime import observe_runtime  # noqa: E402


def provider(with_runtime: bool, engine: sa.Engine) -> InMemoryMetricReader:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("bench")
    if with_runtime:
        observe_runtime(meter)
        PoolMetrics(meter).observe(engine)
    return reader


def per_collection_us(reader: InMemoryMetricReader, rounds: int) -> float:
    """Median of `rounds` collections, in microseconds."""
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        reader.get_metrics_data()
        samples.append((time.perf_counter() - started) * 1e6)
    return statistics.median(samples)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=2000)
    p.add_argument("--rate", type=float, default=700, help="requests a second, one worker")
    p.add_argument("--collections", type=float, default=2, help="collections a second")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        engine = sa.create_engine(f"sqlite:///{directory}/bench.db")
        with engine.connect() as connection:
            connection.execute(sa.text("SELECT 1"))
        empty = per_collection_us(provider(False, engine), args.rounds)
        runtime = per_collection_us(provider(True, engine), args.rounds)
        engine.dispose()
    added = runtime - empty
    per_request = added * args.collections / args.rate
    print(f"one collection, empty provider        {empty:8.1f} us")
    print(f"one collection, process + GC + pool   {runtime:8.1f} us  (+{added:.1f} us)")
    print(
        f"per request at {args.rate:.0f} req/s and {args.collections:g} collections/s: "
        f"{per_request:.2f} us (0 us inside the request itself)"
    )
    print(json.dumps({"bench": "collection", "empty_us": empty, "runtime_us": runtime}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
