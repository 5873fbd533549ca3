"""schemathesis against the app's own OpenAPI document, on SQLite and PostgreSQL: zero failures.

Each operation gets schemathesis' examples, coverage and fuzzing phases (schema-valid and
schema-violating requests), then stateful sequences follow the document's links from each create
to its read/update/delete. Every check schemathesis has runs on every response: no 5xx, status
codes, content types, headers and bodies as documented, valid data accepted, invalid data
refused, auth enforced, `Allow` on 405, deleted things gone and created things there. Requests
carry the token of a registered user; the fixed seed makes every run send the same requests.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings

pytestmark = pytest.mark.slow

SEED = 20261129
# Fuzzed examples per operation (the coverage phase adds its own ~40 boundary cases) and stateful
# sequences per database: about a minute for each database.
MAX_EXAMPLES = 10
SEQUENCES = 30
# Only pathological slowness fails: a catastrophic regex, a query without its index.
MAX_RESPONSE_SECONDS = 10.0


def _config(token: str) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
            "checks": {"max_response_time": MAX_RESPONSE_SECONDS},
            "auth": {"openapi": {"BearerAuth": {"bearer": token}}},
            # v1 and v2 are two addresses of the same posts and todos. Dependency analysis links
            # across them, and the checks, which know a resource by its URL, then take a todo
            # deleted through v2 for one that vanished from v1. The document's own links stay
            # within a version.
            "phases": {"stateful": {"inference": {"algorithms": []}}},
        }
    )


@pytest.fixture
def app_config(app_config) -> dict:
    """Limits far above what the fuzzing sends: it tests the routes, not the 429s (their own
    tests do; the 429s stay documented and allowed)."""
    return {
        **app_config,
        "WRITE_LIMIT_PER_ADDRESS": "100000 per minute",
        "LOGIN_LIMIT_PER_ADDRESS": "100000 per minute",
        "LOGIN_LIMIT_PER_USERNAME": "100000 per minute",
    }


@pytest.fixture
def api_schema(request, app, auth_headers):
    # schemathesis 4.32 renames the pytest item through `_nodeid`, which pytest 9.2 no longer has.
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
    token = auth_headers["Authorization"].removeprefix("Bearer ")
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app, config=_config(token))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
def test_every_operation(case):
    case.call_and_validate()


def test_stateful_sequences_follow_the_links(api_schema):
    api_schema.as_state_machine().run(
        settings=settings(
            max_examples=SEQUENCES,
            derandomize=True,  # the state machine's fixed seed
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],  # shrinking would replay against a changed DB
            suppress_health_check=[HealthCheck.too_slow],
        )
    )
