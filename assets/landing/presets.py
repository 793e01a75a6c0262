"""Survey and HR export presets, as data: how each tool lays out its export, and how to
recognise it from the file. A preset is found from the file (``detect_*``) unless the
mapping file names one; the load's metadata says which preset read each file.

Layouts, as the tools document them (the test fixtures cite the sources):

- Qualtrics (Data & Analysis > Export data, CSV or TSV; TSV is UTF-16): three header rows,
  the field names (ResponseId, RecordedDate, Q1_1), the question texts (a matrix row is
  "stem - statement"), and ``{"ImportId":...}`` JSON. Status marks previews, tests and
  spam; Finished marks unfinished responses. Numeric values or choice text.
- Qualtrics legacy export: two header rows, V1..V10 then the texts (ResponseID, StartDate...).
- Google Forms (Responses > Download responses (.csv)): one header row, Timestamp first, a
  multiple-choice grid as one column per row, "Question [row]"; choice text.
- Microsoft Forms (Open in Excel): XLSX, ID, Start time, Completion time, Email, Name, then
  one column per question (a Likert row's column carries the statement). The fixed columns'
  headers are in the form's language (German: ID, Startzeit, Fertigstellungszeit, E-Mail,
  Name, Zeitpunkt der letzten Änderung), their places are not: the workbook is recognised by
  its shape, ID numbers followed by two date-time columns, and its roles by their places.
- SurveyMonkey (Export > All responses data): two header rows, the question in the first
  row above its first column only, the matrix rows or "Response" in the second.
- LimeSurvey (Responses > Export > CSV, headings as full question text or question code):
  one header row, Response ID (id) numbering each survey's responses from 1, Date submitted
  (submitdate), Last page, Start language; an array question's rows as "Question [row]".
- Culture Amp raw data extract: XLSX, one demographic column and one column per rating
  question (1..5), no response ids or dates (the survey date comes from the mapping file).
- generic: one header row with response_id, submitted_at, team and the item texts; a Status
  column's Partial, Incomplete, Disqualified or Deleted responses (Alchemer's) are dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from assets.landing.tables import header_text
from assets.landing.values import ISO_DATE


@dataclass(frozen=True)
class SurveyPreset:
    name: str
    header_rows: int
    # Header texts (compared without case) of the columns each role may come from, in order.
    response_id: tuple[str, ...]
    submitted_at: tuple[str, ...]
    team: tuple[str, ...] = ("team", "survey_group", "group", "team name", "department")
    # A matrix question's stem stands above its first column only (SurveyMonkey).
    stem_row_forward_filled: bool = False
    # Rows of a Qualtrics export that are not responses: Status values, by number and by text.
    excluded_status: tuple[str, ...] = ()
    finished: tuple[str, ...] = ()
    # Status words (a "Status" or "Response Status" column) of responses the tool marks
    # unfinished or screened out: Alchemer's Partial and Disqualified, other tools' Incomplete.
    unfinished_status: tuple[str, ...] = ()
    # No response id in the export: one is made from the response's content.
    id_from_content: bool = False
    needs_date_from_mapping: bool = False
    # The tool numbers each survey's responses 1, 2, ... (a wave's new form or survey starts
    # again at 1): the id is scoped by the submission time, "ID@time" (survey.read_survey_file).
    ids_restart_per_survey: bool = False
    # Answer texts that mean "not answered" (as an empty cell does).
    unanswered: tuple[str, ...] = ()
    # Roles the tool writes in fixed columns (0-based) whatever the language of their headers:
    # a role no header names (and the mapping does not name) is taken from its column.
    columns_in_place: tuple[tuple[str, int], ...] = ()


# Qualtrics' export option "Recode seen but unanswered questions as -99".
QUALTRICS_SEEN_UNANSWERED = "-99"

SURVEY_PRESETS: dict[str, SurveyPreset] = {p.name: p for p in (
    SurveyPreset("qualtrics", 3, ("responseid",), ("recordeddate", "enddate"),
                 excluded_status=("1", "2", "8", "9", "12", "17", "survey preview", "survey test", "spam",
                                  "preview spam", "survey preview spam", "imported spam", "offline survey preview"),
                 finished=("finished",), unanswered=(QUALTRICS_SEEN_UNANSWERED,)),
    SurveyPreset("qualtrics_legacy", 2, ("responseid",), ("enddate",),
                 excluded_status=("1", "2", "8", "9", "12", "17", "survey preview", "survey test", "spam"),
                 finished=("finished",), unanswered=(QUALTRICS_SEEN_UNANSWERED,)),
    SurveyPreset("google_forms", 1, (), ("timestamp",), id_from_content=True),
    SurveyPreset("microsoft_forms", 1, ("id",), ("completion time",), ids_restart_per_survey=True,
                 columns_in_place=(("response_id", 0), ("submitted_at", 2))),
    SurveyPreset("limesurvey", 1, ("response id", "id"), ("date submitted", "submitdate"),
                 ids_restart_per_survey=True),
    SurveyPreset("surveymonkey", 2, ("respondent id",), ("end date",), stem_row_forward_filled=True),
    SurveyPreset("culture_amp", 1, (), (), id_from_content=True, needs_date_from_mapping=True),
    SurveyPreset("generic", 1, ("response_id", "response id", "responseid"),
                 ("submitted_at", "submitted at", "timestamp", "date"),
                 unfinished_status=("partial", "incomplete", "disqualified", "deleted")),
)}


# A workbook's date cell as its text (tables.Records): ISO.
_DATE_CELL = re.compile(ISO_DATE)
# Microsoft Forms' fixed columns: ID, start time, completion time, email, name.
_MICROSOFT_FORMS_FIXED_COLUMNS = 5


def _is_microsoft_forms_workbook(rows: list[list[str]]) -> bool:
    """The shape of a Microsoft Forms workbook in any language: a header of at least its five
    fixed columns starting with ID, and in every data row given an ID number, then two dates
    (start and completion time)."""
    if len(rows) < 2:
        return False
    header, data = rows[0], rows[1:]
    return (len(header) >= _MICROSOFT_FORMS_FIXED_COLUMNS and header[0] == "id"
            and all(row[0].isdigit() and all(_DATE_CELL.fullmatch(cell) for cell in row[1:3]) for row in data))


def detect_survey_preset(first_rows: list[list[str]], is_xlsx: bool) -> str | None:
    """The preset whose signature the file's first rows show, or None."""
    rows = [[header_text(cell) for cell in row] for row in first_rows[:3]]
    first = rows[0] if rows else []
    if len(rows) >= 3 and "responseid" in first and any(cell.startswith('{"importid"') for cell in rows[2]):
        return "qualtrics"
    if len(rows) >= 2 and first[:2] == ["v1", "v2"] and "responseid" in rows[1]:
        return "qualtrics_legacy"
    if first[:1] == ["timestamp"]:
        return "google_forms"
    if first[:3] == ["id", "start time", "completion time"]:
        return "microsoft_forms"
    if "respondent id" in first and "collector id" in first:
        return "surveymonkey"
    if ({"response id", "id"} & set(first) and {"date submitted", "submitdate"} & set(first)
            and {"last page", "lastpage", "start language", "startlanguage"} & set(first)):
        return "limesurvey"
    if _is_microsoft_forms_workbook(rows):
        return "microsoft_forms"
    if any(cell in ("response_id", "response id", "responseid") for cell in first):
        return "generic"
    if is_xlsx:
        return "culture_amp"
    return None


@dataclass(frozen=True)
class HrPreset:
    """An HR export's columns by role (header texts, compared without case)."""

    name: str
    columns: dict[str, tuple[str, ...]]


# Besides BambooHR's, Workday's and ADP's names: UKG Pro (UltiPro) reports' Term Date and Term
# Reason (its Date of Termination field, dateOfTermination), and Oracle HCM Cloud's Person Number
# and Actual Termination Date (the Worker Work Relationship's field names). A roster whose
# termination column has another name loads without leavers, so the load warns
# (hr._no_termination_column).
_ROSTER_COLUMNS = {
    "employee_id": ("employee_id", "employee id", "employee #", "employee number", "employeenumber", "worker id",
                    "person number", "id"),
    "org_unit": ("org_unit", "org unit", "department", "team", "supervisory organization", "organization",
                 "cost center"),
    "role": ("role", "job title", "jobtitle", "title", "business title", "job profile", "position"),
    "hire_date": ("hire_date", "hire date", "hiredate", "original hire date", "start date"),
    # ADP Workforce Now: a rehire sets Rehire Date and keeps Hire Date and the last Termination Date.
    # UKG Pro: Last Hire Date is the latest hire beside Original Hire Date (the same date unless
    # rehired), read as Workday's Hire Date is (FIRST_AND_LATEST_HIRE).
    "rehire_date": ("rehire_date", "rehire date", "last hire date"),
    "termination_date": ("termination_date", "termination date", "terminationdate", "termination date (effective)",
                         "term date", "date of termination", "actual termination date", "end date"),
    # Oracle HCM's Action Reason is the reason of the worker's latest action: a terminated worker's
    # termination reason (the reason is read only beside a termination date).
    "termination_reason": ("termination_reason", "termination type", "termination reason",
                           "primary termination reason", "termination category", "term reason", "reason",
                           "action reason"),
    "critical_role": ("critical_role", "critical role", "critical"),
    # Employee, contractor, intern...: BambooHR's Employment Status (Full-Time, Part-Time, Contractor,
    # Intern), Workday's Worker Type (Employee, Contingent Worker; its Employee Type, Regular,
    # Temporary..., is empty for contingent workers, so Worker Type is taken first), Personio's and
    # HiBob's employment type (Personio: internal, external), Deel's Worker type (Contractor, EOR
    # employee), ADP Workforce Now's Worker Category.
    "employment_type": ("employment_type", "employment type", "employment status", "worker type", "employee type",
                        "worker category", "contract type"),
}
# Workday's worker report: "Original Hire Date" is the first hire, "Hire Date" the latest (a
# rehire's, else the same date). A header with both, and no rehire column, reads them as the
# hire and the rehire date (hr._roles).
FIRST_AND_LATEST_HIRE = ("original hire date", "hire date")
HR_PRESETS: dict[str, HrPreset] = {p.name: p for p in (
    # BambooHR custom report export: Employee #, Department, Job Title, Hire Date,
    # Termination Date, Termination Type (Voluntary/Involuntary) and Termination Reason.
    HrPreset("bamboohr", {**_ROSTER_COLUMNS, "termination_reason": ("termination type", "termination reason")}),
    # Workday custom report (Export to Excel): Employee ID, Supervisory Organization,
    # Business Title, Hire Date, Termination Date, Primary Termination Reason
    # ("Terminate Employee > Voluntary > Resignation").
    HrPreset("workday", {**_ROSTER_COLUMNS, "termination_reason": ("primary termination reason",
                                                                   "termination category", "termination reason")}),
    HrPreset("roster", _ROSTER_COLUMNS),
    # The pipeline's own monthly snapshot and leaver files (hr_headcount.csv, hr_terminations.csv).
    HrPreset("snapshots", {"employee_id": ("employee_id",), "org_unit": ("org_unit",), "role": ("role",),
                           "critical_role": ("critical_role",), "snapshot_date": ("snapshot_date",),
                           "termination_date": ("termination_date",), "voluntary": ("voluntary",),
                           "employment_type": ("employment_type",)}),
)}


def detect_hr_preset(header: list[str]) -> str | None:
    """The HR preset a header row shows, or None when it is not an HR export."""
    cells = {header_text(cell) for cell in header}
    if "employee_id" in cells and ("snapshot_date" in cells or "voluntary" in cells):
        return "snapshots"
    has_id = bool(cells & set(_ROSTER_COLUMNS["employee_id"]))
    has_dates = bool(cells & (set(_ROSTER_COLUMNS["hire_date"]) | set(_ROSTER_COLUMNS["termination_date"])))
    if not has_id or not has_dates:
        return None
    if "employee #" in cells or "termination type" in cells:
        return "bamboohr"
    if cells & {"supervisory organization", "primary termination reason", "worker id", "business title"}:
        return "workday"
    return "roster"
