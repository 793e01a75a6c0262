"""The survey keying check allows for sampling error (README, "Items scored the wrong way round").

In a wave of 10 to 40 responses a correctly keyed reverse-keyed item correlates below 0 with the
rest now and then by chance (r = -0.01 at 17 responses): that wave loads and the check only
warns, saying chance can explain it. An export whose survey tool already reverse-scored the
items gives correlations clearly below 0: that wave is still held back, at 12 responses as at
200."""

import csv
from datetime import UTC, datetime

import numpy as np
import pytest
from survey_exports import SAFETY_ITEMS, SAFETY_REVERSED

from assets.landing.item_sets import ITEM_SETS
from assets.landing.survey import read_survey_exports
from pipelines.synthetic.org import OrgSpec, generate, write_landing

NOW = datetime(2026, 1, 1, tzinfo=UTC)
REVERSE_KEYED_TEXTS = {item.text for item_set in ITEM_SETS.values() for item in item_set.items if item.reverse_keyed}


def generated_survey(tmp_path, seed: int, teams: int, reversed_by_tool: bool = False):
    """The generator's survey export (keyed correctly), or the same answers as a tool that
    already reverse-scored every reverse-keyed item would export them."""
    org = generate(OrgSpec(seed=seed, n_teams=teams, n_months=12))
    path = write_landing(org, tmp_path / f"org{seed}")["survey"]
    if reversed_by_tool:
        k = org.truth.survey_scale_points
        with path.open(newline="") as handle:
            header, *rows = list(csv.reader(handle))
        turned = [i for i, column in enumerate(header) if column in REVERSE_KEYED_TEXTS]
        assert len(turned) == sum(len(s.reverse_keyed) for s in ITEM_SETS.values())
        for row in rows:
            for i in turned:
                row[i] = str(k + 1 - int(row[i])) if row[i] else ""
        with path.open("w", newline="") as handle:
            csv.writer(handle).writerows([header, *rows])
    return read_survey_exports([path], {t.name for t in org.teams}, NOW)


def test_correctly_keyed_small_waves_load_and_a_negative_correlation_chance_explains_only_warns(tmp_path):
    # 12 organisations of 4 teams (about 15 to 35 complete responses a wave): before, 4 of their
    # correctly keyed scale-waves were held back, among them seed 8's psychological safety of
    # 2024-Q2 for item 3 at r = -0.01.
    for seed in range(1, 13):
        load = generated_survey(tmp_path, seed, 4)
        assert load.keying_failures == [], (seed, [f.message for f in load.keying_failures])
        loaded = {(row["item_set"], row["wave_quarter"]) for row in load.checked.accepted}
        assert len(loaded) == len(ITEM_SETS) * 4  # every scale of every wave
        if seed == 8:
            [doubt] = [w for w in load.warnings if "psychological safety in wave 2024-Q2" in w]
            assert doubt.startswith("keying check doubtful") and "item 3 (" in doubt and "r = -0.01" in doubt
            assert "17 complete responses" in doubt and "chance can explain it" in doubt
            assert "answers are loaded" in doubt and "would turn correctly keyed answers round" in doubt


def test_an_export_whose_tool_already_reversed_the_items_is_held_back_in_a_large_organisation(tmp_path):
    load = generated_survey(tmp_path, 3, 30, reversed_by_tool=True)
    held = {(f.item_set.key, f.wave) for f in load.keying_failures}
    scales_with_reversed_items = [key for key, item_set in ITEM_SETS.items() if item_set.reverse_keyed]
    assert held == {(key, wave) for key in scales_with_reversed_items for wave in ("2024-Q1", "2024-Q2", "2024-Q3",
                                                                                   "2024-Q4")}
    assert {row["item_set"] for row in load.checked.accepted} == set(ITEM_SETS) - set(scales_with_reversed_items)
    assert all(f.message.startswith("keying check failed") and "already_reversed" in f.message
               for f in load.keying_failures)


@pytest.mark.parametrize("reversed_by_tool", [False, True])
def test_a_twelve_response_wave_the_tool_already_reversed_is_held_back(tmp_path, reversed_by_tool):
    # One small team's coherent answers: each respondent's level, give or take one point.
    rng = np.random.default_rng(4)
    rows = [["response_id", "submitted_at", "team", *SAFETY_ITEMS]]
    for i in range(12):
        level = 1 + i % 7
        answers = np.clip(level + rng.integers(-1, 2, size=7), 1, 7)
        rows.append([f"R{i}", "2025-02-10", "Payments",
                     *[a if reversed_by_tool or n not in SAFETY_REVERSED else 8 - a
                       for n, a in enumerate(answers, start=1)]])
    path = tmp_path / "wave.csv"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    load = read_survey_exports([path], {"Payments"}, NOW)
    if not reversed_by_tool:  # the same answers keyed correctly load without a word
        assert load.keying_failures == [] and load.warnings == [] and load.responses == 12
        return
    [failure] = load.keying_failures
    assert [n for n, _ in failure.negative] == [1, 3, 5] and failure.responses == 12
    assert all(failure.correlation_p(r) < 0.001 for _, r in failure.negative)
    assert failure.message.startswith("keying check failed for psychological safety in wave 2025-Q1: alpha")
    assert "in 12 complete responses" in failure.message and "already_reversed" in failure.message
    assert load.checked.accepted == [] and load.warnings == [failure.message]
