"""Faults the sandbox can inject, to test that ingestion survives what real APIs do.

    sandbox.inject_fault("pagerduty", "rate_limit", times=3)            # 429 + ratelimit-reset
    sandbox.inject_fault("jira", "rate_limit_without_headers", times=2)  # bare 429
    sandbox.inject_fault("pagerduty", "server_error", status=502, path="/log_entries")
    sandbox.inject_fault("jira", "timeout", delay_seconds=1.0)           # answers too late
    sandbox.inject_fault("pagerduty", "truncated_page", after=5)         # half a JSON body
    sandbox.inject_fault("jira", "duplicated_page", path="/rest/api/3/search/jql")  # replays the last page
    sandbox.inject_fault("pagerduty", "expired_token", after=10, times=None)      # 401 from then on

A fault applies to the requests of one API (optionally of one OpenAPI path template) after
``after`` of them went through untouched, for ``times`` requests (None: every one).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.wrappers import Response

KINDS = ("rate_limit", "rate_limit_without_headers", "server_error", "timeout", "truncated_page",
         "duplicated_page", "expired_token")


@dataclass
class Fault:
    kind: str
    path: str | None = None
    after: int = 0
    times: int | None = 1
    status: int = 503
    wait_seconds: int = 1
    delay_seconds: float = 2.0
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {', '.join(KINDS)}")

    def claims(self, path: str) -> bool:
        """Whether this request gets the fault (counting it either way)."""
        if self.path is not None and path != self.path:
            return False
        self.seen += 1
        if self.seen <= self.after or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


class FaultPlan:
    """The faults armed on one API, applied in the order they were injected."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._last_bodies: dict[str, bytes] = {}

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def respond(self, path: str, answer: Callable[[], Response], unauthorized: Callable[[], Response],
                rate_limited: Callable[[int, bool], Response]) -> Response:
        with self._lock:
            fault = next((f for f in self._faults if f.claims(path)), None)
            replay = self._last_bodies.get(path)
        if fault is None:
            response = answer()
            if response.status_code == 200:
                with self._lock:
                    self._last_bodies[path] = response.get_data()
            return response
        if fault.kind == "rate_limit":
            return rate_limited(fault.wait_seconds, True)
        if fault.kind == "rate_limit_without_headers":
            return rate_limited(fault.wait_seconds, False)
        if fault.kind == "server_error":
            return Response(f"<html><body>{fault.status} upstream error</body></html>", status=fault.status,
                            content_type="text/html")
        if fault.kind == "expired_token":
            return unauthorized()
        if fault.kind == "timeout":
            time.sleep(fault.delay_seconds)
            return answer()
        response = answer()
        if fault.kind == "truncated_page":
            body = response.get_data()
            response.set_data(body[: len(body) // 2])
        elif fault.kind == "duplicated_page" and replay is not None:
            response.set_data(replay)
        return response
