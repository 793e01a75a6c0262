"""What an export or the mapping file names reaches the HR loader's DuckDB SQL as text, never as
SQL: an export saved as "Q1 '24 headcount.csv" (the README says to land files as the tools name
them) and a date_format with an apostrophe ("18 Jan '24") load like any other (fifth
adversarial trial, N1 and N6)."""

import os
import time

import duckdb
from conftest import landing_beside_warehouse
from hr_roster import load_hr_exports

BAMBOOHR = ("Employee #,Department,Job Title,Employment Status,Hire Date,Termination Date,Termination Type\n"
            "101,Payments,Engineer,Full-Time,{hire_101},,\n"
            "102,Payments,Engineer,Full-Time,{hire_102},{leaving_102},Resignation\n")


def settled(path) -> None:
    """Modified well before the landing resource's settle time, as a finished copy is."""
    past = time.time() - 3600
    os.utime(path, (past, past))


def load_roster(tmp_path, name: str, roster: str, mapping: str | None = None) -> list[tuple]:
    landing, warehouse = landing_beside_warehouse(
        tmp_path, {"team": ["Payments"], "source": ["hr_org_unit"], "identifier": ["Payments"]})
    (landing / name).write_text(roster)
    settled(landing / name)
    if mapping is not None:
        (landing / "export_mapping.yml").write_text(mapping)
        settled(landing / "export_mapping.yml")
    load_hr_exports(landing, warehouse, "hr__terminations")
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql("select termination_date, source_file from raw.hr__terminations").fetchall()


def test_an_export_named_with_an_apostrophe_loads(tmp_path):
    roster = BAMBOOHR.format(hire_101="2023-05-01", hire_102="2023-06-01", leaving_102="2024-03-31")
    assert load_roster(tmp_path, "Q1 '24 headcount.csv", roster) == [("2024-03-31", "Q1 '24 headcount.csv")]


def test_a_date_format_with_an_apostrophe_reads_the_dates(tmp_path):
    roster = BAMBOOHR.format(hire_101="01 May '23", hire_102="01 Jun '23", leaving_102="31 Mar '24")
    mapping = "hr:\n  date_format: \"%d %b '%y\"\n"
    assert load_roster(tmp_path, "roster.csv", roster, mapping) == [("2024-03-31", "roster.csv")]
