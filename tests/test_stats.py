"""Model code against simulated data with known effects."""

import numpy as np
import pandas as pd
import pytest

from assets.models.stats import log_ttr_on_safety, standardise, team_bootstrap_correlation


def simulate_incidents(seed: int, n_teams: int = 40, beta: float = -0.25, size_effect: float = 0.25):
    """Teams with a random intercept; safety is confounded with team size, which the model adjusts for."""
    rng = np.random.default_rng(seed)
    log_size = rng.normal(2.2, 0.35, n_teams)
    size_z = (log_size - log_size.mean()) / log_size.std()
    safety = -0.35 * size_z + rng.normal(0, 0.9, n_teams)
    team_effect = rng.normal(0, 0.3, n_teams)
    rows = []
    for t in range(n_teams):
        for month in range(12):
            s = safety[t] + rng.normal(0, 0.25)
            for _ in range(rng.poisson(4)):
                log_ttr = 8 + beta * s + size_effect * size_z[t] + team_effect[t] + rng.normal(0, 0.9)
                rows.append({"team": f"T{t}", "period_month": month, "ttr_seconds": np.exp(log_ttr),
                             "safety_z": s, "headcount": np.exp(log_size[t])})
    return pd.DataFrame(rows)


def test_recovers_a_known_effect_with_covering_interval():
    result = log_ttr_on_safety(simulate_incidents(seed=1))
    assert result.ci_low < -0.25 < result.ci_high
    assert result.ci_high < 0
    assert result.n_teams == 40 and result.n_periods == 12
    assert result.warnings == ""


def test_interval_coverage_is_near_nominal_across_seeds():
    covered = [
        (r := log_ttr_on_safety(simulate_incidents(seed))).ci_low < -0.25 < r.ci_high for seed in range(60)
    ]
    # 95% nominal; cluster-robust intervals run a little narrow with 40 clusters.
    assert 0.85 <= np.mean(covered) <= 1.0


def test_adjusting_for_headcount_removes_the_size_confounding():
    data = simulate_incidents(seed=2, n_teams=200, beta=0.0, size_effect=0.6)
    result = log_ttr_on_safety(data)
    assert result.ci_low < 0 < result.ci_high


def test_few_teams_warn_instead_of_overclaiming():
    result = log_ttr_on_safety(simulate_incidents(seed=3, n_teams=12))
    assert "12 teams" in result.warnings and "unreliable" in result.warnings


def test_too_few_teams_is_a_clear_error():
    data = simulate_incidents(seed=4, n_teams=2)
    with pytest.raises(ValueError, match="at least 3 teams"):
        log_ttr_on_safety(data)


def test_standardise_uses_the_reference_distribution():
    reference = pd.Series([1.0, 2.0, 3.0])
    assert standardise(pd.Series([3.0]), reference).iloc[0] == pytest.approx(1.0)


def test_team_bootstrap_interval_covers_the_true_correlation():
    rng = np.random.default_rng(5)
    rho = 0.5
    x = rng.normal(size=60)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=60)
    r, low, high = team_bootstrap_correlation(pd.DataFrame({"x": x, "y": y}), "x", "y", seed=1)
    assert r == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert low < rho < high and low > 0
    assert high - low < 0.6


def test_bootstrap_with_too_few_teams_is_nan():
    r, low, high = team_bootstrap_correlation(pd.DataFrame({"x": [1.0, 2.0], "y": [2.0, 1.0]}), "x", "y")
    assert np.isnan(r) and np.isnan(low) and np.isnan(high)
