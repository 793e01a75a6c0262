"""HR and survey export dates read one way per file (never guessed when two readings fit),
BambooHR's empty and future dates, and several rosters in one landing folder."""

import csv
import io
import os
from datetime import UTC, datetime

import dagster as dg
import duckdb
import openpyxl
import polars as pl
import pytest
from conftest import landing_beside_warehouse

from assets.landing.assets import hr_exports
from assets.landing.hr import HrExportError, read_hr_file
from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.landing.mapping import read_mapping
from assets.landing.resource import LandingFolderResource
from assets.landing.snapshot import take_snapshot
from assets.landing.survey import SurveyExportError, read_survey_exports
from assets.warehouse.resource import WarehouseResource

BAMBOO = ["Employee #", "Department", "Job Title", "Hire Date", "Termination Date", "Termination Type"]
NOW = datetime(2025, 6, 30, tzinfo=UTC)
hashed = LandingFolderResource(path=".", hr_id_salt="salt").pseudonymise


def csv_text(rows) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def roster(folder, rows, mapping: str = "", name: str = "bamboohr.csv", now: datetime = NOW):
    """``rows`` of a BambooHR roster read as the HR asset reads one file, at ``now``."""
    landing = folder / "landing"
    landing.mkdir(parents=True)
    path = landing / name
    path.write_text(csv_text([BAMBOO, *rows]))
    if mapping:
        (landing / "export_mapping.yml").write_text(mapping)
    work = folder / "work"
    work.mkdir()
    settings = read_mapping(landing).settings(name, "hr")
    return read_hr_file(take_snapshot(path, work), name, settings, {"payments": "Payments", "search": "Search"}, now,
                        "salt", work)


def months(loaded, employee: str) -> list[str]:
    return sorted(loaded.headcount.filter(pl.col("employee_id") == hashed(employee))["snapshot_date"].to_list())


def test_a_day_above_12_in_one_date_column_settles_the_others(tmp_path):
    # The hire dates can only be day first; the termination dates alone could be either.
    loaded = roster(tmp_path, [["1", "Payments", "SRE", "15/03/2023", "03/02/2025", "Voluntary"],
                               ["2", "Payments", "SRE", "20/01/2024", "05/01/2025", "Involuntary"]])
    assert loaded.diagnosis["termination_date_pattern"] == "%d/%m/%Y"
    assert sorted(loaded.terminations["termination_date"].to_list()) == ["2025-01-05", "2025-02-03"]


def test_an_ambiguous_hr_file_stops_naming_what_to_set_and_loads_with_date_format(tmp_path):
    rows = [["1", "Payments", "SRE", "01/02/2024", "03/04/2025", "Voluntary"],
            ["2", "Payments", "SRE", "05/06/2024", "", ""]]
    with pytest.raises(HrExportError) as error:
        roster(tmp_path, rows)
    message = str(error.value)
    for part in ("bamboohr.csv", "'Hire Date'", "'Termination Date'",
                 "'01/02/2024' is 2024-01-02 (%m/%d/%Y) or 2024-02-01 (%d/%m/%Y)", "date_format under hr:", "files:"):
        assert part in message
    loaded = roster(tmp_path / "set", rows, mapping="hr:\n  date_format: \"%d/%m/%Y\"\n")
    assert loaded.terminations["termination_date"].to_list() == ["2025-04-03"]


def survey_file(folder, dates: list[str]):
    path = folder / "survey.csv"
    items = [item.text for item in PSYCHOLOGICAL_SAFETY.items]
    path.write_text(csv_text([["response_id", "submitted_at", "team", *items],
                              *[[f"R{i}", d, "Payments", *[4] * len(items)] for i, d in enumerate(dates)]]))
    return path


def test_an_ambiguous_survey_date_column_stops_instead_of_reading_month_first(tmp_path):
    # A UK Google Sheets timestamp in early February: 05/02/2025 is 5 February, not 2 May.
    path = survey_file(tmp_path, ["03/02/2025 13:56:43", "05/02/2025 09:10:11"])
    with pytest.raises(SurveyExportError, match=r"'submitted_at'.*'05/02/2025 09:10:11' is 2025-05-02 09:10:11 "
                                                r"\(%m/%d/%Y %H:%M:%S\) or 2025-02-05 09:10:11 .*date_format under survey:"):
        read_survey_exports([path], ["Payments"], NOW, 7)


def test_a_survey_date_no_pattern_reads_is_quarantined_saying_so(tmp_path):
    # IST names several zones (India, Ireland, Israel): not read without a date_format and time_zone.
    path = survey_file(tmp_path, ["2025/02/10 1:07:29 PM IST", "2025/02/11 2:07:29 PM IST"])
    load = read_survey_exports([path], ["Payments"], NOW, 7)
    reasons = [q["reason"] for q in load.checked.quarantined]
    assert len(reasons) == 2 and all("in none of the date patterns tried (iso" in r for r in reasons)
    assert not any("like the rest of the column" in r for r in reasons) and "set date_format" in reasons[0]


def test_a_date_in_no_pattern_is_quarantined_not_cast_loosely(tmp_path):
    # An Excel-resaved 6/1/24 among ISO dates: DuckDB's timestamp cast would make it the year 6.
    loaded = roster(tmp_path, [["1", "Payments", "SRE", "2023-03-15", "", ""],
                               ["2", "Payments", "SRE", "6/1/24", "", ""]])
    [reason] = loaded.quarantine["reason"].to_list()
    assert reason.startswith("bad date: hire_date '6/1/24' is not in the date pattern iso")
    assert "patterns tried: iso" in reason and "%d-%b-%Y" in reason and "date_format under hr:" in reason
    assert months(loaded, "2") == []


def test_bamboohr_zero_dates_are_empty(tmp_path):
    loaded = roster(tmp_path, [["1", "Payments", "SRE", "2023-03-15", "0000-00-00", ""],
                               ["2", "Payments", "SRE", "2024-01-20", "2025-02-03", "Voluntary"],
                               ["3", "Payments", "SRE", "0000-00-00", "0000-00-00", ""]])
    assert months(loaded, "1")[-1] == "2025-06-01" and len(months(loaded, "2")) == 13
    assert loaded.quarantine["reason"].to_list() == ["bad date: hire date is empty"]


def test_a_termination_ahead_counts_the_employee_until_then_and_as_a_leaver_after(tmp_path):
    rows = [["1", "Payments", "SRE", "03/15/2023", "", ""],
            ["2", "Payments", "SRE", "01/20/2024", "07/31/2025", "Resignation"]]
    loaded = roster(tmp_path, rows)
    assert loaded.quarantine.height == 0 and loaded.terminations.height == 0
    assert months(loaded, "2")[-1] == "2025-06-01" and any("notice periods" in n for n in loaded.notes)
    after = roster(tmp_path / "august", rows, now=datetime(2025, 8, 2, tzinfo=UTC))
    assert after.terminations.select("termination_date", "voluntary").rows() == [("2025-07-31", "true")]
    assert months(after, "2")[-1] == "2025-07-01"


@pytest.fixture
def landing(tmp_path):
    return landing_beside_warehouse(tmp_path, {"team": ["Payments", "Search"], "source": ["hr_org_unit"] * 2,
                                               "identifier": ["Payments", "Search"]})


def write(path, rows, age_seconds: int) -> None:
    path.write_text(csv_text([BAMBOO, *rows]))
    stamp = datetime.now(UTC).timestamp() - age_seconds
    os.utime(path, (stamp, stamp))


def load(folder, warehouse):
    return dg.materialize(
        [hr_exports], raise_on_error=False,
        resources={"landing": LandingFolderResource(path=str(folder), hr_id_salt="salt"),
                   "duckdb": WarehouseResource(database=str(warehouse))},
        run_config={"ops": {"hr_exports": {"config": {"accept_shrunk_exports": []}}}})


def test_an_employee_quarantined_on_the_next_load_does_not_make_the_file_shrink(landing):
    folder, warehouse = landing
    path = folder / "bamboohr.csv"
    write(path, [["1", "Payments", "SRE", "2023-03-15", "", ""], ["2", "Payments", "SRE", "2023-03-15", "", ""]], 3600)
    assert load(folder, warehouse).success
    write(path, [["1", "Payments", "SRE", "2023-03-15", "", ""],
                 ["2", "Payments", "SRE", "2023-03-15", "2024-05-01", "Sabbatical"]], 3600)
    result = load(folder, warehouse)
    assert result.success
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.execute("select split_part(reason, ':', 1) from quarantine.hr__headcount").fetchall() == [
            ("unknown termination reason",)]


def test_several_rosters_count_a_leaver_once_and_a_moved_employee_in_one_team(landing):
    folder, warehouse = landing
    # The June export is newer (modified later) than May's: employee 1 moved to Search since.
    write(folder / "bamboohr_may.csv", [["1", "Payments", "SRE", "2023-03-15", "", ""],
                                        ["2", "Payments", "SRE", "2024-01-20", "2025-02-14", "Voluntary"]], 7200)
    write(folder / "bamboohr_june.csv", [["1", "Search", "SRE", "2023-03-15", "", ""],
                                         ["2", "Payments", "SRE", "2024-01-20", "2025-02-14", "Voluntary"]], 3600)
    result = load(folder, warehouse)
    assert result.success
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        teams = conn.execute("select org_unit, source_file, count(*) from raw.hr__headcount "
                             "where employee_id = ? group by all", [hashed("1")]).fetchall()
        leavers = conn.execute("select employee_id, source_file from raw.hr__terminations").fetchall()
        doubled = conn.execute("select count(*) from (select snapshot_date, employee_id from raw.hr__headcount "
                               "group by all having count(*) > 1)").fetchone()[0]
    assert [(team, source) for team, source, _ in teams] == [("Search", "bamboohr_june.csv")]
    assert leavers == [(hashed("2"), "bamboohr_june.csv")] and doubled == 0
    [metadata] = [e.materialization.metadata for e in result.get_asset_materialization_events()
                  if e.asset_key == dg.AssetKey(["raw", "hr__terminations"])]
    combined = metadata["files_combined"].value
    assert combined["files_oldest_first"] == ["bamboohr_may.csv", "bamboohr_june.csv"]
    assert combined["employees_taken_from_a_newer_roster"] == {"bamboohr_may.csv": 2}
    assert combined["leavers_merged"] == 1 and "newest roster" in combined["rule"]


def test_a_workbook_whose_report_is_on_another_sheet_is_refused_naming_that_sheet(tmp_path):
    # A Workday export with a cover sheet (the report's prompts) before the report's own sheet.
    path = tmp_path / "workday.xlsx"
    workbook = openpyxl.Workbook()
    workbook.active.title = "Prompts"
    workbook.active.append(["Effective as of", "2025-06-30"])
    report = workbook.create_sheet("Employees")
    for row in [BAMBOO, ["1", "Payments", "SRE", "2023-03-15", "", ""]]:
        report.append(row)
    workbook.save(path)
    with pytest.raises(HrExportError, match=r"other_sheets.*'Employees' \(name the sheet to read as sheet: in a "
                                            r"files: entry"):
        read_hr_file(take_snapshot(path, tmp_path), path.name, read_mapping(tmp_path).settings(path.name, "hr"),
                     {"payments": "Payments"}, NOW, "salt", tmp_path)
    (tmp_path / "export_mapping.yml").write_text("files:\n  - match: workday.xlsx\n    sheet: Employees\n")
    settings = read_mapping(tmp_path).settings(path.name, "hr")
    again = tmp_path / "again"
    again.mkdir()
    loaded = read_hr_file(take_snapshot(path, again), path.name, settings, {"payments": "Payments"}, NOW, "salt", again)
    assert loaded.employees == 1
