"""deploy/nginx.conf run by Debian's real nginx, in front of the app under gunicorn.

The config is the project's file with only what must differ here replaced (its listen port, the
upstream's address, and /tmp/ for a directory of the test's own), each replacement asserted to
happen, so the file tested is the file shipped. What it must show: slow clients wait on nginx,
not on the app's workers; bodies over the app's 1 MiB are refused by nginx in the app's JSON
shape; the app is told who asked (X-Forwarded-*), gets whole requests, over kept-alive
connections.
"""

from __future__ import annotations

import http.client
import http.server
import json
import re
import runpy
import select
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from .live_server import HOST, LiveServer, free_port, total
from .nginx_proxy import NGINX_CONF, Nginx

ROOT = Path(__file__).resolve().parent.parent
MAX_BODY = 1024 * 1024  # blog_api.MAX_BODY_BYTES
DURATION = "http_server_request_duration_seconds"


def raw_request(port: int, method: str, path: str, body: bytes, headers: dict) -> tuple:
    """(status, headers, body) of one request whose body is sent as given (no JSON encoding)."""
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


@pytest.fixture
def app_behind_nginx(tmp_path):
    """The app under gunicorn with one (sync) worker, the easiest to starve, and nginx before it."""
    with LiveServer(tmp_path, workers=1) as app, Nginx(f"{HOST}:{app.port}") as proxy:
        # Ready through nginx (the worker has seen its database) before the test's requests.
        deadline = time.monotonic() + 10
        while proxy.request("GET", "/health/ready")[0] != 200:
            assert time.monotonic() < deadline, "the app never became ready behind nginx"
            time.sleep(0.2)
        yield app, proxy


# --- the config itself --------------------------------------------------------------------------


def test_nginx_accepts_the_config() -> None:
    proxy = Nginx(f"{HOST}:9")
    try:
        result = subprocess.run([*proxy.command, "-t"], capture_output=True, text=True, timeout=30)
    finally:
        proxy.__exit__()
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def _directive(text: str, name: str) -> str:
    [value] = re.findall(rf"^\s*{name}\s+([^;\n{{]+);", text, re.MULTILINE)
    return value


def _seconds(value: str) -> int:
    assert value.endswith("s"), value
    return int(value[:-1])


def test_limits_agree_with_the_app_and_gunicorn() -> None:
    text = NGINX_CONF.read_text(encoding="utf-8")
    upstream = text.split("upstream blog_api {", 1)[1].split("}", 1)[0]
    gunicorn = runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    assert _directive(text, "client_max_body_size") == "1m"  # the app's 1 MiB
    # nginx drops an idle connection to the app before gunicorn does: never a request sent on a
    # connection the app is closing.
    assert _seconds(_directive(upstream, "keepalive_timeout")) < gunicorn["keepalive"]
    # nginx waits for an answer longer than gunicorn lets a worker take for one.
    assert _seconds(_directive(text, "proxy_read_timeout")) > gunicorn["timeout"]
    assert _directive(text, "proxy_request_buffering") == "on"
    assert _directive(text, "proxy_buffering") == "on"


# --- in front of a stand-in that shows what reaches the app -------------------------------------


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers 200 and records each request's headers, body and client port."""

    protocol_version = "HTTP/1.1"  # keeps connections alive, as gthread workers do
    seen: list[dict] = []

    def do_GET(self) -> None:
        self._record(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self._record(self.rfile.read(length))

    def _record(self, body: bytes) -> None:
        self.seen.append(
            {"headers": dict(self.headers), "body": body, "client_port": self.client_address[1]}
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def recorder():
    _Recorder.seen = []
    server = http.server.ThreadingHTTPServer((HOST, 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_the_app_gets_whole_requests_saying_who_asked_over_kept_connections(recorder) -> None:
    upstream = f"{HOST}:{recorder.server_address[1]}"
    with Nginx(upstream) as proxy:
        host = f"localhost:{proxy.port}"
        # One client connection, so one nginx worker and its pool of connections to the app.
        connection = http.client.HTTPConnection(HOST, proxy.port, timeout=10)
        statuses = []
        for method, path, body, headers in (
            ("GET", "/api/v1/posts", None, {}),
            ("GET", "/", None, {"X-Forwarded-For": "203.0.113.9"}),
            ("POST", "/api/v1/posts", iter([b'{"title": ', b'"t", "body": "b"}']), {}),
        ):
            connection.request(method, path, body=body, headers={"Host": host, **headers})
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        connection.close()
    assert statuses == [200, 200, 200]
    one, two, three = _Recorder.seen
    assert one["headers"]["X-Forwarded-For"] == HOST
    assert one["headers"]["X-Forwarded-Proto"] == "http"
    assert one["headers"]["X-Forwarded-Host"] == host
    assert one["headers"]["Host"] == host
    # nginx appends the address it saw: the app's last trusted hop is nginx's entry, not the
    # client's claim.
    assert two["headers"]["X-Forwarded-For"] == f"203.0.113.9, {HOST}"
    # A chunked body arrives whole, with its length: nginx read all of it first.
    assert three["body"] == b'{"title": "t", "body": "b"}'
    assert three["headers"]["Content-Length"] == str(len(three["body"]))
    assert "Transfer-Encoding" not in three["headers"]
    # One upstream connection carried all three requests (upstream keepalive).
    assert one["client_port"] == two["client_port"] == three["client_port"]


def test_an_unreachable_app_is_nginx_json_502() -> None:
    with Nginx(f"{HOST}:{free_port()}") as proxy:  # nothing listens there
        status, headers, body = raw_request(proxy.port, "GET", "/api/v1/posts", b"", {})
    assert status == 502
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == {
        "error": "Bad Gateway",
        "message": "The proxy server received an invalid response from an upstream server.",
    }


# --- in front of the app ------------------------------------------------------------------------


@pytest.mark.slow  # starts gunicorn
def test_requests_through_nginx_reach_the_app(app_behind_nginx) -> None:
    app, proxy = app_behind_nginx
    user = {"username": "alice", "email": "a@example.org", "password": "password1"}
    assert proxy.request("POST", "/api/v1/users/register", user)[0] == 201
    credentials = {"username": "alice", "password": "password1"}
    status, body = proxy.request("POST", "/api/v1/users/login", credentials)
    assert status == 200
    auth = {"Authorization": "Bearer " + json.loads(body)["access_token"]}
    status, body = proxy.request("POST", "/api/v1/posts", {"title": "t", "body": "b"}, auth)
    assert status == 201
    status, body = proxy.request("GET", f"/api/v1/posts/{json.loads(body)['id']}")
    assert status == 200 and json.loads(body)["title"] == "t"
    # The app's own errors pass through unchanged.
    assert proxy.request("GET", "/api/v1/posts/999") == app.request("GET", "/api/v1/posts/999")


@pytest.mark.slow  # starts gunicorn
def test_a_body_over_1_mib_is_refused_by_nginx_as_the_app_refuses_it(app_behind_nginx) -> None:
    app, proxy = app_behind_nginx
    json_headers = {"Content-Type": "application/json"}
    too_large = b"x" * (MAX_BODY + 1)

    direct = raw_request(app.port, "POST", "/api/v1/posts", too_large, json_headers)
    proxied = raw_request(proxy.port, "POST", "/api/v1/posts", too_large, json_headers)
    chunked = raw_request(
        proxy.port, "POST", "/api/v1/posts", iter([too_large[:MAX_BODY], b"x"]), json_headers
    )
    # Exactly 1 MiB is the app's to judge (it is not JSON: 400, not 413).
    at_limit = raw_request(proxy.port, "POST", "/api/v1/posts", too_large[:MAX_BODY], json_headers)

    assert direct[0] == proxied[0] == chunked[0] == 413
    assert proxied[1]["Content-Type"] == direct[1]["Content-Type"] == "application/json"
    assert proxied[2] == chunked[2] == direct[2]  # byte for byte the app's body
    assert at_limit[0] != 413
    # Only the direct request reached the app: nginx refused the others itself.
    families = app.scrape()
    assert total(families, DURATION, DURATION + "_count", http_response_status_code="413") == 1


SLOW_CLIENTS = 10
SLOW_FOR_S = 6.0
TRICKLE_EVERY_S = 0.5


def _slow_client(port: int, what: str, stop: threading.Event, still_open: list) -> None:
    """Send a request's start, then one byte every TRICKLE_EVERY_S until `stop`."""
    with socket.create_connection((HOST, port), timeout=5) as sock:
        if what == "body":
            sock.sendall(
                b"POST /api/v1/posts HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"
            )
        else:
            sock.sendall(b"GET /api/v1/posts HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        while not stop.wait(TRICKLE_EVERY_S):
            sock.sendall(b" " if what == "body" else b"a")
        # Nothing to read (no answer, no close): nginx is still waiting for this client.
        readable, _, _ = select.select([sock], [], [], 0)
        still_open.append(not readable)


@pytest.mark.slow
def test_slow_clients_leave_the_app_answering_others(app_behind_nginx) -> None:
    app, proxy = app_behind_nginx
    stop, still_open = threading.Event(), []
    clients = [
        threading.Thread(target=_slow_client, args=(proxy.port, what, stop, still_open))
        for what in ("body", "headers") * (SLOW_CLIENTS // 2)
    ]
    for client in clients:
        client.start()
    time.sleep(2 * TRICKLE_EVERY_S)  # every slow client is connected and trickling

    answered = []
    deadline = time.monotonic() + SLOW_FOR_S
    try:
        while time.monotonic() < deadline:
            started = time.monotonic()
            connection = http.client.HTTPConnection(HOST, proxy.port, timeout=5)
            try:
                connection.request("GET", "/api/v1/posts")
                response = connection.getresponse()
                response.read()
                answered.append((response.status, time.monotonic() - started))
            finally:
                connection.close()
            time.sleep(0.1)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=10)

    assert len(answered) >= 10
    assert {status for status, _ in answered} == {200}
    slowest = max(seconds for _, seconds in answered)
    assert slowest < 1.0, f"a request took {slowest:.2f} s behind the slow clients"
    assert still_open == [True] * SLOW_CLIENTS, (
        "nginx dropped slow clients: the test proved nothing"
    )


def test_compose_puts_nginx_with_this_config_in_front_of_the_app() -> None:
    services = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text("utf-8"))[
        "services"
    ]
    nginx, app = services["nginx"], services["app"]
    text = NGINX_CONF.read_text(encoding="utf-8")
    [published] = nginx["ports"]

    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert _directive(text, "server") == f"app:{app['environment']['PORT']}"
    assert published == f"127.0.0.1:8000:{_directive(text, 'listen')}"
    assert "ports" not in app, "the app is reached through nginx only"
