"""Plain-language sentences for the CIO report, one per result and per correlation.

Each sentence carries its estimate, its 95% interval and the number of teams, and ends by
saying it is an association. Numbers are formatted here and nowhere else, so the table and
the sentence next to it always agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from assets.models.stats import MIN_TEAMS_FOR_CLUSTER_SE, cluster_warning
from assets.report.inputs import SAFETY_PER_SD

MINUS = "\u2212"
SUPPRESSION_THRESHOLD = 5  # respondents; METRICS.md anonymity rule
ASSOCIATION = "this is an association, not proof of cause"


@dataclass(frozen=True)
class Outcome:
    """How a KPI's model estimate reads on a natural scale: every model behind these KPIs has a
    log or logit link, so exp(estimate) - 1 is the relative change in the KPI (or its odds).
    ``phrase`` completes a subject such as "Teams one standard deviation safer ..." around ``{change}``, which
    becomes e.g. "22% less"; ``down`` and ``up`` are the words for each direction."""

    phrase: str
    down: str = "less"
    up: str = "more"

    def change(self, log_value: float) -> str:
        relative = math.expm1(log_value)
        return f"{percent(relative)} {self.down if relative < 0 else self.up}"


RESULT_OUTCOMES = {
    "log TTR": Outcome("took {change} time to resolve incidents"),
    "log median TTR": Outcome("took {change} time to resolve incidents"),
    "log median TTA": Outcome("took {change} time to acknowledge incidents"),
    "proactive share": Outcome("had {change} odds that a ticket was raised proactively", "lower", "higher"),
    "voluntary attrition": Outcome("had {change} odds of a person leaving voluntarily", "lower", "higher"),
    "incidents per head": Outcome("recorded {change} incidents per person", "fewer", "more"),
}

# The subject of a result's sentence, per construct; others read "Teams one unit higher on <construct>".
CONSTRUCT_SUBJECTS = {SAFETY_PER_SD: "Teams one standard deviation safer"}

# What each KPI of the correlation table measures, in words.
KPI_WORDS = {
    "log median TTR": "median times to resolve incidents",
    "log median TTA": "median times to acknowledge incidents",
    "proactive share": "proportions of tickets raised proactively (risks, near misses, improvements)",
    "voluntary attrition": "voluntary attrition",
    "incidents per head": "incident counts per person",
}
REPORTING_BIAS_KPIS = {"incidents per head"}


def signed(value: float, digits: int = 2) -> str:
    """A number with a typographic minus, as printed in the report's tables and sentences."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:.{digits}f}"
    return text.replace("-", MINUS)


def signed_percent(value: float) -> str:
    """A percentage change with its sign, e.g. "−19%" or "+4%"."""
    return f"{value:+.0f}%".replace("-", MINUS)


def p_text(p: float) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def percent(value: float) -> str:
    return f"{abs(value) * 100:.0f}%"


def few_teams_note(n_teams: int) -> str:
    if n_teams >= MIN_TEAMS_FOR_CLUSTER_SE:
        return ""
    return f"Only {n_teams} teams (fewer than {MIN_TEAMS_FOR_CLUSTER_SE}): treat this interval as optimistic."


def result_notes(row) -> list[str]:
    """The caveats attached to a result: too few teams, and whatever else the model warned of
    (the cluster warning itself is replaced by the plainer few-teams note)."""
    n_teams = int(row.n_teams)
    notes = [few_teams_note(n_teams)]
    other = (row.warnings or "").replace(cluster_warning(n_teams), "").strip(" ;,.")
    if other:
        notes.append(f"Model note: {other}.")
    return [note for note in notes if note]


def result_sentence(row) -> str:
    """One sentence for a KPI x construct result (a row shaped like ``RESULT_COLUMNS``)."""
    outcome = RESULT_OUTCOMES.get(row.kpi)
    n_teams = int(row.n_teams)
    if math.isnan(row.estimate):
        return f"No estimate for {row.kpi} ({row.construct}): the model could not be fitted on this data."
    if outcome is None:
        return (
            f"For {row.kpi}, a one-unit higher {row.construct} went with a change of "
            f"{signed(row.estimate, 3)} on the model's scale (95% CI {signed(row.ci_low, 3)} to "
            f"{signed(row.ci_high, 3)}; {row.model}), across {n_teams} teams; {ASSOCIATION}."
        )
    low, high = math.expm1(row.ci_low), math.expm1(row.ci_high)
    if low < 0 < high:
        interval = (
            f"95% CI from {outcome.change(row.ci_low)} to {outcome.change(row.ci_high)}: "
            "the interval includes no difference"
        )
    else:
        near, far = sorted((low, high), key=abs)
        interval = f"95% CI {percent(near)} to {percent(far)}"
    effect = outcome.phrase.format(change=outcome.change(row.estimate))
    subject = CONSTRUCT_SUBJECTS.get(row.construct, f"Teams one unit higher on {row.construct}")
    return f"{subject} {effect} ({interval}), across {n_teams} teams; {ASSOCIATION}."


def correlation_sentence(row) -> str:
    """One sentence for a row of the KPI correlation table."""
    what = KPI_WORDS.get(row.kpi, row.kpi)
    n_teams = int(row.n_teams)
    if math.isnan(row.r):
        return f"Too few teams ({n_teams}) had both a safety score and {what} to estimate a correlation."
    numbers = f"r = {signed(row.r)}, 95% CI {signed(row.ci_low)} to {signed(row.ci_high)}"
    if row.ci_low <= 0 <= row.ci_high:
        sentence = (
            f"Across {n_teams} teams, no clear association between safety and {what} "
            f"({numbers}; the interval includes zero)."
        )
    else:
        direction = "higher" if row.r > 0 else "lower"
        sentence = f"Across {n_teams} teams, safer teams had {direction} {what} ({numbers})."
    if row.kpi in REPORTING_BIAS_KPIS:
        sentence += (
            " Safer teams may simply report more incidents, so read a higher figure as "
            "possible reporting, not as worse operations."
        )
    return sentence


# What every reader of the figures must keep in mind: in the report and in its workbook.
CAVEATS = (
    ("Associations, not causes.",
     "Safer teams may differ from other teams in many ways (size, the systems they run, their managers). "
     "The models adjust for team size where stated, but no figure here shows that raising safety would "
     "change a KPI."),
    ("Reporting bias.",
     "Safer teams may report more incidents and near misses because people there are comfortable raising "
     "them. More recorded incidents or proactive tickets can mean better reporting, not worse operations."),
    ("Accountability.",
     "These figures describe groups of teams. Do not use them to rank, reward or blame teams or managers: "
     "once survey scores carry consequences, people answer strategically and both the scores and their "
     "link to the KPIs lose their meaning. People accountable for outcomes may also answer surveys "
     "differently from the rest of their team."),
    ("Few teams.",
     f"Uncertainty is measured across teams. With fewer than {MIN_TEAMS_FOR_CLUSTER_SE} teams the "
     "intervals are optimistic, and every affected result says so."),
    ("Anonymity.",
     f"A team's survey result with fewer than {SUPPRESSION_THRESHOLD} respondents is never shown or "
     "used; teams that are often suppressed are under-represented."),
)
