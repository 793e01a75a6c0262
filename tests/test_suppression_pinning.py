"""Suppression against a reader who computes from the published survey figures (privacy trial,
s7, P3): a cell whose respondents all gave one score but one, with a published n, mean and sd
that fit no other multiset of person scores (four people at 7 and one at 6 on the 1/7 grid),
shows each person's score as an all-equal cell does; a pool of suppressed cells whose size and
mean do that (all at the top but one an answer below) likewise.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from assets.models import psychometrics
from assets.models.psychometrics import (
    PRIMARY,
    survey_wave_tables,
)

WAVE = date(2024, 10, 1)


def _answers(people: dict[str, list[list[int]]], wave=WAVE, scale="psychological_safety") -> pd.DataFrame:
    """Long answers from each team's respondents' answers (one list per respondent, item 1 on)."""
    return pd.DataFrame([(f"{team}-{j}", team, pd.Timestamp(wave), scale, k + 1, a)
                         for team, respondents in people.items() for j, answers in enumerate(respondents)
                         for k, a in enumerate(answers)],
                        columns=["response_id", "team", "wave_quarter", "item_set", "item_no", "score"])


def _spread(sizes: dict[str, int], seed: int = 1) -> dict[str, list[list[int]]]:
    rng = np.random.default_rng(seed)
    return {team: [list(rng.integers(2, 8, 7)) for _ in range(n)] for team, n in sizes.items()}


@lru_cache(maxsize=1)
def _fives_on_the_sevenths() -> np.ndarray:
    """Every multiset of five person scores that answered all 7 items (in sevenths, 7..49)."""
    return np.array(list(itertools.combinations_with_replacement(range(7, 50), 5)), dtype=np.int64)


def _multisets(mean: float, sd: float) -> list[tuple[float, ...]]:
    """Every multiset of 5 person scores of 7 answers each with this mean and sd, by enumeration."""
    combos = _fives_on_the_sevenths()
    means, sds = combos.mean(axis=1) / 7, combos.std(axis=1, ddof=1) / 7
    return [tuple(c / 7) for c in combos[(np.abs(means - mean) < 1e-9) & (np.abs(sds - sd) < 1e-9)]]


def test_a_cell_whose_n_mean_and_sd_fit_one_set_of_scores_is_suppressed():
    """Four people answer 7 to every item and one 6: n 5, mean 6.8, sd 0.447 fit only that."""
    people = {"alpha": [[7] * 7] * 4 + [[6] * 7], **_spread({"t1": 8, "t2": 9, "t3": 8, "t4": 10, "t5": 8})}
    cells, _ = survey_wave_tables(_answers(people), 7)
    alpha = cells.set_index("team").loc["alpha"]
    assert alpha["is_suppressed"]
    assert alpha["suppression_reason"] == psychometrics.SCORES_PINNED
    assert pd.isna(alpha["score_mean"]) and pd.isna(alpha["score_sd"])
    # The complement rule protects it, as for any other primary cell.
    assert cells["suppression_reason"].str.startswith("complementary", na=False).sum() == 1
    # Its published figures, had they been published, fit one multiset: what the rule prevents.
    truth = [7.0, 7.0, 7.0, 7.0, 6.0]
    assert _multisets(np.mean(truth), np.std(truth, ddof=1)) == [(6.0, 7.0, 7.0, 7.0, 7.0)]


def test_a_published_cell_of_five_fits_more_than_one_set_of_scores():
    people = {"alpha": [[7] * 7] * 3 + [[6] * 7, [5] * 7], "beta": [[2] * 7, [3] * 7, [4] * 7, [5] * 7, [6] * 7],
              **_spread({"t1": 8, "t2": 9, "t3": 8})}
    cells, _ = survey_wave_tables(_answers(people), 7)
    published = cells[~cells["is_suppressed"] & (cells["n_respondents"] == 5)]
    assert set(published["team"]) == {"alpha", "beta"}
    for cell in published.itertuples():
        assert len(_multisets(cell.score_mean, cell.score_sd)) > 1, cell.team


def test_one_step_below_the_top_is_pinned_by_the_mean_alone_so_the_pool_takes_another_cell():
    """Two suppressed teams of three: five people at 7 and one at 6 6/7. The wave total minus
    the published cells gives the pool's 6 people and their mean, 7 - 1/42: only one person
    can be below 7, by one answer."""
    people = {"alpha": [[7] * 7] * 3, "bravo": [[7] * 7] * 2 + [[7] * 6 + [6]],
              **_spread({"t1": 8, "t2": 9, "t3": 6, "t4": 10})}
    cells, waves = survey_wave_tables(_answers(people), 7)
    reasons = cells.set_index("team")["suppression_reason"]
    assert reasons["alpha"] == reasons["bravo"] == PRIMARY
    wave = waves.iloc[0]
    shown = cells[~cells["is_suppressed"]]
    pool_n = wave["n_respondents"] - shown["n_respondents"].sum()
    pool_sum = wave["n_respondents"] * wave["score_mean"] - (shown["n_respondents"] * shown["score_mean"]).sum()
    assert (pool_n, round(pool_sum * 7)) != (6, 6 * 49 - 1)  # the attacker's 6 people, 5 at 7 and one at 6 6/7
    assert pool_n == 12 and reasons["t3"] == "complementary: " + psychometrics.POOL_SCORES_PINNED


@pytest.mark.parametrize("answered, n", [((7,), 5), ((5, 6, 7), 3), ((2, 3), 4), ((3, 4), 4)])
def test_the_search_counts_as_enumeration_does(answered, n):
    """_fits_one_set against every multiset of n values of the grid (sums, with and without
    sums of squares)."""
    grid, _ = psychometrics._score_grid(answered, 7)
    pairs, sums = Counter(), Counter()
    for combo in itertools.combinations_with_replacement(grid, n):
        pairs[sum(combo), sum(v * v for v in combo)] += 1
        sums[sum(combo)] += 1
    rng = np.random.default_rng(3)
    keys = list(pairs)
    sample = [keys[i] for i in rng.choice(len(keys), min(len(keys), 4000), replace=False)]
    fits_one_set = psychometrics._fits_one_set
    assert [fits_one_set(grid, n, s, q) for s, q in sample] == [pairs[s, q] == 1 for s, q in sample]
    assert [fits_one_set(grid, n, s, None) for s in sums] == [count == 1 for count in sums.values()]
    assert any(pairs[key] == 1 for key in sample) and any(pairs[key] > 1 for key in sample)
