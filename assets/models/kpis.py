"""The KPI registry: every KPI the models, the correlation table, the report and
docs/metrics.md know, defined once.

A KPI is data: its name (as it appears in every table and the report), the mart columns it
is computed from, its definition, the model family that fits it and how its estimate reads in
words. Adding a KPI is adding a ``Kpi`` to ``KPIS`` (and its definition to docs/metrics.md,
which a test compares with this registry); the family decides the model, the scale of the
estimate, how events are counted and how a team's months pool into the correlation table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

# Scales of the estimates. Each is a relative change: exp(estimate) - 1 is the change in the KPI
# (log ratio), in its rate (log rate ratio) or in its odds (log odds ratio) per SD of safety.
RATIO = "log ratio per SD"
RATE_RATIO = "log rate ratio per SD"
ODDS_RATIO = "log odds ratio per SD"


class Family(StrEnum):
    """How a KPI is modelled (docs/metrics.md, Models). Team-month families split safety into
    within-team and between-team parts; incident families use the incident's lagged team safety."""

    TEAM_MONTH_LOG_TIME = "log of a team-month time"  # MixedLM, clustered-OLS cross-check
    TEAM_MONTH_COUNT = "team-month count with exposure"  # NegativeBinomial, or Poisson at its boundary
    TEAM_MONTH_BINOMIAL = "team-month successes out of trials"  # binomial GLM
    INCIDENT_TIME_TO_EVENT = "incident time to event, open ones censored"  # log-normal AFT
    INCIDENT_LOG_TIME = "incident log time"  # OLS on the log time

    @property
    def scale(self) -> str:
        return {Family.TEAM_MONTH_COUNT: RATE_RATIO, Family.TEAM_MONTH_BINOMIAL: ODDS_RATIO}.get(self, RATIO)

    @property
    def grain(self) -> str:
        return "incident" if self in (Family.INCIDENT_TIME_TO_EVENT, Family.INCIDENT_LOG_TIME) else "team-month"

    @property
    def counts_events(self) -> bool:
        """Whether the minimum-events rule applies: the information in a count, a binomial or a
        time to event grows with its events, not with its rows."""
        return self in (Family.TEAM_MONTH_COUNT, Family.TEAM_MONTH_BINOMIAL, Family.INCIDENT_TIME_TO_EVENT)


@dataclass(frozen=True)
class Reading:
    """How a relative change in the KPI reads: ``noun`` holds ``{change}``, which becomes e.g.
    "21% shorter" (``down`` or ``up`` after the size). Between teams the sentence reads "a team
    ... <verb> <noun>", within a team "a quarter ... was followed by <noun>"."""

    verb: str
    noun: str
    down: str = "lower"
    up: str = "higher"


# The units a team-month time KPI's outcome is measured in, in seconds.
SECONDS_IN = {"seconds": 1, "days": 86_400}


@dataclass(frozen=True)
class Kpi:
    """One KPI. Columns are those of marts.mart_team_month (team-month families) or of the
    incident rows the models read (incident families):

    - ``outcome``: the time (in ``time_unit``: seconds, or days), the count or the successes;
    - ``denominator``: the exposure of a count or the trials of a binomial (summed);
    - ``weight``: how many incidents stand behind a team-month median (pools a team's months
      in the correlation table);
    - ``censoring``: for a time to event, how long a case still open has been followed.

    ``correlation_words`` name the KPI in the correlation table's sentences; a KPI without
    them is in the models only. ``reporting_bias``: a higher value may mean more reporting.
    ``caveat``: what else a reader must keep in mind, said with each of its results. ``needs``:
    an optional input (a key of ``ABSENT_BECAUSE``) without which the mart leaves the KPI's
    outcome null; the KPI is then absent from the models and the report says why."""

    name: str
    family: Family
    outcome: str
    definition: str
    reading: Reading
    denominator: tuple[str, ...] = ()
    weight: str = ""
    censoring: str = ""
    correlation_words: str = ""
    reporting_bias: bool = False
    caveat: str = ""
    needs: str = ""
    time_unit: str = "seconds"

    def __post_init__(self) -> None:
        if self.time_unit not in SECONDS_IN:
            raise ValueError(f"KPI {self.name!r}: time_unit {self.time_unit!r} is not one of {', '.join(SECONDS_IN)}")

    @property
    def scale(self) -> str:
        return self.family.scale

    def is_absent(self, months) -> bool:
        """Whether the optional input it needs was missing: the outcome is null in every
        team-month where the source the input qualifies has data (``SOURCE_OF``), and some
        team-month has that data, or its denominator is 0 in every one (no one in a critical
        role). Without any record of the source the KPI is not absent but has no data, as
        every KPI of that source. ``months``: a pandas frame of marts.mart_team_month rows with
        the KPI's ``absence_columns``."""
        if not self.needs:
            return False
        outcome = months[self.outcome]
        if self.needs in SOURCE_OF:
            outcome = outcome[months[SOURCE_OF[self.needs]].notna()]
            nothing = len(outcome) > 0 and bool(outcome.isna().all())
        else:
            nothing = bool(outcome.isna().all())
        return nothing or bool(self.denominator) and not months[list(self.denominator)].fillna(0).to_numpy().any()

    def has_data(self, months):
        """Which rows of ``months`` (marts.mart_team_month) have data for the KPI: its outcome is
        known, or for a team-month time the incidents behind its median (``weight``; 0 is data,
        with no median). Both are null in a month before the source's first record
        (mart_team_month's source_starts) and where an optional input is missing. The pooled
        values (``assets.models.assets.team_value``) and the team-months counted beside them
        (the correlation table's n_team_months, the quarterly review's kpi_quarters) read these rows."""
        return months[self.weight or self.outcome].notna()

    @property
    def absence_columns(self) -> tuple[str, ...]:
        """The mart columns ``is_absent`` reads."""
        source = (SOURCE_OF[self.needs],) if self.needs in SOURCE_OF else ()
        return tuple(dict.fromkeys((self.outcome, *self.denominator, *source)))

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c for c in (self.outcome, *self.denominator, self.weight, self.censoring) if c))


# Optional inputs, and why the KPIs that need one are absent without it (said in the report).
IDENTITY_MAP = "identity map"
CRITICAL_ROLES = "critical roles"
ABSENT_BECAUSE = {
    IDENTITY_MAP: "they need to know which Jira account is which employee, and no identity map "
    "(identity_map.yml in the landing folder) was loaded",
    CRITICAL_ROLES: "no employee of the HR exports is in a critical role (name the critical job titles under "
    "hr.critical_roles in export_mapping.yml, or export a critical-role column)",
}
# Per optional input, a mart column that is null in a month without any record of the source the
# input qualifies (a month before the source's first record: mart_team_month's source_starts),
# where the KPI's outcome is null for want of the source, not of the input.
SOURCE_OF = {IDENTITY_MAP: "proactive_tickets"}
REVIEW_CAVEAT = ("Safer teams may write more post-incident reviews because it is safe to examine a failure "
                 "there, not because they have more to learn from.")
SPEAKING_UP_CAVEAT = ("Only the reporter Jira records counts: an issue raised in conversation and filed by "
                      "someone else counts for the person who filed it.")

KPIS: tuple[Kpi, ...] = (
    Kpi(
        "log median TTR", Family.TEAM_MONTH_LOG_TIME, "ttr_median_seconds", weight="n_ttr",
        definition="log of a team-month's median seconds from trigger to resolve over its resolved incidents; "
        "a team's months pooled weighted by resolved incidents in the correlation table",
        reading=Reading("had", "a {change} median time to resolve incidents", "shorter", "longer"),
        correlation_words="median times to resolve incidents",
    ),
    Kpi(
        "log median TTA", Family.TEAM_MONTH_LOG_TIME, "tta_median_seconds", weight="n_tta",
        definition="log of a team-month's median seconds from trigger to a person's first acknowledgement; "
        "a team's months pooled weighted by acknowledged incidents in the correlation table",
        reading=Reading("had", "a {change} median time to acknowledge incidents", "shorter", "longer"),
        correlation_words="median times to acknowledge incidents",
    ),
    Kpi(
        "incidents per head", Family.TEAM_MONTH_COUNT, "incidents", denominator=("headcount",),
        definition="incidents / headcount-months (safer teams may report more: reporting bias)",
        reading=Reading("recorded", "{change} incidents per person", "fewer", "more"),
        correlation_words="incident counts per person", reporting_bias=True,
    ),
    Kpi(
        "proactive share", Family.TEAM_MONTH_BINOMIAL, "proactive_tickets",
        denominator=("proactive_tickets", "reactive_tickets"),
        definition="proactive / (proactive + reactive) tickets",
        reading=Reading("had", "{change} odds that a ticket was raised proactively"),
        correlation_words="proportions of tickets raised proactively (risks, near misses, improvements)",
    ),
    Kpi(
        "voluntary attrition", Family.TEAM_MONTH_BINOMIAL, "voluntary_leavers", denominator=("headcount",),
        definition="voluntary leavers / headcount at the month's start (headcount-months over a team's months)",
        reading=Reading("had", "{change} odds of a person leaving voluntarily"),
        correlation_words="voluntary attrition",
    ),
    Kpi(
        "critical-role voluntary attrition", Family.TEAM_MONTH_BINOMIAL, "critical_voluntary_leavers",
        denominator=("critical_headcount",),
        definition="voluntary leavers in critical roles / critical-role headcount at the month's start",
        reading=Reading("had", "{change} odds of a person in a critical role leaving voluntarily"),
        needs=CRITICAL_ROLES,
    ),
    Kpi(
        "post-incident review share", Family.TEAM_MONTH_BINOMIAL, "reviewed_incidents",
        denominator=("reviewable_incidents",),
        definition="high-urgency resolved incidents with a post-incident review / high-urgency resolved incidents",
        reading=Reading("had", "{change} odds that a serious incident was reviewed afterwards"),
        correlation_words="shares of serious (high-urgency) incidents reviewed afterwards", caveat=REVIEW_CAVEAT,
    ),
    Kpi(
        "log median days to finish a review", Family.TEAM_MONTH_LOG_TIME, "review_done_median_days",
        weight="n_reviews_done", time_unit="days",
        definition="log of a team-month's median days from an incident's resolve to its review done; a team's "
        "months pooled weighted by finished reviews in the correlation table",
        reading=Reading("took", "a {change} median time to finish an incident's review", "shorter", "longer"),
        correlation_words="median times to finish a post-incident review", caveat=REVIEW_CAVEAT,
    ),
    Kpi(
        "review action items closed in time", Family.TEAM_MONTH_BINOMIAL, "action_items_closed_in_time",
        denominator=("action_items_due",),
        definition="review action items closed within the KPI rules' close_within_days / action items old "
        "enough to know",
        reading=Reading("had", "{change} odds that a review's action item was closed in time"),
        correlation_words="shares of review action items closed in time",
        caveat="A team that splits its follow-up into many small action items closes more of them in time.",
    ),
    Kpi(
        "log median days to close an action item", Family.TEAM_MONTH_LOG_TIME, "action_item_close_median_days",
        weight="n_action_items_closed", time_unit="days",
        definition="log of a team-month's median days from a review action item's creation to its close; a "
        "team's months pooled weighted by closed items in the correlation table",
        reading=Reading("took", "a {change} median time to close a review's action item", "shorter", "longer"),
        correlation_words="median times to close review action items",
    ),
    Kpi(
        "repeat incident share", Family.TEAM_MONTH_BINOMIAL, "repeat_incidents", denominator=("incidents",),
        definition="incidents repeating one resolved on the same service within the KPI rules' window (same "
        "alert key or normalised title) / incidents",
        reading=Reading("had", "{change} odds that an incident repeated a recent one"),
        correlation_words="shares of incidents that repeat a recent one",
        caveat="Repeats are recognised by alert key or title: a team whose alerts carry stable keys shows "
        "more of its repeats.",
    ),
    Kpi(
        "cross-team proactive tickets per head", Family.TEAM_MONTH_COUNT, "cross_team_proactive_tickets",
        denominator=("headcount",),
        definition="proactive tickets of the team raised by people of other teams / headcount-months (needs "
        "the identity map)",
        reading=Reading("received", "{change} proactive tickets per person from people of other teams", "fewer",
                        "more"),
        correlation_words="proactive tickets raised by people of other teams, per person", caveat=SPEAKING_UP_CAVEAT,
        needs=IDENTITY_MAP,
    ),
    Kpi(
        "junior proactive tickets per junior head", Family.TEAM_MONTH_COUNT, "junior_proactive_tickets",
        denominator=("junior_headcount",),
        definition="proactive tickets raised by the team's people in junior roles / junior headcount-months "
        "(needs the identity map)",
        reading=Reading("had", "{change} proactive tickets per junior person raised by its juniors", "fewer",
                        "more"),
        correlation_words="proactive tickets raised by junior people, per junior person", caveat=SPEAKING_UP_CAVEAT,
        needs=IDENTITY_MAP,
    ),
    Kpi(
        "log TTR (incident level)", Family.INCIDENT_TIME_TO_EVENT, "ttr_seconds", censoring="open_for_seconds",
        definition="log(seconds from trigger to resolve) of each incident; an incident still open counts as "
        "unresolved after the time it has been open (censored), not as missing",
        reading=Reading("took", "{change} time to resolve an incident", "less", "more"),
    ),
    Kpi(
        "log TTD (incident level)", Family.INCIDENT_LOG_TIME, "ttd_seconds",
        definition="log(seconds from onset to trigger) of each incident with a known onset; a TTD of 0 s has no log, "
        "so the fit leaves it out and its row says how many",
        reading=Reading("took", "{change} time to detect an incident", "less", "more"),
    ),
)

KPI_BY_NAME: dict[str, Kpi] = {kpi.name: kpi for kpi in KPIS}
CORRELATION_KPIS: tuple[Kpi, ...] = tuple(kpi for kpi in KPIS if kpi.correlation_words)


def registry_markdown() -> str:
    """The registry as the markdown table docs/metrics.md carries (a test keeps them equal)."""
    lines = ["| KPI | grain | columns | model family | estimate's scale | definition |",
             "| --- | --- | --- | --- | --- | --- |"]
    for kpi in KPIS:
        columns = ", ".join(f"`{c}`" for c in kpi.columns)
        lines.append(f"| {kpi.name} | {kpi.family.grain} | {columns} | {kpi.family.value} | {kpi.scale} | "
                     f"{kpi.definition} |")
    return "\n".join(lines)
