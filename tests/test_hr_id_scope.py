"""Two HR systems whose employee numbers overlap: a BambooHR roster of the US and a Personio
roster of Germany both number their employees from 1 (tests/data/hr/bamboohr_us.csv and
personio_de.csv, from the third adversarial trial, /tmp/adv3_exports/in/h2*). A file's
employee_id_scope keeps them apart; without it the load warns, naming the files and the setting."""

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from conftest import landing_beside_warehouse
from hr_roster import load_hr_exports

from assets.identity import employee_pseudonym
from assets.landing.identity import IdentityMapError, pseudonymised, read_identity_map
from assets.landing.mapping import MappingError, read_mapping

DATA = Path(__file__).parent / "data" / "hr"
PERSONIO = """hr:
  voluntary_reasons: ["Kündigung durch Arbeitnehmer"]
  involuntary_reasons: ["Kündigung durch Arbeitgeber"]
files:
  - match: "personio_*.csv"
    kind: hr{scope}
    columns: {{employee_id: Personalnummer, org_unit: Abteilung, role: Position, hire_date: Eintrittsdatum,
              termination_date: Austrittsdatum, termination_reason: Kündigungsart}}
"""


@pytest.fixture
def landing(tmp_path):
    return landing_beside_warehouse(tmp_path, {"team": ["Payments US", "Payments DE"],
                                               "source": ["hr_org_unit"] * 2,
                                               "identifier": ["Payments US", "Payments DE"]})


def load_us_and_de(folder: Path, warehouse: Path, scope: str):
    """The US roster, then (an hour newer) the German one, loaded with the Personio entry's ``scope``."""
    for age, name in ((7200, "bamboohr_us.csv"), (3600, "personio_de.csv")):
        shutil.copy(DATA / name, folder / name)
        stamp = datetime.now(UTC).timestamp() - age
        os.utime(folder / name, (stamp, stamp))
    (folder / "export_mapping.yml").write_text(PERSONIO.format(scope=scope), encoding="utf-8")
    metadata = load_hr_exports(folder, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        headcount = dict(conn.execute(
            "select org_unit || ' ' || left(snapshot_date, 7), count(distinct employee_id) from raw.hr__headcount "
            "where snapshot_date between '2025-05-01' and '2025-08-01' group by 1 order by 1").fetchall())
        leavers = conn.execute("select org_unit, termination_date, voluntary from raw.hr__terminations").fetchall()
    return metadata, headcount, leavers


def test_overlapping_ids_of_two_hr_systems_are_reported_naming_the_files_and_the_setting(landing):
    folder, warehouse = landing
    metadata, headcount, leavers = load_us_and_de(folder, warehouse, "")
    combined = metadata["files_combined"].value
    assert combined["ids_shared_across_exports"] == [
        {"files": ["bamboohr_us.csv", "personio_de.csv"], "employees": 3}]
    # What the warning is about: US employees 1..3 taken from the German roster.
    assert headcount["Payments US 2025-05"] == 1 and leavers == []


def test_an_id_scope_keeps_the_two_systems_employees_apart(landing):
    folder, warehouse = landing
    metadata, headcount, leavers = load_us_and_de(folder, warehouse, "\n    employee_id_scope: DE")
    assert headcount == {"Payments DE 2025-05": 3, "Payments DE 2025-06": 3, "Payments DE 2025-07": 3,
                         "Payments DE 2025-08": 3, "Payments US 2025-05": 4, "Payments US 2025-06": 4,
                         "Payments US 2025-07": 3, "Payments US 2025-08": 3}
    assert leavers == [("Payments US", "2025-06-30", "true")]
    combined = metadata["files_combined"].value
    assert combined["ids_shared_across_exports"] == [] and combined["employees_taken_from_a_newer_roster"] == {}
    assert metadata["files"].value["personio_de.csv"]["employee_id_scope"] == "DE"


def test_one_company_exported_by_two_tools_is_not_reported(landing):
    # A Workday export beside the BambooHR one it replaces: the same people (one moved team), same hire dates.
    folder, warehouse = landing
    (folder / "bamboohr.csv").write_text("Employee #,Department,Job Title,Hire Date,Termination Date,Termination Type\n"
                                         "1,Payments US,SRE,2021-02-01,,\n2,Payments US,SRE,2022-04-11,,\n")
    (folder / "workday.csv").write_text("Employee ID,Supervisory Organization,Business Title,Hire Date,"
                                        "Termination Date,Primary Termination Reason\n"
                                        "1,Payments DE,SRE,2021-02-01,,\n2,Payments US,SRE,2022-04-11,,\n")
    for age, name in ((7200, "bamboohr.csv"), (3600, "workday.csv")):
        stamp = datetime.now(UTC).timestamp() - age
        os.utime(folder / name, (stamp, stamp))
    assert load_hr_exports(folder, warehouse)["files_combined"].value["ids_shared_across_exports"] == []


def test_an_identity_map_names_a_scoped_employee_by_scope_and_id(tmp_path):
    # As the HR load compares ids: leading zeros, an email's case and the scope's case do not count.
    (tmp_path / "identity_map.yml").write_text(
        "people:\n  - employee_id: 'de:00101'\n    emails: [a@example.com]\n"
        "  - employee_id: DE:Jane.Doe@Example.com\n    emails: [b@example.com]\n"
        "  - employee_id: '101'\n    emails: [c@example.com]\n")
    hashed = pseudonymised(read_identity_map(tmp_path / "identity_map.yml"), "salt")["employee_id"].to_list()
    assert hashed == [employee_pseudonym("salt", "101", "DE"), employee_pseudonym("salt", "jane.doe@example.com", "DE"),
                      employee_pseudonym("salt", "101")]
    assert employee_pseudonym("salt", "101", "DE") != employee_pseudonym("salt", "101")
    # One employee written twice, in two spellings, is refused as for unscoped ids.
    (tmp_path / "identity_map.yml").write_text(
        "people:\n  - employee_id: 'DE:101'\n    emails: [a@example.com]\n"
        "  - employee_id: 'de:0101'\n    emails: [b@example.com]\n")
    with pytest.raises(IdentityMapError, match="is also entry 1"):
        read_identity_map(tmp_path / "identity_map.yml")


@pytest.mark.parametrize(("entry", "message"), [
    ("kind: survey\n    employee_id_scope: DE", "employee_id_scope is for HR files"),
    ("kind: hr\n    employee_id_scope: 'DE:1'", "employee_id_scope must be a short name without ':'"),
])
def test_a_wrong_id_scope_stops_the_load_naming_the_entry(tmp_path, entry, message):
    (tmp_path / "export_mapping.yml").write_text(f"files:\n  - match: personio.csv\n    {entry}\n")
    with pytest.raises(MappingError, match=f"files entry 1: {message}"):
        read_mapping(tmp_path)
