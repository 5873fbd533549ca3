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


def _locked() -> dict[str, set[str]]:
    """Each locked name's versions: several when the lock forks by Python version (a package
    whose newest release needs a newer Python than ours is locked once for each side)."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        if "version" in package:
            versions.setdefault(_normalized(package["name"]), set()).add(package["version"])
    return versions


def _installed() -> dict[str, str]:
    return {
        _normalized(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions()
    }


def test_every_installed_distribution_is_the_locked_version():
    locked = _locked()
    wrong = {
        name: (version, sorted(locked.get(name, ())) or "not in uv.lock")
        for name, version in _installed().items()
        if name not in INSTALLERS and version not in locked.get(name, ())
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
