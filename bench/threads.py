"""gunicorn's worker model, measured: sync and gthread workers with 2, 4 and 8 threads, 1, 2 and 4
workers, reached directly and through deploy/nginx.conf, on SQLite and PostgreSQL.

    .venv/bin/python bench/threads.py                                    # ~12 min
    .venv/bin/python bench/threads.py --database sqlite --workers 1 --rounds 2 --duration 2

For each database and worker count, one server per model is started the way production starts
blog-api (gunicorn.conf.py, telemetry as shipped: spans exported to a local OTLP receiver, the
access line written to the server's log), each also behind its own nginx running
deploy/nginx.conf (as tests/nginx_proxy.py adapts it). Round after round, every (model, path)
is loaded in turn with wrk's keep-alive connections on GET /api/v1/posts/<id>, in an order
rotated each round, so a drift of the machine's speed hits them alike. Printed: each
measurement, then a table of req/s (median and range), p99 and the server's CPU per request,
and each model's req/s as a ratio to the best model of the same database, workers and path.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import (  # noqa: E402 - a sibling module, not a package
    Database,
    Server,
    TraceReceiver,
    base_env,
    client_name,
    load,
    migrate,
    seed,
    stop_on_sigterm,
)

MODELS = {"sync": 1, "gthread2": 2, "gthread4": 4, "gthread8": 8}


def measure(server: Server, port: int, client: str, path: str, args) -> dict:
    """One warm-up and one measured load of `path` on `port`; the figures of the measured one."""
    load(client, port, path, args.connections, args.warmup, args.wrk_threads)
    before = server.cpu_seconds()
    result = load(client, port, path, args.connections, args.duration, args.wrk_threads)
    after = server.cpu_seconds()
    if result.errors:
        raise RuntimeError(f"{server.name}: {result.errors} errors under load")
    cpu_us = (after - before) * 1e6 / result.requests if before is not None else None
    return {"rps": result.rps, "p50_ms": result.p50_ms, "p99_ms": result.p99_ms, "cpu_us": cpu_us}


def run_group(kind: str, workers: int, models: list[str], vias: list[str], client, args, tmp):
    """Every model at `workers` workers on a fresh `kind` database: {(model, via): [figures]}."""
    from tests.nginx_proxy import Nginx

    database = Database(kind, tmp)
    receiver = TraceReceiver()
    env = base_env(database.url)
    migrate(env)
    servers, proxies = {}, {}
    try:
        for name in models:
            servers[name] = Server(
                f"{kind}-{workers}w-{name}",
                {
                    **env,
                    "GUNICORN_THREADS": str(MODELS[name]),
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.otlp_endpoint(name),
                },
                tmp / f"{kind}-{workers}-{name}.log",
            )
            servers[name].start(workers)
        for server in servers.values():
            server.wait_live()
        post_id = seed(next(iter(servers.values())).port)
        path = f"/api/v1/posts/{post_id}"
        if "nginx" in vias:
            for name, server in servers.items():
                proxies[name] = Nginx(f"127.0.0.1:{server.port}").__enter__()
        keys = list(itertools.product(models, vias))
        results: dict[tuple[str, str], list[dict]] = {key: [] for key in keys}
        for round_ in range(args.rounds):
            shift = round_ % len(keys)
            for name, via in keys[shift:] + keys[:shift]:
                port = servers[name].port if via == "direct" else proxies[name].port
                figures = measure(servers[name], port, client, path, args)
                receiver.drain()
                results[(name, via)].append(figures)
                print(
                    f"  {kind:10} {workers}w {name:8} {via:6} round {round_ + 1}: "
                    f"{figures['rps']:7.0f} req/s  p99 {figures['p99_ms']:6.1f} ms  "
                    f"cpu {figures['cpu_us'] or 0:5.0f} µs/req",
                    flush=True,
                )
        return results
    finally:
        for proxy in proxies.values():
            proxy.__exit__()
        for server in servers.values():
            server.stop()
        receiver.close()
        database.drop()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--database", default="sqlite,postgresql")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--workers", default="1,2,4")
    p.add_argument("--via", default="direct,nginx")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--wrk-threads", type=int, default=2)
    args = p.parse_args(argv)
    kinds, models = args.database.split(","), args.models.split(",")
    workers, vias = [int(w) for w in args.workers.split(",")], args.via.split(",")
    if set(models) - set(MODELS) or set(vias) - {"direct", "nginx"}:
        p.error(f"models: {', '.join(MODELS)}; via: direct, nginx")
    if not (1 <= args.rounds <= 20 and 1 <= args.duration <= 60 and max(workers) <= 8):
        p.error("rounds 1-20, duration 1-60 s, at most 8 workers")
    client = client_name("wrk")
    stop_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="blog-api-threads-"))
    table = {}
    try:
        print(
            f"GET /api/v1/posts/<id>, wrk -t{args.wrk_threads} -c{args.connections} "
            f"(keep-alive), {args.rounds} rounds x {args.duration:g} s"
        )
        for kind, count in itertools.product(kinds, workers):
            for (name, via), rows in run_group(
                kind, count, models, vias, client, args, tmp
            ).items():
                table[(kind, count, name, via)] = rows
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("\ndatabase   workers model    via     req/s (range)          p99 ms  cpu µs/req  / best")
    summary = []
    for kind, count, via in itertools.product(kinds, workers, vias):
        medians = {
            name: statistics.median(r["rps"] for r in table[(kind, count, name, via)])
            for name in models
        }
        best = max(medians.values())
        for name in models:
            rows = table[(kind, count, name, via)]
            rps = [r["rps"] for r in rows]
            cpu = [r["cpu_us"] for r in rows if r["cpu_us"] is not None]
            line = {
                "database": kind,
                "workers": count,
                "model": name,
                "via": via,
                "rps": round(medians[name]),
                "range": [round(min(rps)), round(max(rps))],
                "p99_ms": round(statistics.median(r["p99_ms"] for r in rows), 1),
                "cpu_us": round(statistics.median(cpu)) if cpu else None,
                "of_best": round(medians[name] / best, 2),
            }
            summary.append(line)
            print(
                f"{kind:10} {count:7} {name:8} {via:6} {line['rps']:6} "
                f"({line['range'][0]}-{line['range'][1]})".ljust(56)
                + f" {line['p99_ms']:6.1f}  {line['cpu_us'] or 0:10}  {line['of_best']:5.2f}"
            )
    print(json.dumps({"bench": "threads", "results": summary}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
