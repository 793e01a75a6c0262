"""Jira tickets of the synthetic organisation, with their status changelogs."""

from __future__ import annotations

from datetime import datetime, timedelta

from pipelines.synthetic.model import AUTOMATION_ACCOUNT, ChangelogEntry, Ticket, add_months, logistic

PROACTIVE_TYPES = ("Risk", "Near miss", "Improvement", "Security finding", "Tech debt")
REACTIVE_TYPES = ("Incident", "Escalation", "Problem")
UNCLASSIFIED_TYPES = ("Task", "Story")
PROACTIVE_LABELS = ("near-miss", "proactive", "raised-concern")
# Log-odds that a classified ticket is proactive at safety 0 (about 35%).
PROACTIVE_LOG_ODDS_BASE = -0.6


def generate_tickets(rng, spec, truth, teams, lagged_safety, as_of) -> list[Ticket]:
    tickets: list[Ticket] = []
    counters = {t.key: 0 for t in teams}
    for month in range(spec.n_months):
        month_start = add_months(spec.start, month)
        month_seconds = (add_months(spec.start, month + 1) - month_start).total_seconds()
        for t in teams:
            s = lagged_safety(t.key, month)
            p_proactive = logistic(PROACTIVE_LOG_ODDS_BASE + truth.proactive_log_odds_per_sd * s)
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
                walk_workflow(rng, ticket, as_of)
                tickets.append(ticket)
    return tickets


def walk_workflow(rng, ticket: Ticket, as_of: datetime) -> None:
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
            ChangelogEntry(f"{ticket.id}{i:04d}", now, AUTOMATION_ACCOUNT, "status", status, target)
        )
        status = target
        ticket.updated = now
    ticket.status = status
    if status == "Done":
        ticket.resolved = ticket.updated



SHARED_PROJECT = "OPS"
UNOWNED_COMPONENT = "Shared tooling"


def add_shared_project(rng, teams, tickets) -> None:
    """Some tickets of every team are filed in a shared operations project, told apart by
    a component named after the team (and a few by a component no team owns), drawn from a
    separate random stream so the causal model's draws stay as they were."""
    names = {t.key: t.name for t in teams}
    count = 0
    for ticket in tickets:
        if rng.random() >= 0.15:
            continue
        count += 1
        ticket.project_key, ticket.key = SHARED_PROJECT, f"{SHARED_PROJECT}-{count}"
        ticket.components = [UNOWNED_COMPONENT if rng.random() < 0.02 else names[ticket.team_key]]
