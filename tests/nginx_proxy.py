"""Debian's real nginx running deploy/nginx.conf, changed only where it must be, for the tests.

The config is the project's file with only what must differ here replaced (its listen port, the
upstream's servers, and /tmp/ for a directory of the test's own), each replacement asserted to
happen, so the file tested is the file shipped.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from .live_server import HOST, call, free_port
from .services import missing

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
# Added to the location only when asked: which upstream server answered, as a response header.
UPSTREAM_HEADER = "X-Upstream-Addr"


def nginx_binary() -> str:
    path = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if path is None:
        missing("nginx is not installed (apt-get install -y nginx)")
    return path


def adapted_config(
    directory: Path, port: int, servers: list[str], show_upstream: bool = False
) -> str:
    """deploy/nginx.conf on 127.0.0.1:`port`, its upstream `servers`, its files in `directory`.

    A server is `host:port` with nginx's parameters after it if any (`127.0.0.1:5000 down`).
    """
    text = NGINX_CONF.read_text(encoding="utf-8")
    replacements = [
        ("listen 8080;", f"listen {HOST}:{port};"),
        ("server app:8000;", " ".join(f"server {server};" for server in servers)),
        ("/tmp/", f"{directory}/"),
    ]
    if show_upstream:
        proxy_pass = "proxy_pass http://blog_api;"
        replacements.append(
            (proxy_pass, f"{proxy_pass} add_header {UPSTREAM_HEADER} $upstream_addr always;")
        )
    for old, new in replacements:
        assert old in text, f"deploy/nginx.conf no longer has {old!r}: adapt this test"
        text = text.replace(old, new)
    return text


def _children(pid: int) -> set[int]:
    children = set()
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except (OSError, ValueError):
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so read after its closing parenthesis
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            children.add(int(entry))
    return children


class Nginx:
    """`with Nginx(upstream) as proxy:` deploy/nginx.conf in front of `upstream`, until the end.

    `upstream` is one `host:port` or a list of servers (see `adapted_config`).
    """

    def __init__(self, upstream: str | list[str], show_upstream: bool = False) -> None:
        self.binary = nginx_binary()
        self.port = free_port()
        self.show_upstream = show_upstream
        # Not under pytest's tmp_path: nginx's workers drop root for `nobody`, which must reach
        # the temporary files nginx keeps here.
        self.directory = Path(tempfile.mkdtemp(prefix="blog-api-nginx-"))
        self.directory.chmod(0o755)
        self.config = self.directory / "nginx.conf"
        self._write_config([upstream] if isinstance(upstream, str) else upstream)
        self.command = [
            self.binary,
            "-e",
            "stderr",
            "-p",
            str(self.directory),
            "-c",
            str(self.config),
        ]
        self.log_path = self.directory / "nginx.log"
        self.process: subprocess.Popen | None = None

    def _write_config(self, servers: list[str]) -> None:
        text = adapted_config(self.directory, self.port, servers, self.show_upstream)
        self.config.write_text(text, encoding="utf-8")

    def __enter__(self):
        with self.log_path.open("wb") as out:
            self.process = subprocess.Popen(
                [*self.command, "-g", "daemon off;"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.05)
        log = self.log_path.read_text(errors="replace")
        self.__exit__()
        raise RuntimeError(f"nginx did not start:\n{log}")

    def __exit__(self, *exc) -> None:
        try:
            if self.process is not None and self.process.poll() is None:
                self.process.terminate()  # nginx's fast shutdown
                self.process.wait(timeout=10)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def reload(self, servers: list[str], timeout: float = 30.0) -> None:
        """Serve with these upstream servers, as `nginx -s reload` does; return once the workers
        of the old config are gone (they finish their requests first), so that no request goes
        to a server the new config leaves out."""
        self._write_config(servers)
        old = _children(self.process.pid)
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while True:
            current = _children(self.process.pid)
            if current and not current & old:
                return
            assert self.process.poll() is None, self.log_path.read_text(errors="replace")
            assert time.monotonic() < deadline, (
                "nginx's old workers did not exit: "
                + (self.log_path.read_text(errors="replace")[-3000:])
            )
            time.sleep(0.05)

    def request(self, method: str, path: str, body=None, headers=None) -> tuple[int, bytes]:
        return call(self.port, method, path, body, headers)
