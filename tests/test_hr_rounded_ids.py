"""Employee ids a spreadsheet wrote in scientific notation: a roster with ids of 12 digits or
more, opened in Excel and saved as CSV, has 1.23457E+11 for 123456789012, 123456789034 and
123456789056 alike. The digits are gone; read as one id, three people would be one employee
(headcount 1, and one leaver an attrition of 100%). Such rows are quarantined, naming why
(fifth adversarial trial, N3)."""

from datetime import UTC, datetime

import pytest
from hr_roster import read_roster

from assets.identity import is_rounded_number
from assets.landing.identity import IdentityMapError, read_identity_map

ROSTER = ("Employee #,Department,Job Title,Employment Status,Hire Date,Termination Date,Termination Type\n"
          "1.23457E+11,Payments,Engineer,Full-Time,2023-01-10,,\n"
          "1.23457E+11,Payments,Engineer,Full-Time,2023-02-01,,\n"
          "1.23457E+11,Payments,Engineer,Full-Time,2023-03-01,2024-03-15,Resignation\n"
          "123456789078,Payments,Engineer,Full-Time,2023-04-01,,\n")


@pytest.mark.parametrize("written", ["1.23457E+11", "1,23457E+11", "5E+11", " 1.23457e+11 "])
def test_scientific_notation_is_a_rounded_number(written):
    assert is_rounded_number(written)


@pytest.mark.parametrize("written", ["123456789012", "00123", "101.0", "E1234", "1E", "12E4", "3e100", "1.2E11",
                                     "jane@example.com"])
def test_other_ids_are_not(written):
    assert not is_rounded_number(written)


def test_rows_with_rounded_ids_are_quarantined_naming_why(tmp_path):
    loaded = read_roster(tmp_path, "roster.csv", "", datetime(2024, 6, 1, tzinfo=UTC), text=ROSTER)
    counted = loaded.table("headcount").filter(snapshot_date="2024-02-01")["employee_id"].to_list()
    assert len(counted) == 1  # only 123456789078
    assert loaded.table("terminations").height == 0
    reasons = loaded.quarantine["reason"].to_list()
    assert len(reasons) == 3 and all(r.startswith("rounded id: the employee id is a number in scientific notation")
                                     for r in reasons)


def test_an_identity_map_refuses_a_rounded_employee_id(tmp_path):
    path = tmp_path / "identity_map.yml"
    path.write_text('people:\n  - employee_id: "1.23457E+11"\n    emails: [jane.doe@example.com]\n')
    with pytest.raises(IdentityMapError, match="scientific notation"):
        read_identity_map(path)
