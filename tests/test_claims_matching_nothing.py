"""Team map claims and KPI rules fields that match nothing (sixth trial, config, C3 and C5).

A claim of the team map matching no service, PagerDuty team, project, component or Atlassian
team seen in the synced data (an id typed in lower case, a typo, a component in another case)
does nothing: what it meant goes to another claim or to no team. A Jira field of the KPI rules
that the site does not have (Jira leaves it out of every issue) finds no review's incident and
no ticket's team. The mapping checks name both; claims of things the syncs list without any
record (a retired service with no incidents) and fields the site has but leaves empty are not
named."""

from dataclasses import replace

from test_jira_teams import TEAM_FIELD, atlassian_team, jira_issue
from test_sql_models import _entry

from assets.kpi_rules import read_kpi_rules
from assets.landing.team_map import read_team_map
from assets.warehouse.resource import WarehouseResource
from assets.warehouse.team_map_checks import jira_mapping_report, pagerduty_mapping_report

CHECKOUT_TEAM = {"id": "PCHK001", "summary": "Checkout", "type": "team_reference"}


def team_map(tmp_path, text: str) -> list[dict[str, str]]:
    """The rows the team map loader gives for ``text`` (its normalisation applied)."""
    path = tmp_path / "team_map.yml"
    path.write_text(text, encoding="utf-8")
    return read_team_map(path)


def pagerduty(warehouse, rows: list[dict[str, str]]) -> None:
    """Service P34VE0V of PagerDuty team Checkout has two incidents; service PRETIRED, listed by
    the services sync, has none in the history."""
    warehouse.raw_rows("config__team_map", rows)
    warehouse.raw_json("pagerduty__teams", [{"id": "PCHK001", "name": "Checkout"}])
    warehouse.raw_json("pagerduty__services", [
        {"id": "P34VE0V", "name": "payments-api", "teams": [CHECKOUT_TEAM]},
        {"id": "PRETIRED", "name": "legacy-billing", "teams": [CHECKOUT_TEAM]}])
    two_incidents(warehouse, "P34VE0V", CHECKOUT_TEAM)


def two_incidents(warehouse, service_id: str, team: dict) -> None:
    """Incidents I1 and I2 of ``service_id``, listing ``team``, with their trigger entries; the
    models through fct_incidents built."""
    incidents = (("I1", "2024-03-10T10:00:00Z"), ("I2", "2024-03-11T10:00:00Z"))
    warehouse.raw_json("pagerduty__incidents", [
        {"id": incident_id, "incident_number": number, "status": "resolved", "urgency": "high",
         "service": {"id": service_id, "type": "service_reference"}, "created_at": at, "teams": [team]}
        for number, (incident_id, at) in enumerate(incidents, start=1)])
    warehouse.raw_json("pagerduty__log_entries", [
        {**_entry(f"L{number}", incident_id, "trigger_log_entry", at), "teams": [team]}
        for number, (incident_id, at) in enumerate(incidents, start=1)])
    warehouse.build("stg_config__team_map", "stg_pagerduty__teams", "stg_pagerduty__services",
                    "stg_pagerduty__incidents", "stg_pagerduty__log_entries", "stg_jira__issues", "int_team_owners",
                    "int_pagerduty_team_owners", "int_pagerduty_incident_teams", "fct_incidents")


PAGERDUTY_MAP = """teams:
  - team: Checkout
    pagerduty_teams: [Checkout]
  - team: Payments
    pagerduty_services: [{service}, PRETIRED]
    pagerduty_teams: [{team}]
"""


def test_a_service_claimed_in_lower_case_and_a_team_with_a_typo_are_named_with_what_they_would_match(
        warehouse, tmp_path):
    pagerduty(warehouse, team_map(tmp_path, PAGERDUTY_MAP.format(service="p34ve0v", team="Chekout")))
    # The claim does nothing: the service's incidents stay with the team of its PagerDuty team.
    assert warehouse.conn.sql("select distinct team from marts.fct_incidents").fetchall() == [("Checkout",)]
    warehouse.close()
    report = pagerduty_mapping_report(WarehouseResource(database=str(warehouse.path)))
    assert not report.passed
    # PRETIRED has no incident but the services sync lists it: its claim matches.
    assert report.metadata["claims_matching_nothing"].value == [
        ("Payments: pagerduty_services 'p34ve0v' matches no service the PagerDuty sync lists or an incident names; "
         "ignoring case it matches 'P34VE0V' (identifiers match in the case the tool writes them)"),
        "Payments: pagerduty_teams 'Chekout' matches no PagerDuty team (id or name) seen in the PagerDuty data"]
    assert "PagerDuty: 2 claims of team_map.yml match nothing in the synced data" in report.description


def test_claims_written_as_pagerduty_writes_them_pass(warehouse, tmp_path):
    # Checkout's PagerDuty team claimed by a second team by id: a claim that matches (by id) is
    # not named, whatever else the check says about it.
    pagerduty(warehouse, team_map(tmp_path, PAGERDUTY_MAP.format(service="P34VE0V", team="PCHK001")))
    assert warehouse.conn.sql("select distinct team from marts.fct_incidents").fetchall() == [("Payments",)]
    warehouse.close()
    report = pagerduty_mapping_report(WarehouseResource(database=str(warehouse.path)))
    assert report.metadata["claims_matching_nothing"].value == []
    assert report.passed, report.description


def jira(warehouse, rows: list[dict[str, str]], **rules) -> None:
    """Project PAY: issue 1 in component Payments naming the Atlassian team Checkout squad,
    issue 2 in component Payments with the review link field customfield_10070 set, issue 3
    with none; the Team field is on every issue (null when empty), as Jira sends a field the
    site has."""
    warehouse.raw_json("jira__issues", [
        jira_issue("1", "Story", components=("Payments",), **{TEAM_FIELD: atlassian_team("ATL-1", "Checkout squad")}),
        jira_issue("2", "Story", components=("Payments",), customfield_10070="PABC001"),
        jira_issue("3", "Story")])
    warehouse.raw_rows("config__team_map", rows)
    warehouse.kpi_rules(replace(read_kpi_rules(), **rules))
    warehouse.build("+fct_tickets", "--exclude", "stg_survey__responses")


JIRA_MAP = """teams:
  - team: Operations
    jira_projects: [{project}]
  - team: Payments
    jira_components: [{component}]
  - team: Checkout
    jira_teams: [{atlassian_team}]
"""


def test_a_project_typo_a_component_and_an_atlassian_team_in_another_case_are_named(warehouse, tmp_path):
    jira(warehouse, team_map(tmp_path, JIRA_MAP.format(project="PYA", component="pay/payments",
                                                      atlassian_team="checkout squad")),
         incident_link_fields=("customfield_10070",))
    # None of the claims counts: no ticket has a team.
    assert warehouse.conn.sql("select count(*) from marts.fct_tickets where team is not null").fetchone() == (0,)
    warehouse.close()
    report = jira_mapping_report(WarehouseResource(database=str(warehouse.path)))
    assert not report.passed
    # The loader upper-cases the project of a component (PAY/payments): the component keeps its case.
    assert report.metadata["claims_matching_nothing"].value == [
        ("Checkout: jira_teams 'checkout squad' matches no Atlassian team (id or name) a stored issue's Team field "
         "names; ignoring case it matches 'Checkout squad' (identifiers match in the case the tool writes them)"),
        "Operations: jira_projects 'PYA' matches no project of a stored Jira issue",
        ("Payments: jira_components 'PAY/payments' matches no PROJECT/Component of a stored Jira issue; ignoring "
         "case it matches 'PAY/Payments' (identifiers match in the case the tool writes them)")]
    assert "Jira: 3 claims of team_map.yml match nothing in the synced data" in report.description
    assert report.metadata["kpi_rules_fields_on_no_issue"].value == []


def test_a_kpi_rules_field_the_site_does_not_have_is_named_with_its_rules_key(warehouse, tmp_path):
    # customfield_10071 instead of 10070 (a neighbouring id of GET /rest/api/3/field), and a
    # Team field and a text field no issue carries; the Team field of the issues, null on two of
    # three, is one the site has.
    jira(warehouse, team_map(tmp_path, JIRA_MAP.format(project="PAY", component="PAY/Payments",
                                                      atlassian_team="ATL-1")),
         incident_link_fields=("customfield_10071",), incident_link_text_fields=("summary", "customfield_10072"),
         ticket_team_field="customfield_10099")
    warehouse.close()
    report = jira_mapping_report(WarehouseResource(database=str(warehouse.path)))
    assert not report.passed
    assert report.metadata["kpi_rules_fields_on_no_issue"].value == [
        "post_incident_reviews.incident_link.fields: customfield_10071",
        "post_incident_reviews.incident_link.text_fields: customfield_10072",
        "tickets.team_field: customfield_10099"]
    assert ("the KPI rules (PSAFE_KPI_RULES, default config/kpi_rules.yml) read Jira fields on no stored issue "
            "(post_incident_reviews.incident_link.fields: customfield_10071; ") in report.description


def test_a_component_claimed_by_a_name_no_stored_issue_has_is_named_with_what_a_rename_needs(warehouse, tmp_path):
    # The component was renamed Payments -> Payments Squad in Jira, and the map moved with it: the
    # stored issues, synced before the rename, still say Payments (eighth trial, nights N1).
    jira(warehouse, team_map(tmp_path, JIRA_MAP.format(project="PAY", component="PAY/Payments Squad",
                                                      atlassian_team="ATL-1")))
    warehouse.close()
    report = jira_mapping_report(WarehouseResource(database=str(warehouse.path)))
    assert report.metadata["claims_matching_nothing"].value == [
        ("Payments: jira_components 'PAY/Payments Squad' matches no PROJECT/Component of a stored Jira issue; if the "
         "component was renamed in Jira, the issues synced before may keep its old name (a rename is in no issue's "
         "history, so the sync need not read them again): claim the old name as well, or run raw/jira__issues once "
         "with full_refresh: true to read them again")]


def test_fields_the_site_has_and_claims_as_jira_writes_them_pass(warehouse, tmp_path):
    # customfield_10070 is set on one issue, the Team field on one (null on the others).
    jira(warehouse, team_map(tmp_path, JIRA_MAP.format(project="pay", component="pay/Payments",
                                                      atlassian_team="Checkout squad")),
         incident_link_fields=("customfield_10070",), ticket_team_field=TEAM_FIELD)
    warehouse.close()
    report = jira_mapping_report(WarehouseResource(database=str(warehouse.path)))
    assert report.metadata["claims_matching_nothing"].value == []
    assert report.metadata["kpi_rules_fields_on_no_issue"].value == []
    assert report.passed, report.description
