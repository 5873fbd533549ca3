"""A deadline on every PostgreSQL call, enforced by the client: a frozen server included.

The server's statement_timeout and TCP keepalives never fire for a server that accepts bytes and
answers nothing (stopped, partitioned), and libpq waits on it for as long as the kernel lets it.
So psycopg2 runs in its "green" mode: libpq never blocks, and our wait callback waits on the
connection's socket with poll() until the call's deadline. On expiry it raises DeadlineExceeded;
psycopg2 then closes that connection, SQLAlchemy sees a disconnect and drops it from the pool,
and the request answers 503 (blog_api.errors).

The deadline of a call is the earlier of `timeout` after it starts and the request's deadline
(`request_budget`), so a request waits on the database for about `timeout` in all, a pre-ping
and a reconnect together; except that a call always gets long enough for the server's
statement_timeout to answer first (`connection_class`), so a request whose budget is nearly
spent may wait up to 0.8 `timeout` more for a statement the server is running. Connecting is a
call like the others (libpq's connect_timeout does not apply to an asynchronous connect): the
deadline covers it too.

Only the connections made with `connection_class(timeout)` (the app's engines) have a deadline;
any other psycopg2 connection of the process (a migration's) waits as libpq would, except that its
`connect_timeout`, if any, still bounds the connect.
"""

from __future__ import annotations

import contextvars
import select
import threading
import time

import psycopg2.extensions as pg

_request_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "blog_api_database_deadline", default=None
)
_install_lock = threading.Lock()
_EVENTS = {pg.POLL_READ: select.POLLIN, pg.POLL_WRITE: select.POLLOUT}


class DeadlineExceeded(pg.QueryCanceledError):
    """The database did not answer a call in time; its connection is closed."""


def connection_class(timeout: float, statement_timeout: float | None = None) -> type:
    """A psycopg2 connection class whose every call ends within `timeout` seconds.

    With the server's `statement_timeout`, a call on an open connection is always given that
    much and half the rest of `timeout`, however little of the request's budget is left: on a
    server that answers, the server's own cancel then arrives first, and a slow statement fails
    as a statement on a working connection (blog_api.slow_statements), not as a lost one.
    """
    install()
    at_least = 0.0 if statement_timeout is None else (statement_timeout + timeout) / 2
    attributes = {"deadline_s": timeout, "at_least_s": min(at_least, timeout)}
    return type("DeadlineConnection", (pg.connection,), attributes)


def install() -> None:
    """Put psycopg2 in green mode with our wait callback, once per process."""
    with _install_lock:
        if pg.get_wait_callback() is not _wait:
            pg.set_wait_callback(_wait)


def request_budget(timeout: float) -> contextvars.Token:
    """Start the database budget of the current request (undo with `end_request_budget`)."""
    return _request_deadline.set(time.monotonic() + timeout)


def end_request_budget(token: contextvars.Token) -> None:
    _request_deadline.reset(token)


def _deadline(conn) -> float | None:
    started = time.monotonic()
    timeout = getattr(conn, "deadline_s", None)
    if timeout is None:  # not one of ours: libpq's connect_timeout, else no deadline
        if conn.status != pg.STATUS_SETUP:
            return None
        timeout = float(pg.parse_dsn(conn.dsn).get("connect_timeout") or 0) or None
        return None if timeout is None else started + timeout
    deadline = started + timeout
    request_deadline = _request_deadline.get()
    if request_deadline is not None and request_deadline < deadline:
        if conn.status == pg.STATUS_SETUP:  # connecting: the request's budget, nothing more
            return request_deadline
        return max(request_deadline, started + getattr(conn, "at_least_s", 0.0))
    return deadline


def _wait(conn, cursor=None) -> None:
    """psycopg2's wait callback: poll the connection until done, or raise at the deadline."""
    deadline = _deadline(conn)
    poller = select.poll()
    fd = None
    while True:
        state = conn.poll()
        if state == pg.POLL_OK:
            return
        if deadline is None:
            timeout_ms = None
        else:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timeout = getattr(conn, "deadline_s", None)
                within = f"within {timeout:g} s" if timeout else "in time"
                # "closed the connection" is what SQLAlchemy recognises as a disconnect.
                raise DeadlineExceeded(
                    f"no answer from the database {within}; closed the connection"
                )
            timeout_ms = remaining * 1000
        if fd is not None:
            poller.unregister(fd)
        fd = conn.fileno()  # it may change while connecting
        poller.register(fd, _EVENTS[state])
        poller.poll(timeout_ms)
