"""Process and CPython garbage-collector metrics, read when /metrics is collected.

Names and attributes are OpenTelemetry's semantic conventions (process.*, cpython.gc.*):

| instrument | Prometheus | attributes |
|---|---|---|
| `process.cpu.time` (counter, s) | `process_cpu_time_seconds_total` | `cpu.mode` = user, system |
| `process.memory.usage` (resident, By) | `process_memory_usage_bytes` | |
| `process.memory.virtual` (By) | `process_memory_virtual_bytes` | |
| `process.unix.file_descriptor.count` | `process_unix_file_descriptors` (*) | |
| `process.thread.count` | `process_threads` (*) | |
| `cpython.gc.collections` (counter) | `cpython_gc_collections_total` | `cpython.gc.generation` |
| `cpython.gc.collected_objects` (counter) | `cpython_gc_collected_objects_total` | same |
| `cpython.gc.uncollectable_objects` (counter) | `cpython_gc_uncollectable_objects_total` | same |

(*) Prometheus's name drops the `_count` a gauge may not end with (telemetry.providers).

Every value is an observable instrument's callback: nothing runs per request, only when the
metrics are collected (a scrape, or a worker's snapshot under `multiprocess`). Under several
workers the snapshots are merged like every other family: the gauges (memory, descriptors,
threads) are summed over the live workers, so they are the service's total; the counters (CPU
time, collections) over every worker that ever ran, so they never go down. The gunicorn master
itself is not counted.

We read psutil directly rather than through opentelemetry-instrumentation-system-metrics: that
instrumentor is a process-wide singleton that can be instrumented once (our providers are rebuilt
after a fork), and 0.66b1 still uses the older `process.open_file_descriptor.count` name and
sends every GC series twice labelled (`generation` and `cpython.gc.generation`).
"""

from __future__ import annotations

import gc
import os
import sys

import psutil
from opentelemetry.metrics import CallbackOptions, Meter, Observation


def observe_runtime(meter: Meter) -> None:
    """Register this process's runtime instruments on `meter` (once per meter provider)."""
    process = psutil.Process(os.getpid())

    def cpu_time(_options: CallbackOptions) -> list[Observation]:
        times = process.cpu_times()
        return [
            Observation(times.user, {"cpu.mode": "user"}),
            Observation(times.system, {"cpu.mode": "system"}),
        ]

    def memory(field: str):
        def callback(_options: CallbackOptions) -> list[Observation]:
            return [Observation(getattr(process.memory_info(), field))]

        return callback

    def gc_stat(key: str):
        def callback(_options: CallbackOptions) -> list[Observation]:
            return [
                Observation(stats[key], {"cpython.gc.generation": generation})
                for generation, stats in enumerate(gc.get_stats())
            ]

        return callback

    meter.create_observable_counter(
        "process.cpu.time",
        callbacks=[cpu_time],
        unit="s",
        description="CPU seconds this process has used, by mode.",
    )
    meter.create_observable_up_down_counter(
        "process.memory.usage",
        callbacks=[memory("rss")],
        unit="By",
        description="Resident memory of the process.",
    )
    meter.create_observable_up_down_counter(
        "process.memory.virtual",
        callbacks=[memory("vms")],
        unit="By",
        description="Virtual memory the process has mapped.",
    )
    if sys.platform != "win32":
        meter.create_observable_up_down_counter(
            "process.unix.file_descriptor.count",
            callbacks=[lambda _options: [Observation(process.num_fds())]],
            unit="{file_descriptor}",
            description="File descriptors the process has open (sockets included).",
        )
    meter.create_observable_up_down_counter(
        "process.thread.count",
        callbacks=[lambda _options: [Observation(process.num_threads())]],
        unit="{thread}",
        description="Threads of the process.",
    )
    if sys.implementation.name == "cpython":
        for name, key, unit, description in (
            ("collections", "collections", "{collection}", "Collections of each generation."),
            ("collected_objects", "collected", "{object}", "Objects the collector freed."),
            ("uncollectable_objects", "uncollectable", "{object}", "Objects it could not free."),
        ):
            meter.create_observable_counter(
                f"cpython.gc.{name}",
                callbacks=[gc_stat(key)],
                unit=unit,
                description=description,
            )
