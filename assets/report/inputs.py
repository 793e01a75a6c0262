"""What the CIO report reads from the warehouse: the report's whole input contract.

Everything the report shows comes through ``read_report_inputs``; when a model table's columns
change, this module is the one place to adapt. The model results are
``models.kpi_safety_effects``, one row per KPI x construct x role ('main' or 'cross-check'),
read as stored. Only aggregates leave this module: no survey cell below the anonymity
threshold, no team-level score.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from assets.models.stats import RESULT_COLUMNS

CORRELATIONS_TABLE = "models.kpi_correlations"
RESULTS_TABLE = "models.kpi_safety_effects"
MART_TABLES = ("marts.dim_teams", "marts.mart_team_month", "marts.fct_incidents", "marts.fct_team_survey_waves")
SOURCE_TABLES = (CORRELATIONS_TABLE, RESULTS_TABLE, *MART_TABLES)

CORRELATION_COLUMNS = ("kpi", "r", "ci_low", "ci_high", "n_teams", "n_team_months", "definition", "warnings")


@dataclass(frozen=True)
class Coverage:
    """How much data stands behind the numbers, all counts over the whole warehouse."""

    teams: int
    teams_with_safety: int
    team_months: int
    team_months_with_safety: int
    team_months_stale_safety: int  # the team's last reportable wave too old to carry forward
    first_month: str
    last_month: str
    months: int
    incidents: int
    incidents_with_team: int
    incidents_open: int
    acknowledged_share: float
    onset_known_share: float
    proactive_tickets: int
    reactive_tickets: int
    unclassified_tickets: int
    survey_cells: int
    suppressed_cells: int


@dataclass(frozen=True)
class ReportInputs:
    correlations: pd.DataFrame  # CORRELATION_COLUMNS, one row per KPI
    results: pd.DataFrame | None  # RESULT_COLUMNS, main and cross-check rows; None if no table
    coverage: Coverage
    monthly: pd.DataFrame  # period_month, teams, teams_with_safety, incidents, tickets
    exports: dict[str, pd.DataFrame]  # sheet/file name -> table exactly as exported


def table_exists(conn: duckdb.DuckDBPyConnection, qualified: str) -> bool:
    schema, name = qualified.split(".")
    return conn.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, name],
    ).fetchone()[0] > 0


def read_correlations(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The correlation table as stored (what the exports hold)."""
    return conn.sql(f"select * from {CORRELATIONS_TABLE}").df()


def read_raw_results(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame | None:
    """The results table as stored (what the exports hold), or None when it is missing."""
    if not table_exists(conn, RESULTS_TABLE):
        return None
    return conn.sql(f"select * from {RESULTS_TABLE}").df()


def read_coverage(conn: duckdb.DuckDBPyConnection) -> Coverage:
    months = conn.sql(
        """
        select
            count(distinct team) as teams,
            count(distinct team) filter (where safety_lagged is not null) as teams_with_safety,
            count(*) as team_months,
            count(*) filter (where safety_lagged is not null) as team_months_with_safety,
            count(*) filter (where is_safety_wave_stale) as team_months_stale_safety,
            strftime(min(period_month), '%B %Y') as first_month,
            strftime(max(period_month), '%B %Y') as last_month,
            count(distinct period_month) as months,
            coalesce(sum(proactive_tickets), 0) as proactive_tickets,
            coalesce(sum(reactive_tickets), 0) as reactive_tickets,
            coalesce(sum(unclassified_tickets), 0) as unclassified_tickets
        from marts.mart_team_month
        """
    ).df().iloc[0]
    incidents = conn.sql(
        """
        select
            count(*) as incidents,
            count(team) as incidents_with_team,
            count(*) filter (where is_open) as incidents_open,
            count(tta_seconds) / nullif(count(*), 0) as acknowledged_share,
            count(ttd_seconds) / nullif(count(*), 0) as onset_known_share
        from marts.fct_incidents
        """
    ).df().iloc[0]
    # A team-wave is suppressed in every scale or in none: count team-waves, not scales.
    survey = conn.sql(
        "select count(distinct (team, wave_quarter)) as cells, "
        "count(distinct (team, wave_quarter)) filter (where is_suppressed) as suppressed "
        "from marts.fct_team_survey_waves"
    ).df().iloc[0]
    teams = conn.sql("select count(*) from marts.dim_teams").fetchone()[0]
    return Coverage(
        teams=int(teams),
        teams_with_safety=int(months.teams_with_safety),
        team_months=int(months.team_months),
        team_months_with_safety=int(months.team_months_with_safety),
        team_months_stale_safety=int(months.team_months_stale_safety),
        first_month=months.first_month or "",
        last_month=months.last_month or "",
        months=int(months.months),
        incidents=int(incidents.incidents),
        incidents_with_team=int(incidents.incidents_with_team),
        incidents_open=int(incidents.incidents_open),
        acknowledged_share=_share(incidents.acknowledged_share),
        onset_known_share=_share(incidents.onset_known_share),
        proactive_tickets=int(months.proactive_tickets),
        reactive_tickets=int(months.reactive_tickets),
        unclassified_tickets=int(months.unclassified_tickets),
        survey_cells=int(survey.cells),
        suppressed_cells=int(survey.suppressed),
    )


def _share(value) -> float:
    return float("nan") if pd.isna(value) else float(value)


def read_monthly_coverage(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return conn.sql(
        """
        select
            period_month,
            count(*) as teams,
            count(*) filter (where safety_lagged is not null) as teams_with_safety,
            sum(incidents) as incidents,
            sum(proactive_tickets + reactive_tickets + unclassified_tickets) as tickets
        from marts.mart_team_month
        group by period_month
        order by period_month
        """
    ).df().astype({"teams": "int64", "teams_with_safety": "int64", "incidents": "int64", "tickets": "int64"})


def coverage_table(coverage: Coverage) -> pd.DataFrame:
    """The coverage figures as a two-column table for the exports."""
    values = {name: "" if value is None else str(value) for name, value in coverage.__dict__.items()}
    return pd.DataFrame({"measure": list(values), "value": list(values.values())})


def read_report_inputs(conn: duckdb.DuckDBPyConnection) -> ReportInputs:
    correlations = read_correlations(conn)
    raw_results = read_raw_results(conn)
    coverage = read_coverage(conn)
    monthly = read_monthly_coverage(conn)
    exports = {"kpi_correlations": correlations}
    if raw_results is not None:
        exports[RESULTS_TABLE.split(".")[1]] = raw_results
    exports["coverage"] = coverage_table(coverage)
    exports["coverage_by_month"] = monthly
    return ReportInputs(
        correlations=correlations[list(CORRELATION_COLUMNS)],
        results=None if raw_results is None else raw_results[list(RESULT_COLUMNS)],
        coverage=coverage,
        monthly=monthly,
        exports=exports,
    )
