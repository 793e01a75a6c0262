"""Statistics behind the model assets, kept free of Dagster and DuckDB so they can be tested
on simulated data with known answers (docs/metrics.md, Models).

Every KPI of the registry (assets/models/kpis.py) is fitted by its family's model on the
shared design (assets/models/design.py). Each estimate carries:

- a 95% interval and p from a t distribution: Satterthwaite degrees of freedom for the mixed
  model's fixed effects (assets/models/random_intercept.py); for team-clustered errors the
  bias-reduced (CR2) sandwich with Bell-McCaffrey degrees of freedom (``cluster_covariance``);
- the smallest effect the fit could detect at 80% power (two-sided 5% test);
- a reliability-corrected estimate next to the plain one (measurement error of the team-wave
  survey means removed by the method of moments; see ``correct_for_measurement_error``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.tools.sm_exceptions import ConvergenceWarning, HessianInversionWarning, PerfectSeparationWarning

from assets.models.design import (
    SAFETY_MODEL,
    SAME_VALUE_TOLERANCE,
    Design,
    ScoreModel,
    design,
    does_not_vary,
    error_moments,
    model_rows,
)
from assets.models.kpis import KPIS, Family, Kpi
from assets.models.random_intercept import fixed_effect_covariance_and_df, reml_variances
from assets.models.survival import LogNormalAFT, fit_log_normal_aft

# Below this many clusters, cluster-robust standard errors are known to be too small. Every
# team-clustered interval and p-value uses the bias-reduced CR2 sandwich with Bell-McCaffrey
# degrees of freedom (``cluster_covariance``), which allows for it in large part.
MIN_TEAMS_FOR_CLUSTER_SE = 40
# Below this many teams no p-value is reported at all: the estimate is description only.
MIN_TEAMS_FOR_TESTS = 10
# Below this many teams nothing is fitted.
MIN_TEAMS_TO_FIT = 3
# Counts, binomials and times to event need this many events per coefficient besides the
# constant (Vittinghoff & McCulloch 2007: problems are uncommon from 5 events per variable).
MIN_EVENTS_PER_COEFFICIENT = 5
# A per-SD effect beyond this on a log scale (a 22,000-fold change) is an artefact of the fit.
MAX_LOG_EFFECT = 10.0
# A random-intercept variance below this share of the residual variance is treated as zero
# (statsmodels #10239: MixedLM then returns exact zeros for team-constant terms).
MIN_RANDOM_EFFECT_SHARE = 1e-6
# A NegativeBinomial dispersion below this is at its boundary 0: the counts look Poisson, and
# the NegativeBinomial fit neither converges nor has an invertible Hessian there.
NEGBIN_ALPHA_AT_BOUNDARY = 1e-4
# Counts keep the NegativeBinomial only when the likelihood-ratio test of overdispersion
# (alpha = 0 on the boundary: half a chi-square with 1 df) rejects Poisson at this level.
OVERDISPERSION_TEST_LEVEL = 0.05
# A q below this reads as unlikely to be chance (Benjamini-Hochberg false discovery rate).
FALSE_DISCOVERY_RATE = 0.05
# Tests are two-sided at 5%; the detectable effect is the one found with this probability.
TEST_LEVEL = 0.05
POWER = 0.80

RESULT_COLUMNS = (
    "kpi", "construct", "role", "scale", "estimate", "ci_low", "ci_high", "p_value", "q_value", "df",
    "estimate_corrected", "ci_low_corrected", "ci_high_corrected", "reliability", "within_team_sd",
    "min_detectable_effect", "n_obs", "n_events", "n_teams", "n_periods", "model", "warnings",
)
NAN = float("nan")


@dataclass(frozen=True)
class Estimate:
    """One term of one fit. ``df`` is the t distribution's degrees of freedom behind the
    interval and p; ``reliability`` how much of this part of measured safety's variation (given
    the other terms) is true team differences; ``*_corrected`` the estimate per SD of true
    (error-free) team safety; ``min_detectable_effect`` the size (on the estimate's scale, either
    sign) a two-sided 5% test would find with 80% power given the estimate's standard error;
    ``within_team_sd`` for a score's within-team part, how far a team's rows typically lie from
    its own average (the SD of that part over the fitted rows, in the estimate's unit: SDs of the
    published team-wave means), so a reader can tell one unit from a typical quarter's swing."""

    term: str
    estimate: float
    ci_low: float
    ci_high: float
    p_value: float
    df: float
    n_obs: int
    n_events: float
    n_teams: int
    n_periods: int
    model: str
    warnings: str
    estimate_corrected: float = NAN
    ci_low_corrected: float = NAN
    ci_high_corrected: float = NAN
    reliability: float = NAN
    within_team_sd: float = NAN
    min_detectable_effect: float = NAN


@dataclass(frozen=True)
class Fitted:
    """What a model fit hands on: coefficients, their covariance and each one's t df."""

    params: pd.Series
    cov: pd.DataFrame
    df: pd.Series
    model: str
    notes: tuple[str, ...] = ()
    clustered: bool = True


def join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def few_teams_warning(n_teams: int, clustered: bool = True) -> str:
    """What a row resting on fewer than MIN_TEAMS_FOR_CLUSTER_SE teams must say: team-clustered
    errors are unreliable there; a mixed model's Satterthwaite t allows for few teams, but only
    as far as its model holds."""
    if n_teams >= MIN_TEAMS_FOR_CLUSTER_SE:
        return ""
    if clustered:
        return (f"only {n_teams} teams: team-clustered standard errors are unreliable below "
                f"{MIN_TEAMS_FOR_CLUSTER_SE} teams, so treat the interval as optimistic")
    return (f"only {n_teams} teams: the Satterthwaite t allows for few teams when the random-intercept model "
            f"holds, but its clustered-OLS cross-check is unreliable below {MIN_TEAMS_FOR_CLUSTER_SE} teams")


def correlation_warning(n_teams: int) -> str:
    """What a row of the correlation table resting on ``n_teams`` teams must say. Its interval
    comes from resampling teams (no clustered errors): none below MIN_TEAMS_FOR_TESTS, the
    models' rule for testing at all; below MIN_TEAMS_FOR_CLUSTER_SE it runs narrow, as clustered
    intervals do."""
    if n_teams == 0:
        return "no team has both a safety score and this KPI yet: no correlation"
    if n_teams < MIN_TEAMS_TO_FIT:
        return (f"only {n_teams} teams have both a safety score and this KPI: too few to estimate a correlation "
                f"(fewer than {MIN_TEAMS_TO_FIT})")
    if n_teams < MIN_TEAMS_FOR_TESTS:
        return (f"only {n_teams} teams: too few to test (fewer than {MIN_TEAMS_FOR_TESTS}): no interval, r describes "
                "these teams only")
    if n_teams < MIN_TEAMS_FOR_CLUSTER_SE:
        return (f"only {n_teams} teams: an interval from resampling {n_teams} teams runs narrower than the truth "
                f"below {MIN_TEAMS_FOR_CLUSTER_SE} teams, so treat it as optimistic")
    return ""


def few_teams_warnings(n_teams: int) -> set[str]:
    """The few-teams warnings a row can carry (the report says them in its own words)."""
    return {few_teams_warning(n_teams, clustered) for clustered in (True, False)} - {""}


def standardise(values: pd.Series, reference: pd.Series) -> pd.Series:
    """Express ``values`` in standard deviations of ``reference`` (e.g. all team-wave means)."""
    return (values - reference.mean()) / reference.std(ddof=1)


def t_inference(estimate: float, se: float, df: float) -> tuple[float, float, float, float]:
    """(ci_low, ci_high, p, min_detectable_effect) from a t with ``df`` degrees of freedom."""
    if not (np.isfinite(se) and se > 0 and df > 0):
        return NAN, NAN, NAN, NAN
    critical = stats.t.ppf(1 - TEST_LEVEL / 2, df)
    p = 2 * stats.t.sf(abs(estimate / se), df)
    detectable = (critical + stats.t.ppf(POWER, df)) * se
    return estimate - critical * se, estimate + critical * se, float(p), float(detectable)


def correct_for_measurement_error(
    design_: Design, params: pd.Series, cov: pd.DataFrame
) -> tuple[pd.Series, pd.DataFrame, pd.Series]:
    """(corrected params, their covariance, each safety term's reliability).

    Measured safety = true + error with known error sums of squares S (``error_moments``).
    With X'X the observed cross-products, the true ones are X'X - S, so the coefficients on
    true safety are K beta with K = (X'X - S)^-1 X'X (the method-of-moments correction of
    Fuller 1987; for the GLMs and the survival model the regression-calibration approximation
    of Rosner, Spiegelman & Willett 1990), with covariance K Cov K'. A term's reliability is
    1 - S_kk / (its sum of squares unexplained by the other columns). The corrected values are
    NaN when the error exceeds a term's variation (reliability <= 0)."""
    X = design_.X.to_numpy(dtype=float)
    moments = error_moments(design_)
    S = np.zeros((X.shape[1], X.shape[1]))
    for term, moment in moments.items():
        i = design_.X.columns.get_loc(term)
        S[i, i] = moment
    xtx = X.T @ X
    unexplained = 1 / np.diag(np.linalg.inv(xtx))
    reliability = pd.Series(1 - np.diag(S) / unexplained, index=design_.X.columns)[list(moments.index)]
    if (reliability <= 0).any():
        nan = pd.Series(np.nan, index=params.index)
        return nan, pd.DataFrame(np.nan, index=cov.index, columns=cov.columns), reliability
    K = np.linalg.solve(xtx - S, xtx)
    names = design_.X.columns
    corrected = pd.Series(K @ params[names].to_numpy(), index=names)
    corrected_cov = pd.DataFrame(K @ cov.loc[names, names].to_numpy() @ K.T, index=names, columns=names)
    return corrected, corrected_cov, reliability


def _unidentified(estimate: float, low: float, high: float) -> str:
    """Why the fit cannot pin a term down, or "": an estimate beyond any plausible size (more
    than MAX_LOG_EFFECT per SD on the log scale: a e^10, 22,000-fold, change), the sign of a
    near-singular design."""
    if np.nanmax([abs(estimate), abs(low), abs(high)]) > MAX_LOG_EFFECT:
        return (f"not estimable: the fit gives {estimate:.3g} (95% CI {low:.3g} to {high:.3g}) per SD, "
                "far beyond any plausible effect, so the data cannot pin this term down")
    return ""


def no_estimates(design_: Design, model: str, reason: str, n_events: float = NAN) -> list[Estimate]:
    """Rows that report ``reason`` instead of a number, one per reported term of the design."""
    return [Estimate(term, NAN, NAN, NAN, NAN, NAN, len(design_.data), n_events, design_.n_teams, design_.n_periods,
                     model, reason) for term in design_.reported]


NOT_CORRECTED = ("no reliability-corrected estimate: the correction for survey measurement error does not extend "
                 "to the product of two scores")


def _true_sd(design_: Design, term: str, reference_reliability: float | Mapping[str, float]) -> float:
    """The SD of true team-wave scores in SDs of the published means of ``term``'s score
    (the square root of their reliability); NaN for a product of scores."""
    score = next((s for s in design_.model.scores if term in s.constructs), None)
    if score is None:
        return NAN
    reliability = (reference_reliability if isinstance(reference_reliability, (int, float))
                   else reference_reliability.get(score.prefix, 1.0))
    return float(np.sqrt(reliability))


def estimates(design_: Design, fitted: Fitted, reference_reliability: float | Mapping[str, float],
              n_events: float = NAN) -> list[Estimate]:
    """One Estimate per reported term of a fit, with its corrected twin (per SD of the true
    score: ``reference_reliability`` is the published means' reliability, one number for a
    model of safety alone or one per score prefix) and detectable effect."""
    few = few_teams_warning(design_.n_teams, fitted.clustered)
    corrected, corrected_cov, reliability = correct_for_measurement_error(design_, fitted.params, fitted.cov)
    rows = []
    for term in design_.reported:
        common = dict(term=term, n_obs=len(design_.data), n_events=n_events, n_teams=design_.n_teams,
                      n_periods=design_.n_periods, model=fitted.model)
        if term in design_.unidentified:
            why = (f"not estimable: with {design_.n_teams} teams this term adds nothing beyond the model's other "
                   "terms" if term in design_.collinear else "not estimable: this part of safety does not vary in the "
                   "data")
            rows.append(Estimate(estimate=NAN, ci_low=NAN, ci_high=NAN, p_value=NAN, df=NAN, **common,
                                 warnings=join(why, *fitted.notes)))
            continue
        if term in design_.team_level and design_.between_df <= 0:
            # The team means are fitted exactly: nothing is left to measure this term's uncertainty.
            rows.append(Estimate(estimate=NAN, ci_low=NAN, ci_high=NAN, p_value=NAN, df=0.0, **common, warnings=join(
                f"not estimable: {design_.n_teams} teams for {design_.team_level_rank} team-level coefficients "
                "leave no degrees of freedom between teams, so this term has no interval", *fitted.notes)))
            continue
        estimate, df = float(fitted.params[term]), float(fitted.df[term])
        se = float(np.sqrt(fitted.cov.loc[term, term]))
        if np.isfinite(se) and se <= SAME_VALUE_TOLERANCE * max(abs(estimate), 1.0):
            # A clustered covariance has rank below the teams: with more coefficients than a few
            # teams can measure, a term's standard error can be 0, an interval of no width.
            rows.append(Estimate(estimate=NAN, ci_low=NAN, ci_high=NAN, p_value=NAN, df=df, **common, warnings=join(
                f"not estimable: with {design_.n_teams} teams the fit leaves this term a standard error of 0 (more "
                "coefficients than the teams can measure), so it has no interval", *fitted.notes)))
            continue
        low, high, p, detectable = t_inference(estimate, se, df)
        notes = list(fitted.notes)
        if not np.isfinite(low):
            notes.append("no standard error: the fit's Hessian is singular")
        unidentified = _unidentified(estimate, low, high)
        if unidentified:
            # A number here would be an artefact of the design, not a finding: report none.
            rows.append(Estimate(estimate=NAN, ci_low=NAN, ci_high=NAN, p_value=NAN, df=df, **common,
                                 warnings=join(*notes, unidentified)))
            continue
        true_sd = _true_sd(design_, term, reference_reliability)
        c_estimate = float(corrected[term]) * true_sd
        c_low, c_high, *_ = t_inference(c_estimate, float(np.sqrt(corrected_cov.loc[term, term])) * true_sd, df)
        if term not in reliability:
            notes.append(NOT_CORRECTED)
        elif not np.isfinite(c_estimate):
            # The correction needs every score column's error below its variation: name the worst.
            worst = reliability.idxmin()
            where = "this part of the score" if worst == term else design_.model.constructs()[worst]
            notes.append(f"no reliability-corrected estimate: measurement error exceeds the variation of {where} "
                         f"(reliability {reliability[worst]:.2f})")
        rows.append(Estimate(estimate=estimate, ci_low=low, ci_high=high, p_value=p, df=df, **common,
                             warnings=join(*notes, few if np.isfinite(low) else ""), estimate_corrected=c_estimate, ci_low_corrected=c_low,
                             ci_high_corrected=c_high, reliability=float(reliability.get(term, NAN)),
                             within_team_sd=within_team_sd(design_, term), min_detectable_effect=detectable))
    return rows


def within_team_sd(design_: Design, term: str) -> float:
    """How far a team's fitted rows typically lie from its own average on a score's within-team
    part ``term`` (its SD over the rows, in SDs of the published team-wave means); NaN for any
    other term (between teams, total, a product of scores)."""
    if term not in {score.within for score in design_.model.scores}:
        return NAN
    return float(design_.data[term].std(ddof=1))


def _linear_predictor_parts(result) -> tuple[np.ndarray, np.ndarray]:
    """(w, u) per row of a clustered fit: its information and its score with respect to the
    row's linear predictor, so that the coefficients' score is x u and the fit is, locally, the
    least squares of u / sqrt(w) on sqrt(w) x (the working linear model of ``cluster_covariance``)."""
    model, params = result.model, np.asarray(result.params, dtype=float)
    endog = np.asarray(model.endog, dtype=float)
    if isinstance(model, sm.OLS):
        return np.ones(len(endog)), np.asarray(result.resid, dtype=float)
    if isinstance(model, sm.GLM) and isinstance(model.family, sm.families.Binomial):
        n, mu = np.asarray(model.n_trials, dtype=float), np.asarray(result.fittedvalues, dtype=float)
        return n * mu * (1 - mu), n * (endog - mu)  # endog is the share of the trials
    if isinstance(model, sm.GLM) and isinstance(model.family, sm.families.Poisson):
        mu = np.asarray(result.fittedvalues, dtype=float)
        return mu, endog - mu
    if isinstance(model, sm.NegativeBinomial):  # NB2: variance mu (1 + alpha mu)
        alpha, mu = params[-1], np.asarray(result.predict(), dtype=float)
        return mu / (1 + alpha * mu), (endog - mu) / (1 + alpha * mu)
    if isinstance(model, LogNormalAFT):  # the observed information of the censored normal
        sigma = np.exp(params[-1])
        z = (endog - np.asarray(model.exog, dtype=float) @ params[:-1]) / sigma
        mills = np.exp(stats.norm.logpdf(z) - stats.norm.logsf(z))
        return (np.where(model.resolved, 1.0, mills * (mills - z)) / sigma**2,
                np.where(model.resolved, z, mills) / sigma)
    raise TypeError(f"no team-clustered variance for {type(model).__name__}")


def cluster_covariance(result, X: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(covariance, t degrees of freedom) of the coefficients of ``X`` (a fit's first
    parameters), clustered by ``groups``: the bias-reduced sandwich CR2 of Bell & McCaffrey
    (2002) with their Satterthwaite degrees of freedom (as Imbens & Kolesar 2016 and
    Pustejovsky & Tipton 2018, R clubSandwich, recommend for few clusters).

    The plain sandwich (CR1, statsmodels' cluster) runs small with 30 teams, most for terms
    that vary between teams only, whose information comes from a few influential teams; with t
    on teams - 1 df a true null then comes out below p 0.05 more often than 5% of the time and
    below 0.001 several times as often as 0.1% (ten times for between-team terms: docs/metrics.md).
    CR2 scales each team's working residuals by (I - H_gg)^-1/2, H_gg the team's block of the
    hat matrix of the working linear model sqrt(w) X (w, u from
    ``_linear_predictor_parts``; for OLS plain residuals), which makes the sandwich unbiased
    when that model's errors are independent with equal variance; each coefficient's df is the
    Satterthwaite df of its CR2 variance under the same model (often far below teams - 1 for a
    between-team term). The bread is the fit's own (the inverse Hessian over all its parameters,
    so a NegativeBinomial's alpha or the AFT's log sigma are allowed for); their scores are
    summed per team unscaled. NaN when the bread is not finite (a singular Hessian)."""
    X, k = np.asarray(X, dtype=float), X.shape[1]
    bread = np.asarray(result.normalized_cov_params, dtype=float)
    if not np.all(np.isfinite(bread)):
        return np.full((k, k), np.nan), np.full(k, np.nan)
    w, u = _linear_predictor_parts(result)
    params = np.asarray(result.params)
    extra = (np.asarray(result.model.score_obs(params), dtype=float)[:, k:] if len(params) > k
             else np.empty((len(u), 0)))
    root_w = np.sqrt(w)
    xw, uw = X * root_w[:, None], u / root_w
    working_inverse = np.linalg.pinv(xw.T @ xw)
    values, vectors = np.linalg.eigh(working_inverse)
    working_inverse_root = (vectors * np.sqrt(np.maximum(values, 0))) @ vectors.T
    team_scores, v_squares, w_blocks = [], [], []
    for rows in pd.Series(np.arange(len(u))).groupby(np.asarray(groups)).indices.values():
        xg = xw[rows]
        # H_gg = xg working_inverse xg' = U diag(lam) U' (rank <= k), so (I - H_gg)^-1/2 acts as
        # I + U diag((1 - lam)^-1/2 - 1) U': O(n_g k^2) rather than O(n_g^3) for a team's incidents.
        # A leverage of 1 (a team that alone decides a coefficient) leaves a residual of 0 there.
        xb = xg @ working_inverse_root
        lam, q = np.linalg.eigh(xb.T @ xb)
        keep = lam > 1e-10 * max(float(lam.max()), 1.0)
        lam, U = lam[keep], xb @ q[:, keep] / np.sqrt(lam[keep])
        scale = np.where(lam < 1 - 1e-10, 1 / np.sqrt(np.clip(1 - lam, 1e-10, None)), 0.0) - 1

        def adjusted(m: np.ndarray, U: np.ndarray = U, scale: np.ndarray = scale) -> np.ndarray:
            return m + U @ (scale[:, None] * (U.T @ m))

        team_scores.append(np.r_[xg.T @ adjusted(uw[rows, None])[:, 0], extra[rows].sum(axis=0)])
        v = adjusted(xg @ working_inverse)  # column j: (I - H_gg)^-1/2 xg working_inverse e_j
        v_squares.append((v**2).sum(axis=0))
        w_blocks.append(xg.T @ v)
    scores = np.array(team_scores)
    cov = bread @ (scores.T @ scores) @ bread
    # Bell-McCaffrey df of coefficient j: (sum lambda)^2 / sum lambda^2 over the eigenvalues of
    # the teams' Gram matrix G_g' G_h = [g = h] v_g'v_g - w_g' working_inverse w_h, w_g = xg' v_g.
    v_squares, w_blocks = np.array(v_squares), np.array(w_blocks)
    df = np.empty(k)
    for j in range(k):
        wj = w_blocks[:, :, j]
        lam = np.linalg.eigvalsh(np.diag(v_squares[:, j]) - wj @ working_inverse @ wj.T)
        df[j] = lam.sum() ** 2 / (lam**2).sum() if (lam**2).sum() > 0 else np.nan
    return cov[:k, :k], df


def _clustered(result, design_: Design, model: str, notes: tuple[str, ...] = ()) -> Fitted:
    """A statsmodels fit with team-clustered errors: the CR2 sandwich with Bell-McCaffrey t df
    (``cluster_covariance``), never more than teams - 1."""
    names = list(design_.X.columns)
    params = pd.Series(np.asarray(result.params)[: len(names)], index=names)
    covariance, df = cluster_covariance(result, design_.X.to_numpy(dtype=float), design_.groups)
    df = np.where(np.isfinite(df), np.minimum(df, design_.n_teams - 1), design_.n_teams - 1)
    cov = pd.DataFrame(covariance, index=names, columns=names)
    return Fitted(params, cov, pd.Series(df, index=names), model, notes)


def _cluster_kwargs(design_: Design) -> dict:
    # statsmodels' own CR1 is not what the table reports (``_clustered`` replaces it with CR2), but
    # the NegativeBinomial's checks read the fit's bse, and a singular Hessian shows there as NaN.
    return {"cov_type": "cluster", "cov_kwds": {"groups": design_.groups}, "use_t": True}


def clustered_ols(design_: Design, outcome: pd.Series, label: str) -> Fitted:
    fit = sm.OLS(outcome.to_numpy(dtype=float), design_.X).fit(**_cluster_kwargs(design_))
    return _clustered(fit, design_, f"OLS {design_.formula(label)}, team-clustered")


def mixed(design_: Design, outcome: pd.Series, label: str) -> Fitted | str:
    """MixedLM (REML, team random intercept) with Satterthwaite t, or why it cannot be used.
    A team variance at its boundary 0 is found first from the profiled REML criterion
    (``reml_variances``), without a fit: statsmodels' gradient optimisers stall there (seconds
    per fit on a large organisation) before they give up. Where they stall anyway, Powell's
    derivative-free search is tried next, so a variance that is really zero is reported as
    such rather than as a failure to converge."""
    y = outcome.to_numpy(dtype=float)
    variances = reml_variances(design_.X, y, design_.groups)
    if variances is not None and variances.tau2 < MIN_RANDOM_EFFECT_SHARE * variances.sigma2:
        return _team_variance_near_zero(variances.tau2)
    model = sm.MixedLM(y, design_.X, groups=design_.groups)
    for method in ("bfgs", "powell"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            try:
                fit = model.fit(reml=True, method=method)
            except (np.linalg.LinAlgError, ValueError) as error:
                return f"MixedLM could not be fitted ({error})"
        # "Retrying with another optimiser" and "on the boundary" are not failures; these are.
        failed = list(dict.fromkeys(str(w.message) for w in caught
                                    if issubclass(w.category, ConvergenceWarning) and "failed" in str(w.message)))
        if fit.converged and not failed:
            break
    team_variance = float(np.asarray(fit.cov_re)[0, 0])
    if team_variance < MIN_RANDOM_EFFECT_SHARE * float(fit.scale):
        return _team_variance_near_zero(team_variance)
    if not fit.converged or failed:
        return f"MixedLM did not converge ({'; '.join(failed) or 'the optimisers gave up'})"
    params = fit.fe_params
    if (params[design_.terms] == 0).any():
        return "MixedLM returned exact zeros for team-constant terms (statsmodels #10239)"
    cov, df = fixed_effect_covariance_and_df(design_.X, design_.groups, float(fit.scale), team_variance)
    if not np.all(np.isfinite(np.diag(cov))) or not np.all(np.isfinite(df)):
        return "MixedLM gave no finite standard errors"
    model = f"MixedLM {design_.formula(label)} + (1 | team), REML, Satterthwaite t"
    return Fitted(pd.Series(params.to_numpy(), index=design_.X.columns), cov, df, model, clustered=False)


def _team_variance_near_zero(team_variance: float) -> str:
    return (f"MixedLM team variance {team_variance:.2g} is near zero (below {MIN_RANDOM_EFFECT_SHARE:g} of the "
            "residual variance), where its team-constant terms are unreliable (statsmodels #10239)")


def too_few_teams(design_: Design, model: str) -> list[Estimate] | None:
    """Rows saying why nothing can be fitted (no rows, too few teams, no more rows than
    coefficients), or None."""
    if len(design_.data) == 0:
        return no_estimates(design_, model, "no data: no row has both this KPI and a safety score")
    if design_.n_teams < MIN_TEAMS_TO_FIT:
        return no_estimates(design_, model, f"only {design_.n_teams} teams: too few to estimate")
    if len(design_.data) <= design_.X.shape[1]:
        return no_estimates(design_, model, f"not estimable: {len(design_.data)} rows for {design_.X.shape[1]} "
                                            "coefficients leave no residual degrees of freedom")
    return None


def outcome_does_not_vary(design_: Design, values, label: str, model: str, n_events: float = NAN) -> list[Estimate] | None:
    """Rows saying the KPI does not vary (a fit would read floating-point noise as an effect), or None."""
    values = np.asarray(values, dtype=float)
    if not does_not_vary(values):
        return None
    grain = "team-month" if design_.split else "incident"
    return no_estimates(design_, model, f"not estimable: {label} does not vary (it is {values[0]:.6g} in every "
                                        f"{grain} the model reads), so nothing can relate it to safety", n_events)


# What a statsmodels fit raises on a design it cannot handle (a singular Hessian, a division by
# zero residual degrees of freedom): the row says so instead of failing the run. Caught around
# the fits only, so an error of the project's own code still fails the run.
FIT_ERRORS = (np.linalg.LinAlgError, ValueError, ZeroDivisionError)


def fit_failed(design_: Design, model: str, error: Exception, n_events: float = NAN) -> list[Estimate]:
    return no_estimates(design_, model, f"not estimable: the fit failed on this data ({type(error).__name__}: "
                                        f"{error})", n_events)


def too_few_events(design_: Design, events: float, what: str) -> str:
    needed = MIN_EVENTS_PER_COEFFICIENT * design_.n_coefficients
    if events >= needed:
        return ""
    return (f"too few events: {events:,.0f} {what} for {design_.n_coefficients} coefficients, where the "
            f"minimum-events rule asks for at least {MIN_EVENTS_PER_COEFFICIENT} per coefficient ({needed:,})")


def team_month_gaussian(months: pd.DataFrame, outcome: str, label: str, reference_reliability: float = 1.0,
                        model: ScoreModel = SAFETY_MODEL) -> tuple[list[Estimate], list[Estimate]]:
    """(main, cross-check) within/between estimates of a continuous team-month ``outcome``:
    MixedLM with Satterthwaite t as the main model, team-clustered OLS as its cross-check.
    When the mixed model cannot be used (team variance near zero, no convergence, failure) the
    clustered OLS is the main row and the warning says why."""
    design_ = design(model_rows(months, [outcome], model), split=True, model=model)
    if (failed := too_few_teams(design_, f"MixedLM {label}")) is not None:
        return failed, failed
    y = design_.data[outcome]
    if (constant := outcome_does_not_vary(design_, y, label, f"MixedLM {label}")) is not None:
        return constant, constant
    try:
        ols = clustered_ols(design_, y, label)
    except FIT_ERRORS as error:
        failed = fit_failed(design_, f"OLS {design_.formula(label)}, team-clustered", error)
        return failed, failed
    check = estimates(design_, ols, reference_reliability)
    fitted = mixed(design_, y, label)
    if isinstance(fitted, str):
        fallback = f"{fitted}: reporting the team-clustered OLS instead"
        return [replace(e, warnings=join(fallback, e.warnings)) for e in check], check
    return estimates(design_, fitted, reference_reliability), check


def team_month_count(months: pd.DataFrame, kpi: Kpi, reference_reliability: float = 1.0,
                     model: ScoreModel = SAFETY_MODEL) -> list[Estimate]:
    """Discrete NegativeBinomial (alpha estimated) of the count with log(exposure) as offset,
    team-clustered, when the counts are overdispersed: the likelihood-ratio test of alpha = 0
    (on its boundary, so half a chi-square with 1 df) rejects Poisson at 5%. Otherwise (no
    overdispersion, alpha at its boundary where the NegativeBinomial neither converges nor gives
    the same answer twice, or a failed fit) Poisson with team-clustered errors, valid under any
    overdispersion, and the warning says why. Coefficients are log rate ratios."""
    data = model_rows(months, [kpi.outcome, *kpi.denominator], model)
    exposure = data[list(kpi.denominator)].sum(axis=1)
    design_ = design(data[exposure > 0].reset_index(drop=True), split=True, model=model)
    label = f"{kpi.outcome}, exposure {' + '.join(kpi.denominator)}"
    if (failed := too_few_teams(design_, f"NegativeBinomial {label}")) is not None:
        return failed
    y = design_.data[kpi.outcome].to_numpy(dtype=float)
    exposure = design_.data[list(kpi.denominator)].sum(axis=1).to_numpy(dtype=float)
    events = float(y.sum())
    if reason := too_few_events(design_, events, kpi.outcome):
        return no_estimates(design_, f"NegativeBinomial {design_.formula(label)}", reason, events)
    try:
        poisson = sm.GLM(y, design_.X, family=sm.families.Poisson(), exposure=exposure).fit(
            **_cluster_kwargs(design_))
    except FIT_ERRORS as error:
        return fit_failed(design_, f"Poisson GLM {design_.formula(label)}, team-clustered", error, events)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        warnings.simplefilter("always", HessianInversionWarning)
        try:
            negbin = sm.NegativeBinomial(y, design_.X, exposure=exposure).fit(
                start_params=np.r_[np.asarray(poisson.params), 0.1], disp=0, maxiter=200, **_cluster_kwargs(design_))
        except FIT_ERRORS as error:
            negbin = error
    if isinstance(negbin, Exception):
        model = f"Poisson GLM {design_.formula(label)}, team-clustered"
        reason = (f"NegativeBinomial fit failed ({type(negbin).__name__}: {negbin}): Poisson with team-clustered "
                  "errors (valid under any overdispersion) reported instead")
        return estimates(design_, _clustered(poisson, design_, model, (reason,)), reference_reliability, events)
    alpha = float(np.asarray(negbin.params)[-1])
    converged = negbin.mle_retvals.get("converged", True) and not any(
        issubclass(w.category, ConvergenceWarning) for w in caught)
    singular = any(issubclass(w.category, HessianInversionWarning) for w in caught) or not np.all(
        np.isfinite(np.asarray(negbin.bse)))
    instead = "Poisson with team-clustered errors (valid under any overdispersion) reported instead"
    if alpha < NEGBIN_ALPHA_AT_BOUNDARY:
        reason = f"NegativeBinomial dispersion alpha {alpha:.2g} is at its boundary 0 (counts look Poisson): {instead}"
    elif not converged or singular:
        reason = f"NegativeBinomial {'fit did not converge' if not converged else 'Hessian is singular'}: {instead}"
    else:
        statistic = max(2 * (negbin.llf - poisson.llf), 0.0)
        p_overdispersion = 0.5 * stats.chi2.sf(statistic, 1)
        if p_overdispersion < OVERDISPERSION_TEST_LEVEL:
            model = f"NegativeBinomial {design_.formula(label)}, alpha {alpha:.2g}, team-clustered"
            return estimates(design_, _clustered(negbin, design_, model), reference_reliability, events)
        reason = (f"no overdispersion beyond Poisson (NegativeBinomial alpha {alpha:.2g}, likelihood-ratio "
                  f"p = {p_overdispersion:.2f}): {instead}")
    model = f"Poisson GLM {design_.formula(label)}, team-clustered"
    return estimates(design_, _clustered(poisson, design_, model, (reason,)), reference_reliability, events)


def team_month_binomial(months: pd.DataFrame, kpi: Kpi, reference_reliability: float = 1.0,
                        model: ScoreModel = SAFETY_MODEL) -> list[Estimate]:
    """Binomial GLM (logit) of successes out of trials (the denominator columns summed),
    team-clustered. Coefficients are log odds ratios."""
    data = model_rows(months, [kpi.outcome, *kpi.denominator], model)
    # Never fewer trials than successes: a hire who left within the month is a leaver the
    # opening headcount does not hold, so where leavers outnumber it they are the number at risk.
    data = data.assign(trials=np.maximum(data[list(kpi.denominator)].sum(axis=1), data[kpi.outcome]))
    design_ = design(data[data["trials"] > 0].reset_index(drop=True), split=True, model=model)
    successes = design_.data[kpi.outcome].to_numpy(dtype=float)
    trials = design_.data["trials"].to_numpy(dtype=float)
    failures = trials - successes
    label = f"[{kpi.outcome}, {' + '.join(kpi.denominator)} - {kpi.outcome}]"
    model = f"Binomial GLM {design_.formula(label)}, team-clustered"
    raised = int((trials > design_.data[list(kpi.denominator)].sum(axis=1).to_numpy(dtype=float)).sum())
    if (failed := too_few_teams(design_, model)) is not None:
        return failed
    events = float(min(successes.sum(), failures.sum()))
    if reason := too_few_events(design_, events, f"{kpi.outcome} (the rarer outcome)"):
        return no_estimates(design_, model, reason, events)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PerfectSeparationWarning)
        try:
            fit = sm.GLM(np.column_stack([successes, failures]), design_.X, family=sm.families.Binomial()).fit(
                **_cluster_kwargs(design_))
        except FIT_ERRORS as error:
            return fit_failed(design_, model, error, events)
    separated = any(issubclass(w.category, PerfectSeparationWarning) for w in caught)
    notes = ("perfect separation (too few events): the estimate is not identified",) if separated else ()
    if raised:
        notes += (f"{raised} team-months had more {kpi.outcome} than {' + '.join(kpi.denominator)} (hires who left "
                  f"within the month): their number at risk is their {kpi.outcome}",)
    return estimates(design_, _clustered(fit, design_, model, notes), reference_reliability, events)


def incident_time_to_event(incidents: pd.DataFrame, kpi: Kpi, reference_reliability: float = 1.0,
                           model: ScoreModel = SAFETY_MODEL) -> list[Estimate]:
    """Log-normal AFT of the time to the event (``kpi.outcome``; incidents still open count as
    censored after ``kpi.censoring`` seconds) on total safety, log headcount and quarter fixed
    effects, team-clustered. Coefficients are log time ratios."""
    frame = incidents.assign(duration=incidents[kpi.outcome].fillna(incidents[kpi.censoring]),
                             resolved=incidents[kpi.outcome].notna())
    data = model_rows(frame, ["duration", "resolved"], model)
    design_ = design(data[data["duration"] > 0].reset_index(drop=True), split=False, model=model)
    resolved = design_.data["resolved"].astype(bool)
    label = f"log({kpi.outcome})"
    model = (f"Log-normal AFT {design_.formula(label)}, {int((~resolved).sum()):,} of {len(resolved):,} "
             "incidents still open, censored at the data's cut-off, team-clustered")
    if (failed := too_few_teams(design_, model)) is not None:
        return failed
    events = float(resolved.sum())
    if reason := too_few_events(design_, events, "resolved incidents"):
        return no_estimates(design_, model, reason, events)
    durations = design_.data["duration"]
    if (constant := outcome_does_not_vary(design_, np.log(durations[resolved]), f"log({kpi.outcome})", model,
                                          events)) is not None:
        return constant
    try:
        fit = fit_log_normal_aft(np.log(durations), resolved, design_.X, design_.groups)
    except FIT_ERRORS as error:
        return fit_failed(design_, model, error, events)
    notes = () if fit.mle_retvals.get("converged", True) else ("the AFT fit did not converge",)
    return estimates(design_, _clustered(fit, design_, model, notes), reference_reliability, events)


def incident_log_time(incidents: pd.DataFrame, kpi: Kpi, reference_reliability: float = 1.0,
                      model: ScoreModel = SAFETY_MODEL) -> list[Estimate]:
    """Incident-level OLS of log(``kpi.outcome``) on total safety, log headcount and quarter
    fixed effects, team-clustered (times that are never censored, such as time to detect)."""
    data = model_rows(incidents, [kpi.outcome], model)
    design_ = design(data[data[kpi.outcome] > 0].reset_index(drop=True), split=False, model=model)
    label = f"log({kpi.outcome})"
    if (failed := too_few_teams(design_, f"OLS {label}")) is not None:
        return failed
    y = np.log(design_.data[kpi.outcome])
    if (constant := outcome_does_not_vary(design_, y, label, f"OLS {label}")) is not None:
        return constant
    try:
        ols = clustered_ols(design_, y, label)
    except FIT_ERRORS as error:
        return fit_failed(design_, f"OLS {design_.formula(label)}, team-clustered", error)
    return estimates(design_, ols, reference_reliability)


def disagreement(main: Estimate, check: Estimate) -> str:
    """A warning when the main model and its cross-check disagree beyond their uncertainty."""
    if main.model == check.model or not np.isfinite(main.estimate) or not np.isfinite(check.estimate):
        return ""
    half_width = max(main.ci_high - main.ci_low, check.ci_high - check.ci_low) / 2
    if abs(main.estimate - check.estimate) > half_width:
        return (f"the clustered-OLS cross-check ({check.estimate:+.3f}) differs from the main estimate "
                "by more than the interval's half-width")
    return ""


def zero_times_left_out(zeros: int, kpi: Kpi) -> str:
    """What a log-time KPI's rows must say when ``zeros`` of its times are 0 (an onset in the
    trigger's own second, a review done the moment its incident resolved): a log has no value
    there, so the fit leaves them out, while the mart's medians and counts keep them."""
    grain = "incidents" if kpi.family.grain == "incident" else "team-months"
    return f"{zeros} {grain} with a {kpi.outcome} of 0 left out (a log time needs a time above 0)" if zeros else ""


def kpi_rows(kpi: Kpi, months: pd.DataFrame, incidents: pd.DataFrame,
             reference_reliability: float | Mapping[str, float] = 1.0, model: ScoreModel = SAFETY_MODEL) -> list[dict]:
    """The results-table rows of one KPI under one score model: a main row per reported
    construct, and the cross-check rows of a mixed model next to it."""
    constructs = model.constructs()
    left_out = ""
    if kpi.family in (Family.TEAM_MONTH_LOG_TIME, Family.INCIDENT_LOG_TIME):
        fitted = model_rows(incidents if kpi.family.grain == "incident" else months, [kpi.outcome], model)
        left_out = zero_times_left_out(int((fitted[kpi.outcome] == 0).sum()), kpi)

    def row(estimate: Estimate, role: str) -> dict:
        return {"kpi": kpi.name, "construct": constructs[estimate.term], "role": role, "scale": kpi.scale,
                "estimate": replace(estimate, warnings=join(estimate.warnings, left_out))}

    if kpi.family is Family.TEAM_MONTH_LOG_TIME:
        data = months.assign(**{f"log_{kpi.outcome}": np.log(months[kpi.outcome].where(months[kpi.outcome] > 0))})
        main, checks = team_month_gaussian(data, f"log_{kpi.outcome}", f"log({kpi.outcome})", reference_reliability,
                                           model)
        rows = []
        for estimate, check in zip(main, checks):
            rows.append(row(replace(estimate, warnings=join(disagreement(estimate, check), estimate.warnings)), "main"))
            if check.model != estimate.model:
                rows.append(row(check, "cross-check"))
        return rows
    fit = {
        Family.TEAM_MONTH_COUNT: lambda: team_month_count(months, kpi, reference_reliability, model),
        Family.TEAM_MONTH_BINOMIAL: lambda: team_month_binomial(months, kpi, reference_reliability, model),
        Family.INCIDENT_TIME_TO_EVENT: lambda: incident_time_to_event(incidents, kpi, reference_reliability, model),
        Family.INCIDENT_LOG_TIME: lambda: incident_log_time(incidents, kpi, reference_reliability, model),
    }[kpi.family]
    return [row(estimate, "main") for estimate in fit()]


def results_table(rows: list[dict]) -> pd.DataFrame:
    """The tidy KPI x construct table. ``rows`` hold kpi, construct, role ('main' or
    'cross-check'), scale and an Estimate under 'estimate'. Benjamini-Hochberg q-values are
    taken over the main rows that report a p-value; with fewer than MIN_TEAMS_FOR_TESTS teams
    a row reports no p or q, only a description."""
    records = []
    for row in rows:
        e: Estimate = row["estimate"]
        record = {**{k: row[k] for k in ("kpi", "construct", "role", "scale")},
                  **{k: getattr(e, k) for k in RESULT_COLUMNS if hasattr(e, k)}}
        if e.n_teams < MIN_TEAMS_FOR_TESTS and np.isfinite(e.estimate):
            record["p_value"] = NAN
            record["warnings"] = join(
                f"only {e.n_teams} teams: too few to test, the estimate describes these teams only", e.warnings)
        records.append(record)
    table = pd.DataFrame(records, columns=[c for c in RESULT_COLUMNS if c != "q_value"])
    table["q_value"] = benjamini_hochberg(table["p_value"].where(table["role"] == "main"))
    return table[list(RESULT_COLUMNS)].astype({"n_events": float})


def benjamini_hochberg(p_values: pd.Series) -> pd.Series:
    """Benjamini-Hochberg q of every p in ``p_values``, one correction over them all; NaN where
    p is NaN (a row not tested, or not in the family). The one rule behind every q the results
    table and the correlation table report."""
    q_values = pd.Series(NAN, index=p_values.index, dtype=float)
    tested = p_values.notna()
    if tested.any():
        q_values[tested] = multipletests(p_values[tested].to_numpy(dtype=float), method="fdr_bh")[1]
    return q_values


def kpi_safety_effects(months: pd.DataFrame, incidents: pd.DataFrame,
                       reference_reliability: float | Mapping[str, float] = 1.0, kpis: tuple[Kpi, ...] = KPIS,
                       models: tuple[ScoreModel, ...] = (SAFETY_MODEL,),
                       unusable: Mapping[str, str] = MappingProxyType({})) -> pd.DataFrame:
    """Every KPI x construct cell of the results table, for every score model in ``models``
    (safety alone; safety with accountability and their interaction; each of Clark's stages),
    with one Benjamini-Hochberg correction over all of their main rows.

    ``months``: team-months (team, period_month, safety_z = lagged safety in SDs of the
    published team-wave means, the other models' ``<prefix>_z`` scores alike, headcount, and
    the KPI columns of marts.mart_team_month); ``incidents``: team, period_month, the scores,
    headcount and the incident KPIs' columns (ttr_seconds null while open, open_for_seconds,
    ttd_seconds null when the onset is unknown). Either may carry each score's
    ``<prefix>_error_var`` (each row's team-wave mean's error variance in squared SDs) and
    ``<prefix>_wave`` (which wave it comes from) for the reliability correction;
    ``reference_reliability`` is the share of the published team-wave means' variance that is
    true (1 when a score is measured without error), one number or one per score prefix. A KPI
    whose optional input is missing (``Kpi.is_absent``) has no rows. ``unusable``: per score
    prefix, why that score cannot be used at all (every team-wave suppressed, the same value in
    every published team-wave); every row of a model with such a score says so, unfitted."""
    rows = []
    for model in models:
        reason = join(*(unusable[s.prefix] for s in model.scores if s.prefix in unusable))
        for kpi in (k for k in kpis if not k.is_absent(months)):
            rows += (unfitted_rows(kpi, months, incidents, model, reason) if reason
                     else kpi_rows(kpi, months, incidents, reference_reliability, model))
    return results_table(rows)


# Each family's model, named where nothing was fitted.
MODEL_NAMES = {Family.TEAM_MONTH_LOG_TIME: "MixedLM", Family.TEAM_MONTH_COUNT: "NegativeBinomial",
               Family.TEAM_MONTH_BINOMIAL: "Binomial GLM", Family.INCIDENT_TIME_TO_EVENT: "Log-normal AFT",
               Family.INCIDENT_LOG_TIME: "OLS"}


def unfitted_rows(kpi: Kpi, months: pd.DataFrame, incidents: pd.DataFrame, model: ScoreModel,
                  reason: str) -> list[dict]:
    """The rows of a KPI whose model cannot be fitted because a score of ``model`` is unusable:
    no estimate, ``reason`` as the warning, and the rows, teams and periods the KPI has."""
    split = kpi.family.grain != "incident"
    frame = months if split else incidents
    present = frame.dropna(subset=[kpi.outcome]) if kpi.outcome in frame else frame.iloc[:0]
    name = f"{MODEL_NAMES[kpi.family]} of {kpi.outcome} on {' and '.join(s.label for s in model.scores)}: not fitted"
    constructs = model.constructs()
    return [{"kpi": kpi.name, "construct": constructs[term], "role": "main", "scale": kpi.scale,
             "estimate": Estimate(term, NAN, NAN, NAN, NAN, NAN, len(present), NAN, int(present["team"].nunique()),
                                  int(present["period_month"].nunique()), name, reason)}
            for term in model.reported_terms(split)]


@dataclass(frozen=True)
class Correlation:
    """A between-team Pearson r (a partial r when ``given`` a team-level column) with its 95%
    team-bootstrap interval and the exact test's p (see ``team_bootstrap_correlation``)."""

    r: float
    ci_low: float
    ci_high: float
    p_value: float


NO_CORRELATION = Correlation(NAN, NAN, NAN, NAN)


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r along the last axis (one r per bootstrap draw); NaN where either does not vary."""
    xc = x - x.mean(axis=-1, keepdims=True)
    yc = y - y.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=-1) / np.sqrt((xc**2).sum(axis=-1) * (yc**2).sum(axis=-1))


def _partial(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The partial r of x and y given z: (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2))."""
    r_xy, r_xz, r_yz = _pearson(x, y), _pearson(x, z), _pearson(y, z)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (r_xy - r_xz * r_yz) / np.sqrt((1 - r_xz**2) * (1 - r_yz**2))


def correlation_p_value(r: float, n_teams: int, n_given: int = 0) -> float:
    """Two-sided p of the exact test of a (partial) Pearson r of ``n_teams`` teams given
    ``n_given`` columns: t = r sqrt(df / (1 - r^2)) with df = n_teams - 2 - n_given (exact when
    the teams are independent and one of the two, given the others, is normal)."""
    df = n_teams - 2 - n_given
    if df <= 0 or not np.isfinite(r):
        return NAN
    if abs(r) >= 1:
        return 0.0
    return float(2 * stats.t.sf(abs(r) * np.sqrt(df / (1 - r**2)), df))


def team_bootstrap_correlation(
    teams: pd.DataFrame, x: str, y: str, n_resamples: int = 2000, seed: int = 0, given: str | None = None
) -> Correlation:
    """Pearson r between team-level ``x`` and ``y`` (the partial r ``given`` a team-level column,
    e.g. team size) with a 95% percentile CI from resampling teams with replacement and the
    exact test's p (``correlation_p_value``). All NaN when fewer than MIN_TEAMS_TO_FIT teams
    (one more for a partial r, whose residuals need a degree of freedom), when either is the same
    for every team up to rounding (e.g. a site that records no post-incident reviews) or when the
    ``given`` column explains one of them entirely; a ``given`` column that is the same for every
    team adjusts for nothing, and the r is the plain one. No interval or p below
    MIN_TEAMS_FOR_TESTS teams, where resampling a handful of teams gives intervals that collapse
    onto r."""
    columns = [x, y] + ([given] if given else [])
    data = teams[columns].dropna().to_numpy(dtype=float)
    if given and does_not_vary(data[:, 2]):
        data, given = data[:, :2], None
    n_given = data.shape[1] - 2
    if len(data) < MIN_TEAMS_TO_FIT + n_given or does_not_vary(data[:, 0]) or does_not_vary(data[:, 1]):
        return NO_CORRELATION

    def correlate(values: np.ndarray) -> np.ndarray:
        parts = np.moveaxis(values, -1, 0)  # x, y (and the given column), each over the teams
        return _pearson(*parts) if n_given == 0 else _partial(*parts)

    r = float(correlate(data))
    if not np.isfinite(r) or abs(r) > 1 + SAME_VALUE_TOLERANCE:
        return NO_CORRELATION
    r = float(np.clip(r, -1, 1))
    if len(data) < MIN_TEAMS_FOR_TESTS:
        return Correlation(r, NAN, NAN, NAN)
    rng = np.random.default_rng(seed)
    rs = correlate(data[rng.integers(0, len(data), size=(n_resamples, len(data)))])
    low, high = np.percentile(rs[np.isfinite(rs)], [2.5, 97.5])
    return Correlation(r, float(low), float(high), correlation_p_value(r, len(data), n_given))
