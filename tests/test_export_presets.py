"""Exports shaped like each tool's real export load through their presets, and the files that
used to lose data are caught.

Where each layout is documented (fixtures below are built from these, not from our own writer):
- Qualtrics CSV, three header rows (field names, question texts with "stem - statement"
  matrix columns, {"ImportId": ...} JSON), Status/Finished metadata: Qualtrics support,
  "Understanding Your Dataset" (qualtrics.com/support/survey-platform/data-and-analysis-module/
  data/download-data/understanding-your-dataset/) and the real sample export in ropensci/qualtRics
  tests/testthat/files/sample.csv; the legacy layout (V1..V10 then texts) from the same
  repository's tests/testthat/files/sample_legacy.csv. Choice-text Status values ("IP Address",
  "Survey Preview") and Finished as TRUE/FALSE: ropensci/excluder R/qualtrics_text.R. TSV
  exports are UTF-16 (Qualtrics "Export data" dialog).
- Google Forms "Download responses (.csv)": Timestamp first, a grid as "Question [row]",
  timestamps like "2024/01/18 1:56:43 PM GMT+1" (issue 16's sample from a real download).
- Microsoft Forms "Open in Excel": ID, Start time, Completion time, Email, Name, then one column
  per question (column lists in public scripts that read these exports, e.g. the
  ["ID","Start time","Completion time","Email","Name","Last modified time", ...] header).
- SurveyMonkey "All responses data" CSV: two header rows, Respondent ID, Collector ID, Start
  Date, End Date; the question above its first column only, matrix rows in the second row.
- Culture Amp raw data extract: an Excel file, one demographic, rating questions scored 1-5, no
  ids or dates (support.cultureamp.com "Raw Data extract types and guidelines").
- BambooHR custom report: Employee #, Department, Job Title, Hire Date, Termination Date,
  Termination Type; Workday custom report exported to Excel: a title row, then Employee ID,
  Supervisory Organization, Business Title, Hire Date, Termination Date, Primary Termination
  Reason ("Terminate Employee > Voluntary > ...").
"""

import csv
import io
import os
import re
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime

import openpyxl
import polars as pl
import pytest

from assets.identity import employee_key
from assets.landing.files import FileFacts, ShrunkExport, check_shrinkage, classify
from assets.landing.hr import read_hr_file
from assets.landing.identity import IdentityMapError, pseudonymised, read_identity_map
from assets.landing.item_sets import ACCOUNTABILITY, CLARK_INCLUSION, PSYCHOLOGICAL_SAFETY
from assets.landing.mapping import Mapping, MappingError, read_mapping
from assets.landing.snapshot import SnapshotChanged, is_ready, take_snapshot
from assets.landing.survey import SurveyExportError, read_survey_exports
from assets.landing.team_map import identifier_key

NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
ITEMS = [item.text for item in PSYCHOLOGICAL_SAFETY.items]
REVERSED = {item.number for item in PSYCHOLOGICAL_SAFETY.items if item.reverse_keyed}
STEM = "How much do you agree with the following statements about your team?"
LABELS7 = ["Strongly disagree", "Disagree", "Somewhat disagree", "Neither agree nor disagree", "Somewhat agree",
           "Agree", "Strongly agree"]
GROUPS = {"payments": "Payments", "search": "Search"}


def consistent_answers(level: int, k: int = 7) -> list[int]:
    """Answers of a respondent at agreement ``level``: mirrored on reverse-keyed items."""
    return [k + 1 - level if n in REVERSED else level for n in range(1, 8)]


def csv_text(rows, delimiter=",") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue()


def qualtrics_rows(labels: bool) -> list[list[str]]:
    meta = ["StartDate", "EndDate", "Status", "IPAddress", "Progress", "Duration (in seconds)", "Finished",
            "RecordedDate", "ResponseId", "DistributionChannel", "UserLanguage"]
    header1 = meta + [f"Q1_{n}" for n in range(1, 8)] + ["Q2", "Team"]
    header2 = meta[:7] + ["Recorded Date", "Response ID", "Distribution Channel", "User Language"] + [
        f"{STEM} - {text}" for text in ITEMS] + ["Anything else?", "Team"]
    header3 = [f'{{"ImportId":"{m[0].lower() + m[1:]}","timeZone":"Europe/Berlin"}}' for m in meta] + [
        f'{{"ImportId":"QID1_{n}"}}' for n in range(1, 8)] + ['{"ImportId":"QID2_TEXT"}', '{"ImportId":"Team"}']
    rows = [header1, header2, header3]
    status = {"ok": "IP Address" if labels else "0", "preview": "Survey Preview" if labels else "1",
              "test": "Survey Test" if labels else "2"}
    finished = {True: "True" if labels else "1", False: "False" if labels else "0"}
    for i in range(12):
        kind = "preview" if i == 10 else "test" if i == 11 else "ok"
        done = i != 9
        answers = [LABELS7[a - 1] if labels else str(a) for a in consistent_answers(2 + i % 5)]
        rows.append(["2025-02-10 09:00:00", "2025-02-10 09:05:00", status[kind], "", "100" if done else "40", "300",
                     finished[done], f"2025-02-10 09:{i:02d}:00", f"R_{i:03d}abc", "anonymous", "EN", *answers,
                     "a comment, with a comma\nand a line break", "payments" if i % 2 else "Search"])
    return rows


@pytest.mark.parametrize("labels", [False, True], ids=["numeric values", "choice text"])
def test_qualtrics_csv_drops_previews_tests_and_unfinished_and_counts_them(tmp_path, labels):
    path = tmp_path / "qualtrics_wave1.csv"
    path.write_text("\ufeff" + csv_text(qualtrics_rows(labels)), encoding="utf-8")
    load = read_survey_exports([path], GROUPS, NOW)
    [file] = load.files
    assert file.preset == "qualtrics" and file.diagnosis["header_rows"] == "3"
    assert dict(file.dropped) == {"unfinished": 1, "preview, test or spam": 2}
    assert load.responses == 9 and not load.checked.quarantined
    first = next(r for r in load.checked.accepted if r["response_id"] == "R_000abc" and r["item_no"] == 1)
    # RecordedDate 09:00 in the time zone the ImportId row states (Europe/Berlin, UTC+1 in February).
    assert file.diagnosis["time_zone"] == "Europe/Berlin"
    assert first["submitted_at"] == datetime(2025, 2, 10, 8, 0) and first["survey_group"] == "Search"
    assert (first["answer"], first["score"]) == (6, 2)  # reverse-keyed item 1: 8 - 6


def test_an_alchemer_export_drops_partial_and_disqualified_responses_and_counts_them(tmp_path):
    """Sixth trial, N5: Alchemer's (SurveyGizmo's) CSV, read by the generic preset once its date
    column is mapped, has a Status column: Partial (2 of 7 items answered) and Disqualified
    responses loaded as responses, counting towards a team's 5 respondents."""
    header = ["Response ID", "Time Started", "Date Submitted", "Status", "Team", *ITEMS]
    rows = [[str(n), "2025-02-10 09:00:00", "2025-02-10 09:05:00", "Complete", "Payments", *consistent_answers(2 + n % 5)]
            for n in range(1, 9)]
    rows += [[str(n), "2025-02-10 09:00:00", "", "Partial", "Payments", *consistent_answers(3)[:2], *[""] * 5]
             for n in range(9, 12)]
    rows.append(["12", "2025-02-10 09:00:00", "2025-02-10 09:01:00", "Disqualified", "Payments", *consistent_answers(4)])
    path = tmp_path / "alchemer_export.csv"
    path.write_text(csv_text([header, *rows]))
    (tmp_path / "export_mapping.yml").write_text("survey:\n  columns: {submitted_at: Date Submitted}\n")
    load = read_survey_exports([path], GROUPS, NOW, settings=read_mapping(tmp_path).settings(path.name, "survey"))
    [file] = load.files
    assert file.preset == "generic" and dict(file.dropped) == {"unfinished": 4}
    assert load.responses == 8 and not load.checked.quarantined


def test_qualtrics_utf16_tsv_and_legacy_layout(tmp_path):
    tsv = tmp_path / "qualtrics.tsv"
    tsv.write_bytes(csv_text(qualtrics_rows(False), delimiter="\t").encode("utf-16"))
    legacy = tmp_path / "legacy.csv"
    legacy.write_text(csv_text([
        ["V1", "V2", "V3", "V4", "V5", "V6", "V7", "V8", "V9", "V10"] + [f"Q1_{n}" for n in range(1, 8)] + ["Team"],
        ["ResponseID", "ResponseSet", "Name", "ExternalDataReference", "EmailAddress", "IPAddress", "Status",
         "StartDate", "EndDate", "Finished"] + [f"{STEM}-{text}" for text in ITEMS] + ["Team"],
        ["R_legacy1", "Default Response Set", "Anonymous", "", "", "1.2.3.4", "0", "2017-07-18 08:28:09",
         "2017-07-18 08:28:48", "1", *map(str, consistent_answers(5)), "Payments"],
    ]))
    load = read_survey_exports([tsv, legacy], GROUPS, NOW)
    assert [f.preset for f in load.files] == ["qualtrics", "qualtrics_legacy"]
    assert load.files[0].diagnosis["encoding"] == "utf-16" and load.files[0].diagnosis["delimiter"] == "tab"
    assert load.responses == 10


def google_forms_rows(n: int, start_hour: int = 1) -> list[list[str]]:
    rows = [["Timestamp"] + [f"{STEM} [{text}]" for text in ITEMS] + ["Your team"]]
    for i in range(n):
        rows.append([f"2024/01/18 {start_hour + i % 10}:56:43 PM GMT+1",
                     *[LABELS7[a - 1] for a in consistent_answers(1 + i % 7)], "PAYMENTS"])
    return rows


def test_google_forms_grid_columns_and_timestamps_with_gmt_offsets(tmp_path):
    path = tmp_path / "Team survey (Responses).csv"
    path.write_text(csv_text(google_forms_rows(12)))
    mapping_dir = tmp_path / "m"
    mapping_dir.mkdir()
    (mapping_dir / "export_mapping.yml").write_text("survey:\n  columns: {team: Your team}\n")
    settings = read_mapping(mapping_dir).settings(path.name, "survey")
    load = read_survey_exports([path], GROUPS, NOW, settings=settings)
    [file] = load.files
    assert file.preset == "google_forms" and file.diagnosis["date_pattern"] == "%Y/%m/%d %I:%M:%S %p"
    assert load.responses == 12 and {r["survey_group"] for r in load.checked.accepted} == {"Payments"}
    first = min(r["submitted_at"] for r in load.checked.accepted)
    assert first == datetime(2024, 1, 18, 12, 56, 43)  # 1:56:43 PM at GMT+1 is 12:56:43 UTC


def write_xlsx(path, rows, title_rows=()):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    for row in [*title_rows, *rows]:
        sheet.append(row)
    workbook.save(path)
    return path


def test_microsoft_forms_xlsx_with_datetime_cells(tmp_path):
    rows = [["ID", "Start time", "Completion time", "Email", "Name", "Last modified time", *ITEMS, "Team"]]
    for i in range(1, 12):
        rows.append([i, datetime(2024, 3, 4, 9, i), datetime(2024, 3, 4, 9, i + 5), "anonymous", None, None,
                     *[float(a) for a in consistent_answers(1 + i % 7)], "Search"])
    path = write_xlsx(tmp_path / "Psychological safety(1-11).xlsx", rows)
    load = read_survey_exports([path], GROUPS, NOW)
    assert load.files[0].preset == "microsoft_forms" and load.responses == 11
    # Whole numbers stored as 4.0 in the workbook read as 4.
    assert {r["answer"] for r in load.checked.accepted} <= set(range(1, 8))
    assert any(r["response_id"] == "1@2024-03-04T09:06:00" for r in load.checked.accepted)


def test_surveymonkey_two_header_rows_with_the_stem_above_the_first_column(tmp_path):
    top = ["Respondent ID", "Collector ID", "Start Date", "End Date", "IP Address", "Email Address", "First Name",
           "Last Name", "Custom Data 1", STEM] + [""] * 6 + ["Which team are you in?"]
    second = [""] * 9 + ITEMS + ["Response"]
    rows = [top, second]
    for i in range(11):
        rows.append([str(114000000 + i), "4300000", "01/18/2024 01:50:43 PM", f"01/18/2024 01:5{i % 10}:43 PM", "",
                     "", "", "", "", *[LABELS7[a - 1] for a in consistent_answers(1 + i % 7)], "Payments"])
    path = tmp_path / "Sheet_1.csv"
    path.write_text(csv_text(rows))
    mapping_dir = tmp_path / "m"
    mapping_dir.mkdir()
    (mapping_dir / "export_mapping.yml").write_text("survey:\n  columns: {team: 'Which team are you in?'}\n")
    load = read_survey_exports([path], GROUPS, NOW, settings=read_mapping(mapping_dir).settings(path.name, "survey"))
    assert load.files[0].preset == "surveymonkey" and load.files[0].diagnosis["date_pattern"] == "%m/%d/%Y %I:%M:%S %p"
    assert load.responses == 11 and not load.checked.quarantined


def test_culture_amp_extract_needs_the_survey_date_from_the_mapping_file(tmp_path):
    rows = [["Department", *ITEMS]] + [["Payments", *consistent_answers(1 + i % 5, 5)] for i in range(12)]
    path = write_xlsx(tmp_path / "culture_amp_raw.xlsx", rows)
    with pytest.raises(SurveyExportError, match="submitted_at_value"):
        read_survey_exports([path], GROUPS, NOW, 5)
    (tmp_path / "export_mapping.yml").write_text(
        "survey:\n  scale_points: 5\n  columns: {team: Department}\n  submitted_at_value: 2024-03-15\n")
    mapping = read_mapping(tmp_path)
    assert classify(path, mapping) == "survey"
    load = read_survey_exports([path], GROUPS, NOW, settings=mapping.settings(path.name, "survey"))
    assert load.files[0].preset == "culture_amp" and load.responses == 12
    assert {r["submitted_at"] for r in load.checked.accepted} == {datetime(2024, 3, 15)}


def test_items_a_tool_already_reverse_scored_fail_the_keying_check_until_the_mapping_says_so(tmp_path):
    rows = [["response_id", "submitted_at", "team", *ITEMS]]
    for i in range(30):
        level = 1 + i % 7
        rows.append([f"R{i}", "2025-02-10", "Payments", *[level] * 7])  # reverse-keyed items already turned round
    path = tmp_path / "wave.csv"
    path.write_text(csv_text(rows))
    held_back = read_survey_exports([path], GROUPS, NOW)
    assert held_back.checked.accepted == [] and len(held_back.keying_failures) == 1
    assert re.search(r"psychological safety in wave 2025-Q1: alpha -?\d.*item 1 .*item 3 .*item 5",
                     held_back.keying_failures[0].message)
    assert held_back.warnings == [held_back.keying_failures[0].message]
    (tmp_path / "export_mapping.yml").write_text(
        "survey:\n  item_sets:\n    psychological_safety:\n      already_reversed: [1, 3, 5]\n")
    load = read_survey_exports([path], GROUPS, NOW, settings=read_mapping(tmp_path).settings("wave.csv", "survey"))
    scores = pl.DataFrame(load.checked.accepted).group_by("response_id").agg(pl.col("score").n_unique())
    assert scores["score"].max() == 1  # every item scores the respondent's level


def test_one_pass_names_every_problem_of_the_file(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text(csv_text([["response_id", "when", *ITEMS[:5], "Comments"], ["R1", "x", 1, 2, 3, 4, 5, ""]]))
    with pytest.raises(SurveyExportError) as error:
        read_survey_exports([path], GROUPS, NOW)
    message = str(error.value)
    assert "no team column" in message and "no date column" in message
    assert ITEMS[5] in message and ITEMS[6] in message and "delimiter comma" in message


def test_an_export_without_its_header_line_is_refused_without_quoting_a_response(tmp_path):
    # Only the data rows, copied from a spreadsheet: the first row is a respondent's answers,
    # which must not reach the run's log (privacy trial P2).
    path = tmp_path / "pulse_q1.csv"
    path.write_text(csv_text([["R_3kP9xTq2", "2025-02-11 09:14:02", "Checkout", 2, 6, 1, 7, 2, 5, 4],
                              ["R_8mZ2", "2025-02-11 10:02:45", "Checkout", 3, 5, 2, 6, 3, 5, 5]]))
    with pytest.raises(SurveyExportError) as error:
        read_survey_exports([path], GROUPS, NOW)
    message = str(error.value)
    assert "its first row has 10 filled cells, 8 of them numbers or dates: a response rather than a header row" in message
    assert not any(value in message for value in ("R_3kP9xTq2", "09:14:02", "Checkout"))


def test_a_malformed_quote_quarantines_every_row_it_swallowed_and_long_text_is_dropped(tmp_path):
    header = ["response_id", "submitted_at", "team", *ITEMS, "Comments"]
    lines = [csv_text([header])]
    for i in range(10):
        comment = '"I think it is fine' if i == 3 else ("x" * 200_000 if i == 5 else "ok")
        lines.append(",".join([f"R{i}", "2025-02-10", "Payments", *map(str, consistent_answers(4)), comment]) + "\r\n")
    path = tmp_path / "survey.csv"
    path.write_text("".join(lines))
    load = read_survey_exports([path], GROUPS, NOW)
    assert load.responses == 3  # R0..R2 before the quote; the rest swallowed by it
    swallowed = [q for q in load.checked.quarantined if q["reason"].startswith("malformed quote")]
    assert len(swallowed) == 7 and {q["source_line"] for q in swallowed} == {5}
    assert any("200,000 characters of text dropped" in note for note in load.files[0].notes) is False


def test_an_overlong_comment_is_dropped_with_a_note_and_the_response_loads(tmp_path):
    header = ["response_id", "submitted_at", "team", *ITEMS, "Comments"]
    rows = [header] + [[f"R{i}", "2025-02-10", "Payments", *consistent_answers(4), "x" * 200_000 if i == 1 else ""]
                       for i in range(3)]
    path = tmp_path / "survey.csv"
    path.write_text(csv_text(rows))
    load = read_survey_exports([path], GROUPS, NOW)
    assert load.responses == 3 and not load.checked.quarantined
    assert load.files[0].notes == ["row 3, field 11: 200,000 characters of text dropped (over 32,767; free text is "
                                   "never loaded)"]


def test_a_file_cut_mid_row_quarantines_its_last_record_as_cut_off(tmp_path):
    header = ["response_id", "submitted_at", "team", *ITEMS]
    text = csv_text([header] + [[f"R{i}", "2025-02-10", "Payments", *consistent_answers(4)] for i in range(3)])
    path = tmp_path / "survey.csv"
    path.write_text(text[: text.rindex(",")])
    load = read_survey_exports([path], GROUPS, NOW)
    assert load.responses == 2 and load.checked.reasons() == {"cut off": 1}


def test_a_file_replaced_by_a_shorter_version_blocks_unless_accepted():
    old = {"wave1.csv": FileFacts("wave1.csv", "survey", "qualtrics", "a", 1677, 1677, ("2024-Q1", "2024-Q2"))}
    cut = {"wave1.csv": FileFacts("wave1.csv", "survey", "qualtrics", "b", 1003, 1003, ("2024-Q1",))}
    with pytest.raises(ShrunkExport, match=r"rows 1677 -> 1003; responses 1677 -> 1003; waves lost: 2024-Q2"):
        check_shrinkage(old, cut, [], "response", "wave", "survey_responses")
    with pytest.raises(ShrunkExport, match="gone from the landing folder"):
        check_shrinkage(old, {}, [], "response", "wave", "survey_responses")
    assert check_shrinkage(old, cut, ["wave1.csv"], "response", "wave", "survey_responses")
    grown = {"wave1.csv": FileFacts("wave1.csv", "survey", "qualtrics", "c", 1700, 1700, ("2024-Q1", "2024-Q2"))}
    assert check_shrinkage(old, grown, [], "response", "wave", "survey_responses") == []


def test_a_file_changed_during_the_read_fails_naming_it(tmp_path, monkeypatch):
    path = tmp_path / "hr_headcount.csv"
    path.write_text("employee_id,org_unit\nE1,OU-1\n")
    import assets.landing.snapshot as snapshot_module
    real = snapshot_module._sha256

    def hash_after_a_write(target):
        with target.open("a") as fh:
            fh.write("E2,OU-1\n")  # another process appends while we read
        return real(target)

    monkeypatch.setattr(snapshot_module, "_sha256", hash_after_a_write)
    with pytest.raises(SnapshotChanged, match="hr_headcount.csv changed while it was being read"):
        take_snapshot(path, tmp_path)


def test_files_still_being_copied_are_not_ready(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    ready, why = is_ready(path, 60)
    assert not ready and "waiting for the copy to finish" in why
    os.utime(path, (path.stat().st_mtime - 120, path.stat().st_mtime - 120))
    assert is_ready(path, 60) == (True, "")


def test_bamboohr_roster_gives_monthly_snapshots_and_classified_leavers(tmp_path):
    rows = [["Employee #", "First Name", "Last Name", "Department", "Job Title", "Hire Date", "Termination Date",
             "Termination Type", "Termination Reason"],
            ["1001", "Ada", "L", "Payments", "Staff SRE", "03/15/2023", "", "", ""],
            ["1002", "Bo", "K", "payments", "Engineer", "01/10/2024", "02/20/2024", "Voluntary", "Better opportunity"],
            ["1003", "Cy", "M", "Payments", "Engineer", "01/01/2024", "03/01/2024", "Involuntary", "Performance"],
            ["1004", "Di", "N", "Payments", "Engineer", "01/01/2024", "03/05/2024", "Death", ""],
            ["1005", "Ed", "O", "Payments", "Engineer", "01/01/2024", "03/05/2024", "Mutual agreement", ""]]
    path = tmp_path / "bamboohr_employees.csv"
    path.write_text(csv_text(rows))
    (tmp_path / "export_mapping.yml").write_text("hr:\n  critical_roles: [staff sre]\n  snapshots_from: 2024-01-01\n")
    mapping = read_mapping(tmp_path)
    assert classify(path, mapping) == "hr"
    now = datetime(2024, 4, 10, tzinfo=UTC)
    loaded = read_hr_file(take_snapshot(path, tmp_path), path.name, mapping.settings(path.name, "hr"),
                          {"payments": "OU-PAY"}, now, "salt", tmp_path)
    assert loaded.preset == "bamboohr" and loaded.diagnosis["hire_date_pattern"] == "%m/%d/%Y"
    by_month = loaded.headcount.group_by("snapshot_date").len().sort("snapshot_date").rows()
    # 1005's unknown reason withholds its leaving, not its employment. Jan: 1001, 1003-1005 (1002
    # hired on the 10th); Feb: 1001-1005; Mar: 1001, 1003 (leaves on the 1st, so still there at
    # its opening), 1004, 1005; Apr: 1001.
    assert by_month == [("2024-01-01", 4), ("2024-02-01", 5), ("2024-03-01", 4), ("2024-04-01", 1)]
    # BambooHR's standard type Death is involuntary (not the employee's choice), not quarantined.
    assert sorted(loaded.terminations["voluntary"].to_list()) == ["false", "false", "true"]
    assert loaded.headcount.filter(pl.col("critical_role") == "true")["role"].unique().to_list() == ["Staff SRE"]
    [unknown] = loaded.quarantine["reason"].to_list()
    assert unknown.startswith("unknown termination reason: 'Mutual agreement'")
    assert "1005" not in loaded.quarantine["raw_row"][0]


def test_a_csv_footer_line_is_left_out_and_a_last_row_holding_only_an_id_is_not(tmp_path):
    text = ("Employee ID,Department,Hire Date\n1001,Payments,2024-01-01\n1002,Payments,2024-01-01\n"
            "1003,,\n\nTotal employees: 3\n")
    path = tmp_path / "roster.csv"
    path.write_text(text)
    loaded = read_hr_file(take_snapshot(path, tmp_path), path.name,
                          Mapping({}, {}, {}, (), "none").settings(path.name, "hr"),
                          {"payments": "Payments"}, datetime(2024, 3, 2, tzinfo=UTC), "salt", tmp_path)
    assert loaded.quarantine["source_line"].to_list() == [4] and loaded.employees == 3
    # The roster has no termination date column: its notes say so too (test_hr_roster_columns).
    assert loaded.notes == ["line 6 below the table ('Total employees: 3') holds one cell only: read as the "
                            "export's summary line, not an employee", loaded.no_termination_column]


def test_negated_mixed_and_missing_termination_reasons_are_never_guessed(tmp_path):
    # A roster without a job title: nobody is a critical role unless hr.critical_roles says so,
    # and an empty list in the mapping matches no reason, not the empty one.
    reasons = {"1001": "Non-voluntary", "1002": "Not voluntary (performance)", "1003": "Voluntary redundancy",
               "1004": "Forced resignation", "1005": "", "1006": "Resignation"}
    rows = [["Employee ID", "Department", "Hire Date", "Termination Date", "Termination Reason"]] + [
        [employee, "Payments", "2024-01-01", "2024-02-15", reason] for employee, reason in reasons.items()]
    path = tmp_path / "roster.csv"
    path.write_text(csv_text(rows))
    (tmp_path / "export_mapping.yml").write_text("hr:\n  voluntary_reasons: [Resignation]\n  critical_roles: []\n"
                                                 "  snapshots_from: 2024-01-01\n")
    mapping = read_mapping(tmp_path)
    loaded = read_hr_file(take_snapshot(path, tmp_path), path.name, mapping.settings(path.name, "hr"),
                          {"payments": "OU-PAY"}, datetime(2024, 4, 10, tzinfo=UTC), "salt", tmp_path)
    assert sorted(loaded.terminations["voluntary"].to_list()) == ["false", "false", "true"]
    assert set(loaded.headcount["critical_role"]) == {"false"}
    reasons_by_line = dict(zip(loaded.quarantine["source_line"], loaded.quarantine["reason"], strict=True))
    assert reasons_by_line[4].startswith("unknown termination reason: 'Voluntary redundancy'")
    assert reasons_by_line[5].startswith("unknown termination reason: 'Forced resignation'")
    assert reasons_by_line[6].startswith("missing termination reason: a termination date without a reason")
    assert len(reasons_by_line) == 3
    # The leavers whose leaving cannot be classified still counted until they left.
    assert loaded.headcount.group_by("snapshot_date").len().sort("snapshot_date").rows() == [
        ("2024-01-01", 6), ("2024-02-01", 6)]


def test_a_header_named_only_by_the_mapping_is_found_and_org_units_match_as_read(tmp_path):
    # Personio's German export: no header the presets know, so hr.columns names every column.
    # Its org units differ from the team map only in Unicode form (NFD), spacing and an
    # invisible zero-width space, which a reader cannot see.
    rows = [["Personalnummer", "Abteilung", "Eintrittsdatum", "Austrittsdatum", "K\u00fcndigungsart"],
            ["101", "Zu\u0308rich Ops", "15.03.2023", "", ""],
            ["102", "Z\u00fcrich  Ops\u200b", "20.01.2024", "31.01.2024", "K\u00fcndigung durch Arbeitnehmer"]]
    path = tmp_path / "personio.csv"
    path.write_text(csv_text(rows, delimiter=";"))
    (tmp_path / "export_mapping.yml").write_text(
        "files:\n  - match: personio.csv\n    kind: hr\nhr:\n  columns: {employee_id: Personalnummer, "
        "org_unit: Abteilung, hire_date: Eintrittsdatum, termination_date: Austrittsdatum, termination_reason: "
        "K\u00fcndigungsart}\n  voluntary_reasons: [K\u00fcndigung durch Arbeitnehmer]\n  snapshots_from: 2024-01-01\n",
        encoding="utf-8")
    mapping = read_mapping(tmp_path)
    loaded = read_hr_file(take_snapshot(path, tmp_path), path.name, mapping.settings(path.name, "hr"),
                          {identifier_key("Z\u00fcrich Ops"): "Z\u00fcrich Ops"}, datetime(2024, 3, 2, tzinfo=UTC),
                          "salt", tmp_path)
    assert loaded.preset == "roster" and loaded.quarantine.is_empty()
    assert loaded.terminations.select("org_unit", "voluntary").rows() == [("Z\u00fcrich Ops", "true")]
    assert loaded.headcount.group_by("snapshot_date").len().sort("snapshot_date").rows() == [
        ("2024-01-01", 1), ("2024-02-01", 1), ("2024-03-01", 1)]


def test_one_employee_id_in_the_forms_spreadsheets_give_it_is_one_employee(tmp_path):
    # A May roster as BambooHR writes it, June's re-saved by Excel (leading zeros and case of
    # email ids lost, numbers as 1003.0), and the identity map's id written unquoted in YAML.
    may = tmp_path / "may"
    june = tmp_path / "june"
    for folder, ids in ((may, ["00101", "Jane.Doe@Example.com", "1003"]), (june, ["101", "jane.doe@example.com",
                                                                             "1003.0"])):
        folder.mkdir()
        (folder / "roster.csv").write_text(csv_text([["Employee ID", "Department", "Hire Date"]] + [
            [employee, "Payments", "2024-01-01"] for employee in ids]))
    hashed = [set(read_hr_file(take_snapshot(folder / "roster.csv", folder), "roster.csv",
                               read_mapping(folder).settings("roster.csv", "hr"), {"payments": "Payments"},
                               datetime(2024, 3, 2, tzinfo=UTC), "salt", folder).headcount["employee_id"])
              for folder in (may, june)]
    assert hashed[0] == hashed[1] and len(hashed[0]) == 3
    (tmp_path / "identity_map.yml").write_text("people:\n  - employee_id: 00101\n    emails: [a@example.com]\n")
    [person] = pseudonymised(read_identity_map(tmp_path / "identity_map.yml"), "salt").to_dicts()
    assert person["employee_id"] in hashed[0]
    (tmp_path / "identity_map.yml").write_text("people:\n  - employee_id: 00101\n    emails: [a@example.com]\n"
                                               "  - employee_id: '101'\n    emails: [b@example.com]\n")
    with pytest.raises(IdentityMapError, match="employee '101' is also entry 1"):
        read_identity_map(tmp_path / "identity_map.yml")
    assert employee_key("0" * 5000 + "7.0") == "7"  # no number parsed: any length is an id


def test_workday_report_with_a_title_row_and_reason_paths(tmp_path):
    rows = [["Employee ID", "Worker", "Supervisory Organization", "Business Title", "Hire Date", "Termination Date",
             "Primary Termination Reason"],
            ["21001", "A", "Search (Jane Doe)", "Engineer", datetime(2023, 5, 2), None, None],
            ["21002", "B", "Search (Jane Doe)", "Engineer", datetime(2023, 5, 2), datetime(2024, 2, 9),
             "Terminate Employee > Voluntary > Relocation"]]
    path = write_xlsx(tmp_path / "Workday_Headcount.xlsx", rows, title_rows=[["Headcount and Terminations"]])
    loaded = read_hr_file(take_snapshot(path, tmp_path), path.name,
                          Mapping({}, {}, {}, (), "none").settings(path.name, "hr"),
                          {"search (jane doe)": "Search (Jane Doe)"}, datetime(2024, 3, 2, tzinfo=UTC), "salt", tmp_path)
    assert loaded.preset == "workday" and loaded.diagnosis["header_row"] == "2"
    assert loaded.terminations.to_dicts()[0]["voluntary"] == "true"
    assert loaded.headcount.height == 2 + 2 + 1 and loaded.quarantine.is_empty()


def test_a_report_footer_below_the_table_is_not_an_employee(tmp_path):
    # Workday's Excel export ends with a blank row and "Count: N"; a one-cell line with a full
    # row after it is no footer, and its checks quarantine it.
    rows = [["Employee ID", "Worker", "Supervisory Organization", "Business Title", "Hire Date", "Termination Date",
             "Primary Termination Reason"],
            ["21001", "A", "Search", "Engineer", datetime(2023, 5, 2), None, None],
            ["21099"],
            ["21002", "B", "Search", "Engineer", datetime(2023, 5, 2), None, None],
            [None], ["Count: 3"]]
    path = write_xlsx(tmp_path / "Workday_Headcount.xlsx", rows, title_rows=[["Headcount and Terminations"]])
    loaded = read_hr_file(take_snapshot(path, tmp_path), path.name,
                          Mapping({}, {}, {}, (), "none").settings(path.name, "hr"),
                          {"search": "Search"}, datetime(2024, 3, 2, tzinfo=UTC), "salt", tmp_path)
    assert loaded.quarantine["source_line"].to_list() == [4]
    assert loaded.employees == 3 and loaded.data_rows == 3
    assert loaded.notes == ["line 7 below the table ('Count: 3') holds one cell only: read as the export's summary "
                            "line, not an employee"]


def test_a_workbooks_date_cells_and_serial_numbers_are_dates_whatever_the_text_date_format(tmp_path):
    # Date columns formatted General keep Excel's serial day numbers (45300.5 is 2024-01-09 at
    # noon); a number before 1970's serial is no date and is quarantined. The date_format, set
    # for the organisation's CSV rosters, is for text dates: it reads the one text date here
    # and leaves the date cells alone.
    rows = [["Employee ID", "Department", "Hire Date", "Termination Date", "Termination Reason"],
            ["1001", "Payments", 44986, None, None],
            ["1002", "Payments", 44986.0, 45300.5, "Resignation"],
            ["1003", "Payments", 4, None, None],
            ["1004", "Payments", datetime(2023, 3, 1), datetime(2024, 2, 20, 17, 30), "Resignation"],
            ["1005", "Payments", "01.03.2023", None, None]]
    path = write_xlsx(tmp_path / "roster.xlsx", rows)
    settings = Mapping({}, {}, {}, (), "none").settings(path.name, "hr")
    loaded = read_hr_file(take_snapshot(path, tmp_path), path.name, replace(settings, date_format="%d.%m.%Y"),
                          {"payments": "Payments"}, datetime(2024, 3, 2, tzinfo=UTC), "salt", tmp_path)
    assert loaded.terminations.select("termination_date", "voluntary").rows() == [
        ("2024-01-09", "true"), ("2024-02-20", "true")]
    # All hired 2023-03-01; 1002 left in January, 1004 in February.
    assert loaded.headcount.group_by("snapshot_date").len().sort("snapshot_date").rows() == [
        ("2024-01-01", 4), ("2024-02-01", 3), ("2024-03-01", 2)]
    assert loaded.diagnosis["date_cells"] == "5"
    [bad] = loaded.quarantine["reason"].to_list()
    assert bad.startswith("bad date: hire_date '4'")


def test_mapping_file_errors_name_the_entry(tmp_path):
    (tmp_path / "export_mapping.yml").write_text("survey:\n  scale_points: 6\n")
    with pytest.raises(MappingError, match="survey: scale_points must be 5 or 7"):
        read_mapping(tmp_path)
    (tmp_path / "export_mapping.yml").write_text("files:\n  - match: w*.csv\n    preset: typeform\n")
    with pytest.raises(MappingError, match="files entry 1: preset 'typeform' is not one of"):
        read_mapping(tmp_path)
    (tmp_path / "export_mapping.yml").write_text(
        "survey:\n  item_sets:\n    psychological_safety:\n      aliases: {9: [x]}\n")
    with pytest.raises(MappingError, match="aliases names item 9"):
        read_mapping(tmp_path)


def test_a_cumulative_export_beside_a_wave_export_counts_each_response_once(tmp_path):
    rows = [["response_id", "submitted_at", "team", *ITEMS]] + [
        [f"R{i}", f"2025-0{1 + 3 * (i % 2)}-10", "Payments", *consistent_answers(1 + i % 7)] for i in range(24)]
    (tmp_path / "wave_2025q1.csv").write_text(csv_text([rows[0]] + [row for row in rows[1:] if row[1] < "2025-04"]))
    (tmp_path / "cumulative.csv").write_text(csv_text(rows))
    load = read_survey_exports([tmp_path / "wave_2025q1.csv", tmp_path / "cumulative.csv"], GROUPS, NOW)
    assert load.responses == 24 and load.identical_copies == 12 and not load.checked.quarantined


def test_optional_scales_load_when_the_export_has_them_and_a_partial_scale_is_named(tmp_path):
    accountability = [item.text for item in ACCOUNTABILITY.items]
    inclusion = [item.text for item in CLARK_INCLUSION.items]
    header = ["response_id", "submitted_at", "team", *ITEMS, *[f"{STEM} - {t}" for t in accountability], *inclusion]
    rows = [header]
    for i in range(12):
        level = 2 + i % 5
        rows.append([f"R{i}", "2025-02-10", "Payments", *consistent_answers(level), *[level] * 4,
                     level, level, 8 - level])  # the third inclusion item is reverse-keyed
    path = tmp_path / "wave.csv"
    path.write_text(csv_text(rows))
    load = read_survey_exports([path], GROUPS, NOW)
    assert load.files[0].scales == load.scales == ["psychological_safety", "accountability", "clark_inclusion"]
    by_set = Counter(row["item_set"] for row in load.checked.accepted)
    assert by_set == {"psychological_safety": 12 * 7, "accountability": 12 * 4, "clark_inclusion": 12 * 3}
    scores = {(r["item_set"], r["item_no"]): r["score"] for r in load.checked.accepted if r["response_id"] == "R1"}
    assert scores[("accountability", 2)] == 3 and scores[("clark_inclusion", 3)] == 3  # 8 - 5, reverse-keyed
    # A file without them measures safety only; one with part of a scale stops, naming what is missing.
    path.write_text(csv_text([row[:10] for row in rows]))
    assert read_survey_exports([path], GROUPS, NOW).scales == ["psychological_safety"]
    path.write_text(csv_text([row[:12] for row in rows]))
    with pytest.raises(SurveyExportError, match=r"accountability item columns not found: 'We monitor our team "
                                                r"performance .*2 of its 4 items were found"):
        read_survey_exports([path], GROUPS, NOW)
    # Your instrument's own wording maps onto an item number.
    renamed = [[*row[:10], "Wir sind einander für unsere Leistung verantwortlich", *row[11:]] if n == 0 else row
               for n, row in enumerate(rows)]
    path.write_text(csv_text(renamed))
    (tmp_path / "export_mapping.yml").write_text(
        "survey:\n  item_sets:\n    accountability:\n      aliases: {1: ['Wir sind einander für unsere Leistung "
        "verantwortlich']}\n", encoding="utf-8")
    mapped = read_survey_exports([path], GROUPS, NOW, settings=read_mapping(tmp_path).settings("wave.csv", "survey"))
    assert Counter(r["item_set"] for r in mapped.checked.accepted)["accountability"] == 12 * 4


# -- Answers, dates and headers as survey tools write them beyond their defaults: Qualtrics' 5-point
# agreement text ("Somewhat agree"), its "Recode seen but unanswered questions as -99" and custom
# recode values (Qualtrics support, "Recode Values" and "Data export options"), a 5-point scale's
# labels on the 7-point setting, Google Forms timestamps with the form's zone abbreviation
# ("2022/06/22 11:07:29 AM AST" in a public app's Forms data, GeckoRobotics/ gecko-sustainability
# components/Form.tsx), and a header cell with a line break in an Excel-saved CSV (Excel ends
# records with CRLF and writes a break inside a cell as LF).


QUALTRICS_LABELS5 = ["Strongly disagree", "Somewhat disagree", "Neither agree nor disagree", "Somewhat agree",
                     "Strongly agree"]
FORMS_LABELS5 = ["Strongly disagree", "Disagree", "Neutral", "Agree", "Strongly agree"]
ANSWER_COLUMNS = slice(11, 18)  # the seven items in qualtrics_rows


def generic_rows(answers_of, n: int) -> list[list[str]]:
    return [["response_id", "submitted_at", "team", *ITEMS],
            *([f"R{i}", "2025-02-10 09:00:00", "Payments", *answers_of(i)] for i in range(n))]


def answers_by_response(load) -> dict[str, dict[int, int]]:
    found: dict[str, dict[int, int]] = {}
    for row in load.checked.accepted:
        found.setdefault(row["response_id"], {})[row["item_no"]] = row["answer"]
    return found


def test_qualtrics_five_point_agreement_text_loads_on_the_five_point_scale(tmp_path):
    rows = qualtrics_rows(labels=False)
    for row in rows[3:]:
        row[ANSWER_COLUMNS] = [QUALTRICS_LABELS5[min(int(a), 5) - 1] for a in row[ANSWER_COLUMNS]]
    path = tmp_path / "qualtrics.csv"
    path.write_text(csv_text(rows))
    load = read_survey_exports([path], GROUPS, NOW, 5)
    assert not load.checked.quarantined and load.responses == 9
    assert Counter(r["answer"] for r in load.checked.accepted).keys() <= {1, 2, 3, 4, 5}
    # R_000abc answered 6 or 2 on 7 points, written here as the 5-point labels 5 and 2.
    assert answers_by_response(load)["R_000abc"] == {n: min(a, 5) for n, a in enumerate(consistent_answers(2), 1)}


@pytest.mark.parametrize("labels", [FORMS_LABELS5, QUALTRICS_LABELS5], ids=["forms", "qualtrics"])
def test_five_point_labels_on_the_seven_point_setting_warn(tmp_path, labels):
    path = tmp_path / "forms.csv"
    path.write_text(csv_text(generic_rows(lambda i: [labels[a - 1] for a in consistent_answers(1 + i % 5, 5)], 24)))
    [warning] = read_survey_exports([path], GROUPS, NOW, 7).warnings
    assert "5-point" in warning and "only the answers" in warning
    # Every one of a 7-point scale's labels in use: no warning.
    seven = ["Strongly disagree", "Disagree", "Somewhat disagree", "Neither agree nor disagree", "Somewhat agree",
             "Agree", "Strongly agree"]
    path.write_text(csv_text(generic_rows(lambda i: [seven[a - 1] for a in consistent_answers(1 + i % 7)], 24)))
    assert read_survey_exports([path], GROUPS, NOW, 7).warnings == []


def test_qualtrics_seen_but_unanswered_is_no_answer(tmp_path):
    rows = qualtrics_rows(labels=False)
    rows[3][ANSWER_COLUMNS.start + 2] = "-99"  # R_000abc saw item 3 and skipped it
    path = tmp_path / "qualtrics.csv"
    path.write_text(csv_text(rows))
    load = read_survey_exports([path], GROUPS, NOW)
    assert not load.checked.quarantined and load.responses == 9 and load.partial_responses == 1
    assert sorted(answers_by_response(load)["R_000abc"]) == [1, 2, 4, 5, 6, 7]


def test_a_tools_recode_values_and_no_answer_codes_are_read_through_answer_labels(tmp_path):
    # Recode values 0..6 (a scale recoded to start at 0) and -98 for "prefer not to say".
    path = tmp_path / "recoded.csv"
    path.write_text(csv_text(generic_rows(lambda i: [*(str(a - 1) for a in consistent_answers(2 + i % 5))][:6]
                                          + ["-98"], 3)))
    without = read_survey_exports([path], GROUPS, NOW)
    assert not without.checked.accepted  # 0 and -98 are not on the 1..7 scale: the reason says how to map them
    assert all("survey.answer_labels" in row["reason"] for row in without.checked.quarantined)
    (tmp_path / "export_mapping.yml").write_text(
        "survey:\n  answer_labels: {" + ", ".join(f'"{a}": {a + 1}' for a in range(7)) + ', "-98": null}\n')
    settings = read_mapping(tmp_path).settings(path.name, "survey")
    load = read_survey_exports([path], GROUPS, NOW, settings=settings)
    assert not load.checked.quarantined
    assert answers_by_response(load)["R0"] == dict(enumerate(consistent_answers(2)[:6], start=1))


def test_a_line_break_inside_a_header_cell_of_an_excel_csv_is_read(tmp_path):
    rows = generic_rows(lambda i: consistent_answers(2 + i % 5), 6)
    rows[0][4] = f"{ITEMS[1]}\n(optional)"  # Alt+Enter in a header cell of the sheet
    path = tmp_path / "survey.csv"
    path.write_text(csv_text(rows), newline="")  # records end in CRLF, the cell's break is LF
    assert b"\n(optional)" in path.read_bytes() and b"\r\n(optional)" not in path.read_bytes()
    assert classify(path, read_mapping(tmp_path)) == "survey"
    load = read_survey_exports([path], GROUPS, NOW)
    assert not load.checked.quarantined and load.responses == 6
    assert answers_by_response(load)["R0"] == dict(enumerate(consistent_answers(2), start=1))


def test_google_forms_timestamps_with_the_forms_zone_abbreviation_are_read_in_that_zone(tmp_path):
    rows = google_forms_rows(4)
    # A wave across the change to daylight saving time in New York (10 March 2024).
    stamps = ["2024/03/08 1:07:29 PM EST", "2024/03/09 11:00:00 PM EST", "2024/03/11 9:15:00 AM EDT",
              "2024/03/12 4:30:00 PM EDT"]
    for row, stamp in zip(rows[1:], stamps):
        row[0] = stamp
    path = tmp_path / "Team survey (Responses).csv"
    path.write_text(csv_text(rows))
    (tmp_path / "export_mapping.yml").write_text("survey:\n  columns: {team: Your team}\n")
    load = read_survey_exports([path], GROUPS, NOW, settings=read_mapping(tmp_path).settings(path.name, "survey"))
    assert not load.checked.quarantined
    assert sorted({r["submitted_at"] for r in load.checked.accepted}) == [
        datetime(2024, 3, 8, 18, 7, 29), datetime(2024, 3, 10, 4, 0), datetime(2024, 3, 11, 13, 15),
        datetime(2024, 3, 12, 20, 30)]


@pytest.mark.parametrize("appended", [b"\n", b"\r\n"], ids=["LF row after CRLF rows", "CRLF row after LF rows"])
def test_a_file_mixing_line_endings_loads_every_row(tmp_path, appended):
    # A row added by hand in an editor that writes the other line ending.
    rows = generic_rows(lambda i: consistent_answers(2 + i % 5), 5)
    ending = b"\n" if appended == b"\r\n" else b"\r\n"
    path = tmp_path / "survey.csv"
    path.write_bytes(csv_text(rows).replace("\r\n", "\n").encode().replace(b"\n", ending)
                     + ",".join(["R9", "2025-02-10 09:00:00", "Payments", *map(str, consistent_answers(3))]).encode()
                     + appended)
    load = read_survey_exports([path], GROUPS, NOW)
    assert not load.checked.quarantined and load.responses == 6


@pytest.mark.parametrize("delimiter", ["\t", ";"], ids=["tab", "semicolon"])
def test_the_delimiter_is_found_in_the_first_record_not_its_first_line(tmp_path, delimiter):
    # The first header cell holds a line break, so the first line holds no delimiter; another
    # cell quotes a comma, which is no delimiter either.
    rows = [["Notes\n(internal)", "response_id", "submitted_at", "team, as chosen", *ITEMS],
            *[["", f"R{i}", "2025-02-10 09:00:00", "Payments", *map(str, consistent_answers(2 + i % 5))]
              for i in range(4)]]
    path = tmp_path / "survey.csv"
    path.write_text(csv_text(rows, delimiter=delimiter))
    (tmp_path / "export_mapping.yml").write_text("survey:\n  columns: {team: 'team, as chosen'}\n")
    load = read_survey_exports([path], GROUPS, NOW, settings=read_mapping(tmp_path).settings(path.name, "survey"))
    assert load.files[0].diagnosis["delimiter"] == {"\t": "tab", ";": "semicolon"}[delimiter]
    assert not load.checked.quarantined and load.responses == 4
