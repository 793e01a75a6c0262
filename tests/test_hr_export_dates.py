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

from assets.landing import hr
from assets.landing.assets import hr_exports
from assets.landing.hr import HrExportError, read_hr_file
from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.landing.mapping import read_mapping
from assets.landing.resource import LandingFolderResource
from assets.landing.snapshot import take_snapshot
from assets.landing.survey import SurveyExportError, read_survey_exports
from assets.landing.validation import RowError
from assets.landing.values import DATE_PATTERNS, AmbiguousDates, DatePattern
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


def materialization_metadata(result, table: str) -> dict:
    """The metadata the run's materialization of ``raw.<table>`` carries."""
    [metadata] = [e.materialization.metadata for e in result.get_asset_materialization_events()
                  if e.asset_key == dg.AssetKey(["raw", table])]
    return metadata


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
    metadata = materialization_metadata(result, "hr__terminations")
    combined = metadata["files_combined"].value
    assert combined["files_oldest_first"] == ["bamboohr_may.csv", "bamboohr_june.csv"]
    assert combined["employees_taken_from_a_newer_roster"] == {"bamboohr_may.csv": 2}
    assert combined["leavers_merged"] == 1 and "newest roster" in combined["rule"]


def test_an_employee_a_newer_roster_of_their_team_drops_is_reported(landing):
    # Exports of active employees only: employee 2 left Payments between May and June and June
    # does not list them; Search is in May's export only (June's is Payments' alone), so its
    # employee is not reported.
    folder, warehouse = landing
    write(folder / "bamboohr_may.csv", [["1", "Payments", "SRE", "2023-03-15", "", ""],
                                        ["2", "Payments", "SRE", "2024-01-20", "", ""],
                                        ["4", "Search", "SRE", "2024-01-20", "", ""]], 7200)
    write(folder / "bamboohr_june.csv", [["1", "Payments", "SRE", "2023-03-15", "", ""],
                                         ["5", "Payments", "SRE", "2025-06-02", "", ""]], 3600)
    # A snapshot file of a contractor team dated today, after the rosters' month opening: the
    # rosters' latest month is still the one compared.
    (folder / "hr_headcount.csv").write_text(csv_text([
        ["snapshot_date", "employee_id", "org_unit", "role", "critical_role"],
        [datetime.now(UTC).date().isoformat(), "9", "Search", "SRE", "false"]]))
    os.utime(folder / "hr_headcount.csv", (datetime.now(UTC).timestamp() - 3600,) * 2)
    result = load(folder, warehouse)
    assert result.success
    metadata = materialization_metadata(result, "hr__headcount")
    assert metadata["files_combined"].value["missing_from_a_newer_roster"] == {
        "bamboohr_may.csv": {"bamboohr_june.csv": 1}}


def hr_rows(warehouse, query: str, *parameters) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(query, list(parameters)).fetchall()


def may_and_june_rosters(folder, may_leaving: tuple[str, str], june_leaving: tuple[str, str]) -> None:
    """A May and a June roster (written an hour apart) in which employee 2's termination date
    and type are ``may_leaving`` and ``june_leaving``; June also lists a new hire."""
    write(folder / "bamboohr_may.csv", [["1", "Payments", "SRE", "2023-03-15", "", ""],
                                        ["2", "Payments", "SRE", "2024-01-20", *may_leaving]], 7200)
    write(folder / "bamboohr_june.csv", [["1", "Payments", "SRE", "2023-03-15", "", ""],
                                         ["2", "Payments", "SRE", "2024-01-20", *june_leaving],
                                         ["3", "Search", "SRE", "2025-06-02", "", ""]], 3600)


def test_a_notice_rescinded_in_the_newer_roster_leaves_no_leaver(landing):
    folder, warehouse = landing
    # May's roster has employee 2 leaving on 20 May; June's lists them active (notice withdrawn).
    may_and_june_rosters(folder, ("2025-05-20", "Resignation"), ("", ""))
    assert load(folder, warehouse).success
    assert hr_rows(warehouse, "select * from raw.hr__terminations") == []
    sources = hr_rows(warehouse, "select distinct source_file from raw.hr__headcount where employee_id = ? and "
                                 "snapshot_date = '2025-06-01'", hashed("2"))
    assert sources == [("bamboohr_june.csv",)]


def test_a_termination_date_corrected_in_the_newer_roster_is_one_leaver(landing):
    folder, warehouse = landing
    may_and_june_rosters(folder, ("2025-05-31", "Voluntary"), ("2025-05-30", "Voluntary"))
    assert load(folder, warehouse).success
    assert hr_rows(warehouse, "select employee_id, termination_date, source_file from raw.hr__terminations") == [
        (hashed("2"), "2025-05-30", "bamboohr_june.csv")]


def test_an_old_roster_corrected_later_does_not_outrank_a_newer_roster(landing):
    folder, warehouse = landing
    # March's export corrected (or copied without -t) after June's was dropped: modified later.
    write(folder / "bamboohr_2025-03.csv", [["1", "Payments", "SRE", "2023-03-15", "", ""],
                                            ["2", "Payments", "SRE", "2024-01-20", "", ""],
                                            ["4", "Search", "SRE", "2025-02-03", "", ""]], 600)
    # Since March: employee 1 moved to Search, 2 left in May, 5 joined in June.
    write(folder / "bamboohr_2025-06.csv", [["1", "Search", "SRE", "2023-03-15", "", ""],
                                            ["2", "Payments", "SRE", "2024-01-20", "2025-05-16", "Voluntary"],
                                            ["4", "Search", "SRE", "2025-02-03", "", ""],
                                            ["5", "Payments", "SRE", "2025-06-02", "", ""]], 7200)
    result = load(folder, warehouse)
    assert result.success
    assert hr_rows(warehouse, "select distinct org_unit, source_file from raw.hr__headcount where employee_id = ?",
                   hashed("1")) == [("Search", "bamboohr_2025-06.csv")]
    assert hr_rows(warehouse, "select max(snapshot_date) from raw.hr__headcount where employee_id = ?",
                   hashed("2")) == [("2025-05-01",)]
    assert hr_rows(warehouse, "select employee_id, source_file from raw.hr__terminations") == [
        (hashed("2"), "bamboohr_2025-06.csv")]
    metadata = materialization_metadata(result, "hr__headcount")
    combined = metadata["files_combined"].value
    assert combined["files_oldest_first"] == ["bamboohr_2025-03.csv", "bamboohr_2025-06.csv"]
    assert combined["ranked_by"]["bamboohr_2025-06.csv"]["latest_hire_or_snapshot_date"] == "2025-06-02"
    assert combined["employees_taken_from_a_newer_roster"] == {"bamboohr_2025-03.csv": 3}


def test_a_roster_ranks_by_the_dates_it_shows_up_to_the_load(tmp_path):
    # A notice ahead of the load (31 July, loaded 30 June) says nothing of when the file was written.
    loaded = roster(tmp_path, [["1", "Payments", "SRE", "2023-03-15", "2025-02-03", "Voluntary"],
                               ["2", "Payments", "SRE", "2024-01-20", "2025-07-31", "Resignation"],
                               ["3", "Platform", "SRE", "2025-06-20", "", ""]])
    assert loaded.as_of == ("2024-01-20", "2025-02-03")


def test_a_superseded_rosters_quarantined_rows_are_not_kept(landing):
    folder, warehouse = landing
    # May: employee 3's team unknown and a row without an id; June lists 3 in a known team and
    # every employee May did, and has a quarantined row of its own (employee 6).
    write(folder / "bamboohr_may.csv", [["1", "Payments", "SRE", "2023-03-15", "", ""],
                                        ["3", "Platform", "SRE", "2024-01-20", "", ""],
                                        ["", "Payments", "SRE", "2024-02-01", "", ""]], 7200)
    write(folder / "bamboohr_june.csv", [["1", "Payments", "SRE", "2023-03-15", "", ""],
                                         ["3", "Search", "SRE", "2024-01-20", "", ""],
                                         ["6", "Platform", "SRE", "2025-06-02", "", ""]], 3600)
    result = load(folder, warehouse)
    assert result.success
    quarantined = hr_rows(warehouse, "select source_file, split_part(reason, ':', 1), "
                                     "json_extract_string(raw_row, '$.employee_id') from quarantine.hr__headcount")
    assert quarantined == [("bamboohr_june.csv", "unknown team", hashed("6"))]
    metadata = materialization_metadata(result, "hr__headcount")
    assert metadata["files_combined"].value["quarantined_rows_superseded"] == {"bamboohr_may.csv": 2}


def test_a_quarantined_row_stays_while_its_roster_is_the_newest_for_that_employee(landing):
    folder, warehouse = landing
    # Employee 3 is no longer in June's export (left long ago): May is still their newest
    # roster, so May's row for them stays, and so does May's row without an id; employee 8's
    # May row goes (June lists 8 in a known team).
    write(folder / "bamboohr_may.csv", [["1", "Payments", "SRE", "2023-03-15", "", ""],
                                        ["3", "Payments", "SRE", "2022-01-20", "2023-01-31", "Sabbatical"],
                                        ["", "Payments", "SRE", "2024-02-01", "", ""],
                                        ["8", "Platform", "SRE", "2024-01-20", "", ""]], 7200)
    write(folder / "bamboohr_june.csv", [["1", "Payments", "SRE", "2023-03-15", "", ""],
                                         ["5", "Search", "SRE", "2025-06-02", "", ""],
                                         ["8", "Search", "SRE", "2024-01-20", "", ""]], 3600)
    assert load(folder, warehouse).success
    assert hr_rows(warehouse, "select source_file, split_part(reason, ':', 1) from quarantine.hr__headcount "
                              "order by source_line") == [("bamboohr_may.csv", "unknown termination reason"),
                                                          ("bamboohr_may.csv", "missing id")]


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


# -- The date rules every export shares: each month-first pattern has its day-first twin (so an
# ambiguous file always stops), one ISO rule for the Python reading and the HR loader's SQL, an
# ambiguity message that says why, a date sample independent of row order, and a bound on how far
# ahead a roster's termination date may lie.


def test_every_month_first_pattern_has_its_day_first_twin():
    month_first = [p for p in DATE_PATTERNS if p.startswith("%m/%d/")]
    assert month_first and all(p.replace("%m/%d/", "%d/%m/", 1) in DATE_PATTERNS for p in month_first)


@pytest.mark.parametrize("values", [["05/02/25 10:00", "03/04/25 11:00"], ["05/02/25 10:00:00", "03/04/25 11:00:00"],
                                    ["05/02/2025 1:56:43 PM", "03/04/2025 9:00:00 AM"]])
def test_a_file_dated_on_days_1_to_12_stops_whatever_its_time_of_day(values):
    with pytest.raises(AmbiguousDates, match="no day above 12"):
        DatePattern.find(values)


@pytest.mark.parametrize(("values", "pattern"), [
    (["25/02/25 10:00", "03/04/25 11:00"], "%d/%m/%y %H:%M"),
    (["02/25/25 10:00", "03/04/25 11:00"], "%m/%d/%y %H:%M"),
    (["25/02/2025 1:56:43 PM", "03/04/2025 9:00:00 AM"], "%d/%m/%Y %I:%M:%S %p"),
    (["02/25/2025 1:56:43 PM", "03/04/2025 9:00:00 AM"], "%m/%d/%Y %I:%M:%S %p"),
    (["01/01/2025 10:00", "02/02/2025 11:00"], "%m/%d/%Y %H:%M"),  # both read alike: month first, as before
])
def test_a_day_above_12_settles_every_pattern_pair(values, pattern):
    assert DatePattern.find(values).pattern == pattern


def test_a_uk_roster_with_12_hour_times_reads_day_first(tmp_path):
    loaded = roster(tmp_path, [["1", "Payments", "SRE", "15/03/2023 9:00:00 AM", "03/02/2025 5:30:00 PM", "Voluntary"],
                               ["2", "Payments", "SRE", "20/01/2024 9:00:00 AM", "", ""]])
    assert loaded.diagnosis["hire_date_pattern"] == "%d/%m/%Y %I:%M:%S %p" and loaded.quarantine.height == 0
    assert loaded.terminations["termination_date"].to_list() == ["2025-02-03"]


ISO_CASES = ["2024-01-05", "2024-01-05 10:00", "2024-01-05T10:00:00", "2024-01-05T10:00:00Z",
             "2024-01-05T23:30:00-05:00", "2024-01-05T00:30:00+0100", "2024-01-05T00:30:00+01",
             "2024-01-05 10:00:00.1234567", "2024-01-05 00:10:00 UTC", "2024-01-05T00:30:00+01:00",
             "20240105", "6/1/24", "2024-1-5", "2024-01-05T10", "2024-01-05 10:00 EST", "2024-02-30",
             "2024-01-05 25:00", "2024-01-05T10:00:00+25:00"]


def test_python_and_the_hr_sql_read_iso_alike_offsets_as_the_utc_date():
    far = datetime(2100, 1, 1, tzinfo=UTC)

    def python(value):
        try:
            return DatePattern("iso").parse(value, "c", far).date()
        except RowError:
            return None

    with duckdb.connect() as conn:
        conn.execute("create table data as select unnest(?::varchar[]) as c0", [ISO_CASES])
        sql = dict(conn.execute(f"select c0, {hr._date_sql('c0', DatePattern('iso'))} from data").fetchall())
    assert {v: sql[v] for v in ISO_CASES} == {v: python(v) for v in ISO_CASES}
    assert sql["2024-01-05T23:30:00-05:00"].isoformat() == "2024-01-06"
    assert sql["2024-01-05T00:30:00+0100"].isoformat() == "2024-01-04" and sql["20240105"] is None


def test_an_hr_file_of_iso_timestamps_with_offsets_loads_as_utc_dates(tmp_path):
    loaded = roster(tmp_path, [["1", "Payments", "SRE", "2024-01-05T00:00:00Z", "2025-03-01T00:30:00+01:00",
                                "Voluntary"],
                               ["2", "Payments", "SRE", "2024-01-20T09:00:00+00:00", "", ""],
                               ["3", "Payments", "SRE", "20240105", "", ""]])
    assert loaded.diagnosis["hire_date_pattern"] == "iso"
    assert loaded.terminations["termination_date"].to_list() == ["2025-02-28"]
    [reason] = loaded.quarantine["reason"].to_list()  # compact 20240105 is not ISO here
    assert reason.startswith("bad date: hire_date '20240105' is not in the date pattern iso (")
    assert "that reads 3 of the file's 4 distinct date values" in reason


def test_contradicting_values_are_not_said_to_have_no_day_above_12():
    with pytest.raises(AmbiguousDates) as error:
        DatePattern.find(["01/15/2024", "02/03/2024", "13/01/2024"], file="survey.csv", section="survey")
    message = str(error.value)
    assert "no day above 12" not in message and "contradict each other" in message
    assert "'01/15/2024' only month first (%m/%d/%Y)" in message and "'13/01/2024' only day first (%d/%m/%Y)" in message
    assert "date_format under survey:" in message and "'%m/%d/%Y' or '%d/%m/%Y'" in message


def test_the_date_sample_does_not_depend_on_the_row_order(tmp_path, monkeypatch):
    samples = []

    class Recording(DatePattern):
        @classmethod
        def find(cls, values, *args, **kwargs):
            samples.append(list(values))
            return DatePattern.find(values, *args, **kwargs)

    monkeypatch.setattr(hr, "DatePattern", Recording)
    monkeypatch.setattr(hr, "DATE_SAMPLE", 20)
    rows = [[str(i), "Payments", "SRE", f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}",
             f"2025-{1 + i % 5:02d}-{1 + i % 27:02d}", "Voluntary"] for i in range(400)]
    roster(tmp_path / "a", rows)
    roster(tmp_path / "b", rows[::-1])
    roster(tmp_path / "c", rows[200:] + rows[:200])
    assert len(samples[0]) == 20 and samples[0] == samples[1] == samples[2]
