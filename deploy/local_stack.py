#!/usr/bin/env python3
"""The whole loop on one machine without Docker: `make stack`.

Starts the app under gunicorn (two workers, a SQLite file of its own, migrated first), Debian's
Prometheus and Alertmanager with the project's rules and routes, and a bounded demo traffic
generator; prints the URLs; Ctrl-C stops everything. Everything listens on 127.0.0.1.

The Prometheus and Alertmanager configs are derived from deploy/prometheus.yml and
deploy/alertmanager.yml by the functions below (the end-to-end alert test uses the same ones):
only addresses, intervals and the receivers' webhook change, so they cannot drift from the files.

Environment: STACK_DIR (a fresh temporary directory), APP_PORT (8000), PROMETHEUS_PORT (9090),
ALERTMANAGER_PORT (9093), DEMO_SECONDS (600: how long the traffic generator runs; 0 for none),
DEMO_RATE (5 requests a second).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
HOST = "127.0.0.1"
RULE_FILES = ("alerts.yml", "slo-rules.yml")


# --- configs derived from the project's files --------------------------------------------------


def prometheus_config(
    app: str,
    alertmanager: str,
    collector: str | None = None,
    interval: str | None = None,
) -> dict:
    """deploy/prometheus.yml with local targets (and shorter intervals when `interval` is set).

    The scrape token file only exists in the compose container: the blog-api job scrapes without
    one here (the app is started without METRICS_TOKEN).
    """
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text(encoding="utf-8"))
    if interval:
        config["global"].update(scrape_interval=interval, evaluation_interval=interval)
        config["global"]["scrape_timeout"] = interval
    for job in config["scrape_configs"]:
        job.pop("authorization", None)
        if interval:
            job["scrape_interval"] = interval
        if job["job_name"] == "blog-api":
            job["static_configs"] = [{"targets": [app]}]
        elif job["job_name"] == "otel-collector":
            job["static_configs"] = [{"targets": [collector]}] if collector else []
    config["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [alertmanager]}]
    return config


def rules(name: str, hold: str | None = None) -> dict:
    """A rule file of deploy/ as Prometheus loads it; `hold` replaces every alert's `for`."""
    loaded = yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8"))
    if hold:
        for group in loaded["groups"]:
            for rule in group["rules"]:
                if "alert" in rule and "for" in rule:
                    rule["for"] = hold
    return loaded


def alertmanager_config(webhook: str | None = None, group_interval: str | None = None) -> dict:
    """deploy/alertmanager.yml; `webhook` gets every receiver's notifications (at `<url>/<name>`).

    `group_interval` shortens the waits between a group's notifications (a test's seconds).
    """
    config = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text(encoding="utf-8"))
    if webhook:
        for receiver in config["receivers"]:
            receiver["webhook_configs"] = [
                {"url": f"{webhook}/{receiver['name']}", "send_resolved": False}
            ]
    if group_interval:
        for route in [config["route"], *config["route"].get("routes", [])]:
            for key in ("group_wait", "group_interval"):
                if key in route or route is config["route"]:
                    route[key] = group_interval
    return config


def write_configs(
    directory: Path,
    app: str,
    alertmanager: str,
    *,
    collector: str | None = None,
    interval: str | None = None,
    hold: str | None = None,
    webhook: str | None = None,
) -> tuple[Path, Path]:
    """Write prometheus.yml (with the rule files beside it) and alertmanager.yml to `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in RULE_FILES:
        (directory / name).write_text(yaml.safe_dump(rules(name, hold)), encoding="utf-8")
    prometheus = directory / "prometheus.yml"
    prometheus.write_text(
        yaml.safe_dump(prometheus_config(app, alertmanager, collector, interval)), "utf-8"
    )
    am = directory / "alertmanager.yml"
    am.write_text(yaml.safe_dump(alertmanager_config(webhook, interval)), encoding="utf-8")
    return prometheus, am


def prometheus_command(config: Path, data: Path, port: int) -> list[str]:
    return [
        shutil.which("prometheus") or "prometheus",
        f"--config.file={config}",
        f"--storage.tsdb.path={data}",
        f"--web.listen-address={HOST}:{port}",
        "--enable-feature=exemplar-storage",
        "--log.level=warn",
    ]


def alertmanager_command(config: Path, data: Path, port: int) -> list[str]:
    """Debian names the binary prometheus-alertmanager; the upstream one is alertmanager."""
    binary = shutil.which("prometheus-alertmanager") or "alertmanager"
    return [
        binary,
        f"--config.file={config}",
        f"--storage.path={data}",
        f"--web.listen-address={HOST}:{port}",
        "--cluster.listen-address=",  # no gossip port: a single instance
        "--log.level=warn",
    ]


# --- make stack ----------------------------------------------------------------------------------


def _wait_ready(url: str, process: subprocess.Popen, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} did not become ready at {url}")


def _request(base: str, method: str, path: str, body=None, token=None) -> int:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def demo_traffic(base: str, seconds: float, rate: float) -> None:
    """Reads, writes, a few 404s and failed logins, at `rate` a second for `seconds` at most."""
    user = {"username": "demo", "email": "demo@example.org", "password": "demo password 1"}
    _request(base, "POST", "/api/v1/users/register", user)
    login = urllib.request.Request(
        base + "/api/v1/users/login",
        data=json.dumps({"username": "demo", "password": user["password"]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(login, timeout=5) as response:
        token = json.load(response)["access_token"]
    end = time.monotonic() + seconds
    made = 0
    while time.monotonic() < end:
        roll = random.random()
        if roll < 0.6:
            _request(base, "GET", "/api/v1/posts")
        elif roll < 0.8:
            _request(base, "POST", "/api/v1/posts", {"title": f"t{made}", "body": "b"}, token)
        elif roll < 0.9:
            _request(base, "GET", f"/api/v1/posts/{random.randint(1, 10_000)}")
        elif roll < 0.95:
            _request(base, "GET", "/no/such/route")
        else:
            _request(base, "POST", "/api/v1/users/login", {"username": "demo", "password": "x"})
        made += 1
        time.sleep(1 / rate)
    print(f"demo traffic done: {made} requests", flush=True)


def main() -> int:
    directory = Path(os.environ.get("STACK_DIR") or tempfile.mkdtemp(prefix="blog-api-stack-"))
    ports = {
        name: int(os.environ.get(f"{name.upper()}_PORT", default))
        for name, default in (("app", 8000), ("prometheus", 9090), ("alertmanager", 9093))
    }
    app, prom, am = (f"{HOST}:{ports[n]}" for n in ("app", "prometheus", "alertmanager"))
    prometheus_yml, alertmanager_yml = write_configs(directory / "config", app, am)
    database = f"sqlite:///{directory / 'blog.db'}"
    env = {
        **os.environ,
        "APP_ENV": "development",
        "DATABASE_URL": database,
        "HOST": HOST,
        "PORT": str(ports["app"]),
        "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
    }
    env.pop("METRICS_TOKEN", None)
    bin_dir = Path(sys.executable).parent
    subprocess.run([str(bin_dir / "flask"), "--app", "blog_api", "db", "upgrade"], env=env,
                   cwd=ROOT, check=True, capture_output=True)  # fmt: skip
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)
    processes: list[tuple[str, subprocess.Popen]] = []

    def start(name: str, command: list[str], process_env=None) -> subprocess.Popen:
        out = (logs / f"{name}.log").open("wb")
        process = subprocess.Popen(command, cwd=ROOT, env=process_env, stdout=out, stderr=out,
                                   start_new_session=True)  # fmt: skip
        processes.append((name, process))
        return process

    try:
        gunicorn = start(
            "app",
            [str(bin_dir / "gunicorn"), "-c", "gunicorn.conf.py", "blog_api:create_app()"],
            env,
        )
        _wait_ready(f"http://{app}/health/live", gunicorn, "the app")
        am_command = alertmanager_command(alertmanager_yml, directory / "am", ports["alertmanager"])
        alertmanager = start("alertmanager", am_command)
        _wait_ready(f"http://{am}/-/ready", alertmanager, "Alertmanager")
        prom_command = prometheus_command(prometheus_yml, directory / "tsdb", ports["prometheus"])
        prometheus = start("prometheus", prom_command)
        _wait_ready(f"http://{prom}/-/ready", prometheus, "Prometheus")
        print(
            f"""
blog-api stack is up (files and logs in {directory}):
  API            http://{app}/api/v1/posts   docs http://{app}/api/docs   /health  /metrics
  Prometheus     http://{prom}/classic/targets   http://{prom}/classic/alerts   (Debian's 2.x UI;
                 Prometheus 3 serves /targets and /alerts)   http://{prom}/graph
  Alertmanager   http://{am}/#/alerts
Alerts to see: stop the app's workers (kill the gunicorn master: BlogApiDown in ~1 minute);
the Collector is not running here, so OtelCollectorDown fires after 5 minutes (a ticket).
Ctrl-C stops everything.""",
            flush=True,
        )
        seconds = float(os.environ.get("DEMO_SECONDS", "600"))
        if seconds > 0:
            demo_traffic(f"http://{app}", seconds, float(os.environ.get("DEMO_RATE", "5")))
        while all(p.poll() is None for name, p in processes if name != "app"):
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for _name, process in reversed(processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _name, process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        print("stopped: app, Prometheus, Alertmanager", flush=True)


if __name__ == "__main__":
    sys.exit(main())
