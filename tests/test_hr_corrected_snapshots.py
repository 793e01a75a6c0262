"""A month's headcount snapshot re-sent with corrections beside the original (eighth trial,
nights N2): HR moved three people to another org unit in May's snapshot and sent May again as a
second file. Each employee's rows of a date come from the newest snapshot file listing them on
it, so the corrected people count once, in their corrected org unit; the months only the
original holds, and identical rows in both files, count as before."""

import os
from datetime import UTC, datetime

import duckdb
from conftest import landing_beside_warehouse
from hr_roster import load_hr_exports

HEADER = "snapshot_date,employee_id,org_unit,role,critical_role\n"


def snapshot(rows: list[tuple[str, str, str]]) -> str:
    return HEADER + "".join(f"{date},{employee},{unit},Engineer,False\n" for date, employee, unit in rows)


def test_a_corrected_snapshot_file_replaces_the_originals_rows_of_its_people_on_its_dates(tmp_path):
    landing, warehouse = landing_beside_warehouse(tmp_path, {"team": ["Payments", "Search"],
                                                             "source": ["hr_org_unit"] * 2,
                                                             "identifier": ["Payments", "Search"]})
    original = [("2024-04-01", e, "Payments") for e in ("1", "2", "3", "4")] + \
               [("2024-05-01", e, "Payments") for e in ("1", "2", "3", "4")] + [("2024-05-01", "5", "Search")] + \
               [("2024-06-01", e, "Payments") for e in ("1", "4")]  # a later month: it outranks May's correction by content
    # May again: employees 2 and 3 were in Search, not Payments; the others as before.
    corrected = [("2024-05-01", "1", "Payments"), ("2024-05-01", "2", "Search"), ("2024-05-01", "3", "Search"),
                 ("2024-05-01", "4", "Payments"), ("2024-05-01", "5", "Search")]
    (landing / "hr_headcount.csv").write_text(snapshot(original))
    (landing / "hr_headcount_2024-05_corrected.csv").write_text(snapshot(corrected))
    # Both settled (older than the landing folder's settle time), the original the older file.
    for age, name in ((7200, "hr_headcount.csv"), (3600, "hr_headcount_2024-05_corrected.csv")):
        stamp = datetime.now(UTC).timestamp() - age
        os.utime(landing / name, (stamp, stamp))
    load_hr_exports(landing, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        counts = conn.execute(
            "select left(snapshot_date, 7), org_unit, count(*), count(distinct employee_id) from raw.hr__headcount "
            "group by all order by all").fetchall()
        sources = conn.execute("select left(snapshot_date, 7), list(distinct source_file order by source_file) "
                               "from raw.hr__headcount group by all order by all").fetchall()
    assert counts == [("2024-04", "Payments", 4, 4),
                      ("2024-05", "Payments", 2, 2), ("2024-05", "Search", 3, 3), ("2024-06", "Payments", 2, 2)]
    assert sources == [("2024-04", ["hr_headcount.csv"]), ("2024-05", ["hr_headcount_2024-05_corrected.csv"]),
                       ("2024-06", ["hr_headcount.csv"])]
