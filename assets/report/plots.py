"""The report's charts, drawn with matplotlib and embedded as SVG data URIs so the HTML file
stands alone (no server, no external request)."""

from __future__ import annotations

import base64
import io
import math

import matplotlib
import pandas as pd
from matplotlib import dates
from matplotlib.figure import Figure

from assets.models.stats import FALSE_DISCOVERY_RATE
from assets.report.wording import (
    BETWEEN,
    CONSTRUCT_LABELS,
    RELATIVE_SCALES,
    TOTAL,
    WITHIN,
    construct_rank,
    leading_correlation,
    signed_percent,
    too_few_to_correlate,
    unlikely_to_be_chance,
)

INK = "#1f2933"
MUTED = "#7b8794"
CLEAR = "#1d5fa8"  # forest plot: the interval excludes zero; correlations: unlikely to be chance
UNCLEAR = "#9aa5b1"  # otherwise
GRID = "#d9e2ec"
CONSTRUCT_MARKERS = {BETWEEN: "o", WITHIN: "D", TOTAL: "s"}
# The forest plot's axis is log(1 + change); it ends at -75% and +300% (log 4 either way).
AXIS_EDGE = math.log(4)
PERCENT_TICKS = (-75, -50, -25, -10, 0, 10, 25, 50, 100, 200, 300)
STYLE = {
    "svg.fonttype": "path",  # text drawn as paths: the SVG renders the same without fonts
    "svg.hashsalt": "psafe",  # stable element ids, so the same data gives the same file
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "text.color": INK,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def svg_data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(STYLE):
        return Figure(figsize=(width, height), layout="constrained")


def forest_plot(results: pd.DataFrame) -> str | None:
    """The relative change in each KPI (or its rate or odds) per SD of safety with its 95% CI, on a
    log axis labelled in %, grouped by construct as the sentences are; None if nothing to plot.
    The axis spans the intervals but stops at -75% and +300%: an interval reaching past it is
    cut at the edge and ends in an arrow."""
    finite = results[["estimate", "ci_low", "ci_high"]].abs().lt(math.inf).all(axis=1)  # NaN is not finite
    rows = results[results["scale"].isin(RELATIVE_SCALES) & finite]
    rows = rows.assign(rank=rows["construct"].map(construct_rank)).sort_values("rank", kind="stable").iloc[::-1]
    if rows.empty:
        return None
    margin = math.log(1.1)
    left = max(min(rows["ci_low"].min(), -margin) - margin, -AXIS_EDGE)
    right = min(max(rows["ci_high"].max(), margin) + margin, AXIS_EDGE)
    with matplotlib.rc_context(STYLE):
        figure = _figure(9, 1.2 + 0.42 * len(rows))
        axes = figure.add_subplot()
        positions = list(range(len(rows)))
        for y, row in zip(positions, rows.itertuples()):
            colour = UNCLEAR if row.ci_low <= 0 <= row.ci_high else CLEAR
            low, high = max(row.ci_low, left), min(row.ci_high, right)
            axes.hlines(y, low, high, colors=colour, linewidth=2.5)
            for end, cut, marker in ((low, row.ci_low < left, "<"), (high, row.ci_high > right, ">")):
                if cut:
                    axes.plot(end, y, marker=marker, color=colour, markersize=7)
            # An estimate past the edge is labelled at the edge, where its interval's arrow is.
            point = min(max(row.estimate, left), right)
            if point == row.estimate:
                axes.scatter([point], [y], color=colour, s=45, zorder=3,
                             marker=CONSTRUCT_MARKERS.get(row.construct, "o"))
            align = "center" if point == row.estimate else "left" if point == left else "right"
            axes.annotate(signed_percent(100 * math.expm1(row.estimate)), (point, y), xytext=(0, 7),
                          textcoords="offset points", ha=align, fontsize=8, color=INK)
        axes.axvline(0, color=MUTED, linewidth=1, linestyle="--")
        constructs = list(rows["construct"])
        for y in range(len(rows) - 1):
            if constructs[y] != constructs[y + 1]:  # a thin rule between the construct groups
                axes.axhline(y + 0.5, color=GRID, linewidth=0.8)
        labels = [f"{row.kpi}\n{CONSTRUCT_LABELS.get(row.construct, row.construct)}" for row in rows.itertuples()]
        axes.set_yticks(positions, labels, fontsize=8)
        ticks = [p for p in PERCENT_TICKS if left <= math.log1p(p / 100) <= right]
        if right - left > 1.2:  # a wide axis: ±10% would crowd the zero line
            ticks = [p for p in ticks if abs(p) != 10]
        axes.set_xticks([math.log1p(p / 100) for p in ticks], [signed_percent(p) if p else "0%" for p in ticks])
        axes.set_xlim(left, right)
        axes.set_xlabel("% change per standard deviation of safety, with 95% CI "
                        "(in the KPI for times, its rate for counts, its odds for shares and attrition)")
        axes.set_ylim(-0.7, len(rows) - 0.3)
        return svg_data_uri(figure)


def correlation_plot(correlations: pd.DataFrame) -> str | None:
    """Per KPI, the figure its sentence leads with (``leading_correlation``: the r allowing for
    team size) as a bar with its 95% team-bootstrap interval, blue only when unlikely to be
    chance (the sentences' rule), and the r not adjusted for team size as a hollow diamond; no
    KPI with too few teams for either (``too_few_to_correlate``)."""
    rows = correlations.dropna(subset=["r"])
    rows = rows[[not too_few_to_correlate(row) for row in rows.itertuples()]].iloc[::-1]
    if rows.empty:
        return None
    leading = [leading_correlation(row) for row in rows.itertuples()]
    with matplotlib.rc_context(STYLE):
        figure = _figure(9, 0.9 + 0.42 * len(rows))
        axes = figure.add_subplot()
        colours = [CLEAR if unlikely_to_be_chance(q) else UNCLEAR for *_, q in leading]
        positions = list(range(len(rows)))
        axes.barh(positions, [r for _, r, *_ in leading], color=colours, height=0.55)
        spanned = [(y, r, low, high) for y, (_, r, low, high, *_) in zip(positions, leading) if math.isfinite(low)]
        if spanned:
            ys, rs, lows, highs = map(list, zip(*spanned))
            below, above = [r - low for r, low in zip(rs, lows)], [high - r for r, high in zip(rs, highs)]
            axes.errorbar(rs, ys, xerr=[below, above], fmt="none", ecolor=INK, elinewidth=1.2, capsize=3)
        axes.scatter(rows["r"], positions, marker="D", s=30, facecolors="white", edgecolors=INK, zorder=3,
                     label="not adjusted for team size")
        axes.axvline(0, color=MUTED, linewidth=1)
        axes.set_yticks(positions, list(rows["kpi"]))
        axes.set_xlim(-1, 1)
        axes.legend(loc="lower left", bbox_to_anchor=(0, 1), frameon=False, fontsize=8)
        axes.set_xlabel("correlation with team safety allowing for team size (partial r, 95% CI); "
                        f"blue: unlikely to be chance (q < {FALSE_DISCOVERY_RATE})")
        return svg_data_uri(figure)


def coverage_plot(monthly: pd.DataFrame) -> str | None:
    """Per month: teams in the data and those with a reportable safety score; incidents and tickets."""
    if monthly.empty:
        return None
    with matplotlib.rc_context(STYLE):
        figure = _figure(9, 4.4)
        teams_axes, volume_axes = figure.subplots(2, 1, sharex=True)
        months = pd.to_datetime(monthly["period_month"])
        width = 20  # days: one bar per month with a gap
        teams_axes.bar(months, monthly["teams"], width=width, color="#d9e2ec", label="teams in the data")
        teams_axes.bar(months, monthly["teams_with_safety"], width=width, color=CLEAR,
                       label="with a reportable safety score")
        teams_axes.set_ylabel("teams")
        teams_axes.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=2, frameon=False, fontsize=8)
        volume_axes.plot(months, monthly["incidents"], color="#c2410c", marker="o", markersize=3, label="incidents")
        volume_axes.plot(months, monthly["tickets"], color="#0f766e", marker="o", markersize=3, label="tickets")
        volume_axes.set_ylabel("per month")
        volume_axes.set_ylim(bottom=0)
        volume_axes.legend(loc="lower left", bbox_to_anchor=(0, 1), ncols=2, frameon=False, fontsize=8)
        volume_axes.xaxis.set_major_formatter(dates.DateFormatter("%b\n%Y"))
        return svg_data_uri(figure)


ZONE_COLOURS = {"learning": "#1d5fa8", "comfort": "#0f766e", "anxiety": "#c2410c", "apathy": "#7b8794"}


def zone_plot(points: pd.DataFrame, counts: dict[str, int], scale_points: int) -> str | None:
    """Edmondson's four zones for one wave: each team a point at its safety and accountability
    means (unnamed), the thresholds as lines, and how many teams each zone holds."""
    if points.empty:
        return None
    safety_line, accountability_line = points["safety_threshold"].iloc[0], points["accountability_threshold"].iloc[0]
    with matplotlib.rc_context(STYLE):
        figure = _figure(6.2, 5.2)
        axes = figure.add_subplot()
        for zone, group in points.groupby("zone"):
            axes.scatter(group["safety_mean"], group["accountability_mean"], s=36, color=ZONE_COLOURS[zone],
                         alpha=0.85, edgecolors="white", linewidths=0.6)
        axes.axvline(safety_line, color=MUTED, linewidth=1, linestyle="--")
        axes.axhline(accountability_line, color=MUTED, linewidth=1, linestyle="--")
        axes.set_xlim(1, scale_points)
        axes.set_ylim(1, scale_points)
        corners = {"learning": (0.98, 0.98, "right", "top"), "comfort": (0.98, 0.02, "right", "bottom"),
                   "anxiety": (0.02, 0.98, "left", "top"), "apathy": (0.02, 0.02, "left", "bottom")}
        for zone, (x, y, ha, va) in corners.items():
            axes.text(x, y, f"{zone} zone: {counts.get(zone, 0)}", transform=axes.transAxes, ha=ha, va=va,
                      color=ZONE_COLOURS[zone], fontsize=9, fontweight="bold")
        axes.set_xlabel("team's psychological safety (mean, 1 to %d)" % scale_points)
        axes.set_ylabel("team's accountability (mean, 1 to %d)" % scale_points)
        return svg_data_uri(figure)
