"""End to end: the app, a real Prometheus with the project's rules, a real Alertmanager with the
project's routes, and a webhook served by this test as every receiver. Stopping the app makes
BlogApiDown fire for real; the webhook receives it as a page, with its labels and runbook_url;
meanwhile Alertmanager holds back a symptom (an SLO burn alert) and still delivers the rest.

The configs are deploy/'s own, derived by deploy/local_stack.py (as `make stack` uses them):
local addresses, a 1 s scrape and evaluation interval, every alert's `for` held 2 s, 1 s
Alertmanager group waits. Nothing else differs, so the test follows the files.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from .live_server import HOST, LiveServer, Process, call, free_port
from .services import require_binary
from .test_monitoring_config import ALERT_RULES, DEPLOY, load_yaml

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]

DELIVERY_TIMEOUT_S = 60.0


def _local_stack():
    spec = importlib.util.spec_from_file_location("local_stack", DEPLOY / "local_stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Webhook:
    """An HTTP server on 127.0.0.1 that keeps every notification Alertmanager posts."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        received, lock = self.received, self.lock

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with lock:
                    received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alerts(self, alertname: str) -> list[tuple[str, dict, dict]]:
        """(path, notification, alert) for every firing `alertname` received so far."""
        with self.lock:
            return [
                (path, notification, alert)
                for path, notification in self.received
                for alert in notification["alerts"]
                if alert["labels"].get("alertname") == alertname and alert["status"] == "firing"
            ]


def _wait_for(webhook: Webhook, alertname: str, *servers: Process) -> list:
    deadline = time.monotonic() + DELIVERY_TIMEOUT_S
    while time.monotonic() < deadline:
        if found := webhook.alerts(alertname):
            return found
        for server in servers:
            assert server.alive(), server.log()[-3000:]
        time.sleep(0.2)
    logs = "\n".join(server.log()[-2000:] for server in servers)
    pytest.fail(f"no {alertname} within {DELIVERY_TIMEOUT_S}s; got {webhook.received}\n{logs}")


def _post_alerts(port: int, *labels: dict) -> None:
    body = [{"labels": label, "annotations": {"summary": "posted by the test"}} for label in labels]
    status, answer = call(port, "POST", "/api/v2/alerts", body=body)
    assert status == 200, answer


def _alertmanager_alerts(port: int) -> list[dict]:
    status, body = call(port, "GET", "/api/v2/alerts")
    assert status == 200, body
    return json.loads(body)


def test_blog_api_down_reaches_the_page_receiver_with_its_runbook(tmp_path):
    require_binary("prometheus")
    require_binary("prometheus-alertmanager", "prometheus-alertmanager")
    stack = _local_stack()
    prometheus_port, alertmanager_port = free_port(), free_port()
    expected = next(
        rule
        for group in load_yaml(ALERT_RULES)["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "BlogApiDown"
    )

    with Webhook() as webhook, LiveServer(tmp_path, workers=1) as app:
        prometheus_yml, alertmanager_yml = stack.write_configs(
            tmp_path / "config",
            f"{HOST}:{app.port}",
            f"{HOST}:{alertmanager_port}",
            collector=f"{HOST}:{free_port()}",  # nothing listens: OtelCollectorDown, a ticket
            interval="1s",
            hold="2s",
            webhook=webhook.url,
        )
        am_command = stack.alertmanager_command(
            alertmanager_yml, tmp_path / "am", alertmanager_port
        )
        prom_command = stack.prometheus_command(prometheus_yml, tmp_path / "tsdb", prometheus_port)
        with (
            Process(am_command, alertmanager_port, tmp_path / "am.log", {}, "/-/ready") as am,
            Process(prom_command, prometheus_port, tmp_path / "prom.log", {}, "/-/ready") as prom,
        ):
            # A ticket first: the Collector was never there. Meanwhile the app is scraped.
            [(path, notification, _), *_] = _wait_for(webhook, "OtelCollectorDown", am, prom)
            assert path == "/ticket" and notification["receiver"] == "ticket"
            assert not webhook.alerts("BlogApiDown"), "the app is up: BlogApiDown fired anyway"

            app.__exit__(None, None, None)  # the app stops
            [(path, notification, alert), *_] = _wait_for(webhook, "BlogApiDown", am, prom)

            # While BlogApiDown fires, a symptom (an SLO burn) is inhibited; an alert that is
            # not a symptom still goes out: both posted to Alertmanager as Prometheus would.
            _post_alerts(
                alertmanager_port,
                {"alertname": "BlogApiAvailabilityFastBurn", "slo": "availability",
                 "severity": "page"},
                {"alertname": "BlogApiLoginBruteForce", "severity": "ticket"},
            )  # fmt: skip
            _wait_for(webhook, "BlogApiLoginBruteForce", am, prom)
            [symptom] = [
                a
                for a in _alertmanager_alerts(alertmanager_port)
                if a["labels"]["alertname"] == "BlogApiAvailabilityFastBurn"
            ]
            assert symptom["status"]["state"] == "suppressed", symptom["status"]
            assert symptom["status"]["inhibitedBy"], symptom["status"]
            assert not webhook.alerts("BlogApiAvailabilityFastBurn")

    assert path == "/page" and notification["receiver"] == "page"
    assert alert["labels"] == {
        "alertname": "BlogApiDown",
        "severity": "page",
        "job": "blog-api",
        "instance": f"{HOST}:{app.port}",
    }
    assert alert["annotations"]["runbook_url"] == expected["annotations"]["runbook_url"]
    assert alert["annotations"]["runbook_url"].endswith("docs/runbooks.md#blogapidown")
    assert alert["annotations"]["dashboard_url"] == expected["annotations"]["dashboard_url"]
    assert f"{HOST}:{app.port}" in alert["annotations"]["summary"]
