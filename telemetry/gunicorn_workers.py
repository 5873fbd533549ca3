"""Why gunicorn's workers exit, counted by the master: `gunicorn_worker_exits_total{reason}`.

gunicorn.conf.py's hooks call these two functions:

- `worker_exiting(worker)` in the worker's `worker_exit` hook: it writes its last metrics snapshot
  and the reason it knows: `recycled` (it served `max_requests`) or `stopped` (the master told it
  to: shutdown, reload, fewer workers);
- `worker_exited(worker)` in the master's `child_exit` hook: folds the worker's counts into the
  archive and counts the exit: `timeout` when the master killed it for not answering within
  `timeout` (gunicorn's WORKER TIMEOUT), else the reason the worker wrote, else `crashed` (it died
  without running its exit hook: a signal such as the OOM killer's SIGKILL, a segfault).

The live workers are `gunicorn_workers`; both families are merged into every scrape (see
`telemetry.multiprocess`) and cost nothing per request.
"""

from __future__ import annotations

from . import multiprocess


def exit_reason(worker) -> str:
    """The reason a worker knows as it exits (gunicorn sets max_requests to sys.maxsize if off)."""
    return "recycled" if worker.nr >= worker.max_requests else "stopped"


def worker_exiting(worker) -> None:
    """In the worker: the last snapshot, and why it exits."""
    multiprocess.worker_exiting(worker.pid, exit_reason(worker))


def worker_exited(worker) -> None:
    """In the master: fold the worker into the archive and count its exit by reason."""
    if getattr(worker, "aborted", False):
        reason = "timeout"
    else:
        reason = multiprocess.exit_reason_given(worker.pid) or "crashed"
    multiprocess.fold_exited_worker(worker.pid, reason)
