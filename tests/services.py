"""Find the real components the tests talk to, and decide between failing and skipping.

`.ci/run` sets BLOG_API_REQUIRE_SERVICES=1: there a missing PostgreSQL, Redis, Prometheus or
Alertmanager fails the run. On a laptop without them the tests that need them skip, saying why.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRED = os.environ.get("BLOG_API_REQUIRE_SERVICES") == "1"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def missing(what: str) -> None:
    """Fail under CI (the component must be there), skip elsewhere."""
    if REQUIRED:
        pytest.fail(f"{what} (BLOG_API_REQUIRE_SERVICES=1: this must run)", pytrace=False)
    pytest.skip(f"{what}; set BLOG_API_REQUIRE_SERVICES=1 to make this a failure")


def require_binary(name: str, package: str = "prometheus") -> str:
    """The path of `name`, from Debian's `package` (`.ci/run` installs it)."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed (apt-get install -y {package})")
    return path


# Gauges whose OpenTelemetry semantic-convention names end in `.count`: promtool's lint would have
# them renamed, the conventions (and the issue that asked for them) keep the names.
def promtool_check_metrics(exposition: bytes) -> None:
    """Fail unless `promtool check metrics` accepts the exposition without a single remark."""
    import subprocess

    result = subprocess.run(
        [require_binary("promtool"), "check", "metrics"],
        input=exposition,
        capture_output=True,
        timeout=30,
    )
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0 and not output.strip(), output
