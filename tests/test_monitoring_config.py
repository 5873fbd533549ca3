"""The monitoring stack as code: Collector, Prometheus, alert rules, Grafana, compose.

promtool checks the Prometheus config and the alert rules and runs the rules' unit tests. The
Collector config, the dashboard and the compose file cannot be run here (no Docker), so their
wiring is checked by reading them. `dashboard_and_alert_metric_names()` lists the metric
families the dashboard and the alerts query, for a live /metrics scrape to confirm.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from .services import require_binary

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COLLECTOR_CONFIG = ROOT / "otel-collector.yaml"
PROMETHEUS_CONFIG = DEPLOY / "prometheus.yml"
ALERT_RULES = DEPLOY / "alerts.yml"
ALERT_TESTS = DEPLOY / "alerts.test.yml"
SLO_RULES = DEPLOY / "slo-rules.yml"  # generated from deploy/slos.yml (tests/test_slo_rules.py)
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "blog-api.json"
GRAFANA_DATASOURCES = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
GRAFANA_DASHBOARDS = DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yml"
COMPOSE = DEPLOY / "docker-compose.yml"
DOCKERFILE = DEPLOY / "Dockerfile"
PROCFILE = ROOT / "Procfile"
MAKEFILE = ROOT / "Makefile"

TOKEN_FILE = "/etc/prometheus/metrics_token"
GUNICORN_COMMAND = 'gunicorn -c gunicorn.conf.py "blog_api:create_app()"'

ALERTS = {
    "BlogApiDown",
    "BlogApiTargetMissing",
    "BlogApiUnhealthy",
    "BlogApiLoginBruteForce",
    "BlogApiTraceExportFailing",
    "BlogApiSpansDropped",
    "OtelCollectorDown",
}
METRIC_FAMILIES = {
    "http_server_request_duration_seconds",
    "http_server_active_requests",
    "blog_api_logins_total",
    "otel_sdk_exporter_span_exported_total",
    "otel_sdk_processor_span_processed_total",
    # process, GC, pool and worker families (telemetry.runtime, .pool, .gunicorn_workers)
    "process_cpu_time_seconds_total",
    "process_memory_usage_bytes",
    "process_memory_virtual_bytes",
    "process_unix_file_descriptors",
    "process_threads",
    "cpython_gc_collections_total",
    "db_client_connections",
    "db_client_connection_max",
    "db_client_connection_pending_requests",
    "gunicorn_workers",
    "gunicorn_worker_exits_total",
}


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def port_of(endpoint: str) -> int | None:
    """The port of `host:port` or `scheme://host:port/...`."""
    return urlsplit(endpoint if "//" in endpoint else "//" + endpoint).port


def host_of(endpoint: str) -> str | None:
    return urlsplit(endpoint if "//" in endpoint else "//" + endpoint).hostname


# --- PromQL metric names ----------------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_COMMENT = re.compile(r"#[^\n]*")
_MATCHERS = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
# An identifier not glued to a number, a `$variable` or another name (1e3, 5m, $__interval).
_NAME = re.compile(r"(?<![\w.:$])[a-zA-Z_:][\w:]*")
_KEYWORDS = frozenset(
    "and or unless atan2 bool offset by without on ignoring group_left group_right inf nan".split()
)
_HISTOGRAM_SERIES = re.compile(r"_(?:bucket|count|sum)$")


def metric_names_in(expr: str) -> set[str]:
    """Return the metric names a PromQL expression selects (`{__name__=...}` is not seen)."""
    text = _STRING.sub('""', expr)
    text = _COMMENT.sub("", text)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _NAME.finditer(text):
        name = match.group()
        if name.lower() in _KEYWORDS or text[match.end() :].lstrip().startswith("("):
            continue  # an operator, or a function/aggregation call
        names.add(name)
    return names


def dashboard_exprs() -> list[str]:
    """Every PromQL expression of the dashboard's panels (rows' nested panels included)."""
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = []
    for panel in _panels(dashboard["panels"]):
        exprs.extend(target["expr"] for target in panel.get("targets", []) if "expr" in target)
    return exprs


def alert_exprs() -> list[str]:
    """The expressions of every rule Prometheus loads: the alerts and the SLO rules."""
    return [
        rule["expr"]
        for path in (ALERT_RULES, SLO_RULES)
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
    ]


def dashboard_and_alert_metric_names() -> set[str]:
    """The metric families the dashboard and the alert rules need from the app's /metrics.

    Histogram series (`_bucket`, `_count`, `_sum`) are reported as their family name; `up` (made
    by Prometheus itself, not the app) and recording rules' series (`slo:...`, with a colon) are
    left out.
    """
    raw: set[str] = set()
    for expr in dashboard_exprs() + alert_exprs():
        raw |= metric_names_in(expr)
    # `x_count` is a histogram's series only if `x_bucket` is queried too: a gauge could end in
    # `_count` (none does: telemetry.providers renames the conventions' `.count` gauges)
    histograms = {name.removesuffix("_bucket") for name in raw if name.endswith("_bucket")}
    names = {
        _HISTOGRAM_SERIES.sub("", name)
        if not name.endswith("_count") or name.removesuffix("_count") in histograms
        else name
        for name in raw
    }
    return {name for name in names if ":" not in name} - {"up"}


def _panels(panels: list[dict]) -> list[dict]:
    flat = []
    for panel in panels:
        flat.append(panel)
        flat.extend(_panels(panel.get("panels", [])))
    return flat


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('up{job="blog-api"} == 0', {"up"}),
        ("sum by (le, http_route) (rate(h_bucket[5m]))", {"h_bucket"}),
        (
            "sum(rate(a_total[5m])) without (job) / sum(rate(b_total[$__rate_interval]))",
            {"a_total", "b_total"},
        ),
        ('label_replace(x, "dst", "not_a_metric", "src", "(.*)")', {"x"}),
        ('a{route=~"/api/v1/posts/<int:post_id>"} / on(instance) group_left(job) b', {"a", "b"}),
        ("rate(x[5m] offset 1h) > bool 1e3 and y unless z", {"x", "y", "z"}),
        ("histogram_quantile(0.99, sum(rate(h_bucket[5m:1m])) by (le))", {"h_bucket"}),
        ("max_over_time(g[1h]) # a comment naming not_a_metric", {"g"}),
        ("vector(1) + time()", set()),
    ],
)
def test_metric_names_in(expr: str, names: set[str]) -> None:
    assert metric_names_in(expr) == names


def test_dashboard_and_alerts_query_exactly_the_app_metric_families() -> None:
    assert dashboard_and_alert_metric_names() == METRIC_FAMILIES


# --- Prometheus: config, rules, rule unit tests ------------------------------------------------


def promtool(*args: str, cwd: Path) -> str:
    """Run promtool in `cwd`; fail the test with its output unless it succeeds."""
    result = subprocess.run(
        [require_binary("promtool"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


@pytest.mark.prometheus
def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    # promtool checks that credentials_file exists; the real one exists only inside the
    # Prometheus container. Check a copy whose only change is that path.
    text = PROMETHEUS_CONFIG.read_text(encoding="utf-8")
    assert text.count(TOKEN_FILE) == 1
    token = tmp_path / "metrics_token"
    token.write_text("test-token", encoding="utf-8")
    (tmp_path / "prometheus.yml").write_text(text.replace(TOKEN_FILE, str(token)), "utf-8")
    for rules in (ALERT_RULES, SLO_RULES):
        (tmp_path / rules.name).write_text(rules.read_text(encoding="utf-8"), "utf-8")

    output = promtool("check", "config", "prometheus.yml", cwd=tmp_path)

    assert f"SUCCESS: {len(ALERTS)} rules found" in output
    assert "SUCCESS: 0 rules found" not in output


def test_prometheus_scrapes_the_app_and_the_collector() -> None:
    config = load_yaml(PROMETHEUS_CONFIG)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {
        name: [t for static in job["static_configs"] for t in static["targets"]]
        for name, job in jobs.items()
    }

    assert config["rule_files"] == [ALERT_RULES.name, SLO_RULES.name]
    [alertmanagers] = config["alerting"]["alertmanagers"]
    assert alertmanagers["static_configs"] == [{"targets": ["alertmanager:9093"]}]
    assert targets["blog-api"] == ["app:8000"]
    assert jobs["blog-api"].get("metrics_path", "/metrics") == "/metrics"
    assert jobs["blog-api"].get("scrape_interval", config["global"]["scrape_interval"]) == "15s"
    assert jobs["blog-api"]["authorization"] == {"type": "Bearer", "credentials_file": TOKEN_FILE}
    collector = load_yaml(COLLECTOR_CONFIG)
    exporter_port = port_of(collector["exporters"]["prometheus"]["endpoint"])
    [reader] = collector["service"]["telemetry"]["metrics"]["readers"]
    own_port = reader["pull"]["exporter"]["prometheus"]["port"]
    assert sorted(targets["otel-collector"]) == [
        f"otel-collector:{own_port}",
        f"otel-collector:{exporter_port}",
    ]


@pytest.mark.prometheus
def test_alert_rules_pass_promtool() -> None:
    output = promtool("check", "rules", ALERT_RULES.name, cwd=DEPLOY)
    assert f"SUCCESS: {len(ALERTS)} rules found" in output


@pytest.mark.prometheus
def test_alert_rule_unit_tests_pass() -> None:
    output = promtool("test", "rules", ALERT_TESTS.name, cwd=DEPLOY)
    assert "SUCCESS" in output


def test_every_alert_is_documented_and_tested_firing_and_not_firing() -> None:
    rules = [rule for group in load_yaml(ALERT_RULES)["groups"] for rule in group["rules"]]
    cases = [case for test in load_yaml(ALERT_TESTS)["tests"] for case in test["alert_rule_test"]]

    assert {rule["alert"] for rule in rules} == ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
        job = "otel-collector" if rule["alert"].startswith("OtelCollector") else "blog-api"
        assert f'job="{job}"' in rule["expr"], rule["alert"]
    firing = {case["alertname"] for case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert firing == ALERTS
    assert quiet == ALERTS


# --- OpenTelemetry Collector -------------------------------------------------------------------

KINDS = ("receivers", "processors", "exporters")


@pytest.fixture(scope="module")
def collector() -> dict:
    return load_yaml(COLLECTOR_CONFIG)


def component_type(component_id: str) -> str:
    """`otlp_grpc/jaeger` -> `otlp_grpc`."""
    return component_id.split("/", 1)[0]


def pipelines_of(collector: dict, signal: str) -> list[dict]:
    pipelines = collector["service"]["pipelines"]
    return [p for pid, p in pipelines.items() if component_type(pid) == signal]


def test_collector_receives_otlp_over_grpc_4317_and_http_4318(collector: dict) -> None:
    protocols = collector["receivers"]["otlp"]["protocols"]

    assert port_of(protocols["grpc"]["endpoint"]) == 4317
    assert port_of(protocols["http"]["endpoint"]) == 4318
    # Inside a container, localhost would be unreachable from the app.
    assert host_of(protocols["grpc"]["endpoint"]) == "0.0.0.0"
    assert host_of(protocols["http"]["endpoint"]) == "0.0.0.0"


def test_collector_pipelines_limit_memory_first_then_batch(collector: dict) -> None:
    [traces] = pipelines_of(collector, "traces")

    assert traces["processors"] == ["memory_limiter", "batch"]
    for pipeline in collector["service"]["pipelines"].values():
        assert pipeline["processors"][0] == "memory_limiter"
    limiter = collector["processors"]["memory_limiter"]
    assert limiter["check_interval"]
    assert 0 < limiter["spike_limit_percentage"] < limiter["limit_percentage"] <= 100


def test_collector_sends_traces_to_jaeger_over_otlp(collector: dict) -> None:
    [traces] = pipelines_of(collector, "traces")

    assert "otlp" in traces["receivers"]
    assert traces["exporters"], "traces go nowhere"
    for exporter_id in traces["exporters"]:
        # `jaeger` (the exporter) was removed in v0.85; Jaeger takes OTLP.
        assert component_type(exporter_id) in ("otlp_grpc", "otlp", "otlp_http", "otlphttp")
        exporter = collector["exporters"][exporter_id]
        assert host_of(exporter["endpoint"]) == "jaeger"
        assert port_of(exporter["endpoint"]) in (4317, 4318)
        assert exporter["tls"]["insecure"] is True


def test_collector_exports_received_metrics_to_prometheus(collector: dict) -> None:
    metrics = pipelines_of(collector, "metrics")

    assert any("otlp" in p["receivers"] and "prometheus" in p["exporters"] for p in metrics), (
        "no metrics pipeline from OTLP to the prometheus exporter"
    )
    assert port_of(collector["exporters"]["prometheus"]["endpoint"]) == 8889


def test_collector_health_check_is_enabled(collector: dict) -> None:
    assert "health_check" in collector["service"]["extensions"]
    assert port_of(collector["extensions"]["health_check"]["endpoint"]) == 13133


def test_collector_components_are_all_defined_and_all_used(collector: dict) -> None:
    connectors = set(collector.get("connectors") or {})
    used: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for pipeline_id, pipeline in collector["service"]["pipelines"].items():
        for kind in KINDS:
            for component_id in pipeline.get(kind, []):
                if kind != "processors" and component_id in connectors:
                    continue
                assert component_id in (collector.get(kind) or {}), (
                    f"{pipeline_id} uses {kind[:-1]} {component_id!r}, which is not defined"
                )
                used[kind].add(component_id)

    for kind in KINDS:
        assert set(collector.get(kind) or {}) == used[kind], f"{kind} defined but unused"
    assert set(collector.get("extensions") or {}) == set(collector["service"]["extensions"])
    assert all(
        any(c in p.get("receivers", []) for p in collector["service"]["pipelines"].values())
        and any(c in p.get("exporters", []) for p in collector["service"]["pipelines"].values())
        for c in connectors
    ), "a connector must be both exporter and receiver"


# --- Grafana -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_dashboard_panels_all_query_prometheus(dashboard: dict) -> None:
    panels = [p for p in _panels(dashboard["panels"]) if p["type"] != "row"]

    assert dashboard["uid"] and 36 <= dashboard["schemaVersion"] <= 41
    assert len({p["id"] for p in panels}) == len(panels), "panel ids must be unique"
    for panel in panels:
        assert panel["datasource"]["uid"] == "prometheus", panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert metric_names_in(target["expr"]), f"{panel['title']}: {target['expr']}"
            assert target.get("datasource", {"uid": "prometheus"})["uid"] == "prometheus"


def test_dashboard_covers_the_contract(dashboard: dict) -> None:
    exprs = "\n".join(dashboard_exprs())

    for needle in [
        "histogram_quantile(0.5,",
        "histogram_quantile(0.95,",
        "histogram_quantile(0.99,",
        'http_response_status_code=~"5.."',
        "http_server_active_requests",
        "sum by (outcome)",
        'error_type!=""',
        # spans dropped before export, by reason (queue_full, shutdown)
        "sum by (error_type) (rate(otel_sdk_processor_span_processed_total",
        "up{",
        # 0, not "No data", when nothing failed
        '"5.."}[$__rate_interval])) or vector(0))',
        "slo:period_error_budget_remaining:ratio",
        "slo:sli_error:ratio_rate1h",
    ]:
        assert needle in exprs, needle


def test_requests_without_a_route_have_one_legend_on_every_route_panel(dashboard: dict) -> None:
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            if "{{http_route}}" in target.get("legendFormat", ""):
                assert '"http_route", "(no route)", "http_route", ""' in target["expr"], panel[
                    "title"
                ]


@pytest.mark.prometheus
def test_dashboard_exprs_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses recording rules' expressions; Grafana's variables become literals first.
    grafana_vars = {"$__rate_interval": "5m", "$__interval": "1m", "$route": ".*"}
    rules = []
    for number, expr in enumerate(dashboard_exprs()):
        for variable, value in grafana_vars.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown Grafana variable in {expr}"
        rules.append({"record": f"dashboard:expr_{number}", "expr": expr})
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), "utf-8")

    promtool("check", "rules", path.name, cwd=tmp_path)


def test_grafana_provisioning_points_at_prometheus_and_the_dashboards() -> None:
    datasource, jaeger = load_yaml(GRAFANA_DATASOURCES)["datasources"]
    [provider] = load_yaml(GRAFANA_DASHBOARDS)["providers"]
    grafana = load_yaml(COMPOSE)["services"]["grafana"]

    assert datasource["uid"] == "prometheus"
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    # exemplars (trace_id on histogram buckets) link to the Jaeger datasource
    assert (jaeger["type"], jaeger["uid"], jaeger["url"]) == (
        "jaeger",
        "jaeger",
        "http://jaeger:16686",
    )
    [destination] = datasource["jsonData"]["exemplarTraceIdDestinations"]
    assert destination == {"name": "trace_id", "datasourceUid": "jaeger"}
    command = " ".join(load_yaml(COMPOSE)["services"]["prometheus"]["command"])
    assert "--enable-feature=exemplar-storage" in command
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    assert "./grafana/dashboards:/var/lib/grafana/dashboards:ro" in grafana["volumes"]
    assert "./grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"


# --- docker compose, Dockerfile, Procfile ------------------------------------------------------


def test_compose_mounts_only_files_that_exist() -> None:
    services = load_yaml(COMPOSE)["services"]

    assert set(services) == {
        "migrate",
        "app",
        "nginx",
        "postgres",
        "redis",
        "otel-collector",
        "jaeger",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    build = services["app"]["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
    assert (
        "../otel-collector.yaml:/etc/otelcol-contrib/config.yaml:ro"
        in services["otel-collector"]["volumes"]
    )


def test_compose_configures_the_app_as_the_contract_says() -> None:
    services = load_yaml(COMPOSE)["services"]
    env = services["app"]["environment"]

    assert env["PORT"] == "8000"
    assert env["WEB_CONCURRENCY"] == "2"
    assert env["DATABASE_URL"] == "postgresql://blog:blog@postgres:5432/blog"
    assert env["REDIS_URL"] == "redis://redis:6379/0"
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?"), "SECRET_KEY must be required"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert env["OTEL_SERVICE_NAME"] == "blog-api"
    # The same token reaches the app and the file Prometheus reads it from.
    assert env["METRICS_TOKEN"] == services["prometheus"]["environment"]["METRICS_TOKEN"]
    assert TOKEN_FILE in services["prometheus"]["command"][0]
    assert services["app"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["postgres"]["healthcheck"]["test"]


def test_compose_migrates_before_the_app_starts() -> None:
    services = load_yaml(COMPOSE)["services"]
    migrate, app = services["migrate"], services["app"]

    assert migrate["command"] == ["flask", "--app", "blog_api", "db", "upgrade"]
    assert migrate["build"] == app["build"]
    for name in ("APP_ENV", "DATABASE_URL", "SECRET_KEY"):
        assert migrate["environment"][name] == app["environment"][name], name
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    assert app["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_dockerfile_and_procfile_run_gunicorn_with_its_config() -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    [cmd] = re.findall(r"^CMD (.+)$", dockerfile, re.MULTILINE)

    # On a PaaS the platform sets PORT; the Procfile makes gunicorn listen on every interface,
    # after the release phase has brought the database to the migrations' head.
    assert PROCFILE.read_text(encoding="utf-8") == (
        f"release: flask --app blog_api db upgrade\nweb: HOST=0.0.0.0 {GUNICORN_COMMAND}\n"
    )
    assert " ".join(json.loads(cmd)) == GUNICORN_COMMAND.replace('"', "")
    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    # The image runs the locked tree (uv.lock, hash-checked) with the Makefile's uv, then adds
    # the project itself without resolving anything again.
    [uv_version] = re.findall(r"^UV_VERSION\s*:=\s*(\S+)$", MAKEFILE.read_text(), re.MULTILINE)
    assert f"pip install uv=={uv_version}" in dockerfile
    assert "uv export --frozen --no-dev --no-emit-project" in dockerfile
    assert "pip install --require-hashes --requirement" in dockerfile
    assert "RUN pip install --no-deps ." in dockerfile
    assert "COPY migrations ./migrations" in dockerfile  # read from the working directory
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"the Dockerfile copies {path}, which is missing"


def readme_pipelines() -> dict[str, dict[str, list[str]]]:
    """The Collector pipeline table of the README: {pipeline: {kind: [component ids]}}."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    header = "| pipeline | receivers | processors (in order) | exporters |"
    assert header in text, "the README lost its Collector pipeline table"
    rows = text.split(header, 1)[1].strip().splitlines()[1:]
    table = {}
    for row in rows:
        if not row.startswith("|"):
            break
        name, *cells = [cell.strip() for cell in row.strip("|").split("|")]
        table[name] = {
            kind: [c.strip() for c in cell.split(",")]
            for kind, cell in zip(KINDS, cells, strict=True)
        }
    return table


def test_collector_pipelines_are_what_the_readme_says(collector: dict) -> None:
    documented = readme_pipelines()
    configured = {
        name: {kind: pipeline.get(kind, []) for kind in KINDS}
        for name, pipeline in collector["service"]["pipelines"].items()
    }
    assert configured == documented
