"""Workbooks whose report goes on over several sheets."""

from datetime import UTC, datetime

import openpyxl

from assets.landing.hr import read_hr_file
from assets.landing.mapping import read_mapping
from assets.landing.snapshot import take_snapshot
from assets.landing.tables import read_records

NOW = datetime(2025, 6, 30, tzinfo=UTC)
TITLE = ["Employee Roster - UKG Pro", None, None, None, None, None]
HEADER = ["Employee Number", "Department", "Job Title", "Hire Date", "Termination Date", "Termination Type"]


def cognos_workbook(path, pages: list[list[list]]) -> None:
    """A report as IBM Cognos (behind UKG Pro's reports) writes one too long for a sheet: every
    page a sheet that repeats the title and the header; a last sheet of the report's prompts."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for number, rows in enumerate(pages, start=1):
        sheet = workbook.create_sheet(f"page{number}")
        for row in [TITLE, [], HEADER, *rows]:
            sheet.append(row)
    prompts = workbook.create_sheet("Prompts")
    prompts.append(["Run by", "hr-reports"])
    prompts.append(["Department", "All"])
    workbook.save(path)


def test_a_report_continued_on_further_sheets_is_read_whole(tmp_path):
    path = tmp_path / "ukg.xlsx"
    cognos_workbook(path, [[["1", "Payments", "SRE", "2023-03-15", "", ""],
                            ["2", "Payments", "SRE", "2023-04-01", "2025-03-31", "V"]],
                           [["3", "Search", "SRE", "2023-05-01", "", ""],
                            ["4", "Search", "SRE", "2023-06-01", "2025-04-30", "I"]]])
    (tmp_path / "export_mapping.yml").write_text("hr:\n  voluntary_reasons: [V]\n  involuntary_reasons: [I]\n")
    loaded = read_hr_file(take_snapshot(path, tmp_path), path.name, read_mapping(tmp_path).settings(path.name, "hr"),
                          {"payments": "Payments", "search": "Search"}, NOW, "salt", tmp_path)
    assert loaded.employees == 4 and loaded.quarantine.is_empty()
    assert sorted(loaded.terminations.select("org_unit", "voluntary").rows()) == [
        ("Payments", "true"), ("Search", "false")]
    # The sheets read are named; the one that is not part of the report is still pointed out.
    assert loaded.diagnosis["sheet"] == "page1, page2"
    assert "'Prompts'" in loaded.diagnosis["other_sheets"]


def test_rows_are_numbered_on_through_the_sheets(tmp_path):
    path = tmp_path / "ukg.xlsx"
    cognos_workbook(path, [[["1", "Payments", "SRE", "2023-03-15", "", ""]],
                           [["3", "Search", "SRE", "2023-05-01", "", ""]]])
    records = read_records(take_snapshot(path, tmp_path))
    # page1: title, empty, header, one employee (rows 1-4); page2's rows after its header go on.
    assert records.frame["row"].to_list() == [1, 3, 4, 5]
    assert records.row(3)[0] == "3"


def test_a_sheet_named_in_the_mapping_is_read_alone(tmp_path):
    # Two waves' sheets with one header: the mapping's sheet: picks one of them, the other stays out.
    path = tmp_path / "ukg.xlsx"
    cognos_workbook(path, [[["1", "Payments", "SRE", "2023-03-15", "", ""]],
                           [["3", "Search", "SRE", "2023-05-01", "", ""]]])
    records = read_records(take_snapshot(path, tmp_path), "page2")
    assert records.diagnosis["sheet"] == "page2" and "other_sheets" not in records.diagnosis
    assert [records.row(i)[0] for i in range(records.frame.height)] == [TITLE[0], HEADER[0], "3"]
