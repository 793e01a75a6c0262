"""Contractors, interns and other non-employees on an HR roster: attrition is about employees,
so with the mapping's employment type lists a row of an excluded type counts in neither
headcount nor leavers (and the file's notes and metadata count it), and a type in neither list
is quarantined, never silently counted or dropped. Without the lists the counts stay as they
were and the load's notes point to the setting.

tests/data/hr/bamboohr_employment_status.csv is a BambooHR custom report with the Employment
Status field, whose values each account configures (Full-Time, Part-Time, Contractor, Intern...;
BambooHR's "Managing Contractors in BambooHR": set the Employment Status to Contractor to tell
them from employees in reports, bamboohr.screenstepslive.com/m/61969/l/1974311; its API's field
list: employmentHistoryStatus, "options are customized by account", documentation.bamboohr.com/
docs/list-of-field-names). The other header names are the tools': Workday's Worker Type
(Employee, Contingent Worker) and Employee Type, which contingent workers do not have
(service.louisville.edu KB 20740, apis.io/schemas/workday/worker), Personio's employment type
(internal, external: developer.personio.de discussion 65afe627d69dd6001cc60433)."""

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from conftest import landing_beside_warehouse
from hr_roster import load_hr_exports, read_roster

from assets.landing.hr import HrExportError
from assets.landing.mapping import MappingError, read_mapping
from assets.landing.resource import LandingFolderResource

DATA = Path(__file__).parent / "data" / "hr"
ROSTER = DATA / "bamboohr_employment_status.csv"
NOW = datetime(2025, 6, 15, tzinfo=UTC)
TYPES = "hr:\n  counted_employment_types: [Full-Time, Part-Time]\n  excluded_employment_types: [Contractor, Intern]\n"
hashed = LandingFolderResource(path=".", hr_id_salt="salt").pseudonymise


def read(folder: Path, mapping: str, text: str | None = None, name: str = ROSTER.name):
    """The roster (or ``text`` under ``name``) read as the HR asset reads one file."""
    return read_roster(folder, name, mapping, NOW, text, source=None if text is not None else ROSTER)


def employees(table: pl.DataFrame) -> set[str]:
    return set(table["employee_id"])


def ids(*numbers: str) -> set[str]:
    return {hashed(n) for n in numbers}


def test_contractors_and_interns_are_neither_headcount_nor_leavers(tmp_path):
    loaded = read(tmp_path, TYPES)
    assert employees(loaded.headcount) == ids("101", "102", "103")
    # June 2025 opens with Ann and Bob; Fay, a contractor since 2023, is not in it.
    assert employees(loaded.headcount.filter(pl.col("snapshot_date") == "2025-06-01")) == ids("101", "102")
    # Di's contract end and Eve's internship end are no leavers; Cy's resignation is.
    assert loaded.terminations["employee_id"].to_list() == [hashed("103")]
    assert loaded.quarantine.height == 0
    assert loaded.diagnosis["excluded_employment_types"] == {"Contractor": 2, "Intern": 1}
    assert ("3 rows of employment types under hr.excluded_employment_types (Contractor: 2, Intern: 1) left out: in "
            "neither headcount nor leavers") in loaded.notes
    # Left out, not lost: the file still lists six people (what the shrink check compares).
    assert loaded.employees == 6


def test_a_type_in_neither_list_is_quarantined_not_counted_nor_dropped(tmp_path):
    # A later export brings a type the mapping does not know yet (Temporary) and one row without a type.
    text = ROSTER.read_text() + ("107,Gus,Gray,Payments,QA Engineer,Temporary,2025-03-03,,,\n"
                                 "108,Hal,Hill,Payments,QA Engineer,,2024-03-04,,,\n")
    loaded = read(tmp_path, TYPES, text)
    assert employees(loaded.headcount) == ids("101", "102", "103")
    reasons = dict(zip(loaded.quarantine["source_line"], loaded.quarantine["reason"]))
    assert set(reasons) == {8, 9}
    assert reasons[8].startswith("unknown employment type: 'Temporary' is in neither list: the row is neither counted "
                                 "nor left out until the type is listed under hr.counted_employment_types (employees) "
                                 "or hr.excluded_employment_types (contractors, interns) in export_mapping.yml")
    assert reasons[9].startswith("missing employment type:")
    assert '"employment_type":"Temporary"' in loaded.quarantine["raw_row"][0]
    # Listed, the type counts: Gus is employed from March.
    listed = read(tmp_path / "listed", TYPES.replace("Part-Time]", "Part-Time, temporary]"), text)
    assert hashed("107") in employees(listed.headcount)
    assert set(listed.quarantine["source_line"]) == {9}


def test_without_the_lists_everyone_counts_as_today_and_the_notes_say_so(tmp_path):
    loaded = read(tmp_path, "")
    assert employees(loaded.headcount) == ids("101", "102", "103", "104", "105", "106")
    assert sorted(loaded.terminations["employee_id"]) == sorted(ids("103", "104", "105"))
    [note] = [n for n in loaded.notes if n.startswith("employment types ")]
    assert note.startswith("employment types Contractor: 2, Full-Time: 2, Intern: 1, Part-Time: 1: every row counts as "
                           "an employee in headcount and leavers, contractors and interns too")
    assert "hr.counted_employment_types" in note and "hr.excluded_employment_types" in note
    assert "excluded_employment_types" not in loaded.diagnosis
    # A roster of employees' types only says nothing.
    employees_only = "".join(line for line in ROSTER.read_text().splitlines(keepends=True)
                             if "Contractor" not in line and "Intern" not in line)
    quiet = read(tmp_path / "quiet", "", employees_only)
    assert not [n for n in quiet.notes if n.startswith("employment types ")]


def test_workday_worker_type_is_read_and_hr_columns_names_another_type_column(tmp_path):
    text = ("Employee ID,Supervisory Organization,Business Title,Worker Type,Employee Type,Hire Date,Termination Date,"
            "Primary Termination Reason\n"
            "W1,Payments,Software Engineer,Employee,Regular,2022-01-10,,\n"
            "W2,Payments,Software Engineer,Employee,Intern,2025-01-06,,\n"
            "C1,Payments,Consultant,Contingent Worker,,2024-02-01,2025-01-31,"
            "Terminate Employee > Voluntary > End of Contract\n")
    by_worker_type = read(tmp_path, "hr:\n  counted_employment_types: [Employee]\n"
                                    "  excluded_employment_types: [Contingent Worker]\n", text, "workday.csv")
    assert employees(by_worker_type.headcount) == ids("W1", "W2")
    assert by_worker_type.terminations.height == 0
    by_employee_type = read(tmp_path / "employee_type", 'hr:\n  columns: {employment_type: "Employee Type"}\n'
                            '  counted_employment_types: [Regular]\n  excluded_employment_types: [Intern, ""]\n',
                            text, "workday.csv")
    assert employees(by_employee_type.headcount) == ids("W1")
    assert by_employee_type.quarantine.height == 0


def test_the_lists_without_a_type_column_stop_the_load_naming_the_file_and_the_setting(tmp_path):
    with pytest.raises(HrExportError, match=r"bamboohr_us.csv \(bamboohr preset\): export_mapping.yml lists "
                                            r"employment types .* no employment type column.*hr.columns.employment_type"):
        read(tmp_path, TYPES, (DATA / "bamboohr_us.csv").read_text(), "bamboohr_us.csv")


def test_snapshot_files_with_an_employment_type_column_leave_the_excluded_types_out(tmp_path):
    text = ("snapshot_date,employee_id,org_unit,role,critical_role,employment_type\n"
            "2025-05-01,1,Payments,SRE,false,Full-Time\n2025-05-01,2,Payments,SRE,false,Contractor\n")
    loaded = read(tmp_path, TYPES, text, "hr_headcount.csv")
    assert loaded.preset == "snapshots"
    assert employees(loaded.headcount) == ids("1")
    assert loaded.diagnosis["excluded_employment_types"] == {"Contractor": 1}
    # The pipeline's own files without the column list employees only: they load as they are.
    plain = read(tmp_path / "plain", TYPES, "snapshot_date,employee_id,org_unit,role,critical_role\n"
                                            "2025-05-01,1,Payments,SRE,false\n", "hr_headcount.csv")
    assert employees(plain.headcount) == ids("1") and plain.quarantine.is_empty()


@pytest.mark.parametrize("mapping", [
    "hr:\n  counted_employment_types: [Full-Time, Intern]\n  excluded_employment_types: [Contractor, intern]\n",
    ("hr:\n  counted_employment_types: [Full-Time, Intern]\nfiles:\n  - match: 'bamboo*.csv'\n    kind: hr\n"
     "    excluded_employment_types: [Contractor, Intern]\n"),
])
def test_a_type_listed_as_counted_and_excluded_stops_the_load_naming_it(tmp_path, mapping):
    (tmp_path / "export_mapping.yml").write_text(mapping)
    with pytest.raises(MappingError, match=r"\['intern'\] is under both counted_employment_types and "
                                           r"excluded_employment_types; an employment type belongs to one"):
        read_mapping(tmp_path)


def test_the_asset_metadata_counts_the_rows_left_out(tmp_path):
    folder, warehouse = landing_beside_warehouse(tmp_path, {"team": ["Payments"], "source": ["hr_org_unit"],
                                                            "identifier": ["Payments"]})
    shutil.copy(ROSTER, folder / ROSTER.name)
    stamp = datetime.now(UTC).timestamp() - 3600  # an export written an hour ago, not a copy under way
    os.utime(folder / ROSTER.name, (stamp, stamp))
    (folder / "export_mapping.yml").write_text(TYPES, encoding="utf-8")
    metadata = load_hr_exports(folder, warehouse, "hr__terminations")
    assert metadata["rows"].value == 1 and metadata["quarantined"].value == 0
    file = metadata["files"].value[ROSTER.name]
    assert file["excluded_employment_types"] == {"Contractor": 2, "Intern": 1}
    assert any(note.startswith("3 rows of employment types") for note in file["notes"])
