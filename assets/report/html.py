"""The CIO report as one self-contained HTML file: inline CSS, charts as SVG data URIs, no
script and a content security policy that forbids loading anything from elsewhere."""

from __future__ import annotations

import math
from datetime import datetime
from html import escape

import pandas as pd

from assets.models.stats import MIN_TEAMS_FOR_CLUSTER_SE, MIN_TEAMS_FOR_TESTS
from assets.report.inputs import RESULTS_TABLE, Coverage, ReportInputs
from assets.report.plots import correlation_plot, coverage_plot, forest_plot
from assets.report.wording import (
    CAVEATS,
    CONSTRUCT_HEADINGS,
    CONSTRUCT_LABELS,
    FALSE_DISCOVERY_RATE,
    RESULT_KPI_DEFINITIONS,
    SUPPRESSION_THRESHOLD,
    construct_rank,
    correlation_sentence,
    fell_back_to_ols,
    p_text,
    relative_change,
    result_notes,
    result_sentence,
    signed,
    signed_percent,
)

TITLE = "Psychological safety and operational KPIs"

CSS = """
:root { --ink:#1f2933; --muted:#52606d; --line:#d9e2ec; --soft:#f5f7fa; --accent:#1d5fa8;
        --warn-bg:#fff8e6; --warn-line:#e8a317; }
* { box-sizing: border-box; }
body { margin:0; background:#eef2f6; color:var(--ink);
       font: 15px/1.55 "Segoe UI", "Helvetica Neue", Arial, "Liberation Sans", sans-serif; }
main { max-width: 980px; margin: 0 auto; background:#fff; padding: 40px 56px 48px;
       box-shadow: 0 1px 4px rgba(31,41,51,.12); }
header { border-bottom: 3px solid var(--accent); padding-bottom: 14px; margin-bottom: 24px; }
h1 { font-size: 28px; line-height:1.2; margin: 0 0 6px; }
.subtitle { color: var(--muted); margin: 0; }
h2 { font-size: 20px; margin: 36px 0 10px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 16px; margin: 20px 0 6px; }
p { margin: 8px 0; }
.lede { font-size: 16px; }
.callout { border-left: 5px solid var(--accent); background: var(--soft); padding: 12px 18px; margin: 16px 0; }
.warning { border-left: 5px solid var(--warn-line); background: var(--warn-bg); padding: 12px 18px; margin: 16px 0; }
.callout p, .warning p { margin: 4px 0; }
ul.findings { padding-left: 20px; }
ul.findings li { margin: 6px 0; }
table { border-collapse: collapse; width: 100%; margin: 10px 0 6px; font-size: 14px; }
table.dense { font-size: 13px; }
table.dense th, table.dense td { padding: 6px 6px; }
table.dense td:first-child { white-space: normal; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; border-bottom: 2px solid var(--line); }
td:first-child { white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 14px 0 6px; }
figure img { display: block; width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.tiles { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; margin: 12px 0; }
.tile { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 10px 14px; }
.tile .value { font-size: 22px; font-weight: 600; font-variant-numeric: tabular-nums; }
.tile .label { color: var(--muted); font-size: 13px; }
.note { color: var(--muted); font-size: 13px; font-style: italic; }
.ci { color: var(--muted); font-size: 12px; }
dl.definitions dt { font-weight: 600; margin-top: 10px; }
dl.definitions dd { margin: 2px 0 0 0; color: var(--muted); }
footer { margin-top: 36px; padding-top: 12px; border-top: 1px solid var(--line); color: var(--muted); font-size: 13px; }
code { font-size: 13px; }
@media print { body { background:#fff; } main { box-shadow:none; padding: 0; } h2 { break-after: avoid; } }
"""


def render_report(inputs: ReportInputs, generated_at: datetime, export_names: list[str]) -> str:
    coverage = inputs.coverage
    parts = [
        _header(coverage, generated_at),
        _read_first(),
        _few_teams_banner(inputs),
        _results_section(inputs.results),
        _correlations_section(inputs.correlations),
        _coverage_section(coverage, inputs.monthly),
        _caveats_section(),
        _definitions_section(inputs),
        _footer(export_names),
    ]
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta http-equiv=\"Content-Security-Policy\" "
        "content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        f"<title>{escape(TITLE)}</title><style>{CSS}</style></head>\n<body><main>\n"
        + "\n".join(part for part in parts if part)
        + "\n</main></body></html>\n"
    )


def _header(coverage: Coverage, generated_at: datetime) -> str:
    period = f"{coverage.first_month} to {coverage.last_month}" if coverage.months else "no months yet"
    return (
        f"<header><h1>{escape(TITLE)}</h1>"
        f"<p class=\"subtitle\">Data from {escape(period)} &middot; {coverage.teams} teams &middot; "
        f"generated {generated_at:%d %B %Y, %H:%M} UTC</p></header>"
    )


def _read_first() -> str:
    return (
        "<section class=\"callout\" id=\"read-first\"><p class=\"lede\"><strong>Read this first.</strong> "
        "This report relates how safe people feel to speak up in their team (quarterly survey) to how the "
        "team's incidents, tickets and staffing went in the following quarter. Every figure is an "
        "<strong>association, not a cause</strong>: it shows which teams tend to go together with which "
        "outcomes, not what would happen if safety changed. See <a href=\"#caveats\">How to read these "
        "numbers</a>.</p></section>"
    )


def _few_teams_banner(inputs: ReportInputs) -> str:
    counts = list(inputs.correlations["n_teams"])
    if inputs.results is not None:
        counts += list(main_results(inputs.results)["n_teams"])
    fewest = min((int(n) for n in counts), default=0)
    if fewest >= MIN_TEAMS_FOR_CLUSTER_SE:
        return ""
    return (
        "<section class=\"warning\" id=\"few-teams\"><p><strong>Fewer than "
        f"{MIN_TEAMS_FOR_CLUSTER_SE} teams.</strong> Some results rest on only {fewest} teams. "
        f"Below {MIN_TEAMS_FOR_CLUSTER_SE} teams, team-clustered standard errors are unreliable and the "
        "intervals in this report are optimistic: treat them as narrower than the truth.</p></section>"
    )


def _results_section(results: pd.DataFrame | None) -> str:
    heading = "<section id=\"results\"><h2>Model results</h2>"
    if results is None:
        return heading + (
            f"<p class=\"warning\">The model results table (<code>{escape(RESULTS_TABLE)}</code>) is not in "
            "the warehouse yet, so this report has no model results. Run the pipeline's models first.</p></section>"
        )
    main = main_results(results)
    if main.empty:
        return heading + "<p class=\"warning\">The models produced no results for this data.</p></section>"
    checks = cross_checks(results)
    rows = "".join(
        "<tr>"
        f"<td>{escape(r.kpi)}</td><td>{escape(CONSTRUCT_LABELS.get(r.construct, r.construct))}</td>"
        f"<td class=\"num\">{_change_with_interval(r)}</td>"
        f"<td class=\"num\">{_estimate_with_interval(r)}</td>"
        f"<td class=\"num\">{p_text(r.p_value)}</td><td class=\"num\">{p_text(r.q_value)}</td>"
        f"<td class=\"num\">{int(r.n_teams)}</td><td class=\"num\">{int(r.n_periods)}</td>"
        f"<td class=\"num\">{_cross_check_cell(r, checks.get((r.kpi, r.construct)))}</td>"
        "</tr>"
        for r in main.itertuples()
    )
    every_result_few = bool((main["n_teams"] < MIN_TEAMS_FOR_CLUSTER_SE).all())
    few_teams = (
        f"<p class=\"note\">Every result below rests on fewer than {MIN_TEAMS_FOR_CLUSTER_SE} teams "
        f"({_team_range(main)}): treat each interval as optimistic.</p>" if every_result_few else ""
    )
    findings = "".join(
        f"<h3>{escape(CONSTRUCT_HEADINGS.get(construct, construct))}</h3><ul class=\"findings\">"
        + "".join(
            f"<li>{escape(result_sentence(r))}"
            + "".join(f" <span class=\"note\">{escape(note)}</span>" for note in result_notes(r, not every_result_few))
            + "</li>"
            for r in group.itertuples()
        )
        + "</ul>"
        for construct, group in _by_construct(main)
    )
    figure = _figure(
        forest_plot(main), "Forest plot of model results",
        "Each dot is the estimated change in the KPI (in its rate for counts, in its odds for shares and "
        "attrition) per standard deviation of safety; the line is its 95% interval. Circles: between teams; "
        "diamonds: within a team; squares: incident level. Grey: the interval includes no change. The axis is "
        "logarithmic, so halving and doubling lie equally far from no change.",
    )
    return (
        heading
        + "<p>Each model relates a KPI to the team's psychological safety score from the previous quarter, in "
        "standard deviations of team scores, adjusting for team size. Safety is split in two. <strong>Between "
        "teams</strong> compares a team's average with other teams': such differences can also reflect anything "
        "else that differs between teams. <strong>Within a team</strong> compares a quarter with the team's own "
        "average: it shows whether the same team does differently after its safer quarters. \"Unlikely to be "
        f"chance\" means a Benjamini-Hochberg q below {FALSE_DISCOVERY_RATE}, which allows for the number of "
        "results tested.</p>"
        + few_teams
        + findings
        + figure
        + "<table id=\"results-table\" class=\"dense\"><thead><tr><th>KPI</th><th>Safety</th>"
        "<th class=\"num\">Change per SD<br>(95% CI)</th><th class=\"num\">Estimate<br>(95% CI)</th>"
        "<th class=\"num\">p</th><th class=\"num\">q (BH)</th><th class=\"num\">Teams</th>"
        "<th class=\"num\">Periods</th><th class=\"num\">OLS cross-check<br>(95% CI)</th>"
        f"</tr></thead><tbody>{rows}</tbody></table>"
        + "<p class=\"subtitle\">Estimate and CI on the model's scale: log ratio for times, log rate ratio for "
        "incident counts, log odds ratio for shares and attrition; \"change per SD\" is the same estimate as a "
        "percentage change (of the rate or the odds where the scale says so). p and q read n/a below "
        f"{MIN_TEAMS_FOR_TESTS} teams (too few teams to test); q is the Benjamini-Hochberg adjusted p over all "
        "main results. Cross-check: the same outcome fitted by team-clustered OLS next to the main mixed model; "
        "close values mean the result does not hinge on the mixed model. \"main is OLS\" marks a mixed model "
        "that fell back to the clustered OLS (its model note says why). Every model is named under "
        "<a href=\"#definitions\">What each KPI means</a>; the exports hold every row, cross-checks included.</p>"
        + "</section>"
    )


def _team_range(results: pd.DataFrame) -> str:
    fewest, most = int(results["n_teams"].min()), int(results["n_teams"].max())
    return f"{most} teams" if fewest == most else f"{fewest} to {most} teams"


def main_results(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["role"] == "main"]


def cross_checks(results: pd.DataFrame) -> dict[tuple[str, str], object]:
    """The cross-check row of each (kpi, construct) that has one."""
    return {(r.kpi, r.construct): r for r in results[results["role"] == "cross-check"].itertuples()}


def _by_construct(main: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    constructs = sorted(main["construct"].unique(), key=lambda c: (construct_rank(c), c))
    return [(construct, main[main["construct"] == construct]) for construct in constructs]


def _change_with_interval(row) -> str:
    change = relative_change(row)
    if change is None:
        return "n/a"
    low, high = math.expm1(row.ci_low) * 100, math.expm1(row.ci_high) * 100
    interval = f"{signed_percent(low)} to {signed_percent(high)}"
    return f"{signed_percent(change * 100)}<br><span class=\"ci\">{interval}</span>"


def _estimate_with_interval(row) -> str:
    return f"{signed(row.estimate, 3)}<br><span class=\"ci\">{signed(row.ci_low, 3)} to {signed(row.ci_high, 3)}</span>"


def _cross_check_cell(main, check) -> str:
    if check is not None:
        return _estimate_with_interval(check)
    if fell_back_to_ols(main):
        return "main is OLS"
    return "&mdash;"


def _correlations_section(correlations: pd.DataFrame) -> str:
    rows = "".join(
        "<tr>"
        f"<td>{escape(r.kpi)}</td><td class=\"num\">{signed(r.r)}</td>"
        f"<td class=\"num\">{signed(r.ci_low)} to {signed(r.ci_high)}</td>"
        f"<td class=\"num\">{int(r.n_teams)}</td><td class=\"num\">{int(r.n_team_months)}</td>"
        "</tr>"
        for r in correlations.itertuples()
    )
    sentences = "".join(f"<li>{escape(correlation_sentence(r))}</li>" for r in correlations.itertuples())
    plot = correlation_plot(correlations)
    figure = _figure(
        plot, "Bar chart of KPI correlations with safety",
        "Bars: correlation between a team's average safety score and its KPI; whiskers: 95% interval "
        "from resampling teams. Grey bars: the interval includes zero.",
    )
    return (
        "<section id=\"correlations\"><h2>KPI correlation table</h2>"
        "<p>Between teams: how a team's average lagged safety score goes with each KPI over the whole period. "
        "r runs from &minus;1 to +1; 0 means no linear association.</p>"
        "<table id=\"correlation-table\"><thead><tr><th>KPI</th><th class=\"num\">r</th>"
        "<th class=\"num\">95% CI</th><th class=\"num\">Teams</th><th class=\"num\">Team-months</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        f"<ul class=\"findings\">{sentences}</ul>"
        + figure
        + "</section>"
    )


def _percent(share: float) -> str:
    return "n/a" if math.isnan(share) else f"{share:.0%}"


def _coverage_section(coverage: Coverage, monthly: pd.DataFrame) -> str:
    tickets = coverage.proactive_tickets + coverage.reactive_tickets + coverage.unclassified_tickets
    tiles = [
        (f"{coverage.teams_with_safety} of {coverage.teams}", "teams with a reportable safety score"),
        (f"{coverage.months}", f"months covered ({coverage.first_month} to {coverage.last_month})"),
        (f"{coverage.team_months_with_safety:,} of {coverage.team_months:,}", "team-months with a safety score"),
        (f"{coverage.incidents:,}", f"incidents ({coverage.incidents_with_team:,} mapped to a team, "
                                    f"{coverage.incidents_open:,} still open)"),
        (_percent(coverage.acknowledged_share), "of incidents acknowledged by a person"),
        (_percent(coverage.onset_known_share), "of incidents with a known onset"),
        (f"{tickets:,}", f"tickets ({coverage.proactive_tickets:,} proactive, {coverage.reactive_tickets:,} "
                         f"reactive, {coverage.unclassified_tickets:,} unclassified)"),
        (f"{coverage.survey_cells:,}", "team survey results (team x quarter)"),
        (f"{coverage.suppressed_cells:,}", "of them suppressed for anonymity"),
    ]
    tile_html = "".join(
        f"<div class=\"tile\"><div class=\"value\">{escape(value)}</div>"
        f"<div class=\"label\">{escape(label)}</div></div>"
        for value, label in tiles
    )
    figure = _figure(
        coverage_plot(monthly), "Data coverage by month",
        "Top: teams in the data each month and those with a reportable safety score from an earlier quarter. "
        "Bottom: incidents and tickets counted per month.",
    )
    return (
        "<section id=\"coverage\"><h2>Data coverage</h2>"
        f"<div class=\"tiles\">{tile_html}</div>"
        + figure
        + _suppression_note(coverage)
        + "</section>"
    )


def _suppression_note(coverage: Coverage) -> str:
    if coverage.suppressed_cells == 0:
        text = (
            f"No team survey result was suppressed: every team-quarter had at least {SUPPRESSION_THRESHOLD} "
            "respondents."
        )
    else:
        text = (
            f"{coverage.suppressed_cells} of {coverage.survey_cells} team survey results (team x quarter) had "
            f"fewer than {SUPPRESSION_THRESHOLD} respondents and are suppressed to protect anonymity: their "
            "scores appear nowhere in this report or its exports, and the affected teams count as having no "
            "safety score for the following quarter."
        )
    return f"<p class=\"callout\" id=\"suppression-note\"><strong>Suppressed cells.</strong> {escape(text)}</p>"


def _caveats_section() -> str:
    items = "".join(f"<li><strong>{escape(title)}</strong> {escape(text)}</li>" for title, text in CAVEATS)
    return f"<section id=\"caveats\"><h2>How to read these numbers</h2><ul class=\"findings\">{items}</ul></section>"


def _definitions_section(inputs: ReportInputs) -> str:
    entries = [(r.kpi, r.definition) for r in inputs.correlations.itertuples()]
    if inputs.results is not None:
        checks = cross_checks(inputs.results)
        for r in main_results(inputs.results).drop_duplicates("kpi").itertuples():
            if r.kpi in RESULT_KPI_DEFINITIONS:
                entries.append((r.kpi, RESULT_KPI_DEFINITIONS[r.kpi]))
            model = r.model + (" (the mixed model's fallback; see its model note)" if fell_back_to_ols(r) else "")
            if (r.kpi, r.construct) in checks:
                model += f"; cross-check: {checks[r.kpi, r.construct].model}"
            entries.append((f"{r.kpi} (model)", model))
    items = "".join(f"<dt>{escape(kpi)}</dt><dd>{escape(text)}</dd>" for kpi, text in entries)
    return (
        "<section id=\"definitions\"><h2>What each KPI means</h2>"
        "<p>Safety is the team's mean score on Edmondson's seven-item psychological safety survey from the "
        "previous quarter, in standard deviations across teams and quarters. Times are measured from the "
        "incident's trigger in PagerDuty; tickets come from Jira; attrition from HR exports.</p>"
        f"<dl class=\"definitions\">{items}</dl></section>"
    )


def _figure(uri: str | None, alt: str, caption: str) -> str:
    if uri is None:
        return f"<p class=\"subtitle\">No data to plot for: {escape(alt.lower())}.</p>"
    return (
        f"<figure><img src=\"{uri}\" alt=\"{escape(alt)}\">"
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def _footer(export_names: list[str]) -> str:
    files = ", ".join(f"<code>{escape(name)}</code>" for name in export_names)
    return (
        "<footer><p>Produced by the psafe nightly pipeline. The tables are also exported next to this file "
        f"as {files}.</p><p>Definitions follow the project's metrics contract (docs/metrics.md).</p></footer>"
    )
