"""Our lean instrumentation makes what the OpenTelemetry contrib instrumentation makes.

The same requests (success, 4xx, 5xx, an unmatched route, a raising view, an abort, a stream, a
`before_request` hook that answers, a `traceparent` in, several and failing SQL statements, a span
of user code) go through the app twice, each run in a fresh interpreter: once with
TELEMETRY_INSTRUMENTATION=lean, once with =contrib, both exporting to a real OTLP receiver. The
span trees (names, kinds, parentage, attributes, status, events, flags; ids, times and the
instrumentation scope aside) and the metric series must be equal, with one allowed difference: a
request that matches no route (or gets 405) is named `<METHOD>` by ours and `<METHOD> <path>` by
contrib. Any other change on either side fails this test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from . import databases
from .live_server import ROOT
from .otlp_receiver import OTLPReceiver

NAMED_BY_METHOD_ONLY = {"unmatched", "method not allowed"}


def _value(any_value):
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def _attributes(items) -> dict:
    return {a.key: _value(a.value) for a in items}


def _describe(span, children: dict) -> dict:
    events = []
    for event in span.events:
        attributes = _attributes(event.attributes)
        stack = attributes.pop("exception.stacktrace", None)
        events.append({"name": event.name, "attributes": attributes, "has_stack": bool(stack)})
    return {
        "name": span.name,
        "kind": span.kind,
        "flags": span.flags,
        "trace_state": span.trace_state,
        "attributes": _attributes(span.attributes),
        "status": [span.status.code, span.status.message],
        "events": events,
        "links": len(span.links),
        "children": [
            _describe(child, children)
            for child in sorted(
                children.get(span.span_id, []), key=lambda s: s.start_time_unix_nano
            )
        ],
    }


def _trees(receiver: OTLPReceiver) -> dict[str, list[dict]]:
    """trace id -> its span trees, each root described with everything under it."""
    spans = [span for _, span in receiver.spans()]
    ids = {span.span_id for span in spans}
    children: dict[bytes, list] = {}
    for span in spans:
        children.setdefault(span.parent_span_id, []).append(span)
    trees: dict[str, list[dict]] = {}
    for span in spans:
        if span.parent_span_id not in ids:  # a root here, perhaps with a remote parent
            tree = _describe(span, children)
            tree["remote_parent"] = span.parent_span_id.hex()
            trees.setdefault(span.trace_id.hex(), []).append(tree)
    return trees


# CPU, memory, the garbage collector, the pool: read from the process at collection time
# (telemetry.runtime, telemetry.pool), the same code under either instrumentation.
_PROCESS_STATE = ("process_", "cpython_gc_", "db_client_connection_")


def _metrics(text: str) -> dict:
    """Every family's type, help and series; counts and counters exact, timings left out."""
    families = {}
    for family in text_string_to_metric_families(text):
        if family.name.startswith("otel_sdk"):  # spans exported so far: a matter of timing
            continue
        if family.name.startswith(_PROCESS_STATE):  # the process's own, not instrumentation's
            continue
        samples = set()
        for sample in family.samples:
            labels = tuple(sorted(sample.labels.items()))
            if family.name == "target_info":
                labels = tuple((k, v) for k, v in labels if k != "service_instance_id")
            timed = sample.name.endswith(("_sum", "_bucket"))
            samples.add((sample.name, labels, None if timed else sample.value))
        families[family.name] = {
            "type": family.type,
            "help": family.documentation,
            "samples": sorted(samples, key=repr),
        }
    return families


def _run(instrumentation: str, database_url: str) -> dict:
    """The requests' outcomes, their span trees and the metrics of one run."""
    with OTLPReceiver() as receiver:
        result = subprocess.run(
            [sys.executable, "-m", "tests.parity_run", database_url, receiver.endpoint],
            cwd=ROOT,
            env={"PATH": "/usr/bin:/bin", "TELEMETRY_INSTRUMENTATION": instrumentation},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        out = json.loads(result.stdout.strip().splitlines()[-1])
        trees = _trees(receiver)
    for request in out["requests"]:
        header = request.pop("traceresponse")
        request["sampled"] = header[-2:] if header else None
        request["trees"] = trees.pop(header.split("-")[1], []) if header else []
    out["metrics"] = _metrics(out["metrics"])
    out["other_trees"] = trees  # spans of no request (there should be none)
    return out


@pytest.fixture
def fresh_database(database_url):
    """The same database (the same name in the spans) for both runs, migrated and emptied
    before each."""

    def reset() -> None:
        if database_url.startswith("sqlite:///"):
            path = Path(database_url.removeprefix("sqlite:///"))
            for suffix in ("", "-wal", "-shm"):
                path.with_name(path.name + suffix).unlink(missing_ok=True)
            databases.migrated_sqlite(path)
        else:
            databases.empty_postgres(database_url)

    return database_url, reset


def test_lean_instrumentation_matches_contrib(fresh_database):
    database_url, reset = fresh_database
    reset()
    contrib = _run("contrib", database_url)
    reset()
    lean = _run("lean", database_url)

    assert [r["label"] for r in lean["requests"]] == [r["label"] for r in contrib["requests"]]
    for ours, theirs in zip(lean["requests"], contrib["requests"], strict=True):
        label = ours["label"]
        if label in NAMED_BY_METHOD_ONLY:  # the one deliberate difference
            (our_root,), (their_root,) = ours["trees"], theirs["trees"]
            assert our_root["name"] == ours["method"], label
            assert their_root["name"] == f"{theirs['method']} {theirs['path']}", label
            their_root["name"] = our_root["name"]
        assert ours == theirs, label

    assert lean["other_trees"] == contrib["other_trees"] == {}
    assert lean["metrics"] == contrib["metrics"]


def test_the_comparison_sees_what_matters(fresh_database):
    """Guard against a comparison that cannot fail: the runs hold what the contract promises."""
    database_url, reset = fresh_database
    reset()
    lean = _run("lean", database_url)
    requests = {r["label"]: r for r in lean["requests"]}

    read = requests["read"]["trees"][0]
    assert read["name"] == "GET /api/v1/posts/<int:post_id>" and read["kind"] == 2
    assert read["attributes"]["http.route"] == "/api/v1/posts/<int:post_id>"
    assert read["attributes"]["http.response.status_code"] == 200
    assert read["attributes"]["client.address"] == "10.0.0.7"
    assert read["children"] and all(c["kind"] == 3 for c in read["children"])
    assert "db.statement" in read["children"][0]["attributes"]

    boom = requests["exception"]["trees"][0]
    assert boom["status"] == [2, "RuntimeError: boom"]
    assert [e["name"] for e in boom["events"]] == ["exception"]
    assert boom["events"][0]["attributes"]["exception.message"] == "boom"

    continued = requests["traceparent"]["trees"][0]
    assert continued["remote_parent"] == "00f067aa0ba902b7"
    assert requests["unsampled traceparent"]["trees"] == []
    assert requests["unsampled traceparent"]["sampled"] == "00"

    many = requests["several statements"]["trees"][0]["children"]
    user_span = next(c for c in many if c["name"] == "count rows")
    assert [c["attributes"]["db.statement"] for c in user_span["children"]] == [
        "/* counted */ SELECT count(*) FROM parity_many"
    ]
    failing = requests["failing statement"]["trees"][0]["children"][0]
    assert failing["status"][0] == 2 and "no_such_table" in failing["status"][1]
    assert requests["health"]["trees"] == [] and requests["health"]["sampled"] is None

    duration = lean["metrics"]["http_server_request_duration_seconds"]
    counted = sum(v for name, _, v in duration["samples"] if name.endswith("_count"))
    assert counted == len(requests) - 1  # every request but /health
