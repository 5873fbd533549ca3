"""What the benchmarks share: gunicorn servers, a trace receiver, load generators, seeding.

    from harness import Server, TraceReceiver, base_env, load, migrate, seed

`Server` runs blog-api (or a wrapped factory from bench/) the way production does, with
`gunicorn -c gunicorn.conf.py`, and reads its processes' CPU time from /proc. `TraceReceiver`
stands in for both an OpenTelemetry Collector (OTLP/HTTP) and a Datadog agent, answers 200 and
counts what arrives, per sender. `load()` runs `wrk --latency`, or a Python client without wrk.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
BIN = Path(sys.executable).parent  # the venv running the benchmark runs the servers too
HOST = "127.0.0.1"
# The SDK's default OTEL_BSP_SCHEDULE_DELAY (ms): the longest a finished span waits for export.
BSP_DELAY_S = 5.0


def stop_on_sigterm() -> None:
    """Make SIGTERM (a CI timeout, `kill`) end the run like Ctrl-C, so `finally` stops servers."""

    def handler(*_):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


# --------------------------------------------------------------------------- trace receiver
class TraceReceiver:
    """A local OTLP/HTTP trace receiver and Datadog agent in one HTTP server; counts per sender.

    OTLP: POST /<sender>/v1/traces (see `otlp_endpoint()`). Datadog agent API (sender
    "ddtrace"): GET /info, PUT or POST /v0.4/traces and /v0.5/traces. Anything else is answered
    404 and counted in `unexpected`, so a library phoning home shows up. Bodies are only stored
    while load runs and decoded by `drain()` between measurements, to take little CPU from the
    server under test.
    """

    DATADOG_TRACES = ("/v0.4/traces", "/v0.5/traces")
    DATADOG_INFO = {"version": "bench-receiver", "endpoints": list(DATADOG_TRACES)}

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bodies: list[tuple[str, str, bytes]] = []  # (sender, format, body)
        self.posts: Counter[str] = Counter()
        self.bytes: Counter[str] = Counter()
        self.traces: Counter[str] = Counter()  # Datadog: the X-Datadog-Trace-Count headers
        self.spans: Counter[str] = Counter()  # decoded by drain()
        self.kinds: dict[str, Counter[str]] = defaultdict(Counter)  # sender -> span label -> n
        self.last_post: dict[str, float] = {}
        self.unexpected: Counter[str] = Counter()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self._body()
                sender, fmt = receiver._route(self.path)
                if sender is None:
                    receiver.unexpected[f"{self.command} {self.path}"] += 1
                    return self._answer(404, b"")
                with receiver._lock:
                    receiver._bodies.append((sender, fmt, body))
                    receiver.posts[sender] += 1
                    receiver.bytes[sender] += len(body)
                    receiver.traces[sender] += int(self.headers.get("X-Datadog-Trace-Count", 0))
                    receiver.last_post[sender] = time.monotonic()
                if fmt == "otlp":
                    return self._answer(200, b"", "application/x-protobuf")
                return self._answer(200, b'{"rate_by_service": {}}', "application/json")

            do_PUT = do_POST  # the Datadog tracers PUT their traces

            def do_GET(self):  # noqa: N802
                if self.path == "/info":
                    info = json.dumps(receiver.DATADOG_INFO).encode()
                    return self._answer(200, info, "application/json")
                receiver.unexpected[f"GET {self.path}"] += 1
                return self._answer(404, b"")

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _answer(self, status: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://{HOST}:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def otlp_endpoint(self, sender: str) -> str:
        """The OTEL_EXPORTER_OTLP_TRACES_ENDPOINT whose spans are counted as `sender`'s."""
        return f"{self.url}/{sender}/v1/traces"

    def _route(self, path: str) -> tuple[str | None, str]:
        if path in self.DATADOG_TRACES:
            return "ddtrace", path[1:5]
        if path.endswith("/v1/traces") and path.count("/") == 3:
            return path.split("/")[1], "otlp"
        return None, ""

    def drain(self) -> None:
        """Decode the stored bodies into `spans` and `kinds`."""
        with self._lock:
            bodies, self._bodies = self._bodies, []
        for sender, fmt, body in bodies:
            labels = _otlp_labels(body) if fmt == "otlp" else _datadog_labels(body, fmt)
            self.spans[sender] += len(labels)
            self.kinds[sender].update(labels)

    def wait_quiet(self, sender: str, quiet_s: float, since: float | None = None) -> None:
        """Wait until `sender` has posted nothing for `quiet_s` seconds, counted from its last
        post or from `since` (default: now), whichever is later; at most a minute."""
        since = time.monotonic() if since is None else since
        while time.monotonic() < since + 60:
            if time.monotonic() - max(self.last_post.get(sender, 0.0), since) >= quiet_s:
                return
            time.sleep(0.1)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _otlp_labels(body: bytes) -> list[str]:
    """'<KIND> (<instrumentation scope>)' for each span of an ExportTraceServiceRequest."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    request = ExportTraceServiceRequest.FromString(body)
    return [
        f"{Span.SpanKind.Name(span.kind).removeprefix('SPAN_KIND_')} ({scope_spans.scope.name})"
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


def _datadog_labels(body: bytes, fmt: str) -> list[str]:
    """'<name> (<component>)' for each span of a Datadog v0.4 or v0.5 payload (msgpack)."""
    try:
        import msgpack
    except ImportError:  # in the bench group; without it, spans are not counted
        return []
    payload = msgpack.unpackb(body, raw=False, strict_map_key=False)
    if fmt == "v0.4":  # [[{name, meta, ...} per span] per trace]
        spans = [(s["name"], s.get("meta", {})) for trace in payload for s in trace]
    else:  # [string table, [[[service, name, resource, ..., meta, metrics, type]]]]
        strings, traces = payload
        spans = [
            (strings[s[1]], {strings[k]: strings[v] for k, v in s[9].items()})
            for trace in traces
            for s in trace
        ]
    return [f"{name} ({meta.get('component', '-')})" for name, meta in spans]


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
    """One gunicorn (master + workers) serving `app`, optionally under a `wrapper` command."""

    name: str
    env: dict
    log_path: Path
    app: str = "blog_api:create_app()"
    wrapper: tuple[str, ...] = ()  # e.g. ("ddtrace-run",), looked up in the venv's bin
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    def start(self, workers: int) -> None:
        gunicorn = BIN / "gunicorn"
        if not gunicorn.exists():
            raise RuntimeError(f"no gunicorn beside {sys.executable}: run with a venv's python")
        cmd = [*(str(BIN / w) for w in self.wrapper), str(gunicorn), "-c", "gunicorn.conf.py"]
        if not self.app.startswith("blog_api:"):
            cmd += ["--pythonpath", str(BENCH)]  # the wrapped factories in bench/
        env = {**self.env, "HOST": HOST, "PORT": str(self.port), "WEB_CONCURRENCY": str(workers)}
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*cmd, self.app],
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, and we stop it cleanly
        )

    def wait_live(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                if request(self.port, "GET", "/health/live")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} server not live after {timeout_s}s:\n{self.log_tail()}")

    def check_alive(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} server is gone:\n{self.log_tail()}")

    def pids(self) -> list[int]:
        """The master and every process under it."""
        pids, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            pids.append(pid)
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True)
            todo += [int(p) for p in out.stdout.split()]
        return pids

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the master and its workers so far (Linux /proc), or None."""
        total = 0
        try:
            for pid in self.pids():
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


PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


class Database:
    """A fresh database for the run: a SQLite file, or a PostgreSQL database dropped at the end."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite:///{tmp / f'bench-{uuid.uuid4().hex[:8]}.db'}"
        else:
            from sqlalchemy import create_engine, text

            self.name = f"bench_{uuid.uuid4().hex[:8]}"
            self._admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
            with self._admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{self.name}"'))
            self.url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.name}"

    def drop(self) -> None:
        if self.kind == "postgresql":
            from sqlalchemy import text

            with self._admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))


def base_env(db_url: str) -> dict:
    """The parent's environment minus anything that would change the app's behaviour."""
    drop = (
        "OTEL_",
        "TELEMETRY_",
        "DD_",
        "PROMETHEUS_",
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


def migrate(env: dict) -> None:
    """`flask --app blog_api db upgrade` on env's DATABASE_URL: the schema as production makes it
    (the app creates no tables), before any server starts on it."""
    result = subprocess.run(
        [str(BIN / "flask"), "--app", "blog_api", "db", "upgrade"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"flask db upgrade failed:\n{result.stderr[-3000:]}")


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


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS_MS[unit]


def client_name(client: str, wrk_threads: int = 1) -> str:
    """'wrk' or 'python' for `client` ('auto' picks wrk when installed); raises if impossible."""
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    if client == "wrk" and not shutil.which("wrk"):
        raise RuntimeError("wrk is not installed (apt-get install wrk), use --client python")
    return client


def load(client: str, port: int, path: str, connections: int, seconds: float, threads=1):
    """Load GET `path` for `seconds` with `client` ('wrk' or 'python'); return the Result."""
    if client == "wrk":
        return run_wrk(f"http://{HOST}:{port}{path}", connections, seconds, threads)
    return run_python(port, path, connections, seconds)


def run_wrk(url: str, connections: int, duration: float, threads: int) -> Result:
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration))}s"]
    cmd += ["--timeout", "5s", "--latency", url]
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
