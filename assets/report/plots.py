"""The report's charts, drawn with matplotlib and embedded as SVG data URIs so the HTML file
stands alone (no server, no external request)."""

from __future__ import annotations

import base64
import io
import math

import matplotlib
import pandas as pd
from matplotlib import dates, ticker
from matplotlib.figure import Figure

from assets.report.inputs import SAFETY_PER_SD
from assets.report.wording import RESULT_OUTCOMES, signed_percent

INK = "#1f2933"
MUTED = "#7b8794"
CLEAR = "#1d5fa8"  # interval excludes zero
UNCLEAR = "#9aa5b1"  # interval includes zero
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
    """Relative change in each KPI per SD of safety with its 95% CI; None if nothing to plot.
    Only results with a natural-scale reading (log or logit link) share the percentage axis."""
    rows = results[results["kpi"].isin(RESULT_OUTCOMES)].dropna(subset=["estimate", "ci_low", "ci_high"]).iloc[::-1]
    if rows.empty:
        return None
    with matplotlib.rc_context(STYLE):
        figure = _figure(9, 1.1 + 0.45 * len(rows))
        axes = figure.add_subplot()
        change = [100 * math.expm1(v) for v in rows["estimate"]]
        low = [100 * math.expm1(v) for v in rows["ci_low"]]
        high = [100 * math.expm1(v) for v in rows["ci_high"]]
        colours = [UNCLEAR if lo <= 0 <= hi else CLEAR for lo, hi in zip(low, high)]
        positions = range(len(rows))
        axes.hlines(positions, low, high, colors=colours, linewidth=2.5)
        axes.scatter(change, positions, color=colours, s=45, zorder=3)
        axes.axvline(0, color=MUTED, linewidth=1, linestyle="--")
        one_construct = rows["construct"].nunique() == 1
        labels = rows["kpi"] if one_construct else rows["kpi"] + "\n" + rows["construct"]
        axes.set_yticks(list(positions), list(labels))
        per = "standard deviation of safety" if set(rows["construct"]) == {SAFETY_PER_SD} else "unit of the construct"
        axes.set_xlabel(f"% change in the KPI (or its odds) per {per}, with 95% CI")
        axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: signed_percent(v)))
        axes.set_ylim(-0.7, len(rows) - 0.3)
        for y, value in zip(positions, change):
            axes.annotate(signed_percent(value), (value, y), xytext=(0, 7), textcoords="offset points",
                          ha="center", fontsize=8, color=INK)
        return svg_data_uri(figure)


def correlation_plot(correlations: pd.DataFrame) -> str | None:
    """Between-team r of safety with each KPI as bars with 95% team-bootstrap intervals."""
    rows = correlations.dropna(subset=["r"]).iloc[::-1]
    if rows.empty:
        return None
    with matplotlib.rc_context(STYLE):
        figure = _figure(9, 0.9 + 0.42 * len(rows))
        axes = figure.add_subplot()
        colours = [UNCLEAR if lo <= 0 <= hi else CLEAR for lo, hi in zip(rows["ci_low"], rows["ci_high"])]
        positions = list(range(len(rows)))
        axes.barh(positions, rows["r"], color=colours, height=0.55)
        axes.errorbar(rows["r"], positions, xerr=[rows["r"] - rows["ci_low"], rows["ci_high"] - rows["r"]],
                      fmt="none", ecolor=INK, elinewidth=1.2, capsize=3)
        axes.axvline(0, color=MUTED, linewidth=1)
        axes.set_yticks(positions, list(rows["kpi"]))
        axes.set_xlim(-1, 1)
        axes.set_xlabel("correlation r with team safety (95% CI; grey: interval includes zero)")
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
