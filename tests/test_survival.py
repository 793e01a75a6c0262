"""The log-normal time-to-event likelihood (assets/models/survival.py) against known answers:
without censoring its maximum is the OLS of the log times; with censoring it recovers a known
effect that dropping the unfinished cases biases; its analytic score is the likelihood's
gradient, and its analytic Hessian the score's derivative."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.tools.numdiff import approx_fprime

from assets.models.survival import LogNormalAFT, fit_log_normal_aft


def simulated(seed: int, n_groups: int = 60, per_group: int = 40, beta: float = -0.25, followed_mean: float = 9.0):
    """Log times 8 + beta x + group effect + N(0, 0.9); each case is followed for a log-normal
    time around ``followed_mean`` and still open (censored) when that is shorter."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(size=len(groups))
    log_time = 8 + beta * x + rng.normal(0, 0.3, n_groups)[groups] + rng.normal(0, 0.9, len(groups))
    log_followed = rng.normal(followed_mean, 1.0, len(groups))
    resolved = log_time <= log_followed
    observed = np.where(resolved, log_time, log_followed)
    X = pd.DataFrame({"const": 1.0, "x": x})
    return pd.Series(observed), pd.Series(resolved), X, groups


def test_without_censoring_the_fit_is_the_ols_of_the_log_times():
    observed, _, X, groups = simulated(seed=1)
    fit = fit_log_normal_aft(observed, pd.Series(True, index=observed.index), X, groups)
    ols = sm.OLS(observed, X).fit()
    assert fit.params[:2] == pytest.approx(ols.params.to_numpy(), abs=1e-7)
    # The maximum-likelihood sigma divides by n, not n - k.
    assert np.exp(fit.params[2]) == pytest.approx(np.sqrt(ols.ssr / len(observed)), rel=1e-6)


def test_censored_cases_are_counted_as_lasting_at_least_as_long_as_they_were_followed():
    observed, resolved, X, groups = simulated(seed=2, followed_mean=8.3)
    assert 0.3 < 1 - resolved.mean() < 0.6
    fit = fit_log_normal_aft(observed, resolved, X, groups)
    low, high = fit.conf_int()[1]
    assert low < -0.25 < high and fit.mle_retvals["converged"]
    # Dropping the open cases keeps the quick ones: the intercept falls and the effect shrinks.
    dropped = sm.OLS(observed[resolved], X[resolved]).fit()
    assert dropped.params["const"] < fit.params[0] - 0.2
    assert abs(dropped.params["x"]) < abs(fit.params[1])


def test_the_analytic_score_is_the_gradient_of_the_log_likelihood():
    observed, resolved, X, _ = simulated(seed=3, n_groups=10, per_group=20, followed_mean=8.5)
    model = LogNormalAFT(observed.to_numpy(), X, resolved.to_numpy())
    params = np.array([7.8, -0.2, np.log(1.1)])
    numeric = approx_fprime(params, model.loglike, centered=True)
    assert model.score(params) == pytest.approx(numeric, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("params", [[7.8, -0.2, np.log(1.1)], [8.3, 0.1, np.log(0.7)]])
def test_the_analytic_hessian_is_the_derivative_of_the_score(params):
    observed, resolved, X, _ = simulated(seed=3, n_groups=10, per_group=20, followed_mean=8.5)
    assert 0 < resolved.mean() < 1  # both kinds of case contribute
    model = LogNormalAFT(observed.to_numpy(), X, resolved.to_numpy())
    numeric = approx_fprime(np.array(params), model.score, centered=True)
    assert model.hessian(np.array(params)) == pytest.approx(numeric, rel=1e-6, abs=1e-6)
