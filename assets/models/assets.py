"""Model assets: survey psychometrics per team-wave and wave (frozen once a wave closes), the
tidy KPI x construct results table and the KPI correlation table."""

from datetime import UTC, date, datetime

import dagster as dg
import numpy as np
import pandas as pd
import polars as pl
from dagster_duckdb import DuckDBResource
from threadpoolctl import threadpool_limits

from assets.landing.team_map import identifier_key
from assets.models.design import does_not_vary
from assets.models.frozen_waves import plan_waves
from assets.models.inputs import TEAM_MONTHS_SQL, read_model_inputs, safety_unusable_reason
from assets.models.kpis import CORRELATION_KPIS, Family, Kpi
from assets.models.profiles import Thresholds, profile_counts, team_profiles, zone_moves
from assets.models.psychometrics import MIN_RESPONDENTS, WAVE_CLOSE_DAYS, survey_wave_tables, wave_closes_on
from assets.models.stats import (
    FALSE_DISCOVERY_RATE,
    MIN_TEAMS_TO_FIT,
    benjamini_hochberg,
    correlation_warning,
    join,
    kpi_safety_effects,
    team_bootstrap_correlation,
    zero_times_left_out,
)
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import append_table, replace_table, table_columns
from assets.warehouse.resource import WarehouseResource

TEAM_WAVES = ("marts", "fct_team_survey_waves")
WAVES = ("marts", "fct_survey_waves")
WAVE_MEMBERS = ("restricted", "survey__wave_members")
# A team-month headcount per team and month (the count-bounds rule reads its largest per quarter).
HEADCOUNT = dg.AssetKey(["intermediate", "int_team_month_headcount"])
# Which team of the map owns each survey group: a cell is frozen with its team's groups.
TEAM_OWNERS = dg.AssetKey(["intermediate", "int_team_owners"])
# The frozen cells as today's team map attributes them (the one place of that rule).
CURRENT_TEAM_WAVES = dg.AssetKey(["intermediate", "int_team_survey_waves"])
_FROZEN = {"closed_on": pl.Date, "frozen_at": pl.Datetime(time_zone="UTC")}
CELL_SCHEMA = {"team": pl.String, "wave_quarter": pl.Date, "scale": pl.String, "is_suppressed": pl.Boolean,
               "suppression_reason": pl.String, "n_respondents": pl.Int64, "score_mean": pl.Float64,
               "score_sd": pl.Float64, "rwg_j": pl.Float64, "survey_groups": pl.List(pl.String), **_FROZEN}
WAVE_SCHEMA = {"wave_quarter": pl.Date, "scale": pl.String, "scale_points": pl.Int64, "n_respondents": pl.Int64,
               "score_mean": pl.Float64, "n_teams": pl.Int64, "n_teams_published": pl.Int64,
               "n_respondents_published": pl.Int64, "published_mean": pl.Float64, "published_mean_ci_low": pl.Float64,
               "published_mean_ci_high": pl.Float64, "cronbach_alpha": pl.Float64,
               "n_alpha_complete_responses": pl.Int64, "icc1": pl.Float64, "icc2": pl.Float64, "anova_f": pl.Float64,
               "anova_df_between": pl.Int64, "anova_df_within": pl.Int64, "anova_group_size_k": pl.Float64,
               "n_late_responses": pl.Int64, **_FROZEN}
MEMBER_SCHEMA = {"response_id": pl.String, "wave_quarter": pl.Date, "frozen_at": pl.Datetime(time_zone="UTC")}


def _frame(table: pd.DataFrame, schema: dict, **columns) -> pl.DataFrame:
    """``table`` with ``columns`` added (each a function of the row's wave), typed as ``schema``."""
    rows = table.astype(object).where(table.notna(), None).to_dict("records")
    for row in rows:
        row["wave_quarter"] = pd.Timestamp(row["wave_quarter"]).date()
        row.update({name: make(row["wave_quarter"]) for name, make in columns.items()})
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


class SurveyWavesConfig(dg.Config):
    """``close_after_days``: a wave (calendar quarter) closes this many days after its quarter
    ends and is frozen the first night after. ``as_of``: the day the close rule is applied on
    (ISO date; default today, UTC): set it to replay a night."""

    close_after_days: int = WAVE_CLOSE_DAYS
    as_of: str = ""


@dg.multi_asset(
    pool=WAREHOUSE_POOL,
    outs={
        "fct_team_survey_waves": dg.AssetOut(
            key=list(TEAM_WAVES),
            kinds={"pandas", "duckdb"},
            description="One row per team, survey wave and scale (grain: team x wave_quarter x scale; scales: "
            "psychological_safety and, where the survey measured them, accountability and Clark's four stages): "
            "respondents, mean and sd of person scores (mean of answered items, at least the scale's minimum, 5 of "
            "Edmondson's 7), rwg(j) agreement. Written once per wave, the first night after the wave closes "
            f"({WAVE_CLOSE_DAYS} days after its quarter), and never recomputed: later nights cannot reveal a "
            f"suppressed cell by difference. A team with fewer than {MIN_RESPONDENTS} respondents in a scale, or "
            "whose respondents all gave the same score, is suppressed in every scale (every figure null); so is the "
            "next smallest team while the wave total minus its published cells would show a single cell, fewer "
            f"than {MIN_RESPONDENTS} people, equal scores or (with HR headcounts) a suppressed cell's size. Each "
            "cell keeps the team's survey groups of that night (survey_groups, as the team map compares them; null "
            "for cells frozen before they were kept): today's team map attributes the cells by them "
            "(intermediate.int_team_survey_waves), so a renamed or merged team keeps its waves.",
        ),
        "fct_survey_waves": dg.AssetOut(
            key=list(WAVES),
            kinds={"pandas", "duckdb"},
            description="One row per survey wave and scale (grain: wave_quarter x scale), frozen with the wave: "
            "respondents and mean over all scored respondents (withheld when suppression cannot make them safe); "
            "the respondent-weighted mean of the published team cells with its team-clustered 95% CI; Cronbach's "
            "alpha (complete responses) and ICC(1)/ICC(2) from a one-way ANOVA of person scores on team, over the "
            "published team cells only; the day the wave closed, when it was frozen, and how many of its "
            "responses came late from an earlier, already frozen quarter.",
        ),
    },
    deps=[dg.AssetKey(["restricted", "stg_survey__responses"]), HEADCOUNT, TEAM_OWNERS],
    group_name="marts",
)
def survey_waves(context: dg.AssetExecutionContext, config: SurveyWavesConfig, duckdb: DuckDBResource):
    as_of = date.fromisoformat(config.as_of) if config.as_of else datetime.now(UTC).date()
    with duckdb.get_connection() as conn:
        answers = conn.sql("select response_id, team, wave_quarter as submission_quarter, item_set, item_no, score, "
                           "scale_points from restricted.stg_survey__responses").df()
        scales = sorted(answers["scale_points"].unique())
        if len(scales) > 1:
            files = conn.sql("select scale_points, string_agg(distinct source_file, ', ' order by source_file) "
                             "from restricted.survey__responses group by 1 order by 1").fetchall()
            raise ValueError("survey answers on different scales, which the survey figures cannot compare: "
                             + "; ".join(f"{points}-point in {names}" for points, names in files)
                             + ". Load exports of one scale (if a file's scale_points in export_mapping.yml is "
                               "wrong, correct it; else remove the other scale's exports from the landing folder)")
        frozen = _frozen_tables(conn)
        members = (conn.sql(f"select response_id, wave_quarter from {'.'.join(WAVE_MEMBERS)}").df()
                   if _exists(conn, *WAVE_MEMBERS) else pd.DataFrame(columns=["response_id", "wave_quarter"]))
        published = ({d for (d,) in conn.sql(f"select distinct wave_quarter from {'.'.join(WAVES)}").fetchall()}
                     if frozen else set())
        plan = plan_waves(answers, members, published, as_of, config.close_after_days)
        frozen_at = datetime.now(UTC)
        new_members = plan.members(plan.members_to_write)
        if len(new_members):
            _append(conn, [(WAVE_MEMBERS, _frame(new_members, MEMBER_SCHEMA, frozen_at=lambda wave: frozen_at))])
        answers = answers.merge(plan.members(plan.to_publish), on="response_id")
        answers["wave_quarter"] = pd.to_datetime(answers["wave_quarter"])
        cells, waves = survey_wave_tables(answers, int(scales[0]) if scales else 7, _headcounts(conn))
        cells["survey_groups"] = cells["team"].map(_survey_groups(conn))
        closed = {"closed_on": lambda wave: wave_closes_on(wave, config.close_after_days),
                  "frozen_at": lambda wave: frozen_at}
        if frozen:
            _add_survey_groups_column(conn)
        writes = [(TEAM_WAVES, _frame(cells, CELL_SCHEMA, **closed)),
                  (WAVES, _frame(waves, WAVE_SCHEMA, n_late_responses=plan.late_responses, **closed))]
        _append(conn, writes, drop_first=[] if frozen else [TEAM_WAVES, WAVES])
        total_cells, total_suppressed = conn.sql(f"select count(*), count(*) filter (where is_suppressed) "
                                                 f"from {'.'.join(TEAM_WAVES)}").fetchone()
    opened = {str(w): str(d) for w, d in plan.open_waves.items()}
    context.log.info(f"waves frozen tonight: {[str(w) for w in plan.to_publish] or 'none'} ({len(cells)} team-wave "
                     f"cells, {int(cells['is_suppressed'].sum()) if len(cells) else 0} suppressed); open waves (not "
                     f"published until they close): {opened or 'none'}; late responses counted in a later wave: "
                     f"{int(plan.waves['is_late'].sum())}")
    yield dg.MaterializeResult(asset_key=list(TEAM_WAVES), metadata={
        "rows": total_cells, "suppressed": total_suppressed, "frozen_tonight": [str(w) for w in plan.to_publish],
        "open_waves": dg.MetadataValue.json(opened), "late_responses": int(plan.waves["is_late"].sum()),
    })
    yield dg.MaterializeResult(asset_key=list(WAVES), metadata={
        "frozen_tonight": len(waves),
        "table": dg.MetadataValue.md(waves.to_markdown(index=False)) if len(waves) else "",
    })


def _exists(conn, schema: str, table: str, column: str | None = None) -> bool:
    columns = table_columns(conn, f"{schema}.{table}")
    return bool(columns) and (column is None or column in columns)


def _frozen_tables(conn) -> bool:
    """Whether the survey marts are the frozen (append-only) tables. Tables a version before
    frozen waves wrote (no ``frozen_at``) are replaced: their closed waves freeze tonight."""
    return _exists(conn, *TEAM_WAVES, "frozen_at") and _exists(conn, *WAVES, "frozen_at")


def _survey_groups(conn) -> dict[str, list[str]]:
    """Each team's survey groups in tonight's team map, as the map compares them
    (identifier_key), sorted: what a cell frozen tonight is attributed by on later nights."""
    rows = conn.sql(f"select team, identifier from {'.'.join(TEAM_OWNERS.path)} where source = 'survey_group'")
    groups: dict[str, list[str]] = {}
    for team, identifier in rows.fetchall():
        groups.setdefault(team, []).append(identifier_key(identifier))
    return {team: sorted(keys) for team, keys in groups.items()}


def _add_survey_groups_column(conn) -> None:
    """Frozen cells written before cells kept their survey groups: the column is added (null for
    them, so they are attributed by their team's name) and every row stays."""
    if not _exists(conn, *TEAM_WAVES, "survey_groups"):
        conn.execute(f"alter table {'.'.join(TEAM_WAVES)} add column survey_groups varchar[]")


def _headcounts(conn) -> dict[tuple, float]:
    """Each team's largest monthly headcount per quarter: the most respondents an analyst
    reading the HR figures would allow it (the count-bounds rule)."""
    if not _exists(conn, *HEADCOUNT.path):
        return {}
    rows = conn.sql(f"select team, date_trunc('quarter', period_month)::date, max(headcount) "
                    f"from {'.'.join(HEADCOUNT.path)} group by all").fetchall()
    return {(team, pd.Timestamp(quarter)): float(count) for team, quarter, count in rows}


def _append(conn, writes: list[tuple[tuple[str, str], pl.DataFrame]], drop_first: list[tuple[str, str]] = ()) -> None:
    """Add rows to tables in one transaction (after dropping ``drop_first``)."""
    conn.execute("begin transaction")
    try:
        for schema, table in drop_first:
            conn.execute(f"drop table if exists {schema}.{table}")
        for (schema, table), frame in writes:
            append_table(conn, schema, table, frame)
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise


class SurveyProfilesConfig(dg.Config):
    """What counts as high on a scale, as a team-wave mean on the survey's 1..K scale (e.g. 4.5);
    unset: the scale's midpoint, (K + 1) / 2."""

    safety_threshold: float | None = None
    accountability_threshold: float | None = None
    stage_threshold: float | None = None


@dg.multi_asset(
    pool=WAREHOUSE_POOL,
    outs={
        "fct_team_survey_profiles": dg.AssetOut(
            key=["marts", "fct_team_survey_profiles"], kinds={"pandas", "duckdb"},
            description="One row per team and survey wave with a published cell (grain: team x wave_quarter): the "
            "scale means, the team's zone (reportable in safety and accountability: learning = both above the "
            "threshold, comfort = safety only, anxiety = accountability only, apathy = neither; threshold: the "
            "scale's midpoint unless configured) and Clark's stage reached (reportable in all four stages: the last "
            "stage up to which every stage is above the threshold, 0 to 4) with the first stage below it, and the "
            "thresholds it was placed by."),
        "fct_survey_profile_counts": dg.AssetOut(
            key=["marts", "fct_survey_profile_counts"], kinds={"pandas", "duckdb"},
            description="Teams per zone and per Clark stage reached, per wave (grain: wave_quarter x profile x "
            f"category); the counts are null for a wave with fewer than {MIN_RESPONDENTS} such teams, where a count "
            "could name a team."),
        "fct_survey_zone_moves": dg.AssetOut(
            key=["marts", "fct_survey_zone_moves"], kinds={"pandas", "duckdb"},
            description="How teams moved between zones from the previous quarter's wave to this one (grain: "
            "wave_quarter x from_zone x to_zone), over teams with a zone in both; null counts when fewer than "
            f"{MIN_RESPONDENTS} teams are in both."),
    },
    deps=[dg.AssetKey(list(TEAM_WAVES)), dg.AssetKey(list(WAVES))],
    group_name="marts",
)
def survey_profiles(context: dg.AssetExecutionContext, config: SurveyProfilesConfig, duckdb: DuckDBResource):
    thresholds = Thresholds(config.safety_threshold, config.accountability_threshold, config.stage_threshold)
    with duckdb.get_connection() as conn:
        cells = conn.sql(f"select team, wave_quarter, scale, is_suppressed, score_mean from {'.'.join(TEAM_WAVES)}").df()
        points = dict(conn.sql(f"select distinct wave_quarter, scale_points from {'.'.join(WAVES)}").fetchall())
        profiles = team_profiles(cells, {pd.Timestamp(w): k for w, k in points.items()}, thresholds)
        counts, moves = profile_counts(profiles), zone_moves(profiles)
        for name, frame in (("fct_team_survey_profiles", profiles), ("fct_survey_profile_counts", counts),
                            ("fct_survey_zone_moves", moves)):
            replace_table(conn, "marts", name, pl.from_pandas(frame, schema_overrides={"wave_quarter": pl.Date}))
    zoned = counts[(counts["profile"] == "zone") & counts["n_teams"].notna()]
    context.log.info(f"{len(profiles)} team-wave profiles; teams per zone:\n"
                     + (zoned.pivot(index="wave_quarter", columns="category", values="n_teams").to_string()
                        if len(zoned) else "none (no wave with both scales and enough teams)"))
    yield dg.MaterializeResult(asset_key=["marts", "fct_team_survey_profiles"], metadata={
        "rows": len(profiles), "with_zone": int(profiles["zone"].notna().sum()),
        "with_stage": int(profiles["stage_reached"].notna().sum())})
    yield dg.MaterializeResult(asset_key=["marts", "fct_survey_profile_counts"], metadata={"rows": len(counts)})
    yield dg.MaterializeResult(asset_key=["marts", "fct_survey_zone_moves"], metadata={"rows": len(moves)})


# Columns that only respondent-level tables have; none may appear in the warehouse file.
RESPONDENT_COLUMNS = ("response_id", "submitted_at", "item_no", "answer")


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=dg.AssetKey(list(TEAM_WAVES)),
    name="anonymity_holds",
    blocking=True,
    description=f"Fails if a published team-wave has fewer than {MIN_RESPONDENTS} respondents or no spread of scores "
    "(each person's score would show), a suppressed one shows any figure, a team is suppressed in one scale of a "
    "wave but not in another, a wave's suppressed cells in a scale are a single cell, or a table of the warehouse "
    "file (the restricted file not attached) has respondent-level columns or a `restricted` schema.",
)
def anonymity_holds(duckdb: WarehouseResource) -> dg.AssetCheckResult:
    cells = ".".join(TEAM_WAVES)
    with duckdb.get_connection(restricted=False) as conn:
        small = conn.execute(f"select count(*) from {cells} where not is_suppressed and n_respondents < ?",
                             [MIN_RESPONDENTS]).fetchone()[0]
        flat = conn.sql(f"select count(*) from {cells} where not is_suppressed and score_sd = 0").fetchone()[0]
        shown = conn.sql(f"select count(*) from {cells} where is_suppressed and "
                         "coalesce(n_respondents, score_mean, score_sd, rwg_j) is not null").fetchone()[0]
        split = conn.sql(f"select count(*) from (select team, wave_quarter from {cells} group by all "
                         "having count(distinct is_suppressed) > 1)").fetchone()[0]
        lone = conn.sql(f"select count(*) from (select wave_quarter, scale from {cells} group by all "
                        "having count(*) filter (where is_suppressed) = 1)").fetchone()[0]
        leaks = conn.execute(
            "select table_schema || '.' || table_name || '.' || column_name from information_schema.columns "
            f"where table_schema = 'restricted' or column_name in ({', '.join('?' * len(RESPONDENT_COLUMNS))})",
            list(RESPONDENT_COLUMNS),
        ).fetchall()
    return dg.AssetCheckResult(
        passed=not (small or flat or shown or split or lone or leaks),
        metadata={"published_under_5": small, "published_without_spread": flat, "suppressed_with_figures": shown,
                  "teams_suppressed_in_some_scales_only": split, "waves_with_one_suppressed_cell": lone,
                  "respondent_columns_outside_restricted": dg.MetadataValue.json([c for (c,) in leaks])},
    )


# Frozen cells (per team and wave, over their scales) that no team of today's map takes.
_UNTAKEN_CELLS_SQL = f"""
select cells.team, cells.wave_quarter, any_value(cells.survey_groups) as survey_groups
from {'.'.join(TEAM_WAVES)} as cells
where not exists (
    select 1 from {'.'.join(CURRENT_TEAM_WAVES.path)} as taken
    where taken.wave_quarter = cells.wave_quarter and taken.scale = cells.scale
        and list_contains(taken.frozen_teams, cells.team)
)
group by all
order by cells.team, cells.wave_quarter
"""


@dg.asset_check(
    pool=WAREHOUSE_POOL,
    asset=CURRENT_TEAM_WAVES,
    additional_deps=[dg.AssetKey(list(TEAM_WAVES)), TEAM_OWNERS],
    name="frozen_survey_cells_have_a_team",
    description="Warns naming the frozen survey cells (team and wave) that no team of today's team map takes: their "
    "survey groups now belong to several teams (a split) or to none, or (cells frozen before survey groups were kept "
    "with them) no team has their name any more. Their figures count in no month of any team.",
)
def frozen_survey_cells_have_a_team(duckdb: DuckDBResource) -> dg.AssetCheckResult:
    with duckdb.get_connection() as conn:
        untaken = conn.sql(_UNTAKEN_CELLS_SQL).fetchall()
        owners = {group: team for team, groups in _survey_groups(conn).items() for group in groups}
    named = [f"{team} {wave:%Y-%m-%d} ("
             + (", ".join(f"survey group {group}: {owners.get(group, 'no team')}" for group in groups) if groups
                is not None else f"frozen before survey groups were kept; no team is called {team} now") + ")"
             for team, wave, groups in untaken]
    return dg.AssetCheckResult(
        passed=not named,
        severity=dg.AssetCheckSeverity.WARN,
        description=(f"{len(named)} frozen survey team-waves count for no team of today's team map (their figures "
                     "are frozen, so they cannot be split or recomputed): " + "; ".join(named) + ". A cell counts "
                     "for the team that owns all its survey groups in team_map.yml; to keep such a history, give "
                     "the groups back to one team (or the team its old name)" if named
                     else "every frozen survey cell counts for a team of today's team map"),
        metadata={"cells_without_team": dg.MetadataValue.json(named), "cells_without_team_count": len(named)},
    )


# The effects models multiply narrow matrices (team-months or incidents by some 40 columns):
# OpenBLAS's second thread spins more than it shares (on the demo, 7.8 s of CPU against 4.7 s
# with one thread, and twice the wall time on a busy host); at 100x the elementwise work, which
# BLAS does not thread, dominates.
MODEL_BLAS_THREADS = 1


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["models", "kpi_safety_effects"],
    # Every table read_model_inputs reads, so a failed blocking check on any of them stops the models.
    deps=[dg.AssetKey(["marts", "fct_incidents"]), dg.AssetKey(["marts", "mart_team_month"]),
          dg.AssetKey(["marts", "fct_team_survey_waves"]), dg.AssetKey(["marts", "fct_team_month_survey_scores"]),
          CURRENT_TEAM_WAVES],
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
    intercept and Satterthwaite t for team-month log medians (TTR, TTA, days to finish a
    post-incident review, days to close its action items), with team-clustered OLS as
    cross-check and as fallback (the warning names why); NegativeBinomial with headcount
    exposure for incident counts and proactive tickets raised from other teams, junior headcount
    for those raised by juniors (Poisson with team-clustered errors at its boundary); binomial
    GLMs for proactive share, (critical-role) voluntary attrition, the share of serious
    incidents reviewed, of review action items closed in time and of repeat incidents; a
    log-normal time-to-event model for incident TTR with open incidents censored; log-OLS for
    incident TTD. The speaking-up KPIs need the identity map and are left out without it. All
    but the MixedLM rows have team-clustered errors (CR2 with Bell-McCaffrey t df). Counts, binomials and
    times to event with fewer than MIN_EVENTS_PER_COEFFICIENT (5) events per coefficient report
    "too few events" instead of an estimate. Where the survey measured the optional scales, the
    same models also test accountability and its interaction with safety (does accountability
    change the safety-KPI association? the product of the within parts, and of the between
    parts) and each of Clark's stages alone; one Benjamini-Hochberg correction covers every main
    row. Associations, not causes: safer teams may report more incidents and near misses, and
    write more reviews because it is safe to."""
    with duckdb.get_connection() as conn, threadpool_limits(limits=MODEL_BLAS_THREADS, user_api="blas"):
        inputs = read_model_inputs(conn)
        table = kpi_safety_effects(inputs.months, inputs.incidents, inputs.reference_reliability,
                                   models=inputs.models, unusable=inputs.unusable)
        replace_table(conn, "models", "kpi_safety_effects", pl.from_pandas(table))
    main = table[table["role"] == "main"]
    flagged = main[main["q_value"] < FALSE_DISCOVERY_RATE]
    shown = main[["kpi", "construct", "estimate", "ci_low", "ci_high", "q_value", "estimate_corrected",
                  "min_detectable_effect", "n_teams", "warnings"]]
    context.log.info("\n" + shown.to_string(index=False))
    return dg.MaterializeResult(metadata={
        "rows": len(table),
        "significant_after_bh": len(flagged),
        "reference_reliability": dg.MetadataValue.json(inputs.reference_reliability),
        "score_models": dg.MetadataValue.json([" + ".join(s.label for s in m.scores) + (" with interaction" if
                                               m.interaction else "") for m in inputs.models]),
        "table": dg.MetadataValue.md(shown.to_markdown(index=False)),
    })


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["models", "kpi_correlations"],
    deps=[dg.AssetKey(["marts", "mart_team_month"]), dg.AssetKey(["marts", "fct_team_survey_waves"])],
    group_name="models",
    kinds={"numpy", "duckdb"},
)
def kpi_correlations(context: dg.AssetExecutionContext, duckdb: DuckDBResource) -> dg.MaterializeResult:
    """KPI correlation table: between-team Pearson r of mean lagged safety with each KPI, and
    the partial r given team size (size_adjusted_*: the team's mean log headcount, the models'
    between-team size adjustment), each with a 95% CI from resampling teams (2,000 draws), the
    exact test's p (t with teams - 2 df, teams - 3 for the partial r) and a Benjamini-Hochberg
    q over every p of the table; the number of teams with a value of the KPI and of their
    team-months with data for it (Kpi.has_data: none before its source's first record).
    Team-months without a reportable safety score are left out; a KPI whose optional input is
    missing (the speaking-up KPIs without an identity map) has no row."""
    with duckdb.get_connection() as conn:
        months = conn.sql(TEAM_MONTHS_SQL).df()
        table = correlation_table(months, safety_unusable_reason(conn))
        replace_table(conn, "models", "kpi_correlations", pl.from_pandas(table))
    context.log.info("\n" + table.to_string(index=False))
    return dg.MaterializeResult(
        metadata={"table": dg.MetadataValue.md(table.to_markdown(index=False)), "rows": len(table)}
    )


def team_value(group: pd.DataFrame, kpi: Kpi) -> float:
    """A KPI pooled over one team's months: the weighted mean of the log of a team-month time
    (weighted by the incidents behind each median), else the sum of the outcome over the sum
    of its denominator, over the months with data for it (``Kpi.has_data``: a month before its
    source's first record has none, no data, not 0); NaN when no month has one."""
    known = group[kpi.has_data(group)]
    if kpi.family is Family.TEAM_MONTH_LOG_TIME:
        usable = known[(known[kpi.weight] > 0) & (known[kpi.outcome] > 0)]
        return float(np.average(np.log(usable[kpi.outcome]), weights=usable[kpi.weight])) if len(usable) else np.nan
    denominator = known[list(kpi.denominator)].to_numpy().sum()
    return known[kpi.outcome].sum() / denominator if denominator else np.nan


# The team-level size the partial r is given: the mean of log headcount over the team's months
# with people, the between-team part of the models' log headcount adjustment (assets/models/design.py).
TEAM_SIZE = "mean_log_headcount"
# The correlation table's columns: each r's interval, p and BH q beside it.
CORRELATION_COLUMNS = ("kpi", "r", "ci_low", "ci_high", "p_value", "q_value", "size_adjusted_r", "size_adjusted_ci_low",
                       "size_adjusted_ci_high", "size_adjusted_p_value", "size_adjusted_q_value", "n_teams",
                       "n_team_months", "definition", "warnings")


def team_level_kpis(months: pd.DataFrame) -> pd.DataFrame:
    """One row per team: mean lagged safety, its size (TEAM_SIZE) and each correlation KPI
    pooled over its team-months."""
    rows = [{"team": team, "safety": group["safety_lagged"].mean(),
             TEAM_SIZE: np.log(group.loc[group["headcount"] > 0, "headcount"].astype(float)).mean(),
             **{kpi.name: team_value(group, kpi) for kpi in CORRELATION_KPIS}}
            for team, group in months.groupby("team")]
    return pd.DataFrame(rows, columns=["team", "safety", TEAM_SIZE,
                                       *(kpi.name for kpi in CORRELATION_KPIS)])


def correlation_table(months: pd.DataFrame, no_score_reason: str = "") -> pd.DataFrame:
    """One row per correlation KPI: r and its size-adjusted partial r (given TEAM_SIZE), each
    with interval, p and a Benjamini-Hochberg q taken over every p of the table at once (the
    two columns of every row: the family of tests the report's correlation sentences draw on).
    ``no_score_reason`` (inputs.safety_unusable_reason) is why no team has a usable safety
    score, said on every row instead of a team count."""
    teams = team_level_kpis(months)
    rows = []
    for kpi in (kpi for kpi in CORRELATION_KPIS if not kpi.is_absent(months)):
        usable = teams.dropna(subset=["safety", kpi.name])
        # The team-months the KPI's value pools: of the teams counted, the months with data for
        # it (none before its source's first record), not every month with a safety score.
        counted_months = months["team"].isin(usable["team"]) & kpi.has_data(months)
        plain = team_bootstrap_correlation(usable, "safety", kpi.name)
        adjusted = team_bootstrap_correlation(usable, "safety", kpi.name, given=TEAM_SIZE)
        enough = len(usable) >= MIN_TEAMS_TO_FIT
        same = [f"{what} is the same for every team: no correlation to estimate" for what, column in
                ((kpi.name, kpi.name), ("safety", "safety")) if enough and does_not_vary(usable[column])]
        counted = "" if no_score_reason or same else correlation_warning(len(usable))
        left_out = ""
        if kpi.family is Family.TEAM_MONTH_LOG_TIME:
            pooled = months[months["team"].isin(usable["team"]) & (months[kpi.weight] > 0)]
            left_out = zero_times_left_out(int((pooled[kpi.outcome] == 0).sum()), kpi)
        rows.append({"kpi": kpi.name, "r": plain.r, "ci_low": plain.ci_low, "ci_high": plain.ci_high,
                     "p_value": plain.p_value, "size_adjusted_r": adjusted.r, "size_adjusted_ci_low": adjusted.ci_low,
                     "size_adjusted_ci_high": adjusted.ci_high, "size_adjusted_p_value": adjusted.p_value,
                     "n_teams": len(usable), "n_team_months": int(counted_months.sum()),
                     "definition": kpi.definition, "warnings": join(no_score_reason, counted, *same, left_out)})
    return _with_q_values(pd.DataFrame(rows, columns=[c for c in CORRELATION_COLUMNS if not c.endswith("q_value")]))


def _with_q_values(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with q_value and size_adjusted_q_value: one Benjamini-Hochberg correction over
    both p columns of every row."""
    tests = pd.concat([table["p_value"], table["size_adjusted_p_value"]], ignore_index=True)
    q_values = benjamini_hochberg(tests).to_numpy()
    table = table.assign(q_value=q_values[:len(table)], size_adjusted_q_value=q_values[len(table):])
    return table[list(CORRELATION_COLUMNS)]
