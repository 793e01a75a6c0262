"""Statistics behind the model assets, kept free of Dagster and DuckDB so they can be tested
on simulated data with known answers."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import statsmodels.api as sm
import statsmodels.formula.api as smf
from statsmodels.stats.multitest import multipletests
from statsmodels.tools.sm_exceptions import ConvergenceWarning, HessianInversionWarning, PerfectSeparationWarning

# Below this many clusters, cluster-robust standard errors are known to be too small. Every
# team-clustered interval and p-value uses t with (teams - 1) degrees of freedom.
MIN_TEAMS_FOR_CLUSTER_SE = 40
# A per-SD effect beyond this on a log scale (a 22,000-fold change) is an artefact of the fit.
MAX_LOG_EFFECT = 10.0
# Below this many teams no p-value is reported at all: the estimate is description only.
MIN_TEAMS_FOR_TESTS = 10
# A random-intercept variance below this share of the residual variance is treated as zero
# (statsmodels #10239: MixedLM then returns exact zeros for team-constant terms).
MIN_RANDOM_EFFECT_SHARE = 1e-6
CONSTRUCTS = {"safety_within": "safety within team", "safety_between": "safety between teams"}


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
    return log_duration_on_safety(incidents, "ttr_seconds", "TTR")


def log_duration_on_safety(incidents: pd.DataFrame, column: str, label: str) -> Estimate:
    """Incident-level OLS of log(``column``) on lagged safety_z + log headcount, team-clustered."""
    data = incidents.dropna(subset=[column, "safety_z", "headcount"])
    data = data[(data[column] > 0) & (data["headcount"] > 0)].copy()
    if data["team"].nunique() < 3:
        raise ValueError(f"need incidents from at least 3 teams with a safety score, got {data['team'].nunique()}")
    data["log_duration"] = np.log(data[column])
    data["log_headcount"] = np.log(data["headcount"])
    fit = smf.ols("log_duration ~ safety_z + log_headcount", data=data).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(data["team"])[0]}, use_t=True
    )
    return _estimate(fit, "safety_z", data, f"OLS log({label}) ~ safety_z + log(headcount), team-clustered")


def _estimate(fit, term: str, data: pd.DataFrame, model: str, extra_warning: str = "") -> Estimate:
    estimate, p_value = float(fit.params[term]), float(fit.pvalues[term])
    low, high = (float(bound) for bound in fit.conf_int().loc[term])
    n_teams = int(data["team"].nunique())
    if not np.isfinite(low) or not np.isfinite(high):
        extra_warning = "; ".join(w for w in (extra_warning, "no standard error: the fit's Hessian is singular") if w)
    unidentified = _unidentified(data[term], estimate, low, high)
    if unidentified:
        # A number here would be an artefact of the design, not a finding: report none.
        extra_warning = "; ".join(w for w in (extra_warning, unidentified) if w)
        estimate = low = high = p_value = float("nan")
    return Estimate(
        term=term,
        estimate=estimate,
        ci_low=low,
        ci_high=high,
        p_value=p_value,
        n_obs=int(len(data)),
        n_teams=n_teams,
        n_periods=int(data["period_month"].nunique()),
        model=model,
        warnings="; ".join(w for w in (extra_warning, cluster_warning(n_teams)) if w),
    )


def _unidentified(values: pd.Series, estimate: float, low: float, high: float) -> str:
    """Why the data cannot identify a term's effect, or "" when they can: the term does not
    vary (e.g. no team has two survey waves yet, so safety has no within-team part), or the
    fit puts it beyond any plausible size (more than MAX_LOG_EFFECT per SD on the log scale:
    a e^10, 22,000-fold, change), the sign of a near-singular design."""
    if values.std() < 1e-9:
        return "not estimable: this part of safety does not vary in the data"
    if np.nanmax([abs(estimate), abs(low), abs(high)]) > MAX_LOG_EFFECT:
        return (f"not estimable: the fit gives {estimate:.3g} (95% CI {low:.3g} to {high:.3g}) per SD, "
                "far beyond any plausible effect, so the data cannot pin this term down")
    return ""


def with_mundlak_terms(months: pd.DataFrame) -> pd.DataFrame:
    """Split lagged safety_z into its team mean over the rows given (between) and each row's
    deviation from it (within), and add log headcount."""
    data = months.copy()
    data["safety_between"] = data.groupby("team")["safety_z"].transform("mean")
    data["safety_within"] = data["safety_z"] - data["safety_between"]
    data["log_headcount"] = np.log(data["headcount"])
    return data


MUNDLAK_FORMULA = "safety_within + safety_between + log_headcount"


def _usable(data: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    data = data.dropna(subset=[*columns, "safety_z", "headcount"])
    data = data[data["headcount"] > 0]
    return with_mundlak_terms(data)


def _too_few_teams(data: pd.DataFrame, model: str) -> list[Estimate] | None:
    n_teams = int(data["team"].nunique())
    if n_teams >= 3:
        return None
    nan = float("nan")
    return [Estimate(term, nan, nan, nan, nan, len(data), n_teams, int(data["period_month"].nunique()), model,
                     f"only {n_teams} teams: too few to estimate") for term in CONSTRUCTS]


def clustered_ols_within_between(months: pd.DataFrame, outcome: str) -> list[Estimate]:
    """OLS of ``outcome`` on within/between safety + log headcount, team-clustered errors."""
    data = _usable(months, [outcome])
    model = f"OLS {outcome} ~ {MUNDLAK_FORMULA}, team-clustered"
    if (failed := _too_few_teams(data, model)) is not None:
        return failed
    fit = smf.ols(f"{outcome} ~ {MUNDLAK_FORMULA}", data=data).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(data["team"])[0]}, use_t=True
    )
    return [_estimate(fit, term, data, model) for term in CONSTRUCTS]


def mixed_within_between(months: pd.DataFrame, outcome: str) -> list[Estimate]:
    """MixedLM (REML) of ``outcome`` on within/between safety + log headcount with a team
    random intercept. When the random-intercept variance is (near) zero or the fit does not
    converge, MixedLM's team-constant terms are unreliable (exact zeros, statsmodels #10239):
    the team-clustered OLS is reported instead and the warning says so."""
    data = _usable(months, [outcome])
    model = f"MixedLM {outcome} ~ {MUNDLAK_FORMULA} + (1 | team)"
    if (failed := _too_few_teams(data, model)) is not None:
        return failed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            fit = smf.mixedlm(f"{outcome} ~ {MUNDLAK_FORMULA}", data=data, groups=data["team"]).fit(reml=True)
        except np.linalg.LinAlgError:
            fit = None
    team_variance = float(np.asarray(fit.cov_re)[0, 0]) if fit is not None else float("nan")
    degenerate = (
        fit is None
        or not fit.converged
        or any(issubclass(w.category, ConvergenceWarning) for w in caught)
        or team_variance < MIN_RANDOM_EFFECT_SHARE * float(fit.scale)
        or not np.all(np.isfinite(fit.bse[list(CONSTRUCTS)]))
        or (fit.params[list(CONSTRUCTS)] == 0).any()
    )
    if degenerate:
        reason = (f"MixedLM team variance {team_variance:.2g} is near zero, or the fit failed or did not "
                  "converge (statsmodels #10239): reporting the team-clustered OLS instead")
        return [replace(e, warnings="; ".join(w for w in (reason, e.warnings) if w))
                for e in clustered_ols_within_between(months, outcome)]
    return [_estimate(fit, term, data, model) for term in CONSTRUCTS]


def negative_binomial_within_between(months: pd.DataFrame, count: str, exposure: str) -> list[Estimate]:
    """Discrete NegativeBinomial (alpha estimated) of ``count`` with log(``exposure``) as
    offset, on within/between safety + log headcount, team-clustered errors. Coefficients
    are log rate ratios."""
    data = _usable(months, [count, exposure])
    data = data[data[exposure] > 0]
    model = f"NegativeBinomial {count} ~ {MUNDLAK_FORMULA}, exposure {exposure}, team-clustered"
    if (failed := _too_few_teams(data, model)) is not None:
        return failed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.simplefilter("always", HessianInversionWarning)
        fit = smf.negativebinomial(f"{count} ~ {MUNDLAK_FORMULA}", data=data, exposure=data[exposure]).fit(
            cov_type="cluster", cov_kwds={"groups": pd.factorize(data["team"])[0]}, use_t=True, disp=0, maxiter=200
        )
    notes = []
    if not fit.mle_retvals.get("converged", True) or any(w.category is ConvergenceWarning for w in caught):
        notes.append("NegativeBinomial fit did not converge")
    if any(w.category is HessianInversionWarning for w in caught):
        # Typically the dispersion alpha sits at its boundary 0: the counts look Poisson.
        notes.append(f"NegativeBinomial dispersion near zero (alpha {fit.params['alpha']:.2g}): counts look Poisson")
    note = "; ".join(notes)
    return [_estimate(fit, term, data, model, note) for term in CONSTRUCTS]


def binomial_within_between(months: pd.DataFrame, successes: str, trials: str) -> list[Estimate]:
    """Binomial GLM (logit) of ``successes`` out of ``trials`` on within/between safety + log
    headcount, team-clustered errors. Coefficients are log odds ratios."""
    data = _usable(months, [successes, trials])
    data = data[data[trials] > 0].assign(failures=lambda d: d[trials] - d[successes])
    model = f"Binomial GLM [{successes}, {trials} - {successes}] ~ {MUNDLAK_FORMULA}, team-clustered"
    if (failed := _too_few_teams(data, model)) is not None:
        return failed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PerfectSeparationWarning)
        fit = smf.glm(f"{successes} + failures ~ {MUNDLAK_FORMULA}", data=data, family=sm.families.Binomial()).fit(
            cov_type="cluster", cov_kwds={"groups": pd.factorize(data["team"])[0]}, use_t=True
        )
    separated = any(issubclass(w.category, PerfectSeparationWarning) for w in caught)
    note = "perfect separation (too few events): the estimate is not identified" if separated else ""
    return [_estimate(fit, term, data, model, note) for term in CONSTRUCTS]


def disagreement(main: Estimate, check: Estimate) -> str:
    """A warning when the main model and its cross-check disagree beyond their uncertainty."""
    if main.model == check.model or not np.isfinite(main.estimate) or not np.isfinite(check.estimate):
        return ""
    half_width = max(main.ci_high - main.ci_low, check.ci_high - check.ci_low) / 2
    if abs(main.estimate - check.estimate) > half_width:
        return (f"the clustered-OLS cross-check ({check.estimate:+.3f}) differs from the main estimate "
                "by more than the interval's half-width")
    return ""


def results_table(rows: list[dict]) -> pd.DataFrame:
    """The tidy KPI x construct table. ``rows`` hold kpi, construct, role ('main' or
    'cross-check'), scale and an Estimate under 'estimate'. Benjamini-Hochberg q-values are
    taken over the main rows that report a p-value; with fewer than MIN_TEAMS_FOR_TESTS teams
    a row reports no p or q, only a description."""
    records = []
    for row in rows:
        e: Estimate = row["estimate"]
        record = {"kpi": row["kpi"], "construct": row["construct"], "role": row["role"], "scale": row["scale"],
                  "estimate": e.estimate, "ci_low": e.ci_low, "ci_high": e.ci_high, "p_value": e.p_value,
                  "n_obs": e.n_obs, "n_teams": e.n_teams, "n_periods": e.n_periods, "model": e.model,
                  "warnings": e.warnings}
        if e.n_teams < MIN_TEAMS_FOR_TESTS and np.isfinite(e.estimate):
            record["p_value"] = float("nan")
            record["warnings"] = "; ".join(w for w in (
                f"only {e.n_teams} teams: too few to test, the estimate describes these teams only", e.warnings) if w)
        records.append(record)
    table = pd.DataFrame(records)
    table["q_value"] = np.nan
    tested = (table["role"] == "main") & table["p_value"].notna()
    if tested.any():
        table.loc[tested, "q_value"] = multipletests(table.loc[tested, "p_value"], method="fdr_bh")[1]
    columns = ["kpi", "construct", "role", "scale", "estimate", "ci_low", "ci_high", "p_value", "q_value",
               "n_obs", "n_teams", "n_periods", "model", "warnings"]
    return table[columns]


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


def kpi_safety_effects(months: pd.DataFrame, incidents: pd.DataFrame) -> pd.DataFrame:
    """Every KPI x construct cell of the results table from team-months (team, period_month,
    safety_z = lagged safety in SDs, headcount, and the KPI columns of marts.mart_team_month)
    and incidents (team, period_month, safety_z, headcount, ttr_seconds, ttd_seconds: null
    where the onset is unknown). Models per METRICS.md; see results_table for the columns."""
    months = months.assign(
        log_ttr_median=np.log(months["ttr_median_seconds"].where(months["ttr_median_seconds"] > 0)),
        log_tta_median=np.log(months["tta_median_seconds"].where(months["tta_median_seconds"] > 0)),
        flagged_tickets=months["proactive_tickets"] + months["reactive_tickets"],
    )
    rows: list[dict] = []

    def add(kpi: str, scale: str, main: list[Estimate], checks: list[Estimate] | None = None) -> None:
        for term, estimate in zip(CONSTRUCTS, main):
            check = checks[list(CONSTRUCTS).index(term)] if checks else None
            note = disagreement(estimate, check) if check else ""
            if note:
                estimate = replace(estimate, warnings="; ".join(w for w in (note, estimate.warnings) if w))
            rows.append({"kpi": kpi, "construct": CONSTRUCTS[term], "role": "main", "scale": scale,
                         "estimate": estimate})
            if check and check.model != estimate.model:
                rows.append({"kpi": kpi, "construct": CONSTRUCTS[term], "role": "cross-check", "scale": scale,
                             "estimate": check})

    for kpi, outcome in (("log median TTR", "log_ttr_median"), ("log median TTA", "log_tta_median")):
        add(kpi, "log ratio per SD", mixed_within_between(months, outcome), clustered_ols_within_between(months, outcome))
    add("incidents per head", "log rate ratio per SD", negative_binomial_within_between(months, "incidents", "headcount"))
    add("proactive share", "log odds ratio per SD", binomial_within_between(months, "proactive_tickets", "flagged_tickets"))
    add("voluntary attrition", "log odds ratio per SD", binomial_within_between(months, "voluntary_leavers", "headcount"))
    add("critical-role voluntary attrition", "log odds ratio per SD",
        binomial_within_between(months, "critical_voluntary_leavers", "critical_headcount"))
    for label, column in (("TTR", "ttr_seconds"), ("TTD", "ttd_seconds")):
        if incidents[column].notna().any():
            rows.append({"kpi": f"log {label} (incident level)", "construct": "safety (total)", "role": "main",
                         "scale": "log ratio per SD", "estimate": log_duration_on_safety(incidents, column, label)})
    return results_table(rows)
