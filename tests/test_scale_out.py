"""Past one machine, simulated on this one: two instances behind nginx, scraped by Prometheus.

Each instance is the app as production runs it (gunicorn with gunicorn.conf.py, 2 workers, a
metrics directory of its own) on its own port; both use the real PostgreSQL (migrated by the
real migrations) and the real Redis (a key prefix of this run's own). Debian's nginx runs
deploy/nginx.conf with both in its upstream (and a header saying which one answered), and the
apps trust it for the client's address (TRUSTED_PROXIES=1). Debian's Prometheus scrapes each
instance directly every second with deploy/prometheus.yml's blog-api job (its bearer token too).

What it shows: PromQL's `sum` over the instances is exactly the traffic sent through nginx; a
username is throttled after the same number of failures whichever instance answers, counted
under the client's own address; a rolling restart done as the README says ("Rolling restart")
fails no request, and loses no count.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
import yaml

from . import databases
from .conftest import PASSWORD
from .live_server import HOST, LiveServer, Process, start_prometheus
from .nginx_proxy import UPSTREAM_HEADER, Nginx
from .services import REDIS_URL, missing
from .test_prometheus_live import LAST_GOOD_SCRAPE, query

pytestmark = [pytest.mark.slow, pytest.mark.prometheus, pytest.mark.postgres, pytest.mark.redis]

ROOT = Path(__file__).resolve().parent.parent
JOB = "blog-api"
LOGIN_LIMIT = 5
METRICS_TOKEN = "scale-out-metrics-token"
COUNT = "http_server_request_duration_seconds_count"
# Clients come from another loopback address than nginx's, so the app tells them apart.
CLIENT_ADDRESS = "127.0.0.2"
STALENESS_S = 1.0  # a worker's snapshot is at most 0.5 s old (METRICS_SNAPSHOT_INTERVAL)
SETTLE_TIMEOUT_S = 20.0


@dataclass
class Topology:
    instances: list[LiveServer]
    proxy: Nginx
    prometheus: Process
    redis: redis.Redis
    key_prefix: str  # of the rate limits' keys in Redis

    def servers(self, down: LiveServer | None = None) -> list[str]:
        """nginx's upstream servers, `down` marked so."""
        return [self.address(i) + (" down" if i is down else "") for i in self.instances]

    def address(self, instance: LiveServer) -> str:
        return f"{HOST}:{instance.port}"


def prometheus_config(targets: list[str], token_file: Path) -> dict:
    """deploy/prometheus.yml's blog-api job, scraping `targets` every second, and nothing else."""
    deployed = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text(encoding="utf-8"))
    [job] = [job for job in deployed["scrape_configs"] if job["job_name"] == JOB]
    job = {
        **job,
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "static_configs": [{"targets": targets}],
    }
    assert "credentials_file" in job.get("authorization", {}), "the job sends no METRICS_TOKEN"
    job["authorization"] = {**job["authorization"], "credentials_file": str(token_file)}
    return {"global": {"scrape_interval": "1s"}, "scrape_configs": [job]}


def wait_until_ready(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if Client(port).call("GET", "/health/ready")[0] == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, f"127.0.0.1:{port} never became ready"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def topology(tmp_path_factory, postgres_url) -> Iterator[Topology]:
    shared_redis = redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1)
    try:
        shared_redis.ping()
    except redis.RedisError as exc:
        missing(f"Redis is not reachable at {REDIS_URL}: {exc}")
    databases.empty_postgres(postgres_url)  # postgres_url ran the real migrations
    tmp = tmp_path_factory.mktemp("scale_out")
    key_prefix = f"blog-api-scale-out-{uuid.uuid4().hex}"
    shared = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": REDIS_URL,
        "RATE_LIMIT_KEY_PREFIX": key_prefix,
        "TRUSTED_PROXIES": "1",
        "METRICS_TOKEN": METRICS_TOKEN,
        "LOGIN_LIMIT_PER_USERNAME": f"{LOGIN_LIMIT} per 15 minutes",
        "WRITE_LIMIT_PER_ADDRESS": "100000 per minute",  # the rolling restart's steady writes
    }
    instances = [
        LiveServer(tmp, workers=2, METRICS_MULTIPROCESS_DIR=str(tmp / f"metrics-{n}"), **shared)
        for n in range(2)
    ]
    token_file = tmp / "metrics_token"
    token_file.write_text(METRICS_TOKEN, encoding="utf-8")
    config = prometheus_config([f"{HOST}:{i.port}" for i in instances], token_file)
    (tmp / "prometheus").mkdir()
    with (
        instances[0],
        instances[1],
        Nginx([f"{HOST}:{i.port}" for i in instances], show_upstream=True) as proxy,
        start_prometheus(config, tmp / "prometheus") as prometheus,
    ):
        for instance in instances:
            wait_until_ready(instance.port)
        try:
            yield Topology(instances, proxy, prometheus, shared_redis, key_prefix)
        finally:
            for key in shared_redis.scan_iter(f"{key_prefix}*"):
                shared_redis.delete(key)


class Client:
    """Requests through one port, each on a new connection, remembering what answered them."""

    def __init__(self, port: int, token: str | None = None, source: str = HOST) -> None:
        self.port, self.token, self.source = port, token, source
        self.sent: Counter = Counter()  # (route, method, status) -> requests
        self.answered_by: Counter = Counter()  # nginx's upstream address -> requests
        self.last_answered_by: str | None = None

    def call(self, method: str, path: str, body=None) -> tuple[int, dict | None]:
        connection = http.client.HTTPConnection(
            HOST, self.port, timeout=10, source_address=(self.source, 0)
        )
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            connection.request(method, path, json.dumps(body) if body else None, headers)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        self.last_answered_by = response.getheader(UPSTREAM_HEADER)
        self.answered_by[self.last_answered_by] += 1
        is_json = response.getheader("Content-Type") == "application/json"
        return response.status, json.loads(payload) if is_json else None

    def send(self, method: str, path: str, route: str, status: int, body=None) -> dict | None:
        """One request that must answer `status`, counted under its route."""
        got, answer = self.call(method, path, body)
        assert got == status, (method, path, got, answer)
        self.sent[(route, method, str(status))] += 1
        return answer


# --- Prometheus ---------------------------------------------------------------------------------


def wait_for_scrapes_after(topology: Topology, moment: float) -> None:
    """Until Prometheus holds, for every instance, a good scrape that started after `moment`."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        scraped = [float(r["value"][1]) for r in query(topology.prometheus, LAST_GOOD_SCRAPE)]
        if len(scraped) == len(topology.instances) and min(scraped) > moment:
            return
        assert time.monotonic() < deadline, f"no scrape of both instances after {moment}"
        time.sleep(0.2)


def requests_by(prometheus: Process, *labels: str) -> Counter:
    """`sum by (labels) (http_server_request_duration_seconds_count)` over both instances."""
    promql = f'sum by ({", ".join(labels)}) ({COUNT}{{job="{JOB}"}})'
    return Counter(
        {
            tuple(r["metric"].get(k, "") for k in labels): float(r["value"][1])
            for r in query(prometheus, promql)
        }
    )


def added(before: Counter, after: Counter) -> Counter:
    """The API's requests counted between two `requests_by`, by label set (those that grew)."""
    grown = {k: after[k] - before[k] for k in set(before) | set(after) if k[0] in API_ROUTES}
    assert all(n >= 0 for n in grown.values()), f"a counter went down: {grown}"
    return Counter({key: n for key, n in grown.items() if n})


def failed_logins(prometheus: Process) -> float:
    result = query(prometheus, f'sum(blog_api_logins_total{{job="{JOB}", outcome="failure"}})')
    return float(result[0]["value"][1]) if result else 0.0


def settled(topology: Topology) -> None:
    """Wait until Prometheus holds everything the instances answered so far."""
    wait_for_scrapes_after(topology, time.time() + STALENESS_S)


# --- the tests ----------------------------------------------------------------------------------

ROUTE_LIST = "/api/v1/posts"
ROUTE_POST = "/api/v1/posts/<int:post_id>"
ROUTE_REGISTER = "/api/v1/users/register"
ROUTE_LOGIN = "/api/v1/users/login"
ROUTE_ME = "/api/v1/users/me"
API_ROUTES = {ROUTE_LIST, ROUTE_POST, ROUTE_REGISTER, ROUTE_LOGIN, ROUTE_ME}


def register(client: Client, username: str) -> str:
    """Register `username` and log in; its access token."""
    user = {"username": username, "email": f"{username}@example.org", "password": PASSWORD}
    client.send("POST", "/api/v1/users/register", ROUTE_REGISTER, 201, user)
    credentials = {"username": username, "password": PASSWORD}
    return client.send("POST", "/api/v1/users/login", ROUTE_LOGIN, 200, credentials)["access_token"]


def test_promql_sums_over_both_instances_are_exactly_what_was_sent(topology) -> None:
    prometheus = topology.prometheus
    settled(topology)
    labels = ("http_route", "http_request_method", "http_response_status_code")
    before, failures_before = requests_by(prometheus, *labels), failed_logins(prometheus)
    by_instance_before = requests_by(prometheus, "instance", "http_route")

    client = Client(topology.proxy.port, source=CLIENT_ADDRESS)
    user = {"username": "sumsuser", "email": "sums@example.org", "password": PASSWORD}
    token = register(client, "sumsuser")
    client.send("POST", "/api/v1/users/register", ROUTE_REGISTER, 409, user)
    client.send("POST", "/api/v1/users/register", ROUTE_REGISTER, 422, {"username": "x"})
    wrong = {"username": "sumsuser", "password": "not-the-password"}
    for _ in range(3):
        client.send("POST", "/api/v1/users/login", ROUTE_LOGIN, 401, wrong)
    authorized = Client(topology.proxy.port, token, CLIENT_ADDRESS)
    ids = [
        authorized.send("POST", "/api/v1/posts", ROUTE_LIST, 201, {"title": f"t{n}", "body": "b"})[
            "id"
        ]
        for n in range(4)
    ]
    authorized.send("POST", "/api/v1/posts", ROUTE_LIST, 422, {"title": ""})
    client.send("POST", "/api/v1/posts", ROUTE_LIST, 401, {"title": "t", "body": "b"})
    authorized.send("GET", "/api/v1/users/me", ROUTE_ME, 200)
    for n in range(12):
        client.send("GET", "/api/v1/posts", ROUTE_LIST, 200)
        client.send("GET", f"/api/v1/posts/{ids[n % len(ids)]}", ROUTE_POST, 200)
    for _ in range(3):
        client.send("GET", "/api/v1/posts/999999", ROUTE_POST, 404)
    sent = client.sent + authorized.sent

    settled(topology)
    assert added(before, requests_by(prometheus, *labels)) == sent
    assert failed_logins(prometheus) - failures_before == 3
    # Both instances served some of it: nginx balanced the traffic, Prometheus summed both.
    by_instance = requests_by(prometheus, "instance", "http_route")
    served = Counter()
    for (instance, route), value in by_instance.items():
        if route in API_ROUTES:
            served[instance] += value - by_instance_before[(instance, route)]
    assert set(served) == {topology.address(i) for i in topology.instances}
    assert all(served.values()) and sum(served.values()) == sum(sent.values())
    assert set(client.answered_by) == set(served)


def test_a_username_is_throttled_after_the_same_failures_whichever_instance_answers(
    topology,
) -> None:
    client = Client(topology.proxy.port, source=CLIENT_ADDRESS)
    register(client, "throttled")
    wrong = {"username": "throttled", "password": "not-the-password"}
    attempts = []
    for _ in range(LOGIN_LIMIT + 3):
        status, _ = client.call("POST", "/api/v1/users/login", wrong)
        attempts.append((status, client.last_answered_by))
    assert [status for status, _ in attempts] == [401] * LOGIN_LIMIT + [429] * 3
    # nginx's workers each alternate between the instances: both counted failures, and both
    # refused the guesses past the limit.
    both = {topology.address(i) for i in topology.instances}
    assert {by for status, by in attempts if status == 401} == both
    assert {by for status, by in attempts if status == 429} == both
    # The failures were counted for the client's address, not nginx's (TRUSTED_PROXIES=1).
    keys = topology.redis.scan_iter(f"{topology.key_prefix}:LIMITER/login-address/*")
    assert {key.decode().split("/")[2] for key in keys} == {CLIENT_ADDRESS}
    # The right password is refused too until the window passes (the account, not the guess).
    right = {"username": "throttled", "password": PASSWORD}
    assert [client.call("POST", "/api/v1/users/login", right)[0] for _ in range(2)] == [429, 429]


@dataclass
class SteadyTraffic:
    """Requests through nginx one after the other, reads and writes, until stopped (or `limit`)."""

    client: Client
    post_id: int
    limit: int = 4000
    outcomes: list = field(default_factory=list)  # (status or the exception, answered by)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        requests = [
            ("GET", "/api/v1/posts", ROUTE_LIST, None),
            ("GET", f"/api/v1/posts/{self.post_id}", ROUTE_POST, None),
            ("POST", "/api/v1/posts", ROUTE_LIST, {"title": "steady", "body": "traffic"}),
        ]
        while not self.stop.is_set() and len(self.outcomes) < self.limit:
            method, path, route, body = requests[len(self.outcomes) % len(requests)]
            try:
                status, _ = self.client.call(method, path, body)
            except (OSError, http.client.HTTPException) as exc:
                self.outcomes.append((repr(exc), None))
                continue
            self.client.sent[(route, method, str(status))] += 1
            self.outcomes.append((status, self.client.last_answered_by))
            time.sleep(0.005)

    def answered_since(self, start: int) -> set:
        return {upstream for _, upstream in self.outcomes[start:]}


def test_a_rolling_restart_fails_no_request(topology) -> None:
    proxy, prometheus = topology.proxy, topology.prometheus
    token = register(Client(proxy.port, source=CLIENT_ADDRESS), "steady")
    client = Client(proxy.port, token, CLIENT_ADDRESS)
    post = client.send("POST", "/api/v1/posts", ROUTE_LIST, 201, {"title": "t", "body": "b"})
    client.sent.clear()
    settled(topology)
    labels = ("http_route", "http_request_method", "http_response_status_code")
    before = requests_by(prometheus, *labels)

    traffic = SteadyTraffic(client, post["id"])
    thread = threading.Thread(target=traffic.run)
    thread.start()
    try:
        for instance in topology.instances:
            # The procedure of the README's "Rolling restart", one instance after the other.
            proxy.reload(topology.servers(down=instance))  # 1. out of nginx's upstream
            instance.__exit__()  # 2. SIGTERM: gunicorn finishes what it has, then exits
            assert instance.process.returncode == 0, instance.log()[-3000:]
            instance.__enter__()  # 3. start it again (same port, same metrics directory)
            wait_until_ready(instance.port)  # 4. ready: its database answers
            back = len(traffic.outcomes)
            proxy.reload(topology.servers())  # 5. back in nginx's upstream
            deadline = time.monotonic() + 10
            while topology.address(instance) not in traffic.answered_since(back):
                assert time.monotonic() < deadline and thread.is_alive(), "never back in"
                time.sleep(0.05)
    finally:
        traffic.stop.set()
        thread.join(timeout=30)
    statuses = Counter(status for status, _ in traffic.outcomes)
    assert set(statuses) == {200, 201}, statuses  # no 502, no connection refused or reset
    assert len(traffic.outcomes) < traffic.limit, "the traffic stopped before the restarts ended"
    # Each instance kept its counts through its restart (its METRICS_MULTIPROCESS_DIR): the sums
    # over both are still exactly what was sent.
    settled(topology)
    assert added(before, requests_by(prometheus, *labels)) == client.sent
