"""deploy/alertmanager.yml: amtool accepts it, and it routes and inhibits as documented."""

from __future__ import annotations

import subprocess

import pytest

from .services import require_binary
from .test_monitoring_config import COMPOSE, DEPLOY, load_yaml

ALERTMANAGER_CONFIG = DEPLOY / "alertmanager.yml"

pytestmark = pytest.mark.prometheus


def amtool(*args: str) -> str:
    result = subprocess.run(
        [require_binary("amtool", "prometheus-alertmanager"), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_amtool_accepts_the_config():
    output = amtool("check-config", str(ALERTMANAGER_CONFIG))
    assert "SUCCESS" in output
    assert "2 inhibit rules" in output


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["alertname=BlogApiDown", "severity=page"], "page"),
        (["alertname=BlogApiAvailabilityFastBurn", "severity=page", "slo=availability"], "page"),
        (["alertname=BlogApiAvailabilitySlowBurn", "severity=ticket"], "ticket"),
        (["alertname=OtelCollectorDown", "severity=ticket"], "ticket"),
        (["alertname=SomethingNew"], "ticket"),  # no severity: still seen
    ],
)
def test_pages_and_tickets_go_to_their_receivers(labels, receiver):
    output = amtool("config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels)
    assert output.strip() == receiver


def test_blog_api_down_inhibits_the_symptoms_not_itself():
    config = load_yaml(ALERTMANAGER_CONFIG)
    rules = config["inhibit_rules"]

    assert all(rule["source_matchers"] == ['alertname="BlogApiDown"'] for rule in rules)
    targets = [m for rule in rules for m in rule["target_matchers"]]
    assert 'slo=~".+"' in targets  # every SLO burn-rate alert
    assert "BlogApiDown" not in " ".join(targets)
    assert {r["name"] for r in config["receivers"]} == {"page", "ticket"}


def test_compose_runs_alertmanager_with_this_config():
    services = load_yaml(COMPOSE)["services"]
    alertmanager = services["alertmanager"]

    assert "./alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro" in alertmanager["volumes"]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in alertmanager["command"]
    assert "127.0.0.1:9093:9093" in alertmanager["ports"]
    assert "./slo-rules.yml:/etc/prometheus/slo-rules.yml:ro" in services["prometheus"]["volumes"]
