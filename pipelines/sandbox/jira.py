"""Jira Cloud REST API v3 (read-only) over a synthetic organisation.

Reproduces what an ingestion job meets on a Jira Cloud site: HTTP basic authentication
with an account email and API token, the enhanced search ``/rest/api/3/search/jql`` paged
by opaque ``nextPageToken`` (no ``total``; the old ``/rest/api/3/search`` answers 410
Gone), a JQL subset, the single embedded changelog page of ``expand=changelog`` (the 40
most recent histories, newest first, as Jira sends them) and the full changelog through
``/rest/api/3/issue/{key}/changelog`` (oldest first, pages of up to 100).

JQL understood (keywords and field names case-insensitive), clauses joined by AND:
``project = KEY``, ``project in (A, B)``, ``updated|created <op> <value>`` with ``<op>``
one of >=, >, <=, < and ``<value>`` epoch milliseconds or a quoted "yyyy-MM-dd HH:mm" /
"yyyy-MM-dd" in UTC (the sandbox user's time zone); then ``ORDER BY`` any of key,
created, updated with ASC (default) or DESC. Without ORDER BY issues come in key order.
Anything else is a 400 with Jira's error body, as is a query without any restriction.

Like the PagerDuty sandbox, it serves the organisation as of a moment ``set_as_of`` can move:
tickets created later are hidden, and each ticket's status, ``updated`` and changelog stop at
that moment. Tickets filed in the shared operations project carry a component per team.
``GET /rest/api/3/issue/{issueIdOrKey}`` serves one issue (``fields``, ``expand=changelog``).
``JiraApi.VARIATIONS`` lists the paging and payload shapes the API documents beyond the ones
served by default.

Issues carry what post-incident reviews and speaking up need, in Jira Cloud's shapes: the
reporter and creator (UserDetails; the email address only for people whose privacy settings
show it), issue links on both of their issues (``outwardIssue`` on the issue the link goes
from, ``inwardIssue`` on the other, each a LinkedIssue with key fields), sub-tasks on their
parent (``subtasks``) and the parent on the sub-task (``parent``), review issue types, the
"PagerDuty incident" custom field and the description in the Atlassian Document Format.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from operator import attrgetter

from werkzeug.wrappers import Request, Response

from pipelines.sandbox import Handler, JsonApi, RequestCounter, json_response
from pipelines.synthetic.learning import ACTION_ITEM, INCIDENT_FIELD, RELATES, SUBTASK_TYPE
from pipelines.synthetic.model import AUTOMATION_ACCOUNT, ChangelogEntry, Organisation, Ticket
from pipelines.synthetic.tickets import (
    PROACTIVE_TYPES,
    REACTIVE_TYPES,
    SHARED_PROJECT,
    UNCLASSIFIED_TYPES,
)

API = "/rest/api/3"
SEARCH_DEFAULT_MAX_RESULTS = 50
SEARCH_MAX_RESULTS_WITH_FIELDS = 100
SEARCH_MAX_RESULTS_IDS_ONLY = 5000
EMBEDDED_CHANGELOG_MAX = 40
CHANGELOG_PAGE_MAX = 100
AVATAR_URL = "https://avatar-management.sandbox.atlassian.invalid/default.png"
# Status id, category id, category key, category name, category colour.
STATUSES = {
    "To Do": ("10000", 2, "new", "To Do", "blue-gray"),
    "In Progress": ("3", 4, "indeterminate", "In Progress", "yellow"),
    "In Review": ("10001", 4, "indeterminate", "In Progress", "yellow"),
    "Done": ("10002", 3, "done", "Done", "green"),
}
# (id, name, clause names, schema) of the system fields the sandbox serves.
FIELDS = (
    ("summary", "Summary", ["summary"], {"type": "string", "system": "summary"}),
    ("issuetype", "Issue Type", ["issuetype", "type"], {"type": "issuetype", "system": "issuetype"}),
    ("project", "Project", ["project"], {"type": "project", "system": "project"}),
    ("labels", "Labels", ["labels"], {"type": "array", "items": "string", "system": "labels"}),
    ("created", "Created", ["created", "createdDate"], {"type": "datetime", "system": "created"}),
    ("updated", "Updated", ["updated", "updatedDate"], {"type": "datetime", "system": "updated"}),
    ("resolutiondate", "Resolved", ["resolutiondate", "resolved"], {"type": "datetime", "system": "resolutiondate"}),
    ("status", "Status", ["status"], {"type": "status", "system": "status"}),
    ("components", "Components", ["component"], {"type": "array", "items": "component", "system": "components"}),
    ("issuelinks", "Linked Issues", ["issueLink"], {"type": "array", "items": "issuelinks", "system": "issuelinks"}),
    ("subtasks", "Sub-tasks", ["subtasks"], {"type": "array", "items": "issuelinks", "system": "subtasks"}),
    ("parent", "Parent", ["parent"], {"type": "issuelink", "system": "parent"}),
    ("reporter", "Reporter", ["reporter"], {"type": "user", "system": "reporter"}),
    ("creator", "Creator", ["creator"], {"type": "user", "system": "creator"}),
    ("description", "Description", ["description"], {"type": "string", "system": "description"}),
    (INCIDENT_FIELD, "PagerDuty incident", [f"cf[{INCIDENT_FIELD.split('_')[1]}]", "PagerDuty incident"],
     {"type": "string", "custom": "com.atlassian.jira.plugin.system.customfieldtypes:url",
      "customId": int(INCIDENT_FIELD.split("_")[1])}),
)
FIELD_IDS = tuple(f[0] for f in FIELDS)
ACCOUNT_DISPLAY_NAMES = {AUTOMATION_ACCOUNT: "Automation for Jira"}
# Issue link types: name -> (inward, outward) wording, as GET /rest/api/3/issueLinkType lists them.
LINK_TYPES = {RELATES: ("10003", "relates to", "relates to"), ACTION_ITEM: ("10100", "is action item of", "has action item")}
SANDBOX_ACCOUNT_ID = "712020:psafe-sandbox-reader"
# Jira's own issue types as an account whose language is German reads them (variation
# translated_issue_type_names): Jira translates their names into the reading account's language
# and keeps their ids; a site's own types (Risk, Incident) keep the name they were given.
GERMAN_ISSUE_TYPE_NAMES = {"Bug": "Fehler", "Task": "Aufgabe", "Sub-task": "Unteraufgabe", "Story": "Story",
                           "Epic": "Epic"}
UNBOUNDED_QUERY = "Unbounded JQL queries are not allowed here. Please add a search restriction to your query."


class JiraError(Exception):
    """An error response in Jira's shape: ``{"errorMessages": [...], "errors": {}}``."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status

    def response(self) -> Response:
        return json_response({"errorMessages": [str(self)], "errors": {}}, self.status)


def jira_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


# -- JQL -------------------------------------------------------------------------------

_JQL_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<operator>>=|<=|!=|=|>|<)"""
    r"""|(?P<punctuation>[(),])|(?P<word>[^\s(),=<>!"']+))"""
)
_DATE_FIELDS = {"created": "created", "createddate": "created", "updated": "updated", "updateddate": "updated"}
_SORT_FIELDS = {"key": "key", "issuekey": "key", **_DATE_FIELDS}
_COMPARISONS = {
    ">=": lambda a, b: a >= b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
}


@dataclass(frozen=True)
class JqlQuery:
    projects: frozenset[str] | None  # None: any project
    date_bounds: tuple[tuple[str, str, datetime], ...]  # (field, operator, moment)
    order: tuple[tuple[str, bool], ...]  # (field, descending)

    def matches(self, ticket: Ticket) -> bool:
        if self.projects is not None and ticket.project_key not in self.projects:
            return False
        return all(_COMPARISONS[op](getattr(ticket, field), moment) for field, op, moment in self.date_bounds)


def _jql_error(message: str) -> JiraError:
    return JiraError(400, f"Error in the JQL Query: {message}")


def parse_jql(jql: str, known_projects: set[str]) -> JqlQuery:
    return _JqlParser(jql, known_projects).query()


class _JqlParser:
    """Recursive descent over the tokens of the supported JQL subset (see the module doc)."""

    def __init__(self, jql: str, known_projects: set[str]):
        self.known_projects = known_projects
        self.tokens: list[tuple[str, str, int]] = []  # (kind, text, position)
        self.index = 0
        position, end = 0, len(jql.rstrip())
        while position < end:
            match = _JQL_TOKEN.match(jql, position)
            if match is None or match.lastgroup is None:
                raise _jql_error(f"cannot read the query at character {position + 1}.")
            self.tokens.append((match.lastgroup, match.group(match.lastgroup), match.start(match.lastgroup)))
            position = match.end()

    def query(self) -> JqlQuery:
        projects: frozenset[str] | None = None
        date_bounds: list[tuple[str, str, datetime]] = []
        while not self.at_end() and self.word() != "order":
            if projects is not None or date_bounds:
                self.expect("and")
            if self.word() == "project":
                keys = self.project_keys()
                projects = keys if projects is None else projects & keys
            elif self.word() in _DATE_FIELDS:
                date_bounds.append(self.date_bound())
            else:
                raise _jql_error(f"expecting a project, created or updated clause but got {self.describe()}.")
        order = self.order_by() if not self.at_end() else ()
        if projects is None and not date_bounds:
            raise JiraError(400, UNBOUNDED_QUERY)
        return JqlQuery(projects, tuple(date_bounds), order)

    def project_keys(self) -> frozenset[str]:
        self.index += 1
        if self.text() == "=":
            self.index += 1
            keys = {self.value()}
        else:
            self.expect("in")
            self.expect("(")
            keys = {self.value()}
            while self.text() == ",":
                self.index += 1
                keys.add(self.value())
            self.expect(")")
        keys = {key.upper() for key in keys}
        unknown = sorted(keys - self.known_projects)
        if unknown:
            raise JiraError(400, f"The value '{unknown[0]}' does not exist for the field 'project'.")
        return frozenset(keys)

    def date_bound(self) -> tuple[str, str, datetime]:
        field = _DATE_FIELDS[self.word()]
        self.index += 1
        operator = self.text()
        if operator not in _COMPARISONS:
            raise _jql_error(f"the sandbox supports only >=, >, <= and < on '{field}', not {self.describe()}.")
        self.index += 1
        return field, operator, _jql_moment(self.value())

    def order_by(self) -> tuple[tuple[str, bool], ...]:
        self.expect("order")
        self.expect("by")
        order = []
        while True:
            if self.word() not in _SORT_FIELDS:
                raise _jql_error(f"the sandbox orders by key, created or updated only, not {self.describe()}.")
            field = _SORT_FIELDS[self.word()]
            self.index += 1
            descending = self.word() == "desc"
            if self.word() in ("asc", "desc"):
                self.index += 1
            order.append((field, descending))
            if self.text() != ",":
                break
            self.index += 1
        if not self.at_end():
            raise _jql_error(f"unexpected {self.describe()}.")
        return tuple(order)

    def at_end(self) -> bool:
        return self.index >= len(self.tokens)

    def text(self) -> str:
        return "" if self.at_end() else self.tokens[self.index][1]

    def word(self) -> str:
        """The current token in lower case if it is a bare word (keywords, field names)."""
        return self.text().lower() if not self.at_end() and self.tokens[self.index][0] == "word" else ""

    def describe(self) -> str:
        if self.at_end():
            return "the end of the query"
        _, text, position = self.tokens[self.index]
        return f"'{text}' at character {position + 1}"

    def expect(self, text: str) -> None:
        if self.text().lower() != text:
            raise _jql_error(f"expecting '{text}' but got {self.describe()}.")
        self.index += 1

    def value(self) -> str:
        if self.at_end() or self.tokens[self.index][0] not in ("word", "string"):
            raise _jql_error(f"expecting a value but got {self.describe()}.")
        kind, text, _ = self.tokens[self.index]
        self.index += 1
        return text[1:-1] if kind == "string" else text


def _jql_moment(text: str) -> datetime:
    if text.isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    for layout in ("%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M", "%Y-%m-%d", "%Y/%m/%d"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise _jql_error(
        f"Date value '{text}' is invalid. Valid formats include: 'yyyy/MM/dd HH:mm', "
        "'yyyy-MM-dd HH:mm', 'yyyy/MM/dd', 'yyyy-MM-dd', or epoch milliseconds."
    )


def _key_order(ticket: Ticket) -> tuple[str, int]:
    project, _, number = ticket.key.rpartition("-")
    return project, int(number)


# -- the API ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _SearchRequest:
    jql: str
    next_page_token: str | None
    max_results: int | None
    fields: list[str]
    expand: list[str]


class JiraApi(JsonApi):
    VARIATIONS = {
        "search_paging_variants": "search pages carry no isLast (it is optional); the last page sends "
                                  "nextPageToken null (\"this token will be null\")",
        "short_search_pages": "search pages hold fewer issues than maxResults while more follow (\"API may return "
                              "fewer items per page where a large number of fields ... are requested\")",
        "changelog_pages_without_is_last": "/issue/{key}/changelog pages carry neither isLast nor nextPage "
                                           "(both optional): the total tells where the changelog ends",
        "changelog_not_embedded": "expand=changelog embeds the changelog's total but no histories, as a real "
                                  "site answered for an issue with two",
        "translated_issue_type_names": "the reading account's language is German: Jira's own issue types carry "
                                       "their German names (Task is Aufgabe, Sub-task Unteraufgabe), same ids",
    }

    def __init__(self, org: Organisation, *, email: str, token: str, base_url: str, count_request: RequestCounter,
                 as_of: datetime | None = None, variations: Iterable[str] = ()):
        super().__init__(
            [
                ("GET", f"{API}/serverInfo", self._server_info),
                ("GET", f"{API}/myself", self._myself),
                ("GET", f"{API}/field", self._fields),
                ("GET", f"{API}/search/jql", self._search),
                ("POST", f"{API}/search/jql", self._search),
                ("GET", f"{API}/search", self._removed_search),
                ("POST", f"{API}/search", self._removed_search),
                ("GET", f"{API}/issue/{{issueIdOrKey}}", self._get_issue),
                ("GET", f"{API}/issue/{{issueIdOrKey}}/changelog", self._changelog_page),
            ],
            count_request,
            org,
            as_of,
            variations,
        )
        self._credentials = (email, token)
        self._email = email
        self._base_url = base_url
        self._render(org)

    def unauthorized(self) -> Response:
        return JiraError(401, "Client must be authenticated to access this resource.").response()

    def error(self, status: int, message: str) -> Response:
        return JiraError(status, message).response()

    def rate_limited(self, wait_seconds: int, with_headers: bool) -> Response:
        headers = {"Retry-After": str(wait_seconds), "X-RateLimit-Limit": "100",
                   "X-RateLimit-Remaining": "0"} if with_headers else None
        return json_response({"errorMessages": ["Rate limit exceeded."], "errors": {}}, 429, headers)

    def handle(self, request: Request, handler: Handler | None, args: dict[str, str]) -> Response:
        auth = request.authorization
        if auth is None or auth.type != "basic" or (auth.username, auth.password) != self._credentials:
            return self.unauthorized()
        if handler is None:
            return JiraError(404, "Not Found").response()
        try:
            return handler(request, args)
        except JiraError as error:
            return error.response()

    def _server_info(self, request: Request, args) -> Response:
        return json_response({
            "baseUrl": self._base_url,
            "displayUrl": self._base_url,
            "version": "1001.0.0-SNAPSHOT",
            "versionNumbers": [1001, 0, 0],
            "deploymentType": "Cloud",
            "buildNumber": 100280,
            "buildDate": "2025-01-06T00:00:00.000+0000",
            "serverTime": jira_time(self._as_of),
            "scmInfo": "0" * 40,
            "serverTitle": "psafe sandbox",
            "serverTimeZone": "Etc/UTC",
        })

    def _myself(self, request: Request, args) -> Response:
        return json_response({
            "self": f"{self._base_url}{API}/user?accountId={SANDBOX_ACCOUNT_ID}",
            "accountId": SANDBOX_ACCOUNT_ID,
            "accountType": "atlassian",
            "emailAddress": self._email,
            "displayName": "Sandbox reader",
            "active": True,
            "timeZone": "Etc/UTC",
            "locale": "de_DE" if "translated_issue_type_names" in self.variations else "en_US",
            "avatarUrls": {size: AVATAR_URL for size in ("16x16", "24x24", "32x32", "48x48")},
            "groups": {"size": 0, "items": []},
            "applicationRoles": {"size": 1, "items": []},
        })

    def _fields(self, request: Request, args) -> Response:
        fields = [
            {"id": "issuekey", "key": "issuekey", "name": "Key", "custom": False, "orderable": False,
             "navigable": True, "searchable": False, "clauseNames": ["id", "issue", "issuekey", "key"]},
        ]
        for field_id, name, clause_names, schema in FIELDS:
            fields.append({
                "id": field_id, "key": field_id, "name": name, "custom": "custom" in schema, "orderable": True,
                "navigable": True, "searchable": True, "clauseNames": clause_names, "schema": schema,
            })
        return json_response(fields)

    def _removed_search(self, request: Request, args) -> Response:
        raise JiraError(
            410,
            "The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. "
            "A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046",
        )

    def _search(self, request: Request, args) -> Response:
        search = self._search_request(request)
        query = parse_jql(search.jql, self._project_keys)
        query_hash = hashlib.sha256(search.jql.strip().encode()).hexdigest()[:16]
        offset = self._decode_token(search.next_page_token, query_hash) if search.next_page_token else 0

        fields = self._selected_fields(search.fields)
        cap = SEARCH_MAX_RESULTS_WITH_FIELDS if fields or search.expand else SEARCH_MAX_RESULTS_IDS_ONLY
        max_results = min(max(search.max_results or SEARCH_DEFAULT_MAX_RESULTS, 1), cap)
        keys = self._matching_keys(query)
        if "short_search_pages" in self.variations:
            max_results = max(1, max_results * 3 // 8)
        page = [self._issue(key, fields, "changelog" in search.expand) for key in keys[offset : offset + max_results]]
        body: dict = {"issues": page}
        if offset + max_results < len(keys):
            body["nextPageToken"] = self._encode_token(offset + max_results, query_hash)
        if "search_paging_variants" not in self.variations:
            body["isLast"] = "nextPageToken" not in body
        elif "nextPageToken" not in body:
            body["nextPageToken"] = None
        return json_response(body)

    def _get_issue(self, request: Request, args) -> Response:
        ticket = self._ticket(args["issueIdOrKey"])
        fields = self._selected_fields([name.strip() for item in request.args.getlist("fields")
                                        for name in item.split(",") if name.strip()] or ["*navigable"])
        expand = {name.strip() for item in request.args.getlist("expand") for name in item.split(",")}
        return json_response(self._issue(ticket.key, fields, "changelog" in expand))

    def _ticket(self, key_or_id: str) -> Ticket:
        ticket = self._tickets_by_key.get(key_or_id) or self._tickets_by_id.get(key_or_id)
        if ticket is None:
            raise JiraError(404, "Issue does not exist or you do not have permission to see it.")
        return ticket

    def _changelog_page(self, request: Request, args) -> Response:
        ticket = self._ticket(args["issueIdOrKey"])
        start_at = _non_negative_int(request.args.get("startAt", "0"), "startAt")
        max_results = min(_non_negative_int(request.args.get("maxResults", str(CHANGELOG_PAGE_MAX)), "maxResults"),
                          CHANGELOG_PAGE_MAX) or CHANGELOG_PAGE_MAX
        histories = self._histories[ticket.key]
        url = f"{self._base_url}{API}/issue/{ticket.key}/changelog"
        body = {
            "self": f"{url}?startAt={start_at}&maxResults={max_results}",
            "maxResults": max_results,
            "startAt": start_at,
            "total": len(histories),
            "isLast": start_at + max_results >= len(histories),
            "values": histories[start_at : start_at + max_results],
        }
        if not body["isLast"]:
            body["nextPage"] = f"{url}?startAt={start_at + max_results}&maxResults={max_results}"
        if "changelog_pages_without_is_last" in self.variations:
            body.pop("isLast")
            body.pop("nextPage", None)
        return json_response(body)

    # -- search parameters ------------------------------------------------------------

    @staticmethod
    def _search_request(request: Request) -> _SearchRequest:
        if request.method == "POST":
            body = request.get_json(silent=True)
            if not isinstance(body, dict):
                raise JiraError(400, "The request body must be a JSON object.")
            fields = body.get("fields") or []
            if not isinstance(fields, list):
                raise JiraError(400, "fields must be a list of field names.")
            expand = body.get("expand") or ""
            max_results = body.get("maxResults")
            if max_results is not None and not isinstance(max_results, int):
                raise JiraError(400, "maxResults must be an integer.")
            jql, token = body.get("jql"), body.get("nextPageToken")
        else:
            fields = request.args.getlist("fields")
            expand = ",".join(request.args.getlist("expand"))
            raw_max = request.args.get("maxResults")
            max_results = None if raw_max is None else _non_negative_int(raw_max, "maxResults")
            jql, token = request.args.get("jql"), request.args.get("nextPageToken")
        if not jql or not isinstance(jql, str):
            raise JiraError(400, UNBOUNDED_QUERY)
        return _SearchRequest(
            jql=jql,
            next_page_token=token or None,
            max_results=max_results,
            fields=[name.strip() for item in fields for name in str(item).split(",") if name.strip()],
            expand=[name.strip() for name in expand.split(",") if name.strip()],
        )

    @staticmethod
    def _selected_fields(requested: list[str]) -> list[str]:
        """Field ids to return: ``*all``/``*navigable`` select every field, ``-name``
        removes one, unknown names are ignored (as Jira does), ``id``/``key`` add none.
        The default, as on /search/jql, is ``id`` only."""
        selected: set[str] = set()
        excluded = {name[1:] for name in requested if name.startswith("-")}
        for name in requested:
            if name in ("*all", "*navigable"):
                selected.update(FIELD_IDS)
            elif name in FIELD_IDS:
                selected.add(name)
        return [f for f in FIELD_IDS if f in selected and f not in excluded]

    @staticmethod
    def _encode_token(offset: int, query_hash: str) -> str:
        return base64.urlsafe_b64encode(json.dumps({"offset": offset, "query": query_hash}).encode()).decode()

    @staticmethod
    def _decode_token(token: str, query_hash: str) -> int:
        try:
            payload = json.loads(base64.urlsafe_b64decode(token.encode()))
            offset, token_query = int(payload["offset"]), payload["query"]
        except (binascii.Error, ValueError, TypeError, KeyError):
            raise JiraError(400, "The provided next page token is invalid.") from None
        if token_query != query_hash or offset < 0:
            raise JiraError(400, "The provided next page token does not belong to this query.")
        return offset

    def _match(self, query: JqlQuery) -> tuple[str, ...]:
        tickets = sorted((t for t in self._tickets if query.matches(t)), key=_key_order)
        for field, descending in reversed(query.order):
            tickets.sort(key=_key_order if field == "key" else attrgetter(field), reverse=descending)
        return tuple(t.key for t in tickets)

    # -- rendering --------------------------------------------------------------------

    def _issue(self, key: str, fields: list[str], with_changelog: bool) -> dict:
        ticket = self._tickets_by_key[key]
        issue = {
            "expand": "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations",
            "id": ticket.id,
            "self": f"{self._base_url}{API}/issue/{ticket.id}",
            "key": ticket.key,
        }
        if fields:
            all_fields = self._all_fields[key]
            # Jira leaves out a parent the issue does not have.
            issue["fields"] = {f: all_fields[f] for f in fields if f in all_fields}
        if with_changelog:
            histories = self._histories[key]
            newest_first = [] if "changelog_not_embedded" in self.variations else histories[::-1][:EMBEDDED_CHANGELOG_MAX]
            issue["changelog"] = {
                "startAt": 0,
                "maxResults": len(newest_first),
                "total": len(histories),
                "histories": newest_first,
            }
        return issue

    def _render(self, org: Organisation) -> None:
        self._tickets = [_as_of(t, self._as_of) for t in org.tickets if t.created < self._as_of]
        self._tickets_by_key = {t.key: t for t in self._tickets}
        self._tickets_by_id = {t.id: t for t in self._tickets}
        projects = {t.jira_project: self._project(t.jira_project, t.name, 10000 + i) for i, t in enumerate(org.teams)}
        projects[SHARED_PROJECT] = self._project(SHARED_PROJECT, "Operations", 10000 + len(org.teams))
        self._project_keys = set(projects)
        component_names = sorted({c for t in org.tickets for c in t.components})
        components = {name: self._component(name, str(10000 + i)) for i, name in enumerate(component_names)}
        type_names = dict.fromkeys(
            (*UNCLASSIFIED_TYPES, *PROACTIVE_TYPES, *REACTIVE_TYPES, *sorted({t.issue_type for t in self._tickets}))
        )
        issue_types = {name: self._issue_type(name, str(10001 + i)) for i, name in enumerate(type_names)}
        statuses = {name: self._status(name) for name in STATUSES}
        users = self._users(org)
        linked = {t.key: self._linked_issue(t, issue_types, statuses) for t in self._tickets}
        self._all_fields = {
            t.key: {
                "summary": t.summary,
                "issuetype": issue_types[t.issue_type],
                "project": projects[t.project_key],
                "labels": list(t.labels),
                "created": jira_time(t.created),
                "updated": jira_time(t.updated),
                "resolutiondate": jira_time(t.resolved) if t.resolved else None,
                "status": statuses[t.status],
                "components": [components[c] for c in t.components],
                "issuelinks": [],
                "subtasks": [],
                "reporter": users.get(t.reporter_account_id),
                "creator": users.get(t.creator_account_id),
                "description": _document(t.description) if t.description else None,
                INCIDENT_FIELD: t.custom_fields.get(INCIDENT_FIELD),
                **({"parent": linked[t.parent_key]} if t.parent_key in linked else {}),
            }
            for t in self._tickets
        }
        for t in self._tickets:
            if t.parent_key in linked:
                self._all_fields[t.parent_key]["subtasks"].append(linked[t.key])
            for number, (link_type, other) in enumerate(t.links):
                if other not in linked:
                    continue  # created after the sandbox's "now"
                type_id, inward, outward = LINK_TYPES[link_type]
                link_id = str(20000 + int(t.id) * 10 + number)
                kind = {"id": type_id, "name": link_type, "inward": inward, "outward": outward,
                        "self": f"{self._base_url}{API}/issueLinkType/{type_id}"}
                self_url = f"{self._base_url}{API}/issueLink/{link_id}"
                self._all_fields[t.key]["issuelinks"].append(
                    {"id": link_id, "self": self_url, "type": kind, "outwardIssue": linked[other]})
                self._all_fields[other]["issuelinks"].append(
                    {"id": link_id, "self": self_url, "type": kind, "inwardIssue": linked[t.key]})
        self._histories = {t.key: [self._history(entry) for entry in t.changelog] for t in self._tickets}
        # Matching and sorting is the slow part of a search; pages of one query reuse it.
        self._matching_keys = lru_cache(maxsize=64)(self._match)

    def _users(self, org: Organisation) -> dict[str, dict]:
        """UserDetails of every account, as issues embed them (the email address only where the
        person's privacy settings show it)."""
        users = {AUTOMATION_ACCOUNT: self._user(AUTOMATION_ACCOUNT, ACCOUNT_DISPLAY_NAMES[AUTOMATION_ACCOUNT], None,
                                                 "app")}
        for person in org.people:
            users[person.account_id] = self._user(person.account_id, f"Employee {person.employee_id}",
                                                  person.email if person.email_visible else None, "atlassian")
        return users

    def _user(self, account_id: str, name: str, email: str | None, account_type: str) -> dict:
        user = {
            "self": f"{self._base_url}{API}/user?accountId={account_id}",
            "accountId": account_id,
            "avatarUrls": {size: AVATAR_URL for size in ("16x16", "24x24", "32x32", "48x48")},
            "displayName": name,
            "active": True,
            "timeZone": "Etc/UTC",
            "accountType": account_type,
        }
        if email is not None:
            user["emailAddress"] = email
        return user

    def _linked_issue(self, ticket: Ticket, issue_types: dict, statuses: dict) -> dict:
        """The issue as a link, a parent or a sub-task shows it (LinkedIssue: key fields only)."""
        return {
            "id": ticket.id,
            "key": ticket.key,
            "self": f"{self._base_url}{API}/issue/{ticket.id}",
            "fields": {"summary": ticket.summary, "status": statuses[ticket.status],
                       "issuetype": issue_types[ticket.issue_type]},
        }

    def _component(self, name: str, component_id: str) -> dict:
        return {"self": f"{self._base_url}{API}/component/{component_id}", "id": component_id, "name": name}

    def _project(self, key: str, name: str, project_id: int) -> dict:
        return {
            "self": f"{self._base_url}{API}/project/{project_id}",
            "id": str(project_id),
            "key": key,
            "name": name,
            "projectTypeKey": "software",
            "simplified": False,
        }

    def _issue_type(self, name: str, type_id: str) -> dict:
        shown = GERMAN_ISSUE_TYPE_NAMES.get(name, name) if "translated_issue_type_names" in self.variations else name
        return {
            "self": f"{self._base_url}{API}/issuetype/{type_id}",
            "id": type_id,
            "description": f"{shown} issue type",
            "name": shown,
            "subtask": name == SUBTASK_TYPE,
            "hierarchyLevel": -1 if name == SUBTASK_TYPE else 0,
        }

    def _status(self, name: str) -> dict:
        status_id, category_id, category_key, category_name, colour = STATUSES[name]
        return {
            "self": f"{self._base_url}{API}/status/{status_id}",
            "description": "",
            "name": name,
            "id": status_id,
            "statusCategory": {
                "self": f"{self._base_url}{API}/statuscategory/{category_id}",
                "id": category_id,
                "key": category_key,
                "colorName": colour,
                "name": category_name,
            },
        }

    def _history(self, entry: ChangelogEntry) -> dict:
        account_id = entry.author_account_id
        return {
            "id": entry.id,
            "author": {
                "self": f"{self._base_url}{API}/user?accountId={account_id}",
                "accountId": account_id,
                "displayName": ACCOUNT_DISPLAY_NAMES.get(account_id, account_id),
                "active": True,
                "accountType": "atlassian",
                "timeZone": "Etc/UTC",
            },
            "created": jira_time(entry.created),
            "items": [self._change_item(entry)],
        }

    @staticmethod
    def _change_item(entry: ChangelogEntry) -> dict:
        item = {"field": entry.field, "fieldtype": "jira", "fieldId": entry.field,
                "fromString": entry.from_string, "toString": entry.to_string}
        if entry.field == "status":  # status changes also carry the status ids
            item["from"], item["to"] = STATUSES[entry.from_string][0], STATUSES[entry.to_string][0]
        return item


def _document(text: str) -> dict:
    """Text as a one-paragraph Atlassian Document Format document."""
    return {"type": "doc", "version": 1,
            "content": [{"type": "paragraph", "content": [{"type": "text", "text": text}]}]}


def _as_of(ticket: Ticket, moment: datetime) -> Ticket:
    """The ticket as it stood at ``moment``: its changelog, status and updated time so far."""
    changelog = [entry for entry in ticket.changelog if entry.created < moment]
    if len(changelog) == len(ticket.changelog):
        return ticket
    status = changelog[-1].to_string if changelog else "To Do"
    return replace(ticket, changelog=changelog, status=status,
                   updated=changelog[-1].created if changelog else ticket.created,
                   resolved=changelog[-1].created if status == "Done" else None)


def _non_negative_int(text: str, name: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise JiraError(400, f"{name} must be an integer, not {text!r}.") from None
    if number < 0:
        raise JiraError(400, f"{name} must not be negative.")
    return number
