"""Learning from errors in the synthetic organisation: repeat incidents, post-incident reviews
and their action items (the learning part of the causal model, docs/ground_truth.md).

Drawn from the learning stream (``[seed, 3]``), after everything else, so the rest of the
organisation is the same with or without it. For an incident of a team whose lagged safety is s:

- it repeats the latest incident on its service resolved within REPEAT_WINDOW before it (when
  there is one) with log-odds REPEAT_LOG_ODDS + repeat_log_odds_per_sd * s: same alert (dedup)
  key and title, same key and another title, or the same title (other numbers) and a new key;
  every other incident gets a problem of its own, so no two match by chance;
- resolved and of high urgency, it is reviewed with log-odds REVIEW_LOG_ODDS +
  review_log_odds_per_sd * s; the review is done log-normally after the resolve (median
  REVIEW_DONE_MEDIAN_DAYS, log SD REVIEW_DONE_LOG_SD, shifted by review_done_log_days_per_sd * s);
- a review has Poisson(ACTION_ITEMS_PER_REVIEW) action items, each closed log-normally after
  it was created (median ACTION_ITEM_CLOSE_MEDIAN_DAYS, log SD ACTION_ITEM_CLOSE_LOG_SD, shifted
  by action_item_close_log_days_per_sd * s).

Reviews of incidents resolved in the last PAGERDUTY_REVIEWS_SINCE of the history are written in
PagerDuty's Incident Reviews half of the time (the organisation adopted them then); every other
review is a Jira issue in the team's project, naming its incident in a custom field
(INCIDENT_FIELD: the incident's id, or its web address), in its summary or description
("PagerDuty incident #1234"), or through a "Relates" link to the issue PagerDuty's Jira
integration made for the incident; its action items are sub-tasks or issues linked to it as
"Action item"s.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from pathlib import Path

from pipelines.synthetic.model import (
    AUTOMATION_ACCOUNT,
    ChangelogEntry,
    Incident,
    IncidentReview,
    Organisation,
    ReviewActionItem,
    Ticket,
    logistic,
)

REPEAT_WINDOW = timedelta(days=30)
REPEAT_LOG_ODDS = -1.5
REVIEW_LOG_ODDS = -0.4
REVIEW_DONE_MEDIAN_DAYS = 6.0
REVIEW_DONE_LOG_SD = 0.6
ACTION_ITEMS_PER_REVIEW = 1.5
ACTION_ITEM_CLOSE_MEDIAN_DAYS = 12.0
ACTION_ITEM_CLOSE_LOG_SD = 0.8
# The organisation took up PagerDuty's Incident Reviews as long ago as the review sync's default
# window (assets/pagerduty/reviews.py): the older incidents its backfill asks about have none there
# (404), so the demo's figures do not depend on how far the backfill has got.
PAGERDUTY_REVIEWS_SINCE = timedelta(days=45)
# The sandbox site's "PagerDuty incident" custom field.
INCIDENT_FIELD = "customfield_10070"
INCIDENT_WEB_URL = "https://psafe-sandbox.pagerduty.com/incidents/{}"
REVIEW_TYPE = "Post-incident review"
REVIEW_LABELS = ("pir", "learn", "coe")
SUBTASK_TYPE = "Sub-task"
RELATES, ACTION_ITEM = "Relates", "Action item"
_SYMPTOMS = ("p99 latency above target", "error rate above target", "disk almost full", "queue backlog growing",
             "memory pressure", "certificate expiring", "connection pool exhausted", "replication lag",
             "health check failing", "cache hit rate dropping", "timeouts from upstream", "crash loop")
_COMPONENTS = ("api", "worker", "database", "cache", "gateway", "scheduler", "search index", "message queue",
               "load balancer", "object store", "auth proxy", "batch job", "web frontend", "stream consumer",
               "config service", "dns resolver")


def counted(org: Organisation) -> list[Incident]:
    """The incidents every KPI counts (not merged, not on a test service), in trigger order."""
    test_services = {service.pagerduty_id for service in org.services if service.is_test}
    return [i for i in org.incidents if i.merged_into is None and i.service_id not in test_services]


def _month(org: Organisation, moment: datetime) -> int:
    return (moment.year - org.spec.start.year) * 12 + moment.month - org.spec.start.month


def add_repeats(rng, org: Organisation, lagged_safety) -> None:
    """Give every incident a dedup key and a title of its problem; some repeat a recent one."""
    problems = {service.pagerduty_id: [(symptom, component) for symptom in _SYMPTOMS for component in _COMPONENTS]
                for service in org.services}
    for combos in problems.values():
        rng.shuffle(combos)
    names = {service.pagerduty_id: service.name for service in org.services}
    used: dict[str, int] = {}
    resolved_by_service: dict[str, list[Incident]] = {}
    counts = {id(incident) for incident in counted(org)}
    for incident in org.incidents:
        draw, how, number = rng.random(), rng.random(), int(rng.integers(2, 99))
        earlier = [previous for previous in resolved_by_service.get(incident.service_id, [])
                   if previous.resolved_at < incident.created_at <= previous.resolved_at + REPEAT_WINDOW]
        source = max(earlier, key=lambda previous: previous.resolved_at, default=None)
        s = lagged_safety(incident.team_key, _month(org, incident.created_at))
        repeats = logistic(REPEAT_LOG_ODDS + org.truth.repeat_log_odds_per_sd * s)
        if id(incident) in counts and source is not None and draw < repeats:
            incident.repeat_of = source.pagerduty_id
            same_key, same_title = how < 0.75, how < 0.5 or how >= 0.75
            incident.dedup_key = source.dedup_key if same_key else _dedup_key(incident)
            incident.title = (_renumbered(source.title, number) if same_title
                              else _title(names, problems, used, incident, number))
        else:
            incident.dedup_key = _dedup_key(incident)
            incident.title = _title(names, problems, used, incident, number)
        if id(incident) in counts and incident.resolved_at is not None:
            # Incidents come in trigger order: one resolved more than the window before this
            # trigger can be repeated by no later incident.
            resolved_by_service[incident.service_id] = [
                *(previous for previous in resolved_by_service.get(incident.service_id, [])
                  if previous.resolved_at >= incident.created_at - REPEAT_WINDOW), incident]


def _dedup_key(incident: Incident) -> str:
    return hashlib.sha1(f"{incident.pagerduty_id}/dedup".encode()).hexdigest()


def _title(names, problems, used, incident: Incident, number: int) -> str:
    """A problem of the service's own, not seen on it before (the combinations cycle after hundreds)."""
    combos = problems[incident.service_id]
    symptom, component = combos[used.get(incident.service_id, 0) % len(combos)]
    used[incident.service_id] = used.get(incident.service_id, 0) + 1
    return f"{names[incident.service_id]}: {symptom} on {component} ({number}0 ms)"


def _renumbered(title: str, number: int) -> str:
    """The same title with other numbers, as an alert's message changes with its values."""
    head, _, _ = title.rpartition(" (")
    return f"{head} ({number}5 ms)"


def add_reviews(rng, org: Organisation, lagged_safety) -> None:
    """Post-incident reviews (Jira issues or PagerDuty's) and their action items."""
    truth = org.truth
    teams = {team.key: team for team in org.teams}
    counters: dict[str, int] = {}
    for ticket in org.tickets:
        project, _, number = ticket.key.rpartition("-")
        counters[project] = max(counters.get(project, 0), int(number))
    for incident in counted(org):
        draws = (rng.random(), rng.random(), rng.random(), rng.random(), rng.random(), rng.normal(), rng.random())
        reviewed_draw, created_draw, channel_draw, way_draw, type_draw, lag_noise, label_draw = draws
        if incident.urgency != "high" or incident.resolved_at is None:
            continue
        s = lagged_safety(incident.team_key, _month(org, incident.created_at))
        if reviewed_draw >= logistic(REVIEW_LOG_ODDS + truth.review_log_odds_per_sd * s):
            continue
        lag = math.exp(math.log(REVIEW_DONE_MEDIAN_DAYS) + truth.review_done_log_days_per_sd * s
                       + REVIEW_DONE_LOG_SD * lag_noise)
        done = (incident.resolved_at + timedelta(days=lag)).replace(microsecond=0)
        # Started 6 hours to 4 days after the resolve, at most half-way to its done.
        created = (incident.resolved_at + min(timedelta(days=0.25 + 3.75 * created_draw),
                                              (done - incident.resolved_at) / 2)).replace(microsecond=0)
        incident.review_created_at, incident.review_done_at = created, done
        if created >= org.as_of:
            continue
        drawn = _action_items(rng, truth, s, created)
        incident.review_action_items = [(at, closed) for _, at, closed in drawn]
        # Items agreed after the cut-off do not exist yet.
        items = [item for item in drawn if item[1] < org.as_of]
        if incident.resolved_at >= org.as_of - PAGERDUTY_REVIEWS_SINCE and channel_draw < 0.5:
            org.incident_reviews.append(IncidentReview(
                id=_id("Q", incident.pagerduty_id, "review"), incident_id=incident.pagerduty_id,
                title=f"Review of #{incident.number}", created_at=created, completed_at=done,
                action_items=[ReviewActionItem(_id("A", incident.pagerduty_id, str(n)), name, at, closed)
                              for n, (name, at, closed) in enumerate(items)]))
            continue
        team = teams[incident.team_key]
        review = _ticket(org, counters, team, REVIEW_TYPE, created, f"Post-incident review: {incident.title}", done)
        if type_draw >= 0.7:
            review.issue_type, review.labels = "Task", [REVIEW_LABELS[int(label_draw * len(REVIEW_LABELS))]]
        if way_draw < 0.2:
            review.custom_fields[INCIDENT_FIELD] = incident.pagerduty_id
        elif way_draw < 0.4:
            review.custom_fields[INCIDENT_FIELD] = INCIDENT_WEB_URL.format(incident.pagerduty_id)
        elif way_draw < 0.55:
            review.summary = f"Post-incident review of PagerDuty incident #{incident.number}"
        elif way_draw < 0.75:
            review.description = f"What we learnt from PagerDuty incident #{incident.number}: {incident.title}."
        else:
            opened = incident.created_at + timedelta(minutes=5)
            record = _ticket(org, counters, team, "Task", opened, f"[PagerDuty] Incident #{incident.number}: "
                             f"{incident.title}", max(incident.resolved_at, opened + timedelta(minutes=1)))
            review.links.append((RELATES, record.key))
        for n, (name, at, closed) in enumerate(items):
            item = _ticket(org, counters, team, SUBTASK_TYPE if n % 5 < 3 else "Task", at, name, closed)
            if item.issue_type == SUBTASK_TYPE:
                item.parent_key = review.key
            else:
                review.links.append((ACTION_ITEM, item.key))


def _action_items(rng, truth, s: float, review_created: datetime) -> list[tuple[str, datetime, datetime]]:
    items = []
    for n in range(int(rng.poisson(ACTION_ITEMS_PER_REVIEW))):
        created = (review_created + timedelta(days=2 * rng.random())).replace(microsecond=0)
        days = math.exp(math.log(ACTION_ITEM_CLOSE_MEDIAN_DAYS) + truth.action_item_close_log_days_per_sd * s
                        + ACTION_ITEM_CLOSE_LOG_SD * rng.normal())
        items.append((f"Action {n + 1}: fix what the review found", created,
                      (created + timedelta(days=days)).replace(microsecond=0)))
    return items


def _id(prefix: str, incident_id: str, what: str) -> str:
    return prefix + hashlib.sha1(f"{incident_id}/{what}".encode()).hexdigest()[:13].upper()


def _ticket(org: Organisation, counters: dict[str, int], team, issue_type: str, created: datetime, summary: str,
            done: datetime | None) -> Ticket:
    """A new issue in the team's project, worked on after creation and done at ``done``."""
    counters[team.jira_project] = counters.get(team.jira_project, 0) + 1
    ticket = Ticket(id=str(10000 + len(org.tickets)), key=f"{team.jira_project}-{counters[team.jira_project]}",
                    project_key=team.jira_project, team_key=team.key, issue_type=issue_type, labels=[],
                    summary=summary, created=created, updated=created, resolved=None, status="To Do")
    started = created + (done - created) / 4 if done else created + timedelta(hours=4)
    steps = [(started, "To Do", "In Progress")] + ([(done, "In Progress", "Done")] if done else [])
    for n, (at, before, after) in enumerate(steps):
        at = at.replace(microsecond=0)
        if at >= org.as_of:
            break
        ticket.changelog.append(ChangelogEntry(f"{ticket.id}{n:04d}", at, AUTOMATION_ACCOUNT, "status", before, after))
        ticket.status, ticket.updated = after, at
    ticket.resolved = ticket.updated if ticket.status == "Done" else None
    org.tickets.append(ticket)
    return ticket


def write_site_kpi_rules(path: Path) -> Path:
    """The KPI rules a site of this organisation needs: the shipped ones (every key left out
    keeps its default), reading the "PagerDuty incident" custom field its reviews fill in, on a
    site without Atlassian Teams (no Team field: the shipped customfield_10001 would be named on
    every run as a field no issue has)."""
    path.write_text("# config/kpi_rules.yml's rules, reading the sandbox site's \"PagerDuty incident\" field; the\n"
                    "# site does not use Atlassian Teams.\n"
                    "post_incident_reviews:\n"
                    "  incident_link:\n"
                    f"    fields: [{INCIDENT_FIELD}]\n"
                    "tickets:\n"
                    "  team_field: ~\n", encoding="utf-8")
    return path
