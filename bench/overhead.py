"""What does telemetry cost? The same load against blog-api with telemetry on and off.

Starts two gunicorn servers on one fresh SQLite file, both on 127.0.0.1:

- ON:  metrics + traces, spans exported over OTLP/HTTP to a receiver this script runs itself;
- OFF: OTEL_SDK_DISABLED=true (no spans, no metrics, /metrics answers 404),

seeds one user and one post through the API, then runs `--rounds` rounds. In each round both
servers get the same load, one at a time (never both at once), each measurement preceded by a
short warm-up; the order alternates ON/OFF, OFF/ON, ... so slow drift hurts neither side. After an
ON measurement the script waits until the batch span processor has flushed, so no export spills
into the next OFF measurement.

Load comes from `wrk --latency` when it is installed, else from a Python client (threads,
http.client). Prints a table and, last, one JSON line.

    .venv/bin/python bench/overhead.py [--path /api/v1/posts/{post_id}] [--workers 1]
        [--connections 8] [--duration 10] [--rounds 5] [--warmup 2] [--client auto|wrk|python]
        [--on-env OTEL_TRACES_SAMPLER=always_off ...]   # try a setting on the ON server
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GUNICORN = REPO / ".venv" / "bin" / "gunicorn"
HOST = "127.0.0.1"
DEFAULT_PATH = "/api/v1/posts/{post_id}"
# The SDK's default OTEL_BSP_SCHEDULE_DELAY (ms): the longest a finished span waits for export.
BSP_DELAY_S = int(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "5000")) / 1000


# --------------------------------------------------------------------------- OTLP receiver
class SpanReceiver:
    """A minimal OTLP/HTTP trace receiver: answers 200 to POST /v1/traces and counts spans.

    Bodies are only stored while load runs and decoded between measurements (`drain()`), so the
    receiver takes as little CPU as possible from the server under test on a small machine.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: list[bytes] = []
        self.posts = 0
        self.bytes = 0
        self.spans = 0
        self.last_post = 0.0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                ok = self.path == "/v1/traces"
                if ok:
                    with receiver._lock:
                        receiver._bodies.append(body)
                        receiver.posts += 1
                        receiver.bytes += len(body)
                        receiver.last_post = time.monotonic()
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.endpoint = f"http://{HOST}:{self.server.server_port}/v1/traces"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def drain(self) -> int:
        """Decode the stored bodies, add their spans to `self.spans`; return the new spans."""
        with self._lock:
            bodies, self._bodies = self._bodies, []
        new = 0
        try:
            from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                ExportTraceServiceRequest,
            )
        except ImportError:  # opentelemetry-proto is a dev dependency; count posts only
            return 0
        for body in bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    new += len(scope_spans.spans)
        self.spans += new
        return new

    def wait_quiet(self, quiet_s: float, limit_s: float) -> None:
        """Wait until no POST arrived for `quiet_s` seconds (at most `limit_s` in all)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if time.monotonic() - max(self.last_post, 0.0) >= quiet_s:
                return
            time.sleep(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------- servers
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def request(port: int, method: str, path: str, body=None, token: str | None = None):
    """One HTTP request; returns (status, headers, parsed JSON or raw bytes)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        headers = {}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw
        return resp.status, dict(resp.getheaders()), payload
    finally:
        conn.close()


@dataclass
class Server:
    name: str
    env: dict
    log_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def start(self, workers: int) -> None:
        env = {**self.env, "HOST": HOST, "PORT": str(self.port), "WEB_CONCURRENCY": str(workers)}
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [GUNICORN, "-c", "gunicorn.conf.py", "blog_api:create_app()"],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it cleanly
        )

    def wait_live(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} server exited early:\n{self.log_tail()}")
            try:
                if request(self.port, "GET", "/health/live")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} server not live after {timeout_s}s:\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(
                f"{self.name} server is gone (something outside the benchmark stopped it?):\n"
                f"{self.log_tail()}"
            )

    def worker_pids(self) -> list[int]:
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True
        ).stdout
        return [int(p) for p in out.split()]

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the master and its workers so far (Linux /proc), or None."""
        total = 0
        try:
            for pid in (self.proc.pid, *self.worker_pids()):
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
        except (OSError, IndexError, ValueError):
            return None
        return total / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)  # gunicorn's graceful_timeout is 10 s
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()
        self.proc = None


def base_env(db_url: str) -> dict:
    """The parent's environment minus anything that would change the app's behaviour."""
    drop = (
        "OTEL_",
        "DATABASE_URL",
        "REDIS_URL",
        "METRICS_",
        "GUNICORN_",
        "JWT_",
        "WEB_CONCURRENCY",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    env.update(
        DATABASE_URL=db_url,
        SECRET_KEY="bench-secret-key-not-for-production-0123456789",
        APP_ENV="production",
        LOG_LEVEL="WARNING",
        BCRYPT_ROUNDS="4",
        PYTHONUNBUFFERED="1",
    )
    return env


def seed(port: int) -> int:
    """Register a user, log in, publish a post; return the post's id."""
    user = {"username": "bench", "email": "bench@example.org", "password": "correct horse"}
    status, _, payload = request(port, "POST", "/api/v1/users/register", user)
    if status != 201:
        raise RuntimeError(f"register: {status} {payload}")
    login = {"username": user["username"], "password": user["password"]}
    status, _, payload = request(port, "POST", "/api/v1/users/login", login)
    if status != 200:
        raise RuntimeError(f"login: {status} {payload}")
    post = {"title": "Benchmark post", "body": "The post every benchmark request reads. " * 10}
    status, _, payload = request(port, "POST", "/api/v1/posts", post, payload["access_token"])
    if status != 201:
        raise RuntimeError(f"create post: {status} {payload}")
    return payload["id"]


# --------------------------------------------------------------------------- load generators
@dataclass
class Result:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # non-2xx/3xx responses plus socket errors
    cpu_ms: float | None = None  # server CPU (all its processes) per request, incl. span export


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS_MS[unit]


def run_wrk(url: str, connections: int, duration: float, threads: int) -> Result:
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "5s",
        "--latency",
        url,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
    out = proc.stdout
    try:
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        total, secs = re.search(r"(\d+) requests in ([\d.]+\w+),", out).groups()
        p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
        p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    except AttributeError as exc:
        raise RuntimeError(
            f"could not parse wrk output (exit {proc.returncode}):\n{out}{proc.stderr}"
        ) from exc
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    return Result(int(total), _ms(secs) / 1000, rps, p50, p99, errors)


def run_python(port: int, path: str, connections: int, duration: float) -> Result:
    """N threads, each with a keep-alive http.client connection (reopened when the server closes
    it, as gunicorn's sync worker does after every response). Bounded by time and by count."""
    max_per_thread = 1_000_000
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    stop_at = time.monotonic() + duration

    def worker(i: int) -> None:
        conn = None
        mine = latencies[i]
        while time.monotonic() < stop_at and len(mine) < max_per_thread:
            if conn is None:
                conn = http.client.HTTPConnection(HOST, port, timeout=5)
            started = time.perf_counter()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                conn = None
                continue
            mine.append(time.perf_counter() - started)
            if resp.status >= 400:
                errors[i] += 1
            if resp.will_close:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    started = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(duration + 10)
    elapsed = time.monotonic() - started
    every = sorted(x for lst in latencies for x in lst)
    if not every:
        raise RuntimeError("the Python client completed no request")

    def pct(q: float) -> float:
        return every[min(len(every) - 1, int(q * len(every)))] * 1000

    return Result(len(every), elapsed, len(every) / elapsed, pct(0.50), pct(0.99), sum(errors))


# --------------------------------------------------------------------------- the run
def metric_count(port: int, route: str) -> int | None:
    """http_server_request_duration_seconds_count summed over the series of `route`."""
    status, _, body = request(port, "GET", "/metrics")
    if status != 200:
        return None
    text = body.decode() if isinstance(body, bytes) else str(body)
    total = 0
    for line in text.splitlines():
        if line.startswith("http_server_request_duration_seconds_count{") and (
            f'http_route="{route}"' in line
        ):
            total += int(float(line.rsplit(" ", 1)[1]))
    return total


def fmt_row(cols, widths) -> str:
    return "  ".join(str(c).rjust(w) for c, w in zip(cols, widths, strict=True))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--path", default=DEFAULT_PATH, help="route to load ({post_id}: the seeded post)"
    )
    p.add_argument("--workers", type=int, default=1, help="gunicorn workers (WEB_CONCURRENCY)")
    p.add_argument("--connections", type=int, default=8, help="concurrent client connections")
    p.add_argument("--duration", type=float, default=10, help="seconds per measurement")
    p.add_argument("--rounds", type=int, default=5, help="rounds of ON + OFF")
    p.add_argument("--warmup", type=float, default=2, help="seconds of load before each one")
    p.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1)")
    p.add_argument(
        "--on-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for the ON server, e.g. OTEL_TRACES_SAMPLER=always_off",
    )
    args = p.parse_args(argv)
    if not (1 <= args.rounds <= 100 and 1 <= args.duration <= 600 and 0 <= args.warmup <= 60):
        p.error("rounds 1-100, duration 1-600 s, warmup 0-60 s")
    if not (1 <= args.connections <= 1000 and 1 <= args.workers <= 64):
        p.error("connections 1-1000, workers 1-64")
    if any("=" not in kv for kv in args.on_env):
        p.error("--on-env takes NAME=VALUE")

    tool = args.client
    if tool == "auto":
        tool = "wrk" if shutil.which("wrk") else "python"
    if tool == "wrk" and not shutil.which("wrk"):
        p.error("wrk is not installed (apt-get install wrk), use --client python")
    tool_desc = (
        f"wrk ({subprocess.run(['wrk', '-v'], capture_output=True, text=True).stdout.split()[1]},"
        f" {args.wrk_threads} thread(s))"
        if tool == "wrk"
        else "python http.client threads"
    )

    # SIGTERM (e.g. from a CI timeout) ends the run like Ctrl-C: servers are still stopped.
    def on_sigterm(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)

    tmp = Path(tempfile.mkdtemp(prefix="blog-api-bench-"))
    receiver = SpanReceiver()
    env = base_env(f"sqlite:///{tmp / 'bench.db'}")
    on_env = {**env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.endpoint}
    on_env.update(kv.split("=", 1) for kv in args.on_env)
    on = Server("ON", on_env, tmp / "on.log")
    off = Server("OFF", {**env, "OTEL_SDK_DISABLED": "true"}, tmp / "off.log")
    servers = {"ON": on, "OFF": off}
    rows: list[tuple[int, str, Result, int]] = []
    try:
        # The OFF server creates the tables and takes the seed; the ON one then finds them.
        off.start(args.workers)
        off.wait_live()
        post_id = seed(off.port)
        on.start(args.workers)
        on.wait_live()
        path = args.path.format(post_id=post_id)

        # Honesty checks before any number is taken.
        checks = {}
        for s in (on, off):
            status, headers, _ = request(s.port, "GET", path)
            if not 200 <= status < 400:
                raise RuntimeError(f"{s.name}: GET {path} answered {status}")
            checks[s.name] = {
                "status": status,
                "traceresponse": "traceresponse" in {k.lower() for k in headers},
                "metrics_status": request(s.port, "GET", "/metrics")[0],
            }
        if checks["OFF"]["metrics_status"] != 404:
            raise RuntimeError(f"OFF server answers {checks['OFF']['metrics_status']} on /metrics")
        if checks["ON"]["metrics_status"] != 200 or not checks["ON"]["traceresponse"]:
            raise RuntimeError(f"ON server does not look instrumented: {checks['ON']}")

        print(f"blog-api telemetry overhead: GET {path}")
        print(
            f"  gunicorn workers={args.workers}  connections={args.connections}  "
            f"{args.rounds} rounds x {args.duration:g}s (+{args.warmup:g}s warm-up each)  "
            f"client={tool_desc}  cpus={os.cpu_count()}"
        )
        print(f"  ON : OTLP/HTTP traces -> {receiver.endpoint}, /metrics 200, traceresponse yes")
        print("  OFF: OTEL_SDK_DISABLED=true, /metrics 404, no traceresponse header")

        def load(server: Server, seconds: float) -> Result:
            if tool == "wrk":
                url = f"http://{HOST}:{server.port}{path}"
                return run_wrk(url, args.connections, seconds, args.wrk_threads)
            return run_python(server.port, path, args.connections, seconds)

        widths = (5, 4, 9, 9, 9, 9, 11, 7, 9)
        header = (
            "round",
            "mode",
            "requests",
            "req/s",
            "p50 ms",
            "p99 ms",
            "cpu ms/req",
            "errors",
            "spans",
        )
        print()
        print(fmt_row(header, widths))
        for rnd in range(1, args.rounds + 1):
            order = ("ON", "OFF") if rnd % 2 else ("OFF", "ON")
            for mode in order:
                server = servers[mode]
                on.check_alive()
                off.check_alive()
                if args.warmup:
                    load(server, args.warmup)
                    if mode == "ON":  # let warm-up spans leave before the clock starts
                        receiver.wait_quiet(BSP_DELAY_S + 0.5, BSP_DELAY_S + 10)
                receiver.drain()
                before = receiver.spans
                cpu_before = server.cpu_seconds()
                result = load(server, args.duration)
                if mode == "ON":  # the batch processor flushes at most BSP_DELAY_S later
                    receiver.wait_quiet(BSP_DELAY_S + 0.5, BSP_DELAY_S + 10)
                server.check_alive()
                cpu_after = server.cpu_seconds()
                if cpu_before is not None and cpu_after is not None and result.requests:
                    result.cpu_ms = (cpu_after - cpu_before) * 1000 / result.requests
                receiver.drain()
                spans = receiver.spans - before
                rows.append((rnd, mode, result, spans))
                print(
                    fmt_row(
                        (
                            rnd,
                            mode,
                            result.requests,
                            f"{result.rps:.1f}",
                            f"{result.p50_ms:.2f}",
                            f"{result.p99_ms:.2f}",
                            "-" if result.cpu_ms is None else f"{result.cpu_ms:.3f}",
                            result.errors,
                            spans if mode == "ON" else "-",
                        ),
                        widths,
                    ),
                    flush=True,
                )

        # Summary: mean throughput over rounds; median of the per-round latency percentiles.
        def summary(mode: str) -> dict:
            rs = [r for _, m, r, _ in rows if m == mode]
            return {
                "rps": round(statistics.fmean(r.rps for r in rs), 1),
                "p50_ms": round(statistics.median(r.p50_ms for r in rs), 3),
                "p99_ms": round(statistics.median(r.p99_ms for r in rs), 3),
                "cpu_ms_per_request": (
                    None
                    if any(r.cpu_ms is None for r in rs)
                    else round(statistics.median(r.cpu_ms for r in rs), 4)
                ),
                "requests": sum(r.requests for r in rs),
                "errors": sum(r.errors for r in rs),
            }

        s_on, s_off = summary("ON"), summary("OFF")
        ratio = s_on["rps"] / s_off["rps"]
        per_round = [
            next(r.rps for n, m, r, _ in rows if n == rnd and m == "ON")
            / next(r.rps for n, m, r, _ in rows if n == rnd and m == "OFF")
            for rnd in range(1, args.rounds + 1)
        ]
        on_spans = sum(s for _, m, _, s in rows if m == "ON")
        spans_per_req = on_spans / s_on["requests"] if s_on["requests"] else 0.0
        _, _, health = request(on.port, "GET", "/health")
        trace_exp = (health or {}).get("checks", {}).get("trace_exporter", {})
        route = "/api/v1/posts/<int:post_id>" if args.path == DEFAULT_PATH else None
        counted = metric_count(on.port, route) if route else None

        print()
        print(
            fmt_row(("", "mode", "req/s", "p50 ms", "p99 ms", "cpu ms/req"), (12, 4, 9, 9, 9, 11))
        )
        for mode, s in (("ON", s_on), ("OFF", s_off)):
            cpu = s["cpu_ms_per_request"]
            print(
                fmt_row(
                    (
                        "",
                        mode,
                        f"{s['rps']:.1f}",
                        f"{s['p50_ms']:.2f}",
                        f"{s['p99_ms']:.2f}",
                        "-" if cpu is None else f"{cpu:.3f}",
                    ),
                    (12, 4, 9, 9, 9, 11),
                )
            )
        print(
            f"\nthroughput ratio ON/OFF = {ratio:.3f}  "
            f"(per round {min(per_round):.3f} .. {max(per_round):.3f})"
        )
        if s_on["cpu_ms_per_request"] and s_off["cpu_ms_per_request"]:
            extra = s_on["cpu_ms_per_request"] - s_off["cpu_ms_per_request"]
            print(
                f"telemetry costs {extra:.3f} ms of server CPU per request "
                f"(+{100 * extra / s_off['cpu_ms_per_request']:.0f}%)"
            )
        print(
            f"spans received by the OTLP receiver during ON measurements: {on_spans} "
            f"({spans_per_req:.2f} per request; total {receiver.spans} in {receiver.posts} "
            f"exports, {receiver.bytes / 1e6:.1f} MB)"
        )
        print(
            f"ON /health trace_exporter: status={trace_exp.get('status')} "
            f"exported={trace_exp.get('exported_spans')} dropped={trace_exp.get('dropped_spans')}"
            f" failed_exports={trace_exp.get('failed_exports')}"
        )
        if counted is not None:
            print(f"ON /metrics counted {counted} requests of the measured route")
        print(f"OFF /metrics status: {checks['OFF']['metrics_status']}")
        if s_on["errors"] or s_off["errors"]:
            print("WARNING: errors during load; the numbers are suspect")
        print(
            json.dumps(
                {
                    "bench": "telemetry_overhead",
                    "path": path,
                    "tool": tool_desc,
                    "workers": args.workers,
                    "connections": args.connections,
                    "duration_s": args.duration,
                    "rounds": args.rounds,
                    "on_env": args.on_env,
                    "on": s_on,
                    "off": s_off,
                    "ratio": round(ratio, 4),
                    "ratio_per_round": [round(x, 4) for x in per_round],
                    "spans_received": on_spans,
                    "spans_per_request": round(spans_per_req, 3),
                    "dropped_spans": trace_exp.get("dropped_spans"),
                    "off_metrics_status": checks["OFF"]["metrics_status"],
                }
            )
        )
        return 0
    except KeyboardInterrupt:
        print("\ninterrupted; stopping the servers", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"\nbenchmark failed: {exc}", file=sys.stderr)
        for s in (on, off):
            if s.proc is not None:
                print(f"--- {s.name} log tail ---\n{s.log_tail()}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for s in (on, off):
            try:
                s.stop()
            except Exception as exc:  # noqa: BLE001 - stop the other one anyway
                print(f"stopping {s.name}: {exc}", file=sys.stderr)
        receiver.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
