"""Multi-worker metrics: throughput with 1, 2 and 4 workers, and what a merged scrape costs.

    .venv/bin/python bench/workers.py              # 3 rounds x 10 s per worker count
    .venv/bin/python bench/workers.py --rounds 1 --duration 5

Part 1 loads GET /api/v1/posts/<id> (full telemetry: metrics, spans exported to a local OTLP
receiver) on servers with 1, 2 and 4 workers, interleaved round by round, and prints req/s, p50,
p99 and the speed-up over one worker. With more than one worker the metrics of every worker are
merged at scrape time (telemetry/multiprocess.py), so this is the price of exact numbers too.

Part 2 makes the same varied traffic (many routes, methods and statuses: about 1000 series) on a
1-worker and a 4-worker server, then times scrapes of /metrics on both: the 4-worker scrape merges
four workers' snapshots, the 1-worker scrape is the plain exporter. It checks that the 4-worker
scrape counts every request of the traffic.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402 - a sibling module, not a package
    Server,
    TraceReceiver,
    base_env,
    client_name,
    load,
    migrate,
    request,
    seed,
    stop_on_sigterm,
)

WORKER_COUNTS = (1, 2, 4)


def varied_traffic(port: int, post_id: int) -> int:
    """Requests over many (route, method, status) combinations; returns how many were sent."""
    _, _, login = request(
        port, "POST", "/api/v1/users/login", {"username": "bench", "password": "correct horse"}
    )
    token = login["access_token"]
    request(
        port,
        "POST",
        "/api/v1/users/register",
        {"username": "other", "email": "o@example.org", "password": "correct horse"},
    )
    _, _, other = request(
        port, "POST", "/api/v1/users/login", {"username": "other", "password": "correct horse"}
    )
    sent = 3
    for version in ("v1", "v2"):
        calls = [
            ("GET", f"/api/{version}/posts", None, None),
            ("GET", f"/api/{version}/posts/{post_id}", None, None),
            ("GET", f"/api/{version}/posts/999999", None, None),
            ("POST", f"/api/{version}/posts", {"title": "t", "body": "b"}, None),
            ("POST", f"/api/{version}/posts", {"title": "t", "body": "b"}, token),
            ("POST", f"/api/{version}/posts", {"title": ""}, token),
            ("PATCH", f"/api/{version}/posts/{post_id}", {"title": "x"}, other["access_token"]),
            ("PUT", f"/api/{version}/posts/{post_id}", {"title": "x", "body": "y"}, token),
            ("DELETE", f"/api/{version}/posts/999999", None, token),
            ("DELETE", f"/api/{version}/posts", None, None),
            ("GET", f"/api/{version}/todos", None, token),
            ("GET", f"/api/{version}/todos", None, None),
            ("POST", f"/api/{version}/todos", {"title": "t"}, token),
            ("GET", f"/api/{version}/todos/999999", None, token),
            ("PATCH", f"/api/{version}/todos/999999", {"completed": True}, token),
            ("GET", f"/api/{version}/users/me", None, token),
            ("GET", f"/api/{version}/users/me", None, None),
            ("GET", f"/api/{version}/users", None, token),
            (
                "POST",
                f"/api/{version}/users/login",
                {"username": "bench", "password": "nope1234"},
                None,
            ),
            ("POST", f"/api/{version}/users/login", {"username": "bench"}, None),
            (
                "POST",
                f"/api/{version}/users/register",
                {"username": "bench", "email": "b2@example.org", "password": "correct horse"},
                None,
            ),
            ("GET", f"/api/{version}/posts?per_page=0", None, None),
            ("GET", f"/api/{version}/nope", None, None),
        ]
        # OPTIONS and HEAD on every route: more (route, method) label sets, as real clients make
        calls += [("OPTIONS", path, None, None) for _, path, _, _ in calls[:12]]
        calls += [
            ("HEAD", f"/api/{version}/posts", None, None),
            ("HEAD", f"/api/{version}/posts/{post_id}", None, None),
        ]
        for _ in range(3):
            for method, path, body, auth in calls:
                request(port, method, path, body, auth)
                sent += 1
    return sent


def sample_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def time_scrapes(port: int, n: int) -> tuple[float, float, int, int]:
    """(p50 ms, p90 ms, series, bytes) of n scrapes."""
    times, body = [], b""
    for _ in range(n):
        started = time.perf_counter()
        status, _, body = request(port, "GET", "/metrics")
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200
    text = body.decode() if isinstance(body, bytes) else str(body)
    times.sort()
    return statistics.median(times), times[int(0.9 * (n - 1))], len(sample_lines(text)), len(text)


def counted_requests(port: int) -> float:
    _, _, body = request(port, "GET", "/metrics")
    text = body.decode() if isinstance(body, bytes) else str(body)
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in sample_lines(text)
        if line.startswith("http_server_request_duration_seconds_count")
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--scrapes", type=int, default=50)
    parser.add_argument("--scrape-only", action="store_true", help="skip the throughput part")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    stop_on_sigterm()
    receiver = TraceReceiver()
    client = client_name("auto")
    servers: dict[int, Server] = {}
    try:
        env = {
            **base_env(f"sqlite:///{tmp / 'bench.db'}"),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.otlp_endpoint("workers"),
        }
        migrate(env)
        for workers in WORKER_COUNTS:
            server = Server(f"{workers}w", env, tmp / f"{workers}w.log")
            server.start(workers)
            server.wait_live()
            servers[workers] = server
        post_id = seed(servers[1].port)
        path = f"/api/v1/posts/{post_id}"

        print(
            f"part 1: GET {path}, {args.connections} connections, full telemetry, client={client}"
        )
        results: dict[int, list] = {w: [] for w in WORKER_COUNTS}
        for round_number in range(0 if args.scrape_only else args.rounds):
            order = WORKER_COUNTS if round_number % 2 == 0 else WORKER_COUNTS[::-1]
            for workers in order:
                port = servers[workers].port
                load(client, port, path, args.connections, 2)  # warm-up
                result = load(client, port, path, args.connections, args.duration)
                results[workers].append(result)
                print(
                    f"  round {round_number + 1} workers={workers}: {result.rps:8.1f} req/s  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms"
                )
        summary = {}
        base = statistics.mean(r.rps for r in results[1]) if results[1] else 0
        print(f"\n{'workers':>8} {'req/s':>9} {'x 1 worker':>11} {'p50 ms':>8} {'p99 ms':>8}")
        for workers in WORKER_COUNTS if base else ():
            rps = statistics.mean(r.rps for r in results[workers])
            p50 = statistics.median(r.p50_ms for r in results[workers])
            p99 = statistics.median(r.p99_ms for r in results[workers])
            summary[workers] = {
                "rps": round(rps, 1),
                "speedup": round(rps / base, 2),
                "p50_ms": p50,
                "p99_ms": p99,
            }
            print(f"{workers:>8} {rps:>9.1f} {rps / base:>11.2f} {p50:>8.2f} {p99:>8.2f}")

        print(f"\npart 2: scrape cost after varied traffic ({args.scrapes} scrapes each)")
        scrape = {}
        for workers in (1, 4):
            port = servers[workers].port
            before = counted_requests(port)
            sent = varied_traffic(port, post_id)
            time.sleep(1.5)  # > the snapshot interval, so every worker's file is current
            counted = counted_requests(port) - before
            p50, p90, series, size = time_scrapes(port, args.scrapes)
            scrape[workers] = {
                "p50_ms": round(p50, 2),
                "p90_ms": round(p90, 2),
                "series": series,
                "bytes": size,
                "requests_sent": sent,
                "requests_counted": counted,
            }
            print(
                f"  workers={workers}: {series} series, {size / 1024:.0f} KiB, scrape p50 "
                f"{p50:.1f} ms, p90 {p90:.1f} ms; traffic {sent} requests, counted {counted:.0f}"
            )
        print(
            f"  merged 4-worker scrape costs {scrape[4]['p50_ms'] / scrape[1]['p50_ms']:.2f}x "
            "the 1-worker scrape"
        )
        print(json.dumps({"bench": "workers", "throughput": summary, "scrape": scrape}))
        return 0
    finally:
        for server in servers.values():
            server.stop()
        receiver.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
