"""The dependency tree is locked: what runs is what uv.lock says, and the lock is pyproject's.

Several instances on several machines must run the same code; `make`, `.ci/run` and the
Dockerfile install from uv.lock. These tests fail when the venv holds anything else, or when
pyproject.toml has changed without `make lock`.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What `python -m venv` and the Makefile put in the venv to install with: not the app's tree.
INSTALLERS = {"pip", "setuptools", "uv"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {_normalized(p["name"]): p["version"] for p in lock["package"] if "version" in p}


def _installed() -> dict[str, str]:
    return {
        _normalized(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions()
    }


def test_every_installed_distribution_is_the_locked_version():
    locked = _locked()
    wrong = {
        name: (version, locked.get(name, "not in uv.lock"))
        for name, version in _installed().items()
        if name not in INSTALLERS and locked.get(name) != version
    }
    assert not wrong, f"installed (version, locked) differ: {wrong}; run make clean test"


def test_the_lock_is_the_one_pyproject_asks_for():
    uv = Path(sys.prefix) / "bin" / "uv"
    if not uv.exists():
        uv = shutil.which("uv")
    assert uv, "uv is not in the venv: make builds it there (make clean test)"
    result = subprocess.run(
        [str(uv), "lock", "--check", "--offline"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"uv.lock is stale, run make lock:\n{result.stderr}"
