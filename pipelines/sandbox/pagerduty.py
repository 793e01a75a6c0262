"""PagerDuty REST API v2 (read-only) over a synthetic organisation.

Reproduces what an ingestion job meets on api.pagerduty.com: token authentication, classic
offset pagination capped at offset + limit = 10,000, since/until windows of at most six
months (a 30-day default window), a fixed per-minute rate limit per token with the
``ratelimit-*`` headers, and PagerDuty's error bodies and codes. Objects follow the shapes
of the official OpenAPI description (docs/specs beside the sandbox's tests check them).

Everything is rendered and sorted once at start-up; a request slices the pre-rendered
lists (bisecting on ``created_at`` for time windows), so organisations with thousands of
incidents serve quickly. The sandbox's "now" is ``Organisation.as_of``: status reflects
that instant and default windows end there. ``set_as_of`` moves it (re-rendering): a test
can serve the organisation as it stood on an earlier day, then advance so a later sync sees
new incidents and old ones acknowledged, resolved, reopened or merged since.

Beyond clean timelines the sandbox renders what real accounts hold: a service that moved
between teams (``/services`` shows its current team; incidents and their log entries keep
the team of trigger time), a test service, reopened incidents (trigger after resolve),
merges (``resolve_reason`` on the merged incident), the onset in the "impact started"
custom field (``custom_field_value_change_log_entry``, and ``/custom_fields/values``) and
in the first alert's timestamp (the trigger entry's ``channel.cef_details.creation_time``).
``PagerDutyApi.VARIATIONS`` lists the record shapes it can also serve, each from the vendor's
documentation or a real account's capture (notes, agents without a type, integrations as
agents, timestamps in the account's zone, references without links, null fields).
"""

from __future__ import annotations

import base64
import hashlib
import math
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from werkzeug.wrappers import Request, Response

from pipelines.sandbox import Handler, JsonApi, RequestCounter, json_response
from pipelines.synthetic.model import Incident, IncidentReview, Organisation, Service, Team, User

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
OFFSET_CAP = 10_000
DEFAULT_WINDOW = timedelta(days=30)
MAX_WINDOW = timedelta(days=183)  # "Maximum range is 6 months"
RATE_LIMIT_WINDOW_SECONDS = 60
ACKNOWLEDGEMENT_TIMEOUT_SECONDS = 1800
# html_url points at a web app the sandbox does not have; .invalid names never resolve.
WEB_URL = "https://sandbox.pagerduty.invalid"
IMPACT_STARTED_FIELD_ID = "PIMPSTA"
# The account's zone for the offset_timestamps variation (the spec's examples are in -05:00).
ACCOUNT_ZONE = timezone(timedelta(hours=-5))
# Incidents with a note: every third (notes variation), two hours after the last status change.
NOTED_EVERY = 3
NOTE_DELAY = timedelta(hours=2)
ERROR_CODES = {400: 2001, 401: 2006, 403: 2010, 404: 2100}
# Action items are due this long after they were agreed.
ACTION_ITEM_DUE = timedelta(days=30)


class PagerDutyError(Exception):
    """An error response in PagerDuty's shape: ``{"error": {"message", "code", "errors"}}``."""

    def __init__(self, status: int, code: int, message: str, errors: list[str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors

    def body(self) -> dict:
        error: dict = {"message": self.message, "code": self.code}
        if self.errors:
            error["errors"] = self.errors
        return {"error": error}


def invalid_input(detail: str) -> PagerDutyError:
    return PagerDutyError(400, 2001, "Invalid Input Provided", [detail])


@dataclass(frozen=True)
class RateLimitStatus:
    allowed: bool
    limit: int
    remaining: int
    reset_seconds: int

    def headers(self) -> dict[str, str]:
        return {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(self.reset_seconds),
        }


class FixedWindowRateLimiter:
    """``limit`` requests per key in consecutive windows, each starting at the key's first
    request after the previous window ended."""

    def __init__(self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic):
        if limit < 1:
            raise ValueError(f"rate limit must be at least 1 request per window, not {limit}")
        self.limit = limit
        self.window_seconds = window_seconds
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}  # key -> (window start, requests taken)
        self._lock = threading.Lock()

    def take(self, key: str) -> RateLimitStatus:
        with self._lock:
            now = self._clock()
            start, taken = self._windows.get(key, (now, 0))
            if now - start >= self.window_seconds:
                start, taken = now, 0
            allowed = taken < self.limit
            if allowed:
                taken += 1
            self._windows[key] = (start, taken)
        reset = max(1, math.ceil(start + self.window_seconds - now))
        return RateLimitStatus(allowed, self.limit, self.limit - taken, reset)


def pd_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    """ISO 8601 as PagerDuty accepts it (``Z``, ``+00:00``, ``+0000`` or a bare date);
    times without an offset are read in UTC, the sandbox account's time zone."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise PagerDutyError(
            400, 2004, "Invalid time values in 'since' and/or 'until' parameters",
            [f"{text!r} is not an ISO 8601 date-time"],
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _log_entry_id(incident_id: str, kind: str) -> str:
    digest = hashlib.sha1(f"{incident_id}/{kind}".encode()).digest()
    return "R" + base64.b32encode(digest).decode()[:13]


@dataclass(frozen=True)
class _IncidentRecord:
    created_at: datetime
    status: str
    urgency: str
    team_id: str
    service_id: str
    body: dict


@dataclass(frozen=True)
class _LogEntryRecord:
    created_at: datetime
    id: str
    incident_id: str
    team_id: str
    body: dict


class PagerDutyApi(JsonApi):
    VARIATIONS = {
        "notes": "every third incident gets a note (annotate_log_entry) after its last status change; as on "
                 "the live API, a note does not move the incident's updated_at",
        "untyped_agents": "acknowledge entries name their agent without a type, as old accounts' entries do "
                          "(a captured 2013 /log_entries answer: agent {id, summary, self, html_url})",
        "integration_agents": "triggers raised by an alert and resolves through the API name the service's "
                              "integration as their agent (AgentReference's 'integration_reference')",
        "offset_timestamps": "timestamps in the account's zone with its offset (2015-11-06T11:12:51-05:00), "
                             "as the spec's examples render them",
        "summary_only_references": "embedded references carry id, type and summary only: self and html_url "
                                   "are null (both nullable in the spec)",
        "null_fields": "nullable fields sent as null: resolve_reason, log entries' html_url, "
                       "acknowledgement_timeout, service descriptions",
    }

    def __init__(
        self,
        org: Organisation,
        *,
        token: str,
        base_url: str,
        rate_limit_per_minute: int,
        count_request: RequestCounter,
        clock: Callable[[], float] = time.monotonic,
        as_of: datetime | None = None,
        variations: Iterable[str] = (),
    ):
        super().__init__(
            [
                ("GET", "/teams", self._list_teams),
                ("GET", "/services", self._list_services),
                ("GET", "/users", self._list_users),
                ("GET", "/incidents", self._list_incidents),
                ("GET", "/incidents/{id}", self._get_incident),
                ("GET", "/incidents/{id}/log_entries", self._list_incident_log_entries),
                ("GET", "/incidents/{id}/custom_fields/values", self._get_custom_field_values),
                ("GET", "/incidents/{id}/review", self._get_review),
                ("GET", "/incidents/{id}/review/action_items", self._list_review_action_items),
                ("GET", "/log_entries", self._list_log_entries),
                ("GET", "/log_entries/{id}", self._get_log_entry),
            ],
            count_request,
            org,
            as_of,
            variations,
        )
        self._authorization = f"Token token={token}"
        self._base_url = base_url
        self._rate_limiter = FixedWindowRateLimiter(rate_limit_per_minute, RATE_LIMIT_WINDOW_SECONDS, clock)
        self._render(org)

    def unauthorized(self) -> Response:
        return json_response({"error": {"message": "Unauthorized", "code": 2006}}, 401)

    def rate_limited(self, wait_seconds: int, with_headers: bool) -> Response:
        headers = RateLimitStatus(False, self._rate_limiter.limit, 0, wait_seconds).headers() if with_headers else None
        return json_response(PagerDutyError(429, 2020, "Rate Limit Exceeded").body(), 429, headers)

    def error(self, status: int, message: str) -> Response:
        return json_response(PagerDutyError(status, ERROR_CODES.get(status, 2000), message).body(), status)

    # -- request handling -------------------------------------------------------------

    def handle(self, request: Request, handler: Handler | None, args: dict[str, str]) -> Response:
        if request.headers.get("Authorization") != self._authorization:
            return self.unauthorized()
        limit = self._rate_limiter.take(self._authorization)
        if not limit.allowed:
            body = PagerDutyError(429, 2020, "Rate Limit Exceeded").body()
            return json_response(body, 429, limit.headers())
        try:
            if handler is None:
                raise PagerDutyError(404, 2100, "Not Found")
            response = handler(request, args)
        except PagerDutyError as error:
            response = json_response(error.body(), error.status)
        response.headers.extend(limit.headers())
        return response

    def _list_teams(self, request: Request, args) -> Response:
        teams = self._matching_name(self._teams, request)
        return self._page(request, "teams", teams)

    def _list_services(self, request: Request, args) -> Response:
        team_ids = set(request.args.getlist("team_ids[]"))
        services = [
            s for s in self._matching_name(self._services, request)
            if not team_ids or team_ids & {t["id"] for t in s["teams"]}
        ]
        return self._page(request, "services", services)

    def _list_users(self, request: Request, args) -> Response:
        team_ids = set(request.args.getlist("team_ids[]"))
        users = [
            u for u in self._matching_name(self._users, request)
            if not team_ids or team_ids & {t["id"] for t in u["teams"]}
        ]
        return self._page(request, "users", users)

    def _list_incidents(self, request: Request, args) -> Response:
        records = self._in_window(request, self._incidents, self._incident_times, default_window=True)
        filters = {
            "status": set(request.args.getlist("statuses[]")),
            "team_id": set(request.args.getlist("team_ids[]")),
            "service_id": set(request.args.getlist("service_ids[]")),
            "urgency": set(request.args.getlist("urgencies[]")),
        }
        for attribute, wanted in filters.items():
            if wanted:
                records = [r for r in records if getattr(r, attribute) in wanted]
        for field, descending in reversed(self._incident_sort(request)):
            records = sorted(records, key=lambda r: r.body.get(field) or "", reverse=descending)
        return self._page(request, "incidents", [r.body for r in records])

    def _get_incident(self, request: Request, args) -> Response:
        return json_response({"incident": self._incident(args["id"]).body})

    def _list_incident_log_entries(self, request: Request, args) -> Response:
        entries = self._entries_by_incident[self._incident(args["id"]).body["id"]]
        times = [e.created_at for e in entries]
        entries = self._in_window(request, entries, times, default_window=False)
        return self._page(request, "log_entries", self._with_includes(request, entries))

    def _list_log_entries(self, request: Request, args) -> Response:
        # ``is_overview`` is accepted: every entry the sandbox renders (trigger, acknowledge,
        # resolve) is an overview entry, so it filters nothing.
        entries = self._in_window(request, self._log_entries, self._log_entry_times, default_window=True)
        team_ids = set(request.args.getlist("team_ids[]"))
        if team_ids:
            entries = [e for e in entries if e.team_id in team_ids]
        return self._page(request, "log_entries", self._with_includes(request, entries))

    def _get_log_entry(self, request: Request, args) -> Response:
        entry = self._log_entries_by_id.get(args["id"])
        if entry is None:
            raise PagerDutyError(404, 2100, "Not Found", ["Log Entry Not Found"])
        return json_response({"log_entry": self._with_includes(request, [entry])[0]})

    def _get_custom_field_values(self, request: Request, args) -> Response:
        return json_response({"custom_fields": self._custom_fields[self._incident(args["id"]).body["id"]]})

    def _review(self, incident_id: str) -> dict:
        """The incident's review as of now; 404 when it has none (or the incident is unknown:
        the API answers both alike)."""
        review = self._reviews.get(incident_id)
        if review is None:
            raise PagerDutyError(404, 2100, "Not Found", ["Incident Review Not Found"])
        return review

    def _get_review(self, request: Request, args) -> Response:
        return json_response({"incident_review": self._review(args["id"])["review"]})

    def _list_review_action_items(self, request: Request, args) -> Response:
        return json_response({"action_items": self._review(args["id"])["action_items"]})

    # -- query parameters -------------------------------------------------------------

    def _incident(self, incident_id: str) -> _IncidentRecord:
        try:
            return self._incidents_by_id[incident_id]
        except KeyError:
            raise PagerDutyError(404, 5001, "Not Found", ["Incident Not Found"]) from None

    @staticmethod
    def _matching_name(objects: list[dict], request: Request) -> list[dict]:
        query = request.args.get("query", "").lower()
        return [o for o in objects if query in o["name"].lower()] if query else objects

    @staticmethod
    def _incident_sort(request: Request) -> list[tuple[str, bool]]:
        keys = []
        for item in request.args.get("sort_by", "created_at:asc").split(","):
            field, _, direction = item.strip().partition(":")
            if field not in ("created_at", "incident_number", "resolved_at") or direction not in ("", "asc", "desc"):
                raise invalid_input(f"sort_by {item!r} is not supported")
            keys.append((field, direction == "desc"))
        if len(keys) > 2:
            raise invalid_input("sort_by takes at most two fields")
        return keys

    def _in_window(self, request: Request, records: list, times: list[datetime], *, default_window: bool) -> list:
        """The records created in ``[since, until)``, with the API's rules: a 30-day window
        ending now when neither is given (list endpoints), spans of at most six months,
        and ``date_range=all`` lifting the window."""
        if request.args.get("date_range") == "all":
            return records
        since_text, until_text = request.args.get("since"), request.args.get("until")
        if since_text is None and until_text is None and not default_window:
            return records
        until = parse_time(until_text) if until_text else self._as_of
        since = parse_time(since_text) if since_text else until - DEFAULT_WINDOW
        if until < since:
            raise PagerDutyError(400, 2005, "Invalid Query Date Range", ["until must not precede since"])
        if until - since > MAX_WINDOW:
            raise PagerDutyError(
                400, 2005, "Invalid Query Date Range",
                [f"The maximum range of since and until is 6 months ({MAX_WINDOW.days} days)"],
            )
        return records[bisect_left(times, since) : bisect_left(times, until)]

    def _page(self, request: Request, collection: str, records: list[dict]) -> Response:
        try:
            limit = int(request.args.get("limit", DEFAULT_LIMIT))
            offset = int(request.args.get("offset", 0))
        except ValueError:
            raise invalid_input("limit and offset must be integers") from None
        limit = min(max(limit, 1), MAX_LIMIT)
        if offset < 0:
            raise invalid_input("offset must not be negative")
        if offset + limit > OFFSET_CAP:
            raise invalid_input(
                f"Offset must be less than {OFFSET_CAP}: offset + limit may not exceed {OFFSET_CAP} "
                f"(got offset={offset}, limit={limit}); narrow the query with filters instead"
            )
        total = len(records) if request.args.get("total") == "true" else None
        return json_response({
            collection: records[offset : offset + limit],
            "limit": limit,
            "offset": offset,
            "more": offset + limit < len(records),
            "total": total,
        })

    def _with_includes(self, request: Request, entries: list[_LogEntryRecord]) -> list[dict]:
        """Log entries with references swapped for full objects per ``include[]``
        (``channels`` adds nothing: channels are always rendered in full)."""
        includes = set(request.args.getlist("include[]"))
        if not includes & {"incidents", "services", "teams"}:
            return [e.body for e in entries]
        bodies = []
        for entry in entries:
            body = dict(entry.body)
            if "incidents" in includes:
                body["incident"] = self._incidents_by_id[entry.incident_id].body
            if "services" in includes:
                body["service"] = self._services_by_id[body["service"]["id"]]
            if "teams" in includes:
                body["teams"] = [self._teams_by_id[t["id"]] for t in body["teams"]]
            bodies.append(body)
        return bodies

    # -- rendering --------------------------------------------------------------------

    def _reference(self, kind: str, object_id: str, summary: str, api_path: str, web_path: str) -> dict:
        return {
            "id": object_id,
            "type": f"{kind}_reference",
            "summary": summary,
            "self": f"{self._base_url}/{api_path}/{object_id}",
            "html_url": f"{WEB_URL}/{web_path}/{object_id}",
        }

    def _team_reference(self, team: Team) -> dict:
        return self._reference("team", team.pagerduty_id, team.name, "teams", "teams")

    def _service_reference(self, service: Service) -> dict:
        return self._reference("service", service.pagerduty_id, service.name, "services", "service-directory")

    def _user_reference(self, user: User) -> dict:
        return self._reference("user", user.pagerduty_id, user.name, "users", "users")

    def _escalation_policy_reference(self, service: Service) -> dict:
        return self._reference(
            "escalation_policy", service.escalation_policy_id, f"{service.name} escalation policy",
            "escalation_policies", "escalation_policies",
        )

    @staticmethod
    def _full(reference: dict, **fields) -> dict:
        return {**reference, "type": reference["type"].removesuffix("_reference"), **fields}

    def _embedded(self, reference: dict) -> dict:
        """A reference as another object embeds it."""
        if "summary_only_references" in self.variations:
            return {**reference, "self": None, "html_url": None}
        return reference

    def _time(self, moment: datetime) -> str:
        """A timestamp of an incident or log entry as the API renders it."""
        if "offset_timestamps" in self.variations:
            return moment.astimezone(ACCOUNT_ZONE).replace(microsecond=0).isoformat()
        return pd_time(moment)

    def _integration_agent(self, service: Service) -> dict:
        """The service's monitoring integration as the agent of a log entry."""
        integration_id = "I" + service.pagerduty_id[1:]
        return self._embedded({
            "id": integration_id,
            "type": "integration_reference",
            "summary": f"{service.name} monitoring",
            "self": f"{self._base_url}/services/{service.pagerduty_id}/integrations/{integration_id}",
            "html_url": f"{WEB_URL}/services/{service.pagerduty_id}/integrations/{integration_id}",
        })

    def _render(self, org: Organisation) -> None:
        teams = {t.key: t for t in org.teams}
        services = {s.pagerduty_id: s for s in org.services}
        users = {u.pagerduty_id: u for u in org.users}
        service_created_at = pd_time(datetime(org.spec.start.year, org.spec.start.month, 1, tzinfo=UTC))

        self._teams = [
            self._full(self._team_reference(t), name=t.name, description=f"The {t.name} team",
                       default_role="manager")
            for t in org.teams
        ]
        self._teams_by_id = {t["id"]: t for t in self._teams}
        self._services = [
            self._full(
                self._service_reference(s),
                name=s.name,
                description=None if "null_fields" in self.variations else f"Owned by {teams[s.team_at(self._as_of)].name}",
                auto_resolve_timeout=14400,
                acknowledgement_timeout=ACKNOWLEDGEMENT_TIMEOUT_SECONDS,
                created_at=service_created_at,
                status="active",
                alert_creation="create_alerts_and_incidents",
                escalation_policy=self._escalation_policy_reference(s),
                teams=[self._team_reference(teams[s.team_at(self._as_of)])],
                integrations=[],
            )
            for s in org.services
        ]
        self._services_by_id = {s["id"]: s for s in self._services}
        self._users = [
            self._full(
                self._user_reference(u),
                name=u.name,
                email=u.email,
                time_zone="Etc/UTC",
                color="green",
                role="user",
                avatar_url=f"{WEB_URL}/avatars/{u.pagerduty_id}.png",
                description="",
                invitation_sent=False,
                job_title="On-call engineer",
                teams=[self._team_reference(teams[u.team_key])],
                contact_methods=[],
                notification_rules=[],
            )
            for u in org.users
        ]

        self._incidents: list[_IncidentRecord] = []
        self._entries_by_incident: dict[str, list[_LogEntryRecord]] = {}
        self._custom_fields: dict[str, list[dict]] = {}
        numbers = {i.pagerduty_id: i for i in org.incidents}
        for incident in sorted(org.incidents, key=lambda i: (i.created_at, i.number)):
            if incident.created_at >= self._as_of:
                continue
            service, team = services[incident.service_id], teams[incident.team_key]
            responder = users.get(incident.acknowledged_by) if incident.acknowledged_by else None
            merged_into = numbers.get(incident.merged_into) if incident.merged_into else None
            entries = self._log_entries_of(incident, service, team, responder, merged_into)
            self._entries_by_incident[incident.pagerduty_id] = entries
            self._incidents.append(self._incident_record(incident, service, team, responder, entries, merged_into))
            self._custom_fields[incident.pagerduty_id] = [self._impact_started(incident)]
        self._incidents_by_id = {r.body["id"]: r for r in self._incidents}
        self._reviews = {review.incident_id: self._incident_review(review, users) for review in org.incident_reviews
                         if review.created_at < self._as_of and review.incident_id in self._incidents_by_id}
        self._incident_times = [r.created_at for r in self._incidents]
        self._log_entries = sorted(
            (e for entries in self._entries_by_incident.values() for e in entries),
            key=lambda e: (e.created_at, e.id),
        )
        self._log_entry_times = [e.created_at for e in self._log_entries]
        self._log_entries_by_id = {e.id: e for e in self._log_entries}

    def _incident_reference(self, incident: Incident) -> dict:
        return self._reference(
            "incident", incident.pagerduty_id, f"[#{incident.number}] {incident.title}", "incidents", "incidents"
        )

    def _log_entries_of(
        self, incident: Incident, service: Service, team: Team, responder: User | None,
        merged_into: Incident | None,
    ) -> list[_LogEntryRecord]:
        """The incident's timeline up to the sandbox's "now": trigger (its channel carries the
        first alert's payload when an alert raised it), acknowledge, the "impact started"
        custom field being filled in, resolve; a reopen adds a resolve and a second trigger
        before the final resolve; a merge resolves the incident into another. The variations
        add a note after the last status change, and change the shapes of agents,
        references, timestamps and nullable fields."""
        common = {
            "service": self._embedded(self._service_reference(service)),
            "incident": self._embedded(self._incident_reference(incident)),
            "teams": [self._embedded(self._team_reference(team))],
        }
        service_agent = self._embedded(self._service_reference(service))
        monitoring_agent = (self._integration_agent(service) if "integration_agents" in self.variations
                            else service_agent)
        responder_agent = self._embedded(self._user_reference(responder)) if responder is not None else None
        if responder_agent is not None and "untyped_agents" in self.variations:
            responder_agent_of_ack = {key: value for key, value in self._user_reference(responder).items()
                                      if key != "type"}
        else:
            responder_agent_of_ack = responder_agent
        if incident.alert_timestamp is not None:
            trigger_channel = {
                "type": "api",
                "summary": incident.title,
                "cef_details": {
                    "creation_time": pd_time(incident.alert_timestamp),
                    "summary": incident.title,
                    "severity": "critical" if incident.urgency == "high" else "warning",
                    "source": service.name,
                },
            }
        else:
            trigger_channel = {"type": "auto"}
        trigger_extra = {"contexts": [], "event_details": {"description": incident.title}}
        trigger_agent = monitoring_agent if incident.alert_timestamp is not None else service_agent
        timeline = [
            ("trigger", incident.created_at, f"Triggered by {service.name}", trigger_agent, trigger_channel,
             trigger_extra),
        ]
        if incident.acknowledged_at is not None and responder is not None:
            timeout = None if "null_fields" in self.variations else ACKNOWLEDGEMENT_TIMEOUT_SECONDS
            timeline.append(
                ("acknowledge", incident.acknowledged_at, f"Acknowledged by {responder.name}",
                 responder_agent_of_ack, {"type": "website"}, {"acknowledgement_timeout": timeout}),
            )
        if incident.impact_recorded_at is not None:
            recorder = responder_agent if responder is not None else service_agent
            change = {"id": IMPACT_STARTED_FIELD_ID, "name": "impact_started", "namespace": "incidents",
                      "value": [pd_time(incident.impact_started_at)], "old_value": None}
            timeline.append(
                ("custom_field_value_change", incident.impact_recorded_at, "Custom field impact_started updated",
                 recorder, {"type": "website", "changeset": {"customer_fields": [change]}},
                 {"changeset": [f"Updated impact_started to {pd_time(incident.impact_started_at)}"]}),
            )
        if incident.resolved_at is not None:
            if merged_into is not None:
                agent = responder_agent if responder is not None else service_agent
                resolution = (f"Resolved by merging into #{merged_into.number}", agent, {"type": "website"})
            elif incident.auto_resolved:
                resolution = ("Resolved by timeout", service_agent, {"type": "timeout"})
            elif responder is not None:
                resolution = (f"Resolved by {responder.name}", responder_agent, {"type": "website"})
            else:  # never acknowledged: the monitoring integration resolved it
                resolution = (f"Resolved through the API by {service.name}", monitoring_agent, {"type": "api"})
            if incident.reopened_at is not None:
                timeline.append(("first_resolve", incident.first_resolved_at, *resolution, {}))
                timeline.append(("retrigger", incident.reopened_at, f"Triggered again by {service.name}",
                                 trigger_agent, trigger_channel, trigger_extra))
            timeline.append(("resolve", incident.resolved_at, *resolution, {}))
        if "notes" in self.variations and incident.number % NOTED_EVERY == 0:
            noted_at = max(step[1] for step in timeline) + NOTE_DELAY
            author = responder_agent or service_agent
            timeline.append(("annotate", noted_at, "Note added", author,
                             {"type": "note", "summary": f"Follow-up for #{incident.number} filed"}, {}))

        records = []
        for kind, at, summary, agent, channel, extra in sorted(timeline, key=lambda step: step[1]):
            if at >= self._as_of:
                continue
            entry_id = _log_entry_id(incident.pagerduty_id, kind)
            entry_type = {"first_resolve": "resolve", "retrigger": "trigger"}.get(kind, kind)
            body = {
                "id": entry_id,
                "type": f"{entry_type}_log_entry",
                "summary": summary,
                "self": f"{self._base_url}/log_entries/{entry_id}?incident_id={incident.pagerduty_id}",
                "html_url": (None if "null_fields" in self.variations
                             else f"{WEB_URL}/incidents/{incident.pagerduty_id}/log_entries/{entry_id}"),
                "created_at": self._time(at),
                "agent": agent,
                "channel": channel,
                **common,
                **extra,
            }
            records.append(_LogEntryRecord(at, entry_id, incident.pagerduty_id, team.pagerduty_id, body))
        return records

    def _incident_record(self, incident: Incident, service: Service, team: Team, responder: User | None,
                         entries: list[_LogEntryRecord], merged_into: Incident | None) -> _IncidentRecord:
        status, acknowledged_at, resolved_at = "triggered", None, None
        for entry in entries:
            kind = entry.body["type"]
            if kind == "trigger_log_entry":
                status, acknowledged_at = "triggered", None
            elif kind == "acknowledge_log_entry":
                status, acknowledged_at = "acknowledged", entry.created_at
            elif kind == "resolve_log_entry":
                status, resolved_at = "resolved", entry.created_at
        # A note is no status change: it moves neither updated_at nor last_status_change_at.
        last_change = [entry for entry in entries if entry.body["type"] != "annotate_log_entry"][-1]
        trigger = entries[0].body
        body = {
            **self._full(self._incident_reference(incident)),
            "incident_number": incident.number,
            "title": incident.title,
            "created_at": self._time(incident.created_at),
            "updated_at": self._time(last_change.created_at),
            "status": status,
            "incident_key": incident.dedup_key or hashlib.md5(incident.pagerduty_id.encode()).hexdigest(),
            "service": self._embedded(self._service_reference(service)),
            "assignments": [],
            "assigned_via": "escalation_policy",
            "last_status_change_at": self._time(last_change.created_at),
            "last_status_change_by": last_change.body["agent"],
            "first_trigger_log_entry": {
                "id": trigger["id"],
                "type": "trigger_log_entry_reference",
                "summary": trigger["summary"],
                "self": trigger["self"],
                "html_url": trigger["html_url"],
            },
            "alert_counts": {"all": 1, "triggered": int(status != "resolved"), "resolved": int(status == "resolved")},
            "is_mergeable": True,
            "incident_type": {"name": "incident_default"},
            "escalation_policy": self._embedded(self._escalation_policy_reference(service)),
            "teams": [self._embedded(self._team_reference(team))],
            "pending_actions": [],
            # As on the live API, acknowledgements and assignments empty once resolved.
            "acknowledgements": [],
            "urgency": incident.urgency,
        }
        if "null_fields" in self.variations:
            body["resolve_reason"] = None
        if status == "resolved":
            body["resolved_at"] = self._time(resolved_at)
            if merged_into is not None and resolved_at == incident.resolved_at:
                body["resolve_reason"] = {"type": "merge_resolve_reason",
                                          "incident": self._embedded(self._incident_reference(merged_into))}
        elif responder is not None:
            assigned_at = self._time(acknowledged_at or incident.created_at)
            body["assignments"] = [{"at": assigned_at, "assignee": self._user_reference(responder)}]
            if status == "acknowledged":
                body["acknowledgements"] = [{"at": assigned_at, "acknowledger": self._user_reference(responder)}]
        return _IncidentRecord(incident.created_at, status, incident.urgency, team.pagerduty_id,
                               service.pagerduty_id, body)

    def _incident_review(self, review: IncidentReview, users: dict[str, User]) -> dict:
        """A review and its action items as the Incident Reviews API renders them at the
        sandbox's "now" (tests/specs/pagerduty/22-Incident-Reviews-API.md): started, in review
        from half-way to its completion, completed; action items created so far."""
        now = self._as_of
        completed = review.completed_at is not None and review.completed_at < now
        in_review = review.completed_at is not None and review.created_at + (review.completed_at - review.created_at) / 2 < now
        items = [item for item in review.action_items if item.created_at < now]
        done = [item for item in items if item.completed_at is not None and item.completed_at < now]
        creator = next(iter(users), None)
        last = max([review.created_at, *(i.created_at for i in items), *(i.completed_at for i in done),
                    *([review.completed_at] if completed else [])])
        body = {
            "id": review.id,
            "incident_id": review.incident_id,
            "title": review.title,
            "status": "completed" if completed else "in_review" if in_review else "started",
            "sections": [{"title": "What happened", "priority": 1, "required": True,
                          "completed_at": pd_time(review.completed_at) if completed else None,
                          "content": {"type": "doc", "content": []} if completed else None}],
            "generation_status": "idle",
            "ai_generated": False,
            "template_id": None,
            "has_events": True,
            "action_item_count": len(items),
            "completed_action_item_count": len(done),
            "created_by": creator,
            "created_at": pd_time(review.created_at),
            "updated_at": pd_time(last),
            "completed_at": pd_time(review.completed_at) if completed else None,
        }
        action_items = [{
            "id": item.id,
            "incident_id": review.incident_id,
            "name": item.name,
            "description": "Agreed in the review",
            "status": "completed" if item in done else "incomplete",
            "priority": "high",
            "assignee": creator,
            "due_at": pd_time(item.created_at + ACTION_ITEM_DUE),
            "external_type": None,
            "external_url": None,
            "ai_generated": False,
            "created_by": creator,
            "created_at": pd_time(item.created_at),
            "updated_at": pd_time(item.completed_at if item in done else item.created_at),
            "completed_at": pd_time(item.completed_at) if item in done else None,
        } for item in items]
        return {"review": body, "action_items": action_items}

    def _impact_started(self, incident: Incident) -> dict:
        recorded = incident.impact_recorded_at is not None and incident.impact_recorded_at < self._as_of
        return {
            "id": IMPACT_STARTED_FIELD_ID,
            "type": "field_value",
            "name": "impact_started",
            "display_name": "Impact started",
            "description": "When customer impact began; it may precede the trigger",
            "data_type": "datetime",
            "field_type": "single_value",
            "value": pd_time(incident.impact_started_at) if recorded else None,
        }
