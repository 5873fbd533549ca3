"""Exact /metrics when several worker processes share one port (gunicorn `-w N`).

The OpenTelemetry SDK keeps its metrics inside each process, so a scrape answered by one worker
would report only that worker's share. Here every worker writes a snapshot of its own collection
(the same samples its /metrics would show) to a shared directory every `interval` seconds and when
it exits; the worker answering a scrape merges its live numbers with the other workers' snapshots:

- counters and histograms are summed per label set, including the totals of workers that exited
  (the master folds an exited worker's last snapshot into `archive.json`), so totals never go down
  (the answering worker also writes its fresh numbers before it reads the others');
- gauges (active requests, pool usage) are summed over live workers only;
- `target_info` appears once, without the per-process `service_instance_id`;
- the worker processes themselves: `gunicorn_workers` (gauge: the live workers, one snapshot file
  each) and `gunicorn_worker_exits_total{reason}` (counter, in the archive: the master counts an
  exit when it folds the worker; see `telemetry.gunicorn_workers` for the reasons). Every reason
  is there from the start, at 0.

Files: one `worker-<pid>.json` per live worker plus `archive.json`, however many workers have come
and gone. A snapshot is at most `interval` old (0.5 s by default), which is the staleness bound of a
scrape; a worker that is SIGKILLed loses at most its last `interval` of counts.

Switch it on with `METRICS_MULTIPROCESS_DIR=/some/empty/dir`; `gunicorn.conf.py` does so by itself
(a fresh temporary directory) whenever gunicorn runs the app, one worker or many, through the hooks
below: then a recycled worker's counts survive too. Outside gunicorn (`flask run`, tests) nothing
here runs.

The gunicorn master imports this module for its hooks; that loads the `telemetry` package (and
with it the OpenTelemetry API and SDK modules) but builds no provider and starts no thread: the
workers build their own after the fork.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterable
from contextlib import contextmanager

from prometheus_client import Metric

ENV_DIR = "METRICS_MULTIPROCESS_DIR"
ENV_INTERVAL = "METRICS_SNAPSHOT_INTERVAL"
DEFAULT_INTERVAL_S = 0.5
ARCHIVE = "archive.json"
LOCK = ".lock"
_WORKER_PREFIX = "worker-"
_EXIT_PREFIX = "exit-"  # the reason a worker gave as it exited, read by the master
WORKERS = "gunicorn_workers"
EXITS = "gunicorn_worker_exits"
EXIT_REASONS = ("recycled", "stopped", "timeout", "crashed")
_TMP_PREFIX = "telemetry-metrics-"
_DROP_FROM_INFO = frozenset({"service_instance_id"})

log = logging.getLogger(__name__)

# A snapshot: [[family name, type, help, unit, [[sample name, {labels}, value], ...]], ...]
Snapshot = list


def to_snapshot(families: Iterable[Metric]) -> Snapshot:
    return [
        [f.name, f.type, f.documentation, f.unit, [[s.name, s.labels, s.value] for s in f.samples]]
        for f in families
    ]


@contextmanager
def _locked(directory: str, mode: int):
    """Readers share the lock; the master folding a dead worker takes it alone."""
    with open(os.path.join(directory, LOCK), "a+") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomically(path: str, snapshot: Snapshot) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(snapshot, handle, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _read(path: str) -> Snapshot:
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return []


def _exits(counts: dict[str, float]) -> Snapshot:
    samples = [[f"{EXITS}_total", {"reason": r}, counts.get(r, 0)] for r in EXIT_REASONS]
    return [[EXITS, "counter", "Worker processes that exited, by reason.", "", samples]]


def _workers(live: int) -> Snapshot:
    return [[WORKERS, "gauge", "Worker processes serving requests now.", "", [[WORKERS, {}, live]]]]


def merge(own: Snapshot, live: list[Snapshot], archived: Snapshot) -> list[Metric]:
    """Sum every source per sample; gauges from live processes only; info from `own` only."""
    families: dict[str, list] = {}
    samples: dict[str, dict[tuple, list]] = {}

    def add(snapshot: Snapshot, is_live: bool, is_own: bool) -> None:
        for name, typ, documentation, unit, rows in snapshot:
            if typ == "gauge" and not is_live or typ == "info" and not is_own:
                continue
            families.setdefault(name, [typ, documentation, unit])
            merged = samples.setdefault(name, {})
            for sample_name, labels, value in rows:
                if typ == "info":
                    labels = {k: v for k, v in labels.items() if k not in _DROP_FROM_INFO}
                key = (sample_name, tuple(sorted(labels.items())))
                if key in merged:
                    merged[key][2] += value
                else:
                    merged[key] = [sample_name, labels, value]

    add(own, is_live=True, is_own=True)
    for snapshot in live:
        add(snapshot, is_live=True, is_own=False)
    add(archived, is_live=False, is_own=False)

    result = []
    for name, (typ, documentation, unit) in families.items():
        metric = Metric(name, documentation, typ, unit)
        for sample_name, labels, value in samples[name].values():
            metric.add_sample(sample_name, labels, value)
        result.append(metric)
    return result


class WorkerMetrics:
    """One worker's side: write snapshots of `collect()` and merge the others' at scrape time."""

    def __init__(self, directory: str, collect: Callable[[], Iterable[Metric]], interval: float):
        self.directory = directory
        self.interval = interval
        self._collect = collect
        self._pid = os.getpid()
        self._path = os.path.join(directory, f"{_WORKER_PREFIX}{self._pid}.json")
        self._stop = threading.Event()
        self._write_lock = threading.Lock()  # a late periodic write must not undo the final one
        self._thread = threading.Thread(target=self._run, name="metrics-snapshot", daemon=True)

    def start(self) -> None:
        self.write_snapshot()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.write_snapshot()
            except Exception:  # noqa: BLE001 - keep snapshotting; the next one may work
                log.exception("could not write the metrics snapshot")

    def write_snapshot(self) -> Snapshot:
        """Collect this worker's metrics now, write them, and return them."""
        with self._write_lock:
            snapshot = to_snapshot(self._collect())
            _write_atomically(self._path, snapshot)
            return snapshot

    def stop(self) -> None:
        """Stop the thread and write a last snapshot (the worker is exiting)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.write_snapshot()

    def collect_merged(self) -> list[Metric]:
        """Every worker's totals. Our own fresh numbers are written first, so that the next scrape,
        whichever worker answers it, reads them: totals never go down from one scrape to the next.
        """
        own = self.write_snapshot()
        with _locked(self.directory, fcntl.LOCK_SH):
            others = [
                _read(os.path.join(self.directory, name))
                for name in os.listdir(self.directory)
                if name.startswith(_WORKER_PREFIX) and name != os.path.basename(self._path)
            ]
            archived = _read(os.path.join(self.directory, ARCHIVE))
        # the worker families: every exit reason at 0 unless the archive counts some
        lifecycle = _workers(1 + len(others)) + _exits({})
        return merge(own, [*others, lifecycle], archived)


# --- the gunicorn master's side ----------------------------------------------------------------

_current: WorkerMetrics | None = None


def start_worker(directory: str, collect: Callable[[], Iterable[Metric]]) -> WorkerMetrics:
    """Start snapshotting this process's metrics into `directory` (once per process)."""
    global _current
    if _current is None or _current._pid != os.getpid():
        interval = float(os.environ.get(ENV_INTERVAL, DEFAULT_INTERVAL_S))
        _current = WorkerMetrics(directory, collect, interval)
        _current.start()
    return _current


def prepare() -> str:
    """In the master before forking: choose the directory (a fresh temporary one unless set).

    A directory that already exists (set by the operator, or inherited by a new master during a
    USR2 upgrade) keeps its counts: live workers' files stay, dead ones are folded into the archive.
    """
    directory = os.environ.get(ENV_DIR)
    if not directory:
        directory = tempfile.mkdtemp(prefix=_TMP_PREFIX)
        os.environ[ENV_DIR] = directory
    os.makedirs(directory, mode=0o700, exist_ok=True)
    for name in os.listdir(directory):
        if name.startswith(".tmp-"):
            os.unlink(os.path.join(directory, name))
        elif name.startswith(_EXIT_PREFIX):
            pid = int(name[len(_EXIT_PREFIX) :])
            if not _alive(pid):  # its master died before folding it: nothing to count
                os.unlink(os.path.join(directory, name))
        elif name.startswith(_WORKER_PREFIX):
            pid = int(name[len(_WORKER_PREFIX) :].split(".", 1)[0])
            if not _alive(pid):
                fold_exited_worker(pid)
    return directory


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # PermissionError would mean someone else's live process
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def worker_exiting(pid: int, reason: str | None = None) -> None:
    """In a worker that is about to exit: write its final numbers, and why it exits."""
    if _current is not None and _current._pid == pid == os.getpid():
        _current.stop()
        if reason is not None:
            with open(os.path.join(_current.directory, f"{_EXIT_PREFIX}{pid}"), "w") as handle:
                handle.write(reason)


def exit_reason_given(pid: int) -> str | None:
    """In the master: the reason worker `pid` wrote as it exited (None: it wrote none)."""
    directory = os.environ.get(ENV_DIR)
    try:
        with open(os.path.join(directory or "", f"{_EXIT_PREFIX}{pid}")) as handle:
            return handle.read().strip() or None
    except FileNotFoundError:
        return None


def fold_exited_worker(pid: int, reason: str | None = None) -> None:
    """In the master after a worker exited: add its counters to the archive, drop its files, and
    count its exit under `reason` (one of EXIT_REASONS) when one is given."""
    directory = os.environ.get(ENV_DIR)
    if not directory:
        return
    path = os.path.join(directory, f"{_WORKER_PREFIX}{pid}.json")
    with _locked(directory, fcntl.LOCK_EX):
        archive_path = os.path.join(directory, ARCHIVE)
        counters = [f for f in _read(path) if f[1] not in ("gauge", "info")]
        if reason is not None:
            counters += _exits({reason: 1})
        if counters:
            _write_atomically(archive_path, to_snapshot(merge(counters, [], _read(archive_path))))
        for stale in (path, os.path.join(directory, f"{_EXIT_PREFIX}{pid}")):
            if os.path.exists(stale):
                os.unlink(stale)


def cleanup(directory: str | None) -> None:
    """In the master at exit: remove the directory it made."""
    if directory and os.path.basename(directory).startswith(_TMP_PREFIX):
        shutil.rmtree(directory, ignore_errors=True)
