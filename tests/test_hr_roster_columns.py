"""Rosters whose columns the presets must know, or whose absence must be said (trial adv6, N4 N6 N1).

- UKG Pro (Term Date, Term Reason) and Oracle HCM (Person Number, Actual Termination Date, Action
  Reason) rosters loaded with no leaver and no word: their termination columns are now known, and
  a roster without a termination date column warns that it has no leavers.
- A leavers-only export (Personio's Leaving employees) stops with a message saying what it is
  and what to export instead, not "columns not found: hire_date".
- Excel for Mac's MacRoman CSV is read with ``encoding: mac_roman``; a listed critical role (or a
  reason list entry) that matches nothing in the HR exports warns, hinting at the encoding.
"""

from datetime import UTC, datetime

import duckdb
import pytest
from conftest import landing_beside_warehouse
from hr_roster import hr_load_warnings, read_roster

from assets.landing.hr import HrExportError
from assets.landing.mapping import MappingError, read_mapping

NOW = datetime(2024, 9, 15, tzinfo=UTC)
TEAMS = {"team": ["Payments", "Équipe Données"], "source": ["hr_org_unit", "hr_org_unit"],
         "identifier": ["Payments", "Équipe Données"]}


def leavers(loaded) -> list[tuple[str, str]]:
    return sorted(loaded.terminations.select("termination_date", "voluntary").iter_rows())


def test_a_ukg_pro_roster_reads_term_date_and_term_reason(tmp_path):
    text = ("Employee Number,Org Level 1,Job Title,Original Hire Date,Last Hire Date,Term Date,Term Reason,Term Type\n"
            "000101,Payments,SRE,01/15/2024,01/15/2024,,,\n"
            "000102,Payments,Dev,02/01/2024,02/01/2024,05/10/2024,Resignation,V\n"
            "000103,Payments,Dev,02/01/2024,02/01/2024,06/28/2024,Layoff,I\n")
    loaded = read_roster(tmp_path, "ukg_employees.csv", "hr:\n  columns: {org_unit: Org Level 1}\n", NOW, text)
    assert leavers(loaded) == [("2024-05-10", "true"), ("2024-06-28", "false")]
    assert loaded.headcount.filter(snapshot_date="2024-08-01").height == 1
    assert loaded.no_termination_column == "" and loaded.notes == []


def test_a_ukg_pro_rehire_is_two_spells_from_original_and_last_hire_date(tmp_path):
    text = ("Employee Number,Org Level 1,Job Title,Original Hire Date,Last Hire Date,Term Date,Term Reason\n"
            "000104,Payments,SRE,01/15/2024,06/03/2024,03/08/2024,Resignation\n")
    loaded = read_roster(tmp_path, "ukg_employees.csv", "hr:\n  columns: {org_unit: Org Level 1}\n", NOW, text)
    assert leavers(loaded) == [("2024-03-08", "true")]
    assert sorted(loaded.headcount["snapshot_date"]) == ["2024-02-01", "2024-03-01", "2024-07-01", "2024-08-01",
                                                         "2024-09-01"]


def test_an_oracle_hcm_worker_report_loads_without_a_mapping(tmp_path):
    text = ("Person Number,Department,Job,Start Date,Actual Termination Date,Action Reason\n"
            "1001,Payments,SRE,2024-01-15,,\n"
            "1002,Payments,Dev,2024-02-01,2024-05-10,Resignation\n"
            "1003,Payments,Dev,2024-02-01,2024-06-28,Layoff\n")
    loaded = read_roster(tmp_path, "oracle_workers.csv", "", NOW, text)
    assert leavers(loaded) == [("2024-05-10", "true"), ("2024-06-28", "false")]
    assert loaded.headcount.filter(snapshot_date="2024-08-01").height == 1


UNKNOWN_TERMINATION = ("Employee #,Department,Job Title,Hire Date,Leaving Date,Leaving Reason\n"
                       "1,Payments,SRE,2024-01-15,,\n2,Payments,Dev,2024-02-01,2024-05-10,Resignation\n")


def test_a_roster_without_a_termination_column_says_it_has_no_leavers_and_what_to_set(tmp_path):
    loaded = read_roster(tmp_path, "roster.csv", "", NOW, UNKNOWN_TERMINATION)
    assert loaded.terminations.height == 0  # still loads: a roster of active employees is one
    assert loaded.headcount.filter(snapshot_date="2024-08-01").height == 2
    warning = loaded.no_termination_column
    assert warning in loaded.notes
    assert warning.startswith("roster.csv (bamboohr preset): no termination date column found, so this roster has "
                              "no leavers")
    assert "['Leaving Date', 'Leaving Reason'] may be the termination date and reason" in warning
    assert "hr.columns.termination_date" in warning and "export inactive employees too" in warning


def test_the_load_warns_about_a_roster_without_leavers_unless_a_leaver_file_gives_them(tmp_path):
    folder, warehouse = landing_beside_warehouse(tmp_path, TEAMS)
    (folder / "roster.csv").write_text(UNKNOWN_TERMINATION)
    assert [w for w in hr_load_warnings(folder, warehouse) if "no termination date column found" in w] == [
        read_roster(tmp_path / "one", "roster.csv", "", NOW, UNKNOWN_TERMINATION).no_termination_column]
    # Active employees beside the pipeline's own leaver file: the leavers come from that file.
    (folder / "hr_terminations.csv").write_text("employee_id,org_unit,role,critical_role,termination_date,voluntary\n"
                                                "2,Payments,Dev,false,2024-05-10,true\n")
    assert [w for w in hr_load_warnings(folder, warehouse) if "no termination date column found" in w] == []


def test_a_leavers_only_export_says_what_it_is_and_what_to_export(tmp_path):
    text = ("ID,First name,Last name,Department,Position,Termination date,Termination type,Termination reason\n"
            "3,Cleo,C,Payments,Dev,2024-05-10,Employee,Resignation\n")
    with pytest.raises(HrExportError) as error:
        read_roster(tmp_path, "leaving_employees.csv", "", NOW, text)
    message = str(error.value)
    assert "columns not found" not in message
    assert "termination dates but no hire date column: this looks like a list of leavers only" in message
    assert "with inactive (former) employees included" in message and "hr.columns.hire_date" in message


MAC_ROSTER = ("Employee #,Department,Job Title,Hire Date,Termination Date,Termination Type\r"
              "1,Équipe Données,Ingénieur Sécurité,2024-01-15,,\r"
              "2,Payments,Ingénieur Sécurité,2024-02-01,2024-05-10,Voluntary\r"
              "3,Équipe Données,Développeur,2024-02-01,2024-06-10,Voluntary\r").encode("mac_roman")
CRITICAL = "hr:\n  critical_roles: [Ingénieur Sécurité]\n"


def warehouse_rows(warehouse, sql):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_an_excel_for_mac_roster_is_read_with_encoding_mac_roman_in_its_files_entry(tmp_path):
    folder, warehouse = landing_beside_warehouse(tmp_path, TEAMS)
    (folder / "roster.csv").write_bytes(MAC_ROSTER)
    # A UTF-8 roster beside it keeps its own (detected) encoding.
    (folder / "roster_utf8.csv").write_text("Employee #,Department,Job Title,Hire Date,Termination Date,"
                                            "Termination Type\n9,Équipe Données,Ingénieur Sécurité,2024-01-15,"
                                            "2024-07-01,Voluntary\n", encoding="utf-8")
    (folder / "export_mapping.yml").write_text(CRITICAL + "files:\n  - {match: roster.csv, encoding: mac_roman}\n",
                                               encoding="utf-8")
    warnings = hr_load_warnings(folder, warehouse)
    assert warehouse_rows(warehouse, "select org_unit, role, critical_role from raw.hr__terminations "
                                     "order by termination_date") == [
        ("Payments", "Ingénieur Sécurité", "true"), ("Équipe Données", "Développeur", "false"),
        ("Équipe Données", "Ingénieur Sécurité", "true")]
    assert warehouse_rows(warehouse, "select count(*) from quarantine.hr__headcount") == [(0,)]
    assert [w for w in warnings if "hr.critical_roles" in w] == []


def test_a_critical_role_that_matches_no_employee_warns_and_hints_at_the_encoding(tmp_path):
    folder, warehouse = landing_beside_warehouse(tmp_path, TEAMS)
    (folder / "roster.csv").write_bytes(MAC_ROSTER)  # read as Windows-1252: IngŽnieur SŽcuritŽ
    (folder / "export_mapping.yml").write_text(CRITICAL, encoding="utf-8")
    [warning] = [w for w in hr_load_warnings(folder, warehouse) if "hr.critical_roles" in w]
    assert warning.startswith("hr.critical_roles in export_mapping.yml lists ['ingénieur sécurité'], which match no "
                              "employee's role in the HR exports (roster.csv read as cp1252): nobody counts as "
                              "critical by it")
    assert "set encoding: mac_roman" in warning
    # The misread org unit is quarantined as an unknown team, its reason hinting at the encoding.
    reason = ("unknown team: org unit 'ƒquipe DonnŽes' is not in the team map's hr_org_units (the file was read as "
              "cp1252: if its accented letters look garbled, set its encoding in its files: entry of "
              "export_mapping.yml, mac_roman for an Excel for Mac CSV)")
    assert warehouse_rows(warehouse, "select reason from quarantine.hr__headcount") == [(reason,)] * 2


def test_a_reason_list_entry_that_matches_no_termination_reason_warns(tmp_path):
    folder, warehouse = landing_beside_warehouse(tmp_path, TEAMS)
    (folder / "roster.csv").write_text("Employee #,Department,Job Title,Hire Date,Termination Date,Termination Reason\n"
                                       "1,Payments,SRE,2024-01-15,2024-05-10,Resignation\n")
    (folder / "export_mapping.yml").write_text("hr:\n  voluntary_reasons: [Resignaton, Resignation]\n")
    [warning] = [w for w in hr_load_warnings(folder, warehouse) if "hr.voluntary_reasons" in w]
    assert warning.startswith("hr.voluntary_reasons in export_mapping.yml lists ['resignaton'], which match no "
                              "termination reason in the HR exports (roster.csv read as utf-8)")
    assert "mac_roman" not in warning  # an ASCII entry says nothing of the encoding


def test_a_critical_role_found_in_one_of_two_rosters_does_not_warn(tmp_path):
    folder, warehouse = landing_beside_warehouse(tmp_path, TEAMS)
    header = "Employee #,Department,Job Title,Hire Date,Termination Date,Termination Type\n"
    (folder / "us.csv").write_text(header + "1,Payments,Staff SRE,2024-01-15,,\n")
    (folder / "de.csv").write_text(header + "2,Payments,Entwickler,2024-01-15,,\n")
    (folder / "export_mapping.yml").write_text("hr:\n  critical_roles: [Staff SRE, Principal Engineer]\n")
    [warning] = [w for w in hr_load_warnings(folder, warehouse) if "hr.critical_roles" in w]
    assert "lists ['principal engineer']," in warning


def test_a_files_entry_encoding_is_one_of_the_known_ones(tmp_path):
    (tmp_path / "export_mapping.yml").write_text("files:\n  - {match: roster.csv, encoding: macintosh-roman}\n")
    with pytest.raises(MappingError, match=r"files entry 1: encoding 'macintosh-roman' is not one of auto, .*, "
                                           r"latin-1, mac_roman"):
        read_mapping(tmp_path)
    (tmp_path / "export_mapping.yml").write_text("files:\n  - {match: roster.csv, encoding: mac_roman}\n")
    assert read_mapping(tmp_path).settings("roster.csv", "hr").encoding == "mac_roman"
    assert read_mapping(tmp_path).settings("other.csv", "hr").encoding is None
