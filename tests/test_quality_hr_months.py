"""Checks on the mart's HR figures, on team-months built by dbt from fixture rows in DuckDB.

- An attrition rate over the average of this and next month's opening headcount exceeds 1 on
  true data (a team's only critical-role person leaves): the blocking suite must let it through.
  More leavers than the opening headcount only warns, naming the team-month.
- A closed month whose headcount snapshot has not arrived has no team-month, so its incidents and
  tickets count for no team: a warning names the month, and the report's coverage says so.
"""

import dagster as dg
import pytest

from assets.quality.checks import validate
from assets.quality.headcount import closed_months_have_headcount
from assets.quality.suites import SUITES
from assets.report.inputs import read_coverage
from assets.warehouse.resource import WarehouseResource

TEAM_MAP = [
    {"team": "Payments", "source": source, "identifier": identifier}
    for source, identifier in {"pagerduty_team": "PT1", "jira_project": "PAY", "hr_org_unit": "OU-1",
                               "survey_group": "Payments"}.items()
]


def snapshots(months, people=4, critical=("E0",)):
    return [{"snapshot_date": f"2024-{m:02d}-01", "employee_id": f"E{e}", "org_unit": "OU-1", "role": "engineer",
             "critical_role": str(f"E{e}" in critical).lower()} for m in months for e in range(people)]


def leaver(employee_id, day, critical):
    return {"employee_id": employee_id, "org_unit": "OU-1", "role": "engineer", "critical_role": str(critical).lower(),
            "termination_date": day, "voluntary": "true"}


def mart_suite(name):
    return next(s for s in SUITES if s.table == "marts.mart_team_month" and s.name == name)


def mart_frame(warehouse, suite):
    return warehouse.conn.sql(f"select {', '.join(suite.columns)} from marts.mart_team_month").df()


@pytest.mark.slow
def test_a_teams_only_critical_role_leaver_passes_the_blocking_check_and_more_leavers_than_people_warn(warehouse):
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    # E0, the team's only critical role, resigns in March and is in no later snapshot.
    rows = snapshots(range(1, 4)) + [s for s in snapshots(range(4, 7)) if s["employee_id"] != "E0"]
    warehouse.raw_rows("hr__headcount", rows)
    warehouse.raw_rows("hr__terminations", [leaver("E0", "2024-03-20", True)])
    warehouse.build_team_month()
    [march] = warehouse.rows("select * from marts.mart_team_month where period_month = '2024-03-01'")
    assert (march["critical_headcount"], march["avg_critical_headcount"], march["critical_voluntary_leavers"]) == (1, 0.5, 1)
    assert march["critical_attrition_rate"] == 2.0

    blocking = mart_suite("great_expectations")
    assert blocking.blocking
    result = validate(blocking, mart_frame(warehouse, blocking))
    assert result.passed, result.description
    warning = mart_suite("leavers_within_opening_headcount")
    assert not warning.blocking and validate(warning, mart_frame(warehouse, warning)).passed

    # Five leavers in April from a team of three at its start: the warning names the team-month.
    warehouse.raw_rows("hr__terminations", [leaver("E0", "2024-03-20", True)]
                       + [leaver(f"X{n}", "2024-04-10", False) for n in range(5)])
    warehouse.build_team_month()
    assert validate(blocking, mart_frame(warehouse, blocking)).passed
    result = validate(warning, mart_frame(warehouse, warning))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    [failure] = result.metadata["failures_json"].data
    assert failure["columns"] == "headcount, voluntary_leavers"
    assert failure["unexpected_rows"] == [{"team": "Payments", "period_month": "2024-04-01",
                                           "headcount": 3, "voluntary_leavers": 5}]


def incident(incident_id, created_at):
    return {"id": incident_id, "incident_number": 1, "service": {"id": "PS1"}, "status": "acknowledged",
            "created_at": created_at, "urgency": "high", "teams": [{"id": "PT1"}]}


def ticket(issue_id, created):
    return {"id": issue_id, "key": f"PAY-{issue_id}",
            "fields": {"project": {"key": "PAY"}, "issuetype": {"name": "Bug"}, "labels": [],
                       "created": created, "updated": created, "resolutiondate": None, "status": {"name": "To Do"}}}


@pytest.mark.slow
def test_a_closed_month_without_a_headcount_snapshot_is_named_with_what_it_holds(warehouse):
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.raw_json("pagerduty__teams", [{"id": "PT1", "name": "Payments"}])
    warehouse.raw_json("pagerduty__services", [{"id": "PS1", "name": "checkout", "teams": [{"id": "PT1"}]}])
    warehouse.raw_json("pagerduty__incidents", [
        incident("PI1", "2024-01-10T10:00:00Z"), incident("PI2", "2024-02-10T10:00:00Z"),
        incident("PI3", "2024-02-20T10:00:00Z"), incident("PI4", "2024-03-10T10:00:00Z"),
    ])
    warehouse.raw_json("jira__issues", [ticket("1", "2024-02-05T12:00:00.000+0000"),
                                        ticket("2", "2024-03-05T12:00:00.000+0000")])
    # February's monthly snapshot file has not arrived.
    warehouse.raw_rows("hr__headcount", snapshots([1, 3]))
    warehouse.build_team_month()
    assert [r["period_month"].month for r in warehouse.rows("select period_month from marts.mart_team_month "
                                                            "order by 1")] == [1, 3]
    warehouse.close()

    check = closed_months_have_headcount
    assert not any(spec.blocking for spec in check.check_specs)
    result = check(dg.build_asset_check_context(), duckdb=WarehouseResource(database=str(warehouse.path)))
    assert not result.passed and result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["months_without_headcount"].data == ["2024-02 (incidents 2, tickets 1)"]
    assert "2024-02 (incidents 2, tickets 1)" in result.description
    assert "hr_headcount.csv rows with snapshot_date 2024-02-01" in result.description

    coverage = read_coverage(warehouse.conn)
    assert (coverage.incidents, coverage.incidents_with_team) == (4, 4)
    assert coverage.incidents_without_headcount == 2
    assert coverage.months_without_headcount == ("February 2024",)

    # The snapshot arrives: nothing to name.
    warehouse.raw_rows("hr__headcount", snapshots([1, 2, 3]))
    warehouse.build_team_month()
    warehouse.close()
    result = check(dg.build_asset_check_context(), duckdb=WarehouseResource(database=str(warehouse.path)))
    assert result.passed and result.metadata["months_without_headcount_count"].value == 0
    coverage = read_coverage(warehouse.conn)
    assert coverage.incidents_without_headcount == 0 and coverage.months_without_headcount == ()
