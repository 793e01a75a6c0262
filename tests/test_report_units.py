"""What the report's numbers are (fifth trial, readers: /tmp/adv5_readers/FINDINGS.md R1, R3 and
two suspected items): the quarterly review says voluntary attrition is per person-month, a fall
that is not all of it never prints as 100%, a corrected estimate is not shown where the survey
measures a part of safety too unreliably, and a quarter under way names the months it pools.

The report's own functions on rows shaped like the warehouse's; tests/test_report.py checks the
same on a nightly run's warehouse and in Chromium.
"""

import math
from datetime import date
from types import SimpleNamespace

import pandas as pd

from assets.report import wording
from assets.report.html import _table_rows
from assets.report.inputs import SurveyReview
from assets.report.review import quarterly_review
from assets.report.wording import corrected_note, percent, result_sentence, signed_percent

MINUS = "\u2212"
Q3, Q4 = date(2024, 7, 1), date(2024, 10, 1)
# What each KPI's pooled value is in, written out here so the rule is checked, not copied.
UNITS = {"log median TTR": "log of seconds", "log median days to finish a review": "log of days",
         "incidents per head": "per person-month", "voluntary attrition": "per person-month",
         "junior proactive tickets per junior head": "per junior person-month",
         "critical-role voluntary attrition": "per critical-role person-month", "proactive share": "share"}


def kpi_quarter(quarter: date, kpi: str, value: float, months: int = 3, team_months_per_month: int = 12) -> dict:
    """A kpi_quarters row (inputs.read_survey_review's columns): the quarter's first ``months`` months."""
    last = (pd.Timestamp(quarter) + pd.DateOffset(months=months - 1)).date()
    return {"period_quarter": quarter, "kpi": kpi, "value": value, "unit": UNITS[kpi],
            "team_months": months * team_months_per_month, "months": months, "first_month": quarter,
            "last_month": last}


def review_of(kpi_rows: list[dict]) -> dict:
    """The quarterly review of two closed safety waves (Q3, Q4 2024) and these KPI rows."""
    waves = pd.DataFrame([{"wave_quarter": q, "scale": "psychological_safety", "scale_points": 7,
                           "published_mean": 5.0, "published_mean_ci_low": 4.8, "published_mean_ci_high": 5.2,
                           "n_teams_published": 12, "n_respondents_published": 90, "closed_on": date(2025, 1, 15)}
                          for q in (Q3, Q4)])
    counts = pd.DataFrame(columns=["wave_quarter", "profile", "category", "n_teams", "n_teams_in_wave"])
    moves = pd.DataFrame(columns=["wave_quarter", "from_zone", "to_zone", "n_teams", "n_teams_in_both"])
    points = pd.DataFrame(columns=["safety_mean", "accountability_mean", "zone", "safety_threshold",
                                   "accountability_threshold"])
    return quarterly_review(SurveyReview(waves, pd.DataFrame(kpi_rows), counts, moves, points))


# --- R1: voluntary attrition per quarter is a rate per person-month, and says so ------------------

def test_the_review_prints_voluntary_attrition_per_person_month():
    # The trial's demo: 9 and 6 voluntary leavers over three monthly opening headcounts of 107.
    review = review_of([kpi_quarter(Q3, "voluntary attrition", 9 / 321),
                        kpi_quarter(Q4, "voluntary attrition", 6 / 321)])
    assert [row["kpis"] for row in review["rows"]] == [["2.8% per person-month"], ["1.9% per person-month"]]
    assert ("Voluntary attrition: 1.9% per person-month in 2024 Q4, 0.9 points lower than 2.8% per person-month "
            "in 2024 Q3.") in review["changes"]
    # The note under the table says what that is against a quarter's attrition.
    assert "voluntary attrition are per person-month" in review.get("kpi_note", "")
    assert "about three times that over a whole quarter" in review["kpi_note"]
    # A share of its own total is no rate: no unit.
    share = review_of([kpi_quarter(Q3, "proactive share", 0.294), kpi_quarter(Q4, "proactive share", 0.255)])
    assert [row["kpis"] for row in share["rows"]] == [["29.4%"], ["25.5%"]]


def test_the_kpi_quarters_unit_column_names_what_each_value_is_in():
    assert hasattr(wording, "pooled_unit"), "the kpi_quarters export needs each value's unit"
    assert {kpi: wording.pooled_unit(kpi) for kpi in UNITS} == UNITS


# --- R3: a fall short of all of it is not "100%" ------------------------------------------------

def test_a_fall_that_rounds_to_100_percent_prints_as_more_than_99():
    # The trial's stored estimate_corrected, -5.745 on the log scale: -99.68%.
    assert percent(math.expm1(-5.745)) == "more than 99%"
    assert percent(-0.9949) == "99%"
    assert percent(-1.0) == "100%"  # all of it: a count that fell to zero
    assert percent(0.997) == "100%"  # a rise of 100% is no claim of zero
    assert signed_percent(100 * math.expm1(-5.745)) == f"< {MINUS}99%"
    assert signed_percent(-99.4) == f"{MINUS}99%"


def test_a_result_and_its_interval_never_say_100_percent_shorter():
    row = SimpleNamespace(kpi="log median TTR", construct="accountability within team", scale="log ratio per SD",
                          estimate=-5.745, ci_low=-7.2, ci_high=-1.83, p_value=0.001, q_value=0.004, n_teams=12,
                          model="MixedLM", warnings="", within_team_sd=0.21)
    sentence = result_sentence(row)
    assert "a more than 99% shorter median time to resolve incidents" in sentence
    assert "(95% CI 84% to more than 99% shorter; 12 teams)" in sentence
    assert "100%" not in sentence


# --- R3: no corrected figure where a part of safety is measured too unreliably ------------------

def corrected_row(reliability: float) -> SimpleNamespace:
    return SimpleNamespace(kpi="log median TTR", construct="accountability within team", scale="log ratio per SD",
                           estimate=-0.78, ci_low=-1.5, ci_high=-0.06, estimate_corrected=-5.745,
                           ci_low_corrected=-7.2, ci_high_corrected=-1.83, reliability=reliability, p_value=0.04,
                           q_value=0.099, n_teams=12, n_periods=8, role="main", model="MixedLM", warnings="")


def corrected_cell(row: SimpleNamespace) -> dict | None:
    """The results table's "corrected for survey error" cell of this one main row."""
    [table_row] = _table_rows(pd.DataFrame([vars(row)]))
    return table_row["corrected"]


def test_a_corrected_estimate_is_not_shown_below_a_reliability_of_05_and_the_report_says_why():
    note = corrected_note(corrected_row(0.13))
    assert note == ("Survey scores measure this part of accountability with reliability 0.13: less than half of its "
                    "variation is true differences, so an estimate allowing for measurement error would rest more on "
                    "the correction than on the data, and none is shown.")
    assert corrected_cell(corrected_row(0.13)) == {"value": "not shown", "interval": "reliability 0.13"}
    # From 0.5 on, the figure is shown as before.
    shown = SimpleNamespace(**{**vars(corrected_row(0.56)), "q_value": 0.004})
    assert corrected_note(shown).startswith("Survey scores measure this part of accountability with reliability 0.56; "
                                            "allowing for that, the estimate per SD of true accountability is a "
                                            "more than 99% shorter median time")
    assert corrected_cell(shown) == {"value": f"< {MINUS}99%", "interval": f"< {MINUS}99% to {MINUS}84%"}


# --- Suspected: a quarter under way is compared as it stands, and says which months -------------

def test_a_quarter_under_way_names_the_months_its_kpis_pool():
    # On 7 December: October and November have ended, December has not.
    review = review_of([kpi_quarter(Q3, "log median TTR", math.log(81 * 60)),
                        kpi_quarter(Q4, "log median TTR", math.log(63 * 60), months=2),
                        kpi_quarter(Q3, "voluntary attrition", 9 / 321),
                        kpi_quarter(Q4, "voluntary attrition", 4 / 214, months=2)])
    assert ("Median TTR: 63 min in 2024 Q4 (October and November only), 22% shorter than 81 min in 2024 Q3."
            in review["changes"])
    assert ("Voluntary attrition: 1.9% per person-month in 2024 Q4 (October and November only), 0.9 points lower "
            "than 2.8% per person-month in 2024 Q3.") in review["changes"]
    assert [(row["quarter"], row.get("kpi_months")) for row in review["rows"]] == [
        ("2024 Q3", ""), ("2024 Q4", "KPIs: October and November only")]
    # One month ended: that month alone.
    october = review_of([kpi_quarter(Q3, "log median TTR", math.log(81 * 60)),
                         kpi_quarter(Q4, "log median TTR", math.log(63 * 60), months=1)])
    assert "Median TTR: 63 min in 2024 Q4 (October only), 22% shorter than 81 min in 2024 Q3." in october["changes"]


def test_a_corrected_estimate_that_could_be_chance_states_no_direction_either():
    # The note under a sentence follows the sentence's rule (review of the eighth trial's D1 fix).
    row = SimpleNamespace(**{**vars(corrected_row(0.7)), "estimate": -0.08, "ci_low": -0.36, "ci_high": 0.2,
                             "estimate_corrected": -0.12, "ci_low_corrected": -0.5, "ci_high_corrected": 0.3,
                             "p_value": 0.5, "q_value": 0.8})
    assert corrected_note(row) == (
        "Survey scores measure this part of accountability with reliability 0.70; allowing for that, the 95% CI per "
        "SD of true accountability is from 39% shorter to 35% longer, which includes no difference.")
    assert "is an 11% shorter median" in corrected_note(SimpleNamespace(**{**vars(row), "q_value": 0.01}))
