"""Seeded synthetic organisation with a known ground truth.

The generator draws teams, services, people, incidents, tickets, survey responses and HR
records from a small causal model (documented in docs/ground_truth.md and returned as
``Organisation.ground_truth``). The sandbox serves the operational records through the
PagerDuty and Jira APIs; the survey and HR records are written as landing-folder exports.

Everything is a pure function of ``OrgSpec``: the same spec yields the same organisation,
byte for byte, so the sandbox and the tests can rebuild it instead of storing it.
"""

from __future__ import annotations

import csv
import json
import math
import string
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

# Edmondson (1999) team psychological safety items; the three marked True are reverse-scored.
SURVEY_ITEMS: tuple[tuple[str, bool], ...] = (
    ("If you make a mistake on this team, it is often held against you", True),
    ("Members of this team are able to bring up problems and tough issues", False),
    ("People on this team sometimes reject others for being different", True),
    ("It is safe to take a risk on this team", False),
    ("It is difficult to ask other members of this team for help", True),
    (
        "No one on this team would deliberately act in a way that undermines my efforts",
        False,
    ),
    (
        "Working with members of this team, my unique skills and talents are valued and utilized",
        False,
    ),
)

PROACTIVE_TYPES = ("Risk", "Near miss", "Improvement", "Security finding", "Tech debt")
REACTIVE_TYPES = ("Incident", "Escalation", "Problem")
UNCLASSIFIED_TYPES = ("Task", "Story")
PROACTIVE_LABELS = ("near-miss", "proactive", "raised-concern")

_TEAM_WORDS = (
    "Payments", "Search", "Identity", "Checkout", "Catalog", "Billing", "Messaging",
    "Platform", "Storage", "Network", "Mobile", "Web", "Data", "Analytics", "Ledger",
    "Pricing", "Shipping", "Returns", "Loyalty", "Ads", "Media", "Maps", "Fraud", "Support",
    "Onboarding", "Reporting", "Compliance", "Inventory", "Warehouse", "Routing", "Gateway",
    "Streaming", "Edge", "Observability", "Release", "Security", "Kernel", "Compute",
    "Scheduler", "Notifications",
)
_TEAM_SUFFIXES = ("", " Core", " API", " Infra", " Apps")


@dataclass(frozen=True)
class OrgSpec:
    """What to generate. ``seed`` fixes every random draw."""

    seed: int = 7
    n_teams: int = 30
    n_months: int = 24
    start: date = date(2024, 1, 1)
    incidents_per_head_month: float = 0.45
    tickets_per_head_month: float = 1.2


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
    team_key: str
    escalation_policy_id: str


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

    def ground_truth(self) -> dict:
        return {"spec": _jsonable(asdict(self.spec)), "effects": asdict(self.truth)}


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def _pd_id(rng: np.random.Generator) -> str:
    alphabet = string.ascii_uppercase + string.digits
    return "P" + "".join(alphabet[i] for i in rng.integers(0, len(alphabet), 6))


def _month_start(start: date, offset: int) -> datetime:
    y, m = divmod(start.month - 1 + offset, 12)
    return datetime(start.year + y, m + 1, 1, tzinfo=UTC)


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _jira_key(name: str, taken: set[str]) -> str:
    letters = "".join(ch for ch in name.upper() if ch.isalpha())
    for length in (3, 4, 5):
        for start in range(len(letters) - length + 1):
            candidate = letters[start : start + length]
            if candidate not in taken:
                taken.add(candidate)
                return candidate
    raise ValueError(f"no free Jira key for team {name!r}")


def generate(spec: OrgSpec = OrgSpec(), truth: GroundTruth = GroundTruth()) -> Organisation:
    if spec.n_teams < 2 or spec.n_months < 6:
        raise ValueError("an organisation needs at least 2 teams and 6 months")
    if spec.start.day != 1 or spec.start.month not in (1, 4, 7, 10):
        # Survey waves are calendar quarters in the warehouse; the generator's must match.
        raise ValueError(f"start must be the first day of a calendar quarter, not {spec.start}")
    if spec.n_teams > len(_TEAM_WORDS) * len(_TEAM_SUFFIXES):
        raise ValueError(f"at most {len(_TEAM_WORDS) * len(_TEAM_SUFFIXES)} teams")
    rng = np.random.default_rng(spec.seed)
    as_of = _month_start(spec.start, spec.n_months)
    n_quarters = math.ceil(spec.n_months / 3)

    headcounts = np.clip(np.round(np.exp(rng.normal(math.log(9), 0.35, spec.n_teams))), 5, 25)
    log_hc = np.log(headcounts)
    size_z = (log_hc - log_hc.mean()) / log_hc.std()
    # Team-constant safety has variance 1 - drift^2 so each wave's latent safety has variance 1.
    between_var = 1.0 - truth.safety_wave_drift_sd**2
    rho = truth.safety_per_sd_log_headcount
    team_safety = rho * size_z + math.sqrt(between_var - rho**2) * rng.normal(size=spec.n_teams)

    teams: list[Team] = []
    taken_keys: set[str] = set()
    for i in range(spec.n_teams):
        word = _TEAM_WORDS[i % len(_TEAM_WORDS)]
        name = word + _TEAM_SUFFIXES[i // len(_TEAM_WORDS)]
        teams.append(
            Team(
                key=name.lower().replace(" ", "-"),
                name=name,
                pagerduty_id=_pd_id(rng),
                jira_project=_jira_key(name, taken_keys),
                hr_org_unit=f"OU-{1000 + 17 * i}",
                headcount=int(headcounts[i]),
                safety=float(team_safety[i]),
            )
        )

    quarter_safety: dict[tuple[str, int], float] = {}
    for t in teams:
        for q in range(n_quarters):
            quarter_safety[(t.key, q)] = t.safety + rng.normal(0, truth.safety_wave_drift_sd)

    services: list[Service] = []
    users: list[User] = []
    for t in teams:
        for s in range(1 + t.headcount // 8):
            services.append(
                Service(_pd_id(rng), f"{t.name} service {s + 1}", t.key, _pd_id(rng))
            )
        for u in range(min(t.headcount, 6)):
            users.append(
                User(_pd_id(rng), f"{t.name} on-call {u + 1}", f"{t.key}.oncall{u + 1}@example.com", t.key)
            )
    services_by_team = {t.key: [s for s in services if s.team_key == t.key] for t in teams}
    users_by_team = {t.key: [u for u in users if u.team_key == t.key] for t in teams}
    size_z_by_team = {t.key: float(z) for t, z in zip(teams, size_z)}
    ttr_team_effect = {t.key: rng.normal(0, truth.log_ttr_team_sd) for t in teams}

    def lagged_safety(team_key: str, month: int) -> float:
        # KPIs of quarter q follow the wave of quarter q-1; the first quarter has no
        # earlier wave, so its KPIs follow the team's own first wave.
        return quarter_safety[(team_key, max(month // 3 - 1, 0))]

    incidents = _incidents(rng, spec, truth, teams, services_by_team, users_by_team,
                           size_z_by_team, ttr_team_effect, lagged_safety, as_of)
    tickets = _tickets(rng, spec, truth, teams, lagged_safety, as_of)
    survey_rows = _survey(rng, spec, truth, teams, quarter_safety, n_quarters)
    headcount_rows, termination_rows = _hr(rng, spec, truth, teams, lagged_safety)
    return Organisation(spec, truth, as_of, teams, services, users, incidents, tickets,
                        survey_rows, headcount_rows, termination_rows, quarter_safety)


def _incidents(rng, spec, truth, teams, services_by_team, users_by_team, size_z_by_team,
               ttr_team_effect, lagged_safety, as_of) -> list[Incident]:
    incidents: list[Incident] = []
    for month in range(spec.n_months):
        month_start = _month_start(spec.start, month)
        month_seconds = (_month_start(spec.start, month + 1) - month_start).total_seconds()
        for t in teams:
            s = lagged_safety(t.key, month)
            rate = t.headcount * spec.incidents_per_head_month * math.exp(
                truth.incident_rate_log_per_sd * s
            )
            for _ in range(rng.poisson(rate)):
                created = month_start + timedelta(seconds=float(rng.uniform(0, month_seconds)))
                created = created.replace(microsecond=0)
                log_ttr = (
                    math.log(3600)
                    + truth.log_ttr_per_sd * s
                    + truth.log_ttr_per_sd_log_headcount * size_z_by_team[t.key]
                    + ttr_team_effect[t.key]
                    + rng.normal(0, truth.log_ttr_incident_sd)
                )
                ttr = max(30.0, math.exp(log_ttr))
                auto_resolved = bool(rng.random() < 0.05)
                acknowledged = not auto_resolved and rng.random() < 0.95
                tta = min(ttr * 0.9, math.exp(math.log(300) + truth.log_tta_per_sd * s + rng.normal(0, 0.8)))
                onset = None
                if rng.random() < 0.6:
                    ttd = math.exp(math.log(600) + truth.log_ttd_per_sd * s + rng.normal(0, 0.8))
                    onset = (created - timedelta(seconds=ttd)).replace(microsecond=0)
                resolved = (created + timedelta(seconds=ttr)).replace(microsecond=0)
                acked_at = (created + timedelta(seconds=max(1.0, tta))).replace(microsecond=0)
                responder = users_by_team[t.key][int(rng.integers(len(users_by_team[t.key])))]
                service = services_by_team[t.key][int(rng.integers(len(services_by_team[t.key])))]
                incidents.append(
                    Incident(
                        pagerduty_id=_pd_id(rng),
                        number=0,
                        service_id=service.pagerduty_id,
                        team_key=t.key,
                        title=f"{service.name}: {rng.choice(['latency', 'errors', 'saturation', 'outage'])}",
                        urgency="high" if rng.random() < 0.7 else "low",
                        created_at=created,
                        onset_at=onset,
                        acknowledged_at=acked_at if acknowledged and acked_at < as_of else None,
                        acknowledged_by=responder.pagerduty_id if acknowledged else None,
                        resolved_at=resolved if resolved < as_of else None,
                        auto_resolved=auto_resolved,
                    )
                )
    incidents.sort(key=lambda i: i.created_at)
    for number, incident in enumerate(incidents, start=1):
        incident.number = number
    return incidents


def _tickets(rng, spec, truth, teams, lagged_safety, as_of) -> list[Ticket]:
    tickets: list[Ticket] = []
    counters = {t.key: 0 for t in teams}
    for month in range(spec.n_months):
        month_start = _month_start(spec.start, month)
        month_seconds = (_month_start(spec.start, month + 1) - month_start).total_seconds()
        for t in teams:
            s = lagged_safety(t.key, month)
            p_proactive = _logistic(-0.6 + truth.proactive_log_odds_per_sd * s)
            for _ in range(rng.poisson(t.headcount * spec.tickets_per_head_month)):
                counters[t.key] += 1
                created = (month_start + timedelta(seconds=float(rng.uniform(0, month_seconds)))).replace(microsecond=0)
                labels: list[str] = []
                if rng.random() < 0.2:
                    issue_type = str(rng.choice(UNCLASSIFIED_TYPES))
                elif rng.random() < p_proactive:
                    if rng.random() < 0.25:
                        issue_type = "Task"
                        labels.append(str(rng.choice(PROACTIVE_LABELS)))
                    else:
                        issue_type = str(rng.choice(PROACTIVE_TYPES))
                else:
                    issue_type = str(rng.choice(REACTIVE_TYPES))
                key = f"{t.jira_project}-{counters[t.key]}"
                ticket = Ticket(
                    id=str(10000 + len(tickets)),
                    key=key,
                    project_key=t.jira_project,
                    team_key=t.key,
                    issue_type=issue_type,
                    labels=labels,
                    summary=f"{issue_type} raised by {t.name}",
                    created=created,
                    updated=created,
                    resolved=None,
                    status="To Do",
                )
                _walk_workflow(rng, ticket, as_of)
                tickets.append(ticket)
    return tickets


def _walk_workflow(rng, ticket: Ticket, as_of: datetime) -> None:
    """Status transitions; a few tickets bounce between states long enough to need
    more than one changelog page."""
    n_bounces = int(rng.integers(60, 140)) if rng.random() < 0.01 else 0
    path = ["In Progress"] + ["In Review", "In Progress"] * (n_bounces // 2) + ["Done"]
    now = ticket.created
    status = ticket.status
    for i, target in enumerate(path):
        now = (now + timedelta(hours=float(rng.exponential(30)))).replace(microsecond=0)
        if now >= as_of:
            break
        ticket.changelog.append(
            ChangelogEntry(f"{ticket.id}{i:04d}", now, "557058:sandbox-bot", "status", status, target)
        )
        status = target
        ticket.updated = now
    ticket.status = status
    if status == "Done":
        ticket.resolved = ticket.updated


def _survey(rng, spec, truth, teams, quarter_safety, n_quarters) -> list[dict]:
    rows: list[dict] = []
    k = 7
    for q in range(n_quarters):
        wave_day = _month_start(spec.start, 3 * q) + timedelta(days=14)
        if wave_day >= _month_start(spec.start, spec.n_months):
            break
        for t in teams:
            for person in range(t.headcount):
                if rng.random() > truth.response_rate:
                    continue
                latent = quarter_safety[(t.key, q)] + rng.normal(0, truth.respondent_sd)
                row = {
                    "response_id": f"R{q:02d}{t.hr_org_unit[3:]}{person:03d}",
                    "submitted_at": (wave_day + timedelta(hours=float(rng.uniform(0, 240)))).strftime("%Y-%m-%d %H:%M:%S"),
                    "team": t.name,
                }
                for text, reverse in SURVEY_ITEMS:
                    agreement = 4.6 + 0.8 * latent + rng.normal(0, truth.item_sd)
                    answer = int(np.clip(round(agreement), 1, k))
                    row[text] = k + 1 - answer if reverse else answer
                rows.append(row)
    return rows


def _hr(rng, spec, truth, teams, lagged_safety) -> tuple[list[dict], list[dict]]:
    """Monthly headcount snapshots and terminations; leavers are replaced the next month."""
    snapshots: list[dict] = []
    terminations: list[dict] = []
    next_employee = 0
    roster: dict[str, list[tuple[str, str, bool]]] = {}
    roles = ("engineer", "senior engineer", "sre", "manager", "analyst")
    for t in teams:
        roster[t.key] = []
        for _ in range(t.headcount):
            next_employee += 1
            roster[t.key].append((f"E{next_employee:06d}", str(rng.choice(roles)), bool(rng.random() < 0.2)))
    for month in range(spec.n_months):
        month_start = _month_start(spec.start, month)
        for t in teams:
            p_vol = _logistic(math.log(0.012 / 0.988) + truth.voluntary_attrition_log_odds_per_sd * lagged_safety(t.key, month))
            stayers = []
            for employee_id, role, critical in roster[t.key]:
                snapshots.append({
                    "snapshot_date": month_start.date().isoformat(),
                    "employee_id": employee_id,
                    "org_unit": t.hr_org_unit,
                    "role": role,
                    "critical_role": critical,
                })
                u = rng.random()
                if u < p_vol + 0.003:
                    day = int(rng.integers(1, 28))
                    terminations.append({
                        "employee_id": employee_id,
                        "org_unit": t.hr_org_unit,
                        "role": role,
                        "critical_role": critical,
                        "termination_date": (month_start + timedelta(days=day)).date().isoformat(),
                        "voluntary": bool(u < p_vol),
                    })
                    next_employee += 1
                    stayers.append((f"E{next_employee:06d}", role, critical))
                else:
                    stayers.append((employee_id, role, critical))
            roster[t.key] = stayers
    return snapshots, terminations


def write_landing(org: Organisation, landing_dir: Path) -> dict[str, Path]:
    """Write the survey-tool and HR exports, the team map and the ground truth as files a
    data engineer would drop into the landing folder."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "survey": landing_dir / "survey_responses.csv",
        "headcount": landing_dir / "hr_headcount.csv",
        "terminations": landing_dir / "hr_terminations.csv",
        "team_map": landing_dir / "team_map.csv",
        "ground_truth": landing_dir / "ground_truth.json",
    }
    _write_csv(paths["survey"], org.survey_rows)
    _write_csv(paths["headcount"], org.headcount_rows)
    _write_csv(paths["terminations"], org.termination_rows)
    _write_csv(paths["team_map"], [
        {
            "team": t.name,
            "pagerduty_team": t.name,
            "jira_project": t.jira_project,
            "hr_org_unit": t.hr_org_unit,
            "survey_group": t.name,
        }
        for t in org.teams
    ])
    paths["ground_truth"].write_text(json.dumps(org.ground_truth(), indent=2))
    return paths


def _write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
