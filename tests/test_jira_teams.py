"""Jira Cloud's Team field (Atlassian Teams) decides a ticket's team when the team map claims the
team: sites whose teams share projects record ownership there, not in components. The sync asks
for the field the KPI rules name (tickets.team_field), stores the team's id and name, and the
mapping check names the Atlassian teams no team claims."""

import dagster as dg
import duckdb
import pytest
from conftest import Warehouse

from assets.jira.assets import jira_issues
from assets.jira.resource import JiraResource
from assets.kpi_rules import KpiRulesError, read_kpi_rules
from assets.landing.team_map import read_team_map
from assets.warehouse.resource import WarehouseResource
from assets.warehouse.team_map_checks import jira_mapping_report
from pipelines.demo import SANDBOX_JIRA_EMAIL, SANDBOX_JIRA_TOKEN, start_sandbox
from pipelines.synthetic.org import OrgSpec, generate, write_landing

# The Team field as Jira Cloud's search and issue responses give it (developer.atlassian.com,
# "Team field in Jira REST API": type com.atlassian.teams:rm-teams-custom-field-team, the
# customfield_10001 of its examples; null when unset).
TEAM_FIELD = "customfield_10001"


def atlassian_team(team_id: str, name: str) -> dict:
    return {"id": team_id, "name": name, "title": name, "isVisible": True, "isVerified": False, "isShared": True,
            "avatarUrl": "https://avatar-management.example/team.png"}


SQUAD = atlassian_team("36885b3c-1bf0-4f85-a357-c5b858c31de4", "Checkout squad")
GUILD = atlassian_team("0b1c0d9e-4f2a-4c55-9d0e-6f2a8f3e7a11", "Reliability guild")


@pytest.fixture(scope="module")
def org():
    return generate(OrgSpec(seed=5, n_teams=3, n_months=6))


def test_the_shipped_rules_ask_for_the_team_field(tmp_path):
    assert read_kpi_rules().ticket_team_field == TEAM_FIELD
    assert TEAM_FIELD in JiraResource(server_url="https://x.atlassian.net", email="e", api_token="t").issue_fields()
    # The field's name instead of its id says where to find the id; ~ turns the Team field off.
    (tmp_path / "named.yml").write_text("tickets:\n  team_field: Team\n")
    with pytest.raises(KpiRulesError, match=r"'Team' is not a Jira custom field id such as customfield_10001 "
                                            r"\(Jira's field ids are listed by GET /rest/api/3/field\)"):
        read_kpi_rules(tmp_path / "named.yml")
    (tmp_path / "off.yml").write_text("tickets:\n  team_field: ~\n")
    assert read_kpi_rules(tmp_path / "off.yml").ticket_team_field is None


def test_a_ticket_counts_for_the_team_claiming_its_team_field_before_its_project(org, tmp_path, dbt):
    # Two tickets of one team's own project: one's Team field names the Atlassian team another
    # team of the map claims (by name), the other's an Atlassian team no team claims.
    owner, claimer = org.teams[0], org.teams[1]
    in_owners_project = sorted((t for t in org.tickets if t.project_key == owner.jira_project and not t.parent_key),
                               key=lambda t: t.key)
    moved, unclaimed = in_owners_project[:2]
    team_of = {moved.key: SQUAD, unclaimed.key: GUILD}

    def with_team_field(body: dict) -> dict:
        # As a site with Teams answers the search asking for the field (null when unset).
        for issue in body["issues"]:
            if "fields" in issue:  # not the id listing's
                issue["fields"][TEAM_FIELD] = team_of.get(issue["key"])
        return body

    warehouse_file = tmp_path / "warehouse.duckdb"
    with start_sandbox(org) as sandbox:
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/search/jql", rewrite=with_team_field, times=None)
        jira = JiraResource(server_url=sandbox.jira_url, email=SANDBOX_JIRA_EMAIL, api_token=SANDBOX_JIRA_TOKEN,
                            ca_bundle_path=sandbox.ca_bundle_path, max_attempts=4, base_delay_seconds=0.01)
        result = dg.materialize([jira_issues], resources={"jira": jira, "duckdb": WarehouseResource(
            database=str(warehouse_file))}, run_config={"ops": {"raw__jira__issues": {"config": {
                "history_start": org.spec.start.isoformat()}}}}, raise_on_error=False)
    assert result.success
    with duckdb.connect(str(warehouse_file), read_only=True) as conn:
        stored = dict(conn.sql("select payload ->> 'key', jira_team from raw.jira__issues "
                               f"where payload ->> 'key' in ('{moved.key}', '{unclaimed.key}')").fetchall())
    assert stored == {moved.key: {"id": SQUAD["id"], "name": "Checkout squad"},
                      unclaimed.key: {"id": GUILD["id"], "name": "Reliability guild"}}

    team_map = read_team_map(write_landing(org, tmp_path / "landing")["team_map"])
    warehouse = Warehouse(warehouse_file, dbt)
    try:
        warehouse.raw_rows("config__team_map", [
            *team_map, {"team": claimer.name, "source": "jira_team", "identifier": "Checkout squad"}])
        warehouse.build("+fct_tickets", "--exclude", "stg_survey__responses")
        tickets = {key: (team, source) for key, team, source in warehouse.conn.sql(
            "select issue_key, team, team_source from marts.fct_tickets").fetchall()}
    finally:
        warehouse.close()
    assert tickets[moved.key] == (claimer.name, "jira_team")
    assert tickets[unclaimed.key] == (owner.name, "project")
    assert tickets[in_owners_project[2].key] == (owner.name, "project")

    report = jira_mapping_report(WarehouseResource(database=str(warehouse_file)))
    assert not report.passed
    assert f"jira_team {GUILD['id']} (Reliability guild) (1 records, 1 counted for their component's or " \
           "project's team)" in report.metadata["unmapped"].value
    assert not any(SQUAD["id"] in line for line in report.metadata["unmapped"].value)
