"""Satterthwaite degrees of freedom for the random-intercept model's fixed effects, against
values R's lmerTest publishes and results that are exact in balanced designs.

tests/data/sleepstudy.csv is lme4's `sleepstudy` (Belenky et al. 2003) as exported by the
Rdatasets project (github.com/vincentarelbundock/Rdatasets, csv/lme4/sleepstudy.csv). lmerTest
(Kuznetsova, Brockhoff & Christensen 2017) reports for `lmer(Reaction ~ Days + (1 | Subject))`:
(Intercept) 251.4051, SE 9.7467, df 22.8102; Days 10.4673, SE 0.8042, df 161.0000.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from assets.models.satterthwaite import fixed_effect_covariance_and_df

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
