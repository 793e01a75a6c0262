"""PagerDuty REST API v2 through the official ``pagerduty`` client."""

from __future__ import annotations

import re
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

from assets.api_quarantine import DEFAULT_MAX_QUARANTINED_SHARE, ApiRequest
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

# The API refuses offset + limit > 10,000 and since/until spans over six months; 180 days fits
# in any six calendar months (the shortest are 181 days).
OFFSET_CAP = 10_000
PAGE_SIZE = 100
MAX_WINDOW = timedelta(days=180)
# since/until take whole seconds: no window can be narrower.
MIN_WINDOW = timedelta(seconds=1)
# Until the API's clock is known (its first answer), a window ends at most this far past the
# worker's: a worker clock that is behind only splits the stretch into one window more.
CLOCK_SKEW_ALLOWANCE = timedelta(days=1)

# A date-time as the API renders it: seconds always, an offset always ("Z", "+01:00", "-0500").
_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)")

# What a refusal means, and what to fix.
_REFUSALS = {
    401: "PagerDuty refused the API token (HTTP 401); it may be expired, revoked or for another region. "
         "Set PAGERDUTY_API_TOKEN to a valid read-only token.",
    403: "PagerDuty refused access (HTTP 403{detail}): the token's user may not read this, or the account lacks "
         "the ability it needs. Use a read-only API token of a user who can see every team (PAGERDUTY_API_TOKEN).",
}

# A check that an answer is the one asked for: None, or what is wrong with it.
Expectation = Callable[[dict], str | None]
# What an account answers for a feature its plan lacks: 402 Payment Required, PagerDuty's code
# 2014 "Missing Account Ability" (14-Errors.md).
MISSING_ABILITY = 402
# What an account without Incident Reviews (a plan without them, 402) or a token that may not
# read them (403) answers.
REVIEWS_UNAVAILABLE = (MISSING_ABILITY, 403)
# What an account without Teams (the `teams` ability, which some plans lack) answers GET /teams.
# Not 403: that account has teams, which this token may not read (a scoped token without
# teams.read), and an empty listing would hide them: it fails, naming PAGERDUTY_API_TOKEN.
TEAMS_UNAVAILABLE = (MISSING_ABILITY,)


class Unavailable(ApiError):
    """PagerDuty refuses a feature to this account (its plan lacks the ability) or token: its
    sync has nothing to read, and warns instead of failing."""


class ReviewsUnavailable(Unavailable):
    """PagerDuty refuses Incident Reviews to this account or token."""


class TeamsUnavailable(Unavailable):
    """The account has no `teams` ability: it has no teams to list."""


def unavailable(error: ApiError, statuses: tuple[int, ...], kind: type[Unavailable]) -> ApiError:
    """``error`` as a ``kind``, when its status is one of ``statuses``; else ``error``."""
    return kind(str(error), status=error.status) if error.status in statuses else error


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
    """A page of records and the request that returned it; ``window_done`` is set on the last
    page of a time window: every record created before that moment (the API's clock) has
    been yielded."""

    records: list
    request: ApiRequest
    window_done: datetime | None = None


class PagerDutyResource(dg.ConfigurableResource):
    """A PagerDuty account (or the local sandbox) reached with an API token.

    ``base_url`` (PAGERDUTY_URL) must be an https:// URL with no path: anything else fails the
    step at once, as does a URL or ``api_token`` with whitespace or quotes inside or around it
    (``assets.api_retry.clean_setting``: whitespace around it is ignored).
    ``ca_bundle_path`` trusts an extra certificate authority (the sandbox makes its own);
    leave it unset for api.pagerduty.com (behind a proxy that inspects TLS, SSL_CERT_FILE names
    its CA). Transient failures (429, 5xx, timeouts, broken pages, and answers to another
    request: a page at another offset or of another time window, another incident) are retried
    at most ``max_attempts`` times per request, waiting what ``ratelimit-reset``/``Retry-After``
    ask or backing off exponentially from ``base_delay_seconds``; a server asking for more than
    ``max_delay_seconds`` fails the run.
    A request no retry can change (a URL or header the client cannot build:
    ``assets.api_retry.refused_by_client``) fails at once, naming the setting to fix; a refused
    server certificate is retried, then fails naming what to fix (the CA, the certificate's
    dates, PAGERDUTY_URL's host), not retried by the step.
    A sync fails when more than ``max_quarantined_share`` of the records it receives cannot
    be loaded (see assets/api_quarantine.py).
    """

    api_token: str = Field(description="Read-only REST API token (secret: pass it as dg.EnvVar)")
    base_url: str = "https://api.pagerduty.com"
    ca_bundle_path: str | None = None
    timeout_seconds: float = 60.0
    max_attempts: int = 6
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 120.0
    max_quarantined_share: float = DEFAULT_MAX_QUARANTINED_SHARE

    def get_client(self) -> RestApiV2Client:
        # Checked before the client, whose own "must use scheme https://" (or httpx's refusal of
        # a token with a newline) would fail every attempt of a retried step (minutes) without
        # naming the variable to fix.
        base_url = checked_url(self.base_url, "PAGERDUTY_URL", "https://api.pagerduty.com")
        token = clean_setting(self.api_token, "PAGERDUTY_API_TOKEN")
        verify: ssl.SSLContext | bool = True
        if self.ca_bundle_path:
            verify = ssl.create_default_context(cafile=self.ca_bundle_path)
        client = _Client(token, base_url=base_url, verify=verify)
        client.timeout = self.timeout_seconds
        # Network errors surface at once as pagerduty.Error; call_with_retries retries them.
        client.max_network_attempts = 0
        return client

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.max_attempts, self.base_delay_seconds, self.max_delay_seconds)

    def redact(self, text: str) -> str:
        return redact(text, [self.api_token.strip()])  # the token as sent (clean_setting)

    def get_json(
        self,
        client: RestApiV2Client,
        path: str,
        params: dict | None = None,
        log: Callable[[str], None] | None = None,
        expect: Expectation | None = None,
    ) -> dict:
        """GET ``path`` and decode it, with bounded retries. A paged answer must be the page
        asked for (its offset), and ``expect`` may check more (the id asked for); an answer to
        another request (a replayed page) is retried, never trusted."""
        return self._get(client, path, params, log, expect)[0]

    def _get(self, client, path, params, log, expect) -> tuple[dict, datetime | None]:
        """The decoded answer and the API's clock when it answered (its ``Date`` header)."""
        params = dict(params or {})
        request = ApiRequest("GET", "/" + path.strip("/"), params)

        def attempt() -> tuple[dict, datetime | None]:
            try:
                response = client.get(path, params=params)
            except _RetryableStatus as status:
                raise Transient(f"HTTP {status.response.status_code}", wait_hint(status.response.headers)) from None
            except HttpError as error:  # 401, after which the client refuses to go on, or a redirect
                code = error.response.status_code
                if code == 401:
                    raise ApiError(f"{request.method} {request.path}: {_REFUSALS[401]}", status=401) from None
                raise ApiError(f"{request.method} {request.path}: HTTP {code}, a redirect; PagerDuty's API does not "
                               f"redirect: check PAGERDUTY_URL ({self.base_url})", status=code) from None
            except Exception as error:  # the client's own Error, or a request httpx could not build
                if failure := refused_by_client(error, f"{request.method} {request.path}",
                                                url_variable="PAGERDUTY_URL", header_variables="PAGERDUTY_API_TOKEN",
                                                ca_variable="SSL_CERT_FILE", ca_bundle_path=self.ca_bundle_path,
                                                clean=self.redact):
                    raise failure from None
                if not isinstance(error, PagerDutyClientError):
                    raise
                if isinstance(error.__cause__, TransportError):
                    raise Transient(f"network error ({type(error.__cause__).__name__})") from None
                raise ApiError(f"{request.method} {request.path}: {self.redact(str(error))}") from None
            if not response.is_success:
                raise ApiError(self._refusal(request, response), status=response.status_code)
            try:
                body = response.json()
            except (ValueError, UnicodeDecodeError):
                raise Transient("truncated or malformed JSON body") from None
            if not isinstance(body, dict):
                raise Transient("the body is not a JSON object")
            if "offset" in params and body.get("offset") != params["offset"]:
                raise Transient(f"asked for offset {params['offset']}, got the page at offset {body.get('offset')}")
            mismatch = expect(body) if expect else None
            if mismatch:
                raise Transient(mismatch)
            return body, _server_date(response)

        return call_with_retries(attempt, what=f"GET {request.path} {_describe(params)}".strip(),
                                 backoff=self.backoff, log=log)

    def _refusal(self, request: ApiRequest, response: Response) -> str:
        detail = self.redact(_pd_message(response))
        what = f"{request.method} {request.path} {_describe(request.params)}".strip()
        if response.status_code == 403:
            return f"{what}: " + _REFUSALS[403].format(detail=f": {detail}" if detail else "")
        return f"{what}: HTTP {response.status_code}: {detail}"

    def incident_review(self, client: RestApiV2Client, incident_id: str, log=None) -> dict | None:
        """The incident's review (PagerDuty's Incident Reviews API, `GET /incidents/{id}/review`),
        or None when it has none (404: the API answers an incident without a review, and one on
        another account, alike). The answer must be a review of that incident."""
        return self._review_part(client, f"incidents/{incident_id}/review", incident_id, "incident_review", log)

    def review_action_items(self, client: RestApiV2Client, incident_id: str, log=None) -> list | None:
        """The action items of the incident's review (`GET /incidents/{id}/review/action_items`),
        or None when the incident has no review (404); each must be an item of that incident."""
        return self._review_part(client, f"incidents/{incident_id}/review/action_items", incident_id, "action_items",
                                 log)

    def _review_part(self, client, path: str, incident_id: str, key: str, log):
        try:
            return self.get_json(client, path, log=log, expect=_of_incident(key, incident_id))[key]
        except ApiError as error:
            if error.status == 404:
                return None
            raise unavailable(error, REVIEWS_UNAVAILABLE, ReviewsUnavailable) from None

    def iter_all(self, client: RestApiV2Client, path: str, log=None) -> Iterator[dict]:
        """Every record of an offset-paged directory endpoint (teams, services). An account
        without Teams (TEAMS_UNAVAILABLE) raises TeamsUnavailable for `/teams`."""
        entity = path.strip("/").split("/")[-1]
        params = {"limit": PAGE_SIZE, "offset": 0}
        while True:
            try:
                page = self.get_json(client, path, params, log, _listing(entity))
            except ApiError as error:
                if entity == "teams":
                    raise unavailable(error, TEAMS_UNAVAILABLE, TeamsUnavailable) from None
                raise
            yield from page[entity]
            if not page.get("more"):
                return
            params["offset"] += len(page[entity])
            if params["offset"] + params["limit"] > OFFSET_CAP:
                raise ApiError(f"{path}: more than {OFFSET_CAP} records; the API cannot page past that")

    def iter_window(
        self,
        client: RestApiV2Client,
        path: str,
        since: datetime,
        log: Callable[[str], None] | None = None,
    ) -> Iterator[WindowPage]:
        """Every record of ``path`` created from ``since`` to the API's "now", page by page.

        "Now" is the API's clock (the ``Date`` header of the first answer), not the worker's,
        so a skewed clock cannot skip records, and no request is spent only on reading it.
        Windows are at most 180 days (inside the six-month span limit), so an empty stretch
        of history costs one request per 180 days. A window whose total exceeds the
        10,000-record offset cap is shrunk, in proportion to how full it was, until it fits
        (down to one second; a second over the cap fails, naming it), so nothing is silently
        cut off; each next window is sized from the density of the
        last one, aiming at 80% of the cap. When the API leaves the total null (its default)
        and more records follow the first page, one request for the last record paging can
        reach (offset 9,999, limit 1) tells whether the window holds more than the cap: then
        it is halved until it fits. No request asks past the cap.

        Window bounds are whole seconds, as the API's since/until are sent: the page check and
        the mark (``window_done``) use exactly the bounds the request sent (a ``since`` within
        a second starts at that second).
        """
        start, length, now = _whole_second(since), MAX_WINDOW, None
        while now is None or start < now:
            end = _window_end(start, length, now)
            params = _window_params(start, end, total=True)
            first, answered_at = self._get(client, path, params, log, _window(path, start, end))
            now = now or _whole_second(answered_at or datetime.now(UTC))
            total = first.get("total")
            known = isinstance(total, int) and not isinstance(total, bool)
            try:
                if known and total > OFFSET_CAP:
                    raise _OverCap(total)
                if not known and first.get("more") and self._beyond_cap(client, path, start, end, log):
                    raise _OverCap(None)
                seen = 0
                for page in self._pages(client, path, start, end, min(end, now), first, log):
                    seen += len(page.records)
                    yield page
                total = total if known else seen
            except _OverCap as over:
                # Narrowed before any page is read, unless the window outgrew the cap while it
                # was paged (records created meanwhile): the narrower windows then list again
                # what it yielded, which the upserts absorb.
                if end - start <= MIN_WINDOW:
                    raise ApiError(
                        f"{over.describe(path)} created in the one second from {_iso(start)}: more than the "
                        f"{OFFSET_CAP} records PagerDuty's offset paging reaches (offset + limit <= {OFFSET_CAP}), and "
                        "since/until take whole seconds, so no narrower window can split them. The records before "
                        "that second are loaded; the sync stops at this second on every run rather than load it in "
                        "part. No setting changes this, and PagerDuty documents no other listing that reaches them "
                        "all (team_ids[] needs the teams ability and leaves out records of no team): report it, "
                        "with this message, to the maintainers of this pipeline"
                    ) from None
                length = max(MIN_WINDOW, _resized(end - start, over.total))
                if log:
                    log(f"{path}: {over.describe(path)} in {_iso(start)}..{_iso(end)}, over the "
                        f"{OFFSET_CAP} cap; narrowing the window")
                continue
            start, length = end, min(MAX_WINDOW, max(MIN_WINDOW, _resized(end - start, total)))

    def _beyond_cap(self, client, path, since, until, log) -> bool:
        """Whether the window ``[since, until)`` holds more records than offset paging reaches:
        the last reachable record's page says more follow."""
        params = {**_window_params(since, until, total=False), "offset": OFFSET_CAP - 1, "limit": 1}
        return bool(self.get_json(client, path, params, log, _window(path, since, until)).get("more"))

    def _pages(self, client, path, since, until, done, first, log) -> Iterator[WindowPage]:
        """The pages of the window ``[since, until)`` from its ``first``; raises _OverCap when
        more follow than the offset cap lets a request reach."""
        entity = path.strip("/").split("/")[-1]
        params = _window_params(since, until, total=True)
        page = first
        while True:
            request = ApiRequest("GET", "/" + path.strip("/"), dict(params))
            if not page.get("more"):
                yield WindowPage(page[entity], request, window_done=done)
                return
            offset = params["offset"] + len(page[entity])
            if offset >= OFFSET_CAP:
                raise _OverCap(None)
            yield WindowPage(page[entity], request)
            params = {**_window_params(since, until, total=False), "offset": offset,
                      "limit": min(PAGE_SIZE, OFFSET_CAP - offset)}
            page = self.get_json(client, path, params, log, _window(path, since, until))


class _OverCap(Exception):
    """A window holds more records than offset paging reaches: ``total`` when the API said,
    None when its pages reached the cap with more to come."""

    def __init__(self, total: int | None):
        super().__init__(total)
        self.total = OFFSET_CAP + 1 if total is None else total
        self.said = total is not None

    def describe(self, path: str) -> str:
        return f"{self.total if self.said else f'more than {OFFSET_CAP}'} {path.strip('/')}"


def _listing(entity: str) -> Expectation:
    """A page of ``entity`` records; one saying more follow must hold some."""

    def check(body: dict) -> str | None:
        records = body.get(entity)
        if not isinstance(records, list):
            return f"the answer holds no '{entity}' list"
        if body.get("more") and not records:
            return f"the page at offset {body.get('offset')} says more {entity} follow but holds none"
        return None

    return check


def _of_incident(key: str, incident_id: str) -> Expectation:
    """An answer carrying ``key`` (the review, or its list of action items) of ``incident_id``:
    a review or item naming another incident answers another request."""

    def check(body: dict) -> str | None:
        value = body.get(key)
        records = value if isinstance(value, list) else [value]
        if not isinstance(value, list | dict):
            return f"the answer holds no '{key}'"
        others = sorted({str(r.get("incident_id")) for r in records if isinstance(r, dict)
                         and r.get("incident_id") not in (None, incident_id)})
        if others:
            return f"asked for the review of incident {incident_id}, got that of {', '.join(others)}"
        return None

    return check


def _window(path: str, since: datetime, until: datetime) -> Expectation:
    """A page of records created in ``[since, until]``: a page all of whose records were
    created elsewhere answers another window's request. PagerDuty does not say whether
    ``until`` is inclusive (developer-docs#74): a last page holding only records created at
    exactly ``until`` is this window's (the next window lists them again; the upserts absorb
    them)."""
    entity = path.strip("/").split("/")[-1]
    listing = _listing(entity)

    def check(body: dict) -> str | None:
        if problem := listing(body):
            return problem
        created = [instant(record.get("created_at")) for record in body[entity] if isinstance(record, dict)]
        known = [moment for moment in created if moment is not None]
        if known and not any(since <= moment <= until for moment in known):
            return (f"asked for records created in {_iso(since)}..{_iso(until)}, got a page of records created "
                    f"{_iso(min(known))}..{_iso(max(known))}")
        return None

    return check


def instant(text: object) -> datetime | None:
    """An ISO 8601 date-time with seconds and an offset, as PagerDuty renders them (in UTC or
    the account's zone), in UTC; None for anything else (staging could not read it either)."""
    if not isinstance(text, str) or not _DATE_TIME.fullmatch(text):
        return None
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


def _server_date(response: Response) -> datetime | None:
    try:
        return parsedate_to_datetime(response.headers["Date"]).astimezone(UTC)
    except (KeyError, TypeError, ValueError):
        return None


def _window_end(start: datetime, length: timedelta, now: datetime | None) -> datetime:
    """Where the window from ``start`` ends: ``length`` later, never past the API's "now";
    before that is known, never further past the worker's clock than CLOCK_SKEW_ALLOWANCE
    (unless the worker's clock is behind ``start`` itself)."""
    if now is not None:
        return min(start + length, now)
    horizon = datetime.now(UTC).replace(microsecond=0) + CLOCK_SKEW_ALLOWANCE
    return min(start + length, horizon) if horizon > start else start + length


def _resized(length: timedelta, total: int) -> timedelta:
    """A window length that would hold about 80% of the offset cap at this density, in whole
    seconds (the API's since/until have no fractions)."""
    if total == 0:
        return MAX_WINDOW
    resized = min(length * (0.8 * OFFSET_CAP / total), length / 2 if total > OFFSET_CAP else MAX_WINDOW)
    return timedelta(seconds=int(resized.total_seconds()))


def _whole_second(moment: datetime) -> datetime:
    """``moment`` in UTC, down to the second: a bound as the API's since/until send it."""
    return moment.astimezone(UTC).replace(microsecond=0)


def _window_params(since: datetime, until: datetime, *, total: bool) -> dict:
    return {"since": _iso(since), "until": _iso(until), "limit": PAGE_SIZE, "offset": 0, "total": str(total).lower()}


def _describe(params) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items() if k in ("since", "until", "offset"))


def _pd_message(response: Response) -> str:
    try:
        error = response.json().get("error", {})
        return "; ".join([str(error.get("message", "")), *map(str, error.get("errors", []))]).strip("; ")[:500]
    except (ValueError, AttributeError, TypeError):
        return response.reason_phrase


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
