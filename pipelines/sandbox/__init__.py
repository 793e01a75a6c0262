"""Local, faithful stand-ins for the PagerDuty REST v2 and Jira Cloud REST v3 APIs.

``server.Sandbox`` serves a synthetic organisation over HTTPS on loopback so the pipeline,
its tests and the demo exercise the official client libraries end to end. The two APIs
live in ``pagerduty`` and ``jira``; this module holds the WSGI plumbing they share.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.http import http_date
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from pipelines.sandbox.faults import FaultPlan
from pipelines.synthetic.model import Organisation

Handler = Callable[[Request, dict[str, str]], Response]
RequestCounter = Callable[[str], None]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status=status,
        headers=headers,
        content_type="application/json; charset=utf-8",
    )


class JsonApi:
    """A read-only JSON API as a WSGI application.

    Routes are declared with the OpenAPI path templates of the official specs
    (``/incidents/{id}``), which also name them in the request counts, so counts read
    ``GET /incidents/{id}`` rather than one entry per incident.

    ``variations`` switches on shapes of records the vendor documents (or real accounts
    send) beyond the plain ones; each API lists its own in ``VARIATIONS``, name -> what.
    """

    VARIATIONS: dict[str, str] = {}

    def __init__(self, routes: Iterable[tuple[str, str, Handler]], count_request: RequestCounter,
                 org: Organisation, as_of: datetime | None, variations: Iterable[str] = ()):
        self._handlers: dict[tuple[str, str], Handler] = {}
        rules = []
        for method, path, handler in routes:
            self._handlers[(method, path)] = handler
            rules.append(Rule(re.sub(r"\{(\w+)\}", r"<\1>", path), endpoint=(method, path), methods=[method]))
        self._urls = Map(rules, strict_slashes=False, merge_slashes=False)
        self._count_request = count_request
        self.faults = FaultPlan()
        self._org = org
        self._as_of = as_of or org.as_of
        unknown = set(variations) - set(self.VARIATIONS)
        if unknown:
            raise ValueError(f"unknown variations {sorted(unknown)}; this API serves {', '.join(self.VARIATIONS)}")
        self.variations = frozenset(variations)

    def __call__(self, environ, start_response):
        request = Request(environ)
        # Read the body whatever the route (a 404 never would): on a kept-alive connection the
        # next request starts where this one's body ends (cheroot only skips a body of a stated
        # length, not a chunked one).
        request.get_data()
        try:
            # HEAD matches a GET rule (werkzeug adds it), so the endpoint names the handler.
            (method, path), args = self._urls.bind_to_environ(environ).match()
        except HTTPException:  # no such path or method (the sandboxes are read-only)
            self._count_request(f"{request.method} {request.path}")
            response = self.handle(request, None, {})
        else:
            self._count_request(f"{request.method} {path}")
            response = self.faults.respond(
                path, request, lambda: self.handle(request, self._handlers[(method, path)], args),
                self.unauthorized, self.rate_limited, self.error,
            )
        # The Date header tells the server's "now": the organisation's moment, not the host's.
        response.headers["Date"] = http_date(self.now())
        return response(environ, start_response)

    def now(self) -> datetime:
        """The moment the API is serving."""
        return self._as_of

    def set_as_of(self, moment: datetime) -> None:
        """Serve the organisation as it stood at ``moment`` (at most the generator's cut-off)."""
        if moment > self._org.as_of:
            raise ValueError(f"the organisation was generated up to {self._org.as_of}, not {moment}")
        self._as_of = moment
        self._render(self._org)

    def _render(self, org: Organisation) -> None:
        """Pre-render the organisation as of ``self._as_of``."""
        raise NotImplementedError

    def handle(self, request: Request, handler: Handler | None, args: dict[str, str]) -> Response:
        """Authenticate, apply limits and call ``handler`` (None: no such route)."""
        raise NotImplementedError

    def unauthorized(self) -> Response:
        """The API's answer to missing, wrong or expired credentials."""
        raise NotImplementedError

    def rate_limited(self, wait_seconds: int, with_headers: bool) -> Response:
        """A 429, with the API's rate-limit headers asking to wait ``wait_seconds`` or without."""
        raise NotImplementedError

    def error(self, status: int, message: str) -> Response:
        """An error response in the API's own shape."""
        raise NotImplementedError
