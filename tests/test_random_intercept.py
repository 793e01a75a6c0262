"""The random-intercept model's closed forms, against values R publishes and results that are
exact in balanced designs: its REML variances (lme4) and the Satterthwaite degrees of freedom
of its fixed effects (lmerTest).

tests/data/sleepstudy.csv is lme4's `sleepstudy` (Belenky et al. 2003) as exported by the
Rdatasets project (github.com/vincentarelbundock/Rdatasets, csv/lme4/sleepstudy.csv). lmerTest
(Kuznetsova, Brockhoff & Christensen 2017) reports for `lmer(Reaction ~ Days + (1 | Subject))`:
(Intercept) 251.4051, SE 9.7467, df 22.8102; Days 10.4673, SE 0.8042, df 161.0000; lme4's
summary of the same fit gives the variances Subject 1378.2 and Residual 960.5.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.regression.mixed_linear_model import MixedLMParams

from assets.models.random_intercept import fixed_effect_covariance_and_df, reml_variances

SLEEPSTUDY = Path(__file__).parent / "data" / "sleepstudy.csv"


def test_satterthwaite_matches_lmertest_on_sleepstudy():
    data = pd.read_csv(SLEEPSTUDY)
    X = pd.DataFrame({"const": 1.0, "Days": data["Days"].astype(float)})
    groups = pd.factorize(data["Subject"])[0]
    fit = sm.MixedLM(data["Reaction"].to_numpy(), X, groups=groups).fit(reml=True)
    cov, df = fixed_effect_covariance_and_df(X, groups, fit.scale, float(fit.cov_re.iloc[0, 0]))
    assert fit.fe_params.to_numpy() == pytest.approx([251.4051, 10.4673], abs=5e-5)
    assert np.sqrt(np.diag(cov)) == pytest.approx([9.7467, 0.8042], abs=5e-5)
    assert df.to_numpy() == pytest.approx([22.8102, 161.0], abs=5e-5)


def test_satterthwaite_is_exact_in_a_balanced_design():
    # 12 teams x 6 months: a team-constant term gets G - 2 = 10 df, a within-team term the
    # fixed-effects residual df G(n - 1) - 1 = 59, and the team-constant term's t test is
    # exactly the OLS of team means on that term.
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(12), 6)
    team_level = rng.normal(size=12)[groups]
    within = rng.normal(size=72)
    within -= pd.Series(within).groupby(groups).transform("mean").to_numpy()
    y = 1 + 0.5 * team_level + 0.3 * within + rng.normal(0, 0.8, 12)[groups] + rng.normal(size=72)
    X = pd.DataFrame({"const": 1.0, "team_level": team_level, "within": within})
    fit = sm.MixedLM(y, X, groups=groups).fit(reml=True)
    cov, df = fixed_effect_covariance_and_df(X, groups, fit.scale, float(fit.cov_re.iloc[0, 0]))
    assert df["team_level"] == pytest.approx(10, abs=1e-6) and df["within"] == pytest.approx(59, abs=1e-6)
    means = pd.DataFrame({"y": y, "x": team_level, "team": groups}).groupby("team").mean()
    on_means = sm.OLS(means["y"], sm.add_constant(means["x"])).fit()
    assert np.sqrt(cov.loc["team_level", "team_level"]) == pytest.approx(on_means.bse["x"], rel=1e-4)


def test_reml_variances_match_lme4_on_sleepstudy():
    data = pd.read_csv(SLEEPSTUDY)
    X = pd.DataFrame({"const": 1.0, "Days": data["Days"].astype(float)})
    variances = reml_variances(X, data["Reaction"].to_numpy(), pd.factorize(data["Subject"])[0])
    assert variances.tau2 == pytest.approx(1378.2, abs=0.05) and variances.sigma2 == pytest.approx(960.5, abs=0.05)


def simulated_teams(team_sd: float, seed: int, n_teams: int = 40) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Unbalanced teams (3 to 14 rows) with a within-team and a team-constant column."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_teams), rng.integers(3, 15, n_teams))
    X = pd.DataFrame({"const": 1.0, "within": rng.normal(size=len(groups)),
                      "team_level": rng.normal(size=n_teams)[groups]})
    y = X.to_numpy() @ [1.0, -0.3, 0.5] + rng.normal(0, team_sd, n_teams)[groups] + rng.normal(size=len(groups))
    return X, y, groups


@pytest.mark.parametrize("seed", range(5))
def test_reml_variances_maximise_statsmodels_reml_likelihood(seed):
    X, y, groups = simulated_teams(team_sd=0.7, seed=seed)
    variances = reml_variances(X, y, groups)
    model = sm.MixedLM(y, X, groups=groups)
    fit = model.fit(reml=True)
    # statsmodels' own REML log-likelihood (beta and sigma2 profiled out) is at least as high at
    # these variances as at its optimiser's: they are its maximum, found more exactly.
    ours = MixedLMParams.from_components(fe_params=fit.fe_params.to_numpy(),
                                         cov_re=np.array([[variances.tau2 / variances.sigma2]]))
    assert model.loglike(ours, profile_fe=True) >= fit.llf - 1e-12
    assert variances.sigma2 == pytest.approx(fit.scale, rel=1e-3)
    assert variances.tau2 == pytest.approx(float(fit.cov_re.iloc[0, 0]), rel=1e-3)


def test_reml_variances_find_a_team_variance_at_its_boundary():
    # Outcomes whose team means vary less than their rows would make them: the REML optimum
    # of the team variance is 0 itself, which statsmodels' gradient optimisers never reach.
    X, y, groups = simulated_teams(team_sd=0.0, seed=11)
    y = y - pd.Series(y).groupby(groups).transform("mean").to_numpy() * 0.5
    variances = reml_variances(X, y, groups)
    assert variances.tau2 == 0.0
    ols = sm.OLS(y, X).fit()
    assert variances.sigma2 == pytest.approx(ols.scale, rel=1e-12)  # at tau2 = 0, REML's sigma2 is OLS's


def test_reml_variances_do_not_depend_on_the_outcomes_mean():
    # Log seconds sit far from 0: a large mean must not cost the variances their precision.
    X, y, groups = simulated_teams(team_sd=0.4, seed=7)
    plain = reml_variances(X, y, groups)
    shifted = reml_variances(X, y + 1e8, groups)
    assert shifted.sigma2 == pytest.approx(plain.sigma2, rel=1e-6)
    assert shifted.tau2 == pytest.approx(plain.tau2, rel=1e-6)


def test_reml_variances_leave_an_exactly_fitted_outcome_to_the_full_fit():
    X, _, groups = simulated_teams(team_sd=0.0, seed=2)
    assert reml_variances(X, X.to_numpy() @ [3.0, -1.0, 0.5], groups) is None
    assert reml_variances(X, np.full(len(X), 4.2), groups) is None
