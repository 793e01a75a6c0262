"""PagerDuty REST API v2 through the official ``pagerduty`` client."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import datetime, timedelta

import dagster as dg
from pagerduty import RestApiV2Client, successful_response, try_decoding

# The API refuses offset + limit > 10,000 and since/until spans over six months.
OFFSET_CAP = 10_000
PAGE_SIZE = 100
MAX_WINDOW = timedelta(days=31)
MIN_WINDOW = timedelta(minutes=1)


class PagerDutyResource(dg.ConfigurableResource):
    """A PagerDuty account (or the local sandbox) reached with an API token.

    ``ca_bundle_path`` trusts an extra certificate authority (the sandbox makes its own);
    leave it unset for api.pagerduty.com.
    """

    api_token: str
    base_url: str = "https://api.pagerduty.com"
    ca_bundle_path: str | None = None
    retry_sleep_seconds: float = 1.5

    def get_client(self) -> RestApiV2Client:
        verify: ssl.SSLContext | bool = True
        if self.ca_bundle_path:
            verify = ssl.create_default_context(cafile=self.ca_bundle_path)
        client = RestApiV2Client(self.api_token, base_url=self.base_url, verify=verify)
        client.sleep_timer = self.retry_sleep_seconds
        return client

    def iter_window(
        self,
        client: RestApiV2Client,
        path: str,
        since: datetime,
        until: datetime,
        log: dg.DagsterLogManager | None = None,
    ) -> Iterator[dict]:
        """Every record of ``path`` created in ``[since, until)``.

        Windows are at most a month (well inside the six-month span limit). A window whose
        total exceeds the 10,000-record offset cap is split in halves until each fits, so
        nothing is silently cut off.
        """
        start = since
        while start < until:
            end = min(start + MAX_WINDOW, until)
            yield from self._iter_capped(client, path, start, end, log)
            start = end

    def _iter_capped(self, client, path, since, until, log) -> Iterator[dict]:
        entity = path.strip("/").split("/")[-1]
        params = {"since": _iso(since), "until": _iso(until), "limit": PAGE_SIZE, "offset": 0, "total": "true"}
        first = try_decoding(successful_response(client.get(path, params=params)))
        total = first.get("total") or 0
        if total > OFFSET_CAP:
            if until - since <= MIN_WINDOW:
                raise RuntimeError(
                    f"{total} {entity} between {_iso(since)} and {_iso(until)}: more than the "
                    f"API's {OFFSET_CAP}-record pagination cap in a one-minute window"
                )
            middle = since + (until - since) / 2
            if log:
                log.info(f"{entity}: {total} records in {_iso(since)}..{_iso(until)}, splitting window")
            yield from self._iter_capped(client, path, since, middle, log)
            yield from self._iter_capped(client, path, middle, until, log)
            return
        page = first
        params["total"] = "false"
        while True:
            records = page[entity]
            yield from records
            if not page.get("more"):
                return
            if not records:
                raise RuntimeError(f"{path} said more records follow offset {params['offset']} but sent none")
            params["offset"] += len(records)
            params["limit"] = min(PAGE_SIZE, OFFSET_CAP - params["offset"])
            page = try_decoding(successful_response(client.get(path, params=params)))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
