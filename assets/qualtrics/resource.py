"""The Qualtrics response-export API (v3) as a Dagster resource.

Start an export, poll its progress, download the ZIP and unzip its CSV: the three calls of
Qualtrics' documented export flow. Every call is bounded by ``assets.api_retry``: 429 and
5xx are retried (waiting what ``Retry-After`` asks, else backing off), an export that ends
``failed`` is started again, a refused token fails the run at once naming the variable, as does
a request no retry can change (a URL or header the client cannot build:
``assets.api_retry.refused_by_client``); a refused server certificate is retried, then fails
naming what to fix (the CA: REQUESTS_CA_BUNDLE; the certificate's dates; QUALTRICS_URL's host).
The token comes from the environment only (QUALTRICS_API_TOKEN) and never reaches a log: it is
sent only to an https:// QUALTRICS_URL, and taken out of any error text an answer carries.
"""

from __future__ import annotations

import io
import time
import zipfile
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import dagster as dg
import requests

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


class QualtricsResource(dg.ConfigurableResource):
    """``base_url`` is the data centre's API root (QUALTRICS_URL, e.g.
    ``https://yourorg.eu.qualtrics.com``); ``api_token`` (QUALTRICS_API_TOKEN) a token with
    response-export rights; ``survey_ids`` (QUALTRICS_SURVEY_IDS) the surveys to export,
    comma-separated. Whitespace around each is ignored; whitespace or quotes inside or around one
    fail at once, naming its variable (``assets.api_retry.clean_setting``), as does a URL with a
    path (the resource adds ``/API/v3``)."""

    base_url: str
    api_token: str
    survey_ids: str
    ca_bundle_path: str | None = None
    max_attempts: int = 6
    base_delay_seconds: float = 1.0
    max_delay_seconds: float = 120.0
    poll_seconds: float = 1.0
    max_polls: int = 600
    timeout_seconds: float = 60.0

    @property
    def surveys(self) -> list[str]:
        return [clean_setting(s, "QUALTRICS_SURVEY_IDS") for s in self.survey_ids.split(",") if s.strip()]

    def _backoff(self) -> Backoff:
        return Backoff(self.max_attempts, self.base_delay_seconds, self.max_delay_seconds)

    def _request(self, method: str, path: str, log, **kwargs) -> requests.Response:
        # Checked before every request: the token travels in a header, in clear over http://.
        base_url = checked_url(self.base_url, "QUALTRICS_URL",
                               "your data centre's API root, https://<org>.<datacentre>.qualtrics.com")
        token = clean_setting(self.api_token, "QUALTRICS_API_TOKEN")
        url = f"{base_url.rstrip('/')}/API/v3{path}"

        def call() -> requests.Response:
            try:
                response = requests.request(method, url, headers={"X-API-TOKEN": token}, timeout=(
                    10, self.timeout_seconds), verify=self.ca_bundle_path or True, **kwargs)
            except (requests.RequestException, ValueError) as error:  # ValueError: a URL or header not built
                if failure := refused_by_client(error, f"Qualtrics {method} {path}", url_variable="QUALTRICS_URL",
                                                header_variables="QUALTRICS_API_TOKEN",
                                                ca_variable="REQUESTS_CA_BUNDLE", ca_bundle_path=self.ca_bundle_path,
                                                clean=lambda text: redact(text, [token])):
                    raise failure from None
                if not isinstance(error, (requests.ConnectionError, requests.Timeout)):
                    raise
                raise Transient(f"{type(error).__name__} talking to Qualtrics") from None
            if response.status_code == 429 or response.status_code >= 500:
                raise Transient(f"HTTP {response.status_code}", wait_hint(response.headers))
            if response.status_code == 401:
                raise ApiError("Qualtrics refused the API token (401): set QUALTRICS_API_TOKEN to a token with "
                               "response-export rights for these surveys")
            if response.status_code >= 400:
                # A gateway's error body may repeat the request's headers, the token among them.
                raise ApiError(f"Qualtrics {method} {path}: HTTP {response.status_code}: "
                               f"{redact(_message(response), [token])}")
            return response

        return call_with_retries(call, what=f"Qualtrics {method} {path}", backoff=self._backoff(), log=log)

    def export_responses(self, survey_id: str, start: datetime | None, log=None) -> tuple[bytes, datetime]:
        """The CSV of ``survey_id``'s responses recorded since ``start`` (UTC; None: all), and
        the moment the export began by Qualtrics' clock (its Date header): the next export
        starts there, so a worker's clock never decides what is skipped."""
        for attempt in range(1, self.max_attempts + 1):
            body = {"format": "csv", "useLabels": False, **({"startDate": _iso(start)} if start else {})}
            started = self._request("POST", f"/surveys/{survey_id}/export-responses", log, json=body)
            began = parse_http_date(started.headers.get("Date"))
            if began is None:
                raise ApiError("Qualtrics answered without a Date header: cannot tell where this export ends")
            progress_id = started.json()["result"]["progressId"]
            for _ in range(self.max_polls):
                progress = self._request("GET", f"/surveys/{survey_id}/export-responses/{progress_id}", log).json()
                status = progress["result"]["status"]
                if status in ("complete", "failed"):
                    break
                time.sleep(self.poll_seconds)
            else:
                raise ApiError(f"Qualtrics export {progress_id} of {survey_id} did not finish in {self.max_polls} polls",
                               retryable=True)
            if status == "complete":
                archive = self._request(
                    "GET", f"/surveys/{survey_id}/export-responses/{progress['result']['fileId']}/file", log)
                return _unzipped_csv(archive.content, survey_id), began.astimezone(UTC).replace(tzinfo=None)
            if log:
                log(f"Qualtrics export {progress_id} of {survey_id} failed; starting it again "
                    f"(attempt {attempt}/{self.max_attempts})")
        raise ApiError(f"Qualtrics export of {survey_id} failed {self.max_attempts} times in a row", retryable=True)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _message(response: requests.Response) -> str:
    try:
        return response.json()["meta"]["error"]["errorMessage"]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]


def _unzipped_csv(data: bytes, survey_id: str) -> bytes:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if n.lower().endswith((".csv", ".tsv"))]
            if len(names) != 1:
                raise ApiError(f"Qualtrics export of {survey_id}: expected one CSV in the ZIP, found {archive.namelist()}",
                               retryable=True)
            return archive.read(names[0])
    except zipfile.BadZipFile:
        raise ApiError(f"Qualtrics export of {survey_id}: the download is not a complete ZIP file",
                       retryable=True) from None


def parse_http_date(value: str | None) -> datetime | None:
    try:
        return parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
