"""What the KPI models read from the warehouse, in one place (the asset and the notebooks).

Every query has an ORDER BY, and the models sort their rows again (assets/models/design.py),
so a refit on the same tables gives the same numbers.

- Safety: the mart's lagged team-wave mean in SDs of the published team-wave means; the other
  scales the survey measured the same way, each in SDs of its own published means:
  accountability from the mart (accountability_lagged), Clark's stages from
  marts.fct_team_month_survey_scores, which carries every scale.
- Which score models are fitted follows from what was measured: safety always; safety with
  accountability and their interaction when accountability was; each measured stage alone.
- Measurement error of each team-wave mean: the wave's pooled within-team variance of person
  scores (the one-way ANOVA's MSW behind ICC(1), over the published cells) divided by the
  respondents of the team's cell as today's team map attributes the frozen cells
  (intermediate.int_team_survey_waves: a renamed team's, a merged team's pooled), in squared
  SDs of the published means. The published means' own
  reliability (true variance / observed variance) is 1 minus their mean error variance.
- A score no model can use says why on every row of its models (``unusable_reason``): no
  published team-wave (every one suppressed for anonymity, or none closed yet), or one value
  in every published team-wave.
- Incidents still open are censored at the data's cut-off: the newest trigger,
  acknowledgement or resolve in marts.fct_incidents, the last moment the warehouse saw them
  open (the run's own clock would claim more when a sync lags behind).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from assets.models.design import (
    INTERACTION_MODEL,
    SAFETY_MODEL,
    SAFETY_SCORE,
    SCORES,
    Score,
    ScoreModel,
    does_not_vary,
)
from assets.models.psychometrics import MIN_RESPONDENTS
from assets.models.stats import standardise
from assets.warehouse.partitions import CLOSED_MONTHS

TEAM_MONTHS_SQL = f"""
select * from marts.mart_team_month
where safety_lagged is not null and {CLOSED_MONTHS}
order by team, period_month
"""

PUBLISHED_CELLS_SQL = """
select team, wave_quarter, scale, n_respondents, score_mean, score_sd
from marts.fct_team_survey_waves
where not is_suppressed
order by scale, wave_quarter, team
"""

# Today's published team-wave cells: the frozen cells as today's team map attributes them (a
# renamed team's, a merged team's pooled ones), which the mart's lagged scores are.
TEAM_CELLS_SQL = """
select team, wave_quarter, scale, n_respondents
from intermediate.int_team_survey_waves
where not is_suppressed and team is not null
order by scale, wave_quarter, team
"""

# How many team-wave cells each scale has, and how many are published (not suppressed).
SURVEY_CELLS_SQL = """
select scale, count(*) as cells, count(*) filter (where not is_suppressed) as published
from marts.fct_team_survey_waves
group by scale
order by scale
"""

# The scales marts.mart_team_month does not carry, from the long table that carries them all.
OTHER_SCORES_SQL = """
select team, period_month, scale, wave_quarter, score_lagged
from marts.fct_team_month_survey_scores
where not is_wave_stale and scale not in ('psychological_safety', 'accountability')
order by team, period_month, scale
"""

INCIDENTS_SQL = f"""
with cutoff as (
    select max(greatest(triggered_at, coalesce(acknowledged_at, triggered_at), coalesce(resolved_at, triggered_at)))
        as observed_until
    from marts.fct_incidents
)
select
    incidents.incident_id,
    incidents.team,
    incidents.period_month,
    incidents.ttr_seconds,
    incidents.ttd_seconds,
    case when incidents.is_open then epoch(cutoff.observed_until - incidents.triggered_at) end as open_for_seconds,
    months.headcount,
    months.safety_lagged,
    months.safety_wave_quarter
from marts.fct_incidents as incidents
inner join marts.mart_team_month as months using (team, period_month)
cross join cutoff
where months.safety_lagged is not null and {CLOSED_MONTHS}
order by incidents.team, incidents.period_month, incidents.incident_id
"""


@dataclass(frozen=True)
class ModelInputs:
    months: pd.DataFrame  # mart_team_month rows with safety, plus each measured score's _z, _error_var, _wave
    incidents: pd.DataFrame  # incident rows with their team-month's headcount and scores, the same columns
    reference_reliability: dict[str, float]  # per score prefix: share of the published means' variance that is true
    models: tuple[ScoreModel, ...]  # the score models the measured scales call for
    unusable: dict[str, str]  # per score prefix: why no model can use it (unusable_reason)

    @property
    def safety_reliability(self) -> float:
        return self.reference_reliability[SAFETY_SCORE.prefix]


def unusable_reason(score: Score, cells: int, published_means: pd.Series) -> str:
    """Why no model can use ``score``, or "": no published team-wave of its ``cells`` (all
    suppressed for anonymity, or none yet), or the same mean in every published team-wave
    (nothing to measure a difference in: its SD, the unit of every estimate, is 0)."""
    label = score.label
    if not len(published_means):
        why = (f"all {cells} team-waves of the survey are suppressed for anonymity: fewer than {MIN_RESPONDENTS} "
               "respondents or no spread of answers" if cells else "no survey wave has been published yet")
        return f"not estimable: no team has a reportable {label} score ({why})"
    if len(published_means) == 1:
        return (f"not estimable: only one team-wave of {label} is published, so the {label} score has no spread "
                "to measure differences in")
    if does_not_vary(published_means):
        return (f"not estimable: the {label} score is the same ({float(published_means.iloc[0]):.2f}) in every "
                "published team-wave, so nothing can be estimated")
    return ""


def _unusable(conn: duckdb.DuckDBPyConnection, cells: pd.DataFrame, scores: list[Score]) -> dict[str, str]:
    counts = {scale: n for scale, n, _ in conn.sql(SURVEY_CELLS_SQL).fetchall()}
    reasons = {score.prefix: unusable_reason(score, counts.get(score.scale, 0),
                                             cells.loc[cells["scale"] == score.scale, "score_mean"].astype(float))
               for score in scores}
    return {prefix: reason for prefix, reason in reasons.items() if reason}


def safety_unusable_reason(conn: duckdb.DuckDBPyConnection) -> str:
    """Why no team has a usable safety score, or "" (see ``unusable_reason``)."""
    return _unusable(conn, conn.sql(PUBLISHED_CELLS_SQL).df(), [SAFETY_SCORE]).get(SAFETY_SCORE.prefix, "")


def measurement_error(cells: pd.DataFrame, published: pd.DataFrame | None = None) -> pd.DataFrame:
    """Each cell's error variance (raw score units): the pooled within-team variance of its wave
    and scale over the published frozen cells (``published``, default ``cells`` themselves: they
    have ``score_sd``), divided by the cell's respondents."""
    published = cells if published is None else published
    n, sd = published["n_respondents"].astype(float), published["score_sd"].astype(float)
    parent = [published["wave_quarter"], published["scale"]]
    pooled = (((n - 1) * sd**2).groupby(parent).sum() / (n - 1).groupby(parent).sum()).rename("pooled").reset_index()
    joined = cells.merge(pooled, on=["wave_quarter", "scale"], how="left", validate="many_to_one")
    return cells.assign(error_var=(joined["pooled"] / joined["n_respondents"].astype(float)).to_numpy())


def with_score(frame: pd.DataFrame, cells: pd.DataFrame, team_cells: pd.DataFrame, score: Score) -> pd.DataFrame:
    """Add the score's ``_z`` (SDs of its published team-wave means, ``cells``) and each row's
    measurement error (today's team-waves, ``team_cells``), from ``<prefix>_lagged`` and
    ``<prefix>_wave_quarter``."""
    scale = cells["score_mean"].astype(float).std(ddof=1)
    wave = f"{score.prefix}_wave_quarter"
    errors = team_cells[["team", "wave_quarter", "error_var"]].rename(columns={"wave_quarter": wave})
    joined = frame.merge(errors, on=["team", wave], how="left", validate="many_to_one")
    joined[score.z] = standardise(joined[f"{score.prefix}_lagged"].astype(float), cells["score_mean"].astype(float))
    joined[score.error_var] = joined["error_var"] / scale**2
    joined[score.wave] = joined[wave]
    return joined.drop(columns="error_var")


def score_models(measured: list[Score]) -> tuple[ScoreModel, ...]:
    """Safety alone; safety with accountability and their interaction when accountability was
    measured; each other measured scale (Clark's stages) alone."""
    others = tuple(ScoreModel((s,), (s,)) for s in measured if s not in INTERACTION_MODEL.scores)
    interaction = (INTERACTION_MODEL,) if INTERACTION_MODEL.scores[1] in measured else ()
    return (SAFETY_MODEL, *interaction, *others)


def read_model_inputs(conn: duckdb.DuckDBPyConnection) -> ModelInputs:
    cells = measurement_error(conn.sql(PUBLISHED_CELLS_SQL).df())
    team_cells = measurement_error(conn.sql(TEAM_CELLS_SQL).df(), cells)
    months = conn.sql(TEAM_MONTHS_SQL).df()
    others = conn.sql(OTHER_SCORES_SQL).df()
    if len(others):
        others["prefix"] = others["scale"].map(lambda key: SCORES[key].prefix)
        wide = others.pivot(index=["team", "period_month"], columns="prefix", values=["score_lagged", "wave_quarter"])
        wide.columns = [f"{prefix}_{'lagged' if value == 'score_lagged' else 'wave_quarter'}"
                        for value, prefix in wide.columns]
        months = months.merge(wide.reset_index(), on=["team", "period_month"], how="left")
    measured = [SCORES[key] for key in SCORES if key in set(cells["scale"])
                and f"{SCORES[key].prefix}_lagged" in months]
    reliability = {}
    for score in measured:
        scale_cells = cells[cells["scale"] == score.scale]
        months = with_score(months, scale_cells, team_cells[team_cells["scale"] == score.scale], score)
        sd = scale_cells["score_mean"].astype(float).std(ddof=1)
        value = float(1 - (scale_cells["error_var"] / sd**2).mean()) if len(scale_cells) > 1 else 1.0
        reliability[score.prefix] = value if np.isfinite(value) else 1.0
    reliability.setdefault(SAFETY_SCORE.prefix, 1.0)
    unusable = _unusable(conn, cells, list(dict.fromkeys([SAFETY_SCORE, *measured])))
    # Each incident carries its team-month's scores as the team-month models read them.
    per_month = months[["team", "period_month", *(c for s in measured for c in (s.z, s.error_var, s.wave))]]
    incidents = conn.sql(INCIDENTS_SQL).df().merge(per_month, on=["team", "period_month"], how="left",
                                                   validate="many_to_one")
    return ModelInputs(months, incidents, reliability, score_models(measured), unusable)
