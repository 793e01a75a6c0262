"""The bounded retry loop both API resources share: what it waits, and when it gives up."""

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import dagster as dg
import pytest

from assets.api_retry import ApiError, Backoff, Transient, call_with_retries, failing_clearly, wait_hint


def test_wait_hints_come_from_either_header():
    assert wait_hint({"ratelimit-reset": "7"}) == 7
    assert wait_hint({"Retry-After": "3"}) == 3
    in_a_minute = format_datetime(datetime.now(UTC) + timedelta(seconds=60), usegmt=True)
    assert 55 <= wait_hint({"Retry-After": in_a_minute}) <= 60
    assert wait_hint({}) is None and wait_hint({"Retry-After": "soon"}) is None


def flaky(failures: list[Transient]):
    calls = []

    def call():
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "done"

    return call, calls


def test_backs_off_exponentially_unless_the_server_says_how_long():
    slept: list[float] = []
    call, calls = flaky([Transient("HTTP 503"), Transient("HTTP 429", wait_seconds=9), Transient("timeout")])
    assert call_with_retries(call, what="GET /x", backoff=Backoff(5, 0.5, 60), sleep=slept.append) == "done"
    assert slept == [0.5, 9, 2.0] and len(calls) == 4


def test_gives_up_after_max_attempts_with_the_last_reason():
    slept: list[float] = []
    call, calls = flaky([Transient("HTTP 502")] * 10)
    with pytest.raises(ApiError, match=r"GET /x: still failing after 3 attempts \(HTTP 502\)") as raised:
        call_with_retries(call, what="GET /x", backoff=Backoff(3, 0.1, 60), sleep=slept.append)
    assert len(calls) == 3 and len(slept) == 2 and raised.value.retryable


def test_refused_calls_fail_the_step_without_dagster_retries():
    with pytest.raises(dg.Failure) as raised, failing_clearly():
        raise ApiError("GET /teams: PagerDuty refused the API token (HTTP 401)")
    assert raised.value.allow_retries is False and "401" in raised.value.description
    with pytest.raises(ApiError), failing_clearly():
        raise ApiError("still failing", retryable=True)
