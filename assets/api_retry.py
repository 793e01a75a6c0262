"""Bounded, header-aware retries for the API resources (PagerDuty and Jira).

Both official clients retry on their own: ``pagerduty`` forever on 429 with a growing sleep
that ignores ``ratelimit-reset``, ``jira`` a few times on 429/503. The resources switch that
off and call through ``call_with_retries`` instead, so every transient failure (429 with or
without rate-limit headers, 5xx, timeouts and broken connections, truncated or replayed
pages) gets the same bounded treatment: wait what the server asks (``ratelimit-reset`` or
``Retry-After``) or back off exponentially, at most ``max_attempts`` times, then fail the
run with an error that says what happened. Error text taken from a response (a body that
echoes the request's headers, as some proxies do) goes through ``redact`` first, so
credentials stay out of logs, run metadata and the quarantine.
"""

from __future__ import annotations

import base64
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar
from urllib.parse import quote, urlsplit

import dagster as dg

T = TypeVar("T")

# Dagster retries a failed API step after 30 s, 90 s, 210 s: a second line of defence for
# outages longer than the client-level retries cover. The sync state makes a retry resume.
API_ASSET_RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL)


class ApiError(RuntimeError):
    """An API call failed for good: refused (``retryable`` False: bad credentials, a bad
    request) or still failing after the bounded retries (a later run step may succeed).
    ``status`` is the HTTP status of a refusal, if there was one."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status


# The value of an Authorization header, wherever a body or message repeats it: "Authorization:
# Token token=...", "'authorization': 'Basic ...'", "Bearer ...".
_AUTHORIZATION = re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,;}]+")
_CREDENTIAL = re.compile(r"(?i)\b(token token=|basic |bearer )[\w+/=.~-]+")
REDACTED = "[redacted]"


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` without ``secrets`` (nor their base64 or URL-encoded forms, as HTTP Basic
    and query strings carry them) and without the value of any Authorization header."""
    for secret in sorted(secrets, key=len, reverse=True):
        if not secret:
            continue
        encoded = base64.b64encode(secret.encode()).decode()
        for form in {secret, encoded, encoded.rstrip("="), quote(secret, safe="")}:
            text = text.replace(form, REDACTED)
    text = _AUTHORIZATION.sub(lambda match: match.group(1) + REDACTED, text)
    return _CREDENTIAL.sub(lambda match: match.group(1) + REDACTED, text)


@contextmanager
def failing_clearly() -> Iterator[None]:
    """Turn a refused API call into a Dagster failure the RetryPolicy does not repeat (the
    same token would be refused again); exhausted retries stay retryable."""
    try:
        yield
    except ApiError as error:
        if error.retryable:
            raise
        raise dg.Failure(description=str(error), allow_retries=False) from None


def clean_setting(value: str, variable: str) -> str:
    """``value``, the setting ``variable`` (a URL, a token, an email, a survey id), without the
    whitespace around it: a secret file or a Kubernetes secret ends in a newline, which sent on
    would fail every attempt as a "network error" (an invalid header or URL) or a bare 401.
    Whitespace or a control character inside it, or quotes around it (docker --env-file keeps
    them, as does a secret file written with them), fail at once, naming the variable and the character, never the value
    (it may be a token); RetryPolicy does not repeat the step: the value will not change."""
    text = value.strip()
    problem = None
    if not text:
        problem = "is empty" + (" (only whitespace)" if value else "")
    elif text[0] in "\"'" or text[-1] in "\"'":
        problem = ("starts or ends with a quote, which is kept as part of the value (docker --env-file does not "
                   "remove quotes, nor does a secret file): remove them")
    else:
        for position, character in enumerate(text, 1):
            if character.isspace() or unicodedata.category(character) in ("Cc", "Cf"):
                problem = (f"holds {_character_name(character)} at character {position} of {len(text)}: "
                           "whitespace around a value is ignored, inside it never is")
                break
    if problem is None:
        return text
    raise dg.Failure(description=f"{variable} {problem}. Nothing was requested: set {variable} and run again.",
                     allow_retries=False)


def _character_name(character: str) -> str:
    names = {"\n": "a line break (\\n)", "\r": "a carriage return (\\r)", "\t": "a tab", " ": "a space"}
    kind = "whitespace" if character.isspace() else "an invisible character"
    return names.get(character, f"{kind} U+{ord(character):04X}")


def https_url_failure(url: str, variable: str, example: str) -> dg.Failure | None:
    """The failure for an API base URL (set by ``variable``, already ``clean_setting``) that is
    not https:// with a host, or that has a path, a query or a fragment, or None. The step fails
    at once and RetryPolicy does not repeat it: the URL will not change between attempts, and
    retried it only looks like a network outage (an https-only server refuses the connection)
    or, for PagerDuty, the client's own "must use scheme https://". The services this reads
    (api.pagerduty.com, a Jira Cloud site, a Qualtrics data centre) answer at the host's root,
    and the resources add the API's paths themselves: a path copied from a browser or a doc
    (``/api/v2``, ``/jira/software/projects``) would only give 404s naming no variable."""
    try:
        parts = urlsplit(url)
        if parts.scheme.lower() == "https" and parts.hostname:
            extra = parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "") + (
                f"#{parts.fragment}" if parts.fragment else "")
            if not extra:
                return None
            return dg.Failure(
                description=f"{variable} must have no path after the host ({example}): the pipeline adds the "
                            f"API's paths itself, and {url!r} has {extra!r}. Nothing was requested: set {variable} "
                            f"to https://{parts.netloc} and run again.",
                allow_retries=False,
            )
    except ValueError:  # not a URL at all ("https://[host")
        pass
    return dg.Failure(
        description=f"{variable} must be an https:// URL with a host ({example}; the local sandbox serves "
                    f"https too), not {url!r}. Nothing was requested: set {variable} and run again.",
        allow_retries=False,
    )


def checked_url(url: str, variable: str, example: str) -> str:
    """The API base URL ``url`` of ``variable``, cleaned (``clean_setting``), or the failure of
    ``https_url_failure`` raised."""
    url = clean_setting(url, variable)
    if failure := https_url_failure(url, variable, example):
        raise failure
    return url


def api_root(url: str) -> str:
    """An API base URL as the warehouse records where its records came from: scheme, host and
    path, without the port (the services have none, and the sandbox's changes between runs) or a
    trailing slash."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme.lower()}://{parts.hostname or ''}{parts.path.rstrip('/')}"


def source_changed_failure(records: str, variable: str, stored: str, now: str, same_source_fix: str) -> dg.Failure:
    """The failure of a sync whose API root (``variable``) is not the one the warehouse's
    ``records`` came from: ids are per account or site, so the two would mix (another site's
    issue taken for a held one with the same id, an account's incidents never fetched behind
    the other's high-water mark)."""
    return dg.Failure(allow_retries=False, description=(
        f"{variable} is {now}, but this warehouse's {records} came from {stored}. A warehouse holds one account or "
        f"site: their ids and sync marks would mix. Set {variable} back to {stored}, or point PSAFE_WAREHOUSE at a "
        f"new warehouse file for the other one. If it is the same one at a new address, {same_source_fix}. "
        "Nothing was requested or written."))


@dataclass(frozen=True)
class Transient(Exception):
    """A failure worth retrying; ``wait_seconds`` is the server's own hint, if any."""

    reason: str
    wait_seconds: float | None = None

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class Backoff:
    max_attempts: int = 6
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 120.0

    def delay(self, attempt: int, hint: float | None) -> float:
        if hint is not None:
            return max(hint, 0.0)
        return min(self.max_delay_seconds, self.base_delay_seconds * 2 ** (attempt - 1))


def wait_hint(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait per ``ratelimit-reset`` (PagerDuty) or ``Retry-After`` (seconds or an
    HTTP date); None when the response says nothing."""
    for name in ("ratelimit-reset", "Retry-After"):
        value = headers.get(name)
        if value is None:
            continue
        value = value.strip()
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            continue
    return None


def call_with_retries(
    call: Callable[[], T],
    *,
    what: str,
    backoff: Backoff,
    log: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``call()``, retried while it raises ``Transient``, at most ``backoff.max_attempts``
    times in all. A server asking for a longer wait than ``max_delay_seconds`` fails at
    once: retrying earlier would only be refused again."""
    for attempt in range(1, backoff.max_attempts + 1):
        try:
            return call()
        except Transient as failure:
            if attempt == backoff.max_attempts:
                raise ApiError(f"{what}: still failing after {attempt} attempts ({failure.reason})",
                               retryable=True) from None
            delay = backoff.delay(attempt, failure.wait_seconds)
            if delay > backoff.max_delay_seconds:
                raise ApiError(
                    f"{what}: {failure.reason}; the server asks to wait {delay:.0f} s, longer than the "
                    f"{backoff.max_delay_seconds:.0f} s this run waits. Try again later.", retryable=True
                ) from None
            if log:
                log(f"{what}: {failure.reason}; attempt {attempt}/{backoff.max_attempts}, retrying in {delay:.2f} s")
            sleep(delay)
    raise AssertionError("unreachable")
