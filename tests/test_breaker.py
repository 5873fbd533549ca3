"""The circuit breaker: fail fast while the database is out, one probe at a time, two log lines."""

import logging

import pytest

from blog_api.breaker import CircuitBreaker


class Clock:
    """A clock the test moves by hand (the breaker takes any clock)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def breaker(clock):
    return CircuitBreaker(probe_timeout_s=2.5, probe_interval_s=1.0, clock=clock)


def test_closed_lets_everything_through(breaker):
    assert all(breaker.allow() for _ in range(100))
    assert not breaker.is_open


def test_open_refuses_until_one_probe_a_second(breaker, clock):
    breaker.failure("OperationalError: connection refused")
    assert breaker.is_open
    assert [breaker.allow() for _ in range(5)] == [False] * 5

    clock.now += 1.0
    assert breaker.allow(), "the probe"
    assert not breaker.allow(), "one probe at a time"
    clock.now += 2.0
    assert not breaker.allow(), "the probe may still be waiting on the database"

    breaker.failure("OperationalError: connection refused")  # the probe failed
    assert not breaker.allow()
    clock.now += 1.0
    assert breaker.allow(), "the next probe, a second after the failed one"


def test_a_success_closes_it(breaker, clock):
    breaker.failure("DeadlineExceeded: no answer")
    clock.now += 1.0
    assert breaker.allow()
    breaker.success()
    assert not breaker.is_open
    assert all(breaker.allow() for _ in range(10))


def test_one_error_line_when_it_goes_and_one_info_line_with_the_count_when_back(
    breaker, clock, caplog
):
    with caplog.at_level(logging.DEBUG, logger="blog_api.breaker"):
        breaker.failure("OperationalError: connection refused")
        for _ in range(40):
            breaker.allow()  # 40 refused at once
        breaker.failure("OperationalError: connection refused")  # one more in flight failed
        clock.now += 3.5
        breaker.success()
        breaker.success()  # closed already: nothing more to say

    records = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert records == [
        (
            "ERROR",
            "database unavailable (OperationalError: connection refused): "
            "API requests answer 503 at once, one probe every 1 s",
        ),
        ("INFO", "database available again after 3.5 s; 42 requests were refused meanwhile"),
    ]
