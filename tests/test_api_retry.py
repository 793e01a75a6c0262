"""The bounded retry loop both API resources share: what it waits, and when it gives up; and
the redaction of credentials from error text."""

import base64
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import quote

import dagster as dg
import pytest

from assets.api_retry import ApiError, Backoff, Transient, call_with_retries, failing_clearly, redact, wait_hint


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


def test_redact_removes_credentials_in_every_form_an_echoed_request_carries_them():
    email, token, pd_token = "reader@example.com", "jira-tok_3/x+y", "pd-Zq81xV3c"
    pair = f"{email}:{token}"
    basic = base64.b64encode(pair.encode()).decode()
    echoed = (
        f"request headers = {{'Authorization': 'Basic {basic}', 'Accept': 'application/json'}}\n"
        f'{{"headers": {{"authorization": "Token token={pd_token}", "User-Agent": "python-httpx"}}}}\n'
        f"Authorization: Bearer some.jwt.value\nurl=https://x.test/?u={quote(pair, safe='')} pair={pair} "
        f"unpadded={basic.rstrip('=')}"
    )
    cleaned = redact(echoed, [pd_token, token, pair])
    for secret in (pd_token, token, pair, basic, basic.rstrip("="), quote(pair, safe=""), "some.jwt.value"):
        assert secret not in cleaned
    assert "'Accept': 'application/json'" in cleaned and '"User-Agent": "python-httpx"' in cleaned
    assert redact("HTTP 400: Invalid Input Provided", [pd_token]) == "HTTP 400: Invalid Input Provided"
