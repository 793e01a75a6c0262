"""Jira Cloud REST API v3 through the ``jira`` (pycontribs) client's authenticated session."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import requests
from jira import JIRA, JIRAError
from pydantic import Field

from assets.api_quarantine import DEFAULT_MAX_QUARANTINED_SHARE, ApiRequest, PoisonRecord, Quarantined, record_id
from assets.api_retry import (
    ApiError,
    Backoff,
    Transient,
    call_with_retries,
    checked_url,
    clean_setting,
    redact,
    refused_by_client,
    wait_hint,
)
from assets.identity import checked_salt, pseudonymise_people
from assets.jira.classification import ClassificationRulesError
from assets.kpi_rules import DEFAULT_KPI_RULES, KpiRulesError, read_kpi_rules

API = "/rest/api/3"
SEARCH_PAGE_SIZE = 100
# /search/jql's page when only ids are asked for ("returns max 5000 issues").
ID_SEARCH_PAGE_SIZE = 5000
CHANGELOG_PAGE_SIZE = 100
# The fields every sync asks for; the KPI rules may add custom fields and the description
# (JiraResource.issue_fields). Links, sub-tasks and parent tie reviews to their incidents and
# action items; reporter and creator say who raised an issue (pseudonymised on receipt).
ISSUE_FIELDS = [
    "summary",
    "issuetype",
    "project",
    "labels",
    "created",
    "updated",
    "resolutiondate",
    "status",
    "components",
    "issuelinks",
    "subtasks",
    "parent",
    "reporter",
    "creator",
]
DEFAULT_CLASSIFICATION_RULES = Path(__file__).resolve().parents[2] / "config" / "ticket_classification.yml"
# The variables that name the rules files when the resource does not (see JiraResource).
CLASSIFICATION_RULES_VARIABLE = "PSAFE_TICKET_CLASSIFICATION_RULES"
KPI_RULES_VARIABLE = "PSAFE_KPI_RULES"
# Jira's date-time, "2024-01-05T10:00:00.000+0000" (staging reads exactly this layout).
JIRA_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d{4}")
_CHANGELOG_PATH = re.compile(r"/issue/([^/]+)/changelog/?$")
# Statuses with which Jira refuses one issue's request for good (no access to it, gone):
# that issue is quarantined; any other failure stops the sync.
RECORD_REFUSALS = (400, 403, 404, 410)

# A check that an answer is the one asked for: None, or what is wrong with it.
Expectation = Callable[[dict], str | None]


class IssueNotServed(PoisonRecord):
    """Jira refuses ``/issue/{id}`` itself (RECORD_REFUSALS: deleted, or out of the token's sight),
    as opposed to an issue it serves that cannot be loaded."""


def parse_jira_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


@dataclass
class IssuePage:
    """A page of the search: the issues that load (each with its complete changelog), the
    others as quarantine records, and whether it is the last page."""

    issues: list[dict]
    request: ApiRequest
    poison: list[Quarantined] = field(default_factory=list)
    last: bool = False

    @property
    def received(self) -> int:
        return len(self.issues) + len(self.poison)


class JiraResource(dg.ConfigurableResource):
    """A Jira Cloud site (or the local sandbox) reached with an account email and API token.

    ``ca_bundle_path`` trusts an extra certificate authority (the sandbox makes its own; behind a
    proxy that inspects TLS, REQUESTS_CA_BUNDLE names its CA). A request no retry can change (a URL
    or header the client cannot build: ``assets.api_retry.refused_by_client``) fails at once, naming
    the setting to fix; a refused server certificate is retried, then fails naming what to fix
    (the CA, the certificate's dates, JIRA_URL's host), not retried by the step. Transient failures (429, 5xx, timeouts, broken
    pages, and answers to another request: a repeated search page, another issue's changelog, a
    page at another position) are retried at most ``max_attempts`` times per request, waiting
    what ``Retry-After`` asks or backing off exponentially; error text never includes the
    request's headers (the client's own would) nor the credentials. A sync fails when more than ``max_quarantined_share`` of the
    issues it receives cannot be loaded (see assets/api_quarantine.py).
    ``server_url`` (JIRA_URL) must be an https:// URL with no path: anything else fails the step
    at once, as does a URL, ``email`` or ``api_token`` with whitespace or quotes inside or around
    it (``assets.api_retry.clean_setting``: whitespace around it is ignored).
    ``classification_rules_path`` is the proactive/reactive rules file; ``kpi_rules_path`` the
    rules of the learning and speaking-up KPIs, whose fields the sync also asks for. Left unset
    here (a scheduled run passes no run config), they come from PSAFE_TICKET_CLASSIFICATION_RULES
    and PSAFE_KPI_RULES when a run reads them, else the shipped defaults
    config/ticket_classification.yml and config/kpi_rules.yml.
    ``identity_salt`` (PSAFE_HR_ID_SALT, the HR salt) keys the pseudonyms that replace every
    person in an issue as soon as it is received (assets/identity.py); without it people are
    dropped from the issues, and the speaking-up KPIs cannot be computed.
    """

    server_url: str
    email: str
    api_token: str = Field(description="Atlassian API token (secret: pass it as dg.EnvVar)")
    ca_bundle_path: str | None = None
    timeout_seconds: float = 60.0
    max_attempts: int = 6
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 120.0
    max_quarantined_share: float = DEFAULT_MAX_QUARANTINED_SHARE
    classification_rules_path: str | None = None
    kpi_rules_path: str | None = None
    identity_salt: str | None = Field(default=None, description="The HR salt (secret: pass it as dg.EnvVar)")

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        checked_salt(self.identity_salt, context.log.warning)

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.max_attempts, self.base_delay_seconds, self.max_delay_seconds)

    def redact(self, text: str) -> str:
        token, email = self.api_token.strip(), self.email.strip()  # as sent (clean_setting)
        return redact(text, [token, f"{email}:{token}"] + [self.identity_salt or ""])

    def received(self, issue: object) -> object:
        """An issue as the sync may keep it: its people pseudonymised."""
        return pseudonymise_people(issue, self.identity_salt)

    def classification_rules_file(self) -> Path:
        """The classification rules file in use: ``classification_rules_path``, else
        PSAFE_TICKET_CLASSIFICATION_RULES, else the shipped default. The environment is read
        here, when a run uses the rules, never at import: a deployment sets the variable."""
        return _rules_file(self.classification_rules_path, "classification_rules_path",
                           CLASSIFICATION_RULES_VARIABLE, DEFAULT_CLASSIFICATION_RULES,
                           "classification rules", ClassificationRulesError)

    def kpi_rules_file(self) -> Path:
        """The KPI rules file in use: ``kpi_rules_path``, else PSAFE_KPI_RULES, else the
        shipped default (read as ``classification_rules_file`` is)."""
        return _rules_file(self.kpi_rules_path, "kpi_rules_path", KPI_RULES_VARIABLE, DEFAULT_KPI_RULES,
                           "KPI rules", KpiRulesError)

    def issue_fields(self) -> list[str]:
        """The fields a sync asks for: ISSUE_FIELDS and those the KPI rules read."""
        return list(dict.fromkeys([*ISSUE_FIELDS, *read_kpi_rules(self.kpi_rules_file()).jira_fields()]))

    def get_client(self) -> JIRA:
        """The client, without a request: its own /serverInfo call (which ``site_time``
        makes once, using the answer) and its retries are off (call_with_retries bounds
        them). It speaks /rest/api/2 unless told otherwise; /search/jql needs v3.

        A JIRA_URL that is not https:// fails here, not retried: the client would send the
        token in clear, or a ConnectionError from an https-only site would be retried for
        minutes as a network outage. So does a URL with a path (a Cloud site answers at its root),
        and a URL, email or token with whitespace or quotes inside or around it (clean_setting:
        whitespace around it, as a secret file leaves, is ignored), which would only be refused
        as a network error or a 401 with no word about the stray character."""
        server = checked_url(self.server_url, "JIRA_URL", "the Jira Cloud site, https://<site>.atlassian.net")
        return JIRA(
            server=server,
            basic_auth=(clean_setting(self.email, "JIRA_EMAIL"), clean_setting(self.api_token, "JIRA_API_TOKEN")),
            options={"rest_api_version": "3", "verify": self.ca_bundle_path or True},
            max_retries=0,
            timeout=self.timeout_seconds,
            get_server_info=False,
        )

    def get_json(self, client: JIRA, path: str, params: dict | None = None,
                 log: Callable[[str], None] | None = None, expect: Expectation | None = None) -> dict:
        """GET ``API/path`` and decode it, with bounded retries; ``expect`` checks that the
        answer is the one asked for (an answer to another request is retried, never trusted)."""
        request = ApiRequest("GET", f"{API}/{path}", dict(params or {}))

        def attempt() -> dict:
            try:
                response = client._session.get(client._get_url(path), params=params)
            except JIRAError as error:
                raise self._failure(request, error) from None
            except (requests.RequestException, ValueError) as error:  # ValueError: a URL or header not built
                if failure := refused_by_client(error, f"{request.method} {request.path}", url_variable="JIRA_URL",
                                                header_variables="JIRA_EMAIL and JIRA_API_TOKEN",
                                                ca_variable="REQUESTS_CA_BUNDLE",
                                                ca_bundle_path=self.ca_bundle_path, clean=self.redact):
                    raise failure from None
                if not isinstance(error, requests.RequestException):
                    raise
                raise Transient(f"network error ({type(error).__name__})") from None
            try:
                body = response.json()
            except ValueError:  # a body that is not (complete) JSON
                raise Transient("truncated or malformed JSON body") from None
            if not isinstance(body, dict):
                raise Transient("the body is not a JSON object")
            mismatch = expect(body) if expect else None
            if mismatch:
                raise Transient(mismatch)
            return body

        return call_with_retries(attempt, what=f"GET {request.path}", backoff=self.backoff, log=log)

    def _failure(self, request: ApiRequest, error: JIRAError) -> Exception:
        """What a refused request means. JIRAError's own text includes the request headers
        (the Authorization): only the status and the body's messages, redacted, are kept."""
        status = error.status_code
        if status == 429 or (status is not None and status >= 500):
            headers = error.response.headers if error.response is not None else {}
            return Transient(f"HTTP {status}", wait_hint(headers))
        what = f"{request.method} {request.path}"
        if status == 401:
            return ApiError(f"{what}: Jira refused the credentials (HTTP 401); the API token may be expired or "
                            "revoked. Set JIRA_EMAIL and JIRA_API_TOKEN to a valid account and token.", status=401)
        if status is None:
            return Transient("empty response")
        return ApiError(f"{what}: HTTP {status}: {self.redact(_jira_messages(error))}", status=status)

    def site_time(self, client: JIRA, log: Callable[[str], None] | None = None) -> datetime:
        """The site's clock (`serverTime` of /serverInfo). The site must be Jira Cloud: only
        Cloud serves /search/jql."""
        info = self.get_json(client, "serverInfo", log=log,
                             expect=lambda body: None if "serverTime" in body else "the answer holds no serverTime")
        if info.get("deploymentType") != "Cloud":
            raise ApiError(f"{self.server_url} is a Jira {info.get('deploymentType', 'Server')} site, not Jira Cloud; "
                           "the pipeline reads Cloud's /rest/api/3/search/jql. Set JIRA_URL to a Jira Cloud site.")
        return parse_jira_time(info["serverTime"])

    def iter_issues(
        self,
        client: JIRA,
        since: datetime,
        log: Callable[[str], None] | None = None,
        stored_histories: Callable[[str], list[dict]] | None = None,
        fields: list[str] = ISSUE_FIELDS,
    ) -> Iterator[IssuePage]:
        """Pages of every issue updated at or after ``since``, in `updated` order, each with
        its complete changelog.

        Pages through `/search/jql` (the only search Jira Cloud still serves) by
        `nextPageToken` until a page has none (or says `isLast`). A page that answers another
        request (the previous page again, a page from before the previous one, another
        search's page) is fetched again. The changelog embedded in a search result is a single page (the newest
        entries); when its total says there is more, the histories already stored for the
        issue (``stored_histories(issue_id)``, from an earlier sync) may complete it, else the
        rest comes from `/issue/{id}/changelog`. An issue that cannot be read or completed is
        returned in the page's ``poison``. ``fields`` are the fields asked for; every issue is
        pseudonymised as it is received (``received``), before it is kept or quarantined.
        """
        jql = f"updated >= {int(since.timestamp() * 1000)} ORDER BY updated ASC, key ASC"
        token: str | None = None
        previous_keys: list[str] = []
        last_updated: datetime | None = None
        while True:
            params = {"jql": jql, "maxResults": SEARCH_PAGE_SIZE, "fields": ",".join(fields),
                      "expand": "changelog"}
            if token:
                params["nextPageToken"] = token
            request = ApiRequest("GET", f"{API}/search/jql", params)
            page = self.get_json(client, "search/jql", params, log,
                                 _search_page(since, token, previous_keys, last_updated))
            result = IssuePage([], request)
            for issue in map(self.received, page["issues"]):
                try:
                    result.issues.append(self.completed(client, issue, request, log, stored_histories))
                except PoisonRecord as poison:
                    result.poison.append(Quarantined(record_id(issue), poison.reason, poison.request, issue))
            previous_keys = [issue.get("key") for issue in page["issues"] if isinstance(issue, dict)]
            last_updated = max(_updated_times(page["issues"]), default=last_updated)
            token = page.get("nextPageToken")
            result.last = _last_search_page(page)
            yield result
            if result.last:
                return

    def issue_ids(self, client: JIRA, since: datetime, log: Callable[[str], None] | None = None) -> set[str]:
        """The ids of every issue updated at or after ``since`` that the site still shows,
        from `/search/jql` asking for ids only (5,000 a page). Jira Cloud has no feed of deleted
        issues: an issue missing here was deleted, or moved out of the token's sight, or (the
        pages follow positions in key order) skipped because an issue listed before it was
        deleted while the listing paged: the caller confirms by id before removing anything. An
        issue created meanwhile moves the later ones on a place, so a page may start with ids an
        earlier page listed: counted once (a page holding only such ids is a replayed answer)."""
        jql = f"updated >= {int(since.timestamp() * 1000)} ORDER BY key ASC"
        ids: set[str] = set()
        token: str | None = None
        twice = 0
        while True:
            params = {"jql": jql, "maxResults": ID_SEARCH_PAGE_SIZE, "fields": "id"}
            if token:
                params["nextPageToken"] = token
            page = self.get_json(client, "search/jql", params, log, _id_page(token, ids))
            page_ids = {str(issue["id"]) for issue in page["issues"]}
            twice += len(page_ids & ids)
            ids.update(page_ids)
            token = page.get("nextPageToken")
            if _last_search_page(page):
                if twice and log:
                    log(f"issues: the id listing listed {twice} issues on two pages (issues created while it paged "
                        "move the later ones on a place); each is counted once")
                return ids

    def fetch_issue(self, client: JIRA, issue_id: str, log: Callable[[str], None] | None = None,
                    stored_histories: Callable[[str], list[dict]] | None = None,
                    fields: list[str] = ISSUE_FIELDS) -> dict:
        """One issue by id (`/issue/{id}`), with its complete changelog; PoisonRecord if it
        cannot be read or completed (IssueNotServed, one, if Jira refuses the issue itself)."""
        params = {"fields": ",".join(fields), "expand": "changelog"}
        request = ApiRequest("GET", f"{API}/issue/{issue_id}", params)
        try:
            issue = self.received(self.get_json(client, f"issue/{issue_id}", params, log, _the_issue(issue_id)))
        except ApiError as error:
            if error.status not in RECORD_REFUSALS:
                raise
            raise IssueNotServed(f"refused: {error}", request) from None
        return self.completed(client, issue, request, log, stored_histories)

    def completed(self, client: JIRA, issue: dict, request: ApiRequest, log=None, stored_histories=None) -> dict:
        """``issue`` (as ``request`` returned it) with its complete changelog, checked for what
        staging reads; PoisonRecord if it cannot be read or completed."""
        problem = _issue_problem(issue)
        if problem:
            raise PoisonRecord(problem, request)
        changelog = issue.get("changelog") or {}
        embedded = {h["id"]: h for h in changelog.get("histories") or []}
        total = changelog.get("total") if isinstance(changelog.get("total"), int) else len(embedded)
        histories = dict(embedded)
        if total > len(histories) and stored_histories is not None:
            # Histories are append-only: what an earlier sync stored plus the newest page
            # embedded now is the whole changelog when nothing fell in between. Stored ones are
            # pseudonymised again (a no-op on what is done): an older sync may have kept a name
            # its rules did not know for a person's.
            histories = {**{h["id"]: h for h in self.received(stored_histories(issue["id"]))}, **histories}
        if total > len(histories):
            path = f"issue/{issue['id']}/changelog"
            try:
                listed, listed_total = self._changelog(client, issue, path, set(embedded), log)
            except ApiError as error:
                if error.status not in RECORD_REFUSALS:
                    raise
                raise PoisonRecord(f"refused: {error}", ApiRequest("GET", f"{API}/{path}")) from None
            histories.update(self.received(listed))
            if total > len(histories):
                raise PoisonRecord(
                    f"changelog_incomplete: {issue['key']}'s changelog says {total} entries; /{path} lists "
                    f"{len(listed)} (its total: {listed_total}), so {total - len(histories)} cannot be read",
                    ApiRequest("GET", f"{API}/{path}", {"startAt": 0, "maxResults": CHANGELOG_PAGE_SIZE}),
                )
        ordered = sorted(histories.values(), key=lambda h: (h["created"], h["id"]))
        issue["changelog"] = {"startAt": 0, "maxResults": len(ordered), "total": len(ordered), "histories": ordered}
        return issue

    def _changelog(self, client: JIRA, issue: dict, path: str, embedded: set[str], log) -> tuple[dict, int | None]:
        """Every history `/issue/{id}/changelog` lists, and the total it states. The walk is
        retried whole when its pages lack a history the search embedded (the pages of
        another issue's changelog that name no issue)."""

        def walk() -> tuple[dict, int | None]:
            listed: dict[str, dict] = {}
            start_at, listed_total = 0, None
            while True:
                page = self.get_json(client, path, {"startAt": start_at, "maxResults": CHANGELOG_PAGE_SIZE}, log,
                                     _changelog_page(issue, start_at))
                values = [h for h in page["values"] if isinstance(h, dict) and "id" in h and "created" in h]
                listed.update({h["id"]: h for h in values})
                start_at += len(page["values"])
                listed_total = page.get("total") if isinstance(page.get("total"), int) else listed_total
                # `isLast` is optional: the listed total (or an empty page) also ends the walk.
                if page.get("isLast") is True or not page["values"] or (
                        listed_total is not None and start_at >= listed_total):
                    break
            missing = embedded - set(listed)
            if missing:
                raise Transient(f"the changelog pages lack {len(missing)} of the histories the search embedded "
                                f"for {issue['key']}: another issue's changelog?")
            return listed, listed_total

        return call_with_retries(walk, what=f"GET {API}/{path}", backoff=self.backoff, log=log)


def _issue_problem(issue: object) -> str | None:
    """What staging could not read in ``issue`` (None: nothing)."""
    if not isinstance(issue, dict):
        return f"unparseable: not a JSON object ({type(issue).__name__})"
    if not isinstance(issue.get("id"), str) or not isinstance(issue.get("key"), str):
        return "unparseable: no id or key"
    fields = issue.get("fields")
    if not isinstance(fields, dict):
        return "unparseable: no fields"
    for name in ("created", "updated", "resolutiondate"):
        value = fields.get(name)
        if (value is not None or name != "resolutiondate") and not (
                isinstance(value, str) and JIRA_DATE_TIME.fullmatch(value)):
            return f"unparseable: fields.{name} {value!r} is not a Jira date-time"
    labels = fields.get("labels")
    if labels is not None and not (isinstance(labels, list) and all(isinstance(label, str) for label in labels)):
        return "unparseable: fields.labels is not a list of names"
    changelog = issue.get("changelog") or {}
    histories = (changelog.get("histories") or []) if isinstance(changelog, dict) else None
    if not isinstance(histories, list) or not all(
            isinstance(h, dict) and isinstance(h.get("id"), str) and isinstance(h.get("created"), str)
            for h in histories):
        return "unparseable: the changelog is not a list of histories with an id and a time"
    return None


def _updated_times(issues: list) -> list[datetime]:
    times = []
    for issue in issues:
        updated = ((issue.get("fields") or {}).get("updated") if isinstance(issue, dict) else None)
        if isinstance(updated, str) and JIRA_DATE_TIME.fullmatch(updated):
            times.append(parse_jira_time(updated))
    return times


def _search_page(since: datetime, token: str | None, previous_keys: list[str],
                 last_updated: datetime | None) -> Expectation:
    """The next page of the search for issues updated since ``since``, in `updated` order: no
    issue updated before ``since`` (JQL compares minutes: a minute's grace), not the previous
    page again (same keys, or the token that asked for it), nor a page from before it (every
    issue updated before the previous page's newest)."""

    def check(body: dict) -> str | None:
        issues = body.get("issues")
        if not isinstance(issues, list):
            return "the answer holds no 'issues' list"
        keys = [issue.get("key") for issue in issues if isinstance(issue, dict)]
        if (keys and keys == previous_keys) or (token is not None and body.get("nextPageToken") == token):
            return "the search answered the previous page again"
        if issues and not any(isinstance(issue, dict) and issue.get("fields") for issue in issues):
            return "the search was answered with issues without their fields: a page of the id listing"
        updated = _updated_times(issues)
        if updated and min(updated) < since - timedelta(minutes=1):
            return (f"the search for issues updated since {since:%Y-%m-%d %H:%M} answered with one updated "
                    f"{min(updated):%Y-%m-%d %H:%M}: another search's page")
        if updated and last_updated is not None and max(updated) < last_updated:
            return (f"the search answered a page from before the previous one (issues updated up to "
                    f"{max(updated):%Y-%m-%d %H:%M:%S}, after {last_updated:%Y-%m-%d %H:%M:%S} was reached)")
        return None

    return check


def _last_search_page(page: dict) -> bool:
    """Whether a /search/jql page is the last: it says so (`isLast` is optional), or gives no
    `nextPageToken` to ask for the next."""
    return page.get("isLast") is True or not page.get("nextPageToken")


def _id_page(token: str | None, listed: set[str]) -> Expectation:
    """The next page of the id listing: issues with an id and no fields (absent, or empty: a
    page of the issues' own search has them), not only issues ``listed`` on an earlier page nor
    the token that asked for it (an earlier page again). Some listed before are drift, not a
    replay: an issue created while the listing pages moves the later ones on a place."""

    def check(body: dict) -> str | None:
        issues = body.get("issues")
        if not isinstance(issues, list) or not all(isinstance(i, dict) and i.get("id") for i in issues):
            return "the answer holds no 'issues' list of issues with ids"
        if any(issue.get("fields") for issue in issues):
            return "the id listing was answered with issues and their fields: another search's page"
        if (token is not None and body.get("nextPageToken") == token) or (
                issues and all(str(i["id"]) in listed for i in issues)):
            return "the id listing answered an earlier page again"
        if body.get("isLast") is False and not body.get("nextPageToken"):
            return "the id listing says more pages follow but gives no nextPageToken to ask for them"
        return None

    return check


def _changelog_page(issue: dict, start_at: int) -> Expectation:
    """The page of ``issue``'s changelog starting at ``start_at``: its `self` (when sent)
    names the issue, its `startAt` (when sent) is the one asked for."""

    def check(body: dict) -> str | None:
        if not isinstance(body.get("values"), list):
            return "the answer holds no 'values' list"
        if body.get("startAt", start_at) != start_at:
            return f"asked for the changelog page at {start_at}, got the one at {body.get('startAt')}"
        match = _CHANGELOG_PATH.search(urlparse(body["self"]).path) if isinstance(body.get("self"), str) else None
        if match and match.group(1) not in (issue["id"], issue["key"]):
            return f"asked for the changelog of {issue['key']}, got that of {match.group(1)}"
        return None

    return check


def _the_issue(issue_id: str) -> Expectation:
    def check(body: dict) -> str | None:
        if body.get("id") != issue_id:
            return f"asked for issue {issue_id}, got issue {body.get('id')} ({body.get('key')})"
        return None

    return check


def _rules_file(configured: str | None, field_name: str, variable: str, default: Path, what: str,
               error: type[ValueError]) -> Path:
    """The rules file the resource's ``field_name``, else ``variable``, else ``default`` names.
    A missing file fails naming the setting it came from, so the user knows which to fix."""
    if configured:
        path, source = Path(configured), f"the jira resource's {field_name}"
    elif os.environ.get(variable):
        path, source = Path(os.environ[variable]), variable
    else:
        return default
    if not path.is_file():
        raise error(f"{path}: no such {what} file ({source})")
    return path


def _jira_messages(error: JIRAError) -> str:
    try:
        body = error.response.json()
        return "; ".join([*body.get("errorMessages", []), *map(str, (body.get("errors") or {}).values())])[:500]
    except (AttributeError, ValueError, TypeError):
        return "no error message"
