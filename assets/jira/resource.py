"""Jira Cloud REST API v3 through the ``jira`` (pycontribs) client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import requests
from jira import JIRA, JIRAError
from pydantic import Field

from assets.api_retry import ApiError, Backoff, Transient, call_with_retries, wait_hint

SEARCH_PAGE_SIZE = 100
CHANGELOG_PAGE_SIZE = 100
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
]
DEFAULT_CLASSIFICATION_RULES = Path(__file__).resolve().parents[2] / "config" / "ticket_classification.yml"


class JiraResource(dg.ConfigurableResource):
    """A Jira Cloud site (or the local sandbox) reached with an account email and API token.

    ``ca_bundle_path`` trusts an extra certificate authority (the sandbox makes its own).
    Transient failures (429, 5xx, timeouts, broken or replayed pages) are retried at most
    ``max_attempts`` times per request, waiting what ``Retry-After`` asks or backing off
    exponentially; errors never include the request's headers (the client's own would).
    ``classification_rules_path`` is the proactive/reactive rules file (see
    config/ticket_classification.yml, the shipped default).
    """

    server_url: str
    email: str
    api_token: str = Field(description="Atlassian API token (secret: pass it as dg.EnvVar)")
    ca_bundle_path: str | None = None
    timeout_seconds: float = 60.0
    max_attempts: int = 6
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 120.0
    classification_rules_path: str = str(DEFAULT_CLASSIFICATION_RULES)

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.max_attempts, self.base_delay_seconds, self.max_delay_seconds)

    def get_client(self, log: Callable[[str], None] | None = None) -> JIRA:
        # The client speaks /rest/api/2 unless told otherwise; /search/jql needs Cloud and v3.
        # Its own retries are off (max_retries=0): call_with_retries bounds them instead.
        options = {"rest_api_version": "3", "verify": self.ca_bundle_path or True}
        return self._call(
            lambda: JIRA(
                server=self.server_url,
                basic_auth=(self.email, self.api_token),
                options=options,
                max_retries=0,
                timeout=self.timeout_seconds,
            ),
            "GET /serverInfo",
            log,
        )

    def _call(self, call: Callable[[], Any], what: str, log: Callable[[str], None] | None) -> Any:
        def attempt():
            try:
                return call()
            except JIRAError as error:
                status = error.status_code
                if status == 429 or (status is not None and status >= 500):
                    headers = error.response.headers if error.response is not None else {}
                    raise Transient(f"HTTP {status}", wait_hint(headers)) from None
                if status == 401:
                    raise ApiError(
                        f"{what}: Jira refused the credentials (HTTP 401); the API token may be expired or "
                        "revoked. Set JIRA_EMAIL and JIRA_API_TOKEN to a valid account and token."
                    ) from None
                # JIRAError's text includes the request headers (the Authorization): never pass it on.
                raise ApiError(f"{what}: HTTP {status}: {_jira_messages(error)}") from None
            except requests.RequestException as error:
                raise Transient(f"network error ({type(error).__name__})") from None
            except ValueError:  # a body that is not (complete) JSON
                raise Transient("truncated or malformed JSON body") from None

        return call_with_retries(attempt, what=what, backoff=self.backoff, log=log)

    def server_time(self, client: JIRA, log: Callable[[str], None] | None = None) -> datetime:
        """The site's clock (`serverTime` of /serverInfo)."""
        info = self._call(client.server_info, "GET /serverInfo", log)
        return datetime.strptime(info["serverTime"], "%Y-%m-%dT%H:%M:%S.%f%z")

    def iter_issues(
        self,
        client: JIRA,
        jql: str,
        log: Callable[[str], None] | None = None,
        stored_histories: Callable[[str], list[dict]] | None = None,
    ) -> Iterator[list[dict]]:
        """Pages of every issue matching ``jql``, each issue with its complete changelog.

        Pages through `/search/jql` by `nextPageToken` (the only search Jira Cloud still
        serves). The changelog embedded in a search result is a single page (the newest
        entries); when its total says there is more, the histories already stored for the
        issue (``stored_histories(issue_id)``, from an earlier sync) may complete it, else
        the rest comes from `/issue/{key}/changelog`. A page that repeats the previous one
        (a replay) is fetched again.
        """
        token: str | None = None
        previous_keys: list[str] = []
        while True:
            def fetch(token=token):
                page = client.enhanced_search_issues(
                    jql,
                    nextPageToken=token,
                    maxResults=SEARCH_PAGE_SIZE,
                    fields=list(ISSUE_FIELDS),
                    expand="changelog",
                    json_result=True,
                )
                keys = [issue["key"] for issue in page["issues"]]
                if keys and keys == previous_keys:
                    raise Transient("the search answered the previous page again")
                return page, keys

            page, previous_keys = self._call(fetch, "POST /search/jql", log)
            yield [self._with_full_changelog(client, issue, log, stored_histories) for issue in page["issues"]]
            token = page.get("nextPageToken")
            if page.get("isLast", True) or not token:
                return

    def _with_full_changelog(self, client: JIRA, issue: dict, log, stored_histories) -> dict:
        changelog = issue.get("changelog") or {"histories": [], "total": 0}
        histories = {h["id"]: h for h in changelog.get("histories", [])}
        if changelog.get("total", 0) > len(histories) and stored_histories is not None:
            # Histories are append-only: what an earlier sync stored plus the newest page
            # embedded now is the whole changelog when nothing fell in between.
            histories = {**{h["id"]: h for h in stored_histories(issue["id"])}, **histories}
        if changelog.get("total", 0) > len(histories):
            start_at = 0
            while True:
                page = self._call(
                    lambda start_at=start_at: client._get_json(
                        f"issue/{issue['key']}/changelog",
                        params={"startAt": start_at, "maxResults": CHANGELOG_PAGE_SIZE},
                    ),
                    f"GET /issue/{issue['key']}/changelog",
                    log,
                )
                histories.update({h["id"]: h for h in page["values"]})
                start_at += len(page["values"])
                if page.get("isLast", True) or not page["values"]:
                    break
        ordered = sorted(histories.values(), key=lambda h: (h["created"], h["id"]))
        if len(ordered) < changelog.get("total", 0):
            raise ApiError(f"{issue['key']}: changelog says {changelog['total']} entries, fetched {len(ordered)}")
        issue["changelog"] = {"startAt": 0, "maxResults": len(ordered), "total": len(ordered), "histories": ordered}
        return issue


def _jira_messages(error: JIRAError) -> str:
    try:
        body = error.response.json()
        return "; ".join([*body.get("errorMessages", []), *map(str, (body.get("errors") or {}).values())])
    except (AttributeError, ValueError):
        return "no error message"
