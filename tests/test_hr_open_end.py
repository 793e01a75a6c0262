"""SAP SuccessFactors, SAP HCM and other HR systems write 9999-12-31 as the end date of an
active employee (an open "valid to"): read in whatever pattern the file's dates are in, it is
no termination, as BambooHR's 0000-00-00 is (trial 5, T5: every active employee was
quarantined as a termination far ahead)."""

from datetime import UTC, datetime

import openpyxl
import polars as pl
import pytest
from hr_roster import read_roster

from assets.landing.resource import LandingFolderResource

NOW = datetime(2025, 6, 30, tzinfo=UTC)
HEADER = "Employee #,Department,Job Title,Hire Date,Termination Date,Termination Type"
hashed = LandingFolderResource(path=".", hr_id_salt="salt").pseudonymise


def months(loaded, employee: str) -> list[str]:
    return sorted(m[:7] for m in loaded.headcount.filter(pl.col("employee_id") == hashed(employee))["snapshot_date"])


def written(pattern: str, moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d") if pattern == "iso" else moment.strftime(pattern)


# SAP's and Oracle's ends of time (Oracle HCM, E-Business Suite: 31-DEC-4712).
@pytest.mark.parametrize("open_end", [datetime(9999, 12, 31), datetime(4712, 12, 31)], ids=["sap", "oracle"])
@pytest.mark.parametrize("pattern", ["iso", "%m/%d/%Y", "%d/%m/%Y", "%d.%m.%Y", "%d-%b-%Y", "%b %d, %Y",
                                     "%m/%d/%Y %I:%M:%S %p", "%d.%m.%Y %H:%M"])
def test_the_open_end_date_is_no_termination_in_every_date_pattern(tmp_path, pattern, open_end):
    # Employee 1 is active (open end), 2 left in March 2025; a day above 12 settles the pattern.
    hire, left, open_end = (written(pattern, d) for d in (datetime(2023, 3, 15), datetime(2025, 3, 14), open_end))
    text = (f"{HEADER}\n\"1\",Payments,SRE,\"{hire}\",\"{open_end}\",\n"
            f"\"2\",Payments,SRE,\"{hire}\",\"{left}\",Resignation\n")
    loaded = read_roster(tmp_path, "hr.csv", "", NOW, text)
    assert loaded.quarantine.height == 0
    assert months(loaded, "1")[-1] == "2025-06" and months(loaded, "2")[-1] == "2025-03"
    assert loaded.terminations.select("termination_date", "voluntary").rows() == [("2025-03-14", "true")]
    assert loaded.as_of == ("2023-03-15", "2025-03-14")
    assert not any("termination dates after the load date" in note for note in loaded.notes)


def test_an_iso_open_end_with_a_time_of_day_is_no_termination(tmp_path):
    text = f"{HEADER}\n1,Payments,SRE,2023-03-15T00:00:00Z,9999-12-31T23:59:59Z,\n"
    loaded = read_roster(tmp_path, "successfactors.csv", "", NOW, text)
    assert loaded.quarantine.height == 0 and loaded.terminations.height == 0
    assert months(loaded, "1")[-1] == "2025-06"


def test_a_workbooks_open_end_date_cell_is_no_termination(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADER.split(","))
    sheet.append(["1", "Payments", "SRE", datetime(2023, 3, 15), datetime(9999, 12, 31), None])
    sheet.append(["2", "Payments", "SRE", datetime(2023, 3, 15), datetime(2025, 3, 14), "Resignation"])
    source = tmp_path / "source.xlsx"
    workbook.save(source)
    loaded = read_roster(tmp_path / "read", "sap.xlsx", "", NOW, source=source)
    assert loaded.diagnosis["date_cells"] == "4"
    assert loaded.quarantine.height == 0
    assert months(loaded, "1")[-1] == "2025-06"
    assert loaded.terminations["termination_date"].to_list() == ["2025-03-14"]


def test_only_a_termination_date_is_open_ended_and_a_year_ahead_still_waits_in_quarantine(tmp_path):
    # A hire in 9999 is no open end but a future date; a termination in 9998 is a mistyped year.
    text = (f"{HEADER}\n1,Payments,SRE,9999-12-31,,\n"
            "2,Payments,SRE,2023-03-15,9998-12-31,Resignation\n")
    loaded = read_roster(tmp_path, "roster.csv", "", NOW, text)
    reasons = loaded.quarantine.sort("source_line")["reason"].to_list()
    assert reasons[0].startswith("future date: hire_date 9999-12-31")
    assert reasons[1].startswith("termination far ahead: termination_date 9998-12-31")
    assert months(loaded, "2")[-1] == "2025-06"


def test_a_leaver_files_termination_in_9999_is_still_a_future_date(tmp_path):
    # The pipeline's own leaver file lists leavers only: a date there is a leaving, never an open end.
    text = ("employee_id,org_unit,role,critical_role,termination_date,voluntary\n"
            "1,Payments,SRE,false,9999-12-31,true\n2,Payments,SRE,false,2025-03-01,true\n")
    loaded = read_roster(tmp_path, "hr_terminations.csv", "", NOW, text)
    assert loaded.preset == "snapshots"
    assert loaded.quarantine["reason"].to_list() == ["future date: termination_date 9999-12-31 is after the load time"]
    assert loaded.terminations["termination_date"].to_list() == ["2025-03-01"]
