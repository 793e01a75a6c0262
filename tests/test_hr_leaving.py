"""What a roster's termination means: a date far ahead (a fixed-term contract's end), a reason
that is no leaving (a conversion), and a rehire's two spells of employment.

The exports in tests/data/hr are the shapes the third adversarial trial built from the tools'
documentation (/tmp/adv3_exports/in): Deel's People export (Worker ID, Start date, End date,
Termination reason), ADP Workforce Now (Hire Date, Rehire Date and the last Termination Date
on an Active profile) and Workday (Original Hire Date beside the latest Hire Date)."""

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from hr_roster import read_roster

from assets.landing import hr
from assets.landing.mapping import MappingError, read_mapping
from assets.landing.resource import LandingFolderResource

DATA = Path(__file__).parent / "data" / "hr"
DEEL = DATA / "deel_people_fixed_term.csv"
hashed = LandingFolderResource(path=".", hr_id_salt="salt").pseudonymise
DEEL_MAPPING = "hr:\n  columns: {employee_id: Worker ID}\n"


def months(loaded, employee: str) -> list[str]:
    return sorted(m[:7] for m in loaded.headcount.filter(pl.col("employee_id") == hashed(employee))["snapshot_date"])


def month_range(first: str, last: str) -> list[str]:
    return [m.strftime("%Y-%m") for m in pl.date_range(datetime.fromisoformat(f"{first}-01"),
                                                         datetime.fromisoformat(f"{last}-01"), "1mo", eager=True)]


def test_a_fixed_term_end_years_ahead_counts_the_worker_and_withholds_only_the_leaving(tmp_path):
    # Contractor D-1001 started 2024-03-01 and their contract ends 2028-02-29, 19 months after the load.
    loaded = read_roster(tmp_path, DEEL.name, DEEL_MAPPING, datetime(2025, 8, 2, tzinfo=UTC), source=DEEL)
    assert months(loaded, "D-1001") == month_range("2024-03", "2025-08")
    [reason] = loaded.quarantine.filter(pl.col("source_line") == 2)["reason"].to_list()
    assert reason.startswith(
        "termination far ahead: termination_date 2028-02-29 is more than 366 days ahead of the load: the employee "
        "counts as employed and their leaving is not counted. Check the date in the HR tool: a fixed-term "
        "contract's end stays here until it is 366 days ahead")
    assert "mistyped year" in reason and "missing termination reason" in reason
    assert loaded.terminations.height == 0


def test_a_mistyped_year_counts_the_employee_up_to_the_load_never_as_a_leaver(tmp_path):
    text = ("Employee #,Department,Job Title,Hire Date,Termination Date,Termination Type\n"
            "1,Payments,SRE,2023-03-15,2205-03-01,Resignation\n2,Payments,SRE,2023-03-15,2026-06-30,Resignation\n")
    loaded = read_roster(tmp_path, "bamboohr.csv", "", datetime(2025, 6, 30, tzinfo=UTC), text)
    assert hr.NOTICE_DAYS_AHEAD == 366
    [reason] = loaded.quarantine["reason"].to_list()
    assert reason.startswith("termination far ahead: termination_date 2205-03-01 is more than 366 days ahead")
    assert months(loaded, "1") == months(loaded, "2") == month_range("2024-01", "2025-06")
    assert loaded.terminations.height == 0
    assert any(note.startswith("1 termination dates after the load date") for note in loaded.notes)


def test_a_reason_listed_as_no_leaving_ends_the_employment_without_a_leaver_or_quarantine(tmp_path):
    # D-1003, a contractor, was converted to an EOR employee (D-1004 from 2025-07-01) on 2025-06-30.
    mapping = DEEL_MAPPING + "  not_leaver_reasons: [Converted to EOR employee]\n"
    loaded = read_roster(tmp_path, DEEL.name, mapping, datetime(2025, 8, 2, tzinfo=UTC), source=DEEL)
    assert months(loaded, "D-1003") == month_range("2024-02", "2025-06")
    assert months(loaded, "D-1004") == ["2025-07", "2025-08"]
    assert loaded.terminations.height == 0
    assert loaded.quarantine["source_line"].to_list() == [2]  # D-1001's contract end only
    unmapped = read_roster(tmp_path / "unmapped", DEEL.name, DEEL_MAPPING, datetime(2025, 8, 2, tzinfo=UTC),
                           source=DEEL)
    [reason] = unmapped.quarantine.filter(pl.col("source_line") == 4)["reason"].to_list()
    assert reason.startswith("unknown termination reason: 'Converted to EOR employee'")
    assert "hr.not_leaver_reasons when it is no leaving" in reason


def test_a_reason_in_two_of_the_reason_lists_stops_the_load_naming_both(tmp_path):
    (tmp_path / "export_mapping.yml").write_text(
        "hr:\n  voluntary_reasons: [Transfer]\n  not_leaver_reasons: [transfer, Conversion]\n")
    with pytest.raises(MappingError, match=r"\['transfer'\] is under both voluntary_reasons and not_leaver_reasons"):
        read_mapping(tmp_path)


@pytest.mark.parametrize("written", ["~", "null", "Null", "NULL"])
def test_a_list_item_yaml_reads_as_null_stops_the_load_naming_the_list(tmp_path, written):
    # Read as text it would be the reason or title 'none' (fifth adversarial trial, review).
    (tmp_path / "export_mapping.yml").write_text(f"hr:\n  critical_roles: [Staff SRE, {written}]\n")
    with pytest.raises(MappingError, match=r"hr: an empty value in critical_roles \(YAML reads an unquoted ~, null"):
        read_mapping(tmp_path)


ADP_MAPPING = ("hr:\n  columns: {employee_id: Associate ID, org_unit: Home Department Description, "
               "role: Job Title Description, termination_reason: \"Voluntary/Involuntary Termination Flag\"}\n")


@pytest.mark.parametrize(("export", "mapping", "rehired"), [
    # ADP: Baker hired 03/01/2019, terminated 05/15/2024 (Resignation, Voluntary), rehired
    # 01/06/2025, Position Status Active; Chen left 09/30/2025 (Reduction in Force).
    ("adp_wfn_rehire.csv", ADP_MAPPING, "G3Q7XK1B3"),
    # Workday: the same worker with Original Hire Date 2019-03-01, Hire Date 2025-01-06 and the
    # old Termination Date 2024-05-15.
    ("workday_rehire.csv", "", "21002"),
])
def test_a_rehired_employee_leaves_at_the_old_termination_and_counts_again_from_the_rehire(
        tmp_path, export, mapping, rehired):
    loaded = read_roster(tmp_path, export, mapping, datetime(2025, 10, 15, tzinfo=UTC), source=DATA / export)
    assert loaded.quarantine.height == 0
    assert months(loaded, rehired) == month_range("2024-01", "2024-05") + month_range("2025-02", "2025-10")
    leavers = loaded.terminations.sort("termination_date")
    assert leavers.select("termination_date", "voluntary").rows() == [("2024-05-15", "true"), ("2025-09-30", "false")]
    assert leavers["employee_id"][0] == hashed(rehired)
    headcount = loaded.headcount.group_by("snapshot_date").len().sort("snapshot_date")
    assert dict(headcount.iter_rows()) == {f"{m}-01": 3 if "2024-06" <= m <= "2025-01" or m == "2025-10" else 4
                                          for m in month_range("2024-01", "2025-10")}
    assert loaded.as_of == ("2025-01-06", "2025-09-30")
    assert loaded.notes == []


def test_a_termination_after_the_rehire_ends_the_current_spell_counted_from_the_rehire(tmp_path):
    # ADP after a second leaving: the termination is the latest spell's; the first spell's end is lost.
    text = ("Associate ID,Home Department Description,Job Title Description,Hire Date,Rehire Date,"
            "Termination Date,Voluntary/Involuntary Termination Flag\n"
            "A1,Payments,SRE,03/01/2019,02/10/2024,03/31/2025,Voluntary\n")
    loaded = read_roster(tmp_path, "adp.csv", ADP_MAPPING, datetime(2025, 10, 15, tzinfo=UTC), text)
    assert months(loaded, "A1") == month_range("2024-03", "2025-03")
    assert loaded.terminations.select("termination_date", "voluntary").rows() == [("2025-03-31", "true")]
    [note] = loaded.notes
    assert note == ("1 rehired employees without the end of their earlier employment (no termination date before "
                    "the rehire date): counted from their rehire date only, neither employed nor a leaver before it")


def test_a_termination_before_the_hire_without_a_rehire_date_names_the_rehire_column_to_export(tmp_path):
    # A Workday report with the latest Hire Date only: the old termination cannot be placed.
    text = ("Employee ID,Supervisory Organization,Hire Date,Termination Date,Primary Termination Reason\n"
            "21002,Payments,2025-01-06,2024-05-15,Terminate Employee > Voluntary > Other Job\n")
    loaded = read_roster(tmp_path, "workday.csv", "", datetime(2025, 10, 15, tzinfo=UTC), text)
    [reason] = loaded.quarantine["reason"].to_list()
    assert reason == ("bad date: terminated before hired: termination_date 2024-05-15 is before hire_date "
                      "2025-01-06; if the employee was rehired, export the rehire date too (ADP Workforce Now: Rehire "
                      "Date; Workday: Original Hire Date beside Hire Date) or name its column as hr.columns.rehire_date")


def test_a_rehire_before_the_hire_is_a_bad_date(tmp_path):
    text = ("Employee ID,Supervisory Organization,Original Hire Date,Hire Date,Termination Date,"
            "Primary Termination Reason\n21002,Payments,2025-01-06,2019-03-01,,\n")
    loaded = read_roster(tmp_path, "workday.csv", "", datetime(2025, 10, 15, tzinfo=UTC), text)
    [reason] = loaded.quarantine["reason"].to_list()
    assert reason == ("bad date: rehired before hired: rehire_date 2019-03-01 is before hire_date 2025-01-06 "
                      "(Workday: Hire Date before Original Hire Date)")
