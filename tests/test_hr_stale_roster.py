"""A roster states no export date, so its employees are carried forward to the load's month: a
stale one (HR exports quarterly, or this month's export is late) fills the closed months after
its newest date with full headcount and no leavers. They are kept (the mart's team-months come
from headcount) and the load warns, naming the file, its newest date and the months (trial 5, T3)."""

import logging
import os
from datetime import UTC, date, datetime

import dagster as dg
from conftest import landing_beside_warehouse
from hr_roster import read_roster

from assets.landing.assets import hr_exports
from assets.landing.resource import LandingFolderResource
from assets.warehouse.resource import WarehouseResource

HEADER = "Employee #,Department,Job Title,Hire Date,Termination Date,Termination Type"


def september_roster() -> str:
    """40 employees, a voluntary leaver every month from January to September 2026 and a hire on
    14 September: its newest date is 24 September."""
    rows = [HEADER, *(f"{i},Payments,SRE,2023-0{1 + i % 9}-01,," for i in range(1, 41))]
    rows += [f"{100 + m},Payments,SRE,2022-05-01,2026-0{m}-2{m % 5},Resignation" for m in range(1, 10)]
    return "\n".join([*rows, "200,Payments,SRE,2026-09-14,,"]) + "\n"


def test_a_roster_older_than_the_closed_months_names_them_and_keeps_their_headcount(tmp_path):
    loaded = read_roster(tmp_path, "bamboohr.csv", "", datetime(2026, 12, 7, 2, tzinfo=UTC), september_roster())
    assert loaded.as_of == ("2026-09-14", "2026-09-24")
    assert loaded.months_carried_forward == ["2026-10", "2026-11"]
    # Not cut at the newest date: the team-months stay, and the warning says what they rest on.
    headcount = dict(loaded.headcount.group_by("snapshot_date").len().iter_rows())
    assert headcount["2026-10-01"] == headcount["2026-11-01"] == headcount["2026-12-01"] == 41


def test_only_closed_months_after_the_newest_dates_month_count(tmp_path):
    # Loaded in October: only the open load month follows September. In early November: October.
    october = read_roster(tmp_path / "october", "bamboohr.csv", "", datetime(2026, 10, 31, tzinfo=UTC),
                          september_roster())
    november = read_roster(tmp_path / "november", "bamboohr.csv", "", datetime(2026, 11, 1, tzinfo=UTC),
                           september_roster())
    assert october.months_carried_forward == [] and november.months_carried_forward == ["2026-10"]


def months_ago(months: int, day: int) -> date:
    today = datetime.now(UTC).date()
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, day)


def write(path, rows: list[str], age_seconds: int) -> None:
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    stamp = datetime.now(UTC).timestamp() - age_seconds
    os.utime(path, (stamp, stamp))


def load(folder, warehouse):
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(
        [hr_exports], instance=instance,
        resources={"landing": LandingFolderResource(path=str(folder), hr_id_salt="salt"),
                   "duckdb": WarehouseResource(database=str(warehouse))},
        run_config={"ops": {"hr_exports": {"config": {"accept_shrunk_exports": []}}}})
    warnings = [record.user_message for record in instance.all_logs(result.run_id)
                if record.level == logging.WARNING and "states no export date" in record.user_message]
    [metadata] = [e.materialization.metadata for e in result.get_asset_materialization_events()
                  if e.asset_key == dg.AssetKey(["raw", "hr__headcount"])]
    return warnings, metadata["files"].value


def test_the_load_warns_about_a_stale_roster_naming_the_file_its_newest_date_and_the_months(tmp_path):
    folder, warehouse = landing_beside_warehouse(tmp_path, {"team": ["Payments"], "source": ["hr_org_unit"],
                                                            "identifier": ["Payments"]})
    hired, left = months_ago(3, 2), months_ago(3, 20)
    write(folder / "bamboohr_q3.csv", ["1,Payments,SRE,2023-03-15,,", f"2,Payments,SRE,{hired},,",
                                       f"3,Payments,SRE,2023-03-15,{left},Resignation"], 3600)
    warnings, files = load(folder, warehouse)
    carried = [f"{months_ago(n, 1):%Y-%m}" for n in (2, 1)]
    [warning] = warnings
    assert files["bamboohr_q3.csv"]["months_carried_forward"] == carried
    assert warning.startswith(f"bamboohr_q3.csv: the newest date in this roster is {left} (latest hire {hired}, "
                              f"latest termination {left})")
    assert f"the closed months {carried[0]}, {carried[1]} count its full headcount and no hire or leaver" in warning
    assert "put the current roster in the landing folder" in warning


def test_a_stale_roster_a_current_one_supersedes_entirely_does_not_warn(tmp_path):
    folder, warehouse = landing_beside_warehouse(tmp_path, {"team": ["Payments"], "source": ["hr_org_unit"],
                                                            "identifier": ["Payments"]})
    old = ["1,Payments,SRE,2023-03-15,,", f"2,Payments,SRE,{months_ago(3, 2)},,"]
    write(folder / "bamboohr_q3.csv", old, 7200)
    write(folder / "bamboohr_now.csv", [*old, f"3,Payments,SRE,{months_ago(0, 1)},,"], 3600)
    warnings, files = load(folder, warehouse)
    assert warnings == []
    assert files["bamboohr_q3.csv"]["months_carried_forward"] != []  # its own fact, but nobody's rows come from it
    assert files["bamboohr_now.csv"]["months_carried_forward"] == []
