"""The expectation suites, declared as data: one ``Suite`` per asset check.

A suite names a warehouse table (``schema.table``, the asset's key), the Great Expectations
1.x expectations its rows must meet, and whether a failure blocks the assets downstream.
Suites guarding the marts that ``assets/models`` read are blocking: a bad load stops the
models instead of feeding them. The others warn: the failure shows in the UI, the run goes on.

To add an expectation, append it to the table's suite; to check another table, add a
``Suite``. ``tests/test_quality.py`` fails when a suite names a column the table lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg
import great_expectations.expectations as gxe
from great_expectations.expectations.row_conditions import Column

from assets.landing.item_sets import SCALE_POINTS
from assets.landing.team_map import SOURCES
from assets.models.psychometrics import MIN_RESPONDENTS

# Survey items are answered on a 1..K Likert scale with K = 5 or 7 (METRICS.md).
SCALE_MIN, SCALE_MAX = 1, max(SCALE_POINTS)
COLUMN_ARGUMENTS = ("column", "column_A", "column_B", "column_list")


@dataclass(frozen=True)
class Suite:
    """Expectations on one table, run together as the asset check ``name`` of that table."""

    table: str
    expectations: tuple[gxe.Expectation, ...]
    purpose: str
    blocking: bool = False
    name: str = "great_expectations"
    row_id: tuple[str, ...] = ()
    # Respondent-level survey rows must not leave the warehouse (METRICS.md, anonymity): the
    # check's result then reports counts only, never values or row ids.
    respondent_level: bool = False
    # What an empty table means and what to do, added to the check's result when it has no rows
    # (a new deployment whose HR or survey export is not in the landing folder yet).
    when_empty: str = ""

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(self.table.split("."))

    @property
    def severity(self) -> dg.AssetCheckSeverity:
        # Dagster only stops downstream assets on a blocking check that fails with ERROR.
        return dg.AssetCheckSeverity.ERROR if self.blocking else dg.AssetCheckSeverity.WARN

    @property
    def row_id_columns(self) -> list[str]:
        """Columns that name a failing row in the check's result: ``row_id``, else the
        columns of the suite's first uniqueness expectation."""
        if self.row_id:
            return list(self.row_id)
        for expectation in self.expectations:
            if isinstance(expectation, (gxe.ExpectColumnValuesToBeUnique, gxe.ExpectCompoundColumnsToBeUnique)):
                return target_columns(expectation.configuration.kwargs)
        return []

    @property
    def columns(self) -> list[str]:
        """Every column the suite reads, in order of first mention (row ids, row conditions included)."""
        names = self.row_id_columns
        for expectation in self.expectations:
            names += _columns_named(expectation.configuration.kwargs)
        return list(dict.fromkeys(names))


def target_columns(kwargs: dict) -> list[str]:
    """The columns an expectation's arguments test (not those of its row condition)."""
    names: list[str] = []
    for argument in COLUMN_ARGUMENTS:
        value = kwargs.get(argument)
        names += value if isinstance(value, list) else [value] if value else []
    return names


def _columns_named(kwargs: dict) -> list[str]:
    names = target_columns(kwargs)
    condition = kwargs.get("row_condition")
    if isinstance(condition, dict):
        # A serialised row condition: {"column": {"name": ...}} or {"conditions": [...]}.
        if isinstance(condition.get("column"), dict):
            names.append(condition["column"]["name"])
        for part in condition.get("conditions", []):
            names += _columns_named({"row_condition": part})
    return names


def key(*columns: str) -> tuple[gxe.Expectation, ...]:
    """``columns`` identify a row: none of them null, their combination unique."""
    unique = (
        gxe.ExpectColumnValuesToBeUnique(column=columns[0])
        if len(columns) == 1
        else gxe.ExpectCompoundColumnsToBeUnique(column_list=list(columns))
    )
    return (*not_null(*columns), unique)


def not_null(*columns: str) -> tuple[gxe.Expectation, ...]:
    return tuple(gxe.ExpectColumnValuesToNotBeNull(column=column) for column in columns)


def at_least(minimum: float, *columns: str) -> tuple[gxe.Expectation, ...]:
    """Values of ``columns`` are >= ``minimum`` (nulls are not checked here)."""
    return tuple(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=minimum) for column in columns)


def between(minimum: float, maximum: float, *columns: str) -> tuple[gxe.Expectation, ...]:
    return tuple(
        gxe.ExpectColumnValuesToBeBetween(column=column, min_value=minimum, max_value=maximum)
        for column in columns
    )


def not_before(later: str, earlier: str) -> gxe.Expectation:
    """``later`` >= ``earlier`` wherever both are known."""
    return gxe.ExpectColumnPairValuesAToBeGreaterThanB(
        column_A=later, column_B=earlier, or_equal=True, ignore_row_if="either_value_is_missing"
    )


def iso_dates(*columns: str) -> tuple[gxe.Expectation, ...]:
    return tuple(gxe.ExpectColumnValuesToMatchRegex(column=column, regex=r"^\d{4}-\d{2}-\d{2}$") for column in columns)


# The HR export missing: the mart's team-months come from its headcount snapshots alone.
HR_MISSING = ("No HR headcount: the team-months (and so every KPI) come from the HR export's monthly headcount, "
              "and raw.hr__headcount is empty. Put the HR export (a roster with hire and termination dates, or the "
              "monthly snapshots) in the landing folder (README, Bring your own exports), and see the hr_exports "
              "asset's metadata for what it read and quarantined.")


def not_empty() -> gxe.Expectation:
    return gxe.ExpectTableRowCountToBeBetween(min_value=1)


def _api_records() -> tuple[gxe.Expectation, ...]:
    # Not the payload: the raw table's DDL already refuses a null one, and reading millions of
    # JSON documents into pandas to re-check it would cost more memory than the nightly run.
    return (*key("id"), not_empty())


_SUPPRESSED = Column("is_suppressed") == True  # noqa: E712 (builds a GX condition, not a comparison)
_REPORTABLE = Column("is_suppressed") == False  # noqa: E712
_OPEN = Column("is_open") == True  # noqa: E712

RAW_SUITES = [
    Suite("raw.pagerduty__teams", _api_records(), "PagerDuty teams: one payload per team id.",
          when_empty="An account whose plan lacks the `teams` ability has no teams (GET /teams answers 402; the "
                     "teams sync warns so): its incidents count by the team map's pagerduty_services claims."),
    Suite("raw.pagerduty__services", _api_records(), "PagerDuty services: one payload per service id."),
    Suite("raw.pagerduty__incidents", _api_records(), "PagerDuty incidents: one payload per incident id."),
    Suite("raw.pagerduty__log_entries", _api_records(), "PagerDuty log entries: one payload per entry id."),
    Suite("raw.jira__issues", _api_records(), "Jira issues: one payload per issue id."),
    Suite(
        "raw.hr__headcount",
        (*key("snapshot_date", "employee_id"), *not_null("org_unit", "critical_role"),
         *iso_dates("snapshot_date"), not_empty()),
        "HR headcount export: one row per employee and snapshot date (YYYY-MM-DD).",
        when_empty=HR_MISSING,
    ),
    Suite(
        "raw.hr__terminations",
        (*key("employee_id", "termination_date"), *not_null("org_unit", "critical_role", "voluntary"),
         *iso_dates("termination_date")),
        "HR terminations export: one row per leaver with the voluntary flag; may be empty.",
    ),
    Suite(
        "raw.config__team_map",
        (*key("source", "identifier"), *not_null("team"),
         gxe.ExpectColumnValuesToBeInSet(column="source", value_set=sorted(SOURCES.values())), not_empty()),
        "Team map: every identifier belongs to exactly one team.",
    ),
]

STAGING_SUITES = [
    Suite(
        "staging.stg_pagerduty__incidents",
        (*key("incident_id"), *not_null("service_id", "created_at", "status"),
         gxe.ExpectColumnValuesToBeInSet(column="status", value_set=["triggered", "acknowledged", "resolved"]),
         gxe.ExpectColumnValuesToBeInSet(column="urgency", value_set=["high", "low"])),
        "Typed incidents: a service, a trigger time and a known status each.",
    ),
    Suite(
        "staging.stg_pagerduty__log_entries",
        (*key("log_entry_id"), *not_null("incident_id", "entry_type", "created_at")),
        "Typed log entries: each belongs to an incident and has a type and a time.",
    ),
    Suite("staging.stg_pagerduty__services", key("service_id"), "One row per service."),
    Suite("staging.stg_pagerduty__teams", (*key("team_id"), *not_null("team_name")), "One named row per team."),
    Suite(
        "staging.stg_jira__issues",
        (*key("issue_id"), *key("issue_key"), *not_null("project_key", "issue_type", "created_at"),
         not_before("resolved_at", "created_at")),
        "Typed issues: created in a project, never resolved before created.",
    ),
    Suite(
        "staging.stg_hr__headcount",
        (*key("snapshot_date", "employee_id"), *not_null("org_unit", "is_critical_role")),
        "Headcount snapshots: one row per employee and snapshot.",
    ),
    Suite(
        "staging.stg_hr__terminations",
        (*key("employee_id", "termination_date"), *not_null("org_unit", "is_critical_role", "is_voluntary")),
        "Terminations: one row per leaver, voluntary flag known.",
    ),
    Suite(
        "restricted.survey__responses",
        (*key("response_id", "item_set", "item_no"), *not_null("submitted_at", "survey_group", "scale_points"),
         not_empty(),
         *between(1, 7, "item_no"), *between(SCALE_MIN, SCALE_MAX, "answer", "score"),
         gxe.ExpectColumnValuesToBeInSet(column="scale_points", value_set=list(SCALE_POINTS)),
         not_before("scale_points", "answer")),
        "Survey export as loaded: one row per response and answered item, within the export's scale.",
        respondent_level=True,
    ),
    Suite(
        "restricted.stg_survey__responses",
        (*key("response_id", "item_set", "item_no"), *not_null("team", "survey_group", "wave_quarter"),
         *between(1, 7, "item_no"), *between(SCALE_MIN, SCALE_MAX, "answer", "score")),
        "Scored answers: one per response and scale item, on the Likert scale, for a mapped team.",
        respondent_level=True,
    ),
    Suite(
        "staging.stg_config__team_map",
        (*key("source", "identifier"), *not_null("team")),
        "Team map: every identifier belongs to exactly one team.",
    ),
]

MART_SUITES = [
    Suite("marts.dim_teams", (*key("team"), not_empty()), "One row per team of the team map."),
    Suite(
        "marts.fct_incidents",
        (*key("incident_id"), *not_null("triggered_at", "period_month", "is_open"), not_empty(),
         *at_least(0, "tta_seconds", "ttr_seconds", "reopen_count"),
         not_before("resolved_at", "acknowledged_at"),
         gxe.ExpectColumnValuesToBeNull(column="resolved_at", row_condition=_OPEN)),
        "Incidents the models read: durations never negative, acknowledged no later than "
        "resolved, open incidents censored (no resolution time).",
        blocking=True,
    ),
    Suite(
        "marts.fct_incidents",
        not_null("team"),
        "Every incident's service maps to a team; unmapped incidents are left out of the "
        "team-month KPIs, so fix the team map.",
        name="incidents_mapped_to_teams",
        row_id=("incident_id",),
    ),
    Suite(
        "marts.fct_incidents",
        (gxe.ExpectColumnValuesToBeNull(column="timeline_conflict"),),
        "Every incident's log entries are in an order an incident can have; one acknowledged or "
        "resolved before its trigger, or acknowledged after its resolve (clock skew, entries out of "
        "order), has that time left out of TTA or TTR (timeline_conflict says which).",
        name="incidents_in_time_order",
        row_id=("incident_id",),
    ),
    Suite(
        "marts.fct_tickets",
        (*key("issue_id"), *not_null("period_month"),
         gxe.ExpectColumnValuesToBeInSet(column="ticket_class", value_set=["proactive", "reactive", "unclassified"])),
        "Tickets: one row per issue, each classified (unclassified when no rule matches).",
    ),
    Suite(
        "marts.fct_incident_reviews",
        (*key("incident_id"), *not_null("period_month", "first_review_id", "review_created_at"),
         *at_least(1, "reviews")),
        "Reviewed incidents: one row per incident, naming its first review.",
    ),
    Suite(
        "marts.fct_review_action_items",
        (*key("action_item_id"), *not_null("review_id", "created_at", "period_month", "is_closed_in_time", "is_due"),
         not_before("closed_at", "created_at"), *at_least(0, "days_to_close")),
        "Review action items: one row per item of a review, never closed before created.",
    ),
    Suite(
        "marts.fct_incident_repeats",
        (*key("incident_id"), *not_null("repeat_of_incident_id", "matched_on", "period_month"),
         not_before("triggered_at", "repeat_of_resolved_at"), *at_least(0, "days_after_resolve")),
        "Repeat incidents: each triggered after the resolve of the incident it repeats.",
    ),
    Suite(
        "marts.mart_team_month",
        (*key("team", "period_month"), not_empty(),
         *at_least(0, "headcount", "critical_headcount", "voluntary_leavers", "critical_voluntary_leavers",
                   "incidents", "n_ttr", "n_tta", "proactive_tickets", "reactive_tickets",
                   "unclassified_tickets", "ttr_median_seconds", "tta_median_seconds"),
         # Over the average of this and next month's opening headcount, a rate can exceed 1 on true
         # data (a team's only critical-role person leaves: 1 / ((1 + 0) / 2) = 2), so only its sign.
         *at_least(0, "voluntary_attrition_rate", "critical_attrition_rate"),
         *between(0, 1, "proactive_share"),
         not_before("headcount", "critical_headcount"), not_before("incidents", "n_ttr"),
         not_before("incidents", "n_tta"), not_before("ttr_p90_seconds", "ttr_median_seconds"),
         # Learning from errors and speaking up: each count within the one it is part of.
         *at_least(0, "reviewed_incidents", "n_reviews_done", "action_items_closed_in_time", "n_action_items_closed",
                   "action_item_close_median_days", "repeat_incidents", "junior_headcount",
                   "cross_team_proactive_tickets", "junior_proactive_tickets"),
         *between(0, 1, "review_share", "action_items_closed_in_time_share", "repeat_share"),
         not_before("incidents", "reviewable_incidents"), not_before("reviewable_incidents", "reviewed_incidents"),
         not_before("reviewed_incidents", "n_reviews_done"), not_before("action_items", "action_items_due"),
         not_before("action_items_due", "action_items_closed_in_time"),
         not_before("action_items", "n_action_items_closed"), not_before("incidents", "repeat_incidents"),
         not_before("headcount", "junior_headcount"),
         not_before("proactive_tickets", "proactive_tickets_reporter_known"),
         not_before("proactive_tickets_reporter_known", "cross_team_proactive_tickets"),
         not_before("proactive_tickets_reporter_known", "junior_proactive_tickets"),
         *between(SCALE_MIN, SCALE_MAX, "safety_lagged"),
         *at_least(MIN_RESPONDENTS, "safety_n_respondents")),
        "Team-months the models read: counts never negative and never above the count they are part "
        "of (reviewed within reviewable incidents, closed in time within due action items, cross-team "
        "and junior proactive tickets within those whose reporter is known), attrition rates never negative, "
        "shares in [0, 1], lagged safety on the survey scale and only from reportable cells.",
        blocking=True,
        when_empty=HR_MISSING,
    ),
    Suite(
        "marts.mart_team_month",
        (not_before("headcount", "voluntary_leavers"), not_before("critical_headcount", "critical_voluntary_leavers")),
        "Voluntary leavers no more than the month's opening headcount (overall and in critical roles). More leavers "
        "are true only for hires who left within the month (the models then take the leavers as the number at "
        "risk); otherwise the HR export counts leavers in the wrong org unit or month, or the headcount snapshot "
        "misses people: check the named team-months in the HR files.",
        name="leavers_within_opening_headcount",
        row_id=("team", "period_month"),
    ),
    Suite(
        "marts.fct_team_survey_waves",
        (*key("team", "wave_quarter", "scale"), not_empty(), *not_null("is_suppressed", "frozen_at"),
         *at_least(1, "n_respondents"), *between(SCALE_MIN, SCALE_MAX, "score_mean"),
         *at_least(0, "score_sd"),
         gxe.ExpectColumnValuesToBeNull(column="score_mean", row_condition=_SUPPRESSED),
         gxe.ExpectColumnValuesToBeNull(column="score_sd", row_condition=_SUPPRESSED),
         gxe.ExpectColumnValuesToNotBeNull(column="score_mean", row_condition=_REPORTABLE),
         gxe.ExpectColumnValuesToBeBetween(
             column="n_respondents", min_value=MIN_RESPONDENTS, row_condition=_REPORTABLE)),
        "Team-wave-scales the models read: scores on the survey scale; cells under "
        f"{MIN_RESPONDENTS} respondents suppressed (no mean, no sd); every row frozen with its wave.",
        blocking=True,
        when_empty=("No survey wave: no survey export is loaded (restricted.survey__responses), or none of its "
                    "teams is in the team map. Put the survey export in the landing folder (README, Bring your own "
                    "exports), and see the survey_responses asset's metadata for what it read and quarantined."),
    ),
    Suite(
        "marts.fct_team_month_survey_scores",
        # Empty until a month after the first wave's quarter has a team-month (the first wave is read
        # against the next quarter's KPIs): the models then say no score is usable yet.
        (*key("team", "period_month", "scale"), *not_null("is_wave_stale"),
         *between(SCALE_MIN, SCALE_MAX, "score_lagged"), *at_least(MIN_RESPONDENTS, "n_respondents")),
        "Lagged scores the models read: on the survey scale and only from reportable cells.",
        blocking=True,
    ),
]

SUITES = [*RAW_SUITES, *STAGING_SUITES, *MART_SUITES]
