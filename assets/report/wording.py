"""Plain-language sentences for the CIO report, one per result and per correlation.

Each result sentence reads the estimate on its scale (a % change in a time or a count, or in
odds), carries its 95% interval, the number of teams and whether it survives the correction for
testing many results, and ends by saying it is an association. Numbers are formatted here and
nowhere else, so the table and the sentence next to it always agree.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from assets.models.stats import CONSTRUCTS, MIN_TEAMS_FOR_CLUSTER_SE, MIN_TEAMS_FOR_TESTS, cluster_warning

MINUS = "\u2212"
SUPPRESSION_THRESHOLD = 5  # respondents; METRICS.md anonymity rule
FALSE_DISCOVERY_RATE = 0.05  # a q below this reads as unlikely to be chance
ASSOCIATION = "An association, not proof of cause."

BETWEEN = CONSTRUCTS["safety_between"]
WITHIN = CONSTRUCTS["safety_within"]
TOTAL = "safety (total)"  # incident-level models: safety not split into within and between

# The scales whose estimates read as relative changes: exp(estimate) - 1 is the change in the
# KPI (log ratio), in its rate (log rate ratio) or in its odds (log odds ratio) per SD of safety.
RATIO = "log ratio per SD"
RATE_RATIO = "log rate ratio per SD"
ODDS_RATIO = "log odds ratio per SD"
RELATIVE_SCALES = (RATIO, RATE_RATIO, ODDS_RATIO)


@dataclass(frozen=True)
class Outcome:
    """How a KPI's estimate on ``scale`` reads. ``noun`` holds ``{change}``, which becomes e.g.
    "21% shorter"; ``down`` and ``up`` are the words for each direction. Between teams the
    sentence reads "a team ... <verb> <noun>", within a team "a quarter ... was followed by <noun>"."""

    scale: str
    verb: str
    noun: str
    down: str = "lower"
    up: str = "higher"

    def change(self, log_value: float) -> str:
        relative = math.expm1(log_value)
        return f"{percent(relative)} {self.down if relative < 0 else self.up}"


RESULT_OUTCOMES = {
    "log median TTR": Outcome(RATIO, "had", "a {change} median time to resolve incidents", "shorter", "longer"),
    "log median TTA": Outcome(RATIO, "had", "a {change} median time to acknowledge incidents", "shorter", "longer"),
    "log TTR (incident level)": Outcome(RATIO, "took", "{change} time to resolve an incident", "less", "more"),
    "log TTD (incident level)": Outcome(RATIO, "took", "{change} time to detect an incident", "less", "more"),
    "incidents per head": Outcome(RATE_RATIO, "recorded", "{change} incidents per person", "fewer", "more"),
    "proactive share": Outcome(ODDS_RATIO, "had", "{change} odds that a ticket was raised proactively"),
    "voluntary attrition": Outcome(ODDS_RATIO, "had", "{change} odds of a person leaving voluntarily"),
    "critical-role voluntary attrition": Outcome(
        ODDS_RATIO, "had", "{change} odds of a person in a critical role leaving voluntarily"),
}


def outcome_for(kpi: str, scale: str) -> Outcome | None:
    """The reading of a KPI on a scale: the KPI's own words when they are for that scale, else
    a plain reading of the scale; None for a scale that is not a relative change."""
    known = RESULT_OUTCOMES.get(kpi)
    if known is not None and known.scale == scale:
        return known
    name = kpi.removeprefix("log ")
    generic = {
        RATIO: Outcome(RATIO, "had", "a {change} " + name),
        RATE_RATIO: Outcome(RATE_RATIO, "had", "a {change} rate of " + name),
        ODDS_RATIO: Outcome(ODDS_RATIO, "had", "{change} odds of " + name),
    }
    return generic.get(scale)


def has_interval(row) -> bool:
    """An estimate with a finite 95% interval; a fit without one (e.g. a singular Hessian under
    separation) has no usable estimate either."""
    return all(math.isfinite(value) for value in (row.estimate, row.ci_low, row.ci_high))


def relative_change(row) -> float | None:
    """exp(estimate) - 1 for a result with an interval on a relative scale, else None."""
    if row.scale not in RELATIVE_SCALES or not has_interval(row):
        return None
    return math.expm1(row.estimate)


# Each construct's heading over its sentences (in this order) and its label in the table.
CONSTRUCT_HEADINGS = {
    BETWEEN: "Between teams",
    WITHIN: "Within a team, over time",
    TOTAL: "Incident by incident",
}
CONSTRUCT_LABELS = {BETWEEN: "between teams", WITHIN: "within team", TOTAL: "total (incidents)"}


def construct_rank(construct: str) -> int:
    """Where a construct's results go: between teams, within a team, incident level, then others."""
    order = list(CONSTRUCT_HEADINGS)
    return order.index(construct) if construct in order else len(order)


def fell_back_to_ols(row) -> bool:
    """A within/between result whose main model is the team-clustered OLS: the mixed model fell
    back to it (its warning says why), so it has no separate cross-check."""
    return row.construct in (BETWEEN, WITHIN) and row.model.startswith("OLS ")


# "a" before a number read with a vowel sound (8, 11, 18, 80-89, 800-899, 11,000...) is "an".
AN_NUMBER = re.compile(r"\ba (?=8|1[18]\b|1[18],)")


def _opening(construct: str, outcome: Outcome, change: str) -> str:
    noun = AN_NUMBER.sub("an ", outcome.noun.format(change=change))
    if construct == BETWEEN:
        return f"Across teams, a team one standard deviation safer than others {outcome.verb} {noun}"
    if construct == WITHIN:
        return (
            "Within a team, a quarter when safety was one standard deviation above the team's own average "
            f"was followed by {noun}"
        )
    if construct == TOTAL:
        return f"Incident by incident, teams one standard deviation safer in the previous quarter {outcome.verb} {noun}"
    return f"With {construct} one standard deviation higher, teams {outcome.verb} {noun}"


def chance_clause(row) -> str:
    """Whether a main result could be chance, given how many results were tested (q)."""
    if row.p_value is None or math.isnan(row.p_value):
        return f"Too few teams to test (fewer than {MIN_TEAMS_FOR_TESTS}): it describes these teams only."
    if row.q_value is None or math.isnan(row.q_value):
        return f"Not adjusted for the number of results tested ({statistic('p', row.p_value)})."
    if row.q_value < FALSE_DISCOVERY_RATE:
        return f"Unlikely to be chance ({statistic('q', row.q_value)})."
    return f"Could be chance ({statistic('q', row.q_value)})."


def result_sentence(row) -> str:
    """The sentences for one main row of the results table (columns as ``RESULT_COLUMNS``)."""
    n_teams = int(row.n_teams)
    teams = f"{n_teams} team" + ("" if n_teams == 1 else "s")
    if math.isnan(row.estimate):
        return f"No estimate for {row.kpi} ({row.construct}): the model could not be fitted on this data."
    if not has_interval(row):
        return (
            f"No usable estimate for {row.kpi} ({row.construct}): the model gave no 95% interval on this data."
        )
    outcome = outcome_for(row.kpi, row.scale)
    if outcome is None:
        return (
            f"For {row.kpi}, one standard deviation higher {row.construct} went with a change of "
            f"{signed(row.estimate, 3)} on the model's scale, {row.scale} (95% CI {signed(row.ci_low, 3)} to "
            f"{signed(row.ci_high, 3)}; {teams}). {chance_clause(row)} {ASSOCIATION}"
        )
    low, high = math.expm1(row.ci_low), math.expm1(row.ci_high)
    if low < 0 < high:
        interval = (
            f"95% CI from {outcome.change(row.ci_low)} to {outcome.change(row.ci_high)}, "
            "which includes no difference"
        )
    else:
        near, far = sorted((low, high), key=abs)
        interval = f"95% CI {percent(near)} to {percent(far)} {outcome.down if near < 0 else outcome.up}"
    opening = _opening(row.construct, outcome, outcome.change(row.estimate))
    sentence = f"{opening} ({interval}; {teams}). {chance_clause(row)} {ASSOCIATION}"
    if row.kpi in REPORTING_BIAS_KPIS:
        sentence += f" {REPORTING_BIAS_NOTE}"
    return sentence


def few_teams_note(n_teams: int) -> str:
    if n_teams >= MIN_TEAMS_FOR_CLUSTER_SE:
        return ""
    return f"Only {n_teams} teams (fewer than {MIN_TEAMS_FOR_CLUSTER_SE}): treat this interval as optimistic."


def model_notes(row) -> list[str]:
    """The model's warnings other than those the report says in its own words: the cluster
    warning (the few-teams note) and the too-few-to-test note (the sentence's test clause)."""
    plain = {cluster_warning(int(row.n_teams))}
    return [
        part for part in (row.warnings or "").split("; ")
        if part.strip() and part not in plain and "too few to test" not in part
    ]


def result_notes(row, few_teams: bool = True) -> list[str]:
    """The caveats attached to a result: too few teams (unless said once for all results), and
    whatever else the model warned of."""
    notes = [few_teams_note(int(row.n_teams))] if few_teams else []
    others = [note.strip(" .") for note in model_notes(row)]
    if others:
        notes.append(f"Model note{'s' if len(others) > 1 else ''}: {'; '.join(others)}.")
    return [note for note in notes if note]


# What each KPI of the correlation table measures, in words.
KPI_WORDS = {
    "log median TTR": "median times to resolve incidents",
    "log median TTA": "median times to acknowledge incidents",
    "proactive share": "proportions of tickets raised proactively (risks, near misses, improvements)",
    "voluntary attrition": "voluntary attrition",
    "incidents per head": "incident counts per person",
}
# What the KPIs that only the models use (not the correlation table) measure.
RESULT_KPI_DEFINITIONS = {
    "critical-role voluntary attrition": "voluntary leavers in critical roles / critical-role headcount-months",
    "log TTR (incident level)": "log(seconds from trigger to resolve) of each resolved incident",
    "log TTD (incident level)": "log(seconds from onset to trigger) of each incident with a known onset",
}
REPORTING_BIAS_KPIS = {"incidents per head"}
REPORTING_BIAS_NOTE = (
    "Safer teams may simply report more incidents, so read a higher figure as possible reporting, "
    "not as worse operations."
)


def signed(value: float, digits: int = 2) -> str:
    """A number with a typographic minus, as printed in the report's tables and sentences."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    text = f"{value:.{digits}f}"
    return text.replace("-", MINUS)


def signed_percent(value: float) -> str:
    """A percentage change with its sign, e.g. "−19%" or "+4%"; "0%" when it rounds to zero."""
    if round(value) == 0:
        return "0%"
    return f"{value:+,.0f}%".replace("-", MINUS)


def p_text(p: float) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def statistic(name: str, value: float) -> str:
    """E.g. "q = 0.012" or "p < 0.001"."""
    text = p_text(value)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def percent(value: float) -> str:
    """The size of a relative change, e.g. 0.213 -> "21%"; "<1%" for a change that rounds to zero."""
    size = abs(value) * 100
    return "<1%" if 0 < size < 0.5 else f"{size:,.0f}%"


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
        sentence += f" {REPORTING_BIAS_NOTE}"
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
     "intervals are optimistic; a warning at the top of the report and the model results say when. "
     f"Below {MIN_TEAMS_FOR_TESTS} teams a result is not tested at all: it describes those teams only."),
    ("Anonymity.",
     f"A team's survey result with fewer than {SUPPRESSION_THRESHOLD} respondents is never shown or "
     "used; teams that are often suppressed are under-represented."),
)
