"""A source adopted later than the HR and survey history (PagerDuty or Jira first used after
the history start) has no data in the months before its first record, not zero events
(docs/metrics.md, "The team-month mart"): the mart's counts are null there, both baselines
agree, a quarter without any month of data reads n/a, the pooled values use only the months
with data, and a speaking-up KPI without any Jira ticket has no data rather than a missing
identity map."""

import math

import pandas as pd
import pytest

from assets.models.assets import team_value
from assets.models.kpis import KPI_BY_NAME
from assets.report.inputs import coverage_by_month_export, read_monthly_coverage
from assets.report.review import kpi_value
from benchmarks import pandas_baseline, polars_baseline

TEAM_MAP = [
    {"team": team, "source": source, "identifier": identifier}
    for team, claims in {"Payments": {"pagerduty_team": "PT1", "jira_project": "PAY", "hr_org_unit": "OU-1",
                                      "survey_group": "Payments"},
                         "Search": {"pagerduty_team": "PT2", "jira_project": "SRCH", "hr_org_unit": "OU-2"}}.items()
    for source, identifier in claims.items()
]
HEADCOUNT = {"Payments": ("OU-1", 4), "Search": ("OU-2", 2)}


def _entry(entry_id, incident, entry_type, at):
    return {"id": entry_id, "type": entry_type, "created_at": at,
            "incident": {"id": incident, "type": "incident_reference"},
            "agent": {"id": "PUSER01", "type": "user_reference"}, "channel": {"type": "web_trigger"}}


@pytest.fixture
def late_sources(warehouse):
    """HR from January to June 2024; PagerDuty's first incident (Search's) in May; Jira's first
    ticket (Payments') in June."""
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.raw_rows("hr__headcount", [
        {"snapshot_date": f"2024-{month:02d}-01", "employee_id": f"{org_unit}-E{person}", "org_unit": org_unit,
         "role": "engineer", "critical_role": "false"}
        for org_unit, size in HEADCOUNT.values() for month in range(1, 7) for person in range(size)
    ])
    warehouse.raw_json("pagerduty__teams", [{"id": "PT1", "name": "Payments"}, {"id": "PT2", "name": "Search"}])
    warehouse.raw_json("pagerduty__services", [{"id": "PS2", "name": "query", "teams": [{"id": "PT2"}]}])
    warehouse.raw_json("pagerduty__incidents", [
        {"id": "PI1", "incident_number": 1, "service": {"id": "PS2"}, "status": "resolved",
         "created_at": "2024-05-10T10:00:00Z", "urgency": "high", "teams": [{"id": "PT2"}]}])
    warehouse.raw_json("pagerduty__log_entries", [
        _entry("L1", "PI1", "trigger_log_entry", "2024-05-10T10:00:00Z"),
        _entry("L2", "PI1", "resolve_log_entry", "2024-05-10T11:00:00Z")])
    warehouse.raw_json("jira__issues", [{
        "id": "1", "key": "PAY-1",
        "fields": {"project": {"key": "PAY"}, "issuetype": {"name": "Near miss"}, "labels": [],
                   "created": "2024-06-03T12:00:00.000+0000", "updated": "2024-06-04T12:00:00.000+0000",
                   "resolutiondate": None, "status": {"name": "To Do"}}}])
    warehouse.build_team_month()
    months = warehouse.conn.sql("select * from marts.mart_team_month order by team, period_month").df()
    months["period_month"] = pd.to_datetime(months["period_month"])
    return warehouse, months


def _by_month(months: pd.DataFrame, column: str) -> dict:
    return {(row.team, row.period_month.month): (None if pd.isna(getattr(row, column)) else getattr(row, column))
            for row in months.itertuples()}


def test_a_late_source_has_no_data_before_its_first_record_not_zero(late_sources):
    _, months = late_sources
    incidents, tickets = _by_month(months, "incidents"), _by_month(months, "proactive_tickets")
    for team in HEADCOUNT:
        # Before PagerDuty's first incident (any team's, in May): no data; from May on, Payments has 0.
        assert [incidents[team, month] for month in range(1, 7)] == [None] * 4 + (
            [0, 0] if team == "Payments" else [1, 0]), team
        # Before Jira's first ticket (June): no data.
        assert [tickets[team, month] for month in range(1, 7)] == [None] * 5 + [1 if team == "Payments" else 0]
    for column in ("n_ttr", "n_tta", "reviewable_incidents", "action_items", "repeat_incidents"):
        assert months.loc[months["period_month"].dt.month < 5, column].isna().all(), column
        assert months.loc[months["period_month"].dt.month >= 5, column].notna().all(), column


@pytest.mark.parametrize("baseline", [pandas_baseline, polars_baseline], ids=["pandas", "polars"])
def test_both_baselines_leave_the_same_months_without_data(late_sources, baseline):
    warehouse, months = late_sources
    # The baselines read the stored survey answers (the pipeline's survey asset writes them): one
    # respondent, a cell too small to publish, as the mart's empty survey cells say.
    warehouse.conn.execute("create table restricted.survey__responses (response_id varchar, survey_group varchar, "
                           "submitted_at timestamp, item_set varchar, score double, wave_quarter date)")
    warehouse.conn.executemany("insert into restricted.survey__responses values "
                               "('R1', 'Payments', '2024-02-01 10:00:00', 'psychological_safety', 5, '2024-01-01')",
                               [[]] * 7)
    computed = baseline.team_month_mart(warehouse.conn)
    comparison = pandas_baseline.compare(months, computed)
    assert comparison["equal"], comparison
    assert {"incidents", "proactive_tickets", "proactive_share"} <= set(comparison["columns_compared"])


def test_a_quarter_pools_only_its_months_with_data_and_reads_n_a_without_any(late_sources):
    _, months = late_sources
    quarters = dict(list(months.groupby(months["period_month"].dt.quarter)))
    incidents_per_head = KPI_BY_NAME["incidents per head"]
    # Q1 precedes PagerDuty: no data (n/a, as proactive share), not 0 per person-month.
    assert math.isnan(team_value(quarters[1], incidents_per_head))
    assert kpi_value(incidents_per_head.name, team_value(quarters[1], incidents_per_head)) == "n/a"
    # Q2: 1 incident over May's and June's headcount-months (2 x (4 + 2)), not diluted by April.
    assert team_value(quarters[2], incidents_per_head) == pytest.approx(1 / 12)


def test_a_speaking_up_kpi_without_any_jira_ticket_has_no_data_not_a_missing_identity_map():
    cross_team = KPI_BY_NAME["cross-team proactive tickets per head"]
    no_jira = pd.DataFrame({"cross_team_proactive_tickets": [None, None], "proactive_tickets": [None, None],
                            "headcount": [3, 4]}, dtype=float)
    assert not cross_team.is_absent(no_jira)
    # With Jira data but no identity map, the outcome is null where tickets are known: absent.
    no_map = no_jira.assign(proactive_tickets=[None, 2.0])
    assert cross_team.is_absent(no_map)
    assert not cross_team.is_absent(no_map.assign(cross_team_proactive_tickets=[None, 0.0]))
    assert set(cross_team.absence_columns) <= set(no_jira.columns)


def test_the_coverage_export_keeps_whole_counts_and_leaves_months_without_data_empty(late_sources, tmp_path):
    """The plot reads NaN as a gap; the CSV reads 12, not 12.0 (the review of these fixes)."""
    warehouse, _ = late_sources
    exported = coverage_by_month_export(read_monthly_coverage(warehouse.conn))
    exported.to_csv(tmp_path / "coverage_by_month.csv", index=False)
    rows = (tmp_path / "coverage_by_month.csv").read_text().splitlines()
    # January: no data; May: 1 incident, no Jira yet; June: 0 incidents, 1 ticket.
    assert rows[1].endswith(",,") and rows[5].endswith(",1,") and rows[6].endswith(",0,1")
