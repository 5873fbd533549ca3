"""Instructions per request under callgrind: the noise-free price of each variant of overhead.py.

On a shared machine the throughput of bench/overhead.py moves by 20-40 % from one ten-second
measurement to the next; callgrind counts instructions, the same on every run whatever else the
machine does. Each variant serves one route (`--route`, bench/inprocess.py's: get, page, todos,
post; GET /api/v1/posts/<id> by default) in one process (the WSGI app called
directly, as gunicorn's worker calls it, after `gc.freeze()` as gunicorn.conf.py does), with its
span export thread sending to the receiver this script runs: the count covers the request and
the export. A variant runs twice, with SMALL and LARGE requests; (I(LARGE) - I(SMALL)) /
(LARGE - SMALL) cancels start-up and is the instructions one request costs. Counts repeat
exactly for the same code and environment; a change of memory layout (another environment, a
path of another length) moves them by up to 3-4 %, as objects hashed by address collide
differently: compare variants measured in one run, and treat smaller differences as ties.

    .venv-bench/bin/python bench/instructions.py [--variants off,floor,ours-full,...]
        [--route get|page|todos|post] [--small 50] [--large 650]

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
from inprocess import ROUTES, caller, environs, seed  # noqa: E402
from overhead import variant_env, variants  # noqa: E402


def serve(name: str, route: str, requests: int) -> None:
    """In the measured process: build the variant's app, seed it, serve `requests` of `route`."""
    v = variants()[name]
    if "ddtrace-run" in v.wrapper:
        import ddtrace.auto  # noqa: F401 - what ddtrace-run does before anything else
    module, factory = v.app.split(":")
    app = getattr(importlib.import_module(module), factory.removesuffix("()"))()
    seeder = app
    if name == "floor":  # the floor has no routes to write users with: blog-api seeds for it
        from blog_api import create_app

        seeder = create_app({"OTEL_SDK_DISABLED": "true", "ACCESS_LOG": "false"})
    one = caller(app, *environs(*seed(seeder))[route])
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


def instructions(name: str, route: str, env: dict, requests: int, out: Path) -> int:
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
            route,
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
    p.add_argument("--route", choices=ROUTES, default="get", help="see bench/inprocess.py")
    p.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve:
        serve(args.serve[0], args.serve[1], int(args.serve[2]))
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
            f"instructions per request, route {args.route!r}, callgrind, {args.small} and "
            f"{args.large} requests per variant"
        )
        for name, v in chosen.items():
            counts = []
            for n in (args.small, args.large):
                database = base_env(f"sqlite:///{tmp / f'{name}-{n}.db'}")
                migrate(database)  # outside the measured process, as production does
                env = {
                    **database,
                    "WRITE_LIMIT_PER_ADDRESS": "1000000/minute",  # the post route writes
                    **variant_env(name, v, receiver),
                    "PYTHONHASHSEED": "0",  # the same string hashes, so the same dict probes
                }
                out = tmp / f"callgrind.{name}.{n}"
                counts.append(instructions(name, args.route, env, n, out))
            results[name] = (counts[1] - counts[0]) / (args.large - args.small)
            ratio = results["off"] / results[name]
            print(
                f"  {name:26} {results[name] / 1e6:6.3f} M  ratio to off {ratio:5.3f}  "
                f"added {(results[name] - results['off']) / 1e6:+6.3f} M",
                flush=True,
            )
        if "floor" in results:
            print(
                "  ratio to the floor: "
                + ", ".join(
                    f"{name} {count / results['floor']:.2f}x" for name, count in results.items()
                )
            )
        print(json.dumps({"bench": "instructions", "route": args.route, "per_request": results}))
        return 0
    finally:
        receiver.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
