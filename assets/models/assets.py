"""Model assets: survey psychometrics per team-wave and wave, the tidy KPI x construct results
table and the KPI correlation table."""


import dagster as dg
import numpy as np
import pandas as pd
import polars as pl
from dagster_duckdb import DuckDBResource

from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.models.inputs import TEAM_MONTHS_SQL, read_model_inputs
from assets.models.kpis import CORRELATION_KPIS, Family, Kpi
from assets.models.psychometrics import MIN_ITEMS_ANSWERED, MIN_RESPONDENTS, survey_wave_tables
from assets.models.stats import (
    FALSE_DISCOVERY_RATE,
    few_teams_warning,
    kpi_safety_effects,
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
            f"and sd of person scores (mean of answered items, at least {MIN_ITEMS_ANSWERED} of 7), rwg(j) "
            f"agreement. A cell with fewer than {MIN_RESPONDENTS} respondents is suppressed (every figure null), "
            "and so is the next smallest cell of the same wave until the suppressed cells are at least two with "
            f"{MIN_RESPONDENTS} or more people.",
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
            "select response_id, team, wave_quarter, item_no, score, scale_points from restricted.stg_survey__responses "
            f"where item_set = '{PSYCHOLOGICAL_SAFETY.key}'").df()
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
    description=f"Fails if a published team-wave has fewer than {MIN_RESPONDENTS} respondents, a suppressed one "
    f"shows any figure, a wave's suppressed cells are a single cell or under {MIN_RESPONDENTS} people, or a table "
    "outside the restricted schema has respondent-level columns.",
)
def anonymity_holds(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        small = conn.execute("select count(*) from marts.fct_team_survey_waves where not is_suppressed and "
                             "n_respondents < ?", [MIN_RESPONDENTS]).fetchone()[0]
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


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["models", "kpi_safety_effects"],
    deps=[dg.AssetKey(["marts", "fct_incidents"]), dg.AssetKey(["marts", "mart_team_month"]),
          dg.AssetKey(["marts", "fct_team_survey_waves"])],
    group_name="models",
    kinds={"statsmodels", "duckdb"},
)
def kpi_safety_effects_table(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """The results table: one row per KPI x construct (safety within team and between teams in
    the team-month models; the incident-level models use the incident's lagged team safety)
    with estimate, 95% CI, p, Benjamini-Hochberg q over the main rows, the t's degrees of
    freedom, a reliability-corrected estimate (per SD of true team safety, survey measurement
    error removed) with its CI, the smallest effect detectable at 80% power, n, events, teams,
    periods, model and warnings. Safety is the lagged team score in SDs of the published
    team-wave means. Every model adjusts for log headcount (split within/between like safety)
    and quarter fixed effects. Main models (docs/metrics.md): MixedLM with a team random
    intercept and Satterthwaite t for team-month log median TTR/TTA, with team-clustered OLS as
    cross-check and as fallback (the warning names why); NegativeBinomial with headcount
    exposure for incident counts (Poisson with team-clustered errors at its boundary);
    binomial GLMs for proactive share and (critical-role) voluntary attrition; a log-normal
    time-to-event model for incident TTR with open incidents censored; log-OLS for incident
    TTD. All but the MixedLM rows have team-clustered errors with t(teams - 1). Counts,
    binomials and times to event with fewer than MIN_EVENTS_PER_COEFFICIENT (5) events per
    coefficient report "too few events" instead of an estimate. Associations, not causes: safer teams may report more
    incidents and near misses."""
    with duckdb.get_connection() as conn:
        inputs = read_model_inputs(conn)
        table = kpi_safety_effects(inputs.months, inputs.incidents, inputs.reference_reliability)
        replace_table(conn, "models", "kpi_safety_effects", pl.from_pandas(table))
    main = table[table["role"] == "main"]
    flagged = main[main["q_value"] < FALSE_DISCOVERY_RATE]
    shown = main[["kpi", "construct", "estimate", "ci_low", "ci_high", "q_value", "estimate_corrected",
                  "min_detectable_effect", "n_teams", "warnings"]]
    context.log.info("\n" + shown.to_string(index=False))
    return dg.MaterializeResult(metadata={
        "rows": len(table),
        "significant_after_bh": len(flagged),
        "reference_reliability": inputs.reference_reliability,
        "table": dg.MetadataValue.md(shown.to_markdown(index=False)),
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
        months = conn.sql(TEAM_MONTHS_SQL).df()
        table = correlation_table(months)
        replace_table(conn, "models", "kpi_correlations", pl.from_pandas(table))
    context.log.info("\n" + table.to_string(index=False))
    return dg.MaterializeResult(
        metadata={"table": dg.MetadataValue.md(table.to_markdown(index=False)), "rows": len(table)}
    )


def team_value(group: pd.DataFrame, kpi: Kpi) -> float:
    """A KPI pooled over one team's months: the weighted mean of the log of a team-month time
    (weighted by the incidents behind each median), else the sum of the outcome over the sum
    of its denominator."""
    if kpi.family is Family.TEAM_MONTH_LOG_TIME:
        usable = group[(group[kpi.weight] > 0) & (group[kpi.outcome] > 0)]
        return float(np.average(np.log(usable[kpi.outcome]), weights=usable[kpi.weight])) if len(usable) else np.nan
    denominator = group[list(kpi.denominator)].to_numpy().sum()
    return group[kpi.outcome].sum() / denominator if denominator else np.nan


def team_level_kpis(months: pd.DataFrame) -> pd.DataFrame:
    """One row per team: mean lagged safety and each correlation KPI pooled over its team-months."""
    rows = [{"team": team, "safety": group["safety_lagged"].mean(), "team_months": len(group),
             **{kpi.name: team_value(group, kpi) for kpi in CORRELATION_KPIS}}
            for team, group in months.groupby("team")]
    return pd.DataFrame(rows, columns=["team", "safety", "team_months", *(kpi.name for kpi in CORRELATION_KPIS)])


def correlation_table(months: pd.DataFrame) -> pd.DataFrame:
    teams = team_level_kpis(months)
    rows = []
    for kpi in CORRELATION_KPIS:
        usable = teams.dropna(subset=["safety", kpi.name])
        r, low, high = team_bootstrap_correlation(usable, "safety", kpi.name)
        rows.append({"kpi": kpi.name, "r": r, "ci_low": low, "ci_high": high, "n_teams": len(usable),
                     "n_team_months": int(usable["team_months"].sum()), "definition": kpi.definition,
                     "warnings": few_teams_warning(len(usable))})
    return pd.DataFrame(rows)
