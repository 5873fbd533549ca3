"""One access line a request, carrying the request's trace id: in-process, under the development
server (`run.py`) and under gunicorn."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import time
from collections import Counter

import pytest

from blog_api import create_app

from . import databases
from .conftest import SECRET
from .live_server import HOST, ROOT, LiveServer, call, free_port

FIELDS = {"method", "route", "status", "duration_ms", "client_address", "trace_id", "span_id"}


def json_lines(text: str) -> list[dict]:
    """Every line of `text` as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def access_lines(text: str) -> list[dict]:
    return [line for line in json_lines(text) if line["logger"] == "access"]


def ids_of(response_headers) -> tuple[str, str]:
    """(trace_id, span_id) from a `traceresponse` header."""
    _, trace_id, span_id, _ = response_headers["traceresponse"].split("-")
    return trace_id, span_id


def test_a_request_writes_one_line_with_its_fields_and_trace_id(client, users, capsys):
    headers = users.headers("alice")
    post = client.post("/api/v1/posts", json={"title": "t", "body": "b"}, headers=headers)
    capsys.readouterr()

    response = client.get(f"/api/v1/posts/{post.get_json()['id']}")
    lines = access_lines(capsys.readouterr().err)

    assert len(lines) == 1
    line = lines[0]
    trace_id, span_id = ids_of(response.headers)
    assert (line["trace_id"], line["span_id"]) == (trace_id, span_id)
    assert FIELDS <= line.keys()
    assert line["level"] == "INFO"
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/posts/<int:post_id>"  # the URL rule, not the path
    assert line["status"] == 200
    assert 0 < line["duration_ms"] < 10_000
    assert line["client_address"] == "127.0.0.1"


@pytest.mark.parametrize(
    "method, path, status",
    [("GET", "/no/such/page", 404), ("DELETE", "/api/v1/posts", 405)],
)
def test_a_request_no_route_matched_has_no_route(client, capsys, method, path, status):
    response = client.open(path, method=method)
    (line,) = access_lines(capsys.readouterr().err)
    assert (line["method"], line["route"], line["status"]) == (method, None, status)
    assert line["trace_id"] == ids_of(response.headers)[0]


def test_errors_and_the_client_address_are_logged_as_the_app_saw_them(client, capsys):
    response = client.post(
        "/api/v1/users/login",
        data="{",
        content_type="application/json",
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    (line,) = access_lines(capsys.readouterr().err)
    assert line["status"] == response.status_code == 400
    assert line["route"] == "/api/v1/users/login"
    assert line["client_address"] == "203.0.113.9"


def test_probes_and_scrapes_write_no_line(client, capsys):
    for path in ("/health", "/health/live", "/health/ready", "/metrics"):
        client.get(path)
    assert access_lines(capsys.readouterr().err) == []


def test_access_log_false_writes_none(app_config, capsys):
    client = create_app({**app_config, "ACCESS_LOG": "false"}).test_client()
    assert client.get("/api/v1/posts").status_code == 200
    assert client.get("/nope").status_code == 404
    assert access_lines(capsys.readouterr().err) == []


def test_lines_are_written_when_log_level_hides_the_apps_info(app_config, capsys):
    client = create_app({**app_config, "LOG_LEVEL": "ERROR"}).test_client()
    client.get("/api/v1/posts")
    assert len(access_lines(capsys.readouterr().err)) == 1


def test_with_telemetry_disabled_the_line_is_still_written(app_config, capsys):
    client = create_app({**app_config, "OTEL_SDK_DISABLED": "true"}).test_client()
    capsys.readouterr()
    client.get("/api/v1/posts")
    client.get("/metrics")  # not served at all: 404, and still not API traffic
    (line,) = access_lines(capsys.readouterr().err)
    assert (line["route"], line["status"]) == ("/api/v1/posts", 200)
    assert "trace_id" not in line  # no span, no id


CONTRIB_SCRIPT = """
import sys
from blog_api import create_app
app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": sys.argv[2],
                  "TELEMETRY_INSTRUMENTATION": "contrib", "LOG_LEVEL": "WARNING"})
client = app.test_client()
print(client.get("/api/v1/posts").headers["traceresponse"], flush=True)
client.get("/health")
"""


def test_with_the_contrib_instrumentation_the_line_carries_the_trace_id(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            CONTRIB_SCRIPT,
            databases.migrated_sqlite(tmp_path / "c.db"),
            SECRET,
        ],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "APP_ENV": "production"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (line,) = access_lines(result.stderr)
    assert line["trace_id"] == result.stdout.strip().split("-")[1]
    assert (line["route"], line["status"]) == ("/api/v1/posts", 200)


def test_run_py_writes_the_access_line_instead_of_werkzeugs(tmp_path):
    port = free_port()
    log = tmp_path / "run.log"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOST": HOST,
        "PORT": str(port),
        "DATABASE_URL": databases.migrated_sqlite(tmp_path / "r.db"),
    }
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "run.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, _ = call(port, "GET", "/health/live")
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, log.read_text()
                time.sleep(0.1)
        connection = http.client.HTTPConnection(HOST, port, timeout=10)
        connection.request("GET", "/api/v1/posts")
        response = connection.getresponse()
        response.read()
        connection.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert response.status == 200
    text = log.read_text()
    lines = json_lines(text)  # every line JSON, werkzeug's start-up lines too
    (line,) = [line for line in lines if line["logger"] == "access"]
    assert line["trace_id"] == response.getheader("traceresponse").split("-")[1]
    assert (line["route"], line["status"]) == ("/api/v1/posts", 200)
    assert "HTTP/1.1" not in text  # werkzeug's own request line is gone


def test_under_gunicorn_each_trace_id_is_in_exactly_one_line_and_every_line_is_json(tmp_path):
    trace_ids = []
    with LiveServer(tmp_path, workers=2, LOG_LEVEL="INFO") as server:
        for i in range(30):
            connection = server.connection()
            path = "/api/v1/posts" if i % 3 else f"/api/v1/posts/{i}"
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            trace_ids.append(response.getheader("traceresponse").split("-")[1])
            connection.close()
        server.request("GET", "/health")
        server.request("GET", "/metrics")
    lines = json_lines(server.log())  # every line gunicorn and the app wrote, master and workers
    access = [line for line in lines if line["logger"] == "access"]
    per_trace = Counter(line["trace_id"] for line in access)
    assert all(per_trace[trace_id] == 1 for trace_id in trace_ids)
    assert len(access) == len(trace_ids) == len(set(trace_ids))  # nothing for /health, /metrics
    assert {line["route"] for line in access} == {"/api/v1/posts", "/api/v1/posts/<int:post_id>"}
    assert all(FIELDS <= line.keys() for line in access)
    assert any(line["message"].startswith("Booting worker") for line in lines)


def test_under_gunicorn_access_log_false_writes_none(tmp_path):
    with LiveServer(tmp_path, LOG_LEVEL="INFO", ACCESS_LOG="false") as server:
        for _ in range(5):
            assert server.request("GET", "/api/v1/posts")[0] == 200
    lines = json_lines(server.log())
    assert lines and not [line for line in lines if line["logger"] in ("access", "gunicorn.access")]


@pytest.mark.parametrize(
    "env, reason",
    [
        ({"SECRET_KEY": "", "APP_ENV": "production"}, "SECRET_KEY is required"),
        ({"BCRYPT_ROUNDS": "lots"}, "BCRYPT_ROUNDS must be a whole number"),
    ],
)
def test_a_worker_that_cannot_build_the_app_logs_json_and_gunicorn_stops(tmp_path, env, reason):
    server = LiveServer(tmp_path, **env)  # not entered: it never gets ready
    result = subprocess.run(
        server.command, cwd=ROOT, env=server.env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3  # gunicorn's "worker failed to boot"
    lines = json_lines(result.stderr)  # no raw line, no bare traceback
    (failure,) = [line for line in lines if "could not be built" in line["message"]]
    assert reason in failure["message"]
    assert "Traceback" in failure["exception"] and reason in failure["exception"]
    assert lines[-1]["message"] == "Reason: Worker failed to boot."
