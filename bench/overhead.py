"""What does telemetry cost? The same load on blog-api with ours, without, and with the anchors.

Variants (`--variants`, default all; `off` is always measured, as the baseline):

- off:            OTEL_SDK_DISABLED=true;
- floor:          bench/floor_app.py: plain Flask answering the route with the same JSON through
                  the database driver directly, no telemetry (what Flask itself costs);
- ours-full:      the default: metrics, and every request and SQL statement traced and exported
                  over OTLP/HTTP to a receiver this script runs;
- ours-metrics:   OTEL_TRACES_SAMPLER=always_off;
- contrib-full:   ours-full with TELEMETRY_INSTRUMENTATION=contrib (the OpenTelemetry contrib
                  Flask and SQLAlchemy instrumentations, the reference);
- prometheus-flask-exporter: telemetry off, prometheus_flask_exporter on the app (metrics only);
- ddtrace:        telemetry off, Datadog's ddtrace (Flask and SQLAlchemy integrations) sending to
                  the same receiver, which also answers as a Datadog agent.

The anchors come from bench/anchor_apps.py and need the bench's own venv (`make bench`). Every
variant is its own gunicorn on one fresh, seeded SQLite file. Before measuring, each is checked:
GET answers 200, /metrics is what the variant serves, traced variants' spans arrive (a server span
and SQL spans). Each round measures every variant once, one at a time, in a rotating order, with
`off` measured again between any two (off, A, off, B, ..., off): each measurement is compared with
the mean of the `off` ones just before and after it, which cancels the machine's drift in speed
(20-40 % over a minute on a shared machine). Every measurement follows a warm-up; after a traced
variant the script waits until its exports settle, so none spills into the next measurement.
Prints a table and, last, one JSON line: medians over rounds, with the range of the ratios.

    .venv-bench/bin/python bench/overhead.py [--variants off,ours-full,...] [--rounds 6]
        [--duration 5] [--warmup 1] [--connections 8] [--workers 1]
        [--path /api/v1/posts/{post_id}] [--client auto|wrk|python]
        [--env ours-full:OTEL_BSP_MAX_EXPORT_BATCH_SIZE=512 ...]   # try a setting on one variant
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (  # noqa: E402 - a sibling module, not a package
    BSP_DELAY_S,
    Result,
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

# No telemetry and no access line (which the app writes with telemetry off too).
OFF = {"OTEL_SDK_DISABLED": "true", "ACCESS_LOG": "false"}
QUIET = {"ACCESS_LOG": "false"}
# ddtrace sends traces to the receiver and nothing else anywhere: no runtime metrics (DogStatsD),
# remote configuration, instrumentation telemetry, profiler, crash tracker or symbol upload.
# SQLAlchemy on (it is off by default in favour of the DB-API integrations) and sqlite3 off, so
# there is one span per SQL statement, as with ours.
DDTRACE = {
    "DD_SERVICE": "blog-api",
    "DD_PATCH_MODULES": "sqlalchemy:true,sqlite3:false",
    "DD_RUNTIME_METRICS_ENABLED": "false",
    "DD_REMOTE_CONFIGURATION_ENABLED": "false",
    "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
    "DD_PROFILING_ENABLED": "false",
    "DD_CRASHTRACKING_ENABLED": "false",
    "DD_DATA_STREAMS_ENABLED": "false",
    "DD_TRACE_STATS_COMPUTATION_ENABLED": "false",
    "DD_SYMBOL_DATABASE_UPLOAD_ENABLED": "false",
}
DD_WRITER_INTERVAL_S = 1.0  # ddtrace's default DD_TRACE_WRITER_INTERVAL_SECONDS


@dataclass
class Measurement:
    result: Result
    cpu_us: float | None  # server CPU per request, all its processes, incl. the export after
    spans: int  # spans received from this variant for this measurement
    traces: int  # Datadog payloads say how many traces they carry
    # The `off` measurements just before and just after this one: its baseline. The machine's
    # speed drifts; a baseline on both sides cancels a steady drift.
    around: tuple[Measurement, ...] = ()

    def against_off(self, value) -> float:
        """`value(self)` over the mean of `value(off)` around it."""
        return value(self) / statistics.fmean(value(o) for o in self.around)


@dataclass
class Variant:
    env: dict
    metrics: int = 200  # what GET /metrics answers
    sender: str | None = None  # spans counted under this name at the receiver
    traced: bool = False  # exports spans: wait for them to settle after each measurement
    expect: tuple[str, ...] = ()  # span labels that must arrive (prefix or '(suffix)')
    app: str = "blog_api:create_app()"
    wrapper: tuple[str, ...] = ()
    needs: str | None = None  # a module only the bench venv has
    settle_s: float = BSP_DELAY_S + 0.5
    results: list[Measurement] = field(default_factory=list)  # one per round


def variants() -> dict[str, Variant]:
    otlp_checks = ("SERVER ", "CLIENT ")
    return {
        "off": Variant(OFF, metrics=404),
        "floor": Variant(OFF, metrics=404, app="floor_app:create_app()"),
        # Telemetry alone, as the anchors have it (no access line); then the defaults, with it.
        "ours-full": Variant(QUIET, sender="ours-full", traced=True, expect=otlp_checks),
        "ours-metrics": Variant(
            {**QUIET, "OTEL_TRACES_SAMPLER": "always_off"}, sender="ours-metrics"
        ),
        "ours-full-access-log": Variant(
            {}, sender="ours-full-access-log", traced=True, expect=otlp_checks
        ),
        "contrib-full": Variant(
            {**QUIET, "TELEMETRY_INSTRUMENTATION": "contrib"},
            sender="contrib-full",
            traced=True,
            expect=otlp_checks,
        ),
        "prometheus-flask-exporter": Variant(
            OFF, app="anchor_apps:prometheus_app()", needs="prometheus_flask_exporter"
        ),
        "ddtrace": Variant(
            {**OFF, **DDTRACE},
            metrics=404,
            sender="ddtrace",
            traced=True,
            expect=("flask.request (flask)", "(sqlalchemy)"),
            app="anchor_apps:ddtrace_app()",
            wrapper=("ddtrace-run",),
            needs="ddtrace",
            settle_s=DD_WRITER_INTERVAL_S + 0.5,
        ),
    }


def variant_env(name: str, v: Variant, receiver: TraceReceiver) -> dict:
    """The variant's own environment, its spans pointed at `receiver`."""
    extra = dict(v.env)
    if name.startswith(("ours-", "contrib-")):
        extra["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"] = receiver.otlp_endpoint(v.sender)
    if name == "ddtrace":
        extra["DD_TRACE_AGENT_URL"] = receiver.url
    return extra


def parse_args(argv, known: dict[str, Variant]):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default="all", help=f"comma-separated, of: {', '.join(known)}")
    p.add_argument("--rounds", type=int, default=6, help="rounds of every variant")
    p.add_argument("--duration", type=float, default=5, help="seconds per measurement")
    p.add_argument("--warmup", type=float, default=1, help="seconds of load before each one")
    p.add_argument("--connections", type=int, default=8, help="concurrent client connections")
    p.add_argument("--workers", type=int, default=1, help="gunicorn workers (WEB_CONCURRENCY)")
    p.add_argument("--path", default="/api/v1/posts/{post_id}", help="{post_id}: the seeded post")
    p.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--wrk-threads", type=int, default=1)
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="VARIANT:NAME=VALUE",
        help="extra environment for one variant, e.g. ours-full:OTEL_BSP_MAX_EXPORT_BATCH_SIZE=512",
    )
    args = p.parse_args(argv)
    if not (1 <= args.rounds <= 100 and 1 <= args.duration <= 600 and 0 <= args.warmup <= 60):
        p.error("rounds 1-100, duration 1-600 s, warmup 0-60 s")
    if not (1 <= args.connections <= 1000 and 1 <= args.workers <= 64):
        p.error("connections 1-1000, workers 1-64")
    missing = [n for n, v in known.items() if v.needs and not importlib.util.find_spec(v.needs)]
    if args.variants == "all":
        chosen = [n for n in known if n not in missing]
        if missing:
            print(f"skipping {', '.join(missing)}: not installed (make bench)", file=sys.stderr)
    else:
        chosen = ["off"] + [n for n in args.variants.split(",") if n and n != "off"]
        if unknown := [n for n in chosen if n not in known]:
            p.error(f"unknown variants {unknown}; known: {', '.join(known)}")
        if needed := [n for n in chosen if n in missing]:
            p.error(
                f"not installed here: {', '.join(needed)} (the bench venv has them: make bench)"
            )
    for item in args.env:
        name, _, kv = item.partition(":")
        if name not in chosen or "=" not in kv:
            p.error(f"--env {item}: want VARIANT:NAME=VALUE for a chosen variant")
        known[name].env = {**known[name].env, **dict([kv.split("=", 1)])}
    return args, {n: known[n] for n in chosen}


def preflight(servers, chosen, receiver, path) -> None:
    """Check that every variant serves what it should, before any number is taken."""
    checked = time.monotonic()
    for name in chosen:
        status = request(servers[name].port, "GET", path)[0]
        if status != 200:
            raise RuntimeError(f"{name}: GET {path} answered {status}")
    for name, v in chosen.items():
        status, _, body = request(servers[name].port, "GET", "/metrics")
        note = ""
        if name == "prometheus-flask-exporter" and status == 200:
            lines = [
                line
                for line in body.decode().splitlines()
                if line.startswith("flask_http_request_duration_seconds_count{")
            ]
            status = status if lines else "200 without the request metric"
            note = "  " + "; ".join(lines)
        if status != v.metrics:
            raise RuntimeError(f"{name}: GET /metrics answered {status}, expected {v.metrics}")
        print(f"  {name:26} GET {path} 200, /metrics {status}{note}")
    for v in chosen.values():
        if v.traced:
            receiver.wait_quiet(v.sender, v.settle_s, since=checked)
    receiver.drain()
    for name, v in chosen.items():
        if not v.traced:
            continue
        labels = receiver.kinds[v.sender]
        got = ", ".join(f"{label} {n}" for label, n in labels.most_common())
        print(f"  {name:26} spans so far: {got or 'none'}")
        for want in v.expect:
            if not any(label.startswith(want) or label.endswith(want) for label in labels):
                raise RuntimeError(f"{name}: no span {want!r} arrived at the receiver: {got}")
    if "contrib-full" in chosen and "ours-full" in chosen:
        if set(receiver.kinds["contrib-full"]) == set(receiver.kinds["ours-full"]):
            print("  note: contrib-full made the same spans as ours-full (setting not honoured?)")


def measure(name, v, server, receiver, args, client, path) -> Measurement:
    """One measurement of one variant: warm-up, load, the exports' flush; added to v.results."""
    server.check_alive()
    if args.warmup:
        load(client, server.port, path, args.connections, args.warmup, args.wrk_threads)
        if v.traced:  # let the warm-up's spans leave before the clock starts
            receiver.wait_quiet(v.sender, v.settle_s)
    receiver.drain()
    spans_before, traces_before = dict(receiver.spans), receiver.traces[v.sender]
    cpu_before = server.cpu_seconds()
    result = load(client, server.port, path, args.connections, args.duration, args.wrk_threads)
    if v.traced:  # the exports after the load are part of its cost
        receiver.wait_quiet(v.sender, v.settle_s)
    server.check_alive()
    cpu_after = server.cpu_seconds()
    receiver.drain()
    cpu_us = None
    if cpu_before is not None and cpu_after is not None and result.requests:
        cpu_us = (cpu_after - cpu_before) * 1e6 / result.requests
    new = {k: n - spans_before.get(k, 0) for k, n in receiver.spans.items()}
    if spills := {k: n for k, n in new.items() if n and k != v.sender}:
        print(f"  WARNING: spans of {spills} arrived while measuring {name}", file=sys.stderr)
    m = Measurement(result, cpu_us, new.get(v.sender, 0), receiver.traces[v.sender] - traces_before)
    v.results.append(m)
    print(
        f"  {name:26} {result.rps:8.1f} req/s  p50 {result.p50_ms:6.2f}  p99 {result.p99_ms:6.2f}"
        f" ms  cpu {'-' if cpu_us is None else f'{cpu_us:.0f}':>5} µs/req"
        f"  spans {m.spans if v.sender else '-':>6}  errors {result.errors}",
        flush=True,
    )
    return m


def summarize(chosen: dict[str, Variant]) -> dict:
    """Per variant: medians over rounds, each measurement against the `off` ones around it."""
    out = {}
    for name, v in chosen.items():
        off = name == "off"
        ratios = [1.0 if off else m.against_off(lambda x: x.result.rps) for m in v.results]
        requests = sum(m.result.requests for m in v.results)
        cpu = [m for m in v.results if m.cpu_us is not None and all(o.cpu_us for o in m.around)]
        out[name] = {
            "ratio": round(statistics.median(ratios), 3),
            "ratio_min": round(min(ratios), 3),
            "ratio_max": round(max(ratios), 3),
            "rps": _median([m.result.rps for m in v.results], 1),
            "cpu_us_per_request": _median([m.cpu_us for m in v.results if m.cpu_us is not None], 0),
            "cpu_us_added": 0.0
            if off
            else _median([m.cpu_us - statistics.fmean(o.cpu_us for o in m.around) for m in cpu], 0),
            "p50_ms": _median([m.result.p50_ms for m in v.results], 2),
            "p99_ms": _median([m.result.p99_ms for m in v.results], 2),
            "p99_vs_off": 1.0
            if off
            else _median([m.against_off(lambda x: x.result.p99_ms) for m in v.results], 2),
            "spans_per_request": (
                round(sum(m.spans for m in v.results) / max(requests, 1), 2) if v.sender else None
            ),
            "requests": requests,
            "errors": sum(m.result.errors for m in v.results),
        }
        if traces := sum(m.traces for m in v.results):
            out[name]["traces_per_request"] = round(traces / max(requests, 1), 2)
    return out


def _median(values, digits):
    return round(statistics.median(values), digits) if values else None


def print_table(summary: dict) -> None:
    widths = (26, 6, 11, 7, 11, 7, 7, 7, 9, 6)

    def line(cells) -> str:
        return "  ".join(
            str(c).rjust(w) if i else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        )

    print(
        line(
            ("variant", "ratio", "(range)", "req/s", "+cpu µs/req", "p50 ms", "p99 ms")
            + ("p99/off", "spans/req", "errors")
        )
    )
    for name, s in summary.items():
        row = (
            name,
            f"{s['ratio']:.3f}",
            f"{s['ratio_min']:.2f}..{s['ratio_max']:.2f}",
            f"{s['rps']:.0f}",
            "-" if s["cpu_us_added"] is None else f"{s['cpu_us_added']:+.0f}",
            f"{s['p50_ms']:.2f}",
            f"{s['p99_ms']:.2f}",
            f"{s['p99_vs_off']:.2f}",
            "-" if s["spans_per_request"] is None else f"{s['spans_per_request']:.2f}",
            s["errors"],
        )
        print(line(row))


def versions() -> dict:
    out = {}
    for dist in ("opentelemetry-sdk", "prometheus-flask-exporter", "ddtrace"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def main(argv=None) -> int:
    args, chosen = parse_args(argv, variants())
    try:
        client = client_name(args.client)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 2
    stop_on_sigterm()
    tmp = Path(tempfile.mkdtemp(prefix="blog-api-bench-"))
    receiver = TraceReceiver()
    env = base_env(f"sqlite:///{tmp / 'bench.db'}")
    migrate(env)
    servers: dict[str, Server] = {}
    for name, v in chosen.items():
        extra = variant_env(name, v, receiver)
        if name == "prometheus-flask-exporter" and args.workers > 1:
            extra["PROMETHEUS_MULTIPROC_DIR"] = str(tmp / "prometheus")
            (tmp / "prometheus").mkdir()
        servers[name] = Server(name, {**env, **extra}, tmp / f"{name}.log", v.app, v.wrapper)
    try:
        # `off` takes the seed; the others then find it.
        servers["off"].start(args.workers)
        servers["off"].wait_live()
        path = args.path.format(post_id=seed(servers["off"].port))
        for name in chosen:
            if name != "off":
                servers[name].start(args.workers)
        for server in servers.values():
            server.wait_live()

        print(f"blog-api telemetry overhead: GET {path}")
        print(
            f"  gunicorn workers={args.workers}  connections={args.connections}  "
            f"{args.rounds} rounds x {args.duration:g}s (+{args.warmup:g}s warm-up each)  "
            f"client={client}  cpus={os.cpu_count()}  {versions()}"
        )
        preflight(servers, chosen, receiver, path)
        others = [name for name in chosen if name != "off"]

        def run(name: str) -> Measurement:
            return measure(name, chosen[name], servers[name], receiver, args, client, path)

        for rnd in range(args.rounds):
            order = others[rnd % len(others) :] + others[: rnd % len(others)] if others else []
            if rnd % 2:
                order.reverse()
            print(f"round {rnd + 1}")
            before = run("off")
            for name in order:  # off, A, off, B, off, ...: every variant between two baselines
                measured = run(name)
                after = run("off")
                measured.around, before = (before, after), after

        summary = summarize(chosen)
        print()
        print_table(summary)
        for name in ("ours-full", "contrib-full"):
            if name in chosen:
                trace_exporter = (
                    (request(servers[name].port, "GET", "/health")[2] or {})
                    .get("checks", {})
                    .get("trace_exporter", {})
                )
                summary[name]["dropped_spans"] = trace_exporter.get("dropped_spans")
                if trace_exporter.get("dropped_spans"):
                    print(f"WARNING: {name} dropped spans; it looks cheaper than it is")
        if receiver.unexpected:
            print(f"requests the receiver did not expect: {dict(receiver.unexpected)}")
        if any(s["errors"] for s in summary.values()):
            print("WARNING: errors during load; the numbers are suspect")
        print(
            json.dumps(
                {
                    "bench": "telemetry_overhead",
                    "path": path,
                    "client": client,
                    "workers": args.workers,
                    "connections": args.connections,
                    "duration_s": args.duration,
                    "warmup_s": args.warmup,
                    "rounds": args.rounds,
                    "versions": versions(),
                    "env": args.env,
                    "variants": summary,
                    "unexpected_requests": dict(receiver.unexpected),
                }
            )
        )
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the servers", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        for server in servers.values():
            if server.proc is not None:
                print(f"--- {server.name} log tail ---\n{server.log_tail()}", file=sys.stderr)
        return 1
    finally:
        for server in servers.values():
            try:
                server.stop()
            except Exception as exc:  # noqa: BLE001 - stop the others anyway
                print(f"stopping {server.name}: {exc}", file=sys.stderr)
        receiver.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
