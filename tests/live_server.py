"""Real servers in subprocesses on free loopback ports: the app under gunicorn, Prometheus."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from . import databases
from .conftest import SECRET
from .services import require_binary

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
START_TIMEOUT_S = 30.0
# Inherited variables that would change what the app exposes or how gunicorn runs it.
_DROPPED_ENV_PREFIXES = ("OTEL_", "GUNICORN_", "METRICS_", "PROMETHEUS_")
_DROPPED_ENV = {"REDIS_URL", "JWT_EXPIRES_SECONDS", "LOG_FORMAT", "WEB_CONCURRENCY"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def call(port: int, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
    """One HTTP request to 127.0.0.1:`port`, JSON body if any; (status, body)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        json_headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(
            method,
            path,
            body=None if body is None else json.dumps(body),
            headers={**json_headers, **(headers or {})},
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class Process:
    """`with Process(command, port, log, env, ready_path):` a server until the block ends."""

    def __init__(self, command: list[str], port: int, log: Path, env: dict, ready_path: str):
        self.command, self.port, self.log_path = command, port, log
        self.env, self.ready_path = env, ready_path
        self.process: subprocess.Popen | None = None

    def __enter__(self):
        with self.log_path.open("wb") as out:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                self.command,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.alive():
                break
            try:
                if call(self.port, "GET", self.ready_path)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"{self.command[0]} did not start:\n{self.log()[-3000:]}")

    def __exit__(self, *exc) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class LiveServer(Process):
    """The app as production runs it: `gunicorn -c gunicorn.conf.py "blog_api:create_app()"`.

    On a migrated SQLite file of its own unless `DATABASE_URL` is given (then the caller has
    migrated it, or means it not to be).
    """

    def __init__(self, tmp_path: Path, workers: int = 1, **env: str) -> None:
        port = free_port()
        if "DATABASE_URL" not in env:
            env["DATABASE_URL"] = databases.migrated_sqlite(tmp_path / f"live-{port}.db")
        inherited = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(_DROPPED_ENV_PREFIXES) and k not in _DROPPED_ENV
        }
        super().__init__(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "blog_api:create_app()"],
            port,
            tmp_path / f"gunicorn-{port}.log",
            {
                **inherited,
                "HOST": HOST,
                "PORT": str(port),
                "WEB_CONCURRENCY": str(workers),
                "SECRET_KEY": SECRET,
                "APP_ENV": "production",
                "BCRYPT_ROUNDS": "4",
                "LOG_LEVEL": "WARNING",
                **env,
            },
            "/health/live",
        )

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(HOST, self.port, timeout=10)

    def request(self, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
        return call(self.port, method, path, body, headers)

    def scrape(self) -> dict:
        """{family: [samples]} of one scrape of /metrics."""
        status, body = self.request("GET", "/metrics")
        assert status == 200, body
        return {f.name: f.samples for f in text_string_to_metric_families(body.decode())}


def start_prometheus(config: dict, directory: Path, *flags: str) -> Process:
    """Debian's Prometheus with `config`, its files in `directory`; enter it to start it."""
    binary = require_binary("prometheus")
    config_file = directory / "prometheus.yml"
    config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")  # JSON is YAML
    port = free_port()
    command = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address={HOST}:{port}",
        "--log.level=warn",
        *flags,
    ]
    return Process(command, port, directory / "prometheus.log", dict(os.environ), "/-/ready")


def total(families: dict, family: str, sample_name: str, **labels: str) -> float:
    """Sum of the samples of `sample_name` whose labels include `labels`."""
    return sum(
        s.value
        for s in families.get(family, [])
        if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items())
    )
