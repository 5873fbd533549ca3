"""Settings that are read once per process, checked in a fresh interpreter or a real server."""

import json
import logging
import os
import runpy
import subprocess
import sys
import time

from blog_api import create_app
from telemetry.logs import JsonFormatter, TextFormatter

from . import databases
from .conftest import SECRET
from .live_server import HOST, ROOT, call, free_port
from .otlp_receiver import OTLPReceiver

SCRIPT = """
import json, os, sys
from blog_api import create_app
app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": sys.argv[2],
                  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sys.argv[3], "LOG_LEVEL": "CRITICAL"})
client = app.test_client()
header = client.get("/api/v1/posts").headers["traceresponse"]
app.extensions["telemetry"].providers.tracer_provider.force_flush(5000)
info = [l for l in client.get("/metrics").get_data(as_text=True).splitlines()
        if l.startswith("target_info")]
print(json.dumps({"traceresponse": header, "target_info": info}), flush=True)
os._exit(0)
"""


def test_sampler_and_service_name_come_from_the_otel_environment(tmp_path):
    with OTLPReceiver() as receiver:
        env = {
            "PATH": "/usr/bin:/bin",
            "OTEL_TRACES_SAMPLER": "always_off",
            "OTEL_SERVICE_NAME": "blog-api-canary",
        }
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                SCRIPT,
                databases.migrated_sqlite(tmp_path / "s.db"),
                SECRET,
                receiver.endpoint,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        out = json.loads(result.stdout.strip().splitlines()[-1])
        assert out["traceresponse"].endswith("-00")  # a trace id, but not sampled
        assert receiver.spans() == []  # always_off: nothing recorded, nothing exported
    assert 'service_name="blog-api-canary"' in out["target_info"][0]


def test_run_py_serves_on_host_and_port(tmp_path):
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "HOST": HOST,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'r.db'}",
        "LOG_LEVEL": "WARNING",
    }
    server = subprocess.Popen(
        [sys.executable, "run.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = call(port, "GET", "/health/live")
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "run.py did not start"
                time.sleep(0.1)
        assert (status, json.loads(body)) == (200, {"status": "healthy"})
    finally:
        server.terminate()
        server.wait(timeout=10)


def _our_handler():
    return next(h for h in logging.getLogger().handlers if h.get_name() == "telemetry.stderr")


def test_log_level_and_format_come_from_the_settings(app_config):
    try:
        create_app({**app_config, "LOG_FORMAT": "text", "LOG_LEVEL": "ERROR"})
        assert isinstance(_our_handler().formatter, TextFormatter)
        assert logging.getLogger().level == logging.ERROR
        create_app({**app_config, "LOG_LEVEL": "DEBUG"})
        assert isinstance(_our_handler().formatter, JsonFormatter)  # json is the default
        assert logging.getLogger().level == logging.DEBUG
    finally:
        create_app(app_config)  # back to the suite's level


def test_gunicorn_binds_host_and_port_with_the_documented_defaults(monkeypatch):
    """DESIGN: HOST and PORT default to 127.0.0.1 and 5000 in run.py and the gunicorn config."""
    monkeypatch.delenv("HOST", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == "127.0.0.1:5000"
    monkeypatch.setenv("PORT", "8123")  # what a PaaS sets
    monkeypatch.setenv("HOST", "0.0.0.0")
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == "0.0.0.0:8123"


def test_gunicorn_runs_a_worker_a_usable_cpu_with_four_threads_by_default(monkeypatch):
    """README: WEB_CONCURRENCY defaults to the CPUs the process may use, GUNICORN_THREADS to 4."""
    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.delenv("GUNICORN_THREADS", raising=False)
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert config["workers"] == len(os.sched_getaffinity(0))
    assert (config["threads"], config["worker_class"]) == (4, "gthread")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("GUNICORN_THREADS", "1")
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    assert (config["workers"], config["threads"], config["worker_class"]) == (3, 1, "sync")
