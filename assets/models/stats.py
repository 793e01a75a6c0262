"""Statistics behind the model assets, kept free of Dagster and DuckDB so they can be tested
on simulated data with known answers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

# Below this many clusters, cluster-robust standard errors are known to be too small.
MIN_TEAMS_FOR_CLUSTER_SE = 40


@dataclass(frozen=True)
class Estimate:
    term: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    n_obs: int
    n_teams: int
    n_periods: int
    model: str
    warnings: str


def cluster_warning(n_teams: int) -> str:
    if n_teams < MIN_TEAMS_FOR_CLUSTER_SE:
        return (
            f"only {n_teams} teams: team-clustered standard errors are unreliable below "
            f"{MIN_TEAMS_FOR_CLUSTER_SE} teams, so treat the interval as optimistic"
        )
    return ""


def standardise(values: pd.Series, reference: pd.Series) -> pd.Series:
    """Express ``values`` in standard deviations of ``reference`` (e.g. all team-wave means)."""
    return (values - reference.mean()) / reference.std(ddof=1)


def log_ttr_on_safety(incidents: pd.DataFrame) -> Estimate:
    """Incident-level OLS of log TTR on lagged team safety (in SDs), adjusting for log
    headcount (larger teams are both less safe and slower), errors clustered by team.

    ``incidents`` needs columns ttr_seconds, safety_z, headcount, team, period_month.
    """
    data = incidents.dropna(subset=["ttr_seconds", "safety_z", "headcount"])
    data = data[(data["ttr_seconds"] > 0) & (data["headcount"] > 0)].copy()
    if data["team"].nunique() < 3:
        raise ValueError(f"need incidents from at least 3 teams with a safety score, got {data['team'].nunique()}")
    data["log_ttr"] = np.log(data["ttr_seconds"])
    data["log_headcount"] = np.log(data["headcount"])
    groups = pd.factorize(data["team"])[0]
    fit = smf.ols("log_ttr ~ safety_z + log_headcount", data=data).fit(
        cov_type="cluster", cov_kwds={"groups": groups}
    )
    low, high = fit.conf_int().loc["safety_z"]
    n_teams = int(data["team"].nunique())
    return Estimate(
        term="safety_z",
        estimate=float(fit.params["safety_z"]),
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(fit.pvalues["safety_z"]),
        n_obs=int(len(data)),
        n_teams=n_teams,
        n_periods=int(data["period_month"].nunique()),
        model="OLS log(TTR) ~ safety_z + log(headcount), team-clustered",
        warnings=cluster_warning(n_teams),
    )


def team_bootstrap_correlation(
    teams: pd.DataFrame, x: str, y: str, n_resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Pearson r between team-level ``x`` and ``y`` with a 95% percentile CI from resampling
    teams with replacement. Returns (r, ci_low, ci_high); NaN when fewer than 3 teams."""
    data = teams[[x, y]].dropna().to_numpy(dtype=float)
    if len(data) < 3:
        return (float("nan"),) * 3
    r = float(np.corrcoef(data[:, 0], data[:, 1])[0, 1])
    rng = np.random.default_rng(seed)
    draws = data[rng.integers(0, len(data), size=(n_resamples, len(data)))]
    xs, ys = draws[:, :, 0], draws[:, :, 1]
    xc = xs - xs.mean(axis=1, keepdims=True)
    yc = ys - ys.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        rs = (xc * yc).sum(axis=1) / np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))
    rs = rs[np.isfinite(rs)]
    low, high = np.percentile(rs, [2.5, 97.5])
    return r, float(low), float(high)
