"""SLOs as code: deploy/slos.yml generates deploy/slo-rules.yml; the rules pass promtool and their
unit tests; every alert Prometheus loads links to a runbook section and the dashboard."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .test_monitoring_config import (
    ALERT_RULES,
    DASHBOARD,
    DEPLOY,
    ROOT,
    SLO_RULES,
    load_yaml,
    promtool,
)

SPEC = DEPLOY / "slos.yml"
SLO_TESTS = [DEPLOY / "slo-rules.page.test.yml", DEPLOY / "slo-rules.ticket.test.yml"]
GENERATOR = DEPLOY / "generate_slo_rules.py"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
PAIRS = {"page": ["1h+5m", "6h+30m"], "ticket": ["1d+2h", "3d+6h"]}


def generate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(GENERATOR), *args], capture_output=True, text=True, timeout=60
    )


def test_the_checked_in_rules_are_what_the_spec_generates():
    result = generate("--check")
    assert result.returncode == 0, result.stderr


def test_the_staleness_check_fails_on_a_changed_spec(tmp_path):
    # the generator, pointed at a copy of deploy/ whose spec has another objective
    copy = tmp_path / "deploy"
    copy.mkdir()
    for path in (GENERATOR, SPEC, SLO_RULES):
        (copy / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    spec = (copy / SPEC.name).read_text(encoding="utf-8")
    (copy / SPEC.name).write_text(spec.replace("objective: 99.5", "objective: 99.9"), "utf-8")
    script = copy / GENERATOR.name

    stale = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and "stale" in stale.stderr
    subprocess.run([sys.executable, str(script)], check=True)
    assert "vector(0.999)" in (copy / SLO_RULES.name).read_text(encoding="utf-8")
    fresh = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True)
    assert fresh.returncode == 0


def slo_alerts() -> list[dict]:
    return [r for g in load_yaml(SLO_RULES)["groups"] for r in g["rules"] if "alert" in r]


def test_each_slo_pages_and_tickets_on_sloths_window_pairs():
    spec = load_yaml(SPEC)
    alerts = {rule["alert"]: rule for rule in slo_alerts()}

    assert {s["id"] for s in spec["slos"]} == {"availability", "latency-reads", "latency-writes"}
    for slo in spec["slos"]:
        budget = 1 - slo["objective"] / 100
        page, ticket = alerts[slo["alert"] + "FastBurn"], alerts[slo["alert"] + "SlowBurn"]
        assert page["labels"] == {"severity": "page"}
        assert ticket["labels"] == {"severity": "ticket"}
        for rule, pairs in ((page, [("1h", "5m", 14.4), ("6h", "30m", 6)]),
                            (ticket, [("1d", "2h", 3), ("3d", "6h", 1)])):  # fmt: skip
            for long, short, factor in pairs:
                threshold = f"{round(factor * budget, 10):g}"
                for window in (long, short):
                    ratio = f'slo:sli_error:ratio_rate{window}{{slo="{slo["id"]}"}} > {threshold}'
                    assert ratio in rule["expr"], (rule["alert"], ratio)


@pytest.mark.prometheus
def test_slo_rules_pass_promtool():
    output = promtool("check", "rules", SLO_RULES.name, cwd=DEPLOY)
    assert "SUCCESS" in output


@pytest.mark.slow  # 5-7 s each: hours and days of series, evaluated minute by minute
@pytest.mark.prometheus
@pytest.mark.parametrize("tests", SLO_TESTS, ids=lambda path: path.name)
def test_slo_rule_unit_tests_pass(tests: Path):
    output = promtool("test", "rules", tests.name, cwd=DEPLOY)
    assert "SUCCESS" in output


def test_the_latency_slos_fire_and_stay_quiet_too():
    cases = [c for path in SLO_TESTS for c in load_yaml(path)["tests"] if "latency" in c["name"]]
    for alert in ("BlogApiReadLatencyFastBurn", "BlogApiWriteLatencyFastBurn"):
        verdicts = {
            bool(case["exp_alerts"])
            for test in cases
            for case in test["alert_rule_test"]
            if case["alertname"] == alert
        }
        assert verdicts == {True, False}, alert


def test_every_window_pair_has_a_firing_and_a_quiet_case():
    cases = {}
    for test in [test for path in SLO_TESTS for test in load_yaml(path)["tests"]]:
        if test["name"].startswith("latency"):  # the latency SLOs' cases, beside the pairs'
            continue
        severity, pair, verdict = test["name"].split(":")[0].split()
        [case] = test["alert_rule_test"]
        cases[(severity, pair, verdict)] = case
    for severity, pairs in PAIRS.items():
        for pair in pairs:
            assert cases[(severity, pair, "fires")]["exp_alerts"], (severity, pair)
            assert cases[(severity, pair, "quiet")]["exp_alerts"] == [], (severity, pair)


# --- runbooks and dashboard links --------------------------------------------------------------


def runbook_anchors() -> set[str]:
    """GitHub's anchors of the headings of docs/runbooks.md."""
    headings = re.findall(r"^#{1,6} (.+)$", RUNBOOKS.read_text(encoding="utf-8"), re.MULTILINE)
    return {
        "".join(c for c in h.strip().lower() if c.isalnum() or c in " -_").replace(" ", "-")
        for h in headings
    }


def every_alert() -> list[dict]:
    return [
        rule
        for path in (ALERT_RULES, SLO_RULES)
        for group in load_yaml(path)["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def test_every_alert_links_to_its_runbook_section_and_the_dashboard():
    anchors = runbook_anchors()
    dashboard_uid = yaml.safe_load(DASHBOARD.read_text(encoding="utf-8"))["uid"]
    links = load_yaml(SPEC)["links"]

    alerts = every_alert()
    assert len(alerts) >= 13
    for rule in alerts:
        annotations = rule["annotations"]
        page, _, anchor = annotations["runbook_url"].partition("#")
        assert page == links["runbooks"] and page.endswith("docs/runbooks.md"), rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: no heading for #{anchor} in runbooks.md"
        assert annotations["dashboard_url"] == links["dashboard"], rule["alert"]
        assert f"/d/{dashboard_uid}/" in annotations["dashboard_url"], rule["alert"]


def test_every_runbook_section_belongs_to_an_alert():
    used = {rule["annotations"]["runbook_url"].partition("#")[2] for rule in every_alert()}
    assert runbook_anchors() - {"blog-api-runbooks"} == used


def test_the_fixed_threshold_alerts_the_slos_replace_are_gone():
    names = {rule["alert"] for rule in every_alert()}
    assert not names & {"BlogApiHighErrorRatio", "BlogApiHighLatencyP99"}
    assert 'absent(up{job="blog-api"})' in Path(ALERT_RULES).read_text(encoding="utf-8")
