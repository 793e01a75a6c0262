"""The CIO report as one self-contained HTML file: inline CSS, charts as SVG data URIs, no
script and a content security policy that forbids loading anything from elsewhere.

The markup lives in Jinja2 templates (assets/report/templates) rendered with autoescaping, so
no text from the warehouse (a team-map name, a model warning) can become markup. This module
only turns the report's inputs into the plain values the template shows."""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined

from assets.landing.item_sets import STAGES
from assets.models.design import INTERACTION_MODEL, SAFETY_MODEL, SCORES, ScoreModel
from assets.models.kpis import KPI_BY_NAME
from assets.models.stats import (
    FALSE_DISCOVERY_RATE,
    MIN_TEAMS_FOR_CLUSTER_SE,
    MIN_TEAMS_FOR_TESTS,
    NOT_CORRECTED,
    POWER,
    TEST_LEVEL,
)
from assets.report.inputs import RESULTS_TABLE, Coverage, ReportInputs
from assets.report.plots import correlation_plot, coverage_plot, forest_plot
from assets.report.review import quarterly_review
from assets.report.wording import (
    CAVEATS,
    CONSTRUCT_HEADINGS,
    CONSTRUCT_LABELS,
    MIN_RESPONDENTS,
    NULL_FLAGS_NOTE,
    RELIABILITY_TO_CORRECT,
    absent_sentences,
    construct_rank,
    corrected_note,
    correlation_sentence,
    fell_back_to_ols,
    has_interval,
    p_text,
    power_sentence,
    relative_change,
    result_notes,
    result_sentence,
    signed,
    signed_percent,
    suppression_sentence,
    too_few_to_correlate,
    too_unreliable_to_correct,
    unlikely_to_be_chance,
)

TITLE = "Psychological safety and operational KPIs"
TEMPLATES = Environment(
    loader=PackageLoader("assets.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render_report(inputs: ReportInputs, generated_at: datetime, export_names: list[str]) -> str:
    coverage = inputs.coverage
    return TEMPLATES.get_template("report.html.j2").render(
        title=TITLE,
        period=f"{coverage.first_month} to {coverage.last_month}" if coverage.months else "no months yet",
        generated=f"{generated_at:%d %B %Y, %H:%M}",
        coverage=coverage,
        fewest_teams=_fewest_teams(inputs),
        min_teams=MIN_TEAMS_FOR_CLUSTER_SE,
        min_teams_for_tests=MIN_TEAMS_FOR_TESTS,
        false_discovery_rate=FALSE_DISCOVERY_RATE,
        null_flags_note=NULL_FLAGS_NOTE,
        reliability_to_correct=RELIABILITY_TO_CORRECT,
        results_table=RESULTS_TABLE,
        results=None if inputs.results is None else _results(safety_results(inputs.results)),
        accountability=None if inputs.results is None else _accountability(inputs.results),
        stages=None if inputs.results is None else _stages(inputs.results),
        review=quarterly_review(inputs.survey),
        power=[] if inputs.results is None else _power(main_results(safety_results(inputs.results))),
        power_level=f"{POWER:.0%}",
        test_level=f"{TEST_LEVEL:.0%}",
        correlations=_correlations(inputs.correlations),
        tiles=_tiles(coverage),
        coverage_figure=_figure(
            coverage_plot(inputs.monthly), "Data coverage by month",
            "Top: teams in the data each month and those with a reportable safety score from an earlier quarter. "
            "Bottom: incidents and tickets counted per month."),
        suppression_note=_suppression_note(coverage),
        caveats=CAVEATS,
        absent=absent_sentences(inputs.absent_kpis),
        min_respondents=MIN_RESPONDENTS,
        definitions=_definitions(inputs),
        export_names=export_names,
    )


def main_results(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["role"] == "main"]


def _of_model(results: pd.DataFrame, model: ScoreModel) -> pd.DataFrame:
    return results[results["construct"].isin(model.constructs()[t] for t in model.reported_terms(True)
                                             + model.reported_terms(False))]


def safety_results(results: pd.DataFrame) -> pd.DataFrame:
    """The rows of the safety model (main and cross-check)."""
    return _of_model(results, SAFETY_MODEL)


def cross_checks(results: pd.DataFrame) -> dict[tuple[str, str], object]:
    """The cross-check row of each (kpi, construct) that has one."""
    return {(r.kpi, r.construct): r for r in results[results["role"] == "cross-check"].itertuples()}


def _with_interval(rows: pd.DataFrame, estimate: str = "estimate") -> pd.DataFrame:
    """The rows that have an estimate and a finite 95% interval: only these rest on teams in a way
    a few-teams warning (an optimistic interval) can be about."""
    return rows[[has_interval(row, estimate) for row in rows.itertuples()]]


def _fewest_teams(inputs: ReportInputs) -> int | None:
    """The fewest teams any result with an interval rests on, when that is below MIN_TEAMS_FOR_CLUSTER_SE."""
    counts = list(_with_interval(inputs.correlations, "r")["n_teams"]) if len(inputs.correlations) else []
    if inputs.results is not None:
        counts += list(_with_interval(main_results(inputs.results))["n_teams"])
    fewest = min((int(n) for n in counts), default=None)
    return fewest if fewest is not None and fewest < MIN_TEAMS_FOR_CLUSTER_SE else None


def _every_few(main: pd.DataFrame) -> bool:
    """Every result with an interval rests on fewer than MIN_TEAMS_FOR_CLUSTER_SE teams (and there is one)."""
    shown = _with_interval(main)
    return bool(len(shown)) and bool((shown["n_teams"] < MIN_TEAMS_FOR_CLUSTER_SE).all())


def _team_range(results: pd.DataFrame) -> str:
    results = _with_interval(results)
    if not len(results):
        return ""
    fewest, most = int(results["n_teams"].min()), int(results["n_teams"].max())
    return f"{most} teams" if fewest == most else f"{fewest} to {most} teams"


def _by_construct(main: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    constructs = sorted(main["construct"].unique(), key=lambda c: (construct_rank(c), c))
    return [(construct, main[main["construct"] == construct]) for construct in constructs]


def _change(estimate: float, low: float, high: float, scale: str) -> dict | None:
    """A relative change and its interval as printed, e.g. ("−19%", "−30% to −8%")."""
    row = pd.Series({"estimate": estimate, "ci_low": low, "ci_high": high, "scale": scale})
    if relative_change(row) is None:
        return None
    return {"value": signed_percent(math.expm1(estimate) * 100),
            "interval": f"{signed_percent(math.expm1(low) * 100)} to {signed_percent(math.expm1(high) * 100)}"}


def _corrected(row) -> dict | None:
    """The change corrected for survey measurement error as printed, or why it is not shown."""
    if too_unreliable_to_correct(row.reliability) and math.isfinite(row.estimate_corrected):
        return {"value": "not shown", "interval": f"reliability {row.reliability:.2f}"}
    return _change(row.estimate_corrected, row.ci_low_corrected, row.ci_high_corrected, row.scale)


def _on_scale(row) -> dict | None:
    if math.isnan(row.estimate):
        return None
    return {"value": signed(row.estimate, 3), "interval": f"{signed(row.ci_low, 3)} to {signed(row.ci_high, 3)}"}


def _table_rows(results: pd.DataFrame) -> list[dict]:
    """The results table's rows: the main rows, each with its cross-check when it has one."""
    checks = cross_checks(results)
    return [{
        "kpi": r.kpi,
        "construct": CONSTRUCT_LABELS.get(r.construct, r.construct),
        "change": _change(r.estimate, r.ci_low, r.ci_high, r.scale),
        "corrected": _corrected(r),
        "estimate": _on_scale(r),
        "p": p_text(r.p_value),
        "q": p_text(r.q_value),
        "teams": int(r.n_teams),
        "periods": int(r.n_periods),
        "cross_check": _on_scale(checks[r.kpi, r.construct]) if (r.kpi, r.construct) in checks else None,
        "fell_back": fell_back_to_ols(r),
    } for r in main_results(results).itertuples()]


def _findings(main: pd.DataFrame, every_few: bool) -> list[dict]:
    """Sentences grouped by construct, in the order between teams, within a team, incidents."""
    return [{
        "heading": CONSTRUCT_HEADINGS.get(construct, construct[0].upper() + construct[1:]),
        "findings": [{"sentence": result_sentence(r),
                      "notes": [n for n in (corrected_note(r), *result_notes(r, not every_few)) if n]}
                     for r in group.itertuples()],
    } for construct, group in _by_construct(main)]


def _results(results: pd.DataFrame) -> dict:
    main = main_results(results)
    every_few = _every_few(main)
    rows = _table_rows(results)
    groups = _findings(main, every_few)
    return {
        "rows": rows,
        "groups": groups,
        "every_few": every_few,
        "team_range": _team_range(main) if len(main) else "",
        "forest": _figure(
            forest_plot(main), "Forest plot of model results",
            "Each dot is the estimated change in the KPI (in its rate for counts, in its odds for shares and "
            "attrition) per standard deviation of safety; the line is its 95% interval. Circles: between teams; "
            "diamonds: within a team; squares: incident level. Grey: the interval includes no change. The axis "
            "is logarithmic, so halving and doubling lie equally far from no change."),
    }


def _accountability(results: pd.DataFrame) -> dict | None:
    """The interaction model's rows: accountability's own association and how it changes
    safety's, in sentences (the correction's absence for products said once), a forest plot and
    the table; None when the survey measured no accountability."""
    rows = _of_model(results, INTERACTION_MODEL)
    if rows.empty:
        return None
    rows = rows.assign(warnings=rows["warnings"].fillna("").map(
        lambda w: "; ".join(p for p in w.split("; ") if p != NOT_CORRECTED)))
    main = main_results(rows)
    return {
        "groups": _findings(main, _every_few(main)),
        "rows": _table_rows(rows),
        "forest": _figure(
            forest_plot(main), "Forest plot of accountability and its interaction with safety",
            "Each dot is the estimated change in the KPI per standard deviation of accountability, or (the "
            "interaction) the extra change per standard deviation of safety where accountability is one standard "
            "deviation higher; the line is its 95% interval. Grey: the interval includes no change."),
    }


def _stages(results: pd.DataFrame) -> dict | None:
    """Clark's stages: every stage's rows in a table, sentences for those unlikely to be chance;
    None when the survey measured no stage."""
    models = [ScoreModel((SCORES[s.key],), (SCORES[s.key],)) for s in STAGES]
    rows = pd.concat([_of_model(results, model) for model in models])
    if rows.empty:
        return None
    main = main_results(rows)
    clear = main[main["q_value"].map(unlikely_to_be_chance)]
    return {
        "rows": _table_rows(rows),
        "tested": int(main["q_value"].notna().sum()),
        "findings": _findings(clear, _every_few(main)),
        "n_clear": len(clear),
    }


def _power(main: pd.DataFrame) -> list[dict]:
    """Per KPI (registry order), the smallest detectable effect of each of its results."""
    order = {name: i for i, name in enumerate(KPI_BY_NAME)}
    kpis = sorted(main["kpi"].unique(), key=lambda k: (order.get(k, len(order)), k))
    power = []
    for kpi in kpis:
        rows = main[main["kpi"] == kpi]
        rows = rows.assign(rank=rows["construct"].map(construct_rank)).sort_values("rank", kind="stable")
        sentences = [s for s in (power_sentence(r) for r in rows.itertuples()) if s]
        if sentences:
            power.append({"name": kpi, "sentences": sentences})
    return power


def _correlation_cells(r: float, low: float, high: float, q: float, too_few: bool = False) -> dict:
    """One r of the correlation table as printed: the r, its interval ("n/a" without one) and its
    q; "too few teams" instead of an r from too few (wording.too_few_to_correlate)."""
    if too_few:
        return {"r": "too few teams", "interval": "n/a", "q": "n/a"}
    return {"r": signed(r), "interval": f"{signed(low)} to {signed(high)}" if math.isfinite(low) else "n/a",
            "q": p_text(q)}


def _correlations(correlations: pd.DataFrame) -> dict:
    return {
        "rows": [{"kpi": r.kpi,
                  "adjusted": _correlation_cells(r.size_adjusted_r, r.size_adjusted_ci_low, r.size_adjusted_ci_high,
                                                 r.size_adjusted_q_value, too_few_to_correlate(r)),
                  "plain": _correlation_cells(r.r, r.ci_low, r.ci_high, r.q_value, too_few_to_correlate(r)),
                  "teams": int(r.n_teams), "team_months": int(r.n_team_months)} for r in correlations.itertuples()],
        "sentences": [correlation_sentence(r) for r in correlations.itertuples()],
        "figure": _figure(
            correlation_plot(correlations), "Bar chart of KPI correlations with safety",
            "Bars: partial correlation between a team's average safety score and its KPI allowing for team size "
            "(the team's mean log headcount); whiskers: its 95% interval from resampling teams. Blue bars: unlikely "
            f"to be chance (q below {FALSE_DISCOVERY_RATE}), as in the sentences; grey: could be chance. Diamonds: "
            f"the correlation not adjusted for team size. A KPI with fewer than {MIN_TEAMS_FOR_TESTS} teams has none."),
    }


def _percent(share: float) -> str:
    return "n/a" if math.isnan(share) else f"{share:.0%}"


def _tiles(coverage: Coverage) -> list[dict]:
    tickets = coverage.proactive_tickets + coverage.reactive_tickets + coverage.unclassified_tickets
    tiles = [
        (f"{coverage.teams_with_safety} of {coverage.teams}", "teams with a reportable safety score"),
        (f"{coverage.months}", f"months covered ({coverage.first_month} to {coverage.last_month})"),
        (f"{coverage.team_months_with_safety:,} of {coverage.team_months:,}", "team-months with a safety score"),
        (f"{coverage.team_months_stale_safety:,}",
         "team-months without one because the team's last survey result is too old to carry forward"),
        (f"{coverage.incidents:,}", f"incidents ({coverage.incidents_with_team:,} mapped to a team"
                                    + _without_headcount(coverage) + f", {coverage.incidents_open:,} still open)"),
        (_percent(coverage.acknowledged_share), "of incidents acknowledged by a person"),
        (_percent(coverage.onset_known_share), "of incidents with a known onset"),
        (f"{tickets:,}", f"tickets ({coverage.proactive_tickets:,} proactive, {coverage.reactive_tickets:,} "
                         f"reactive, {coverage.unclassified_tickets:,} unclassified)"),
        (f"{coverage.survey_cells:,}", "team survey results (team x quarter)"),
        (f"{coverage.suppressed_cells:,}", "of them suppressed for anonymity"),
    ]
    return [{"value": value, "label": label} for value, label in tiles]


def _without_headcount(coverage: Coverage) -> str:
    if not coverage.months_without_headcount:
        return ""
    return (f", {coverage.incidents_without_headcount:,} of them in months without an HR headcount snapshot "
            f"({', '.join(coverage.months_without_headcount)}) and so in no team's figures")


def _suppression_note(coverage: Coverage) -> str:
    return suppression_sentence(coverage.survey_cells, coverage.suppressed_cells, coverage.suppressed_too_few)


def _definitions(inputs: ReportInputs) -> list[tuple[str, str]]:
    entries = [(r.kpi, r.definition) for r in inputs.correlations.itertuples()]
    if inputs.results is not None:
        checks = cross_checks(inputs.results)
        for r in main_results(inputs.results).drop_duplicates("kpi").itertuples():
            if r.kpi in KPI_BY_NAME and not KPI_BY_NAME[r.kpi].correlation_words:
                entries.append((r.kpi, KPI_BY_NAME[r.kpi].definition))
            model = r.model + (" (the mixed model's fallback; see its model note)" if fell_back_to_ols(r) else "")
            if (r.kpi, r.construct) in checks:
                model += f"; cross-check: {checks[r.kpi, r.construct].model}"
            entries.append((f"{r.kpi} (model)", model))
    return entries


def _figure(uri: str | None, alt: str, caption: str) -> dict:
    return {"uri": uri, "alt": alt, "caption": caption}
