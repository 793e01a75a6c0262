"""Anonymity across nights: waves close on a documented day and freeze, late responses count in
the next wave, and a night that stops half-way never publishes a wave from another set of
responses (the rules of assets/models/frozen_waves.py)."""

from datetime import date

import pandas as pd

from assets.models.frozen_waves import plan_waves
from assets.models.psychometrics import wave_closes_on

Q1, Q2, Q3, Q4 = date(2024, 1, 1), date(2024, 4, 1), date(2024, 7, 1), date(2024, 10, 1)
NO_MEMBERS = pd.DataFrame(columns=["response_id", "wave_quarter"])


def responses(**quarters: date) -> pd.DataFrame:
    return pd.DataFrame({"response_id": list(quarters), "submission_quarter": list(quarters.values())})


def waves_of(plan) -> dict[str, date]:
    return dict(zip(plan.waves["response_id"], plan.waves["wave_quarter"]))


def test_a_wave_closes_fourteen_days_after_its_quarter_and_stays_unpublished_until_then():
    assert wave_closes_on(Q1) == date(2024, 4, 14) and wave_closes_on(Q4, close_after_days=0) == date(2024, 12, 31)
    before = plan_waves(responses(a=Q1), NO_MEMBERS, set(), as_of=date(2024, 4, 13))
    assert before.closing == before.to_publish == [] and before.open_waves == {Q1: date(2024, 4, 14)}
    after = plan_waves(responses(a=Q1), NO_MEMBERS, set(), as_of=date(2024, 4, 14))
    assert after.closing == after.to_publish == after.members_to_write == [Q1] and after.open_waves == {}


def test_a_late_response_counts_in_the_next_wave_not_yet_frozen():
    members = pd.DataFrame({"response_id": ["a"], "wave_quarter": [Q1]})
    # "b" was submitted in Q1 but arrives after Q1 froze; Q2 froze too, so it counts in Q3.
    members = pd.concat([members, pd.DataFrame({"response_id": ["c"], "wave_quarter": [Q2]})])
    plan = plan_waves(responses(a=Q1, b=Q1, c=Q2, d=Q3), members, {Q1, Q2}, as_of=date(2024, 8, 1))
    assert waves_of(plan) == {"a": Q1, "b": Q3, "c": Q2, "d": Q3}
    assert plan.late_responses(Q3) == 1 and plan.late_responses(Q1) == 0
    assert plan.to_publish == [] and plan.open_waves == {Q3: date(2024, 10, 14)}
    # When Q3 closes, it is frozen with the late response among its members.
    plan = plan_waves(responses(a=Q1, b=Q1, c=Q2, d=Q3), members, {Q1, Q2}, as_of=date(2024, 10, 14))
    assert plan.closing == [Q3] and sorted(plan.members([Q3])["response_id"]) == ["b", "d"]


def test_a_night_stopped_between_members_and_figures_publishes_from_the_members():
    # Q1's members were written (a, b), its figures not; c arrived since, submitted in Q1.
    members = pd.DataFrame({"response_id": ["a", "b"], "wave_quarter": [Q1, Q1]})
    plan = plan_waves(responses(a=Q1, b=Q1, c=Q1), members, set(), as_of=date(2024, 5, 1))
    assert plan.to_publish == [Q1] and plan.closing == [] and plan.members_to_write == []
    assert sorted(plan.members([Q1])["response_id"]) == ["a", "b"]
    assert waves_of(plan)["c"] == Q2 and plan.open_waves == {Q2: date(2024, 7, 14)}


def test_published_figures_whose_members_were_lost_take_their_quarter_back_as_members():
    plan = plan_waves(responses(a=Q1, b=Q1, c=Q2), NO_MEMBERS, {Q1}, as_of=date(2024, 5, 1))
    assert waves_of(plan) == {"a": Q1, "b": Q1, "c": Q2}
    assert plan.members_to_write == [Q1] and plan.to_publish == []  # members restored, figures kept
