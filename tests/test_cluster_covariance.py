"""The team-clustered covariance of the results table (``stats.cluster_covariance``): the CR2
sandwich and Bell-McCaffrey df against the textbook full-matrix computation
(tests/cluster_reference.py), against closed forms on balanced designs, and the per-row parts it
starts from against statsmodels' own scores, information and clustered (CR1) covariance."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from cluster_reference import cr2_reference

from assets.models.stats import _linear_predictor_parts, cluster_covariance
from assets.models.survival import fit_log_normal_aft

TEAM_SIZES = (3, 4, 5, 6, 7, 9, 12, 15)  # unbalanced: every team has its own leverage


def clustered_design(seed: int, team_sizes=TEAM_SIZES) -> tuple[np.ndarray, np.ndarray, np.random.Generator]:
    """Constant, a team-level column (between teams only) and a column varying within teams."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(len(team_sizes)), team_sizes)
    team_level = rng.normal(size=len(team_sizes))[groups]
    X = np.column_stack([np.ones(len(groups)), team_level, team_level + rng.normal(size=len(groups))])
    return X, groups, rng


def cluster_fit_kwargs(groups: np.ndarray) -> dict:
    return {"cov_type": "cluster", "cov_kwds": {"groups": groups}, "use_t": True}


def test_cr2_and_its_degrees_of_freedom_match_the_full_matrix_computation_on_unbalanced_teams():
    X, groups, rng = clustered_design(seed=1)
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=len(groups))[groups] + rng.normal(size=len(groups))
    fit = sm.OLS(y, X).fit(**cluster_fit_kwargs(groups))
    covariance, df = cluster_covariance(fit, X, groups)
    expected_covariance, expected_df = cr2_reference(X, np.asarray(fit.resid), groups)
    np.testing.assert_allclose(covariance, expected_covariance, rtol=1e-8)
    np.testing.assert_allclose(df, expected_df, rtol=1e-8)
    assert expected_df[1] < len(TEAM_SIZES) - 1  # the between-team term has fewer df than teams - 1


def balanced_team_means(seed: int, team_level: np.ndarray, per_team: int = 5):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(len(team_level)), per_team)
    y = 2.0 + rng.normal(size=len(team_level))[groups] + rng.normal(size=len(groups))
    return y, groups, pd.Series(y).groupby(groups).mean().to_numpy()


def test_an_intercept_on_balanced_teams_has_the_variance_of_the_team_means_and_teams_minus_one_df():
    n_teams = 12
    y, groups, team_means = balanced_team_means(seed=2, team_level=np.zeros(n_teams))
    X = np.ones((len(y), 1))
    covariance, df = cluster_covariance(sm.OLS(y, X).fit(**cluster_fit_kwargs(groups)), X, groups)
    assert covariance[0, 0] == pytest.approx(team_means.var(ddof=1) / n_teams, rel=1e-10)
    assert df[0] == pytest.approx(n_teams - 1, rel=1e-10)


def test_a_balanced_two_level_team_term_has_the_hc2_variance_of_the_team_means_and_teams_minus_two_df():
    # Each team's rows share the design row z_g, so CR2 is HC2 of the regression of the team means
    # on z; with x = +-1 on half the teams each, every team has leverage 2 / teams and the
    # Bell-McCaffrey Gram matrix is a projection of rank teams - 2.
    n_teams = 12
    x = np.tile([1.0, -1.0], n_teams // 2)
    y, groups, team_means = balanced_team_means(seed=3, team_level=x)
    X = np.column_stack([np.ones(len(y)), x[groups]])
    covariance, df = cluster_covariance(sm.OLS(y, X).fit(**cluster_fit_kwargs(groups)), X, groups)
    hc2 = sm.OLS(team_means, np.column_stack([np.ones(n_teams), x])).fit(cov_type="HC2").cov_params()
    np.testing.assert_allclose(covariance, hc2, rtol=1e-10)
    np.testing.assert_allclose(df, [n_teams - 2, n_teams - 2], rtol=1e-10)


def poisson_fit(seed: int):
    X, groups, rng = clustered_design(seed)
    exposure = rng.integers(5, 20, size=len(groups)).astype(float)
    y = rng.poisson(exposure * 0.3 * np.exp(X @ [0.0, 0.3, -0.2] + rng.normal(0, 0.3, len(TEAM_SIZES))[groups]))
    return sm.GLM(y, X, family=sm.families.Poisson(), exposure=exposure).fit(**cluster_fit_kwargs(groups)), X, groups


def logit_fit(seed: int):
    X, groups, rng = clustered_design(seed)
    trials = rng.integers(3, 15, size=len(groups))
    p = 1 / (1 + np.exp(-(X @ [-1.0, 0.4, 0.3] + rng.normal(0, 0.3, len(TEAM_SIZES))[groups])))
    successes = rng.binomial(trials, p)
    fit = sm.GLM(np.column_stack([successes, trials - successes]), X, family=sm.families.Binomial()).fit(
        **cluster_fit_kwargs(groups))
    return fit, X, groups


def negative_binomial_fit(seed: int):
    X, groups, rng = clustered_design(seed)
    exposure = rng.integers(5, 20, size=len(groups)).astype(float)
    y = rng.poisson(exposure * 0.3 * np.exp(X @ [0.0, 0.3, -0.2]) * rng.gamma(2.0, 0.5, size=len(groups)))
    fit = sm.NegativeBinomial(y, X, exposure=exposure).fit(disp=0, maxiter=200, **cluster_fit_kwargs(groups))
    return fit, X, groups


def aft_fit(seed: int):
    X, groups, rng = clustered_design(seed)
    log_time = X @ [1.0, 0.3, -0.2] + rng.normal(0, 0.3, len(TEAM_SIZES))[groups] + rng.normal(size=len(groups))
    resolved = log_time < np.quantile(log_time, 0.8)  # the slowest fifth still open at the cut-off
    observed = np.where(resolved, log_time, np.quantile(log_time, 0.8))
    fit = fit_log_normal_aft(pd.Series(observed), pd.Series(resolved), pd.DataFrame(X), groups)
    return fit, X, groups


GLM_FITS = {"Poisson": poisson_fit, "logit": logit_fit}
ALL_FITS = {**GLM_FITS, "NegativeBinomial": negative_binomial_fit, "log-normal AFT": aft_fit}


@pytest.mark.parametrize("family", ALL_FITS)
def test_the_per_row_parts_are_statsmodels_score_and_the_plain_sandwich_is_its_clustered_covariance(family):
    fit, X, groups = ALL_FITS[family](seed=4)
    params = np.asarray(fit.params)
    w, u = _linear_predictor_parts(fit)
    k = X.shape[1]
    score = np.asarray(fit.model.score_obs(params))
    np.testing.assert_allclose(X * u[:, None], score[:, :k], rtol=1e-8, atol=1e-10)
    if family != "NegativeBinomial":  # w is NB2's expected information, not its observed Hessian
        np.testing.assert_allclose(X.T @ (X * w[:, None]), -np.asarray(fit.model.hessian(params))[:k, :k], rtol=1e-8)
    # The sandwich with these team scores (and the other parameters' own), uncorrected, is
    # statsmodels' CR1 without its G/(G-1) (N-1)/(N-K) factor. Its bread is the inverse Hessian at
    # the estimate; the fit's own (cluster_covariance's) is a GLM's last IRLS step, equal to it up
    # to the IRLS convergence tolerance.
    team_scores = pd.DataFrame(np.column_stack([X * u[:, None], score[:, k:]])).groupby(groups).sum().to_numpy()
    bread = np.linalg.inv(-np.asarray(fit.model.hessian(params)))
    np.testing.assert_allclose(np.asarray(fit.normalized_cov_params), bread, atol=1e-5 * np.abs(bread).max())
    n_teams, (n, n_params) = len(TEAM_SIZES), score.shape
    factor = n_teams / (n_teams - 1) * (n - 1) / (n - n_params)
    np.testing.assert_allclose(bread @ team_scores.T @ team_scores @ bread * factor, fit.cov_params(), rtol=1e-8)


@pytest.mark.parametrize("family", ALL_FITS)
def test_cr2_of_a_likelihood_fit_is_the_full_matrix_cr2_of_its_working_linear_model(family):
    fit, X, groups = ALL_FITS[family](seed=5)
    w, u = _linear_predictor_parts(fit)
    k = X.shape[1]
    expected_covariance, expected_df = cr2_reference(
        X * np.sqrt(w)[:, None], u / np.sqrt(w), groups, bread=np.asarray(fit.normalized_cov_params),
        extra_scores=np.asarray(fit.model.score_obs(np.asarray(fit.params)))[:, k:])
    covariance, df = cluster_covariance(fit, X, groups)
    np.testing.assert_allclose(covariance, expected_covariance, rtol=1e-8)
    np.testing.assert_allclose(df, expected_df, rtol=1e-8)
