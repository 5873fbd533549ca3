"""Instructions per request under callgrind: the noise-free price of each variant of overhead.py.

On a shared machine the throughput of bench/overhead.py moves by 20-40 % from one ten-second
measurement to the next; callgrind counts instructions, the same on every run whatever else the
machine does. Each variant serves GET /api/v1/posts/<id> in one process (the WSGI app called
directly, as gunicorn's worker calls it, after `gc.freeze()` as gunicorn.conf.py does), with its
span export thread sending to the receiver this script runs: the count covers the request and
the export. A variant runs twice, with SMALL and LARGE requests; (I(LARGE) - I(SMALL)) /
(LARGE - SMALL) cancels start-up and is the instructions one request costs. Counts repeat
exactly for the same code and environment; a change of memory layout (another environment, a
path of another length) moves them by up to 3-4 %, as objects hashed by address collide
differently: compare variants measured in one run, and treat smaller differences as ties.

    .venv-bench/bin/python bench/instructions.py [--variants off,ours-full,...]
        [--small 50] [--large 650]

Needs valgrind (apt-get install valgrind). Each variant takes a minute or two.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import REPO, TraceReceiver, base_env, migrate  # noqa: E402 - a sibling module
from overhead import variant_env, variants  # noqa: E402


def serve(name: str, requests: int) -> None:
    """In the measured process: build the variant's app, seed it, serve `requests` GETs."""
    v = variants()[name]
    if "ddtrace-run" in v.wrapper:
        import ddtrace.auto  # noqa: F401 - what ddtrace-run does before anything else
    module, factory = v.app.split(":")
    app = getattr(importlib.import_module(module), factory.removesuffix("()"))()
    client = app.test_client()
    user = {"username": "bench", "email": "bench@example.org", "password": "correct horse"}
    client.post("/api/v1/users/register", json=user)
    login = {"username": user["username"], "password": user["password"]}
    token = client.post("/api/v1/users/login", json=login).get_json()["access_token"]
    post = {"title": "Benchmark post", "body": "The post every benchmark request reads. " * 10}
    post_id = client.post(
        "/api/v1/posts", json=post, headers={"Authorization": f"Bearer {token}"}
    ).get_json()["id"]

    from werkzeug.test import EnvironBuilder

    path = f"/api/v1/posts/{post_id}"
    environ = EnvironBuilder(
        path=path,
        headers={"User-Agent": "wrk"},
        environ_base={
            "REMOTE_ADDR": "127.0.0.1",
            "REMOTE_PORT": "40000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "RAW_URI": path,
        },
    ).get_environ()

    def start_response(status, headers, exc_info=None):
        if not status.startswith("200"):
            raise RuntimeError(f"{name}: GET {path} answered {status}")

    def one() -> None:
        body = app(dict(environ), start_response)
        for _ in body:
            pass
        getattr(body, "close", lambda: None)()

    for _ in range(20):
        one()
    gc.collect()
    gc.freeze()
    for _ in range(requests):
        one()
    _flush(app)
    os._exit(0)


def _flush(app) -> None:
    """Send every span still queued, so the export of each request is counted."""
    handle = app.extensions.get("telemetry")
    if handle is not None and handle.providers is not None:
        handle.providers.tracer_provider.force_flush(60_000)
    if "ddtrace" in sys.modules:
        from ddtrace.trace import tracer

        tracer.flush()


def instructions(name: str, env: dict, requests: int, out: Path) -> int:
    """The instructions callgrind counted in one process serving `requests` requests."""
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--serve",
            name,
            str(requests),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        check=True,
        timeout=1800,
    )
    return int(re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.M).group(1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default="all", help="comma-separated (off is always included)")
    p.add_argument("--small", type=int, default=50)
    p.add_argument("--large", type=int, default=650)
    p.add_argument("--serve", nargs=2, metavar=("VARIANT", "REQUESTS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
    if not shutil.which("valgrind"):
        p.error("valgrind is not installed (apt-get install valgrind)")
    if not 0 < args.small < args.large <= 5000:
        p.error("0 < --small < --large <= 5000")
    known = variants()
    wanted = list(known) if args.variants == "all" else ["off", *args.variants.split(",")]
    chosen = {}
    for name in dict.fromkeys(wanted):
        if name not in known:
            p.error(f"unknown variant {name!r}; known: {', '.join(known)}")
        if known[name].needs and not importlib.util.find_spec(known[name].needs):
            print(f"skipping {name}: not installed here (make bench)", file=sys.stderr)
            continue
        chosen[name] = known[name]

    tmp = Path(tempfile.mkdtemp(prefix="blog-api-callgrind-"))
    receiver = TraceReceiver()
    results = {}
    try:
        print(
            f"instructions per request, GET /api/v1/posts/<id>, callgrind, {args.small} and "
            f"{args.large} requests per variant"
        )
        for name, v in chosen.items():
            counts = []
            for n in (args.small, args.large):
                database = base_env(f"sqlite:///{tmp / f'{name}-{n}.db'}")
                migrate(database)  # outside the measured process, as production does
                env = {
                    **database,
                    **variant_env(name, v, receiver),
                    "PYTHONHASHSEED": "0",  # the same string hashes, so the same dict probes
                }
                counts.append(instructions(name, env, n, tmp / f"callgrind.{name}.{n}"))
            results[name] = (counts[1] - counts[0]) / (args.large - args.small)
            ratio = results["off"] / results[name]
            print(
                f"  {name:26} {results[name] / 1e6:6.3f} M  ratio to off {ratio:5.3f}  "
                f"added {(results[name] - results['off']) / 1e6:+6.3f} M",
                flush=True,
            )
        print(json.dumps({"bench": "instructions", "per_request": results}))
        return 0
    finally:
        receiver.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
