"""Model code against known answers: results exact in special cases and simulated data with
known effects (the Satterthwaite degrees of freedom against R's lmerTest: test_random_intercept.py;
the time-to-event likelihood: test_survival.py)."""

from dataclasses import astuple, replace

import duckdb
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from cluster_reference import cr2_reference
from scipy import stats

from assets.models.assets import correlation_table
from assets.models.design import design, model_rows
from assets.models.inputs import TEAM_MONTHS_SQL, read_model_inputs, safety_unusable_reason
from assets.models.kpis import KPI_BY_NAME, Family, Kpi, Reading
from assets.models.stats import (
    MIN_EVENTS_PER_COEFFICIENT,
    MIN_TEAMS_FOR_TESTS,
    correlation_warning,
    incident_log_time,
    incident_time_to_event,
    kpi_safety_effects,
    standardise,
    team_bootstrap_correlation,
    team_month_binomial,
    team_month_count,
    team_month_gaussian,
)
from assets.report.wording import correlation_sentence
from pipelines.synthetic.org import OrgSpec, generate
from pipelines.synthetic.truth_frames import org_frames

TTR = KPI_BY_NAME["log TTR (incident level)"]
TTD = KPI_BY_NAME["log TTD (incident level)"]
INCIDENTS = KPI_BY_NAME["incidents per head"]
ATTRITION = KPI_BY_NAME["voluntary attrition"]


def covers(estimate, truth: float) -> bool:
    return estimate.ci_low < truth < estimate.ci_high


# --- The mixed model: Satterthwaite t, fallback, unidentified parts ----------------------------

def months_with_team_effect(team_sd: float, seed: int = 0, n_teams: int = 30, beta: float = -0.25) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for team in range(n_teams):
        level, effect = rng.normal(), rng.normal(0, team_sd)
        for period in range(12):
            s = level + rng.normal(0, 0.3)
            rows.append({"team": f"T{team}", "period_month": period, "safety_z": s, "headcount": 5 + team,
                         "y": beta * s + effect + rng.normal(0, 0.5)})
    return pd.DataFrame(rows)


def test_mixed_model_intervals_use_the_satterthwaite_t():
    within, between = team_month_gaussian(months_with_team_effect(team_sd=0.5, n_teams=12), "y", "y")[0]
    assert within.model.startswith("MixedLM") and "Satterthwaite t" in within.model
    # Between teams: 12 teams less the team-constant columns (constant, safety, log headcount).
    assert 8 < between.df < 10
    se = (between.ci_high - between.ci_low) / 2 / stats.t.ppf(0.975, between.df)
    assert between.p_value == pytest.approx(2 * stats.t.sf(abs(between.estimate) / se, between.df))
    assert within.df > 100  # within-team information comes from every team-month


@pytest.mark.slow
def test_mixed_model_between_team_intervals_cover_at_the_nominal_rate_with_few_teams():
    covered = [covers(team_month_gaussian(months_with_team_effect(0.5, seed, n_teams=10), "y", "y")[0][1], -0.25)
               for seed in range(200)]
    # 95% nominal; a normal interval on 10 teams covers about 90%. 3 binomial SDs of 200 draws.
    assert np.mean(covered) >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 200)


def test_mixedlm_with_zero_team_variance_falls_back_to_clustered_ols_naming_the_cause():
    main, check = team_month_gaussian(months_with_team_effect(team_sd=0.0), "y", "y")
    for estimate in main:
        assert estimate.model.startswith("OLS") and estimate.model == check[0].model
        assert "MixedLM team variance" in estimate.warnings and "is near zero" in estimate.warnings
        assert "did not converge" not in estimate.warnings
        assert covers(estimate, -0.25)
    mixed, _ = team_month_gaussian(months_with_team_effect(team_sd=0.5), "y", "y")
    assert all(e.model.startswith("MixedLM") and "MixedLM team variance" not in e.warnings for e in mixed)
    # Rows of the mixed model warn about few teams in its own terms, not as clustered errors.
    assert all("Satterthwaite t allows for few teams" in e.warnings for e in mixed)


def test_an_adjustment_that_adds_nothing_to_the_other_terms_is_left_out_and_named():
    months = months_with_team_effect(team_sd=0.5)
    # Headcount constant within each team: its within part is all zeros.
    constant = design(model_rows(months, ["y"]), split=True)
    assert constant.left_out == ["log_headcount_within"] and "log_headcount_between" in constant.X.columns
    # Log headcount an exact linear function of safety: both parts lie in safety's span.
    months["headcount"] = np.exp(1.0 + 0.5 * months["safety_z"])
    collinear = design(model_rows(months, ["y"]), split=True)
    assert collinear.left_out == ["log_headcount_within", "log_headcount_between"]
    assert "left out: no variation beyond the other terms" in collinear.formula("y")
    # Quarter dummies are all kept where every quarter has rows besides the first.
    assert sum(c.startswith("quarter[") for c in collinear.X.columns) == 3


def test_a_part_of_safety_the_data_cannot_identify_is_reported_as_no_estimate():
    # Every team has a single survey wave so far: safety has no within-team part to relate to.
    months = months_with_team_effect(team_sd=0.5)
    months["safety_z"] = months.groupby("team")["safety_z"].transform("first")
    within, between = team_month_gaussian(months, "y", "y")[1]
    assert within.term == "safety_within" and np.isnan([within.estimate, within.ci_low, within.p_value]).all()
    assert "not estimable: this part of safety does not vary" in within.warnings
    assert covers(between, -0.25)


def test_an_implausibly_large_fit_is_reported_as_no_estimate():
    # Three teams whose within-team safety barely moves: a near-singular design.
    months = months_with_team_effect(team_sd=0.5).query("team in ['T0', 'T1', 'T2'] and period_month < 4").copy()
    months["safety_z"] = months.groupby("team")["safety_z"].transform("first") + months["period_month"] * 1e-8
    within, _ = team_month_gaussian(months, "y", "y")[1]
    assert np.isnan(within.estimate) and "not estimable" in within.warnings


# --- Time to resolve as time to event ---------------------------------------------------------

def simulate_incidents(seed: int, n_teams: int = 40, beta: float = -0.25, size_effect: float = 0.25,
                       open_share: float = 0.0) -> pd.DataFrame:
    """Incidents of teams with a random intercept; safety is confounded with team size, which the
    model adjusts for. With ``open_share`` the data's cut-off falls inside the incidents' lives:
    each is followed for a random time and is still open when that is shorter than its TTR."""
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
                ttr = np.exp(8 + beta * s + size_effect * size_z[t] + team_effect[t] + rng.normal(0, 0.9))
                followed = np.exp(rng.normal(8 + 1.2 * stats.norm.ppf(1 - open_share), 1.2)) if open_share else np.inf
                rows.append({"team": f"T{t}", "period_month": month, "safety_z": s, "headcount": np.exp(log_size[t]),
                             "ttr_seconds": ttr if ttr <= followed else np.nan,
                             "open_for_seconds": np.nan if ttr <= followed else followed})
    return pd.DataFrame(rows)


def test_time_to_event_without_open_incidents_is_the_ols_of_log_times():
    data = simulate_incidents(seed=1)
    [aft] = incident_time_to_event(data, TTR)
    design_ = design(model_rows(data, ["ttr_seconds"]), split=False)
    ols = sm.OLS(np.log(design_.data["ttr_seconds"]), design_.X).fit()
    assert aft.estimate == pytest.approx(ols.params["safety_z"], abs=1e-6)
    assert covers(aft, -0.25) and aft.ci_high < 0
    assert aft.n_teams == 40 and aft.n_periods == 12 and aft.warnings == ""
    assert "0 of" in aft.model and "incidents still open, censored at the data's cut-off" in aft.model


def test_open_incidents_are_censored_not_dropped():
    data = simulate_incidents(seed=2, n_teams=120, open_share=0.35)
    assert 0.25 < data["ttr_seconds"].isna().mean() < 0.45
    [aft] = incident_time_to_event(data, TTR)
    assert covers(aft, -0.25)
    # Dropping the open incidents (the slow ones of every team) shrinks the effect towards zero.
    [dropped] = incident_log_time(data, replace(TTR, family=Family.INCIDENT_LOG_TIME))
    assert dropped.ci_high < -0.25 * 0.5 or dropped.ci_low > -0.25, "the simulation must censor enough to bias"
    assert abs(dropped.estimate) < abs(aft.estimate)


@pytest.mark.slow
def test_time_to_event_interval_coverage_is_near_nominal_across_seeds():
    covered = [covers(incident_time_to_event(simulate_incidents(seed, open_share=0.2), TTR)[0], -0.25)
               for seed in range(40)]
    # 95% nominal; cluster-robust intervals run a little narrow with 40 clusters.
    assert 0.85 <= np.mean(covered) <= 1.0


def test_adjusting_for_headcount_removes_the_size_confounding():
    [result] = incident_time_to_event(simulate_incidents(seed=2, n_teams=200, beta=0.0, size_effect=0.6), TTR)
    assert covers(result, 0.0)


def test_few_teams_warn_and_too_few_teams_give_no_estimate():
    [result] = incident_time_to_event(simulate_incidents(seed=3, n_teams=12), TTR)
    assert "12 teams" in result.warnings and "unreliable" in result.warnings and np.isfinite(result.estimate)
    [result] = incident_time_to_event(simulate_incidents(seed=4, n_teams=2), TTR)
    assert np.isnan(result.estimate) and "only 2 teams: too few to estimate" in result.warnings


# --- Counts: deterministic, Poisson at the boundary, minimum events ---------------------------

@pytest.fixture(scope="module")
def small_org_frames():
    return org_frames(generate(OrgSpec(seed=11, n_teams=15, n_months=12)))


def test_the_results_table_is_the_same_on_any_row_order(small_org_frames):
    months, incidents = small_org_frames
    table = kpi_safety_effects(months, incidents)
    rng = np.random.default_rng(0)
    shuffled = kpi_safety_effects(months.sample(frac=1, random_state=rng), incidents.sample(frac=1, random_state=rng))
    pd.testing.assert_frame_equal(shuffled, table, check_exact=True)


def poisson_months(seed: int, overdispersion: float = 0.0, n_teams: int = 40) -> pd.DataFrame:
    """Team-month counts with rate headcount x 0.45 x exp(0.15 safety); with ``overdispersion``
    each team-month's rate is multiplied by a gamma draw of that variance (NegativeBinomial)."""
    rng = np.random.default_rng(seed)
    rows = []
    for team in range(n_teams):
        level, headcount = rng.normal(), int(rng.integers(5, 20))
        for period in range(12):
            s = level + rng.normal(0, 0.3)
            shock = rng.gamma(1 / overdispersion, overdispersion) if overdispersion else 1.0
            rows.append({"team": f"T{team}", "period_month": period, "safety_z": s, "headcount": headcount,
                         "incidents": rng.poisson(headcount * 0.45 * np.exp(0.15 * s) * shock)})
    return pd.DataFrame(rows)


def test_counts_at_the_poisson_boundary_are_fitted_by_poisson_with_clustered_errors_and_say_so():
    months = poisson_months(seed=5)
    within, between = team_month_count(months, INCIDENTS)
    # The reference: the textbook CR2 / Bell-McCaffrey df of the Poisson GLM's working linear
    # model (sqrt(mu) x, (y - mu) / sqrt(mu)) from the full matrices, never above teams - 1.
    data = model_rows(months, [INCIDENTS.outcome, *INCIDENTS.denominator])
    design_ = design(data, split=True)
    exposure = design_.data[list(INCIDENTS.denominator)].sum(axis=1).to_numpy(dtype=float)
    X, y = design_.X.to_numpy(dtype=float), design_.data[INCIDENTS.outcome].to_numpy(dtype=float)
    fit = sm.GLM(y, X, family=sm.families.Poisson(), exposure=exposure).fit()
    mu = np.asarray(fit.fittedvalues)
    covariance, df = cr2_reference(X * np.sqrt(mu)[:, None], (y - mu) / np.sqrt(mu), design_.groups,
                                   bread=np.asarray(fit.normalized_cov_params))
    for estimate in (within, between):
        assert estimate.model.startswith("Poisson GLM") and "team-clustered" in estimate.model
        assert "no overdispersion beyond Poisson" in estimate.warnings
        assert "Poisson with team-clustered errors" in estimate.warnings
        column = list(design_.X.columns).index(estimate.term)
        assert estimate.df == pytest.approx(min(df[column], design_.n_teams - 1), rel=1e-6)
        se = (estimate.ci_high - estimate.ci_low) / 2 / stats.t.ppf(0.975, estimate.df)
        assert se == pytest.approx(np.sqrt(covariance[column, column]), rel=1e-5)
    assert between.df < design_.n_teams - 1  # a between-team term rests on fewer df than teams - 1
    assert covers(between, 0.15)


def test_overdispersed_counts_keep_the_negative_binomial():
    within, between = team_month_count(poisson_months(seed=6, overdispersion=0.5), INCIDENTS)
    assert between.model.startswith("NegativeBinomial") and "boundary" not in between.warnings
    assert covers(between, 0.15)


def attrition_months(seed: int, n_teams: int, monthly_rate: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for team in range(n_teams):
        level = rng.normal()
        for period in range(12):
            s = level + rng.normal(0, 0.3)
            p = monthly_rate * np.exp(-0.3 * s)
            rows.append({"team": f"T{team}", "period_month": period, "safety_z": s, "headcount": 10,
                         "voluntary_leavers": rng.binomial(10, p)})
    return pd.DataFrame(rows)


def test_a_binomial_with_too_few_events_reports_too_few_events_instead_of_an_estimate():
    # 40 teams x 12 months x 10 people at 0.1%/month: about 5 leavers for 5 coefficients.
    few = team_month_binomial(attrition_months(seed=7, n_teams=40, monthly_rate=0.001), ATTRITION)
    for estimate in few:
        assert np.isnan(estimate.estimate) and np.isnan(estimate.p_value)
        assert estimate.warnings.startswith("too few events: ")
        assert f"at least {MIN_EVENTS_PER_COEFFICIENT} per coefficient" in estimate.warnings
        assert estimate.n_events < MIN_EVENTS_PER_COEFFICIENT * 5
    enough = team_month_binomial(attrition_months(seed=7, n_teams=40, monthly_rate=0.02), ATTRITION)
    assert all(np.isfinite(e.estimate) and "too few events" not in e.warnings for e in enough)
    assert covers(enough[1], -0.3)


def test_leavers_who_outnumber_the_opening_headcount_are_the_number_at_risk():
    # Hires who left within their first month: more leavers than the month's opening headcount.
    months = attrition_months(seed=7, n_teams=40, monthly_rate=0.02)
    months.loc[months.index[:3], "voluntary_leavers"] = 12
    raised = months.assign(headcount=np.maximum(months["headcount"], months["voluntary_leavers"]))
    for estimate, expected in zip(team_month_binomial(months, ATTRITION), team_month_binomial(raised, ATTRITION),
                                  strict=True):
        assert np.isfinite(estimate.estimate)
        assert "3 team-months had more voluntary_leavers than headcount" in estimate.warnings
        # The same fit as on a headcount of 12 there, but for the log headcount adjustment.
        assert estimate.n_events == expected.n_events


def test_the_minimum_events_rule_counts_the_rarer_outcome_and_every_coefficient():
    # Nearly everyone leaves: the rare outcome is staying, and the rule counts that.
    months = attrition_months(seed=8, n_teams=10, monthly_rate=0.0).assign(voluntary_leavers=10)
    months.loc[months.index[:3], "voluntary_leavers"] = 9
    [within, _] = team_month_binomial(months, ATTRITION)
    assert within.n_events == 3 and "too few events: 3 " in within.warnings
    # Incident counts: the total count is the events; quarter dummies count as coefficients.
    quiet = poisson_months(seed=9, n_teams=4).assign(incidents=lambda d: (d.index % 40 == 0).astype(int))
    [within, _] = team_month_count(quiet, INCIDENTS)
    assert within.n_events == quiet["incidents"].sum() and "too few events" in within.warnings
    assert "for 6 coefficients" in within.warnings  # 2 safety + 1 headcount + 3 quarters


# --- Period effects and time-varying covariates ------------------------------------------------

def trending_months(seed: int, n_teams: int = 40) -> pd.DataFrame:
    """Every team's safety rises and every team's TTR falls over the year for reasons of their
    own (better tooling): safety has no effect at all."""
    rng = np.random.default_rng(seed)
    rows = []
    for team in range(n_teams):
        level, effect = rng.normal(), rng.normal(0, 0.3)
        for period in range(12):
            s = level + 0.15 * period + rng.normal(0, 0.25)
            rows.append({"team": f"T{team}", "period_month": period, "safety_z": s, "headcount": 8,
                         "y": 8 - 0.06 * period + effect + rng.normal(0, 0.3)})
    return pd.DataFrame(rows)


def test_a_common_time_trend_is_not_read_as_a_safety_effect():
    data = trending_months(seed=10)
    within, between = team_month_gaussian(data, "y", "y")[0]
    assert covers(within, 0.0) and covers(between, 0.0)
    assert "quarter FE" in within.model
    # Without period effects the same data show a clear within-team "effect" of safety.
    split = data.assign(safety_between=data.groupby("team")["safety_z"].transform("mean"))
    split["safety_within"] = split["safety_z"] - split["safety_between"]
    naive = sm.OLS(split["y"], sm.add_constant(split[["safety_within", "safety_between"]])).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(split["team"])[0]})
    assert naive.conf_int().loc["safety_within", 1] < 0


def moving_headcount_months(seed: int, n_teams: int = 60) -> pd.DataFrame:
    """Teams grow and shrink; a team getting bigger gets less safe and slower. Bigger teams also
    differ in ways nothing measures (their own intercept rises with their average size), so
    only a within-team comparison of headcount separates its effect from the team's."""
    rng = np.random.default_rng(seed)
    rows = []
    for team in range(n_teams):
        base = rng.normal(np.log(9), 0.4)
        effect = 1.5 * (base - np.log(9)) + rng.normal(0, 0.2)
        for period in range(12):
            log_headcount = base + rng.normal(0, 0.25)
            s = rng.normal() * 0.3 - 0.8 * (log_headcount - base) + 0.5 * rng.normal()
            rows.append({"team": f"T{team}", "period_month": period, "safety_z": s,
                         "headcount": np.exp(log_headcount),
                         "y": -0.25 * s + 0.4 * (log_headcount - base) + effect + rng.normal(0, 0.3)})
    return pd.DataFrame(rows)


def test_headcount_is_split_within_and_between_like_safety():
    data = moving_headcount_months(seed=12)
    within, _ = team_month_gaussian(data, "y", "y")[1]  # the clustered OLS
    assert covers(within, -0.25)
    assert "log_headcount_within + log_headcount_between" in within.model
    # One pooled headcount coefficient mixes the within effect with the teams' size bias and
    # pushes it into within-team safety.
    pooled = data.assign(log_headcount=np.log(data["headcount"]),
                         safety_between=data.groupby("team")["safety_z"].transform("mean"))
    pooled["safety_within"] = pooled["safety_z"] - pooled["safety_between"]
    naive = sm.OLS(pooled["y"], sm.add_constant(pooled[["safety_within", "safety_between", "log_headcount"]])).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(pooled["team"])[0]})
    low, high = naive.conf_int().loc["safety_within"]
    assert not low < -0.25 < high


# --- Attenuation: reliability-corrected estimates ----------------------------------------------

def measured_months(seed: int, n_teams: int = 150, error_var: float = 0.05) -> pd.DataFrame:
    """True team-wave safety (team part SD 0.95, wave drift SD 0.25) drives the KPI; the model
    sees each wave through a survey mean with error variance ``error_var``, shared by the three
    months that follow the wave."""
    rng = np.random.default_rng(seed)
    rows = []
    for team in range(n_teams):
        level, effect = rng.normal(0, 0.95), rng.normal(0, 0.3)
        for wave in range(4):
            true = level + rng.normal(0, 0.25)
            measured = true + rng.normal(0, np.sqrt(error_var))
            for month in range(3):
                rows.append({"team": f"T{team}", "period_month": 3 * wave + month, "safety_z": measured,
                             "safety_error_var": error_var, "safety_wave": wave, "headcount": 8,
                             "y": -0.25 * true + effect + rng.normal(0, 0.3)})
    return pd.DataFrame(rows)


def test_the_reliability_corrected_estimate_recovers_what_measurement_error_attenuates():
    within, between = team_month_gaussian(measured_months(seed=13), "y", "y")[1]
    # Within a team, true drift (variance 0.0625) against error (0.05 less its team-mean part):
    # reliability about 0.6, so the plain estimate sits near 60% of the truth.
    assert 0.5 < within.reliability < 0.7 and within.ci_low > -0.25
    assert 0.4 < within.estimate / -0.25 < 0.75
    assert within.ci_low_corrected < -0.25 < within.ci_high_corrected
    assert between.reliability > 0.95 and between.ci_low_corrected < -0.25 < between.ci_high_corrected
    # The corrected interval is the plain one stretched: the same test, a wider interval.
    assert (within.ci_high_corrected - within.ci_low_corrected) > (within.ci_high - within.ci_low)


def test_without_measurement_error_the_corrected_estimate_is_the_plain_one():
    within, between = team_month_gaussian(measured_months(seed=14, error_var=0.0), "y", "y")[1]
    for estimate in (within, between):
        assert estimate.reliability == pytest.approx(1.0)
        assert estimate.estimate_corrected == pytest.approx(estimate.estimate)


def test_the_corrected_estimate_is_per_sd_of_true_safety():
    data = measured_months(seed=15, error_var=0.05)
    plain = team_month_gaussian(data, "y", "y")[1][1]
    rescaled = team_month_gaussian(data, "y", "y", reference_reliability=0.64)[1][1]
    assert rescaled.estimate == plain.estimate
    assert rescaled.estimate_corrected == pytest.approx(plain.estimate_corrected * 0.8)


# --- Power -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_an_effect_of_the_detectable_size_is_found_about_80_percent_of_the_time():
    [reference] = incident_log_time(simulate_incidents(seed=20).rename(columns={"ttr_seconds": "ttd_seconds"}), TTD)
    size = reference.min_detectable_effect
    assert 0 < size < 0.5
    found = []
    for seed in range(21, 141):
        data = simulate_incidents(seed, beta=-size).rename(columns={"ttr_seconds": "ttd_seconds"})
        found.append(incident_log_time(data, TTD)[0].p_value < 0.05)
    # Power 80% at the detectable size (the standard error varies a little between draws):
    # 120 draws, 3 binomial SDs.
    assert abs(np.mean(found) - 0.80) < 3 * np.sqrt(0.8 * 0.2 / 120) + 0.03


# --- The registry drives the families ------------------------------------------------------------

def test_a_new_kpi_is_data_the_families_fit():
    # A count KPI the registry does not ship: tickets per head, fitted by the count family.
    months = poisson_months(seed=16).rename(columns={"incidents": "tickets"})
    new = Kpi("tickets per head", Family.TEAM_MONTH_COUNT, "tickets", "tickets / headcount-months",
              Reading("raised", "{change} tickets per person", "fewer", "more"), denominator=("headcount",))
    table = kpi_safety_effects(months, pd.DataFrame(columns=["team", "period_month"]), kpis=(new,))
    assert list(table["kpi"]) == ["tickets per head"] * 2
    assert set(table["scale"]) == {"log rate ratio per SD"}
    assert table["q_value"].notna().all()


def test_standardise_uses_the_reference_distribution():
    reference = pd.Series([1.0, 2.0, 3.0])
    assert standardise(pd.Series([3.0]), reference).iloc[0] == pytest.approx(1.0)


def test_team_bootstrap_interval_covers_the_true_correlation():
    rng = np.random.default_rng(5)
    rho = 0.5
    x = rng.normal(size=60)
    y = rho * x + np.sqrt(1 - rho**2) * rng.normal(size=60)
    r, low, high, p = astuple(team_bootstrap_correlation(pd.DataFrame({"x": x, "y": y}), "x", "y", seed=1))
    assert r == pytest.approx(np.corrcoef(x, y)[0, 1])
    assert low < rho < high and low > 0
    assert high - low < 0.6
    assert p == pytest.approx(stats.pearsonr(x, y).pvalue, rel=1e-9)


def test_a_partial_correlation_given_a_constant_is_the_plain_one_and_given_its_cause_none():
    rng = np.random.default_rng(6)
    size = rng.normal(size=30)
    teams = pd.DataFrame({"x": -0.8 * size + rng.normal(0, 0.5, 30), "y": 0.8 * size + rng.normal(0, 0.5, 30),
                          "size": size, "same_size": 3.0, "x_itself": 0.0})
    teams["x_itself"] = teams["x"] * 2 + 1
    plain = team_bootstrap_correlation(teams, "x", "y")
    assert team_bootstrap_correlation(teams, "x", "y", given="same_size") == plain  # adjusting for nothing
    adjusted = team_bootstrap_correlation(teams, "x", "y", given="size")
    assert plain.r < -0.5 and plain.p_value < 0.001 and abs(adjusted.r) < 0.3 and adjusted.p_value > 0.05
    # Given a column that is x itself, nothing of x is left to correlate.
    assert np.isnan(astuple(team_bootstrap_correlation(teams, "x", "y", given="x_itself"))).all()


def test_bootstrap_with_too_few_teams_is_nan():
    correlation = team_bootstrap_correlation(pd.DataFrame({"x": [1.0, 2.0], "y": [2.0, 1.0]}), "x", "y")
    assert np.isnan(astuple(correlation)).all()


def test_a_kpi_the_same_for_every_team_has_no_correlation_and_says_why():
    # A site that records no post-incident reviews: every team's share is 0.
    teams = pd.DataFrame({"x": [0.1, -0.4, 1.2, 0.3], "y": [0.0] * 4})
    assert np.isnan(astuple(team_bootstrap_correlation(teams, "x", "y"))).all()
    months = org_frames(generate(OrgSpec(seed=2, n_teams=6, n_months=6)))[0]
    months = months.assign(safety_lagged=months["safety_z"], repeat_incidents=0, n_ttr=1, n_tta=1)
    [row] = [r for r in correlation_table(months).itertuples() if r.kpi == "repeat incident share"]
    assert np.isnan(row.r) and row.n_teams == 6
    assert "repeat incident share is the same for every team: no correlation to estimate" in row.warnings
    assert correlation_sentence(row).startswith(
        "No correlation between safety and shares of incidents that repeat a recent one can be estimated: "
        "across 6 teams")


# --- Degenerate data: a KPI or a score that does not vary, too few teams, nothing published -----

TTR_MONTHS = KPI_BY_NAME["log median TTR"]
NO_INCIDENTS = pd.DataFrame(columns=["team", "period_month"])


def test_a_kpi_that_does_not_vary_has_no_estimate_and_stays_out_of_the_bh_correction():
    # Every team-month's median TTR is 3600 s: its log is the same number everywhere, and a fit
    # finds only floating-point noise, which must not read as a finding.
    months = poisson_months(seed=21, n_teams=30).assign(ttr_median_seconds=3600.0, n_ttr=3)
    table = kpi_safety_effects(months, NO_INCIDENTS, kpis=(TTR_MONTHS, INCIDENTS))
    ttr = table[table["kpi"] == TTR_MONTHS.name]
    assert len(ttr) and ttr["estimate"].isna().all() and ttr["ci_low"].isna().all()
    assert ttr["p_value"].isna().all() and ttr["q_value"].isna().all()
    assert all("log(ttr_median_seconds) does not vary" in w for w in ttr["warnings"])
    # The other KPI's q-values are those of a correction without the noise rows.
    alone = kpi_safety_effects(months, NO_INCIDENTS, kpis=(INCIDENTS,))
    np.testing.assert_allclose(table.loc[table["kpi"] == INCIDENTS.name, "q_value"], alone["q_value"])
    # Incident level: every resolved incident took 3600 s.
    incidents = simulate_incidents(seed=22, n_teams=20)
    incidents["ttr_seconds"] = 3600.0
    incidents["ttd_seconds"] = 60.0
    [aft] = incident_time_to_event(incidents, TTR)
    [ols] = incident_log_time(incidents, TTD)
    for row in (aft, ols):
        assert np.isnan(row.estimate) and np.isnan(row.ci_low) and "does not vary" in row.warnings


def test_times_of_0_a_log_fit_leaves_out_are_counted_on_the_kpis_rows():
    # An onset in the trigger's own second is a TTD of 0 s: the mart counts it, the log fit
    # cannot, and the row must say how many it left out rather than drop them silently.
    incidents = simulate_incidents(seed=25).rename(columns={"ttr_seconds": "ttd_seconds"})
    incidents.loc[incidents.index[::50], "ttd_seconds"] = 0.0
    zeros = int((incidents["ttd_seconds"] == 0).sum())
    [row] = kpi_safety_effects(NO_INCIDENTS, incidents, kpis=(TTD,)).itertuples()
    assert f"{zeros} incidents with a ttd_seconds of 0 left out" in row.warnings
    [positive] = incident_log_time(incidents[incidents["ttd_seconds"] > 0], TTD)
    assert row.estimate == positive.estimate and row.n_obs == len(incidents) - zeros
    # Team-months likewise, on every row of the KPI (main and cross-check, each construct).
    rng = np.random.default_rng(26)
    months = poisson_months(seed=26).assign(n_ttr=3)
    months["ttr_median_seconds"] = np.exp(8 - 0.2 * months["safety_z"] + rng.normal(0, 0.5, len(months)))
    months.loc[months.index[:3], "ttr_median_seconds"] = 0.0
    table = kpi_safety_effects(months, NO_INCIDENTS, kpis=(TTR_MONTHS,))
    assert len(table) > 1
    assert all("3 team-months with a ttr_median_seconds of 0 left out" in w for w in table["warnings"])
    # The correlation table pools a team's months the same way, leaving the same months out.
    org = org_frames(generate(OrgSpec(seed=2, n_teams=12, n_months=6)))[0]
    org = org.assign(safety_lagged=org["safety_z"], ttr_median_seconds=rng.uniform(60, 7200, len(org)), n_ttr=2, n_tta=1)
    org.loc[org.index[:3], "ttr_median_seconds"] = 0.0
    [correlation] = [r for r in correlation_table(org).itertuples() if r.kpi == TTR_MONTHS.name]
    assert "3 team-months with a ttr_median_seconds of 0 left out" in correlation.warnings
    # Without zeros, no such words.
    months["ttr_median_seconds"] = months["ttr_median_seconds"].where(months["ttr_median_seconds"] > 0, 60.0)
    assert not kpi_safety_effects(months, NO_INCIDENTS, kpis=(TTR_MONTHS,))["warnings"].str.contains("left out").any()


def test_a_kpi_the_same_for_every_team_up_to_rounding_has_no_correlation():
    rng = np.random.default_rng(23)
    # The weighted mean of log(3600) over a team's months differs from it in the last bits.
    teams = pd.DataFrame({"x": rng.normal(size=12), "y": np.log(3600) + rng.integers(-1, 2, 12) * 8.9e-16})
    assert teams["y"].nunique() > 1
    assert np.isnan(astuple(team_bootstrap_correlation(teams, "x", "y"))).all()
    months = org_frames(generate(OrgSpec(seed=2, n_teams=12, n_months=6)))[0]
    rng = np.random.default_rng(24)
    months = months.assign(safety_lagged=months["safety_z"], ttr_median_seconds=3600.0,
                           n_ttr=rng.integers(1, 9, len(months)), n_tta=1)
    [row] = [r for r in correlation_table(months).itertuples() if r.kpi == "log median TTR"]
    assert np.isnan(row.r) and np.isnan(row.ci_low)
    assert "log median TTR is the same for every team: no correlation to estimate" in row.warnings


def correlation_months(n_teams: int) -> pd.DataFrame:
    months = org_frames(generate(OrgSpec(seed=2, n_teams=n_teams, n_months=6)))[0]
    return months.assign(safety_lagged=months["safety_z"], n_ttr=1, n_tta=1)


def test_correlations_on_too_few_teams_to_test_have_no_interval_and_say_so():
    rng = np.random.default_rng(25)
    x = rng.normal(size=4)
    r, low, high, p = astuple(team_bootstrap_correlation(pd.DataFrame({"x": x, "y": x + rng.normal(0, 0.1, 4)}),
                                                         "x", "y"))
    assert r > 0.9 and np.isnan(low) and np.isnan(high) and np.isnan(p)
    rows = [r for r in correlation_table(correlation_months(5)).itertuples() if np.isfinite(r.r)]
    assert rows
    for row in rows:
        assert row.n_teams < MIN_TEAMS_FOR_TESTS and np.isnan(row.ci_low) and np.isnan(row.ci_high)
        assert f"too few to test (fewer than {MIN_TEAMS_FOR_TESTS}): no interval" in row.warnings
        assert "team-clustered" not in row.warnings and "optimistic" not in row.warnings
        sentence = correlation_sentence(row)
        assert "too few to test" in sentence and "safer teams had" not in sentence and "95% CI" not in sentence
    # From MIN_TEAMS_FOR_TESTS teams on there is an interval, and the warning names the bootstrap, not
    # clustered errors (this table has none).
    for row in correlation_table(correlation_months(12)).itertuples():
        if np.isfinite(row.r):
            assert np.isfinite(row.ci_low) and "team-clustered" not in row.warnings
            assert f"resampling {row.n_teams} teams" in row.warnings


def test_a_between_team_part_with_no_degrees_of_freedom_left_has_no_interval():
    # Three teams, three team-level coefficients (constant, safety between, log headcount between):
    # the team means are fitted exactly and a clustered interval would have zero width.
    within, between = team_month_count(poisson_months(seed=26, n_teams=3), INCIDENTS)
    assert np.isnan([between.estimate, between.ci_low, between.ci_high, between.min_detectable_effect]).all()
    assert "not estimable" in between.warnings and "no degrees of freedom" in between.warnings
    assert np.isfinite(within.ci_low) and within.ci_low < within.ci_high


def one_wave_months(seed: int, rows_per_team: tuple[int, ...], moving_team: int | None = None) -> pd.DataFrame:
    """Teams surveyed once so far (safety and accountability constant within the team, but for
    ``moving_team``), with incident counts and a continuous KPI ``y``."""
    rng = np.random.default_rng(seed)
    rows = []
    for team, n in enumerate(rows_per_team):
        safety, accountability = rng.normal(), rng.normal()
        for period in range(n):
            moves = team == moving_team and period > 0
            rows.append({"team": f"T{team}", "period_month": period, "headcount": 8, "incidents": rng.poisson(4),
                         "safety_z": safety + (rng.normal(0, 0.3) if moves else 0.0),
                         "accountability_z": accountability + (rng.normal(0, 0.3) if moves else 0.0),
                         "y": np.exp(rng.normal())})
    return pd.DataFrame(rows)


def test_small_organisations_report_not_estimable_instead_of_failing_the_run():
    from assets.models.design import INTERACTION_MODEL, SAFETY_MODEL
    y = Kpi("y", Family.TEAM_MONTH_LOG_TIME, "y", "y", Reading("had", "{change} y", "less", "more"))
    # 3 teams x 3 months: the interaction model's four team-level columns span only three team
    # means (a singular Hessian in the clustered Poisson); 4 teams, 9 rows: as many columns as rows
    # (a division by zero in the clustered OLS).
    for months in (one_wave_months(0, (3, 3, 3)), one_wave_months(0, (1, 2, 3, 3), moving_team=2)):
        table = kpi_safety_effects(months, NO_INCIDENTS, kpis=(INCIDENTS, y), models=(SAFETY_MODEL,
                                                                                       INTERACTION_MODEL))
        missing = table[table["estimate"].isna()]
        assert len(missing) and table["kpi"].nunique() == 2
        assert all("not estimable" in w or "too few" in w for w in missing["warnings"]), set(missing["warnings"])
        # No interval of zero width anywhere.
        has = table["ci_low"].notna()
        assert (table.loc[has, "ci_high"] - table.loc[has, "ci_low"] > 1e-6).all()


def survey_marts(safety: str) -> duckdb.DuckDBPyConnection:
    """The marts the models read, for an organisation of 8 teams x 9 months whose survey published
    nothing (``safety="suppressed"``: every team-wave under the anonymity minimum) or gave every
    published team-wave the same mean (``safety="same"``)."""
    months, incidents = org_frames(generate(OrgSpec(seed=3, n_teams=8, n_months=9)))
    start = pd.Timestamp("2024-01-01")
    month = lambda index: start + pd.DateOffset(months=int(index))  # noqa: E731
    months = months.assign(period_month=months["period_month"].map(month), n_ttr=1, n_tta=1)
    wave = months["period_month"].dt.to_period("Q").dt.start_time - pd.DateOffset(months=3)
    published = safety == "same"
    months = months.assign(safety_lagged=5.0 if published else np.nan, safety_wave_quarter=wave,
                           is_safety_wave_stale=False)
    months = months.drop(columns=[c for c in months if c.endswith("_z")])
    cells = months[["team", "safety_wave_quarter"]].drop_duplicates().rename(
        columns={"safety_wave_quarter": "wave_quarter"}).assign(
        scale="psychological_safety", is_suppressed=not published, n_respondents=6 if published else None,
        score_mean=5.0 if published else None, score_sd=1.0 if published else None)
    scores = months[["team", "period_month", "safety_wave_quarter", "safety_lagged"]].rename(
        columns={"safety_wave_quarter": "wave_quarter", "safety_lagged": "score_lagged"}).assign(
        scale="psychological_safety", is_wave_stale=False).query("score_lagged.notna()")
    triggered = incidents["period_month"].map(month) + pd.Timedelta(hours=1)
    incidents = pd.DataFrame({
        "incident_id": [f"P{i}" for i in range(len(incidents))], "team": incidents["team"],
        "period_month": incidents["period_month"].map(month), "ttr_seconds": incidents["ttr_seconds"],
        "ttd_seconds": incidents["ttd_seconds"], "is_open": incidents["ttr_seconds"].isna(),
        "triggered_at": triggered, "acknowledged_at": triggered,
        "resolved_at": triggered + pd.to_timedelta(incidents["ttr_seconds"], unit="s")})
    conn = duckdb.connect()
    conn.execute("create schema marts; create schema intermediate")
    for name, frame in (("marts.mart_team_month", months), ("marts.fct_team_survey_waves", cells),
                        ("marts.fct_team_month_survey_scores", scores), ("marts.fct_incidents", incidents),
                        # The frozen cells as today's team map attributes them: the same teams here.
                        ("intermediate.int_team_survey_waves", cells)):
        conn.register("frame", frame)
        conn.execute(f"create table {name} as select * from frame")
        conn.unregister("frame")
    return conn


def test_when_every_team_wave_is_suppressed_every_row_says_there_is_no_reportable_safety_score():
    with survey_marts("suppressed") as conn:
        inputs = read_model_inputs(conn)
        correlations = correlation_table(conn.sql(TEAM_MONTHS_SQL).df(), safety_unusable_reason(conn))
    table = kpi_safety_effects(inputs.months, inputs.incidents, inputs.reference_reliability, models=inputs.models,
                               unusable=inputs.unusable)
    assert len(table) and table["estimate"].isna().all() and table["q_value"].isna().all()
    said = "no team has a reportable safety score (all 24 team-waves of the survey are suppressed for anonymity"
    assert all(said in w for w in table["warnings"]), set(table["warnings"])
    assert len(correlations) and correlations["r"].isna().all()
    assert all(said in w and "team-clustered" not in w for w in correlations["warnings"])


def test_when_safety_does_not_vary_every_row_says_so_instead_of_no_data():
    with survey_marts("same") as conn:
        inputs = read_model_inputs(conn)
    table = kpi_safety_effects(inputs.months, inputs.incidents, inputs.reference_reliability, models=inputs.models,
                               unusable=inputs.unusable)
    assert len(table) and table["estimate"].isna().all()
    said = "the safety score is the same (5.00) in every published team-wave, so nothing can be estimated"
    assert all(said in w and "no data" not in w for w in table["warnings"]), set(table["warnings"])
    # The model string names a model, not an empty formula.
    assert all("~ (" not in m and "~  " not in m for m in table["model"])
    assert table["n_teams"].max() == 8


def test_an_empty_design_names_its_terms_not_an_empty_formula():
    empty = design(model_rows(poisson_months(seed=29, n_teams=3).iloc[:0], ["incidents"]), split=True)
    formula = empty.formula("incidents")
    assert formula.startswith("incidents ~ safety_within + safety_between") and "left out" not in formula


def test_a_correlation_row_resting_on_no_team_says_so_without_counting_zero_teams():
    assert correlation_warning(0) == "no team has both a safety score and this KPI yet: no correlation"
    assert "only 2 teams" in correlation_warning(2)
