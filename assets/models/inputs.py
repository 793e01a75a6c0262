"""What the KPI models read from the warehouse, in one place (the asset and the notebooks).

Every query has an ORDER BY, and the models sort their rows again (assets/models/design.py),
so a refit on the same tables gives the same numbers.

- Safety: the mart's lagged team-wave mean in SDs of the published team-wave means.
- Measurement error of each team-wave mean: the wave's pooled within-team variance of person
  scores (the one-way ANOVA's MSW behind ICC(1), over the published cells) divided by the
  cell's respondents, in squared SDs of the published means. The published means' own
  reliability (true variance / observed variance) is 1 minus their mean error variance.
- Incidents still open are censored at the data's cut-off: the newest trigger,
  acknowledgement or resolve in marts.fct_incidents, the last moment the warehouse saw them
  open (the run's own clock would claim more when a sync lags behind).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pandas as pd

from assets.models.design import ERROR_VARIANCE, SAFETY, WAVE
from assets.models.stats import standardise

TEAM_MONTHS_SQL = """
select * from marts.mart_team_month
where safety_lagged is not null
order by team, period_month
"""

PUBLISHED_CELLS_SQL = """
select team, wave_quarter, n_respondents, score_mean as safety_mean, score_sd as safety_sd
from marts.fct_team_survey_waves
where not is_suppressed and scale = 'psychological_safety'
order by wave_quarter, team
"""

INCIDENTS_SQL = """
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
where months.safety_lagged is not null
order by incidents.team, incidents.period_month, incidents.incident_id
"""


@dataclass(frozen=True)
class ModelInputs:
    months: pd.DataFrame  # mart_team_month rows with safety, plus safety_z, safety_error_var, safety_wave
    incidents: pd.DataFrame  # incident rows with their team-month's safety, the same three columns
    reference_reliability: float  # share of the published team-wave means' variance that is true


def measurement_error(cells: pd.DataFrame) -> pd.DataFrame:
    """Each published cell's error variance (raw score units): the wave's pooled within-team
    variance over its published cells, divided by the cell's respondents."""
    n, sd = cells["n_respondents"].astype(float), cells["safety_sd"].astype(float)
    pooled = ((n - 1) * sd**2).groupby(cells["wave_quarter"]).transform("sum") / (n - 1).groupby(
        cells["wave_quarter"]).transform("sum")
    return cells.assign(error_var=pooled / n)


def with_safety(frame: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Add safety_z (SDs of the published team-wave means) and each row's measurement error."""
    scale = cells["safety_mean"].astype(float).std(ddof=1)
    errors = cells[["team", "wave_quarter", "error_var"]].rename(columns={"wave_quarter": "safety_wave_quarter"})
    joined = frame.merge(errors, on=["team", "safety_wave_quarter"], how="left", validate="many_to_one")
    joined[SAFETY] = standardise(joined["safety_lagged"].astype(float), cells["safety_mean"].astype(float))
    joined[ERROR_VARIANCE] = joined["error_var"] / scale**2
    joined[WAVE] = joined["safety_wave_quarter"]
    return joined.drop(columns="error_var")


def read_model_inputs(conn: duckdb.DuckDBPyConnection) -> ModelInputs:
    cells = measurement_error(conn.sql(PUBLISHED_CELLS_SQL).df())
    months = with_safety(conn.sql(TEAM_MONTHS_SQL).df(), cells)
    incidents = with_safety(conn.sql(INCIDENTS_SQL).df(), cells)
    scale = cells["safety_mean"].astype(float).std(ddof=1)
    reliability = float(1 - (cells["error_var"] / scale**2).mean()) if len(cells) > 1 else 1.0
    return ModelInputs(months, incidents, reliability if np.isfinite(reliability) else 1.0)
