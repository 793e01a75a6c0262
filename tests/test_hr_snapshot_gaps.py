"""Gaps in an HR monthly snapshot export and rehires in it (seventh trial, HR items).

- A month missing from one team's snapshots (or from one of a team's org units) while other
  teams have it: the team has no team-month (its incidents, tickets and leavers count for no
  team, the month before takes its opening headcount alone as its average) or a headcount of
  its other org units only. The check ``closed_months_have_headcount`` names each such
  team-month with its org units, as it names a whole month missing.
- A rehired employee whose monthly rows after the rehire repeat the old termination date (the
  HRIS keeps the last termination on the worker record) stays in the headcount from the rehire.
- A roster without a rehire column listing one employee on several rows (one per employment)
  whose employments overlap warns, naming the lines.
"""


import dagster as dg
import duckdb
import polars as pl
import pytest
from conftest import landing_beside_warehouse
from hr_roster import hr_load_warnings
from test_hr_snapshot_exports import HEADER, SNAPSHOTS_MAPPED, leavers, read

from assets.landing.resource import LandingFolderResource
from assets.quality.headcount import closed_months_have_headcount
from assets.warehouse.resource import WarehouseResource

TEAMS = {"Payments": ("PT1", "PAY", ["OU-1"]), "Search": ("PT2", "SRCH", ["OU-2"]),
         "Mobile": ("PT3", "MOB", ["OU-4", "OU-5"])}
TEAM_MAP = [
    {"team": team, "source": source, "identifier": identifier}
    for team, (pagerduty, jira, org_units) in TEAMS.items()
    for source, identifier in [("pagerduty_team", pagerduty), ("jira_project", jira), ("survey_group", team)]
    + [("hr_org_unit", unit) for unit in org_units]
]


def snapshots(org_unit, months, people=4):
    return [{"snapshot_date": f"2024-{m:02d}-01", "employee_id": f"{org_unit}-E{e}", "org_unit": org_unit,
             "role": "engineer", "critical_role": "false"} for m in months for e in range(people)]


def incident(incident_id, created_at, team):
    return {"id": incident_id, "incident_number": 1, "service": {"id": f"S-{team}"}, "status": "acknowledged",
            "created_at": created_at, "urgency": "high", "teams": [{"id": team}]}


def check_result(warehouse):
    warehouse.close()
    return closed_months_have_headcount(dg.build_asset_check_context(),
                                        duckdb=WarehouseResource(database=str(warehouse.path)))


@pytest.mark.slow
def test_a_month_missing_from_one_teams_snapshots_is_named_with_its_org_units(warehouse):
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.raw_json("pagerduty__teams", [{"id": p, "name": t} for t, (p, _, _) in TEAMS.items()])
    warehouse.raw_json("pagerduty__services", [{"id": f"S-{p}", "name": t, "teams": [{"id": p}]}
                                               for t, (p, _, _) in TEAMS.items()])
    # Search's February export left out OU-2 (an incident that month), its April one too (an
    # incident then); Mobile's March one left out OU-5, one of its two org units. Payments has
    # every month, so no whole month is missing.
    warehouse.raw_json("pagerduty__incidents", [incident("I1", "2024-02-10T10:00:00Z", "PT2"),
                                                incident("I2", "2024-04-10T10:00:00Z", "PT2"),
                                                incident("I3", "2024-02-10T10:00:00Z", "PT1")])
    warehouse.raw_rows("hr__terminations", [
        {"employee_id": "OU-2-E3", "org_unit": "OU-2", "role": "engineer", "critical_role": "false",
         "termination_date": "2024-02-20", "voluntary": "true"}])
    complete = snapshots("OU-1", range(1, 6)) + snapshots("OU-4", range(1, 6))
    warehouse.raw_rows("hr__headcount", complete + snapshots("OU-2", [1, 3]) + snapshots("OU-5", [1, 2, 4, 5]))
    warehouse.build_team_month()

    # What the gaps do: Search has no February team-month, so its February incident and leaver
    # count for no team and January's average headcount is January's opening alone; Mobile's
    # March headcount is OU-4's people only.
    months = {(r["team"], r["period_month"].month): r for r in warehouse.rows("select * from marts.mart_team_month")}
    assert ("Search", 2) not in months and ("Search", 4) not in months
    assert months[("Search", 1)]["avg_headcount"] == 4 and months[("Payments", 1)]["avg_headcount"] == 4
    assert sum(r["voluntary_leavers"] for r in months.values()) == 0
    assert (months[("Mobile", 2)]["headcount"], months[("Mobile", 3)]["headcount"]) == (8, 4)

    result = check_result(warehouse)
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    named = ["Mobile 2024-03 (no snapshot of OU-5: its headcount counts its other org units only)",
             "Search 2024-02 (no snapshot of OU-2: no team-month, incidents 1, tickets 0)",
             "Search 2024-04 (no snapshot of OU-2: no team-month, incidents 1, tickets 0)"]
    assert result.metadata["team_months_without_headcount"].data == named
    assert result.metadata["months_without_headcount"].data == []
    assert all(gap in result.description for gap in named), result.description
    assert "snapshot dated the month's first day" in result.description

    # The snapshots arrive: nothing to name.
    warehouse.raw_rows("hr__headcount", complete + snapshots("OU-2", range(1, 6)) + snapshots("OU-5", range(1, 6)))
    warehouse.build_team_month()
    result = check_result(warehouse)
    assert result.passed, result.description
    assert result.metadata["team_months_without_headcount_count"].value == 0


def test_a_team_that_ends_or_starts_later_is_no_gap(warehouse):
    """A team whose org unit stops (a reorganisation) or starts later, with no incident or ticket
    in the months it has no snapshot, is not named: nothing of it is lost there."""
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.raw_rows("hr__headcount", snapshots("OU-1", range(1, 6)) + snapshots("OU-2", [1, 2])
                       + snapshots("OU-4", [3, 4, 5]) + snapshots("OU-5", [3, 4, 5]))
    warehouse.build_team_month()
    result = check_result(warehouse)
    assert result.passed, result.description


@pytest.mark.slow
def test_a_seasonal_org_unit_is_no_gap_and_a_month_left_out_is(warehouse):
    """An org unit staffed part of the year (holiday support: the same people back after three
    empty months, no incident or ticket meanwhile) has no snapshot then because it had nobody:
    not named (before, every empty month was, every night). The same people missing from one
    month's export, their org unit's only, is named."""
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    everyone = snapshots("OU-1", range(1, 8)) + snapshots("OU-4", range(1, 8)) + snapshots("OU-5", range(1, 8))
    warehouse.raw_rows("hr__headcount", everyone + snapshots("OU-2", [1, 2, 6, 7]))
    warehouse.build_team_month()
    result = check_result(warehouse)
    assert result.passed, result.description

    warehouse.raw_rows("hr__headcount", everyone + snapshots("OU-2", [1, 2, 4, 5, 6, 7]))
    warehouse.build_team_month()
    result = check_result(warehouse)
    assert result.metadata["team_months_without_headcount"].data == [
        "Search 2024-03 (no snapshot of OU-2: no team-month, incidents 0, tickets 0)"]


def rehire_export(hire_column: bool = True) -> str:
    """Employee 8 (Payments) resigns on 2024-03-14 and is rehired on 2024-06-01; the HR system
    keeps the last termination on the worker record, so every monthly row from June repeats it
    (and the rows it lists for April and May, after the leaving, carry the rehire's hire date,
    as an export filled from the current record does). Employee 9 stays in Search throughout."""
    rows = [HEADER if hire_column else HEADER.replace(",Hire Date", "")]
    for m in range(1, 8):
        month = f"2024-{m:02d}-01"
        hire, termination = ("2023-06-01", "") if m < 3 else ("2023-06-01", "2024-03-14") if m == 3 else (
            "2024-06-01", "2024-03-14")
        reason = "Resignation" if termination else ""
        for cells in ([month, "8", "Payments", "SRE", hire, termination, reason],
                      [month, "9", "Search", "SRE", "2023-06-01", "", ""]):
            rows.append(",".join(cells if hire_column else cells[:4] + cells[5:]))
    return "\n".join(rows) + "\n"


def test_a_rehire_whose_rows_repeat_the_old_termination_counts_again_from_the_rehire(tmp_path):
    """Before, the June and July rows (dated after the 2024-03-14 termination) were left out of
    the headcount as rows of someone gone: the rehired employee never counted again."""
    file = read(tmp_path, rehire_export(), SNAPSHOTS_MAPPED)
    payments = file.headcount.filter(pl.col("org_unit") == "Payments")
    assert sorted(payments["snapshot_date"]) == ["2024-01-01", "2024-02-01", "2024-03-01", "2024-06-01",
                                                 "2024-07-01"]
    assert leavers(file) == [("Payments", "2024-03-14", "true")]
    assert file.quarantine.height == 0
    assert any(note.startswith("2 snapshot rows of rehired employees repeat a termination date before their hire")
               for note in file.notes), file.notes
    # April and May (after the leaving, before the rehire) stay out, and say so.
    assert any(note.startswith("2 snapshot rows dated after their termination date") for note in file.notes)


def test_without_a_hire_date_column_the_note_names_the_column_to_export(tmp_path):
    file = read(tmp_path, rehire_export(hire_column=False), SNAPSHOTS_MAPPED)
    payments = file.headcount.filter(pl.col("org_unit") == "Payments")
    assert sorted(payments["snapshot_date"]) == ["2024-01-01", "2024-02-01", "2024-03-01"]
    [note] = [n for n in file.notes if "after their termination date" in n]
    assert note.startswith("4 snapshot rows dated after their termination date")
    assert "export the hire date column too (or name it as hr.columns.hire_date)" in note


# Employee 1's first employment (Payments, from 2019) ends on 2024-11-30, after their second one
# (Search) began on 2024-06-01; employee 3's two employments follow each other (left 2021-05-31,
# back 2022-02-01), which each row tells as it is.
ONE_ROW_PER_EMPLOYMENT = ("Employee ID,Department,Job Title,Hire Date,Termination Date,Termination Reason\n"
                          "1,Payments,SRE,2019-03-01,2024-11-30,Resignation\n"
                          "1,Search,SRE,2024-06-01,,\n"
                          "2,Payments,SRE,2020-01-01,,\n"
                          "3,Payments,SRE,2018-01-01,2021-05-31,Resignation\n"
                          "3,Payments,SRE,2022-02-01,,\n")
HASHED = LandingFolderResource(path=".", hr_id_salt="salt").pseudonymise


def test_overlapping_employments_of_one_id_in_a_roster_without_a_rehire_column_warn(tmp_path):
    """One row per employment, as some HR systems export: successive employments are read right
    (each row a spell), overlapping ones count the employee twice (here in two teams from June to
    November 2024) and as a leaver while employed. Before, nothing said so."""
    folder, warehouse = landing_beside_warehouse(tmp_path, {"team": ["Payments", "Search"],
                                                            "source": ["hr_org_unit", "hr_org_unit"],
                                                            "identifier": ["Payments", "Search"]})
    (folder / "roster.csv").write_text(ONE_ROW_PER_EMPLOYMENT)
    warnings = hr_load_warnings(folder, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        twice = conn.execute("select snapshot_date, string_agg(org_unit, '+' order by org_unit) from raw.hr__headcount "
                             "where employee_id = ? group by 1 having count(*) > 1 order by 1",
                             [HASHED("1")]).fetchall()
    assert [month for month, _ in twice] == [f"2024-{m:02d}-01" for m in range(6, 12)]
    assert {units for _, units in twice} == {"Payments+Search"}
    [warning] = [w for w in warnings if "employments overlap" in w]
    assert warning.startswith("roster.csv: 1 employees are listed on several rows whose employments overlap "
                              "(lines 2 and 3)"), warning
    assert "export one row per employee with its rehire date" in warning


@pytest.mark.parametrize(("moved_on", "warned"), [("2024-05-15", False), ("2024-06-01", True)])
def test_a_transfer_ending_one_employment_the_day_the_next_starts_warns_only_on_a_snapshot_day(
        tmp_path, moved_on, warned):
    """ADP records a move between company codes as a termination and a hire on the same date: the
    employee counts twice only when that day is a month's first, the headcount's snapshot date."""
    folder, warehouse = landing_beside_warehouse(tmp_path, {"team": ["Payments", "Search"],
                                                            "source": ["hr_org_unit", "hr_org_unit"],
                                                            "identifier": ["Payments", "Search"]})
    (folder / "roster.csv").write_text("Employee ID,Department,Job Title,Hire Date,Termination Date,Termination Reason\n"
                                       f"1,Payments,SRE,2019-03-01,{moved_on},Resignation\n"
                                       f"1,Search,SRE,{moved_on},,\n"
                                       "2,Payments,SRE,2020-01-01,,\n")
    warnings = hr_load_warnings(folder, warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        twice = conn.execute("select snapshot_date from raw.hr__headcount where employee_id = ? group by all "
                             "having count(*) > 1", [HASHED("1")]).fetchall()
    assert bool(twice) is warned
    assert any("employments overlap" in w for w in warnings) is warned


def test_the_overlap_warning_names_two_lines_that_overlap(tmp_path):
    """One employee on four rows: lines 2 and 5 overlap, and lines 3 and 4; lines 2 and 4 do not.
    The warning names a pair that overlaps (before, the first line of one pair and the second of
    another: lines 2 and 4)."""
    folder, warehouse = landing_beside_warehouse(tmp_path, {"team": ["Payments"], "source": ["hr_org_unit"],
                                                            "identifier": ["Payments"]})
    (folder / "roster.csv").write_text("Employee ID,Department,Job Title,Hire Date,Termination Date,Termination Reason\n"
                                       "1,Payments,SRE,2023-06-01,,\n"
                                       "1,Payments,SRE,2020-01-01,2020-12-31,Resignation\n"
                                       "1,Payments,SRE,2020-06-01,2021-03-31,Resignation\n"
                                       "1,Payments,SRE,2022-01-01,2023-12-31,Resignation\n")
    [warning] = [w for w in hr_load_warnings(folder, warehouse) if "employments overlap" in w]
    assert "employments overlap (lines 2 and 5)" in warning, warning
