"""Model assets: survey psychometrics per team-wave and wave, the safety vs time-to-resolve
regression, the tidy KPI x construct results table and the KPI correlation table."""


import dagster as dg
import numpy as np
import pandas as pd
import polars as pl
from dagster_duckdb import DuckDBResource

from assets.models.psychometrics import survey_wave_tables
from assets.models.stats import (
    cluster_warning,
    kpi_safety_effects,
    standardise,
    team_bootstrap_correlation,
)
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import replace_table


@dg.multi_asset(
    pool=WAREHOUSE_POOL,
    outs={
        "fct_team_survey_waves": dg.AssetOut(
            key=["marts", "fct_team_survey_waves"],
            kinds={"pandas", "duckdb"},
            description="One row per team and survey wave (grain: team x wave_quarter): respondents, mean "
            "and sd of person scores (mean of answered items, at least 5 of 7), rwg(j) agreement. A cell "
            "with fewer than 5 respondents is suppressed (every figure null), and so is the next smallest "
            "cell of the same wave until the suppressed cells are at least two with 5 or more people.",
        ),
        "fct_survey_waves": dg.AssetOut(
            key=["marts", "fct_survey_waves"],
            kinds={"pandas", "duckdb"},
            description="One row per survey wave (grain: wave_quarter): respondents and mean over all "
            "scored respondents; Cronbach's alpha (complete responses) and ICC(1)/ICC(2) from a one-way "
            "ANOVA of person scores on team, over the published team cells only.",
        ),
    },
    deps=[dg.AssetKey(["restricted", "stg_survey__responses"])],
    group_name="marts",
)
def survey_waves(context: dg.AssetExecutionContext, duckdb: DuckDBResource):
    with duckdb.get_connection() as conn:
        answers = conn.sql(
            "select response_id, team, wave_quarter, item_no, score, scale_points from restricted.stg_survey__responses"
        ).df()
        scales = sorted(answers["scale_points"].unique())
        if len(scales) > 1:
            raise ValueError(f"survey answers on different scales {scales}: load one export scale at a time")
        cells, waves = survey_wave_tables(answers, int(scales[0]) if scales else 7)
        as_dates = pl.col("wave_quarter").cast(pl.Date)
        replace_table(conn, "marts", "fct_team_survey_waves", pl.from_pandas(cells).with_columns(as_dates))
        replace_table(conn, "marts", "fct_survey_waves", pl.from_pandas(waves).with_columns(as_dates))
    suppressed = int(cells["is_suppressed"].sum()) if len(cells) else 0
    context.log.info(f"{len(cells)} team-waves ({suppressed} suppressed), {len(waves)} waves\n"
                     + waves[["wave_quarter", "n_respondents", "cronbach_alpha", "icc1", "icc2"]].to_string(index=False))
    yield dg.MaterializeResult(asset_key=["marts", "fct_team_survey_waves"],
                               metadata={"rows": len(cells), "suppressed": suppressed})
    yield dg.MaterializeResult(asset_key=["marts", "fct_survey_waves"], metadata={
        "rows": len(waves), "table": dg.MetadataValue.md(waves.to_markdown(index=False)) if len(waves) else "",
    })


# Columns that only respondent-level tables have; none may appear outside `restricted`.
RESPONDENT_COLUMNS = ("response_id", "submitted_at", "item_no", "answer")


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=dg.AssetKey(["marts", "fct_team_survey_waves"]),
    name="anonymity_holds",
    blocking=True,
    description="Fails if a published team-wave has fewer than 5 respondents, a suppressed one shows "
    "any figure, a wave's suppressed cells are a single cell or under 5 people, or a table outside "
    "the restricted schema has respondent-level columns.",
)
def anonymity_holds(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        small = conn.sql("select count(*) from marts.fct_team_survey_waves where not is_suppressed and "
                         "n_respondents < 5").fetchone()[0]
        shown = conn.sql("select count(*) from marts.fct_team_survey_waves where is_suppressed and "
                         "coalesce(n_respondents, safety_mean, safety_sd, rwg_j) is not null").fetchone()[0]
        lone = conn.sql("select count(*) from (select wave_quarter from marts.fct_team_survey_waves "
                        "group by all having count(*) filter (where is_suppressed) = 1)").fetchone()[0]
        leaks = conn.execute(
            "select table_schema || '.' || table_name || '.' || column_name from information_schema.columns "
            f"where table_schema <> 'restricted' and column_name in ({', '.join('?' * len(RESPONDENT_COLUMNS))})",
            list(RESPONDENT_COLUMNS),
        ).fetchall()
    return dg.AssetCheckResult(
        passed=not (small or shown or lone or leaks),
        metadata={"published_under_5": small, "suppressed_with_figures": shown, "waves_with_one_suppressed_cell": lone,
                  "respondent_columns_outside_restricted": dg.MetadataValue.json([c for (c,) in leaks])},
    )


KPI_DEFINITIONS = {
    "log median TTR": "mean over team-months of log(median seconds to resolve), weighted by resolved incidents",
    "log median TTA": "mean over team-months of log(median seconds to acknowledge), weighted by acknowledged incidents",
    "proactive share": "proactive / (proactive + reactive) tickets",
    "voluntary attrition": "voluntary leavers / headcount-months",
    "incidents per head": "incidents / headcount-months (safer teams may report more: reporting bias)",
}


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["models", "kpi_safety_effects"],
    deps=[dg.AssetKey(["marts", "fct_incidents"]), dg.AssetKey(["marts", "mart_team_month"]),
          dg.AssetKey(["marts", "fct_team_survey_waves"])],
    group_name="models",
    kinds={"statsmodels", "duckdb"},
)
def kpi_safety_effects_table(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """The results table: one row per KPI x construct (safety within team, safety between
    teams; incident-level models use total safety) with estimate, 95% CI, p, Benjamini-Hochberg
    q over the main rows, n teams, n periods, model and warnings. Safety is the lagged team
    score in SDs of the published team-wave means. Main models (METRICS.md): MixedLM with a
    team random intercept for team-month log median TTR/TTA (clustered OLS as cross-check and
    as fallback when the team variance is zero), NegativeBinomial with headcount exposure for
    incident counts, binomial GLMs for proactive share and (critical-role) voluntary
    attrition, incident-level log-OLS for TTR and TTD; all adjust for log headcount and
    cluster by team. Associations, not causes: safer teams may report more incidents and
    near misses."""
    with duckdb.get_connection() as conn:
        months = conn.sql("select * from marts.mart_team_month where safety_lagged is not null").df()
        reference = conn.sql("select safety_mean from marts.fct_team_survey_waves where not is_suppressed").df()
        incidents = conn.sql(
            """
            select i.team, i.period_month, i.ttr_seconds, i.ttd_seconds, m.headcount, m.safety_lagged
            from marts.fct_incidents as i
            inner join marts.mart_team_month as m using (team, period_month)
            where not i.is_open and m.safety_lagged is not null
            """
        ).df()
        months["safety_z"] = standardise(months["safety_lagged"], reference["safety_mean"])
        incidents["safety_z"] = standardise(incidents["safety_lagged"], reference["safety_mean"])
        table = kpi_safety_effects(months, incidents)
        replace_table(conn, "models", "kpi_safety_effects", pl.from_pandas(table))
    main = table[table["role"] == "main"]
    flagged = main[main["q_value"] < 0.05]
    context.log.info("\n" + main.drop(columns=["model", "role"]).to_string(index=False))
    return dg.MaterializeResult(metadata={
        "rows": len(table),
        "significant_after_bh": len(flagged),
        "table": dg.MetadataValue.md(main.drop(columns=["model", "role"]).to_markdown(index=False)),
    })


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["models", "kpi_correlations"],
    deps=[dg.AssetKey(["marts", "mart_team_month"])],
    group_name="models",
    kinds={"numpy", "duckdb"},
)
def kpi_correlations(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """KPI correlation table: between-team Pearson r of mean lagged safety with each KPI,
    with 95% CIs from resampling teams (2,000 draws), the number of teams and team-months.
    Team-months without a reportable safety score are left out."""
    with duckdb.get_connection() as conn:
        months = conn.sql("select * from marts.mart_team_month where safety_lagged is not null").df()
        table = correlation_table(months)
        replace_table(conn, "models", "kpi_correlations", pl.from_pandas(table))
    context.log.info("\n" + table.to_string(index=False))
    return dg.MaterializeResult(
        metadata={"table": dg.MetadataValue.md(table.to_markdown(index=False)), "rows": len(table)}
    )


def team_level_kpis(months: pd.DataFrame) -> pd.DataFrame:
    """One row per team: mean lagged safety and each KPI pooled over its team-months."""

    def weighted_log(group: pd.DataFrame, value: str, weight: str) -> float:
        usable = group[(group[weight] > 0) & (group[value] > 0)]
        if usable.empty:
            return np.nan
        return float(np.average(np.log(usable[value]), weights=usable[weight]))

    rows = []
    for team, group in months.groupby("team"):
        head_months = group["headcount"].sum()
        flagged = group["proactive_tickets"].sum() + group["reactive_tickets"].sum()
        rows.append(
            {
                "team": team,
                "safety": group["safety_lagged"].mean(),
                "team_months": len(group),
                "log median TTR": weighted_log(group, "ttr_median_seconds", "n_ttr"),
                "log median TTA": weighted_log(group, "tta_median_seconds", "n_tta"),
                "proactive share": group["proactive_tickets"].sum() / flagged if flagged else np.nan,
                "voluntary attrition": group["voluntary_leavers"].sum() / head_months if head_months else np.nan,
                "incidents per head": group["incidents"].sum() / head_months if head_months else np.nan,
            }
        )
    return pd.DataFrame(rows)


def correlation_table(months: pd.DataFrame) -> pd.DataFrame:
    teams = team_level_kpis(months)
    rows = []
    for kpi, definition in KPI_DEFINITIONS.items():
        usable = teams.dropna(subset=["safety", kpi])
        r, low, high = team_bootstrap_correlation(usable, "safety", kpi)
        rows.append(
            {
                "kpi": kpi,
                "r": r,
                "ci_low": low,
                "ci_high": high,
                "n_teams": len(usable),
                "n_team_months": int(usable["team_months"].sum()),
                "definition": definition,
                "warnings": cluster_warning(len(usable)),
            }
        )
    return pd.DataFrame(rows)
