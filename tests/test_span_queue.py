"""A full export queue drops spans and says so, in /health and in /metrics alike.

The batch processor's queue size is read once per process, so this runs in a fresh interpreter.
"""

import json
import subprocess
import sys

from . import databases
from .conftest import SECRET
from .live_server import ROOT
from .otlp_receiver import OTLPReceiver

SCRIPT = """
import json, sys
from blog_api import create_app
app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": sys.argv[2],
                  "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": sys.argv[3], "LOG_LEVEL": "CRITICAL"})
client = app.test_client()
for _ in range(60):
    assert client.get("/api/v1/posts").status_code == 200
health = client.get("/health").get_json()
metrics = client.get("/metrics").get_data(as_text=True)
print(json.dumps({"health": health, "metrics": metrics}), flush=True)
"""


def test_spans_dropped_on_a_full_queue_are_counted(tmp_path):
    with OTLPReceiver(mode="hang") as collector:
        env = {
            "PATH": "/usr/bin:/bin",
            "OTEL_BSP_MAX_QUEUE_SIZE": "8",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4",
            "OTEL_BSP_SCHEDULE_DELAY": "60000",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "30000",  # milliseconds: retries past the test
        }
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                SCRIPT,
                databases.migrated_sqlite(tmp_path / "q.db"),
                SECRET,
                collector.endpoint,
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    exporter = out["health"]["checks"]["trace_exporter"]
    dropped = exporter["dropped_spans"]
    # 60 requests, each a server span plus SQL spans, into a queue of 8 behind a stuck export
    assert dropped > 60
    line = next(
        line
        for line in out["metrics"].splitlines()
        if line.startswith('otel_sdk_processor_span_processed_total{error_type="queue_full"}')
    )
    assert float(line.rsplit(" ", 1)[1]) == dropped
