"""What every raw warehouse row looks like, for the bulk generator: the ONE place to align
when the sandbox, the ingestion assets or the staging SQL change.

The shapes come from the project's own code wherever it can produce them cheaply:

- PagerDuty teams and services: rendered by the sandbox (``pipelines.sandbox.pagerduty``)
  and read back through its HTTP API (as WSGI calls, no sockets), record for record.
- PagerDuty incidents and log entries, Jira issues: the sandbox renders one record per
  status variant with sentinel values (``QQ<NAME>QQ``, sentinel times in 2001, sentinel
  numbers); the JSON that ``raw_tables.upsert_json_records`` would store
  (``json.dumps(sort_keys=True)``) becomes a SQL string expression whose holes name the
  columns that vary per record. DuckDB then fills in millions of them.
- Jira changelogs: complete and oldest first, as ``JiraResource`` stores them.
- Landing tables (survey, HR, team map): text columns, as ``assets.landing`` reads the CSVs.

If the sandbox starts rendering a value this module does not know (a new time field, say),
``sql_template`` refuses the template instead of silently freezing a sentinel into millions
of rows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

from werkzeug.test import Client

from assets.jira.resource import ISSUE_FIELDS
from pipelines.sandbox.jira import API as JIRA_API
from pipelines.sandbox.jira import STATUSES, JiraApi, jira_time
from pipelines.sandbox.pagerduty import PagerDutyApi, pd_time
from pipelines.synthetic.model import (
    ChangelogEntry,
    GroundTruth,
    Incident,
    Organisation,
    OrgSpec,
    Service,
    Team,
    Ticket,
    User,
)
from pipelines.synthetic.survey import SURVEY_ITEMS
from pipelines.synthetic.tickets import PROACTIVE_TYPES, REACTIVE_TYPES, UNCLASSIFIED_TYPES

PAGERDUTY_URL = "https://api.pagerduty.com"
JIRA_URL = "https://psafe.atlassian.net"
_PD_TOKEN, _JIRA_EMAIL, _JIRA_TOKEN = "bench-token", "bench@example.com", "bench-token"

# Formats of the values the bulk generator fills in (strftime, as DuckDB understands it).
PAGERDUTY_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # pipelines.sandbox.pagerduty.pd_time
JIRA_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.000+0000"  # pipelines.sandbox.jira.jira_time (whole seconds)
HEADCOUNT_COLUMNS = ("snapshot_date", "employee_id", "org_unit", "role", "critical_role")
TERMINATION_COLUMNS = ("employee_id", "org_unit", "role", "critical_role", "termination_date", "voluntary")
SURVEY_ID_COLUMNS = ("response_id", "submitted_at", "team")
SURVEY_ITEM_TEXTS = tuple(text for text, _ in SURVEY_ITEMS)
SURVEY_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CSV_TRUE, CSV_FALSE = "True", "False"  # how csv.DictWriter writes the generator's booleans
ISSUE_TYPES = (*UNCLASSIFIED_TYPES, *PROACTIVE_TYPES, *REACTIVE_TYPES)
# The ticket workflow the generator walks (pipelines.synthetic.tickets.walk_workflow).
INITIAL_STATUS, WORKING_STATUS, REVIEW_STATUS, DONE_STATUS = "To Do", "In Progress", "In Review", "Done"

_START = date(2001, 1, 1)
_AS_OF = datetime(2002, 1, 1, tzinfo=UTC)
_CREATED = datetime(2001, 1, 1, 1, 1, 1, tzinfo=UTC)
_ACKED = datetime(2001, 1, 1, 2, 2, 2, tzinfo=UTC)
_RESOLVED = datetime(2001, 1, 1, 3, 3, 3, tzinfo=UTC)
_ALERT = datetime(2001, 1, 1, 0, 40, 40, tzinfo=UTC)  # the first alert's payload timestamp
_IMPACT = datetime(2001, 1, 1, 0, 20, 20, tzinfo=UTC)  # the "impact started" custom field's value
_RECORDED = datetime(2001, 1, 1, 1, 31, 31, tzinfo=UTC)  # when a responder filled it in (before the resolve)
_HISTORY_START = datetime(2001, 2, 1, tzinfo=UTC)
_INCIDENT_NUMBER = 987654321
_HOLE = re.compile(r'"QQ([A-Z]+)QQ"|QQ([A-Z]+)QQ')

# Incident variants: (acknowledged before the cut-off, has a responder, resolved, auto-resolved).
INCIDENT_VARIANTS = {
    "resolved_by_user": (True, True, True, False),
    "resolved_by_timeout": (False, False, True, True),
    "resolved_by_api": (False, False, True, False),
    "acknowledged": (True, True, False, False),
    "triggered_assigned": (False, True, False, False),
    "triggered": (False, False, False, False),
}
MERGED_VARIANT = "merged"  # resolved by a responder merging it into an earlier incident
# Bulk choices beyond the variants (fractions of incidents; the onset's lead before the trigger).
ALERTED_SHARE = 0.6  # raised by an alert: the trigger entry's channel carries the alert's payload
IMPACT_RECORDED_SHARE = 0.3  # of resolved incidents: a responder fills in "impact started"
MERGED_SHARE = 0.03  # of incidents resolved by a responder: merged into the team's previous incident
SHARED_TICKET_SHARE = 0.15  # filed in the shared project, told apart by a component named after the team
UNOWNED_COMPONENT_SHARE = 0.02  # of those: a component no team owns (the ticket has no team)
TEST_SERVICE_EVERY = 5  # every 5th team's last service (of teams with several) is a test service


@dataclass(frozen=True)
class PagerDutyTemplates:
    """Per incident variant: the incident's payload and its log entries' payloads (by kind:
    trigger, acknowledge, resolve) as SQL expressions over the bulk incident columns."""

    incident: dict[str, str]
    log_entries: dict[str, dict[str, str]]
    alerted_trigger: dict[str, str]  # the trigger entry when an alert raised the incident
    impact_change: dict[str, str]  # the "impact started" custom field change (resolved variants)


@dataclass(frozen=True)
class JiraTemplates:
    issue: str  # SQL over issue_id, issue_key, summary, created_text, updated_text and *_json columns
    history: str  # SQL over history_id, history_created_text, items_json
    project: str  # SQL over project_id, project_key, team_name
    component: str  # SQL over component_id, component_name
    issue_types: dict[str, str]  # name -> JSON
    statuses: dict[str, str]  # name -> JSON
    transition_items: dict[tuple[str, str], str]  # (from status, to status) -> JSON list of items


def sql_template(record: dict, literals: dict[str, str], holes: dict[str, str]) -> str:
    """``record`` as stored in a raw table, as a SQL ``concat(...)`` expression.

    ``literals`` maps sentinel text in the JSON to a hole token (``QQNAMEQQ``); ``holes``
    maps each hole name to the column that fills it. Holes whose column ends in ``_json``
    take a JSON value in place of the quoted token; the others take text inside a JSON
    string or number. (One ``concat`` allocates each payload once; a chain of ``||`` copies
    it at every step and is several times slower at millions of rows.)
    """
    text = json.dumps(record, sort_keys=True)
    for literal, token in literals.items():
        text = text.replace(literal, token)
    leftover = re.findall(r"2001-\d\d-\d\dT[\d:.]+", text) + re.findall(r"9876543\d\d", text)
    if leftover:
        raise ValueError(f"the sandbox renders values the bulk shapes do not fill: {leftover}; "
                         "align benchmarks/shapes.py")
    pieces, position = [], 0  # SQL string literals and column names, in order
    for match in _HOLE.finditer(text):
        quoted, name = match.group(1) is not None, match.group(1) or match.group(2)
        if name not in holes:
            raise ValueError(f"no value for hole {name!r} in a bulk template; align benchmarks/shapes.py")
        column = holes[name]
        if column.endswith("_json") and not quoted:
            raise ValueError(f"JSON hole {name!r} sits inside a string")
        # A text hole written as a whole JSON string keeps its quotes in the literals around it.
        keeps_quotes = int(quoted and not column.endswith("_json"))
        pieces += [_literal(text[position:match.start() + keeps_quotes]), column]
        position = match.end() - keeps_quotes
    pieces.append(_literal(text[position:]))
    return "concat(" + ", ".join(piece for piece in pieces if piece != "''") + ")"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _organisation(teams, services=(), users=(), incidents=(), tickets=()) -> Organisation:
    return Organisation(
        spec=OrgSpec(n_teams=max(len(teams), 2), n_months=12, start=_START),
        truth=GroundTruth(),
        as_of=_AS_OF,
        teams=list(teams),
        services=list(services),
        users=list(users),
        incidents=list(incidents),
        tickets=list(tickets),
        survey_rows=[],
        headcount_rows=[],
        termination_rows=[],
        team_quarter_safety={},
    )


def _pagerduty(org: Organisation) -> Client:
    api = PagerDutyApi(org, token=_PD_TOKEN, base_url=PAGERDUTY_URL, rate_limit_per_minute=10**9,
                       count_request=lambda key: None)
    return Client(api)


def _pd_list(client: Client, path: str, collection: str, **params) -> list[dict]:
    """Every record of a PagerDuty list endpoint, paged as the ingestion pages it."""
    records, offset = [], 0
    while True:
        response = client.get(path, query_string={**params, "limit": 100, "offset": offset},
                              headers={"Authorization": f"Token token={_PD_TOKEN}"})
        if response.status_code != 200:
            raise RuntimeError(f"sandbox {path}: {response.status_code} {response.get_data(as_text=True)}")
        page = response.get_json()
        records += page[collection]
        if not page["more"]:
            return records
        offset += len(page[collection])


def pagerduty_directory(teams: list[Team], services: list[Service], users: list[User]) -> tuple[list[dict], list[dict]]:
    """The payloads of ``raw.pagerduty__teams`` and ``raw.pagerduty__services``, rendered by
    the sandbox for these teams and services."""
    client = _pagerduty(_organisation(teams, services, users))
    return _pd_list(client, "/teams", "teams"), _pd_list(client, "/services", "services")


_SENTINEL_TEAM = Team(key="qqteamqq", name="QQTEAMNAMEQQ", pagerduty_id="QQTEAMIDQQ", jira_project="QQPROJECTKEYQQ",
                      hr_org_unit="OU-1", headcount=5, safety=0.0)
_SENTINEL_SERVICE = Service(pagerduty_id="QQSERVICEIDQQ", name="QQSERVICENAMEQQ", team_key=_SENTINEL_TEAM.key,
                            escalation_policy_id="QQPOLICYIDQQ")
_SENTINEL_USER = User(pagerduty_id="QQUSERIDQQ", name="QQUSERNAMEQQ", email="qquserqq@example.com",
                      team_key=_SENTINEL_TEAM.key)
PAGERDUTY_HOLES = {
    "INCIDENTID": "incident_id", "NUMBER": "incident_number", "TITLE": "title", "URGENCY": "urgency",
    "SERVICEID": "service_id", "SERVICENAME": "service_name", "POLICYID": "policy_id",
    "TEAMID": "team_pd_id", "TEAMNAME": "team_name", "USERID": "user_id", "USERNAME": "user_name",
    "CREATED": "created_text", "ACKED": "acked_text", "RESOLVED": "resolved_text",
    "INCIDENTKEY": "incident_key", "TRIGGERLOGID": "trigger_log_id", "ACKNOWLEDGELOGID": "acknowledge_log_id",
    "RESOLVELOGID": "resolve_log_id", "CUSTOMFIELDVALUECHANGELOGID": "custom_field_log_id",
    "ALERT": "alert_text", "SEVERITY": "severity", "IMPACT": "impact_text", "RECORDED": "recorded_text",
    "MERGEDID": "merged_id", "MERGEDNUMBER": "merged_number", "MERGEDTITLE": "merged_title",
}
_MERGED_INTO = Incident(
    pagerduty_id="QQMERGEDIDQQ", number=_INCIDENT_NUMBER - 21, service_id=_SENTINEL_SERVICE.pagerduty_id,
    team_key=_SENTINEL_TEAM.key, title="QQMERGEDTITLEQQ", urgency="high", created_at=_CREATED, onset_at=None,
    acknowledged_at=None, acknowledged_by=None, resolved_at=None, auto_resolved=False,
)


def _render(variant: str, rich: bool) -> tuple[dict, dict[str, dict]]:
    """The sandbox's incident and log entries (by kind) of one variant; ``rich`` adds an
    alert on the trigger and, when resolved, the "impact started" custom field change."""
    acknowledged, has_responder, resolved, auto_resolved = INCIDENT_VARIANTS.get(
        variant, INCIDENT_VARIANTS["resolved_by_user"])
    incident = Incident(
        pagerduty_id="QQINCIDENTIDQQ", number=_INCIDENT_NUMBER, service_id=_SENTINEL_SERVICE.pagerduty_id,
        team_key=_SENTINEL_TEAM.key, title="QQTITLEQQ", urgency="QQURGENCYQQ", created_at=_CREATED,
        onset_at=None, acknowledged_at=_ACKED if acknowledged else None,
        acknowledged_by=_SENTINEL_USER.pagerduty_id if has_responder else None,
        resolved_at=_RESOLVED if resolved else None, auto_resolved=auto_resolved,
        alert_timestamp=_ALERT if rich else None,
        impact_started_at=_IMPACT if rich and resolved else None,
        impact_recorded_at=_RECORDED if rich and resolved else None,
        merged_into=_MERGED_INTO.pagerduty_id if variant == MERGED_VARIANT else None,
    )
    client = _pagerduty(_organisation([_SENTINEL_TEAM], [_SENTINEL_SERVICE], [_SENTINEL_USER],
                                      [incident, _MERGED_INTO]))
    [body] = [i for i in _pd_list(client, "/incidents", "incidents", date_range="all")
              if i["id"] == incident.pagerduty_id]
    entries = [e for e in _pd_list(client, "/log_entries", "log_entries", date_range="all")
               if e["incident"]["id"] == incident.pagerduty_id]
    return body, {entry["type"].removesuffix("_log_entry"): entry for entry in entries}


def pagerduty_templates() -> PagerDutyTemplates:
    incidents, log_entries, alerted_trigger, impact_change = {}, {}, {}, {}
    for variant in (*INCIDENT_VARIANTS, MERGED_VARIANT):
        body, kinds = _render(variant, rich=False)
        rich_body, rich_kinds = _render(variant, rich=True)
        if rich_body != body:
            raise ValueError(f"{variant}: an alert or the impact field changes the incident; "
                             "align benchmarks/shapes.py")
        literals = {
            pd_time(_CREATED): "QQCREATEDQQ", pd_time(_ACKED): "QQACKEDQQ", pd_time(_RESOLVED): "QQRESOLVEDQQ",
            pd_time(_ALERT): "QQALERTQQ", pd_time(_IMPACT): "QQIMPACTQQ", pd_time(_RECORDED): "QQRECORDEDQQ",
            '"severity": "warning"': '"severity": "QQSEVERITYQQ"',
            str(_INCIDENT_NUMBER): "QQNUMBERQQ", str(_MERGED_INTO.number): "QQMERGEDNUMBERQQ",
            body["incident_key"]: "QQINCIDENTKEYQQ",
            **{entry["id"]: f"QQ{kind.upper().replace('_', '')}LOGIDQQ" for kind, entry in rich_kinds.items()},
        }
        incidents[variant] = sql_template(body, literals, PAGERDUTY_HOLES)
        log_entries[variant] = {kind: sql_template(entry, literals, PAGERDUTY_HOLES) for kind, entry in kinds.items()}
        alerted_trigger[variant] = sql_template(rich_kinds["trigger"], literals, PAGERDUTY_HOLES)
        if "custom_field_value_change" in rich_kinds:
            impact_change[variant] = sql_template(rich_kinds["custom_field_value_change"], literals, PAGERDUTY_HOLES)
    return PagerDutyTemplates(incidents, log_entries, alerted_trigger, impact_change)


JIRA_HOLES = {
    "ISSUEID": "issue_id", "ISSUEKEY": "issue_key", "SUMMARY": "summary", "CREATED": "created_text",
    "UPDATED": "updated_text", "ISSUETYPE": "issuetype_json", "PROJECT": "project_json", "STATUS": "status_json",
    "LABELS": "labels_json", "RESOLUTIONDATE": "resolutiondate_json", "NHISTORIES": "n_histories_json",
    "HISTORIES": "histories_json", "COMPONENTS": "components_json",
}
COMPONENT_HOLES = {"COMPONENTID": "component_id", "COMPONENTNAME": "component_name"}
HISTORY_HOLES = {"HISTORYID": "history_id", "HISTORYCREATED": "history_created_text", "ITEMS": "items_json"}
PROJECT_HOLES = {"PROJECTID": "project_id", "PROJECTKEY": "project_key", "TEAMNAME": "team_name"}
_WORKFLOW = (INITIAL_STATUS, WORKING_STATUS, REVIEW_STATUS, WORKING_STATUS, DONE_STATUS)


def jira_templates() -> JiraTemplates:
    """Templates of ``raw.jira__issues`` payloads: what `/search/jql` with the ingestion's
    fields and ``expand=changelog`` returns, with the complete changelog oldest first."""

    def ticket(number: int, issue_type: str, status: str) -> Ticket:
        return Ticket(id=str(20000 + number), key=f"QQPROJECTKEYQQ-{number}", project_key="QQPROJECTKEYQQ",
                      team_key=_SENTINEL_TEAM.key, issue_type=issue_type, labels=[], summary="QQSUMMARYQQ",
                      created=_CREATED, updated=_CREATED, resolved=None, status=status)

    by_type = [ticket(number, name, INITIAL_STATUS) for number, name in enumerate(ISSUE_TYPES, start=1)]
    by_type[0].components = ["QQCOMPONENTNAMEQQ"]
    by_status = [ticket(100 + number, ISSUE_TYPES[0], name) for number, name in enumerate(STATUSES)]
    walked = ticket(200, ISSUE_TYPES[0], DONE_STATUS)  # every transition of the workflow, one history each
    for step, (before, after) in enumerate(zip(_WORKFLOW, _WORKFLOW[1:])):
        walked.changelog.append(ChangelogEntry(f"{walked.id}{step:04d}", _HISTORY_START.replace(day=1 + step),
                                               "557058:sandbox-bot", "status", before, after))
    walked.updated = walked.resolved = walked.changelog[-1].created
    api = JiraApi(_organisation([_SENTINEL_TEAM], tickets=[*by_type, *by_status, walked]), email=_JIRA_EMAIL,
                  token=_JIRA_TOKEN, base_url=JIRA_URL, count_request=lambda key: None)
    response = Client(api).get(
        f"{JIRA_API}/search/jql",
        query_string={"jql": "updated >= 0", "fields": ",".join(ISSUE_FIELDS), "expand": "changelog",
                      "maxResults": 100},
        auth=(_JIRA_EMAIL, _JIRA_TOKEN),
    )
    if response.status_code != 200:
        raise RuntimeError(f"sandbox search: {response.status_code} {response.get_data(as_text=True)}")
    issues = {issue["key"]: issue for issue in response.get_json()["issues"]}

    def fragment(sample: Ticket, field: str) -> str:
        return json.dumps(issues[sample.key]["fields"][field], sort_keys=True)

    histories = sorted(issues[walked.key]["changelog"]["histories"], key=lambda h: (h["created"], h["id"]))
    transition_items = {}
    for history in histories:
        [item] = history["items"]
        transition_items[(item["fromString"], item["toString"])] = json.dumps(history["items"], sort_keys=True)

    sample = by_type[0]
    issue = dict(issues[sample.key], id="QQISSUEIDQQ", key="QQISSUEKEYQQ")
    issue["self"] = issue["self"].replace(sample.id, "QQISSUEIDQQ")
    project = issue["fields"]["project"]
    issue["fields"] = dict(issue["fields"], summary="QQSUMMARYQQ", issuetype="QQISSUETYPEQQ", project="QQPROJECTQQ",
                           status="QQSTATUSQQ", labels="QQLABELSQQ", resolutiondate="QQRESOLUTIONDATEQQ",
                           updated=jira_time(_ACKED), components="QQCOMPONENTSQQ")
    # As JiraResource stores it: every history, oldest first, in one page.
    issue["changelog"] = {"startAt": 0, "maxResults": "QQNHISTORIESQQ", "total": "QQNHISTORIESQQ",
                          "histories": "QQHISTORIESQQ"}
    history = dict(histories[0], id="QQHISTORYIDQQ", created="QQHISTORYCREATEDQQ", items="QQITEMSQQ")
    [component] = issues[sample.key]["fields"]["components"]
    component_literals = {f'"{component["id"]}"': '"QQCOMPONENTIDQQ"', f'/{component["id"]}"': '/QQCOMPONENTIDQQ"'}
    project_literals = {f'"{project["id"]}"': '"QQPROJECTIDQQ"', f'/{project["id"]}"': '/QQPROJECTIDQQ"'}
    return JiraTemplates(
        issue=sql_template(issue, {jira_time(_CREATED): "QQCREATEDQQ", jira_time(_ACKED): "QQUPDATEDQQ"}, JIRA_HOLES),
        history=sql_template(history, {}, HISTORY_HOLES),
        project=sql_template(project, project_literals, PROJECT_HOLES),
        component=sql_template(component, component_literals, COMPONENT_HOLES),
        issue_types={t.issue_type: fragment(t, "issuetype") for t in by_type},
        statuses={t.status: fragment(t, "status") for t in by_status},
        transition_items=transition_items,
    )
