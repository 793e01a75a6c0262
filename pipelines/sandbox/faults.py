"""Faults the sandbox can inject, to test that ingestion survives what real APIs do.

    sandbox.inject_fault("pagerduty", "rate_limit", times=3)            # 429 + ratelimit-reset
    sandbox.inject_fault("jira", "rate_limit_without_headers", times=2)  # bare 429
    sandbox.inject_fault("pagerduty", "server_error", status=502, path="/log_entries")
    sandbox.inject_fault("jira", "timeout", delay_seconds=1.0)           # answers too late
    sandbox.inject_fault("pagerduty", "truncated_page", after=5)         # half a JSON body
    sandbox.inject_fault("jira", "replayed_page", path="/rest/api/3/issue/{issueIdOrKey}/changelog")
    sandbox.inject_fault("pagerduty", "expired_token", after=10, times=None)      # 401 from then on
    sandbox.inject_fault("jira", "echoed_headers", status=400)           # an error body repeating the headers
    sandbox.inject_fault("pagerduty", "rewrite", path="/log_entries", rewrite=edit)  # edit(body) -> body

A fault applies to the requests of one API (optionally of one OpenAPI path template) after
``after`` of them went through untouched, for ``times`` requests (None: every one).

``replayed_page`` answers with the body of another request, as a proxy or cache that mixes up
requests would: to the same endpoint when it answered one (the previous page of a listing,
another incident for ``GET /incidents/{id}``, another issue's changelog), else to another
endpoint of the API (``/teams`` answered with ``/services``). It waits for the API to have
answered another request first. ``echoed_headers`` answers ``status`` with an error body, in
the API's own error shape, that repeats the request's headers (credentials included), as
some gateways do. ``rewrite`` serves ``rewrite(body)`` instead of a successful JSON body: the
API sending a record shape of the test's choosing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass

from werkzeug.wrappers import Request, Response

KINDS = ("rate_limit", "rate_limit_without_headers", "server_error", "timeout", "truncated_page",
         "replayed_page", "expired_token", "echoed_headers", "rewrite")


@dataclass
class Fault:
    kind: str
    path: str | None = None
    after: int = 0
    times: int | None = 1
    status: int = 503
    wait_seconds: int = 1
    delay_seconds: float = 2.0
    rewrite: Callable[[dict | list], dict | list] | None = None
    seen: int = 0
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; one of {', '.join(KINDS)}")
        if (self.kind == "rewrite") != (self.rewrite is not None):
            raise ValueError("a rewrite fault, and only it, takes rewrite=<function of the JSON body>")

    def claims(self, path: str, applicable: bool) -> bool:
        """Whether this request gets the fault (counting it either way); a fault that cannot
        apply to it (nothing to replay yet) lets it through without spending a time."""
        if self.path is not None and path != self.path:
            return False
        self.seen += 1
        if not applicable or self.seen <= self.after or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


class FaultPlan:
    """The faults armed on one API, applied in the order they were injected."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        # Per endpoint, the latest successful answers to distinct requests: (request, body);
        # and the latest answer of all, with its endpoint.
        self._answers: dict[str, list[tuple[str, bytes]]] = {}
        self._latest: tuple[str, bytes] | None = None
        # Set when the sandbox stops: a "timeout" fault still holding a request answers it.
        self._released = threading.Event()

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def release(self) -> None:
        """Answer at once any request a "timeout" fault holds, and those it would hold later."""
        self._released.set()

    def respond(self, path: str, request: Request, answer: Callable[[], Response],
                unauthorized: Callable[[], Response], rate_limited: Callable[[int, bool], Response],
                error: Callable[[int, str], Response]) -> Response:
        identity = f"{request.method} {request.full_path} {request.get_data(as_text=True)}"
        with self._lock:
            replay = next((body for asked, body in reversed(self._answers.get(path, [])) if asked != identity), None)
            if replay is None and self._latest is not None and self._latest[0] != path:
                replay = self._latest[1]
            fault = next((f for f in self._faults
                          if f.claims(path, applicable=f.kind != "replayed_page" or replay is not None)), None)
        if fault is None:
            response = answer()
            if response.status_code == 200:
                self._remember(path, identity, response.get_data())
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
        if fault.kind == "echoed_headers":
            return error(fault.status, f"Request rejected. Request headers: {dict(request.headers)}")
        if fault.kind == "timeout":
            self._released.wait(fault.delay_seconds)
            return answer()
        response = answer()
        if fault.kind == "truncated_page":
            body = response.get_data()
            response.set_data(body[: len(body) // 2])
        elif fault.kind == "replayed_page":
            response.set_data(replay)
        elif fault.kind == "rewrite" and response.status_code == 200:
            response.set_data(json.dumps(fault.rewrite(json.loads(response.get_data()))))
        return response

    def _remember(self, path: str, identity: str, body: bytes) -> None:
        with self._lock:
            answers = [(asked, kept) for asked, kept in self._answers.get(path, []) if asked != identity]
            self._answers[path] = [*answers[-1:], (identity, body)]
            self._latest = (path, body)
