"""The team-months and months published beside each KPI count only the months with data for it
(seventh trial, counts): since a month before a source's first record is no data
(tests/test_late_sources.py), a KPI whose source started in August pools August on, but the
correlation table's n_team_months and the quarterly review's kpi_quarters (team_months, months,
first_month, last_month) still counted every team-month, the months before PagerDuty or Jira
included, as if they were in its sample.

A real organisation: the mart built by dbt from HR, PagerDuty and Jira rows, the survey wave as
the survey asset writes it, and the correlation table, survey profiles and report materialised
by Dagster; what is checked is the warehouse table, the CSV export and the report's HTML.
"""

from datetime import date

import dagster as dg
import pandas as pd
import polars as pl
import pytest

from assets.models.assets import WAVE_SCHEMA, kpi_correlations, survey_profiles
from assets.report.assets import cio_report
from assets.report.resource import ReportFolderResource
from assets.warehouse.raw_tables import replace_table
from assets.warehouse.resource import WarehouseResource

# Every test syncs from the sandbox or builds with dbt: left to `make test`, not the fast tier.
pytestmark = pytest.mark.slow

Q1, Q3, Q4 = date(2024, 1, 1), date(2024, 7, 1), date(2024, 10, 1)
# Payments and Search are staffed all 2024; Legacy only to June, before PagerDuty and Jira.
TEAMS = {"Payments": ("OU-1", 4, 12), "Search": ("OU-2", 3, 12), "Legacy": ("OU-3", 2, 6)}
TEAM_MAP = [{"team": team, "source": source, "identifier": identifier}
            for team, (unit, _, _) in TEAMS.items()
            for source, identifier in (("hr_org_unit", unit), ("pagerduty_team", f"PT-{unit}"),
                                       ("jira_project", team[:3].upper()))]
# PagerDuty's first incident is in August (Search's); Jira's first ticket in September (Payments').
INCIDENTS = {"PI1": ("OU-2", "2024-08-12"), "PI2": ("OU-1", "2024-09-03"), "PI3": ("OU-1", "2024-11-05")}
TICKETS = {"PAY-1": "2024-09-10", "PAY-2": "2024-11-12"}


def _entry(entry_id: str, incident: str, entry_type: str, at: str) -> dict:
    return {"id": entry_id, "type": entry_type, "created_at": at,
            "incident": {"id": incident, "type": "incident_reference"},
            "agent": {"id": "PUSER01", "type": "user_reference"}, "channel": {"type": "web_trigger"}}


@pytest.fixture
def late_sources(warehouse, tmp_path):
    """The organisation above, its 2024 Q1 survey wave published for all three teams (safety
    carried to April-September), and the nightly steps after the marts run by Dagster."""
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.raw_rows("hr__headcount", [
        {"snapshot_date": f"2024-{month:02d}-01", "employee_id": f"{unit}-E{person}", "org_unit": unit,
         "role": "engineer", "critical_role": "false"}
        for unit, size, months in TEAMS.values() for month in range(1, months + 1) for person in range(size)])
    warehouse.raw_rows("hr__terminations", [
        {"employee_id": "OU-1-E3", "org_unit": "OU-1", "role": "engineer", "critical_role": "false",
         "termination_date": "2024-08-20", "voluntary": "true"}])
    warehouse.raw_json("pagerduty__teams", [{"id": f"PT-{unit}", "name": team} for team, (unit, _, _) in TEAMS.items()])
    warehouse.raw_json("pagerduty__services", [{"id": f"PS-{unit}", "name": unit, "teams": [{"id": f"PT-{unit}"}]}
                                               for unit, _, _ in TEAMS.values()])
    warehouse.raw_json("pagerduty__incidents", [
        {"id": incident, "incident_number": n, "service": {"id": f"PS-{unit}"}, "status": "resolved",
         "created_at": f"{day}T10:00:00Z", "urgency": "high", "teams": [{"id": f"PT-{unit}"}]}
        for n, (incident, (unit, day)) in enumerate(INCIDENTS.items(), 1)])
    warehouse.raw_json("pagerduty__log_entries", [
        entry for n, (incident, (_, day)) in enumerate(INCIDENTS.items(), 1)
        for entry in (_entry(f"L{n}T", incident, "trigger_log_entry", f"{day}T10:00:00Z"),
                      _entry(f"L{n}R", incident, "resolve_log_entry", f"{day}T11:00:00Z"))])
    warehouse.raw_json("jira__issues", [
        {"id": str(n), "key": key, "fields": {
            "project": {"key": "PAY"}, "issuetype": {"name": "Near miss"}, "labels": [],
            "created": f"{day}T12:00:00.000+0000", "updated": f"{day}T13:00:00.000+0000",
            "resolutiondate": None, "status": {"name": "To Do"}}}
        for n, (key, day) in enumerate(TICKETS.items(), 1)])
    warehouse.survey_cells([{"team": team, "wave_quarter": Q1, "score_mean": mean, "score_sd": 1.0}
                            for team, mean in (("Payments", 5.0), ("Search", 4.0), ("Legacy", 3.0))])
    # The wave as the survey asset freezes it (the survey profiles and the review read it).
    replace_table(warehouse.conn, "marts", "fct_survey_waves", pl.DataFrame([{
        "wave_quarter": Q1, "scale": "psychological_safety", "scale_points": 7, "n_respondents": 18,
        "score_mean": 4.0, "n_teams": 3, "n_teams_published": 3, "n_respondents_published": 18,
        "published_mean": 4.0, "closed_on": date(2024, 4, 15)}], schema=WAVE_SCHEMA))
    warehouse.build_team_month()
    warehouse.close()
    folder = tmp_path / "report"
    result = dg.materialize([survey_profiles, kpi_correlations, cio_report], resources={
        "duckdb": WarehouseResource(database=str(warehouse.path)), "report_folder": ReportFolderResource(
            path=str(folder))})
    assert result.success
    return warehouse, folder


def _mart(warehouse, where: str = "true") -> pd.DataFrame:
    return warehouse.conn.sql(f"select * from marts.mart_team_month where {where} order by team, period_month").df()


def test_the_correlation_table_counts_only_the_team_months_with_data_for_each_kpi(late_sources):
    warehouse, _ = late_sources
    table = warehouse.conn.sql("select kpi, n_teams, n_team_months from models.kpi_correlations").df().set_index("kpi")
    with_safety = _mart(warehouse, "safety_lagged is not null")
    # Safety is carried from the Q1 wave to April-September: 6 months of Payments and Search, 3 of Legacy.
    assert len(with_safety) == 15
    # Voluntary attrition (HR) has every one of them.
    assert tuple(table.loc["voluntary attrition"]) == (3, 15)
    # PagerDuty starts in August: of the months with safety, Payments' and Search's August and
    # September (before: 12, every month of theirs from April); Legacy, gone in June, has none.
    assert tuple(table.loc["incidents per head"]) == (2, 4)
    assert tuple(table.loc["log median TTR"]) == (2, 4)
    # Jira starts in September: Payments' September, 1 ticket (Search's September has none, so no
    # share: no team of its own).
    assert tuple(table.loc["proactive share"]) == (1, 1)
    # Every count is the mart's own: the months with safety where the KPI's column has a value.
    known = with_safety[with_safety["incidents"].notna()]
    assert table.loc["incidents per head", "n_team_months"] == len(known)
    assert table.loc["incidents per head", "n_teams"] == known["team"].nunique()


def test_each_kpi_quarter_counts_and_names_only_its_months_with_data(late_sources):
    warehouse, folder = late_sources
    exported = pd.read_csv(folder / "kpi_quarters.csv", parse_dates=["period_quarter", "first_month", "last_month"])
    rows = exported.set_index(["kpi", "period_quarter"])

    def counts(kpi: str, quarter: date) -> tuple:
        row = rows.loc[(kpi, pd.Timestamp(quarter))]
        return (row.team_months, row.months, None if pd.isna(row.first_month) else f"{row.first_month:%Y-%m}",
                None if pd.isna(row.last_month) else f"{row.last_month:%Y-%m}")

    # Q1: 3 teams x 3 months of HR, no PagerDuty or Jira yet.
    assert counts("voluntary attrition", Q1) == (9, 3, "2024-01", "2024-03")
    assert counts("incidents per head", Q1) == (0, 0, None, None)
    assert counts("proactive share", Q1) == (0, 0, None, None)
    # Q3: Payments and Search; PagerDuty from August, Jira from September (before: 6, 3, July).
    assert counts("voluntary attrition", Q3) == (6, 3, "2024-07", "2024-09")
    assert counts("incidents per head", Q3) == (4, 2, "2024-08", "2024-09")
    assert counts("log median TTR", Q3) == (4, 2, "2024-08", "2024-09")
    assert counts("proactive share", Q3) == (2, 1, "2024-09", "2024-09")
    assert counts("incidents per head", Q4) == (6, 3, "2024-10", "2024-12")
    # The value is pooled over the same months: 1 incident over August's and September's 7 people each.
    assert rows.loc[("incidents per head", pd.Timestamp(Q3)), "value"] == pytest.approx(2 / 14)
    # The counts are the mart's: the team-months of the quarter where the KPI's column has a value.
    q3 = _mart(warehouse, "date_trunc('quarter', period_month) = date '2024-07-01'")
    assert rows.loc[("incidents per head", pd.Timestamp(Q3)), "team_months"] == q3["incidents"].notna().sum()


def test_the_report_names_the_months_a_kpi_pools_where_its_source_started_within_the_quarter(late_sources):
    _, folder = late_sources
    html = (folder / "psafe_report.html").read_text()
    # Q4 against Q3: incidents per head pooled August and September of Q3, voluntary attrition all of it.
    assert "in 2024 Q4, " in html
    [incidents] = [line for line in html.split("<li>") if line.startswith("Incidents per head:")]
    assert incidents.split("</li>")[0].endswith(" in 2024 Q3 (August and September only)."), incidents
    [attrition] = [line for line in html.split("<li>") if line.startswith("Voluntary attrition:")]
    assert attrition.split("</li>")[0].endswith(" in 2024 Q3."), attrition
    # The quarter's row names no part of it: its HR months all ended; the note says why a KPI may pool fewer.
    assert "KPIs: August and September only" not in html
    assert "was first used within the quarter only the months from its first record on" in html
