"""The synthetic organisation's records and the causal model's parameters (its ground truth)."""

from __future__ import annotations

import math
import string
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime

import numpy as np

# The Jira automation account: moves tickets through their workflow and creates some issues on a
# person's behalf.
AUTOMATION_ACCOUNT = "557058:sandbox-bot"


@dataclass(frozen=True)
class OrgSpec:
    """What to generate. ``seed`` fixes every random draw."""

    seed: int = 7
    n_teams: int = 30
    n_months: int = 24
    start: date = date(2024, 1, 1)
    incidents_per_head_month: float = 0.45
    tickets_per_head_month: float = 1.2
    # The survey also asks the optional scales: accountability and Clark's four stages.
    extra_scales: bool = True


@dataclass(frozen=True)
class GroundTruth:
    """Effects of one standard deviation of (latent) team safety, per METRICS.md timing:
    the survey wave of quarter q drives the KPIs of quarter q+1."""

    log_ttr_per_sd: float = -0.25
    log_tta_per_sd: float = -0.15
    log_ttd_per_sd: float = -0.20
    proactive_log_odds_per_sd: float = 0.40
    voluntary_attrition_log_odds_per_sd: float = -0.30
    # Reporting bias: safer teams page (and so record) more incidents for the same load.
    incident_rate_log_per_sd: float = 0.15
    # Confounder: larger teams are less safe and slower to resolve; the model adjusts for it.
    safety_per_sd_log_headcount: float = -0.35
    log_ttr_per_sd_log_headcount: float = 0.25
    # Noise: team random intercept on log TTR, incident residual, within-team wave drift.
    log_ttr_team_sd: float = 0.30
    log_ttr_incident_sd: float = 0.90
    safety_wave_drift_sd: float = 0.25
    respondent_sd: float = 0.45
    item_sd: float = 0.70
    response_rate: float = 0.85
    # Survey export: Likert points K (5 or 7) and the chance a respondent skips an item
    # (partial answers; a response with fewer than 5 of 7 items is not scored).
    survey_scale_points: int = 7
    item_skip_rate: float = 0.03
    # Learning from errors (pipelines/synthetic/learning.py): the log-odds that a resolved
    # high-urgency incident is reviewed, the log days from its resolve to the review done, the
    # log days to close a review's action item, the log-odds that an incident repeats a recent one.
    review_log_odds_per_sd: float = 0.50
    review_done_log_days_per_sd: float = -0.20
    action_item_close_log_days_per_sd: float = -0.25
    repeat_log_odds_per_sd: float = -0.40
    # Speaking up (pipelines/synthetic/people.py): the log rate of proactive tickets raised for
    # a team by people of other teams (per head), and by the team's own juniors (per junior head).
    cross_team_proactive_log_rate_per_sd: float = 0.30
    junior_proactive_log_rate_per_sd: float = 0.35
    # Accountability (latent, SD 1 per wave like safety, the same wave drift, independent of
    # safety so the safety effects keep their truth): it shortens time to resolve, and more so
    # where safety is high too (Edmondson's learning zone).
    log_ttr_per_sd_accountability: float = -0.10
    log_ttr_per_sd2_safety_x_accountability: float = -0.15
    # Clark's stages: each team-wave's stage score is its latent safety plus this much of its own.
    clark_stage_sd: float = 0.35


@dataclass
class Team:
    key: str
    name: str
    pagerduty_id: str
    jira_project: str
    hr_org_unit: str
    headcount: int
    safety: float  # latent, team-constant part


@dataclass
class Service:
    pagerduty_id: str
    name: str
    team_key: str  # the owning team at the end of the history
    escalation_policy_id: str
    # Ingestion fidelity: a reorg moves a service between teams; test services' incidents
    # are excluded from every KPI.
    previous_team_key: str | None = None  # owner before moved_at
    moved_at: datetime | None = None
    is_test: bool = False

    def team_at(self, moment: datetime) -> str:
        if self.moved_at is not None and moment < self.moved_at:
            return self.previous_team_key
        return self.team_key


@dataclass
class User:
    pagerduty_id: str
    name: str
    email: str
    team_key: str


@dataclass
class Incident:
    pagerduty_id: str
    number: int
    service_id: str
    team_key: str
    title: str
    urgency: str
    created_at: datetime
    onset_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    auto_resolved: bool
    # Ingestion fidelity: where the onset is recorded (the "impact started" custom field, set
    # by a responder after the trigger, and/or the first alert's payload timestamp), reopens
    # (resolved, triggered again, resolved for good at resolved_at) and merges.
    impact_started_at: datetime | None = None
    impact_recorded_at: datetime | None = None  # when the responder filled in the field
    alert_timestamp: datetime | None = None
    first_resolved_at: datetime | None = None  # set when the incident was reopened
    reopened_at: datetime | None = None
    merged_into: str | None = None  # pagerduty_id of the incident it was merged into
    # Learning from errors: the alert's de-duplication key, and the incident this one repeats.
    dedup_key: str = ""
    repeat_of: str | None = None  # pagerduty_id
    # The review drawn for it, whether or not it exists by the cut-off (for checks: truth_frames.py):
    # when it is created and done, and its action items' creation and close times.
    review_created_at: datetime | None = None
    review_done_at: datetime | None = None
    review_action_items: list[tuple[datetime, datetime]] = field(default_factory=list)


@dataclass
class ChangelogEntry:
    id: str
    created: datetime
    author_account_id: str
    field: str
    from_string: str
    to_string: str


@dataclass
class Ticket:
    id: str
    key: str
    project_key: str
    team_key: str
    issue_type: str
    labels: list[str]
    summary: str
    created: datetime
    updated: datetime
    resolved: datetime | None
    status: str
    changelog: list[ChangelogEntry] = field(default_factory=list)
    components: list[str] = field(default_factory=list)  # component names in project_key
    # Who raised it (Jira account ids; reporter None: the issue has none, as Jira allows).
    reporter_account_id: str | None = None
    creator_account_id: str | None = None
    # Post-incident reviews and their action items: outward links (link type name, other
    # issue's key), the parent of a sub-task, custom field values and the description's text.
    links: list[tuple[str, str]] = field(default_factory=list)
    parent_key: str | None = None
    custom_fields: dict[str, str] = field(default_factory=dict)
    description: str | None = None


@dataclass
class Person:
    """An employee's Jira account. ``mapped_by`` says how the identity map names them
    (account id, email, or not at all); ``email_visible``: Jira shows their email address."""

    employee_id: str
    account_id: str
    email: str
    email_visible: bool
    mapped_by: str | None


@dataclass
class ReviewActionItem:
    id: str
    name: str
    created_at: datetime
    completed_at: datetime | None


@dataclass
class IncidentReview:
    """A review in PagerDuty's own Incident Reviews."""

    id: str
    incident_id: str  # pagerduty_id
    title: str
    created_at: datetime
    completed_at: datetime | None
    action_items: list[ReviewActionItem] = field(default_factory=list)


@dataclass
class Organisation:
    spec: OrgSpec
    truth: GroundTruth
    as_of: datetime
    teams: list[Team]
    services: list[Service]
    users: list[User]
    incidents: list[Incident]
    tickets: list[Ticket]
    survey_rows: list[dict]
    headcount_rows: list[dict]
    termination_rows: list[dict]
    # Latent safety per team and quarter index (0-based from spec.start), for checks.
    team_quarter_safety: dict[tuple[str, int], float]
    people: list[Person] = field(default_factory=list)
    incident_reviews: list[IncidentReview] = field(default_factory=list)
    # Latent accountability per team and quarter, and each of Clark's stages per team, quarter
    # and stage (item set key); empty when the survey asks only Edmondson's items.
    team_quarter_accountability: dict[tuple[str, int], float] = field(default_factory=dict)
    team_quarter_stages: dict[tuple[str, int, str], float] = field(default_factory=dict)

    def ground_truth(self) -> dict:
        return {"spec": _jsonable(asdict(self.spec)), "effects": asdict(self.truth)}


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value



def pd_id(rng: np.random.Generator) -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "P" + "".join(alphabet[i] for i in rng.integers(0, len(alphabet), 6))


def add_months(start: date, offset: int) -> datetime:
    y, m = divmod(start.month - 1 + offset, 12)
    return datetime(start.year + y, m + 1, 1, tzinfo=UTC)


def logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))

