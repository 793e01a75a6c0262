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
from types import SimpleNamespace

from assets.models.design import CONSTRUCTS, TOTAL_CONSTRUCT
from assets.models.kpis import ABSENT_BECAUSE, KPI_BY_NAME, ODDS_RATIO, RATE_RATIO, RATIO, Family, Reading
from assets.models.psychometrics import MIN_RESPONDENTS, SAFETY_MAX_WAVE_AGE_QUARTERS
from assets.models.stats import (
    FALSE_DISCOVERY_RATE,
    MIN_EVENTS_PER_COEFFICIENT,
    MIN_TEAMS_FOR_CLUSTER_SE,
    MIN_TEAMS_FOR_TESTS,
    few_teams_warnings,
)

MINUS = "\u2212"
ASSOCIATION = "An association, not proof of cause."

BETWEEN = CONSTRUCTS["safety_between"]
WITHIN = CONSTRUCTS["safety_within"]
TOTAL = TOTAL_CONSTRUCT  # incident-level models: safety not split into within and between

# The scales whose estimates read as relative changes: exp(estimate) - 1 is the change in the
# KPI (log ratio), in its rate (log rate ratio) or in its odds (log odds ratio) per SD of safety.
RELATIVE_SCALES = (RATIO, RATE_RATIO, ODDS_RATIO)
# Below this reliability a part of measured safety is noisy enough that the report says what
# the estimate would be allowing for survey measurement error.
RELIABILITY_WORTH_A_NOTE = 0.9
# Below this reliability the report shows no corrected figure (neither the note nor the table's
# column) and says why: less than half of that part's variation is true differences, the
# correction multiplies the estimate by about 1 / reliability (about 4 at 0.25, 7 at 0.13 in the
# fifth trial's demo) and its interval takes the reliability, itself estimated from a few
# respondents per team, as exact. The exports keep the figure as stored.
RELIABILITY_TO_CORRECT = 0.5


@dataclass(frozen=True)
class Outcome:
    """How a KPI's estimate on ``scale`` reads (the registry's Reading for that scale)."""

    scale: str
    reading: Reading

    def change(self, log_value: float) -> str:
        relative = math.expm1(log_value)
        return f"{percent(relative)} {self.reading.down if relative < 0 else self.reading.up}"

    def noun(self, change: str) -> str:
        return AN_NUMBER.sub("an ", self.reading.noun.format(change=change))

    def subject(self) -> str:
        """What the KPI measures, without a change: "median time to resolve incidents"."""
        return " ".join(self.reading.noun.format(change="").split()).removeprefix("a ")


def outcome_for(kpi: str, scale: str) -> Outcome | None:
    """The reading of a KPI on a scale: the registry's words when they are for that scale, else
    a plain reading of the scale; None for a scale that is not a relative change."""
    known = KPI_BY_NAME.get(kpi)
    if known is not None and known.scale == scale:
        return Outcome(scale, known.reading)
    name = kpi.removeprefix("log ")
    generic = {
        RATIO: Reading("had", "a {change} " + name),
        RATE_RATIO: Reading("had", "a {change} rate of " + name),
        ODDS_RATIO: Reading("had", "{change} odds of " + name),
    }
    return Outcome(scale, generic[scale]) if scale in generic else None


def has_interval(row, estimate: str = "estimate") -> bool:
    """An estimate (``estimate``: its field, r for a correlation) with a finite 95% interval; a
    fit without one (e.g. a singular Hessian under separation) has no usable estimate either."""
    return all(math.isfinite(value) for value in (getattr(row, estimate), row.ci_low, row.ci_high))


def relative_change(row) -> float | None:
    """exp(estimate) - 1 for a result with an interval on a relative scale, else None."""
    if row.scale not in RELATIVE_SCALES or not has_interval(row):
        return None
    return math.expm1(row.estimate)


# The unit of a KPI pooled over team-months whose denominator is the people at each month's start
# (the registry's "/ headcount-months"): a count of events, or a share of those people such as
# voluntary attrition, is per person-month, whatever the period pooled.
RATE_UNITS = {("headcount",): "per person-month", ("junior_headcount",): "per junior person-month",
              ("critical_headcount",): "per critical-role person-month"}


def pooled_unit(kpi_name: str) -> str:
    """The unit of a team-month KPI pooled over team-months as the quarterly review's exports hold
    it (kpi_quarters' ``value``): the log of the time's unit, a rate per person-month (RATE_UNITS),
    or a plain share of its own total."""
    kpi = KPI_BY_NAME[kpi_name]
    if kpi.family is Family.TEAM_MONTH_LOG_TIME:
        return f"log of {kpi.time_unit}"
    if kpi.denominator in RATE_UNITS:
        return RATE_UNITS[kpi.denominator]
    return f"per {' + '.join(kpi.denominator)}-month" if kpi.family is Family.TEAM_MONTH_COUNT else "share"


# What a quarter's KPI figure is: in the report's quarterly review and in its workbook.
KPI_QUARTERS_NOTE = (
    "Each KPI is pooled over every team-month of the quarter's months that have ended: a quarter still under way "
    "(or the first of the data) covers only the months named beside it, and a KPI whose source (PagerDuty or Jira) "
    "was first used within the quarter only the months from its first record on, named in its change sentence "
    "(n/a before it). A time is the typical team-month median, "
    "the exponent of the mean log median weighted by the incidents, reviews or action items behind each (the "
    "kpi_quarters export holds the log itself, its unit column says of seconds or of days). Incidents and "
    "proactive tickets per head and voluntary attrition are per person-month: over the sum of the months' opening "
    "headcounts, so 2% per person-month means about 2% of the people left in a month, about three times that "
    "over a whole quarter. Other shares are of their own totals (tickets, incidents, action items)."
)


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
    return split_construct(row.construct)[1] in ("within", "between") and row.model.startswith("OLS ")


# "a" before a number read with a vowel sound (8, 11, 18, 80-89, 800-899, 11,000...) is "an".
AN_NUMBER = re.compile(r"\ba (?=8|1[18]\b|1[18],)")


# The parts of a score the models report, as the constructs' names end.
PARTS = {" within team": "within", " between teams": "between", " (total)": "total"}


def split_construct(construct: str) -> tuple[str, str]:
    """("safety", "between") from "safety between teams"; the part is "" when none fits."""
    for suffix, part in PARTS.items():
        if construct.endswith(suffix):
            return construct.removesuffix(suffix), part
    return construct, ""


def within_unit(label: str, within_team_sd: float) -> str:
    """What "one standard deviation" means in a within-team sentence about score ``label``, and
    how far a team's quarters typically lie from its own average in that unit (the row's
    within_team_sd), with a leading space; "" when the row has no such figure."""
    if within_team_sd is None or not math.isfinite(within_team_sd):
        return ""
    return (f" (a standard deviation of {label} across all teams and quarters; a team's quarters typically lie "
            f"{within_team_sd:.2f} of one from its own average)")


def _opening(construct: str, verb: str, noun: str, within_team_sd: float = math.nan) -> str:
    label, part = split_construct(construct)
    unit = within_unit(label, within_team_sd)
    if label == "safety":
        return {
            "between": f"Across teams, a team one standard deviation safer than others {verb} {noun}",
            "within": f"Within a team, a quarter when safety was one standard deviation above the team's own average"
                      f"{unit} was followed by {noun}",
            "total": f"Incident by incident, teams one standard deviation safer in the previous quarter {verb} {noun}",
        }[part]
    if " \u00d7 " in label:
        first, second = label.split(" \u00d7 ")
        beyond = f"beyond what one standard deviation of {first} went with at average {second}"
        return {
            "between": f"Across teams, where {second} was one standard deviation higher, a team one standard "
                       f"deviation higher on {first} {verb} {noun}, {beyond}",
            "within": f"Within a team, in a quarter when {second} was also one standard deviation above the team's own "
                      f"average, one standard deviation more {first} was followed by {noun}, {beyond}",
            "total": f"Incident by incident, where {second} was one standard deviation higher, teams one standard "
                     f"deviation higher on {first} in the previous quarter {verb} {noun}, {beyond}",
        }.get(part, f"With {construct} one standard deviation higher, teams {verb} {noun}")
    return {
        "between": f"Across teams, a team one standard deviation higher on {label} than others {verb} {noun}",
        "within": f"Within a team, a quarter when {label} was one standard deviation above the team's own average"
                  f"{unit} was followed by {noun}",
        "total": f"Incident by incident, teams one standard deviation higher on {label} in the previous quarter "
                 f"{verb} {noun}",
    }.get(part, f"With {construct} one standard deviation higher, teams {verb} {noun}")


def unlikely_to_be_chance(q_value: float | None) -> bool:
    """The report's one rule for calling a result unlikely to be chance: a Benjamini-Hochberg q
    below FALSE_DISCOVERY_RATE (model results and correlations alike; sentences and charts)."""
    return q_value is not None and math.isfinite(q_value) and q_value < FALSE_DISCOVERY_RATE


# What "unlikely to be chance" promises in a report that tests this many results, as measured:
# `benchmarks/null_flags.py --seeds 60` (seeds 2000-2059, 30 teams x 24 months, every effect 0, the
# results table of safety, safety x accountability and the four stages; CR2 clustered errors with
# Bell-McCaffrey df): 1 of 60 organisations (95% CI 0% to 9%) had a main row with q < 0.05, and
# single rows had p < 0.05 4.9% and p < 0.001 0.06% of the time (10,836 rows).
NULL_FLAGS_NOTE = (
    "In 60 simulated organisations of 30 teams over 24 months in which no survey score had any effect on any KPI, "
    "1 still showed a result unlikely to be chance. Read a lone result unlikely to be chance as a lead to check, not "
    "as a finding."
)


def chance_clause(row) -> str:
    """Whether a result (``row``: p_value and q_value) could be chance, given how many results
    were tested (q)."""
    if row.p_value is None or math.isnan(row.p_value):
        return f"Too few teams to test (fewer than {MIN_TEAMS_FOR_TESTS}): it describes these teams only."
    if row.q_value is None or math.isnan(row.q_value):
        return f"Not adjusted for the number of results tested ({statistic('p', row.p_value)})."
    if unlikely_to_be_chance(row.q_value):
        return f"Unlikely to be chance ({statistic('q', row.q_value)})."
    return f"Could be chance ({statistic('q', row.q_value)})."


def states_direction(row) -> bool:
    """Whether the report words a model result with its direction: a tested result only when it is
    unlikely to be chance (the report's one rule, as for correlations; the interval still gives
    both ends); an untested one (too few teams) describes its teams, and its chance clause says so."""
    return unlikely_to_be_chance(row.q_value) or row.q_value is None or math.isnan(row.q_value)


def result_sentence(row) -> str:
    """The sentences for one main row of the results table (columns as ``RESULT_COLUMNS``)."""
    n_teams = int(row.n_teams)
    teams = f"{n_teams} team" + ("" if n_teams == 1 else "s")
    if math.isnan(row.estimate):
        return f"No estimate for {row.kpi} ({row.construct}): {no_estimate_reason(row)}."
    if not has_interval(row):
        return (
            f"No usable estimate for {row.kpi} ({row.construct}): the model gave no 95% interval on this data."
        )
    outcome = outcome_for(row.kpi, row.scale)
    directed = states_direction(row)
    if outcome is None:
        change = f"a change of {signed(row.estimate, 3)}" if directed else "no clear change"
        return (
            f"For {row.kpi}, one standard deviation higher {row.construct} went with {change} on the model's "
            f"scale, {row.scale} ({'' if directed else f'estimate {signed(row.estimate, 3)}, '}95% CI "
            f"{signed(row.ci_low, 3)} to {signed(row.ci_high, 3)}; {teams}). {chance_clause(row)} {ASSOCIATION}"
        )
    if directed:
        opening = _opening(row.construct, outcome.reading.verb, outcome.noun(outcome.change(row.estimate)),
                           row.within_team_sd)
    else:
        opening = _opening(row.construct, "showed", f"no clear difference in {outcome.subject()}", row.within_team_sd)
    interval = f"95% CI {interval_words(outcome, row.ci_low, row.ci_high)}"
    sentence = f"{opening} ({interval}; {teams}). {chance_clause(row)} {ASSOCIATION}"
    sentence += caveat_note(row.kpi)
    if row.kpi in KPI_BY_NAME and KPI_BY_NAME[row.kpi].family is Family.INCIDENT_TIME_TO_EVENT:
        sentence += f" {OPEN_INCIDENTS_NOTE}"
    return sentence


# Why a row has no estimate, from the first of its warnings that says so.
NO_ESTIMATE_REASONS = ("too few events", "not estimable", "no data", "too few to estimate")


def no_estimate_reason(row) -> str:
    for part in (row.warnings or "").split("; "):
        if any(reason in part for reason in NO_ESTIMATE_REASONS):
            return part.removeprefix("not estimable: ")
    return "the model could not be fitted on this data"


def reporting_bias(kpi: str) -> bool:
    return kpi in KPI_BY_NAME and KPI_BY_NAME[kpi].reporting_bias


def caveat_note(kpi: str) -> str:
    """What a reader must keep in mind with every result of ``kpi`` (with a leading space), or ""."""
    known = KPI_BY_NAME.get(kpi)
    notes = ([REPORTING_BIAS_NOTE] if reporting_bias(kpi) else []) + ([known.caveat] if known and known.caveat else [])
    return "".join(f" {note}" for note in notes)


def absent_sentences(absent: tuple[str, ...]) -> list[str]:
    """Why KPIs are missing from the report, one sentence per optional input they need."""
    by_need: dict[str, list[str]] = {}
    for name in absent:
        by_need.setdefault(KPI_BY_NAME[name].needs, []).append(name)
    return [f"Not reported: {' and '.join(names)}, because {ABSENT_BECAUSE[need]}."
            for need, names in by_need.items()]


def interval_words(outcome: Outcome, low: float, high: float) -> str:
    """A 95% interval of log values in words: "10% to 30% shorter", or "from 10% less to 22%
    more, which includes no difference"."""
    low_change, high_change = math.expm1(low), math.expm1(high)
    if low_change < 0 < high_change:
        return f"from {outcome.change(low)} to {outcome.change(high)}, which includes no difference"
    near, far = sorted((low_change, high_change), key=abs)
    return f"{percent(near)} to {percent(far)} {outcome.reading.down if near < 0 else outcome.reading.up}"


def too_unreliable_to_correct(reliability: float) -> bool:
    """Whether a part of a score is measured too unreliably for the report to show a figure
    corrected for measurement error (RELIABILITY_TO_CORRECT): the sentences' note and the
    results table's corrected column alike."""
    return math.isfinite(reliability) and reliability < RELIABILITY_TO_CORRECT


def corrected_note(row) -> str:
    """What the estimate would be allowing for survey measurement error, for a part of safety
    measured with reliability under RELIABILITY_WORTH_A_NOTE; below RELIABILITY_TO_CORRECT, why
    no such figure is shown; "" otherwise."""
    outcome = outcome_for(row.kpi, row.scale)
    values = (row.estimate_corrected, row.ci_low_corrected, row.ci_high_corrected, row.reliability)
    if outcome is None or not all(math.isfinite(v) for v in values) or row.reliability >= RELIABILITY_WORTH_A_NOTE:
        return ""
    label = split_construct(row.construct)[0]
    measured = f"Survey scores measure this part of {label} with reliability {row.reliability:.2f}"
    if too_unreliable_to_correct(row.reliability):
        return (f"{measured}: less than half of its variation is true differences, so an estimate allowing for "
                "measurement error would rest more on the correction than on the data, and none is shown.")
    interval = interval_words(outcome, row.ci_low_corrected, row.ci_high_corrected)
    if not states_direction(row):
        # No direction where the sentence above states none: the corrected interval only.
        return f"{measured}; allowing for that, the 95% CI per SD of true {label} is {interval}."
    return (f"{measured}; allowing for that, "
            f"the estimate per SD of true {label} is {outcome.noun(outcome.change(row.estimate_corrected))} "
            f"(95% CI {interval}).")


POWER_HEADINGS = {BETWEEN: "between teams", WITHIN: "within a team", TOTAL: "incident by incident"}


def power_sentence(row) -> str:
    """The smallest effect the data could detect, e.g. "Between teams, with 30 teams: an effect
    smaller than a 15% shorter or 18% longer median time to resolve incidents per SD of safety
    would likely go unseen." The section's introduction says how likely "likely" is (POWER)."""
    outcome = outcome_for(row.kpi, row.scale)
    if outcome is None or not math.isfinite(row.min_detectable_effect):
        return ""
    size = row.min_detectable_effect
    either = f"{outcome.change(-size)} or {outcome.change(size)}"
    where = POWER_HEADINGS.get(row.construct, row.construct)
    return (f"{where[0].upper()}{where[1:]}, with {int(row.n_teams)} teams: an effect smaller than "
            f"{outcome.noun(either)} per SD of safety would likely go unseen.")


def few_teams_note(n_teams: int) -> str:
    if n_teams >= MIN_TEAMS_FOR_CLUSTER_SE:
        return ""
    return f"Only {n_teams} teams (fewer than {MIN_TEAMS_FOR_CLUSTER_SE}): treat this interval as optimistic."


def model_notes(row) -> list[str]:
    """The model's warnings other than those the report says in its own words: the few-teams
    warnings (the few-teams note), the too-few-to-test note (the sentence's test clause) and the
    reason a row has no estimate (its sentence)."""
    plain = few_teams_warnings(int(row.n_teams))
    if math.isnan(row.estimate):
        plain.add(no_estimate_reason(row))  # the sentence says it
    return [
        part for part in (row.warnings or "").split("; ")
        if part.strip() and part not in plain and "too few to test" not in part
        and part.removeprefix("not estimable: ") not in plain
    ]


def result_notes(row, few_teams: bool = True) -> list[str]:
    """The caveats attached to a result: too few teams (unless said once for all results), and
    whatever else the model warned of."""
    # Only a result with an interval can have an optimistic one.
    notes = [few_teams_note(int(row.n_teams))] if few_teams and has_interval(row) else []
    others = [note.strip(" .") for note in model_notes(row)]
    if others:
        notes.append(f"Model note{'s' if len(others) > 1 else ''}: {'; '.join(others)}.")
    return [note for note in notes if note]


OPEN_INCIDENTS_NOTE = (
    "Incidents still open count as unresolved for as long as they have been open, not as missing, so slow "
    "incidents that have not ended yet are not left out."
)
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
    """A percentage change with its sign, e.g. "−19%" or "+4%"; "0%" when it rounds to zero;
    "< −99%" for a fall that would round to −100% (ALMOST_ALL)."""
    if round(value) == 0:
        return "0%"
    if _rounds_to_all(value / 100):
        return f"< {MINUS}{ALMOST_ALL}%"
    return f"{value:+,.0f}%".replace("-", MINUS)


def p_text(p: float) -> str:
    if p is None or math.isnan(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def statistic(name: str, value: float) -> str:
    """E.g. "q = 0.012" or "p < 0.001"."""
    text = p_text(value)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


# A fall is printed as at most this many per cent unless it is all of it: a ratio (the exponent of
# an estimate) is above 0, so "100% shorter" or "100% fewer" would claim a time or a count of zero.
ALMOST_ALL = 99


def _rounds_to_all(value: float) -> bool:
    """A relative change above -1 (a ratio above 0) that a whole per cent would print as -100%."""
    return -1 < value < 0 and f"{abs(value) * 100:.0f}" == "100"


def percent(value: float) -> str:
    """The size of a relative change, e.g. 0.213 -> "21%"; "<1%" for a change that rounds to zero;
    "more than 99%" for a fall that would round to 100% though the ratio is above 0 (-0.997)."""
    size = abs(value) * 100
    if _rounds_to_all(value):
        return f"more than {ALMOST_ALL}%"
    return "<1%" if 0 < size < 0.5 else f"{size:,.0f}%"


# How the correlation section names its two figures.
SIZE_ADJUSTED = "allowing for team size"
NOT_SIZE_ADJUSTED = "Not adjusted for team size"


def too_few_to_correlate(row) -> bool:
    """Whether a correlation row rests on too few teams for the report to print its r or partial r
    (below MIN_TEAMS_FOR_TESTS, the models' rule for testing at all): there is no interval, and
    from so few teams an r comes near +-1 by chance, a partial r given team size most (its
    residuals have teams - 3 degrees of freedom: 1 from 4 teams, where it printed 1.00). The
    exported table keeps both."""
    return int(row.n_teams) < MIN_TEAMS_FOR_TESTS


def leading_correlation(row) -> tuple[str, float, float, float, float, float]:
    """The figure a correlation row leads with, as (words, r, ci_low, ci_high, p, q): the partial
    r given team size (size_adjusted_*) when the row has one, else the plain r, said to be
    unadjusted. The sentence and the chart both show this one."""
    if math.isfinite(row.size_adjusted_r):
        return (SIZE_ADJUSTED, row.size_adjusted_r, row.size_adjusted_ci_low, row.size_adjusted_ci_high,
                row.size_adjusted_p_value, row.size_adjusted_q_value)
    return (NOT_SIZE_ADJUSTED.lower(), row.r, row.ci_low, row.ci_high, row.p_value, row.q_value)


def correlation_sentence(row) -> str:
    """One sentence for a row of the KPI correlation table: led by the size-adjusted (partial) r,
    with a direction only when its q says unlikely to be chance (the model results' rule), then
    the r not adjusted for team size; neither below MIN_TEAMS_FOR_TESTS teams (too_few_to_correlate)."""
    what = KPI_BY_NAME[row.kpi].correlation_words if row.kpi in KPI_BY_NAME else row.kpi
    n_teams = int(row.n_teams)
    if math.isnan(row.r) and n_teams >= 3:
        return (f"No correlation between safety and {what} can be estimated: across {n_teams} teams, it is the "
                "same for every team (none recorded, or safety the same everywhere).")
    if math.isnan(row.r) and n_teams == 0:
        return f"No team had both a reportable safety score and {what}, so no correlation can be estimated."
    if math.isnan(row.r):
        return f"Too few teams ({n_teams}) had both a safety score and {what} to estimate a correlation."
    if too_few_to_correlate(row):
        return (f"Only {n_teams} teams had both a safety score and {what}: too few to test (fewer than "
                f"{MIN_TEAMS_FOR_TESTS}), so no correlation is shown; from so few teams an r, and a partial r "
                "allowing for team size most, comes near \u00b11 by chance." + caveat_note(row.kpi))
    words, r, low, high, p, q = leading_correlation(row)
    name = "partial r" if words == SIZE_ADJUSTED else "r"
    numbers = f"{name} = {signed(r)}, 95% CI {signed(low)} to {signed(high)}"
    if unlikely_to_be_chance(q):
        claim = f"safer teams had {'higher' if r > 0 else 'lower'} {what}"
    else:
        claim = f"no clear association between safety and {what}"
    sentence = (f"Across {n_teams} teams, {words}, {claim} ({numbers}). "
                f"{chance_clause(SimpleNamespace(p_value=p, q_value=q))}")
    if words == SIZE_ADJUSTED:
        sentence += (f" {NOT_SIZE_ADJUSTED}: r = {signed(row.r)} (95% CI {signed(row.ci_low)} to "
                     f"{signed(row.ci_high)}; {statistic('q', row.q_value)}).")
    return sentence + caveat_note(row.kpi)


def suppression_sentence(cells: int, suppressed: int, too_few: int) -> str:
    """How many team survey results (team x quarter) are suppressed and why, and what the
    models do in the quarter after one: in the report and in its workbook."""
    if suppressed == 0:
        return (f"No team survey result was suppressed: every team-quarter had at least {MIN_RESPONDENTS} "
                "respondents.")
    why = (f"{too_few} had fewer than {MIN_RESPONDENTS} respondents" if too_few == suppressed else
           f"{too_few} had fewer than {MIN_RESPONDENTS} respondents, and {suppressed - too_few} had enough but "
           "were hidden too (every respondent gave the same score, or publishing them would let a hidden "
           "result be worked out)")
    return (f"{suppressed} of {cells} team survey results (team x quarter) are suppressed to protect anonymity: "
            f"{why}. Their scores appear nowhere in this report or its exports. In the quarters after a "
            "suppressed result the team's safety score is its last published one while that is at most "
            f"{SAFETY_MAX_WAVE_AGE_QUARTERS} quarters old, and it has none after that.")


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
     "team-clustered intervals are optimistic; the mixed models' intervals use a small-sample t "
     "(Satterthwaite) but assume their model holds. A warning at the top of the report and the model results "
     f"say when. Below {MIN_TEAMS_FOR_TESTS} teams a result is not tested at all: it describes those teams only."),
    ("Measurement error.",
     "A survey measures safety with error, so the plain estimates understate how strongly true safety goes "
     "with a KPI, within a team most (a team's safety moves little from quarter to quarter). The table's "
     "corrected column, and a note under results measured with low reliability, show the estimate allowing "
     f"for that error; below a reliability of {RELIABILITY_TO_CORRECT} they show none and say why (it would "
     "rest more on the correction than on the data)."),
    ("Too few events.",
     f"A count, a share or a time to resolve needs at least {MIN_EVENTS_PER_COEFFICIENT} events (leavers, "
     "incidents, resolved incidents) per quantity the model estimates; below that it reports \"too few "
     "events\" rather than a number that would be mostly noise."),
    ("Anonymity.",
     f"A team's survey result with fewer than {MIN_RESPONDENTS} respondents, or one that would let a hidden "
     "result be worked out, is never shown or used; teams that are often suppressed are under-represented."),
)
