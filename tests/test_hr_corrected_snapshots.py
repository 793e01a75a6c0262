"""A month's headcount snapshot re-sent with corrections beside the original (eighth trial,
nights N2): HR moved two people to another org unit in May's snapshot and sent May again as a
second file. Each employee's rows of a date come from the newest snapshot file listing them on
it (by modification time), so the corrected people count once, in their corrected org unit; the
months only the original holds count as before. The load names what the newer file replaced,
and which file won: when the correction is the older by modification time (copied without -t),
the warning says so and what to do."""

import os
from datetime import UTC, datetime

import duckdb
from conftest import landing_beside_warehouse
from hr_roster import hr_load_warnings, load_hr_exports

HEADER = "snapshot_date,employee_id,org_unit,role,critical_role\n"
ORIGINAL, CORRECTED = "hr_headcount.csv", "hr_headcount_2024-05_corrected.csv"


def snapshot(rows: list[tuple[str, str, str]]) -> str:
    return HEADER + "".join(f"{date},{employee},{unit},Engineer,False\n" for date, employee, unit in rows)


def landing(tmp_path, correction_is_newer: bool = True):
    """April, May and June in the original; May again, employees 2 and 3 in Search, in the
    correction; both settled, the correction the later modified unless ``correction_is_newer``
    is false."""
    folder, warehouse = landing_beside_warehouse(tmp_path, {"team": ["Payments", "Search"],
                                                            "source": ["hr_org_unit"] * 2,
                                                            "identifier": ["Payments", "Search"]})
    original = ([("2024-04-01", e, "Payments") for e in ("1", "2", "3", "4")]
                + [("2024-05-01", e, "Payments") for e in ("1", "2", "3", "4")] + [("2024-05-01", "5", "Search")]
                + [("2024-06-01", e, "Payments") for e in ("1", "4")])  # a later month: it outranks May's by content
    corrected = [("2024-05-01", "1", "Payments"), ("2024-05-01", "2", "Search"), ("2024-05-01", "3", "Search"),
                 ("2024-05-01", "4", "Payments"), ("2024-05-01", "5", "Search")]
    (folder / ORIGINAL).write_text(snapshot(original))
    (folder / CORRECTED).write_text(snapshot(corrected))
    ages = (7200, 3600) if correction_is_newer else (3600, 7200)
    for age, name in zip(ages, (ORIGINAL, CORRECTED), strict=True):
        stamp = datetime.now(UTC).timestamp() - age
        os.utime(folder / name, (stamp, stamp))
    return folder, warehouse


def headcount(warehouse) -> tuple[list, list]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        counts = conn.execute(
            "select left(snapshot_date, 7), org_unit, count(*), count(distinct employee_id) from raw.hr__headcount "
            "group by all order by all").fetchall()
        sources = conn.execute("select left(snapshot_date, 7), list(distinct source_file order by source_file) "
                               "from raw.hr__headcount group by all order by all").fetchall()
    return counts, sources


def test_a_corrected_snapshot_file_replaces_the_originals_rows_of_its_people_on_its_dates(tmp_path):
    folder, warehouse = landing(tmp_path)
    combined = load_hr_exports(folder, warehouse)["files_combined"].value
    counts, sources = headcount(warehouse)
    assert counts == [("2024-04", "Payments", 4, 4),
                      ("2024-05", "Payments", 2, 2), ("2024-05", "Search", 3, 3), ("2024-06", "Payments", 2, 2)]
    assert sources == [("2024-04", [ORIGINAL]), ("2024-05", [CORRECTED]), ("2024-06", [ORIGINAL])]
    assert combined["snapshot_files_oldest_first"] == [ORIGINAL, CORRECTED]
    assert combined["snapshot_rows_replaced"] == [{"older": ORIGINAL, "newer": CORRECTED, "rows": 2}]


def test_a_correction_older_by_modification_time_loses_and_the_load_says_what_to_do(tmp_path):
    folder, warehouse = landing(tmp_path, correction_is_newer=False)
    warnings = hr_load_warnings(folder, warehouse)
    counts, _ = headcount(warehouse)
    assert ("2024-05", "Payments", 4, 4) in counts  # the original's May: the correction was copied without its time
    assert (f"{ORIGINAL} puts 2 employee snapshot rows of {CORRECTED} (an employee on a date) in another org unit, "
            f"and is taken for them, as the snapshot file modified later: if {CORRECTED} is the correction (a copy "
            f"without -t keeps the original's time), touch it or remove the superseded {ORIGINAL}") in warnings
