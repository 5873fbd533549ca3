"""gunicorn's worker model: sync workers against gthread workers, on the benchmark's route.

    .venv-bench/bin/python bench/threads.py                   # 4 rounds x 5 s
    .venv-bench/bin/python bench/threads.py --rounds 2 --duration 3 --threads 8

Two servers started the way production starts blog-api (gunicorn.conf.py, full telemetry, spans
exported to a local OTLP receiver), both on one migrated SQLite file: one with
GUNICORN_THREADS=1 (the sync worker) and one with GUNICORN_THREADS=--threads (gthread). They are
loaded in turn, round after round (interleaved, so a drift of the machine's speed hits both), on
GET /api/v1/posts/<id>. Printed: req/s, p50, p99 and server CPU per request of each, and the
median ratio gthread / sync of req/s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402 - a sibling module, not a package
    Server,
    TraceReceiver,
    base_env,
    client_name,
    load,
    migrate,
    seed,
    stop_on_sigterm,
)


def measure(server: Server, client: str, path: str, connections: int, seconds: float):
    """(Result, server CPU µs per request) of one load of `path`."""
    before = server.cpu_seconds()
    result = load(client, server.port, path, connections, seconds)
    after = server.cpu_seconds()
    cpu_us = None
    if before is not None and after is not None and result.requests:
        cpu_us = (after - before) * 1e6 / result.requests
    if result.errors:
        raise RuntimeError(f"{server.name}: {result.errors} errors under load")
    return result, cpu_us


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=8, help="GUNICORN_THREADS of the gthread one")
    p.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    args = p.parse_args(argv)
    if not (1 <= args.rounds <= 50 and 1 <= args.duration <= 120 and 2 <= args.threads <= 64):
        p.error("rounds 1-50, duration 1-120 s, threads 2-64")
    client = client_name(args.client)
    stop_on_sigterm()

    tmp = Path(tempfile.mkdtemp(prefix="blog-api-threads-"))
    receiver = TraceReceiver()
    env = base_env(f"sqlite:///{tmp / 'bench.db'}")
    migrate(env)
    models = {"sync": "1", "gthread": str(args.threads)}
    servers = {
        name: Server(
            name,
            {
                **env,
                "GUNICORN_THREADS": threads,
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.otlp_endpoint(name),
            },
            tmp / f"{name}.log",
        )
        for name, threads in models.items()
    }
    try:
        for server in servers.values():
            server.start(args.workers)
        for server in servers.values():
            server.wait_live()
        post_id = seed(servers["sync"].port)
        path = f"/api/v1/posts/{post_id}"
        print(
            f"GET {path}, {args.workers} worker(s), {args.connections} connections, "
            f"client={client}, {args.rounds} rounds x {args.duration:g} s"
        )
        results: dict[str, list] = {name: [] for name in servers}
        for round_ in range(args.rounds):
            order = list(servers) if round_ % 2 == 0 else list(reversed(servers))
            for name in order:
                load(client, servers[name].port, path, args.connections, args.warmup)
                result, cpu_us = measure(
                    servers[name], client, path, args.connections, args.duration
                )
                receiver.drain()
                results[name].append((result, cpu_us))
                print(
                    f"  round {round_ + 1} {name:8} {result.rps:8.1f} req/s  "
                    f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms  "
                    f"cpu {'-' if cpu_us is None else f'{cpu_us:.0f}'} µs/req"
                )
        ratios = [
            g[0].rps / s[0].rps for g, s in zip(results["gthread"], results["sync"], strict=True)
        ]
        print("\nworker   req/s (median)  p50 ms  p99 ms  cpu µs/req")
        for name, rows in results.items():
            cpu = [c for _, c in rows if c is not None]
            print(
                f"{name:8} {statistics.median(r.rps for r, _ in rows):14.1f}"
                f"  {statistics.median(r.p50_ms for r, _ in rows):6.2f}"
                f"  {statistics.median(r.p99_ms for r, _ in rows):6.2f}"
                f"  {statistics.median(cpu) if cpu else float('nan'):10.0f}"
            )
        print(
            f"gthread / sync req/s: median {statistics.median(ratios):.3f} "
            f"(range {min(ratios):.3f} .. {max(ratios):.3f})"
        )
    finally:
        for server in servers.values():
            server.stop()
        receiver.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
