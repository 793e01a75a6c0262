"""Bounded, header-aware retries for the API resources (PagerDuty and Jira).

Both official clients retry on their own: ``pagerduty`` forever on 429 with a growing sleep
that ignores ``ratelimit-reset``, ``jira`` a few times on 429/503. The resources switch that
off and call through ``call_with_retries`` instead, so every transient failure (429 with or
without rate-limit headers, 5xx, timeouts and broken connections, truncated or replayed
pages) gets the same bounded treatment: wait what the server asks (``ratelimit-reset`` or
``Retry-After``) or back off exponentially, at most ``max_attempts`` times, then fail the
run with an error that says what happened. A request that no retry can change (a URL or header
the client cannot build: ``refused_by_client``) fails at once, naming what to fix; a server
certificate the client refuses is retried like a network fault (one node of a pool may serve a
stale one) but, still refused after the last attempt, fails naming what to fix too, and the
step is not retried. Error text taken from a response (a body that
echoes the request's headers, as some proxies do) goes through ``redact`` first, so
credentials stay out of logs, run metadata and the quarantine.
"""

from __future__ import annotations

import base64
import re
import ssl
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
import httpx2
import requests
from urllib3.exceptions import LocationValueError

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
    not https:// with a host, or that has a path, a query, a fragment or a port that is not one, or
    None. The step fails at once and RetryPolicy does not repeat it: the URL will not change
    between attempts, and retried it only looks like a network outage (an https-only server
    refuses the connection) or, for PagerDuty, the client's own "must use scheme https://". The
    services this reads (api.pagerduty.com, a Jira Cloud site, a Qualtrics data centre) answer
    at the host's root, and the resources add the API's paths themselves: a path copied from a
    browser or a doc (``/api/v2``, ``/jira/software/projects``) would only give 404s naming no
    variable."""
    try:
        parts = urlsplit(url)
        try:
            _ = parts.port
        except ValueError as error:  # one clients refuse ("Invalid port") or wrap round to another (httpx: 99999)
            return dg.Failure(
                description=f"{variable} has a port that is not one ({error}): {url!r}. Nothing was requested: set "
                            f"{variable} ({example}) and run again.",
                allow_retries=False,
            )
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


# What a client raises for a request it cannot build or will not send, before anything reaches
# the server: every attempt would build the same request. A URL: a port out of range, a host with
# an empty label or a character IDNA refuses, a scheme (a proxy's: socks:// without its extra) the
# client cannot speak. A header: a character HTTP cannot carry (UnicodeEncodeError: a typographic
# quote or dash pasted into a token), a value h11 refuses (LocalProtocolError: httpcore turns h11's
# into its own, which httpx's is, only while building the request line and headers; a connection
# state h11 refuses would come as h11's own and is no header problem).
_BAD_URL = (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema,
            LocationValueError, httpx2.InvalidURL, httpx2.UnsupportedProtocol)
_BAD_HEADER = (requests.exceptions.InvalidHeader, httpx2.LocalProtocolError, UnicodeEncodeError)


def refused_by_client(error: BaseException, what: str, *, url_variable: str, header_variables: str,
                      ca_variable: str, ca_bundle_path: str | None,
                      clean: Callable[[str], str]) -> ApiError | Transient | None:
    """What the client refused in request ``what`` that raised ``error`` (or an error it was
    raised from), else None (a network fault: retry it). A URL the client cannot build names
    ``url_variable`` (and the proxy variables, which the client also reads); a header it cannot
    send, ``header_variables``: both fail at once (an ``ApiError``, not retryable). A server
    certificate it refuses (CERTIFICATE_VERIFY_FAILED) is a ``Transient`` whose ``final`` says
    what to fix (``certificate_problem``): retried, as one node of a pool may serve a stale
    certificate or a gateway intercept for a moment, and reported, not retryable, when the last
    attempt is refused too. Other TLS failures (a handshake cut short) stay network faults.
    ``clean`` redacts the client's text, which may quote a header."""
    for cause in _chain(error):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Transient(f"TLS certificate refused ({cause.verify_message})", final=certificate_problem(
                cause, url_variable=url_variable, ca_variable=ca_variable, ca_bundle_path=ca_bundle_path))
        detail = clean(f"{type(cause).__name__}: {cause}")[:300]
        idna = isinstance(cause, UnicodeError) and (getattr(cause, "encoding", None) == "idna" or "idna" in str(cause))
        if isinstance(cause, _BAD_HEADER) and not idna:
            return ApiError(
                f"{what}: the request cannot be sent ({detail}): check {header_variables} for a character an HTTP "
                "header cannot carry (a typographic quote or dash copied from a document?). Not retried: every "
                "attempt would build the same request.")
        if isinstance(cause, _BAD_URL) or idna:
            return ApiError(
                f"{what}: the request cannot be sent ({detail}): check {url_variable} (and HTTPS_PROXY, if set). "
                "Not retried: every attempt would build the same request.")
    return None


# OpenSSL's verification results (X509_V_ERR_*, ``SSLCertVerificationError.verify_code``). Dates
# and host names a CA bundle cannot change; a CA the client does not know (the issuer's certificate
# not found, locally or at all, nor the leaf's signer; a self-signed certificate or one in the
# chain) it can. Any other (revoked, a bad signature, a wrong purpose) is the certificate's fault.
_NOT_YET_VALID, _EXPIRED = 9, 10
_HOST_MISMATCH, _IP_MISMATCH = 62, 64
_UNKNOWN_CA = {2, 18, 19, 20, 21}


def certificate_problem(error: ssl.SSLCertVerificationError, *, url_variable: str, ca_variable: str,
                        ca_bundle_path: str | None) -> str:
    """What to fix for a server certificate the client refused, by OpenSSL's reason: renew an
    expired one (or set the clock), name a host the certificate covers in ``url_variable``, or,
    for a CA the client does not know (a proxy that inspects TLS shows its own), the PEM file of
    that CA in the resource's ``ca_bundle_path`` when set, else in ``ca_variable`` (the variable
    its HTTP library reads)."""
    code, reason = error.verify_code, error.verify_message
    refused = f"the server's TLS certificate is refused ({reason})"
    clock = f"this machine's clock (it reads {datetime.now(UTC):%Y-%m-%d %H:%M} UTC)"
    if code == _EXPIRED:
        return (f"{refused}: its owner must renew it (behind a proxy that inspects TLS, the certificate is the "
                f"proxy's: tell your IT department); if the certificate is current, set {clock} right. No CA bundle "
                "or setting here changes this.")
    if code == _NOT_YET_VALID:
        return (f"{refused}: if {clock} is behind, set it right (NTP); else the certificate's owner must install one "
                "valid today. No CA bundle or setting here changes this.")
    if code in (_HOST_MISMATCH, _IP_MISMATCH):
        return (f"{refused}: it does not cover the host {url_variable} names. Set {url_variable} to a host the "
                "certificate names (the service's own host name, not an alias or an IP address) and run again.")
    if code in _UNKNOWN_CA:
        where = f"the resource's ca_bundle_path (now {ca_bundle_path})" if ca_bundle_path else ca_variable
        return (f"the server's TLS certificate is not trusted ({reason}). Behind a proxy that inspects TLS (as on "
                f"many corporate networks) the certificate is the proxy's: set {where} to a PEM file holding its CA "
                f"certificate (your IT department has it) and run again; otherwise check {url_variable}.")
    return (f"{refused}: the certificate itself is at fault, which its owner must fix (behind a proxy that inspects "
            f"TLS, your IT department); check that {url_variable} names the service.")


def _chain(error: BaseException | None) -> Iterator[BaseException]:
    """``error`` and the errors it was raised from, outermost first."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


@dataclass(frozen=True)
class Transient(Exception):
    """A failure worth retrying; ``wait_seconds`` is the server's own hint, if any. ``final``,
    if set, is what the failure means when the last attempt fails so (a refused certificate:
    what to fix): the run then fails naming it, and Dagster's RetryPolicy does not repeat the
    step, as minutes later it would be refused alike until that is done."""

    reason: str
    wait_seconds: float | None = None
    final: str | None = None

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
    times in all; then the run fails, retryable by the step unless the last failure has a
    ``final`` meaning. A server asking for a longer wait than ``max_delay_seconds`` fails at
    once: retrying earlier would only be refused again."""
    for attempt in range(1, backoff.max_attempts + 1):
        try:
            return call()
        except Transient as failure:
            if attempt == backoff.max_attempts:
                if failure.final:
                    raise ApiError(f"{what}: still failing after {attempt} attempts: {failure.final} The step is not "
                                   "retried: until this is fixed, it would fail alike.") from None
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
