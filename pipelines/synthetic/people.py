"""People of the synthetic organisation: junior roles, Jira accounts, the identity map, and who
raised each ticket (the speaking-up part of the causal model, docs/ground_truth.md).

Drawn from the learning stream (``[seed, 3]``), after everything else, so the rest of the
organisation is the same with or without it.

Who raises a team's proactive tickets follows safety: for a team-month with lagged safety s,
headcount h and j juniors, the expected proactive tickets raised by people of other teams are
``h * CROSS_TEAM_RATE * exp(cross_team_proactive_log_rate_per_sd * s)`` and those raised by the
team's own juniors ``j * JUNIOR_RATE * exp(junior_proactive_log_rate_per_sd * s)``: each proactive
ticket's reporter is drawn with the probabilities that make these the expectations, given how
many proactive tickets the ticket model expects (tickets.py), so both counts are log-linear in
safety with exposure headcount and junior headcount.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date

from pipelines.synthetic.model import AUTOMATION_ACCOUNT, Organisation, Person, Ticket, logistic
from pipelines.synthetic.tickets import PROACTIVE_LABELS, PROACTIVE_LOG_ODDS_BASE, PROACTIVE_TYPES

# A person in one of these roles is junior with this probability (their role becomes "junior <role>",
# which config/kpi_rules.yml's "Junior *" matches).
JUNIOR_ELIGIBLE_ROLES = ("engineer", "sre", "analyst")
JUNIOR_PREFIX = "junior "
JUNIOR_SHARE = 0.5
# Proactive tickets per head-month raised from other teams, and per junior head-month by the
# team's juniors, at safety 0.
CROSS_TEAM_RATE = 0.05
JUNIOR_RATE = 0.08
# Jira shows this share of people's email addresses; the identity map names 90% of people by
# account id, 5% by email only (among those whose email Jira shows), 5% not at all.
EMAIL_VISIBLE_SHARE = 0.6
MAPPED_BY_ACCOUNT_SHARE = 0.90
MAPPED_BY_EMAIL_SHARE = 0.05
# Issues the automation account creates on a person's behalf (reporter: the person).
CREATED_BY_AUTOMATION_SHARE = 0.05
# Issues without a reporter (Jira allows it): the creator raised them.
NO_REPORTER_SHARE = 0.03


def assign_juniors(rng, headcount_rows: list[dict], termination_rows: list[dict]) -> None:
    """Make about JUNIOR_SHARE of the people in JUNIOR_ELIGIBLE_ROLES junior, in every row of theirs."""
    junior: dict[str, bool] = {}
    for row in headcount_rows:
        if row["employee_id"] not in junior:
            junior[row["employee_id"]] = bool(rng.random() < JUNIOR_SHARE) and row["role"] in JUNIOR_ELIGIBLE_ROLES
    for row in [*headcount_rows, *termination_rows]:
        if junior.get(row["employee_id"]):
            row["role"] = JUNIOR_PREFIX + row["role"]


def make_people(rng, headcount_rows: list[dict]) -> list[Person]:
    """A Jira account for everyone in the HR snapshots, and how the identity map names them."""
    people = []
    for employee_id in dict.fromkeys(row["employee_id"] for row in headcount_rows):
        digits = "".join(f"{int(d):x}" for d in rng.integers(0, 16, 32))
        account_id = f"712020:{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
        email_visible = bool(rng.random() < EMAIL_VISIBLE_SHARE)
        draw = rng.random()
        if draw < MAPPED_BY_ACCOUNT_SHARE:
            mapped_by = "account"
        elif draw < MAPPED_BY_ACCOUNT_SHARE + MAPPED_BY_EMAIL_SHARE and email_visible:
            mapped_by = "email"
        else:
            mapped_by = None
        people.append(Person(employee_id, account_id, f"{employee_id.lower()}@example.com", email_visible, mapped_by))
    return people


def identity_map_entries(org: Organisation) -> list[dict]:
    """The identity map's entries (identity_map.yml) for the people it names."""
    entries = []
    for person in org.people:
        if person.mapped_by == "account":
            entries.append({"employee_id": person.employee_id, "jira_account_ids": [person.account_id]})
        elif person.mapped_by == "email":
            entries.append({"employee_id": person.employee_id, "emails": [person.email.upper()]})
    return entries


def is_proactive(ticket: Ticket) -> bool:
    """As the shipped classification rules read it (config/ticket_classification.yml)."""
    return ticket.issue_type in PROACTIVE_TYPES or any(label in PROACTIVE_LABELS for label in ticket.labels)


def assign_reporters(rng, org: Organisation, people: list[Person], lagged_safety) -> None:
    """Give every ticket a reporter and a creator (see the module's docstring)."""
    account = {person.employee_id: person.account_id for person in people}
    team_of_unit = {t.hr_org_unit: t.key for t in org.teams}
    headcount = {t.key: t.headcount for t in org.teams}
    start = org.spec.start
    roster: dict[tuple[str, int], list[tuple[str, bool]]] = defaultdict(list)
    everyone: dict[int, list[tuple[str, str]]] = defaultdict(list)  # month -> (team, employee)
    for row in org.headcount_rows:
        snapshot = date.fromisoformat(row["snapshot_date"])
        month = (snapshot.year - start.year) * 12 + snapshot.month - start.month
        roster[team_of_unit[row["org_unit"]], month].append((row["employee_id"], row["role"].startswith(JUNIOR_PREFIX)))
        everyone[month].append((team_of_unit[row["org_unit"]], row["employee_id"]))
    truth = org.truth
    proactive_per_head = org.spec.tickets_per_head_month * 0.8  # 20% of tickets are unclassified (tickets.py)
    for ticket in org.tickets:
        month = (ticket.created.year - start.year) * 12 + ticket.created.month - start.month
        team = roster[ticket.team_key, month]
        draw, pick = rng.random(), rng.random()
        if not team:
            continue
        juniors = [employee for employee, junior in team if junior]
        others = [employee for employee, junior in team if not junior] or [employee for employee, _ in team]
        reporter = others[int(pick * len(others))]
        if is_proactive(ticket):
            s = lagged_safety(ticket.team_key, month)
            # As tickets.py draws them: Poisson with the team's planned headcount, not the roster's.
            expected = headcount[ticket.team_key] * proactive_per_head * logistic(
                PROACTIVE_LOG_ODDS_BASE + truth.proactive_log_odds_per_sd * s)
            cross = len(team) * CROSS_TEAM_RATE * math.exp(truth.cross_team_proactive_log_rate_per_sd * s) / expected
            junior = len(juniors) * JUNIOR_RATE * math.exp(truth.junior_proactive_log_rate_per_sd * s) / expected
            if draw < cross:
                outside = [employee for key, employee in everyone[month] if key != ticket.team_key]
                reporter = outside[int(pick * len(outside))]
            elif draw < cross + junior:
                reporter = juniors[int(pick * len(juniors))]
        ticket.reporter_account_id = account[reporter]
        ticket.creator_account_id = account[reporter]
        extra = rng.random()
        if extra < CREATED_BY_AUTOMATION_SHARE:
            ticket.creator_account_id = AUTOMATION_ACCOUNT
        elif extra < CREATED_BY_AUTOMATION_SHARE + NO_REPORTER_SHARE:
            ticket.reporter_account_id = None
