"""gunicorn's workers in /metrics: how many are live, and why each one that left exited."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from .live_server import LiveServer, total

pytestmark = pytest.mark.slow

EXITS = "gunicorn_worker_exits"
REASONS = {"recycled", "stopped", "timeout", "crashed"}


def exits(server: LiveServer) -> dict[str, float]:
    families = server.scrape()
    return {s.labels["reason"]: s.value for s in families[EXITS] if s.name == EXITS + "_total"}


def live_workers(server: LiveServer) -> float:
    return total(server.scrape(), "gunicorn_workers", "gunicorn_workers")


def worker_pids(server: LiveServer) -> list[int]:
    """The workers alive now (booted, not yet reaped), from gunicorn's log and the kernel."""
    booted = [int(p) for p in re.findall(r"Booting worker with pid: (\d+)", server.log())]
    alive = []
    for pid in booted:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        alive.append(pid)
    return alive


def wait_until(condition, what: str, server: LiveServer, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        assert server.alive(), server.log()[-3000:]
        time.sleep(0.1)
    pytest.fail(f"{what} within {timeout}s; exits now {exits(server)}\n{server.log()[-3000:]}")


def test_one_worker_reports_itself_and_no_exits(tmp_path):
    with LiveServer(tmp_path, workers=1) as server:
        assert live_workers(server) == 1
        assert exits(server) == dict.fromkeys(REASONS, 0)


def test_exits_are_counted_by_reason_and_survive(tmp_path):
    with LiveServer(tmp_path, workers=2, GUNICORN_TIMEOUT="2") as server:
        wait_until(lambda: len(worker_pids(server)) == 2, "two workers", server)
        wait_until(lambda: live_workers(server) == 2, "both workers in the scrape", server)

        # killed from outside (as by the OOM killer): it never ran its exit hook
        crashed = worker_pids(server)[0]
        os.kill(crashed, signal.SIGKILL)
        wait_until(lambda: exits(server)["crashed"] == 1, "a crashed exit", server)

        # frozen: it stops telling the master it is alive, which kills it after `timeout`
        frozen = next(pid for pid in worker_pids(server) if pid != crashed)
        os.kill(frozen, signal.SIGSTOP)
        wait_until(lambda: exits(server)["timeout"] == 1, "a timed-out exit", server)
        assert "WORKER TIMEOUT" in server.log()

        # one worker fewer (SIGTTOU to the master): stopped, and one live worker
        wait_until(lambda: len(worker_pids(server)) == 2, "two workers again", server)
        os.kill(server.process.pid, signal.SIGTTOU)
        wait_until(lambda: exits(server)["stopped"] == 1, "a stopped exit", server)
        wait_until(lambda: live_workers(server) == 1, "one live worker", server)

        assert exits(server) == {"crashed": 1, "timeout": 1, "stopped": 1, "recycled": 0}
