"""The Kubernetes manifests of deploy/k8s/, checked offline: no cluster runs here.

The core kinds are validated with kubernetes-validate in strict mode (an unknown or misspelt field
fails), the Prometheus Operator's kinds against their CRDs' schemas (tests/crds/, made strict the
same way; their CEL rules, x-kubernetes-validations, are not evaluated). The rest reads the
manifests beside the project's own files, so that they agree: the probes are the app's health
routes, the grace period covers gunicorn's, the PrometheusRule and the Collector's ConfigMap are
what deploy/k8s/generate.py makes from deploy/ and otel-collector.yaml. The kustomization.yaml
files only list resources, so concatenating them is Kustomize's build here.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import redis
import yaml

from blog_api import create_app
from blog_api.config import ConfigError, Settings

from . import databases
from .conftest import SECRET
from .live_server import HOST, LiveServer, free_port
from .services import REDIS_URL, missing, require_binary
from .test_monitoring_config import host_of, load_yaml, port_of

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OPERATOR = K8S / "prometheus-operator"
CRDS = Path(__file__).resolve().parent / "crds"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
# An older Kubernetes still in wide use, and the newest the pinned kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30", kubernetes_validate.utils.latest_version())
CRD_SCHEMAS = {
    "ServiceMonitor": CRDS / "servicemonitors.schema.yaml",
    "PrometheusRule": CRDS / "prometheusrules.schema.yaml",
}
OPERATOR_GROUP = "monitoring.coreos.com/"


def _generator():
    spec = importlib.util.spec_from_file_location("k8s_generate", K8S / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _generator()


def kustomize_build(directory: Path) -> list[dict]:
    """`kustomize build` for a kustomization that only lists resources: their documents."""
    kustomization = load_yaml(directory / "kustomization.yaml")
    assert set(kustomization) == {"apiVersion", "kind", "resources"}, (
        f"{directory.name}/kustomization.yaml uses more than `resources`: this test's build "
        "would be wrong"
    )
    documents = []
    for resource in kustomization["resources"]:
        text = (directory / resource).read_text(encoding="utf-8")
        documents.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return documents


BASE = kustomize_build(K8S)
MONITORING = kustomize_build(OPERATOR)
EXAMPLE_SECRET = load_yaml(SECRET_EXAMPLE)
EVERY_DOCUMENT = [*BASE, *MONITORING, EXAMPLE_SECRET]


def one(documents: list[dict], kind: str, name: str) -> dict:
    [found] = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def container(workload: dict, name: str) -> dict:
    [found] = [c for c in workload["spec"]["template"]["spec"]["containers"] if c["name"] == name]
    return found


def pod_specs() -> dict[str, dict]:
    return {
        f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
        for d in BASE
        if d["kind"] in ("Deployment", "Job")
    }


DEPLOYMENT = one(BASE, "Deployment", "blog-api")
APP = container(DEPLOYMENT, "blog-api")
JOB = one(BASE, "Job", "blog-api-migrate")
MIGRATE = container(JOB, "migrate")
CONFIG = one(BASE, "ConfigMap", "blog-api")["data"]
SERVICE = one(BASE, "Service", "blog-api")
COLLECTOR = one(BASE, "Deployment", "otel-collector")
COLLECTOR_SERVICE = one(BASE, "Service", "otel-collector")


def _id(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


# --- the files ----------------------------------------------------------------------------------


def test_every_manifest_is_in_a_kustomization_and_the_secret_is_only_an_example() -> None:
    for directory in (K8S, OPERATOR):
        listed = set(load_yaml(directory / "kustomization.yaml")["resources"])
        files = {p.name for p in directory.glob("*.yaml")} - {"kustomization.yaml"}
        examples = {name for name in files if name.endswith(".example.yaml")}
        assert listed == files - examples, directory
    assert {d["kind"] for d in BASE + MONITORING}.isdisjoint({"Secret"})
    assert EXAMPLE_SECRET["kind"] == "Secret"
    for value in EXAMPLE_SECRET["stringData"].values():
        assert "replace-me" in value or "PASSWORD" in value, "the example holds a real secret?"
    # Applied by mistake, the example stops the app at start rather than signing tokens with it.
    with pytest.raises(ConfigError, match="SECRET_KEY must be at least"):
        Settings.from_mapping({**EXAMPLE_SECRET["stringData"], "APP_ENV": "production"}, "/nowhere")


# --- schemas ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(
    "document",
    [d for d in EVERY_DOCUMENT if not d["apiVersion"].startswith(OPERATOR_GROUP)],
    ids=_id,
)
def test_core_kinds_match_the_kubernetes_schemas_strictly(document: dict, version: str) -> None:
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        pytest.fail(f"{_id(document)} on Kubernetes {version}: {error.message} at {error.path}")


def test_strict_validation_rejects_an_unknown_field() -> None:
    wrong = copy.deepcopy(DEPLOYMENT)
    wrong["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = APP["readinessProbe"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBERNETES_VERSIONS[-1], strict=True)


def strict(schema: dict) -> dict:
    """The CRD schema with unknown fields refused, as the API server's strict field validation."""
    schema = copy.deepcopy(schema)

    def close(node) -> None:
        if isinstance(node, dict):
            if (
                "properties" in node
                and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")
            ):
                node["additionalProperties"] = False
            for value in node.values():
                close(value)
        elif isinstance(node, list):
            for value in node:
                close(value)

    close(schema)
    return schema


def crd_validator(kind: str) -> jsonschema.Validator:
    return jsonschema.Draft7Validator(strict(load_yaml(CRD_SCHEMAS[kind])))


@pytest.mark.parametrize("document", MONITORING, ids=_id)
def test_operator_kinds_match_their_crd_schemas(document: dict) -> None:
    assert document["apiVersion"] == "monitoring.coreos.com/v1"
    errors = [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in crd_validator(document["kind"]).iter_errors(document)
    ]
    assert not errors, errors
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", document["metadata"]["name"])


def test_crd_validation_rejects_an_unknown_field() -> None:
    wrong = copy.deepcopy(one(MONITORING, "ServiceMonitor", "blog-api"))
    wrong["spec"]["endpoints"][0]["bearerToken"] = "x"  # not a field (bearerTokenSecret is)
    assert list(crd_validator("ServiceMonitor").iter_errors(wrong))


# --- the app's pods -----------------------------------------------------------------------------


def test_probes_are_the_apps_health_routes(tmp_path: Path) -> None:
    app = create_app(
        {
            "APP_ENV": "production",
            "DATABASE_URL": databases.migrated_sqlite(tmp_path / "blog.db"),
            "SECRET_KEY": SECRET,
            "LOG_LEVEL": "WARNING",
        }
    )
    routes = app.url_map.bind("localhost")
    probes = {kind: APP[kind]["httpGet"] for kind in ("livenessProbe", "readinessProbe")}
    probes["startupProbe"] = APP["startupProbe"]["httpGet"]

    assert routes.match(probes["livenessProbe"]["path"])[0] == "health.live"
    assert routes.match(probes["startupProbe"]["path"])[0] == "health.live"
    assert routes.match(probes["readinessProbe"]["path"])[0] == "health.health"
    client = app.test_client()
    for probe in probes.values():
        assert probe["port"] == "http"
        assert client.get(probe["path"]).status_code == 200
    # The readiness probe waits longer than the 2 s within which /health always answers.
    assert APP["readinessProbe"]["timeoutSeconds"] > 2


def test_the_app_listens_where_the_service_and_the_probes_look() -> None:
    [port] = APP["ports"]
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    [exposed] = re.findall(r"^EXPOSE (\d+)$", dockerfile, re.MULTILINE)

    assert port == {"name": "http", "containerPort": int(CONFIG["PORT"])}
    assert port["containerPort"] == int(exposed)
    assert CONFIG["HOST"] == "0.0.0.0"
    assert [p["targetPort"] for p in SERVICE["spec"]["ports"]] == ["http"]


def test_grace_period_covers_the_drain_and_gunicorns_graceful_timeout() -> None:
    gunicorn = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    command = APP["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep" and len(command) == 2
    drain = int(command[1])
    grace = DEPLOYMENT["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]

    assert drain >= 5, "too short for every node to stop sending traffic to the pod"
    assert grace > drain + gunicorn["graceful_timeout"]


def test_pods_run_as_non_root_on_a_read_only_root_with_bounded_resources() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    [uid] = re.findall(r"useradd .*--uid (\d+)", dockerfile)
    for name, pod in pod_specs().items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["automountServiceAccountToken"] is False, name
        for c in pod["containers"]:
            context = c["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            for bound in ("requests", "limits"):
                assert set(c["resources"][bound]) == {"cpu", "memory"}, (name, bound)
    for workload in (DEPLOYMENT, JOB):
        assert workload["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)


def _empty_dirs(workload: dict, c: dict) -> set[str]:
    volumes = workload["spec"]["template"]["spec"]["volumes"]
    empty = {v["name"] for v in volumes if "emptyDir" in v}
    return {m["mountPath"] for m in c["volumeMounts"] if m["name"] in empty}


def test_what_the_app_writes_is_on_writable_volumes() -> None:
    writable = _empty_dirs(DEPLOYMENT, APP)
    metrics_dir = CONFIG["METRICS_MULTIPROCESS_DIR"]

    assert "/tmp" in writable  # gunicorn's worker heartbeat files
    assert any(metrics_dir == p or metrics_dir.startswith(p + "/") for p in writable)
    assert "/tmp" in _empty_dirs(JOB, MIGRATE)
    # The Job has no metrics directory: its telemetry is off, so nothing looks for one.
    assert {"name": "OTEL_SDK_DISABLED", "value": "true"} in MIGRATE["env"]


def _env_names(c: dict) -> set[str]:
    names = {e["name"] for e in c.get("env", [])}
    for source in c.get("envFrom", []):
        names |= set(one(BASE, "ConfigMap", source["configMapRef"]["name"])["data"])
    return names


def readme_settings() -> set[str]:
    """The variable names in the first column of README's configuration table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([A-Z][A-Z0-9_]*)`", row.split("|")[1])}


def test_every_variable_the_pods_get_is_a_documented_setting() -> None:
    documented = readme_settings()
    assert {"DATABASE_URL", "SECRET_KEY", "METRICS_MULTIPROCESS_DIR"} <= documented
    for c in (APP, MIGRATE):
        undocumented = _env_names(c) - documented
        assert not undocumented, f"{c['name']}: {sorted(undocumented)} not in the README's table"


def test_secrets_come_from_the_secret_and_nothing_else_does() -> None:
    secret_keys = set(EXAMPLE_SECRET["stringData"])
    secret_name = EXAMPLE_SECRET["metadata"]["name"]
    refs = {
        (c["name"], e["name"]): e["valueFrom"]["secretKeyRef"]
        for c in (APP, MIGRATE)
        for e in c["env"]
        if "valueFrom" in e
    }

    assert {name for _, name in refs} == {"SECRET_KEY", "METRICS_TOKEN", "DATABASE_URL"}
    for (_, name), ref in refs.items():
        assert ref == {"name": secret_name, "key": name}
        assert name in secret_keys
    assert secret_keys.isdisjoint(CONFIG)


def test_migration_job_runs_what_compose_and_the_procfile_run() -> None:
    compose = load_yaml(DEPLOY / "docker-compose.yml")["services"]
    release = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()[0]

    assert MIGRATE["command"] == compose["migrate"]["command"]
    assert release == "release: " + " ".join(MIGRATE["command"])
    assert MIGRATE["image"] == APP["image"]
    assert MIGRATE["envFrom"] == APP["envFrom"]
    assert JOB["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_selectors_pick_the_api_pods_and_only_them() -> None:
    api_labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    other_pods = [
        d["spec"]["template"]["metadata"]["labels"]
        for d in BASE
        if d["kind"] in ("Deployment", "Job") and d is not DEPLOYMENT
    ]
    pdb = one(BASE, "PodDisruptionBudget", "blog-api")["spec"]["selector"]["matchLabels"]
    hpa = one(BASE, "HorizontalPodAutoscaler", "blog-api")["spec"]

    for selector in (
        SERVICE["spec"]["selector"],
        pdb,
        DEPLOYMENT["spec"]["selector"]["matchLabels"],
    ):
        assert _selects(selector, api_labels)
        assert not any(_selects(selector, labels) for labels in other_pods), selector
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "blog-api",
    }
    assert hpa["minReplicas"] >= 2  # one pod can be drained while another serves
    assert "replicas" not in DEPLOYMENT["spec"], "the HPA owns the count"
    assert DEPLOYMENT["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


# --- monitoring ---------------------------------------------------------------------------------


def _pod_port(service: dict, service_port_name: str) -> int:
    """The container port a Service port leads to (what Prometheus scrapes on each pod)."""
    [port] = [p for p in service["spec"]["ports"] if p["name"] == service_port_name]
    [workload] = [
        d
        for d in BASE
        if d["kind"] == "Deployment"
        and _selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
    ]
    [target] = [
        p["containerPort"]
        for c in workload["spec"]["template"]["spec"]["containers"]
        for p in c["ports"]
        if p["name"] == port["targetPort"]
    ]
    return target


def test_servicemonitors_scrape_what_prometheus_yml_scrapes() -> None:
    prometheus = load_yaml(DEPLOY / "prometheus.yml")
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    services = [s for s in BASE if s["kind"] == "Service"]
    monitors = [d for d in MONITORING if d["kind"] == "ServiceMonitor"]

    assert {m["metadata"]["name"] for m in monitors} == set(jobs)
    for monitor in monitors:
        [service] = [
            s
            for s in services
            if _selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        # The Operator names the job after the Service: the alerts' job="blog-api" must match.
        assert "jobLabel" not in monitor["spec"]
        job = jobs[service["metadata"]["name"]]
        interval = job.get("scrape_interval", prometheus["global"]["scrape_interval"])
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint.get("path", "/metrics") == job.get("metrics_path", "/metrics")
            assert endpoint["interval"] == interval
        scraped = {_pod_port(service, e["port"]) for e in monitor["spec"]["endpoints"]}
        targets = {port_of(t) for static in job["static_configs"] for t in static["targets"]}
        assert scraped == targets, monitor["metadata"]["name"]


def test_the_api_is_scraped_with_its_metrics_token() -> None:
    [endpoint] = one(MONITORING, "ServiceMonitor", "blog-api")["spec"]["endpoints"]
    token = next(e for e in APP["env"] if e["name"] == "METRICS_TOKEN")["valueFrom"]["secretKeyRef"]

    assert endpoint["authorization"] == {"type": "Bearer", "credentials": token}


def test_prometheusrule_is_generated_from_the_rule_files_prometheus_loads() -> None:
    rule = one(MONITORING, "PrometheusRule", "blog-api")
    groups = [g for path in generate.rule_files() for g in load_yaml(path)["groups"]]

    assert rule["spec"]["groups"] == groups
    assert (DEPLOY / "alerts.yml") in generate.rule_files()
    assert generate.PROMETHEUS_RULE.read_text(encoding="utf-8") == generate.prometheus_rule(), (
        "deploy/k8s/prometheus-operator/prometheusrule.yaml is stale: run `make k8s`"
    )


@pytest.mark.prometheus
def test_prometheusrule_groups_pass_promtool(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rule = one(MONITORING, "PrometheusRule", "blog-api")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule["spec"]), encoding="utf-8")
    result = subprocess.run(
        [promtool, "check", "rules", "rules.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generator_check_mode_notices_a_stale_file(tmp_path: Path, monkeypatch) -> None:
    stale = tmp_path / "prometheusrule.yaml"
    stale.write_text(generate.prometheus_rule().replace("for: 1m", "for: 2m", 1), "utf-8")
    monkeypatch.setattr(generate, "OUTPUTS", {stale: generate.prometheus_rule})

    assert generate.main(["--check"]) == 1
    assert generate.main([]) == 0
    assert generate.main(["--check"]) == 0
    assert stale.read_text(encoding="utf-8") == generate.prometheus_rule()


# --- the Collector ------------------------------------------------------------------------------


def test_collector_configmap_is_otel_collector_yaml_verbatim() -> None:
    configmap = one(BASE, "ConfigMap", "otel-collector")
    source = (ROOT / "otel-collector.yaml").read_text(encoding="utf-8")

    assert configmap["data"] == {"config.yaml": source}
    assert (
        generate.COLLECTOR_CONFIGMAP.read_text(encoding="utf-8") == generate.collector_configmap()
    ), "deploy/k8s/otel-collector-configmap.yaml is stale: run `make k8s`"


def test_collector_deployment_runs_that_config_as_compose_does() -> None:
    compose = load_yaml(DEPLOY / "docker-compose.yml")["services"]["otel-collector"]
    config = load_yaml(ROOT / "otel-collector.yaml")
    c = container(COLLECTOR, "otel-collector")
    [mount] = c["volumeMounts"]
    [volume] = COLLECTOR["spec"]["template"]["spec"]["volumes"]
    [arg] = c["args"]

    assert c["image"] == compose["image"]
    assert volume == {"name": mount["name"], "configMap": {"name": "otel-collector"}}
    assert arg == f"--config={mount['mountPath']}/config.yaml"
    # memory_limiter's percentages are of the container's limit: the same as compose's.
    assert compose["mem_limit"] == "512m" and c["resources"]["limits"]["memory"] == "512Mi"
    [reader] = config["service"]["telemetry"]["metrics"]["readers"]
    listening = {
        port_of(config["extensions"]["health_check"]["endpoint"]),
        *(port_of(p["endpoint"]) for p in config["receivers"]["otlp"]["protocols"].values()),
        port_of(config["exporters"]["prometheus"]["endpoint"]),
        reader["pull"]["exporter"]["prometheus"]["port"],
    }
    assert {p["containerPort"] for p in c["ports"]} == listening
    health = next(p for p in c["ports"] if p["name"] == c["readinessProbe"]["httpGet"]["port"])
    assert health["containerPort"] == port_of(config["extensions"]["health_check"]["endpoint"])


def test_the_app_sends_its_spans_to_the_collector_service() -> None:
    endpoint = CONFIG["OTEL_EXPORTER_OTLP_ENDPOINT"]
    ports = {p["port"]: p["targetPort"] for p in COLLECTOR_SERVICE["spec"]["ports"]}
    http = port_of(
        load_yaml(ROOT / "otel-collector.yaml")["receivers"]["otlp"]["protocols"]["http"][
            "endpoint"
        ]
    )

    assert host_of(endpoint) == COLLECTOR_SERVICE["metadata"]["name"]
    named = {p["name"]: p["containerPort"] for p in container(COLLECTOR, "otel-collector")["ports"]}
    assert named[ports[port_of(endpoint)]] == http


# --- the pods' environment, run for real --------------------------------------------------------


def _pod_environment(c: dict, secrets: dict[str, str]) -> dict[str, str]:
    """What the container's process gets: its ConfigMaps, then its own env (Secret refs filled)."""
    env: dict[str, str] = {}
    for source in c.get("envFrom", []):
        env.update(one(BASE, "ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in c.get("env", []):
        if "valueFrom" in variable:
            env[variable["name"]] = secrets[variable["valueFrom"]["secretKeyRef"]["key"]]
        else:
            env[variable["name"]] = variable["value"]
    return env


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
def test_the_job_then_the_api_run_with_the_pods_environment(tmp_path: Path, postgres_url) -> None:
    """The migration Job's command, then gunicorn, each with what its pod gets, on a new database:
    the API becomes ready and the ServiceMonitor's token opens /metrics. Changed from the
    manifests only where this machine differs: the address and port, the metrics directory,
    Redis, and a Collector that is not there."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1, socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        missing(f"Redis is not reachable at {REDIS_URL}: {exc}")
    here = {
        "HOST": HOST,
        "METRICS_MULTIPROCESS_DIR": str(tmp_path / "metrics"),
        "REDIS_URL": REDIS_URL,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{HOST}:{free_port()}",
    }
    with databases.new_postgres_database(postgres_url) as database_url:
        secrets = {
            "SECRET_KEY": SECRET,
            "METRICS_TOKEN": "scrape-token",
            "DATABASE_URL": database_url,
        }
        job_env = {**_pod_environment(MIGRATE, secrets), **here}
        migrated = subprocess.run(
            [str(Path(sys.executable).parent / MIGRATE["command"][0]), *MIGRATE["command"][1:]],
            cwd=ROOT,
            env={"PATH": os.environ["PATH"], **job_env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert migrated.returncode == 0, migrated.stderr[-3000:]

        app_env = {**_pod_environment(APP, secrets), **here}
        app_env.pop("PORT")  # LiveServer picks a free one
        with LiveServer(tmp_path, **app_env) as server:
            ready = server.request("GET", APP["readinessProbe"]["httpGet"]["path"])
            unauthorized = server.request("GET", "/metrics")
            scraped = server.request(
                "GET", "/metrics", headers={"Authorization": "Bearer scrape-token"}
            )
            workers = len(set(re.findall(r"Booting worker with pid: (\d+)", server.log())))
    assert ready[0] == 200, ready[1]
    assert unauthorized[0] == 401
    assert scraped[0] == 200 and b'service_name="blog-api"' in scraped[1]
    assert workers == int(app_env["WEB_CONCURRENCY"])
    assert any((tmp_path / "metrics").iterdir())  # the workers share their metrics there
