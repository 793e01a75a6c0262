"""Jira Cloud REST API v3 through the ``jira`` (pycontribs) client."""

from __future__ import annotations

from collections.abc import Iterator

import dagster as dg
from jira import JIRA

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


class JiraResource(dg.ConfigurableResource):
    """A Jira Cloud site (or the local sandbox) reached with an account email and API token.

    ``ca_bundle_path`` trusts an extra certificate authority (the sandbox makes its own).
    """

    server_url: str
    email: str
    api_token: str
    ca_bundle_path: str | None = None
    max_retries: int = 3

    def get_client(self) -> JIRA:
        # The client speaks /rest/api/2 unless told otherwise; /search/jql needs Cloud and v3.
        options = {"rest_api_version": "3", "verify": self.ca_bundle_path or True}
        return JIRA(
            server=self.server_url,
            basic_auth=(self.email, self.api_token),
            options=options,
            max_retries=self.max_retries,
        )

    def iter_issues(self, client: JIRA, jql: str) -> Iterator[dict]:
        """Every issue matching ``jql`` with its complete changelog.

        Pages through `/search/jql` by `nextPageToken` (the only search Jira Cloud still
        serves). The changelog embedded in a search result is a single page; when its total
        says there is more, the rest comes from `/issue/{key}/changelog`.
        """
        token: str | None = None
        while True:
            page = client.enhanced_search_issues(
                jql,
                nextPageToken=token,
                maxResults=SEARCH_PAGE_SIZE,
                fields=list(ISSUE_FIELDS),
                expand="changelog",
                json_result=True,
            )
            for issue in page["issues"]:
                yield self._with_full_changelog(client, issue)
            token = page.get("nextPageToken")
            if page.get("isLast", True) or not token:
                return

    def _with_full_changelog(self, client: JIRA, issue: dict) -> dict:
        changelog = issue.get("changelog") or {"histories": [], "total": 0}
        histories = {h["id"]: h for h in changelog.get("histories", [])}
        if changelog.get("total", 0) > len(histories):
            start_at = 0
            while True:
                page = client._get_json(
                    f"issue/{issue['key']}/changelog",
                    params={"startAt": start_at, "maxResults": CHANGELOG_PAGE_SIZE},
                )
                histories.update({h["id"]: h for h in page["values"]})
                start_at += len(page["values"])
                if page.get("isLast", True) or not page["values"]:
                    break
        ordered = sorted(histories.values(), key=lambda h: (h["created"], h["id"]))
        if len(ordered) < changelog.get("total", 0):
            raise RuntimeError(
                f"{issue['key']}: changelog says {changelog['total']} entries, fetched {len(ordered)}"
            )
        issue["changelog"] = {"startAt": 0, "maxResults": len(ordered), "total": len(ordered), "histories": ordered}
        return issue
