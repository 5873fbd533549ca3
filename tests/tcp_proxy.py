"""A TCP proxy of the tests' own between the app and a real server, to make database faults.

    with TcpProxy(("127.0.0.1", 5432), mode="refuse") as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/db"
        proxy.mode = "forward"  # the server arrives
        proxy.mode = "freeze"   # it accepts bytes and answers nothing, as a stopped server does
        proxy.mode = "refuse"   # it is gone: connections cut, new ones refused

- forward: bytes flow both ways.
- freeze: new connections are accepted and held; no byte moves either way on any connection (the
  kernel still acknowledges what the app sends, so TCP keepalives and timeouts never fire).
  Back to forward, the held bytes flow again.
- refuse: the listening port is closed (connection refused) and every connection is cut.

One thread accepts, one thread a connection moves bytes; `stop()` (the end of the `with`) closes
every socket and joins every thread.
"""

from __future__ import annotations

import select
import socket
import struct
import threading
import time

HOST = "127.0.0.1"
MODES = ("forward", "freeze", "refuse")
_TICK_S = 0.05


class TcpProxy:
    def __init__(self, upstream: tuple[str, int], mode: str = "forward") -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.upstream = upstream
        self._mode = mode
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._links: set[_Link] = set()
        self._threads: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        with socket.socket() as probe:  # a free port, kept for every reopening
            probe.bind((HOST, 0))
            self.port = probe.getsockname()[1]
        self.accepted = 0

    def __enter__(self) -> TcpProxy:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> None:
        if self._mode != "refuse":
            self._listen()
        self._spawn(self._accept_loop)

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        with self._lock:
            self._mode = mode
            if mode == "refuse":
                self._close_listener()
                links, self._links = self._links, set()
            else:
                links = set()
                if self._listener is None:
                    self._listen()
        for link in links:
            link.close()

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            self._close_listener()
            links, self._links = self._links, set()
        for link in links:
            link.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _listen(self) -> None:
        """Listen on the proxy's port again; the kernel may hold it a moment after a cut."""
        deadline = time.monotonic() + 5
        while True:
            listener = socket.socket()
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((HOST, self.port))
                break
            except OSError:
                listener.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        listener.listen(64)
        listener.setblocking(False)
        self._listener = listener

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            listener = self._listener
            if listener is None:
                self._stopped.wait(_TICK_S)
                continue
            try:
                readable, _, _ = select.select([listener], [], [], _TICK_S)
                if not readable:
                    continue
                client, _ = listener.accept()
            except (OSError, ValueError):  # closed meanwhile (refuse, stop)
                continue
            link = _Link(self, client)
            with self._lock:
                if self._mode == "refuse" or self._stopped.is_set():
                    link.close()
                    continue
                self._links.add(link)
                self.accepted += 1
            self._spawn(link.run)


class _Link:
    """One client connection and, once forwarding, its upstream connection."""

    def __init__(self, proxy: TcpProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.closed = threading.Event()

    def close(self) -> None:
        """Cut both ends at once (a reset: nothing of them lingers on the proxy's port)."""
        self.closed.set()
        for sock in (self.client, self.upstream):
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                except OSError:
                    pass
                sock.close()

    def run(self) -> None:
        try:
            self._pump()
        except (OSError, ValueError):  # cut by refuse or stop, or the peer went away
            pass
        finally:
            with self.proxy._lock:
                self.proxy._links.discard(self)
            self.close()

    def _pump(self) -> None:
        while not self.closed.is_set():
            if self.proxy.mode != "forward":  # frozen: move nothing, answer nothing
                self.closed.wait(_TICK_S)
                continue
            if self.upstream is None:
                self.upstream = socket.create_connection(self.proxy.upstream, timeout=5)
            readable, _, _ = select.select([self.client, self.upstream], [], [], _TICK_S)
            for source in readable:
                if self.proxy.mode != "forward":
                    break
                data = source.recv(65536)
                if not data:
                    return
                target = self.upstream if source is self.client else self.client
                target.sendall(data)
