"""The quarterly review: the first screen of the report. Per quarter, the organisation's survey
scores with 95% intervals and its KPIs; what changed since the previous quarter in words (the
scores, the zones teams moved between, the teams reaching each of Clark's stages, the KPIs);
the zone chart of the latest wave and the counts per zone and stage.

Everything here comes from published figures: per-wave means of the published team cells,
zone and stage counts only for waves with enough teams, unnamed points. Plain values for the
template; the wording rules (numbers, minus signs, per cent) are assets/report/wording.py's.
"""

from __future__ import annotations

import math

import pandas as pd

from assets.landing.item_sets import ACCOUNTABILITY, ITEM_SETS, PSYCHOLOGICAL_SAFETY, STAGES
from assets.models.kpis import CORRELATION_KPIS, KPI_BY_NAME, SECONDS_IN, Family
from assets.models.profiles import ZONES
from assets.models.psychometrics import MIN_RESPONDENTS, WAVE_CLOSE_DAYS
from assets.models.stats import MIN_TEAMS_FOR_TESTS
from assets.report.inputs import SurveyReview
from assets.report.plots import zone_plot
from assets.report.wording import KPI_QUARTERS_NOTE, RATE_UNITS, percent, pooled_unit, signed


def quarter_label(value) -> str:
    stamp = pd.Timestamp(value)
    return f"{stamp.year} Q{stamp.quarter}"


MONTHS_IN_A_QUARTER = 3


def months_pooled(quarter: pd.Series) -> str:
    """Which months a quarter's KPI pools when not all three have ended (or the data, or the
    KPI's source, starts within it), e.g. "October and November only"; "" for a whole quarter.
    ``quarter``: a kpi_quarters row."""
    if quarter.months >= MONTHS_IN_A_QUARTER:
        return ""
    if quarter.months == 0:
        return "no month with data"
    first, last = pd.Timestamp(quarter.first_month), pd.Timestamp(quarter.last_month)
    return f"{first:%B} only" if quarter.months == 1 else f"{first:%B} and {last:%B} only"


def kpi_label(kpi_name: str) -> str:
    """A KPI as the review names it: a team-month log time is shown as the time itself."""
    kpi = KPI_BY_NAME[kpi_name]
    return kpi_name.removeprefix("log ") if kpi.family is Family.TEAM_MONTH_LOG_TIME else kpi_name


# Rates are shown to this many significant figures, so that changes of a few per cent show.
RATE_SIGNIFICANT_FIGURES = 2
# Below this many minutes a time is shown to a tenth of a minute.
MINUTES_WITH_A_DECIMAL = 10


def significant(value: float, figures: int) -> str:
    """``value`` rounded to ``figures`` significant figures, trailing zeros kept: 0.0399 -> "0.040"."""
    if value == 0:
        return "0"
    decimals = max(figures - 1 - math.floor(math.log10(abs(value))), 0)
    return f"{value:.{decimals}f}"


def kpi_value(kpi_name: str, value: float, extra_digits: int = 0) -> str:
    """A quarter's pooled KPI as a reader reads it: a typical time (the exponent of the mean log
    median), a rate per person-month (per junior person-month for the junior KPI) to
    RATE_SIGNIFICANT_FIGURES, or a share, per person-month where its denominator is people at the
    month's start (voluntary attrition: not the quarter's attrition, about three times as much);
    ``extra_digits`` more where two values must differ."""
    if value is None or not math.isfinite(value):
        return "n/a"
    kpi = KPI_BY_NAME[kpi_name]
    family = kpi.family
    if family is Family.TEAM_MONTH_LOG_TIME:
        seconds = math.exp(value) * SECONDS_IN[kpi.time_unit]
        if seconds >= 2 * SECONDS_IN["days"]:
            return f"{seconds / SECONDS_IN['days']:.{1 + extra_digits}f} days"
        if seconds >= 5400:
            return f"{seconds / 3600:.{1 + extra_digits}f} h"
        minutes = seconds / 60
        return f"{minutes:.{int(minutes < MINUTES_WITH_A_DECIMAL) + extra_digits}f} min"
    if family is Family.TEAM_MONTH_COUNT:
        return f"{significant(value, RATE_SIGNIFICANT_FIGURES + extra_digits)} {pooled_unit(kpi_name)}"
    share = f"{value:.{1 + extra_digits}%}"
    return f"{share} {RATE_UNITS[kpi.denominator]}" if kpi.denominator in RATE_UNITS else share


def _change_words(kpi_name: str, now: float, before: float) -> str:
    """How a KPI moved, e.g. "12% shorter than", "3.0 points higher than"."""
    kpi = KPI_BY_NAME[kpi_name]
    if kpi.family is Family.TEAM_MONTH_BINOMIAL:
        points = (now - before) * 100
        word = kpi.reading.down if points < 0 else kpi.reading.up
        return "the same as" if round(points, 1) == 0 else f"{abs(points):.1f} points {word} than"
    relative = math.expm1(now - before) if kpi.family is Family.TEAM_MONTH_LOG_TIME else now / before - 1
    word = kpi.reading.down if relative < 0 else kpi.reading.up
    return "the same as" if round(relative * 100) == 0 else f"{percent(relative)} {word} than"


# At most this many digits more than the table's, for two values a change sentence compares.
MAX_EXTRA_DIGITS = 3


def kpi_change(kpi_name: str, now: float, before: float, now_label: str, before_label: str) -> str:
    """The sentence of a KPI's move between two quarters, e.g. "Median TTA: 5.0 min in 2025 Q4, 6%
    shorter than 5.3 min in 2025 Q3." A change it states shows in the two values printed: where
    they would print alike, both get more digits."""
    change = _change_words(kpi_name, now, before)
    extra = 0
    while (change != "the same as" and extra < MAX_EXTRA_DIGITS
           and kpi_value(kpi_name, now, extra) == kpi_value(kpi_name, before, extra)):
        extra += 1
    label = kpi_label(kpi_name)
    return (f"{label[0].upper()}{label[1:]}: {kpi_value(kpi_name, now, extra)} in {now_label}, {change} "
            f"{kpi_value(kpi_name, before, extra)} in {before_label}.")


def _interval(row: pd.Series) -> str:
    if not math.isfinite(row.published_mean):
        return "not shown"
    if not math.isfinite(row.published_mean_ci_low):
        return signed(row.published_mean)
    return f"{signed(row.published_mean)} ({signed(row.published_mean_ci_low)} to {signed(row.published_mean_ci_high)})"


# Why a quarter's scores have no interval (psychometrics.published_mean_with_ci) or are not shown
# (inputs.with_team_scores_withheld), beside the quarter in the table.
NO_INTERVAL = f"no interval: fewer than {MIN_TEAMS_FOR_TESTS} teams published, too few for one"
NOT_SHOWN = (f"scores not shown: fewer than {MIN_RESPONDENTS} teams published, so they would show single "
             "teams' scores (the zone chart's rule)")


def score_note(row: pd.Series) -> str:
    """NOT_SHOWN, NO_INTERVAL or "" for a wave's row of fct_survey_waves as the review reads it."""
    if not math.isfinite(row.published_mean):
        return NOT_SHOWN
    return "" if math.isfinite(row.published_mean_ci_low) else NO_INTERVAL


def _score_change(name: str, now: pd.Series, before: pd.Series) -> str:
    """A scale's move between two waves (rows of fct_survey_waves named by their wave); without
    both scores, or both intervals, it says which quarter lacks them and why."""
    label = f"{name[0].upper()}{name[1:]}"
    between = f"between {quarter_label(before.name)} and {quarter_label(now.name)}"
    hidden = [quarter_label(row.name) for row in (before, now) if score_note(row) == NOT_SHOWN]
    if hidden:
        return (f"{label}: no change shown {between}: {' and '.join(hidden)} had fewer than {MIN_RESPONDENTS} teams "
                "published, and a score from so few would show single teams' scores (the zone chart's rule).")
    difference = now.published_mean - before.published_mean
    direction = "the same as" if round(difference, 2) == 0 else \
        f"{abs(difference):.2f} {'higher' if difference > 0 else 'lower'} than"
    unbounded = [quarter_label(row.name) for row in (before, now) if score_note(row) == NO_INTERVAL]
    if unbounded:
        return (f"{label}: {signed(now.published_mean)} in {quarter_label(now.name)}, {direction} "
                f"{signed(before.published_mean)} in {quarter_label(before.name)}; with fewer than "
                f"{MIN_TEAMS_FOR_TESTS} teams published in {' and '.join(unbounded)} there is no interval, so "
                "whether the change may be chance is not said.")
    overlap = now.published_mean_ci_low <= before.published_mean_ci_high and \
        before.published_mean_ci_low <= now.published_mean_ci_high
    verdict = ("the two intervals overlap, so the change may be chance" if overlap
               else "the two intervals do not overlap")
    return (f"{label}: {signed(now.published_mean)} in {quarter_label(now.name)} "
            f"(95% CI {signed(now.published_mean_ci_low)} to {signed(now.published_mean_ci_high)}), {direction} "
            f"{signed(before.published_mean)} in {quarter_label(before.name)}; {verdict}.")


def _zone_moves_sentence(moves: pd.DataFrame, wave) -> str | None:
    rows = moves[moves["wave_quarter"] == wave]
    if rows.empty:
        return None
    before = quarter_label(pd.Timestamp(wave) - pd.DateOffset(months=3))
    in_both = int(rows["n_teams_in_both"].iloc[0])
    if rows["n_teams"].isna().all():
        return (f"Zones: only {in_both} teams were placed in a zone in both {before} and {quarter_label(wave)}, "
                f"fewer than {MIN_RESPONDENTS}, so how they moved is not shown.")
    stayed = int(rows.loc[rows["from_zone"] == rows["to_zone"], "n_teams"].sum())
    moved = rows[(rows["from_zone"] != rows["to_zone"]) & (rows["n_teams"] > 0)].sort_values("n_teams", ascending=False)
    moves_text = "; ".join(f"{int(r.n_teams)} from the {r.from_zone} to the {r.to_zone} zone" for r in moved.itertuples())
    return (f"Zones: of the {in_both} teams placed in a zone in both {before} and {quarter_label(wave)}, {stayed} "
            f"stayed in theirs" + (f" and {in_both - stayed} moved: {moves_text}." if moves_text else "."))


def _stage_sentence(counts: pd.DataFrame, now, before) -> str | None:
    stages = counts[(counts["profile"] == "clark_stage") & counts["n_teams"].notna()]

    def reached(wave) -> tuple[int, int] | None:
        rows = stages[stages["wave_quarter"] == wave]
        if rows.empty:
            return None
        return int(rows.loc[rows["category"] == str(len(STAGES)), "n_teams"].sum()), int(rows["n_teams_in_wave"].iloc[0])

    latest = reached(now)
    if latest is None:
        return None
    text = (f"Clark's stages: {latest[0]} of {latest[1]} teams reached all four, up to {STAGES[-1].name}, in "
            f"{quarter_label(now)}")
    earlier = reached(before) if before is not None else None
    return text + (f" ({earlier[0]} of {earlier[1]} in {quarter_label(before)})." if earlier else ".")


def quarterly_review(survey: SurveyReview | None) -> dict | None:
    """The review's plain values for the template; None without closed survey waves."""
    if survey is None or survey.waves.empty:
        return None
    waves = survey.waves
    scales = [ITEM_SETS[key] for key in survey.scales]
    quarters = sorted(set(waves["wave_quarter"]) | set(survey.kpi_quarters["period_quarter"]))
    by_scale = {key: waves[waves["scale"] == key].set_index("wave_quarter") for key in survey.scales}
    kpis = survey.kpi_quarters.pivot(index="period_quarter", columns="kpi", values="value")
    # The table names the months a quarter pools once, from its KPI with the most (a KPI whose
    # source starts within the quarter pools fewer: its change sentence names its own).
    pooled = {(row.period_quarter, row.kpi): months_pooled(row) for row in survey.kpi_quarters.itertuples()}
    partial = {row.period_quarter: pooled[row.period_quarter, row.kpi] for row in survey.kpi_quarters.sort_values(
        "months", kind="stable").drop_duplicates("period_quarter", keep="last").itertuples()}
    # The KPIs the marts have (an absent one, e.g. without the identity map, has no quarters).
    shown_kpis = [kpi for kpi in CORRELATION_KPIS if kpi.name in kpis.columns]
    rows = []
    for quarter in quarters:
        cells = [_interval(by_scale[s.key].loc[quarter]) if quarter in by_scale[s.key].index else "" for s in scales]
        teams = by_scale[PSYCHOLOGICAL_SAFETY.key]["n_teams_published"].get(quarter)
        notes = {score_note(by_scale[s.key].loc[quarter]) for s in scales if quarter in by_scale[s.key].index}
        why = "; ".join(n for n in (NOT_SHOWN, NO_INTERVAL) if n in notes)
        rows.append({"quarter": quarter_label(quarter), "scores": cells,
                     "score_note": why[:1].upper() + why[1:],
                     "kpi_months": f"KPIs: {partial[quarter]}" if partial.get(quarter) else "",
                     "teams": "" if teams is None or pd.isna(teams) else str(int(teams)),
                     "kpis": [kpi_value(k.name, kpis[k.name].get(quarter)) for k in shown_kpis]})
    safety = by_scale[PSYCHOLOGICAL_SAFETY.key]
    latest = safety.index.max()
    previous = safety.index[safety.index < latest].max() if (safety.index < latest).any() else None
    changes = []
    if previous is not None:
        for scale in scales:
            frame = by_scale[scale.key]
            if latest in frame.index and previous in frame.index:
                changes.append(_score_change(scale.name, frame.loc[latest], frame.loc[previous]))
        changes.append(_zone_moves_sentence(survey.zone_moves, latest))
    changes.append(_stage_sentence(survey.profile_counts, latest, previous))
    kpi_now = max(survey.kpi_quarters["period_quarter"], default=None)
    kpi_before = max((q for q in survey.kpi_quarters["period_quarter"] if q < kpi_now), default=None) if kpi_now else None
    if kpi_before is not None:
        # A part quarter is compared as it stands, per month where the KPI is a rate: the
        # sentence names the months each side pools for that KPI.
        for kpi in shown_kpis:
            now, before = kpis[kpi.name].get(kpi_now), kpis[kpi.name].get(kpi_before)
            if all(v is not None and math.isfinite(v) for v in (now, before)) and before != 0:
                now_label, before_label = (quarter_label(q) + (f" ({pooled[q, kpi.name]})" if pooled[q, kpi.name]
                                                               else "") for q in (kpi_now, kpi_before))
                changes.append(kpi_change(kpi.name, now, before, now_label, before_label))
    zone_counts = survey.profile_counts[(survey.profile_counts["profile"] == "zone")]
    shown = zone_counts[zone_counts["n_teams"].notna()]
    chart_wave = shown["wave_quarter"].max() if len(shown) else None
    chart_counts = {r.category: int(r.n_teams) for r in shown[shown["wave_quarter"] == chart_wave].itertuples()}
    return {
        "scales": [{"name": s.name, "title": s.title, "example": s.example_wording} for s in scales],
        "not_measured": [s.name for s in (ACCOUNTABILITY, *STAGES) if s.key not in survey.scales],
        "score_headers": [s.name for s in scales],
        "kpi_headers": [kpi_label(k.name) for k in shown_kpis],
        "kpi_note": KPI_QUARTERS_NOTE,
        "rows": rows,
        "latest": quarter_label(latest),
        "closed_on": f"{pd.Timestamp(safety.loc[latest, 'closed_on']):%d %B %Y}",
        "close_days": WAVE_CLOSE_DAYS,
        "changes": [c for c in changes if c],
        "zone_table": _count_table(zone_counts, list(ZONES)),
        "stage_table": _count_table(survey.profile_counts[survey.profile_counts["profile"] == "clark_stage"],
                                    [str(n) for n in range(len(STAGES) + 1)]),
        "zones": ZONES,
        "stage_names": ["none"] + [s.name for s in STAGES],
        "chart": {"uri": zone_plot(survey.zone_points, chart_counts, int(waves["scale_points"].max())),
                  "alt": "Zone chart", "caption": (
                      f"Teams of {quarter_label(chart_wave)} as unnamed points by their mean safety and "
                      "accountability; dashed lines: the thresholds (the scales' midpoint unless configured). Only "
                      f"published team results, and only for a quarter with at least {MIN_RESPONDENTS} teams in "
                      "zones.") if chart_wave is not None else ""},
    }


def _count_table(counts: pd.DataFrame, categories: list[str]) -> list[dict]:
    """Rows of teams per category per wave; a wave with too few teams shows why instead."""
    rows = []
    for wave, group in counts.groupby("wave_quarter"):
        by_category = dict(zip(group["category"], group["n_teams"]))
        withheld = group["n_teams"].isna().all()
        rows.append({"quarter": quarter_label(wave), "teams": int(group["n_teams_in_wave"].iloc[0]),
                     "counts": ["" if withheld else str(int(by_category.get(c, 0))) for c in categories],
                     "withheld": withheld})
    return rows
