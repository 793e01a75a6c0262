"""The report on a small organisation (sixth trial, angle "small": /tmp/adv6_small/FINDINGS.md S5
and S8).

S5: the quarterly review printed the organisation's safety mean of 2 published teams with a 95%
interval of -1.89 to 8.95 on a 1-7 scale (a team-clustered t with 1 degree of freedom), and a
quarter's mean from 1 or 2 published teams is one team's score, or lets a team work out the
other's, while the zone chart shows no team points below 5 teams. Now: no interval below 10
published teams (the models' rule for testing at all), no score below 5 (the zone chart's), and
the review says why beside the quarter and in its change sentences.

S8: below 10 teams the correlation sentences led with the r not adjusted for team size (often
of the other sign than the table's lead column), and the table printed a partial r of 1.00 from
4 teams (1 degree of freedom). Now neither figure is printed below 10 teams; the table and the
sentence say the teams are too few.

The unit tests use the functions on rows shaped like the warehouse's; the slow test runs the
nightly job on a 7-team organisation whose first wave has at most 3 teams of 5 respondents.
"""

import csv
import math
import re
from datetime import date
from html.parser import HTMLParser
from types import SimpleNamespace

import duckdb
import numpy as np
import pandas as pd
import pytest

from assets.models.psychometrics import MIN_RESPONDENTS, published_mean_with_ci
from assets.models.stats import MIN_TEAMS_FOR_TESTS
from assets.report.exports import HTML_NAME
from assets.report.html import _correlations
from assets.report.inputs import KPI_QUARTER_COLUMNS, SurveyReview, with_team_scores_withheld
from assets.report.plots import correlation_plot
from assets.report.review import quarterly_review
from assets.report.wording import correlation_sentence
from pipelines.demo import run_nightly, start_sandbox
from pipelines.synthetic.org import OrgSpec, generate, write_landing

MINUS = "\u2212"
Q2, Q3, Q4 = date(2024, 4, 1), date(2024, 7, 1), date(2024, 10, 1)
EMPTY_PROFILES = (
    pd.DataFrame(columns=["wave_quarter", "profile", "category", "n_teams", "n_teams_in_wave"]),
    pd.DataFrame(columns=["wave_quarter", "from_zone", "to_zone", "n_teams", "n_teams_in_both"]),
    pd.DataFrame(columns=["safety_mean", "accountability_mean", "zone", "safety_threshold", "accountability_threshold"]),
)


# --- S5: the organisation's mean has no interval from too few teams --------------------------------

def test_the_published_mean_has_no_interval_below_ten_teams():
    # The trial's quarter: team means 3.0408 (7 respondents) and 3.9074 (9) gave 3.53, -1.89 to 8.95.
    mean, low, high = published_mean_with_ci(pd.Series([7, 9]), pd.Series([3.0408, 3.9074]))
    assert mean == pytest.approx((7 * 3.0408 + 9 * 3.9074) / 16)
    assert math.isnan(low) and math.isnan(high)
    rng = np.random.default_rng(6)
    for n_teams in (3, MIN_TEAMS_FOR_TESTS - 1):
        _, low, high = published_mean_with_ci(pd.Series(rng.integers(5, 12, n_teams)),
                                              pd.Series(rng.uniform(3, 5, n_teams)))
        assert math.isnan(low) and math.isnan(high), n_teams


def test_from_ten_teams_the_interval_is_the_team_clustered_t_by_hand():
    # Ten teams of 5 respondents, means 4 and 6 alternating: mean 5; residuals n_j (m_j - 5) = +-5,
    # so Var = 10/9 * 10 * 25 / 50^2 = 1/9, SE 1/3, t(9) = 2.2622.
    mean, low, high = published_mean_with_ci(pd.Series([5] * 10), pd.Series([4.0, 6.0] * 5))
    assert mean == 5.0
    assert (low, high) == pytest.approx((5 - 2.2622 / 3, 5 + 2.2622 / 3), abs=1e-4)


def test_the_review_shows_no_interval_a_wave_frozen_earlier_kept_and_no_score_from_under_five_teams():
    # Waves frozen by an earlier version keep the interval computed then: the review reads them
    # through inputs.with_team_scores_withheld, as read_survey_review does.
    frozen = {Q2: (2, 3.528, -1.891, 8.948), Q3: (7, 4.375, 3.9, 4.85), Q4: (12, 4.5, 4.2, 4.8)}
    waves = pd.DataFrame([{"wave_quarter": q, "scale": "psychological_safety", "scale_points": 7,
                           "published_mean": mean, "published_mean_ci_low": low, "published_mean_ci_high": high,
                           "n_teams_published": teams, "n_respondents_published": 8 * teams,
                           "closed_on": date(2025, 1, 15)} for q, (teams, mean, low, high) in frozen.items()])
    review = quarterly_review(SurveyReview(with_team_scores_withheld(waves), pd.DataFrame(columns=list(
        KPI_QUARTER_COLUMNS)), *EMPTY_PROFILES))
    assert [(r["quarter"], r["scores"], r["score_note"]) for r in review["rows"]] == [
        ("2024 Q2", ["not shown"], (f"Scores not shown: fewer than {MIN_RESPONDENTS} teams published, so they "
                                    "would show single teams' scores (the zone chart's rule)")),
        ("2024 Q3", ["4.38"], f"No interval: fewer than {MIN_TEAMS_FOR_TESTS} teams published, too few for one"),
        ("2024 Q4", ["4.50 (4.20 to 4.80)"], "")]
    [change] = [c for c in review["changes"] if c.startswith("Psychological safety")]
    assert change == ("Psychological safety: 4.50 in 2024 Q4, 0.12 higher than 4.38 in 2024 Q3; with fewer than "
                      f"{MIN_TEAMS_FOR_TESTS} teams published in 2024 Q3 there is no interval, so whether the change "
                      "may be chance is not said.")
    earlier = quarterly_review(SurveyReview(with_team_scores_withheld(waves.iloc[:2]), pd.DataFrame(columns=list(
        KPI_QUARTER_COLUMNS)), *EMPTY_PROFILES))
    [change] = [c for c in earlier["changes"] if c.startswith("Psychological safety")]
    assert change == (f"Psychological safety: no change shown between 2024 Q2 and 2024 Q3: 2024 Q2 had fewer than "
                      f"{MIN_RESPONDENTS} teams published, and a score from so few would show single teams' scores "
                      "(the zone chart's rule).")


# --- S8: no r or partial r from fewer than 10 teams ------------------------------------------------

def correlation_row(n_teams: int) -> SimpleNamespace:
    """The trial's 4-team row of log median TTR: partial r 0.90 (1 degree of freedom), r -0.94."""
    tested = n_teams >= MIN_TEAMS_FOR_TESTS

    def untested(value: float) -> float:
        return value if tested else math.nan

    return SimpleNamespace(kpi="log median TTR", r=-0.94, ci_low=untested(-0.99), ci_high=untested(-0.5),
                           p_value=untested(0.001), q_value=untested(0.004), size_adjusted_r=0.90,
                           size_adjusted_ci_low=untested(0.5), size_adjusted_ci_high=untested(0.99),
                           size_adjusted_p_value=untested(0.002), size_adjusted_q_value=untested(0.004),
                           n_teams=n_teams, n_team_months=48)


def test_below_ten_teams_a_correlation_prints_no_r_and_says_the_teams_are_too_few():
    row = correlation_row(4)
    sentence = correlation_sentence(row)
    assert sentence.startswith("Only 4 teams had both a safety score and ")
    assert f"too few to test (fewer than {MIN_TEAMS_FOR_TESTS}), so no correlation is shown" in sentence
    assert "r = " not in sentence and f"{MINUS}0.94" not in sentence and "0.90" not in sentence
    [cells] = _correlations(pd.DataFrame([vars(row)]))["rows"]
    assert cells["adjusted"] == cells["plain"] == {"r": "too few teams", "interval": "n/a", "q": "n/a"}
    assert correlation_plot(pd.DataFrame([vars(row)])) is None  # no bar of a partial r from 4 teams


def test_from_ten_teams_the_sentence_leads_with_the_partial_r_as_the_table_does():
    row = correlation_row(MIN_TEAMS_FOR_TESTS)
    sentence = correlation_sentence(row)
    assert sentence.startswith(f"Across {MIN_TEAMS_FOR_TESTS} teams, allowing for team size, ")
    assert "partial r = 0.90" in sentence and f"Not adjusted for team size: r = {MINUS}0.94" in sentence
    [cells] = _correlations(pd.DataFrame([vars(row)]))["rows"]
    assert (cells["adjusted"]["r"], cells["plain"]["r"]) == ("0.90", f"{MINUS}0.94")


# --- the nightly job on a small organisation ------------------------------------------------------

SPEC = OrgSpec(seed=4, n_teams=7, n_months=12)


def first_wave_of_three_teams(landing) -> None:
    """In the first wave, at most MIN_RESPONDENTS - 1 respondents for every team but three: that
    wave publishes at most 3 teams."""
    path = landing / "survey_responses.csv"
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    first = min(r["submitted_at"][:7] for r in rows)
    kept = sorted({r["team"] for r in rows})[:3]
    seen: dict[str, int] = {}
    out = []
    for r in rows:
        if r["submitted_at"][:7] == first and r["team"] not in kept:
            seen[r["team"]] = seen.get(r["team"], 0) + 1
            if seen[r["team"]] >= MIN_RESPONDENTS:
                continue
        out.append(r)
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(out)


class Tables(HTMLParser):
    """The text of every table row (by the table's id) and of every list item (by the list's id,
    else its section's)."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.items: dict[str, list[str]] = {}
        self._table = self._list = self._section = None
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._item: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs.get("id")
        elif tag == "table":
            self._table = attrs.get("id")
        elif tag == "ul":
            self._list = attrs.get("id") or self._section
        elif tag == "tr" and self._table:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._cell = []
        elif tag == "li" and self._list:
            self._item = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" | ")

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._row:
                self.rows.setdefault(self._table, []).append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None
        elif tag == "li" and self._item is not None:
            self.items.setdefault(self._list, []).append("".join(self._item).strip())
            self._item = None
        elif tag == "ul":
            self._list = None

    def handle_data(self, data):
        for part in (self._cell, self._item):
            if part is not None:
                part.append(data)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    org = generate(SPEC)
    workdir = tmp_path_factory.mktemp("few_teams")
    landing, warehouse = workdir / "landing", workdir / "warehouse.duckdb"
    write_landing(org, landing)
    first_wave_of_three_teams(landing)
    with start_sandbox(org) as sandbox:
        result = run_nightly(sandbox, org, warehouse, landing)
    assert result.success
    page = Tables()
    page.feed((workdir / "report" / HTML_NAME).read_text(encoding="utf-8"))
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        waves = conn.sql("select * from marts.fct_survey_waves where scale = 'psychological_safety' "
                         "order by wave_quarter").df()
        correlations = conn.sql("select * from models.kpi_correlations").df()
    return SimpleNamespace(folder=workdir / "report", page=page, waves=waves, correlations=correlations)


def quarter(value) -> str:
    stamp = pd.Timestamp(value)
    return f"{stamp.year} Q{stamp.quarter}"


@pytest.mark.slow
def test_a_small_organisation_gets_no_interval_from_few_teams_and_no_score_from_fewer_than_five(small):
    waves = small.waves
    # The organisation this test needs: a wave of fewer than 5 published teams, and one of 5 to 9.
    few = waves["n_teams_published"] < MIN_RESPONDENTS
    some = ~few & (waves["n_teams_published"] < MIN_TEAMS_FOR_TESTS)
    assert few.any() and some.any(), waves[["wave_quarter", "n_teams_published"]]
    # The warehouse: no interval from fewer than 10 teams (it ran to -1.89 to 8.95 from 2).
    assert waves["published_mean_ci_low"].isna().all() and waves["published_mean_ci_high"].isna().all()
    assert waves["published_mean"].notna().all()
    rows = {row[0].split(" | ")[0]: row for row in small.page.rows["review-table"]}
    exported = pd.read_csv(small.folder / "survey_quarters.csv")
    n_scales = exported["scale"].nunique()
    exported = exported[exported["scale"] == "psychological_safety"].set_index("wave_quarter")
    for wave in waves.itertuples():
        row = rows[quarter(wave.wave_quarter)]
        if wave.n_teams_published < MIN_RESPONDENTS:
            assert row[1] == "not shown"
            assert (f"Scores not shown: fewer than {MIN_RESPONDENTS} teams published, so they would show single "
                    "teams' scores (the zone chart's rule)") in row[0]
            assert math.isnan(exported.loc[str(pd.Timestamp(wave.wave_quarter).date()), "published_mean"])
        else:
            assert row[1] == f"{wave.published_mean:.2f}".replace("-", MINUS)  # the mean, no interval
            assert f"No interval: fewer than {MIN_TEAMS_FOR_TESTS} teams published, too few for one" in row[0]
        assert row[1 + n_scales] == str(wave.n_teams_published)  # the Teams column
    changes = small.page.items["changes"]
    latest, previous = waves.iloc[-1], waves.iloc[-2]
    [sentence] = [c for c in changes if c.startswith("Psychological safety:")]
    if max(latest.n_teams_published, previous.n_teams_published) >= MIN_RESPONDENTS > min(
            latest.n_teams_published, previous.n_teams_published):
        assert "no change shown between" in sentence
    else:
        assert (f"with fewer than {MIN_TEAMS_FOR_TESTS} teams published in " in sentence
                and "whether the change may be chance is not said" in sentence)
    assert "95% CI" not in sentence and "n/a" not in sentence and "intervals" not in sentence


@pytest.mark.slow
def test_a_small_organisation_prints_no_correlation_and_says_the_teams_are_too_few(small):
    estimated = small.correlations[small.correlations["r"].notna()]
    assert len(estimated) and (estimated["n_teams"] < MIN_TEAMS_FOR_TESTS).all()
    for row in small.page.rows["correlation-table"]:
        if row[0] in set(estimated["kpi"]):
            assert row[1] == row[4] == "too few teams", row
    sentences = small.page.items["correlations"]
    for kpi in estimated.itertuples():
        assert any(s.startswith(f"Only {kpi.n_teams} teams had both a safety score and ") and
                   f"too few to test (fewer than {MIN_TEAMS_FOR_TESTS}), so no correlation is shown" in s
                   for s in sentences), kpi.kpi
    text = (small.folder / HTML_NAME).read_text(encoding="utf-8")
    assert not re.search(r"Across these \d+ teams, r = ", text)
