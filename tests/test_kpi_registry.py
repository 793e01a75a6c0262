"""The KPI registry (assets/models/kpis.py) is the one definition of every KPI: docs/metrics.md
carries it as a table, the marts have every column it names, and the report has words for it."""

import math
import re
from datetime import date
from pathlib import Path

import pandas as pd

from assets.models.inputs import INCIDENTS_SQL, TEAM_MONTHS_SQL
from assets.models.kpis import (
    ABSENT_BECAUSE,
    CORRELATION_KPIS,
    IDENTITY_MAP,
    KPI_BY_NAME,
    KPIS,
    Family,
    registry_markdown,
)
from assets.report.review import kpi_value
from assets.report.wording import outcome_for

METRICS = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def test_docs_metrics_carries_the_registry_table():
    assert registry_markdown() in METRICS.read_text(), (
        "docs/metrics.md's KPI registry table differs from assets/models/kpis.py: paste "
        "`python -c 'from assets.models.kpis import registry_markdown; print(registry_markdown())'` into it")


def test_every_kpi_reads_in_words_on_its_scale():
    for kpi in KPIS:
        outcome = outcome_for(kpi.name, kpi.scale)
        assert outcome is not None and outcome.reading is kpi.reading, kpi.name
        assert "{change}" in kpi.reading.noun, kpi.name
    assert all(kpi.family.grain == "team-month" and kpi.correlation_words for kpi in CORRELATION_KPIS)


def test_the_marts_have_every_column_the_registry_names(warehouse):
    warehouse.raw_rows("config__team_map", [{"team": "Payments", "source": "hr_org_unit", "identifier": "OU-1"},
                                            {"team": "Payments", "source": "jira_project", "identifier": "PAY"}])
    # A Jira ticket, so the speaking-up KPIs lack the identity map, not Jira (Kpi.is_absent).
    warehouse.raw_json("jira__issues", [{
        "id": "1", "key": "PAY-1",
        "fields": {"project": {"key": "PAY"}, "issuetype": {"name": "Near miss"}, "labels": [],
                   "created": "2024-03-10T12:00:00.000+0000", "updated": "2024-03-11T12:00:00.000+0000",
                   "resolutiondate": None, "status": {"name": "To Do"}}}])
    warehouse.survey_cells([{"team": "Payments", "wave_quarter": date(2024, 1, 1), "score_mean": 5.0,
                             "score_sd": 0.8}])
    warehouse.raw_rows("hr__headcount", [
        {"snapshot_date": f"2024-0{month}-01", "employee_id": "E1", "org_unit": "OU-1", "role": "sre",
         "critical_role": "true"} for month in (3, 4)
    ])
    warehouse.raw_rows("hr__terminations", [
        {"employee_id": "E1", "org_unit": "OU-1", "role": "sre", "critical_role": "true",
         "termination_date": "2024-04-20", "voluntary": "true"},
    ])
    warehouse.build_team_month()
    team_month = set(warehouse.conn.sql(TEAM_MONTHS_SQL).columns)
    incident = set(warehouse.conn.sql(INCIDENTS_SQL).columns)
    for kpi in KPIS:
        columns = team_month if kpi.family.grain == "team-month" else incident
        assert set(kpi.columns) <= columns, (kpi.name, set(kpi.columns) - columns)
    assert {"team", "period_month", "headcount", "safety_lagged", "safety_wave_quarter"} <= team_month & incident
    # No identity map was loaded: the KPIs that need one are absent, the others are not.
    months = warehouse.conn.sql(TEAM_MONTHS_SQL).df()
    assert len(months) and {kpi.name for kpi in KPIS if kpi.is_absent(months)} == {
        kpi.name for kpi in KPIS if kpi.needs == IDENTITY_MAP} == {
        "cross-team proactive tickets per head", "junior proactive tickets per junior head"}
    # Time-to-event KPIs need how long an open case has been followed.
    assert all(kpi.censoring for kpi in KPIS if kpi.family is Family.INCIDENT_TIME_TO_EVENT)


def test_kpi_names_are_written_nowhere_else_in_the_models_and_the_report():
    names = [kpi.name for kpi in KPIS]
    code = Path(__file__).resolve().parents[1] / "assets"
    for path in [*code.glob("models/*.py"), *code.glob("report/*.py"), *code.glob("report/templates/*")]:
        if path.name == "kpis.py":
            continue
        text = path.read_text()
        for name in names:
            assert not re.search(rf"[\"']{re.escape(name)}[\"']", text), (path.name, name)


def test_a_time_kpi_reads_in_the_unit_its_outcome_is_measured_in():
    for kpi in KPIS:
        if kpi.family is Family.TEAM_MONTH_LOG_TIME:
            assert kpi.outcome.endswith(f"_{kpi.time_unit}"), kpi.name
    assert kpi_value("log median days to finish a review", math.log(6.5)) == "6.5 days"
    assert kpi_value("log median days to close an action item", math.log(0.5)) == "12.0 h"
    assert kpi_value("log median TTR", math.log(6.5 * 86_400)) == "6.5 days"
    assert kpi_value("log median TTA", math.log(300)) == "5.0 min"


def test_the_critical_role_kpi_is_absent_when_no_one_is_in_a_critical_role():
    critical = KPI_BY_NAME["critical-role voluntary attrition"]
    months = pd.DataFrame({"critical_voluntary_leavers": [0, 0], "critical_headcount": [0, 0]})
    assert critical.is_absent(months) and "hr.critical_roles" in ABSENT_BECAUSE[critical.needs]
    assert not critical.is_absent(months.assign(critical_headcount=[0, 3]))
