"""Qualtrics response-export API v3 (read-only) over a synthetic organisation's survey.

What a client of ``https://<datacenter>.qualtrics.com/API/v3`` meets, as Qualtrics documents
it (api.qualtrics.com: "Start Response Export", "Get Response Export Progress", "Get
Response Export File"; the flow as ropensci/qualtRics R/fetch_survey.R implements it):

- ``POST /API/v3/surveys/{surveyId}/export-responses`` with ``{"format": "csv", "startDate",
  "endDate", "useLabels", "compress"}`` answers ``{"result": {"progressId", "percentComplete",
  "status": "inProgress"}, "meta": {"httpStatus": "200 - OK", "requestId"}}``;
- ``GET .../export-responses/{exportProgressId}`` reports ``percentComplete`` rising and then
  ``status: "complete"`` with a ``fileId`` (or ``status: "failed"``);
- ``GET .../export-responses/{fileId}/file`` returns a ZIP holding one CSV in the three-header
  layout (field names; question texts, a matrix row as "stem - statement"; ImportId JSON);
- the token goes in ``X-API-TOKEN``; errors are ``{"meta": {"httpStatus": "401 - Unauthorized",
  "error": {"errorMessage", "errorCode"}}}``; too many requests get 429 (per-endpoint limits).

``startDate`` is inclusive and ``endDate`` exclusive, both ISO 8601 in UTC; responses are
exported by their RecordedDate. ``fail_exports(n)`` makes the next n exports end ``failed``.
"""

from __future__ import annotations

import csv
import io
import threading
import uuid
import zipfile
from datetime import UTC, datetime
from http import HTTPStatus

from werkzeug.wrappers import Request, Response

from pipelines.sandbox import JsonApi, RequestCounter, json_response
from pipelines.sandbox.pagerduty import FixedWindowRateLimiter
from pipelines.synthetic.model import Organisation

API = "/API/v3"
SURVEY_ID = "SV_psafeTeamSafety"
SURVEY_NAME = "Team psychological safety"
STEM = "How much do you agree with each statement about your team?"
# Per-minute limits of the export endpoints (Qualtrics publishes one per endpoint).
RATE_LIMITS = {"start": 100, "progress": 1000, "file": 100}
PROGRESS_STEP = 50.0


def _error(status: int, reason: str, message: str, code: str) -> Response:
    return json_response({"meta": {"httpStatus": f"{status} - {reason}", "requestId": str(uuid.uuid4()),
                                   "error": {"errorMessage": message, "errorCode": code}}}, status)


def _ok(result: dict) -> Response:
    return json_response({"result": result, "meta": {"httpStatus": "200 - OK", "requestId": str(uuid.uuid4())}})


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _iso(text: str) -> datetime:
    return _naive_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


class QualtricsApi(JsonApi):
    def __init__(self, org: Organisation, *, token: str, count_request: RequestCounter, as_of: datetime | None = None):
        super().__init__(
            [
                ("POST", f"{API}/surveys/{{surveyId}}/export-responses", self._start),
                ("GET", f"{API}/surveys/{{surveyId}}/export-responses/{{exportProgressId}}", self._progress),
                ("GET", f"{API}/surveys/{{surveyId}}/export-responses/{{fileId}}/file", self._file),
            ],
            count_request, org, as_of,
        )
        self._token = token
        self._lock = threading.Lock()
        self._exports: dict[str, dict] = {}
        self._files: dict[str, bytes] = {}
        self._failures_armed = 0
        self._limiters = {name: FixedWindowRateLimiter(limit, 60) for name, limit in RATE_LIMITS.items()}
        self._render(org)

    def fail_exports(self, times: int = 1) -> None:
        """The next ``times`` exports end with status "failed" (Qualtrics' export failures)."""
        with self._lock:
            self._failures_armed += times

    def _render(self, org: Organisation) -> None:
        self._responses = sorted((row for row in org.survey_rows
                                  if datetime.fromisoformat(row["submitted_at"]) < _naive_utc(self._as_of)),
                                 key=lambda row: row["submitted_at"])
        self._items = [key for key in (org.survey_rows[0] if org.survey_rows else {})
                       if key not in ("response_id", "submitted_at", "team")]

    def unauthorized(self) -> Response:
        return _error(401, "Unauthorized", "Invalid or missing API token.", "AUTH_6.0")

    def rate_limited(self, wait_seconds: int, with_headers: bool) -> Response:
        response = _error(429, "Too Many Requests", "Too many requests, please slow down.", "RATE_LIMIT_EXCEEDED")
        if with_headers:
            response.headers["Retry-After"] = str(wait_seconds)
        return response

    def error(self, status: int, message: str) -> Response:
        return _error(status, HTTPStatus(status).phrase, message, "GS_0")

    def handle(self, request: Request, handler, args: dict[str, str]) -> Response:
        if request.headers.get("X-API-TOKEN") != self._token:
            return self.unauthorized()
        if handler is None:
            return _error(404, "Not Found", f"No such resource: {request.path}", "GS_1")
        if args.get("surveyId") != SURVEY_ID:
            return _error(404, "Not Found", f"Survey {args.get('surveyId')} not found.", "RP_0.1")
        endpoint = "start" if request.method == "POST" else "file" if "fileId" in args else "progress"
        if not self._limiters[endpoint].take(self._token).allowed:
            return self.rate_limited(60, False)
        return handler(request, args)

    def _start(self, request: Request, args) -> Response:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("format") not in ("csv", "tsv"):
            return _error(400, "Bad Request", "Invalid request. Missing or invalid parameter format.", "RP_0.1")
        try:
            start = _iso(body["startDate"]) if body.get("startDate") else None
            end = _iso(body["endDate"]) if body.get("endDate") else _naive_utc(self._as_of)
        except ValueError:
            return _error(400, "Bad Request", "startDate and endDate must be ISO 8601 date-times.", "RP_0.1")
        progress_id = f"ES_{uuid.uuid4().hex[:15]}"
        with self._lock:
            failing = self._failures_armed > 0
            self._failures_armed -= failing
            self._exports[progress_id] = {"percent": 0.0, "start": start, "end": min(end, _naive_utc(self._as_of)),
                                          "labels": bool(body.get("useLabels")), "fails": failing}
        return _ok({"progressId": progress_id, "percentComplete": 0.0, "status": "inProgress"})

    def _progress(self, request: Request, args) -> Response:
        with self._lock:
            export = self._exports.get(args["exportProgressId"])
            if export is None:
                return _error(404, "Not Found", "Export not found.", "RP_0.2")
            export["percent"] = min(100.0, export["percent"] + PROGRESS_STEP)
            if export["percent"] < 100:
                return _ok({"percentComplete": export["percent"], "status": "inProgress"})
            if export["fails"]:
                return _ok({"percentComplete": 100.0, "status": "failed"})
            file_id = export.setdefault("file_id", f"{uuid.uuid4()}-def")
            self._files.setdefault(file_id, self._zip(export))
        return _ok({"fileId": file_id, "percentComplete": 100.0, "status": "complete"})

    def _file(self, request: Request, args) -> Response:
        with self._lock:
            data = self._files.get(args["fileId"])
        if data is None:
            return _error(404, "Not Found", "File not found.", "RP_0.3")
        return Response(data, content_type="application/octet-stream",
                        headers={"Content-Disposition": f'attachment; filename="{SURVEY_NAME}.zip"'})

    def _zip(self, export: dict) -> bytes:
        rows = [row for row in self._responses
                if (export["start"] is None or datetime.fromisoformat(row["submitted_at"]) >= export["start"])
                and datetime.fromisoformat(row["submitted_at"]) < export["end"]]
        meta = ["StartDate", "EndDate", "Status", "Progress", "Duration (in seconds)", "Finished", "RecordedDate",
                "ResponseId", "DistributionChannel", "UserLanguage"]
        names = meta + [f"Q1_{n}" for n in range(1, len(self._items) + 1)] + ["Team"]
        texts = meta[:6] + ["Recorded Date", "Response ID", "Distribution Channel", "User Language"] + [
            f"{STEM} - {item}" for item in self._items] + ["Team"]
        import_ids = [f'{{"ImportId":"{m[0].lower() + m[1:]}","timeZone":"UTC"}}' for m in meta] + [
            f'{{"ImportId":"QID1_{n}"}}' for n in range(1, len(self._items) + 1)] + ['{"ImportId":"Team"}']
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerows([names, texts, import_ids])
        status = ("IP Address", "Survey Preview") if export["labels"] else ("0", "1")
        if rows:  # an editor's preview of the survey, which the loader must drop
            first = rows[0]["submitted_at"]
            writer.writerow([first, first, status[1], "100", "60", "True" if export["labels"] else "1", first,
                             f"R_preview{uuid.uuid4().hex[:8]}", "preview", "EN", *["4"] * len(self._items),
                             rows[0]["team"]])
        for row in rows:
            writer.writerow([row["submitted_at"], row["submitted_at"], status[0], "100", "240",
                             "True" if export["labels"] else "1", row["submitted_at"], f"R_{row['response_id']}",
                             "anonymous", "EN", *[row[item] for item in self._items], row["team"]])
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            zipped.writestr(f"{SURVEY_NAME}.csv", "\ufeff" + buffer.getvalue())
        return archive.getvalue()
