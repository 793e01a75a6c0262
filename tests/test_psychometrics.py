"""Survey psychometrics against published and hand-computed answers, and the anonymity rule."""

import numpy as np
import pandas as pd
import pytest

from assets.models.psychometrics import (
    cronbach_alpha,
    group_reliability,
    icc_from_f,
    published_mean_with_ci,
    rwg_j,
    rwg_j_by_group,
    survey_wave_tables,
    wave_suppression,
)


def test_edmondson_1999_icc_from_the_published_f():
    # F(50, 427) = 6.98: 51 teams and 478 respondents, so the design's group size k = 478 / 51.
    icc1, icc2 = icc_from_f(6.98, (427 + 51) / 51)
    assert round(icc1, 2) == 0.39
    assert round(icc2, 2) == 0.86


def test_cronbach_alpha_hand_computed():
    items = np.array([[1, 2, 2], [2, 2, 3], [3, 4, 4], [4, 4, 5]])
    # Item variances 5/3, 4/3, 5/3 (sum 14/3); sum scores 5, 7, 11, 13 have variance 40/3.
    # alpha = 3/2 * (1 - (14/3) / (40/3)) = 1.5 * 0.65
    assert cronbach_alpha(items) == pytest.approx(0.975)
    with pytest.raises(ValueError, match="complete"):
        cronbach_alpha(np.array([[1, np.nan], [2, 3]]))


def test_rwg_j_hand_computed_on_a_five_point_scale():
    # Item variances 1 and 0 (mean 0.5) against sigma2_EU = (25 - 1)/12 = 2: ratio 0.25;
    # rwg(2) = 2 * 0.75 / (2 * 0.75 + 0.25) = 6/7.
    team = np.array([[3, 4], [4, 4], [5, 4]])
    assert rwg_j(team, scale_points=5) == pytest.approx(6 / 7)
    # Skipped answers use each item's own answers; perfect agreement is 1.
    assert rwg_j(np.array([[4, 4], [4, np.nan], [4, 4]]), scale_points=7) == pytest.approx(1.0)
    # More spread than the uniform null: no agreement, reported as 0, not a negative index.
    assert rwg_j(np.array([[1, 1], [5, 5], [1, 1], [5, 5]]), scale_points=5) == 0.0


def test_rwg_j_by_group_equals_rwg_j_on_each_group():
    hand = [[3, 4], [4, 4], [5, 4]]  # 6/7 on a five-point scale, as above
    skipped = [[4, 4], [4, np.nan], [4, 4]]  # perfect agreement despite a skipped answer
    spread = [[1, 1], [5, 5], [1, 1], [5, 5]]  # beyond the uniform null: 0
    answered_once = [[2, np.nan], [3, 4], [4, np.nan]]  # an item with one answer: NaN
    rng = np.random.default_rng(3)
    # Random teams of 2..20 (sizes shared by several teams), a tenth of answers skipped.
    noisy = [np.where(rng.random((n, 2)) < 0.1, np.nan, rng.integers(1, 6, (n, 2))) for n in rng.integers(2, 21, 40)]
    teams = [np.array(t, dtype=float) for t in [hand, skipped, spread, answered_once, *noisy]]
    items = np.vstack(teams)
    groups = np.repeat(np.arange(len(teams)), [len(t) for t in teams])
    order = rng.permutation(len(items))  # respondents of a team need not be adjacent
    result = rwg_j_by_group(items[order], groups[order], len(teams) + 1, scale_points=5)
    expected = [rwg_j(items[order][groups[order] == g], scale_points=5) for g in range(len(teams))]
    np.testing.assert_array_equal(result[:-1], expected)  # exact: the same sums in the same order
    assert result[0] == pytest.approx(6 / 7) and result[1] == 1.0 and result[2] == 0.0
    assert np.isnan(result[3]) and np.isnan(result[-1])  # the last group has no respondents
    assert np.isfinite(result[4:-1]).any() and np.isnan(result[4:-1]).any()


def test_icc_from_a_hand_computed_anova():
    # Teams A = [1, 2, 3], B = [4, 5, 6]: MSB = 3 * (1.5^2 + 1.5^2) = 13.5, MSW = 4/4 = 1, k = 3.
    result = group_reliability(pd.Series([1, 2, 3, 4, 5, 6]), pd.Series(list("AAABBB")))
    assert result["f"] == pytest.approx(13.5)
    assert result["k"] == pytest.approx(3.0)
    assert result["icc1"] == pytest.approx(12.5 / 15.5)
    assert result["icc2"] == pytest.approx(1 - 1 / 13.5)


def test_unequal_team_sizes_use_the_adjusted_group_size():
    result = group_reliability(pd.Series([1, 2, 3, 4, 5, 6, 7]), pd.Series(list("AABBBBB")))
    assert result["k"] == pytest.approx((7 - (4 + 25) / 7) / 1)


def _persons(sizes: dict[str, int], scale: str = "psychological_safety") -> pd.DataFrame:
    """Scored respondents of one wave with spread scores (2..6 in turn)."""
    return pd.DataFrame([{"team": team, "scale": scale, "person_score": 2.0 + i % 5}
                         for team, size in sizes.items() for i in range(size)])


@pytest.mark.parametrize(
    "sizes, hidden",
    [
        ({"A": 3, "B": 10, "C": 7, "D": 20}, {"A", "C"}),  # one small cell: the next smallest goes too
        ({"A": 1, "B": 2, "C": 9}, {"A", "B", "C"}),  # two small cells still pool fewer than 5 people
        ({"A": 2, "B": 2, "C": 2, "D": 8}, {"A", "B", "C"}),  # three small cells pool 6: enough
        ({"A": 5, "B": 6}, set()),
    ],
)
def test_suppression_adds_the_next_smallest_sibling(sizes, hidden):
    reasons = wave_suppression(_persons(sizes)).hidden
    assert set(reasons) == hidden
    assert all(("fewer than 5" in reasons[c]) == (sizes[c] < 5) for c in reasons)


def _answers(team_sizes: dict[str, int], wave="2024-01-01", seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for t, (team, size) in enumerate(team_sizes.items()):
        for person in range(size):
            for item in range(1, 8):
                rows.append({"response_id": f"{wave}-{team}-{person}", "team": team,
                             "wave_quarter": pd.Timestamp(wave), "item_set": "psychological_safety", "item_no": item,
                             "score": int(np.clip(2 + t + rng.integers(-1, 2), 1, 7))})
    return pd.DataFrame(rows)


def test_subtraction_attack_cannot_recover_a_suppressed_cell():
    answers = _answers({"Small": 3, "Mid": 7, "Big": 10, "Huge": 20})
    cells, waves = survey_wave_tables(answers, scale_points=7)
    published = cells[~cells["is_suppressed"]]
    assert set(cells.loc[cells["is_suppressed"], "team"]) == {"Small", "Mid"}
    assert cells.loc[cells["is_suppressed"], ["n_respondents", "score_mean", "score_sd", "rwg_j"]].isna().all().all()
    wave = waves.iloc[0]
    # The attacker subtracts every published cell from every published wave total.
    residual_n = wave["n_respondents"] - published["n_respondents"].sum()
    residual_mean = (wave["n_respondents"] * wave["score_mean"]
                     - (published["n_respondents"] * published["score_mean"]).sum()) / residual_n
    persons = answers.groupby(["response_id", "team"])["score"].mean().reset_index()
    small = persons[persons["team"] == "Small"]["score"]
    assert residual_n == 10 != len(small)  # only the pooled Small + Mid is revealed
    assert residual_mean != pytest.approx(small.mean())
    assert wave["n_respondents_published"] == published["n_respondents"].sum()
    # Alpha and ICC are computed over the published cells only.
    assert wave["anova_df_between"] == 1


def test_a_wave_too_small_overall_hides_its_total_too():
    cells, waves = survey_wave_tables(_answers({"A": 2, "B": 2}), scale_points=7)
    assert cells["is_suppressed"].all()
    assert pd.isna(waves.iloc[0]["n_respondents"]) and pd.isna(waves.iloc[0]["score_mean"])


def test_respondents_with_fewer_than_five_items_are_not_scored():
    answers = _answers({"A": 6})
    partial = answers[~((answers["response_id"].str.endswith("-0")) & (answers["item_no"] > 4))]
    cells, _ = survey_wave_tables(partial, scale_points=7)
    assert cells.iloc[0]["n_respondents"] == 5


def test_team_wave_figures_equal_the_per_team_formulas():
    answers = pd.concat([_answers({"A": 12, "B": 9, "C": 6, "D": 3}, seed=1),
                         _answers({"A": 8, "B": 11, "C": 5, "E": 20}, wave="2024-04-01", seed=2)])
    rng = np.random.default_rng(4)
    answers = answers[rng.random(len(answers)) > 0.1]  # skipped answers; some respondents drop under 5 items
    cells, _ = survey_wave_tables(answers, scale_points=7)
    persons = answers.groupby(["response_id", "team", "wave_quarter"])["score"].agg(["size", "mean"])
    persons = persons[persons["size"] >= 5]
    wide = answers.pivot_table(index=["response_id", "team", "wave_quarter"], columns="item_no", values="score")
    published = cells[~cells["is_suppressed"]]
    assert len(published) == 6
    for cell in published.itertuples():
        scores = persons.xs((cell.team, cell.wave_quarter), level=("team", "wave_quarter"))["mean"]
        items = wide.xs((cell.team, cell.wave_quarter), level=("team", "wave_quarter")).loc[scores.index]
        assert (cell.n_respondents, cell.score_mean, cell.score_sd) == (len(scores), scores.mean(), scores.std())
        assert cell.rwg_j == rwg_j(items.to_numpy(), scale_points=7)


def test_a_cell_without_spread_is_suppressed_since_each_score_would_show():
    persons = _persons({"A": 6, "B": 7, "C": 9, "D": 12})
    persons.loc[persons["team"] == "A", "person_score"] = 7.0  # every respondent at the scale's top
    reasons = wave_suppression(persons).hidden
    assert reasons["A"].startswith("no variation") and reasons["B"].startswith("complementary")
    assert set(reasons) == {"A", "B"}


def test_pooled_suppressed_cells_with_equal_scores_pull_in_another_cell():
    persons = _persons({"A": 3, "B": 6, "C": 8, "D": 12})
    persons.loc[persons["team"].isin(["A", "B"]), "person_score"] = 4.0  # A and B pooled: all 4.0
    reasons = wave_suppression(persons).hidden
    assert set(reasons) == {"A", "B", "C"}
    assert "pooled scores would all be equal" in reasons["C"]


def test_hr_headcounts_that_would_pin_a_suppressed_cells_size_pull_in_another_cell():
    sizes = {"A": 4, "B": 5, "C": 8, "D": 12}
    # Without headcounts: A has 1..4 respondents, B 5 or more, pooled 9: A in 1..4, B in 5..8.
    assert set(wave_suppression(_persons(sizes)).hidden) == {"A", "B"}
    # B's team has 5 people: B <= 5, so A = 9 - 5 = 4 exactly. C goes too.
    reasons = wave_suppression(_persons(sizes), headcount={"A": 6, "B": 5, "C": 9, "D": 15}).hidden
    assert set(reasons) == {"A", "B", "C"} and "pin a suppressed cell's size" in reasons["C"]


def test_a_team_suppressed_in_one_scale_is_suppressed_in_every_scale():
    persons = pd.concat([_persons({"A": 6, "B": 7, "C": 9}),
                         _persons({"A": 4, "B": 7, "C": 9}, scale="accountability")])
    decision = wave_suppression(persons)
    assert decision.hidden["A"] == "fewer than 5 respondents" and set(decision.hidden) == {"A", "B"}
    cells, waves = survey_wave_tables(
        pd.DataFrame([{"response_id": f"{team}{i}-{row.scale}", "team": team, "wave_quarter": pd.Timestamp("2024-01-01"),
                       "item_set": row.scale, "item_no": item, "score": row.person_score}
                      for i, row in enumerate(persons.itertuples()) for team in [row.team]
                      for item in range(1, 8 if row.scale == "psychological_safety" else 5)]), scale_points=7)
    assert cells.groupby(["team"])["is_suppressed"].nunique().eq(1).all()
    assert set(cells.loc[cells["is_suppressed"], "team"]) == {"A", "B"}
    assert set(waves["scale"]) == {"psychological_safety", "accountability"}


def test_when_no_cell_is_left_to_suppress_the_wave_total_is_withheld():
    decision = wave_suppression(_persons({"A": 3, "B": 6}))
    assert set(decision.hidden) == {"A", "B"} and decision.totals_hidden == set()
    persons = _persons({"A": 3, "B": 6})
    persons["person_score"] = 5.0  # every score equal: the wave total itself would show them
    decision = wave_suppression(persons)
    assert set(decision.hidden) == {"A", "B"} and decision.totals_hidden == {"psychological_safety"}


def test_published_mean_and_its_team_clustered_interval_by_hand():
    # Teams of 5 and 15 with means 4 and 6: mean (20 + 90) / 20 = 5.5. Its interval would be
    # 5.5 +- t(1) 12.706 x SE 0.75, -4.0 to 15.0 on a 1-7 scale: none below 10 teams (sixth trial,
    # S5; the interval from 10 teams by hand: tests/test_report_few_teams.py).
    mean, low, high = published_mean_with_ci(pd.Series([5, 15]), pd.Series([4.0, 6.0]))
    assert mean == 5.5
    assert np.isnan(low) and np.isnan(high)
