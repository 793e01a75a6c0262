"""What the CIO report reads from the warehouse: the report's whole input contract.

Everything the report shows comes through ``read_report_inputs``; when a model table's columns
change, this module is the one place to adapt. The model results are
``models.kpi_safety_effects``, one row per KPI x construct x role ('main' or 'cross-check'),
read as stored. Only aggregates leave this module: no survey cell below the anonymity
threshold, no team-level score, with one exception the quarterly review asks for: the zone
chart's unnamed points (published team-wave means of safety and accountability, no team name,
only for a wave whose zone counts are shown, that is with at least 5 teams in zones). By the
same rule a wave's organisation mean over fewer than 5 published teams is left out: from 1 team
it is that team's score, from 2 each team can work out the other's.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from assets.landing.item_sets import ITEM_SETS
from assets.models.assets import CORRELATION_COLUMNS, team_value
from assets.models.kpis import CORRELATION_KPIS, KPIS, Kpi
from assets.models.psychometrics import MIN_RESPONDENTS, PRIMARY
from assets.models.stats import MIN_TEAMS_FOR_TESTS, RESULT_COLUMNS
from assets.quality.headcount import months_without_headcount
from assets.report.wording import pooled_unit
from assets.warehouse.partitions import CLOSED_MONTHS

CORRELATIONS_TABLE = "models.kpi_correlations"
RESULTS_TABLE = "models.kpi_safety_effects"
MART_TABLES = ("marts.dim_teams", "marts.mart_team_month", "marts.fct_incidents", "marts.fct_team_survey_waves",
               "marts.fct_survey_waves", "marts.fct_team_survey_profiles", "marts.fct_survey_profile_counts",
               "marts.fct_survey_zone_moves")
SOURCE_TABLES = (CORRELATIONS_TABLE, RESULTS_TABLE, *MART_TABLES)
KPI_QUARTER_COLUMNS = ("period_quarter", "kpi", "value", "unit", "team_months", "months", "first_month", "last_month")



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
    # Of them, those with fewer than MIN_RESPONDENTS respondents; the others had enough but
    # were hidden too (equal scores, or to protect another team's suppressed figures).
    suppressed_too_few: int
    # Closed months with incidents or tickets but no HR headcount snapshot (check
    # closed_months_have_headcount): no team-month, so the incidents of a team counted above
    # that fall in them are in no figure of the report.
    months_without_headcount: tuple[str, ...]
    incidents_without_headcount: int


@dataclass(frozen=True)
class SurveyReview:
    """What the quarterly review shows: per wave and scale the published mean with its CI
    (``waves``: wave_quarter, scale, published_mean, published_mean_ci_low/high,
    n_teams_published, n_respondents_published, closed_on, scale_points; the mean is null below
    MIN_RESPONDENTS published teams and the CI below MIN_TEAMS_FOR_TESTS,
    ``with_team_scores_withheld``); the correlation
    KPIs pooled over every team-month of each quarter's ended months (``kpi_quarters``:
    KPI_QUARTER_COLUMNS, ``kpi_quarter``; ``unit`` is wording.pooled_unit's, ``team_months`` how
    many team-months have data for the KPI, ``months`` in how many of the quarter's ended
    months, ``first_month`` and ``last_month`` which: none before its source's first record);
    teams per zone and per Clark stage reached (``profile_counts``), moves between zones
    (``zone_moves``), and the zone chart's unnamed points of the latest wave whose zone counts are shown (``zone_points``:
    safety_mean, accountability_mean, zone and the thresholds)."""

    waves: pd.DataFrame
    kpi_quarters: pd.DataFrame
    profile_counts: pd.DataFrame
    zone_moves: pd.DataFrame
    zone_points: pd.DataFrame

    @property
    def scales(self) -> list[str]:
        """The scales any closed wave measured, in the order of ITEM_SETS."""
        measured = set(self.waves["scale"])
        return [key for key in ITEM_SETS if key in measured]


@dataclass(frozen=True)
class ReportInputs:
    correlations: pd.DataFrame  # CORRELATION_COLUMNS, one row per KPI
    results: pd.DataFrame | None  # RESULT_COLUMNS, main and cross-check rows; None if no table
    coverage: Coverage
    monthly: pd.DataFrame  # period_month, teams, teams_with_safety, incidents, tickets
    exports: dict[str, pd.DataFrame]  # sheet/file name -> table exactly as exported
    absent_kpis: tuple[str, ...] = ()  # KPIs whose optional input is missing (Kpi.is_absent)
    survey: SurveyReview | None = None  # None when the survey tables are not built yet


def models_not_built(warehouse: str) -> str:
    """What a notebook says where the correlation table would be, on a warehouse whose models
    no run has built yet (a first run stopped by a blocking check)."""
    return (f"{CORRELATIONS_TABLE} is not in {warehouse}: the models have not been built yet. A nightly run writes "
            "them only when the blocking checks on the marts pass, so a run stopped by one (a new warehouse's first "
            "run, say) leaves the marts without them (README, \"Which checks block\"). Fix what stopped the last run "
            "(a failed check names it on its Checks tab in Dagster), let the next nightly run finish (or start one), "
            "and run this notebook again.")


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
        f"""
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
        where {CLOSED_MONTHS}
        """
    ).df().iloc[0]
    incidents = conn.sql(
        f"""
        select
            count(*) as incidents,
            count(team) as incidents_with_team,
            count(*) filter (where is_open) as incidents_open,
            count(tta_seconds) / nullif(count(*), 0) as acknowledged_share,
            count(ttd_seconds) / nullif(count(*), 0) as onset_known_share
        from marts.fct_incidents
        where {CLOSED_MONTHS}
        """
    ).df().iloc[0]
    # A team-wave is suppressed in every scale or in none: count team-waves, not scales.
    survey = conn.sql(
        "select count(distinct (team, wave_quarter)) as cells, "
        "count(distinct (team, wave_quarter)) filter (where is_suppressed) as suppressed, "
        "count(distinct (team, wave_quarter)) filter (where suppression_reason = ?) as too_few "
        "from marts.fct_team_survey_waves", params=[PRIMARY]
    ).df().iloc[0]
    teams = conn.sql("select count(*) from marts.dim_teams").fetchone()[0]
    gaps = months_without_headcount(conn)
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
        suppressed_too_few=int(survey.too_few),
        months_without_headcount=tuple(f"{gap.period_month:%B %Y}" for gap in gaps),
        incidents_without_headcount=sum(gap.incidents for gap in gaps),
    )


def _share(value) -> float:
    return float("nan") if pd.isna(value) else float(value)


def read_monthly_coverage(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    # A month before a source's first record has no incidents or tickets (null, a float NaN):
    # a gap in the plot, not 0.
    return conn.sql(
        f"""
        select
            period_month,
            count(*) as teams,
            count(*) filter (where safety_lagged is not null) as teams_with_safety,
            sum(incidents) as incidents,
            sum(proactive_tickets + reactive_tickets + unclassified_tickets) as tickets
        from marts.mart_team_month
        where {CLOSED_MONTHS}
        group by period_month
        order by period_month
        """
    ).df().astype({"teams": "int64", "teams_with_safety": "int64", "incidents": "float64", "tickets": "float64"})


def with_team_scores_withheld(waves: pd.DataFrame) -> pd.DataFrame:
    """``waves`` without the organisation mean and CI of a wave and scale published from fewer than
    MIN_RESPONDENTS teams: the zone chart's rule for team points (profiles.profile_counts), since
    such a mean is one team's score or, with the number of respondents, lets a team work out
    another's. Nor a CI below MIN_TEAMS_FOR_TESTS teams: psychometrics.published_mean_with_ci
    computes none there, but a wave frozen by an earlier version keeps the one it computed then
    (from 2 teams, -1.89 to 8.95 on a 1-7 scale)."""
    few = waves["n_teams_published"] < MIN_RESPONDENTS
    untested = waves["n_teams_published"] < MIN_TEAMS_FOR_TESTS
    return waves.assign(published_mean=waves["published_mean"].mask(few),
                        **{column: waves[column].mask(untested)
                           for column in ("published_mean_ci_low", "published_mean_ci_high")})


def kpi_quarter(quarter, group: pd.DataFrame, kpi: Kpi) -> dict:
    """One kpi_quarters row: ``kpi`` pooled over the quarter's team-months (``group``), with the
    team-months and months that have data for it (``Kpi.has_data``). A quarter says which of its
    months it pools: on 7 December, October and November only; for a KPI whose source's first
    record is in August, August and September only; before it, none (0, no first or last month)."""
    known = group.loc[kpi.has_data(group), "period_month"]
    return {"period_quarter": quarter, "kpi": kpi.name, "value": team_value(group, kpi), "unit": pooled_unit(kpi.name),
            "team_months": len(known), "months": known.nunique(), "first_month": known.min(),
            "last_month": known.max()}


def read_survey_review(conn: duckdb.DuckDBPyConnection, absent_kpis: tuple[str, ...]) -> SurveyReview | None:
    """The quarterly review's inputs, with the KPIs of ``absent_kpis`` (``read_absent_kpis``) left out."""
    if not all(table_exists(conn, t) for t in MART_TABLES[4:]):
        return None
    waves = conn.sql("""select wave_quarter, scale, scale_points, published_mean, published_mean_ci_low,
                               published_mean_ci_high, n_teams_published, n_respondents_published, closed_on
                        from marts.fct_survey_waves order by wave_quarter, scale""").df()
    waves = with_team_scores_withheld(waves)
    months = conn.sql("select *, date_trunc('quarter', period_month)::date as period_quarter "
                      f"from marts.mart_team_month where {CLOSED_MONTHS} order by team, period_month").df()
    kpi_quarters = pd.DataFrame(
        [kpi_quarter(quarter, group, kpi) for quarter, group in months.groupby("period_quarter")
         for kpi in CORRELATION_KPIS if kpi.name not in absent_kpis],
        columns=list(KPI_QUARTER_COLUMNS))
    counts = conn.sql("select * from marts.fct_survey_profile_counts order by wave_quarter, profile, category").df()
    moves = conn.sql("select * from marts.fct_survey_zone_moves order by wave_quarter, from_zone, to_zone").df()
    shown = counts[(counts["profile"] == "zone") & counts["n_teams"].notna()]["wave_quarter"]
    points = conn.execute("""select safety_mean, accountability_mean, zone, safety_threshold, accountability_threshold
                             from marts.fct_team_survey_profiles where zone is not null and wave_quarter = ?
                             order by safety_mean, accountability_mean""",
                          [shown.max() if len(shown) else None]).df()
    return SurveyReview(waves, kpi_quarters, counts, moves, points)


def coverage_table(coverage: Coverage) -> pd.DataFrame:
    """The coverage figures as a two-column table for the exports."""
    values = {name: "" if value is None else str(value) for name, value in coverage.__dict__.items()}
    return pd.DataFrame({"measure": list(values), "value": list(values.values())})


def read_absent_kpis(conn: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """The KPIs whose optional input is missing (``Kpi.is_absent``)."""
    optional = [kpi for kpi in KPIS if kpi.needs]
    if not optional:
        return ()
    columns = dict.fromkeys(c for kpi in optional for c in kpi.absence_columns)
    outcomes = conn.sql(f"select {', '.join(columns)} from marts.mart_team_month").df()
    return tuple(kpi.name for kpi in optional if kpi.is_absent(outcomes))


def coverage_by_month_export(monthly: pd.DataFrame) -> pd.DataFrame:
    """``read_monthly_coverage`` as the CSV and workbook hold it: whole counts (12, not 12.0),
    empty where a source has no data yet."""
    return monthly.astype({"incidents": "Int64", "tickets": "Int64"})


def read_report_inputs(conn: duckdb.DuckDBPyConnection) -> ReportInputs:
    correlations = read_correlations(conn)
    raw_results = read_raw_results(conn)
    coverage = read_coverage(conn)
    monthly = read_monthly_coverage(conn)
    exports = {"kpi_correlations": correlations}
    if raw_results is not None:
        exports[RESULTS_TABLE.split(".")[1]] = raw_results
    exports["coverage"] = coverage_table(coverage)
    exports["coverage_by_month"] = coverage_by_month_export(monthly)
    absent_kpis = read_absent_kpis(conn)
    survey = read_survey_review(conn, absent_kpis)
    if survey is not None:
        exports["survey_quarters"] = survey.waves
        exports["kpi_quarters"] = survey.kpi_quarters
        exports["survey_profile_counts"] = survey.profile_counts
        exports["survey_zone_moves"] = survey.zone_moves
    return ReportInputs(
        correlations=correlations[list(CORRELATION_COLUMNS)],
        results=None if raw_results is None else raw_results[list(RESULT_COLUMNS)],
        coverage=coverage,
        monthly=monthly,
        exports=exports,
        absent_kpis=absent_kpis,
        survey=survey,
    )
