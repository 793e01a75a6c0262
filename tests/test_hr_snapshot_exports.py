"""HR tools' monthly headcount exports (HiBob, Rippling, UKG, SuccessFactors: one row per
employee per month, with the month, hire and termination dates and a reason) read as
snapshots (sixth trial, N2, N3, K3): the leavers come from the rows with a termination date,
each leaving once however many monthly rows repeat it; a snapshot file whose termination
column is not found says so; a mapped snapshot_date column makes the file a snapshot file (or
the load stops naming the preset to set); and a team-month's headcount is one snapshot, the
month's earliest, with the file's notes naming snapshot dates other than the 1st."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from assets.landing.hr import HrExportError, HrFile, read_hr_file
from assets.landing.mapping import read_mapping
from assets.landing.snapshot import take_snapshot

NOW = datetime(2024, 8, 10, tzinfo=UTC)
HEADER = "Report Month,Employee ID,Department,Job Title,Hire Date,Termination Date,Termination Reason"
SNAPSHOTS_MAPPED = ("hr:\n  preset: snapshots\n  columns: {snapshot_date: Report Month, employee_id: Employee ID, "
                    "org_unit: Department, role: Job Title}\n")


def monthly_export(months: range = range(1, 7), repeat_leaving: bool = False, header: str = HEADER,
                   reason: str = "Resignation") -> str:
    """Employee 7 moves Payments -> Search in April 2024; employee 8 leaves on 2024-06-14 (the
    June row carries the date and reason; ``repeat_leaving``: the July row repeats them, as
    exports listing everyone employed at some time in the month do); 9 stays in Search."""
    rows = [header]
    for m in months:
        month = f"2024-{m:02d}-01"
        leaving = m == 6 or (repeat_leaving and m == 7)
        rows.append(f"{month},7,{'Payments' if m < 4 else 'Search'},Dev,2023-06-01,,")
        rows.append(f"{month},8,Payments,SRE,2023-06-01,{'2024-06-14' if leaving else ''},{reason if leaving else ''}")
        rows.append(f"{month},9,Search,SRE,2023-06-01,,")
    return "\n".join(rows) + "\n"


def read(tmp_path: Path, text: str, mapping: str, name: str = "headcount_by_month.csv") -> HrFile:
    """The file read as the HR asset reads one, Payments and Search being the team map's org units."""
    landing, work = tmp_path / "landing", tmp_path / "work"
    landing.mkdir()
    work.mkdir()
    (landing / name).write_text(text)
    (landing / "export_mapping.yml").write_text(mapping)
    settings = read_mapping(landing).settings(name, "hr")
    return read_hr_file(take_snapshot(landing / name, work), name, settings,
                        {"payments": "Payments", "search": "Search"}, NOW, "salt", work)


def leavers(file: HrFile) -> list[tuple]:
    return sorted(file.terminations.select("org_unit", "termination_date", "voluntary").rows(), key=str)


def people_per_month(file: HrFile) -> list[tuple]:
    return sorted(file.headcount.group_by("snapshot_date", "org_unit").len().rows())


def test_an_unmapped_termination_date_column_of_a_snapshot_export_gives_its_one_leaver(tmp_path):
    """N2, first case: the export's Termination Date and Termination Reason headers are read by
    the roster's names; before, the snapshots preset knew only termination_date, and the leaver
    was lost without a note."""
    file = read(tmp_path, monthly_export(), SNAPSHOTS_MAPPED)
    assert leavers(file) == [("Payments", "2024-06-14", "true")]
    assert file.quarantine.height == 0


def test_mapped_termination_columns_give_leavers_only_from_rows_with_a_termination_date(tmp_path):
    """N2, second case: before, every snapshot row (18) was a leaver, 17 with a null date. A
    leaving repeated on a later monthly row is one leaver, and that later row (after the
    leaving) is not in the headcount."""
    text = monthly_export(range(1, 8), repeat_leaving=True,
                          header=HEADER.replace("Termination Reason", "Voluntary")).replace(",Resignation", ",yes")
    mapping = ("hr:\n  preset: snapshots\n  columns: {snapshot_date: Report Month, employee_id: Employee ID, "
               "org_unit: Department, role: Job Title, termination_date: Termination Date, voluntary: Voluntary}\n")
    file = read(tmp_path, text, mapping)
    assert leavers(file) == [("Payments", "2024-06-14", "true")]
    july = file.headcount.filter(snapshot_date="2024-07-01")
    assert july.height == 2  # 7 and 9; 8 left on 14 June
    assert any("after their termination date" in note for note in file.notes), file.notes


def test_a_termination_reason_the_lists_do_not_cover_withholds_the_leaver_not_the_headcount(tmp_path):
    file = read(tmp_path, monthly_export(reason="Moved away"), SNAPSHOTS_MAPPED)
    assert leavers(file) == []
    assert [r for r in file.quarantine["reason"]] == [
        r for r in file.quarantine["reason"] if r.startswith("unknown termination reason: 'Moved away'")]
    assert file.quarantine.height == 1
    assert file.headcount.filter(snapshot_date="2024-06-01").height == 3


def test_a_snapshot_export_without_a_termination_column_says_so(tmp_path):
    """Its leavers must come from elsewhere (a leaver file): the notes say the file gives none."""
    text = monthly_export().replace("Termination Date", "Last Day Worked")
    file = read(tmp_path, text, SNAPSHOTS_MAPPED)
    assert leavers(file) == []
    [note] = [n for n in file.notes if "termination date" in n]
    assert "hr.columns.termination_date" in note and "no leavers" in note
    assert file.headcount.height == 18


def test_the_pipelines_own_headcount_file_has_no_such_note(tmp_path):
    """hr_headcount.csv's leavers are in hr_terminations.csv beside it: no note on every load."""
    text = "snapshot_date,employee_id,org_unit,role,critical_role\n2024-01-01,7,Payments,Dev,false\n"
    file = read(tmp_path, text, "", name="hr_headcount.csv")
    assert file.preset == "snapshots" and file.headcount.height == 1 and file.notes == []


def test_a_mapped_snapshot_date_reads_the_file_as_snapshots(tmp_path):
    """N3: under the default detection the export looks like a roster; with snapshot_date
    mapped it is read as snapshots: employee 7 counts in Payments for January to March (a roster
    would put them in Search for every month) and no monthly row is quarantined as a duplicate.
    Before, the mapped column was dropped and the file read as a roster."""
    file = read(tmp_path, monthly_export(), "hr:\n  columns: {snapshot_date: Report Month}\n")
    assert file.preset == "snapshots"
    assert people_per_month(file)[:2] == [("2024-01-01", "Payments", 2), ("2024-01-01", "Search", 1)]
    assert ("2024-04-01", "Search", 2) in people_per_month(file)
    assert file.months == [f"2024-{m:02d}" for m in range(1, 7)]
    assert file.quarantine.height == 0
    assert leavers(file) == [("Payments", "2024-06-14", "true")]


def test_a_mapped_snapshot_date_under_a_roster_preset_stops_the_load_naming_the_preset(tmp_path):
    with pytest.raises(HrExportError, match="preset: snapshots"):
        read(tmp_path, monthly_export(), "hr:\n  preset: roster\n  columns: {snapshot_date: Report Month}\n")


def test_snapshot_dates_other_than_the_first_are_named_in_the_notes(tmp_path):
    """K3: a month-end export (31 January, 29 February) and a month with two snapshots load, and
    the notes name the dates and what the models take (each month's earliest snapshot)."""
    text = ("snapshot_date,employee_id,org_unit,role,critical_role\n"
            "2024-01-01,E1,Payments,engineer,False\n2024-01-31,E1,Payments,engineer,False\n"
            "2024-01-31,E2,Payments,engineer,False\n2024-02-29,E1,Payments,engineer,False\n")
    file = read(tmp_path, text, "", name="hr_headcount.csv")
    [note] = [n for n in file.notes if "not on the 1st" in n]
    assert "2024-01-31, 2024-02-29" in note and "2024-01" in note and "earliest" in note


def test_a_team_month_headcount_is_its_earliest_snapshot_of_the_month(warehouse):
    """K3 in the model: January holds the 1st's snapshot (E1, E2) and the 31st's (E1, E3: E2
    left, E3 joined); before, January counted 3 people (the union), never employed at once.
    February's only snapshot is its 29th, its headcount that one."""
    warehouse.raw_rows("config__team_map", [{"team": "Payments", "source": "hr_org_unit", "identifier": "OU-1"}])
    warehouse.raw_rows("hr__headcount", [
        {"snapshot_date": day, "employee_id": employee, "org_unit": "OU-1", "role": "engineer",
         "critical_role": "false", "source_file": "hr_headcount.csv"}
        for day, employee in (("2024-01-01", "E1"), ("2024-01-01", "E2"), ("2024-01-31", "E1"),
                              ("2024-01-31", "E3"), ("2024-02-29", "E1"))])
    warehouse.build("+int_team_month_headcount")
    assert warehouse.rows("select period_month::varchar as month, headcount from intermediate.int_team_month_headcount "
                          "order by 1") == [{"month": "2024-01-01", "headcount": 2}, {"month": "2024-02-01", "headcount": 1}]


def test_each_org_unit_of_a_team_counts_from_its_own_earliest_snapshot(warehouse):
    """The review of the sixth trial's fixes: the earliest snapshot was taken per team, so a
    team of two org units exported on different days (OU-1 on the 1st, OU-2 on the 2nd) kept
    only OU-1's people."""
    warehouse.raw_rows("config__team_map", [{"team": "Payments", "source": "hr_org_unit", "identifier": unit}
                                            for unit in ("OU-1", "OU-2")])
    warehouse.raw_rows("hr__headcount", [
        {"snapshot_date": day, "employee_id": employee, "org_unit": unit, "role": "engineer",
         "critical_role": "false", "source_file": "hr_headcount.csv"}
        for day, employee, unit in (("2024-01-01", "E1", "OU-1"), ("2024-01-01", "E2", "OU-1"),
                                    ("2024-01-02", "E3", "OU-2"), ("2024-01-31", "E4", "OU-2"))])
    warehouse.build("+int_team_month_headcount")
    assert warehouse.rows("select team, headcount from intermediate.int_team_month_headcount") == [
        {"team": "Payments", "headcount": 3}]


def test_a_leaver_file_row_without_a_termination_date_is_quarantined_not_a_leaver(tmp_path):
    """Before, such a row was a leaver with a null date (dbt's not_null test warned)."""
    text = ("employee_id,org_unit,role,critical_role,termination_date,voluntary\n"
            "E1,Payments,engineer,False,2024-03-14,True\nE2,Payments,engineer,False,,False\n")
    file = read(tmp_path, text, "", name="hr_terminations.csv")
    assert leavers(file) == [("Payments", "2024-03-14", "true")]
    assert list(file.quarantine["reason"]) == ["bad date: termination_date is empty"]


def test_a_reason_list_entry_no_snapshot_exports_reason_matches_is_named(tmp_path):
    """The review of the sixth trial's fixes: an HR tool's snapshot export reads its leavers'
    reasons as a roster does, so a misspelt list entry there (a conversion counted as a
    voluntary leaver) must be named as a roster's is; the pipeline's leaver file, with its
    voluntary flag, reads no reason."""
    mapping = SNAPSHOTS_MAPPED + "  voluntary_reasons: [Resignation]\n  not_leaver_reasons: [Converson to EOR]\n"
    file = read(tmp_path, monthly_export(), mapping)
    assert file.unmatched_list_entries == {"hr.voluntary_reasons": [], "hr.not_leaver_reasons": ["converson to eor"]}
    (tmp_path / "own").mkdir()
    flagged = read(tmp_path / "own", "employee_id,org_unit,role,critical_role,termination_date,voluntary\n"
                   "8,Payments,SRE,false,2024-06-14,true\n",
                   "hr:\n  not_leaver_reasons: [Converson to EOR]\n", name="hr_terminations.csv")
    assert flagged.unmatched_list_entries == {}
