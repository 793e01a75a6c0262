"""PagerDuty REST API v2 through the official ``pagerduty`` client."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import dagster as dg
from httpx2 import Response, TransportError
from pagerduty import Error as PagerDutyClientError
from pagerduty import HttpError, RestApiV2Client
from pydantic import Field

from assets.api_retry import ApiError, Backoff, Transient, call_with_retries, wait_hint

# The API refuses offset + limit > 10,000 and since/until spans over six months.
OFFSET_CAP = 10_000
PAGE_SIZE = 100
MAX_WINDOW = timedelta(days=31)
MIN_WINDOW = timedelta(minutes=1)


_REFUSED_TOKEN = (
    "GET {path}: PagerDuty refused the API token (HTTP 401); it may be expired, revoked or for "
    "another region. Set PAGERDUTY_API_TOKEN to a valid read-only token."
)


class _RetryableStatus(Exception):
    def __init__(self, response: Response):
        super().__init__(response.status_code)
        self.response = response


class _Client(RestApiV2Client):
    """The official client, handing 429 and 5xx back to the caller at once instead of
    sleeping in its own unbounded loop (see ``assets.api_retry``)."""

    def postprocess(self, response: Response) -> None:
        super().postprocess(response)
        if response.status_code == 429 or response.status_code >= 500:
            raise _RetryableStatus(response)


@dataclass(frozen=True)
class WindowPage:
    """A page of records; ``window_done`` is set on the last page of a time window, when
    every record created in ``[since, window_done)`` has been yielded."""

    records: list[dict]
    window_done: datetime | None = None


class PagerDutyResource(dg.ConfigurableResource):
    """A PagerDuty account (or the local sandbox) reached with an API token.

    ``ca_bundle_path`` trusts an extra certificate authority (the sandbox makes its own);
    leave it unset for api.pagerduty.com. Transient failures (429, 5xx, timeouts, broken
    or inconsistent pages) are retried at most ``max_attempts`` times per request, waiting
    what ``ratelimit-reset``/``Retry-After`` ask or backing off exponentially from
    ``base_delay_seconds``; a server asking for more than ``max_delay_seconds`` fails the run.
    """

    api_token: str = Field(description="Read-only REST API token (secret: pass it as dg.EnvVar)")
    base_url: str = "https://api.pagerduty.com"
    ca_bundle_path: str | None = None
    timeout_seconds: float = 60.0
    max_attempts: int = 6
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 120.0

    def get_client(self) -> RestApiV2Client:
        verify: ssl.SSLContext | bool = True
        if self.ca_bundle_path:
            verify = ssl.create_default_context(cafile=self.ca_bundle_path)
        client = _Client(self.api_token, base_url=self.base_url, verify=verify)
        client.timeout = self.timeout_seconds
        # Network errors surface at once as pagerduty.Error; call_with_retries retries them.
        client.max_network_attempts = 0
        return client

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.max_attempts, self.base_delay_seconds, self.max_delay_seconds)

    def get_json(
        self,
        client: RestApiV2Client,
        path: str,
        params: dict | None = None,
        log: Callable[[str], None] | None = None,
    ) -> dict:
        """GET ``path`` and decode it, with bounded retries; a paged answer must be the page
        asked for (a replayed page is retried, not trusted)."""
        params = dict(params or {})

        def attempt() -> dict:
            try:
                response = client.get(path, params=params)
            except _RetryableStatus as status:
                raise Transient(f"HTTP {status.response.status_code}", wait_hint(status.response.headers)) from None
            except HttpError:  # 401: the client refuses to go on
                raise ApiError(_REFUSED_TOKEN.format(path=path)) from None
            except PagerDutyClientError as error:
                if isinstance(error.__cause__, TransportError):
                    raise Transient(f"network error ({type(error.__cause__).__name__})") from None
                raise
            if not response.is_success:
                raise ApiError(f"GET {path} {_describe(params)}: HTTP {response.status_code}: {_pd_message(response)}")
            try:
                body = response.json()
            except (ValueError, UnicodeDecodeError):
                raise Transient("truncated or malformed JSON body") from None
            if "offset" in params and body.get("offset") != params["offset"]:
                raise Transient(f"asked for offset {params['offset']}, got the page at offset {body.get('offset')}")
            return body

        return call_with_retries(attempt, what=f"GET {path}", backoff=self.backoff, log=log)

    def server_time(self, client: RestApiV2Client, log: Callable[[str], None] | None = None) -> datetime:
        """The API's own clock (its ``Date`` header), so windows end at the server's "now"
        whatever the worker's clock says; the local clock if the header is missing."""

        def attempt() -> datetime:
            try:
                response = client.get("teams", params={"limit": 1})
            except _RetryableStatus as status:
                raise Transient(f"HTTP {status.response.status_code}", wait_hint(status.response.headers)) from None
            except HttpError:
                raise ApiError(_REFUSED_TOKEN.format(path="/teams")) from None
            except PagerDutyClientError as error:
                if isinstance(error.__cause__, TransportError):
                    raise Transient(f"network error ({type(error.__cause__).__name__})") from None
                raise
            try:
                return parsedate_to_datetime(response.headers["Date"]).astimezone(UTC)
            except (KeyError, TypeError, ValueError):
                return datetime.now(UTC).replace(microsecond=0)

        return call_with_retries(attempt, what="GET /teams", backoff=self.backoff, log=log)

    def iter_all(self, client: RestApiV2Client, path: str, log=None) -> Iterator[dict]:
        """Every record of an offset-paged directory endpoint (teams, services)."""
        entity = path.strip("/").split("/")[-1]
        params = {"limit": PAGE_SIZE, "offset": 0}
        while True:
            page = self.get_json(client, path, params, log)
            yield from page[entity]
            if not page.get("more") or not page[entity]:
                return
            params["offset"] += len(page[entity])
            if params["offset"] + params["limit"] > OFFSET_CAP:
                raise ApiError(f"{path}: more than {OFFSET_CAP} records; the API cannot page past that")

    def iter_window(
        self,
        client: RestApiV2Client,
        path: str,
        since: datetime,
        until: datetime,
        log: Callable[[str], None] | None = None,
    ) -> Iterator[WindowPage]:
        """Every record of ``path`` created in ``[since, until)``, page by page.

        Windows are at most a month (well inside the six-month span limit). A window whose
        total exceeds the 10,000-record offset cap is shrunk, in proportion to how full it
        was, until it fits, so nothing is silently cut off; each next window is sized from
        the density of the last one, aiming at 80% of the cap.
        """
        start, length = since, MAX_WINDOW
        while start < until:
            end = min(start + length, until)
            first = self.get_json(client, path, _window_params(start, end, total=True), log)
            total = first.get("total") or 0
            if total > OFFSET_CAP:
                if end - start <= MIN_WINDOW:
                    raise ApiError(
                        f"{total} {path.strip('/')} between {_iso(start)} and {_iso(end)}: more than the "
                        f"API's {OFFSET_CAP}-record pagination cap in a one-minute window"
                    )
                length = max(MIN_WINDOW, _resized(end - start, total))
                if log:
                    log(f"{path}: {total} records in {_iso(start)}..{_iso(end)}, over the "
                        f"{OFFSET_CAP} cap; narrowing the window")
                continue
            yield from self._pages(client, path, start, end, first, log)
            start, length = end, min(MAX_WINDOW, max(MIN_WINDOW, _resized(end - start, total)))

    def _pages(self, client, path, since, until, first, log) -> Iterator[WindowPage]:
        entity = path.strip("/").split("/")[-1]
        params = _window_params(since, until, total=False)
        page = first
        while True:
            records = page[entity]
            if not page.get("more"):
                yield WindowPage(records, window_done=until)
                return
            if not records:
                raise ApiError(f"{path} said more records follow offset {params['offset']} but sent none")
            yield WindowPage(records)
            params["offset"] += len(records)
            params["limit"] = min(PAGE_SIZE, OFFSET_CAP - params["offset"])
            page = self.get_json(client, path, params, log)


def _resized(length: timedelta, total: int) -> timedelta:
    """A window length that would hold about 80% of the offset cap at this density."""
    if total == 0:
        return MAX_WINDOW
    return min(length * (0.8 * OFFSET_CAP / total), length / 2 if total > OFFSET_CAP else MAX_WINDOW)


def _window_params(since: datetime, until: datetime, *, total: bool) -> dict:
    return {"since": _iso(since), "until": _iso(until), "limit": PAGE_SIZE, "offset": 0, "total": str(total).lower()}


def _describe(params: dict) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items() if k in ("since", "until", "offset"))


def _pd_message(response: Response) -> str:
    try:
        error = response.json().get("error", {})
    except (ValueError, AttributeError):
        return response.reason_phrase
    return "; ".join([str(error.get("message", "")), *map(str, error.get("errors", []))]).strip("; ")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

