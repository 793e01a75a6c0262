"""Jira Cloud's Team field (Atlassian Teams) decides a ticket's team when the team map claims the
team: sites whose teams share projects record ownership there, not in components. The sync asks
for the field the KPI rules name (tickets.team_field), the models read the team from that field
only, and the mapping check names the Atlassian teams no team claims."""

from dataclasses import replace

import dagster as dg
import polars as pl
import pytest
from conftest import Warehouse

from assets.jira.assets import jira_issues
from assets.jira.resource import JiraResource
from assets.kpi_rules import KpiRulesError, read_kpi_rules
from assets.landing.team_map import read_team_map
from assets.warehouse.resource import WarehouseResource
from assets.warehouse.team_map_checks import jira_mapping_report
from benchmarks import pandas_baseline, polars_baseline
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

    team_map = read_team_map(write_landing(org, tmp_path / "landing")["team_map"])
    warehouse = Warehouse(warehouse_file, dbt)
    try:
        warehouse.raw_rows("config__team_map", [
            *team_map, {"team": claimer.name, "source": "jira_team", "identifier": "Checkout squad"}])
        warehouse.build("+fct_tickets", "--exclude", "stg_survey__responses")
        tickets = {key: (team, source) for key, team, source in warehouse.conn.sql(
            "select issue_key, team, team_source from marts.fct_tickets").fetchall()}
        named = dict(warehouse.conn.sql(
            "select issues.issue_key, teams.jira_team_id from intermediate.int_jira_issue_teams as teams "
            "inner join staging.stg_jira__issues as issues using (issue_id) "
            "where teams.jira_team_id is not null").fetchall())
    finally:
        warehouse.close()
    assert named == {moved.key: SQUAD["id"], unclaimed.key: GUILD["id"]}
    assert tickets[moved.key] == (claimer.name, "jira_team")
    assert tickets[unclaimed.key] == (owner.name, "project")
    assert tickets[in_owners_project[2].key] == (owner.name, "project")

    report = jira_mapping_report(WarehouseResource(database=str(warehouse_file)))
    assert not report.passed
    assert f"jira_team {GUILD['id']} (Reliability guild) (1 records, 1 counted for their component's or " \
           "project's team)" in report.metadata["unmapped"].value
    assert not any(SQUAD["id"] in line for line in report.metadata["unmapped"].value)


# An issue as Jira Cloud's search gives it: the issue type with its subtask flag and hierarchy
# level, the parent (a sub-task's issue, or a story's epic: the parent field replaced Epic Link)
# with its own type, and the Team field.
ISSUE_TYPES = {"Epic": {"id": "10000", "name": "Epic", "subtask": False, "hierarchyLevel": 1},
               "Story": {"id": "10001", "name": "Story", "subtask": False, "hierarchyLevel": 0},
               "Subtask": {"id": "10003", "name": "Subtask", "subtask": True, "hierarchyLevel": -1}}
# Atlassian teams and the teams of the team map claiming them (by name), beside components and a
# project the map claims.
PLATFORM = atlassian_team("5f0c3b7e-9a4d-4c1e-8d2a-1b6e0f9c7a55", "Platform squad")
SUPPORT = atlassian_team("9d2e4a61-3c7b-4f08-a5e9-0c8d1b2f6e34", "Support rota")
TEAM_MAP = [{"team": team, "source": source, "identifier": identifier} for team, source, identifier in (
    ("Checkout", "jira_team", "Checkout squad"), ("Platform", "jira_team", "Platform squad"),
    ("Support", "jira_team", "Support rota"), ("Payments", "jira_component", "PAY/Payments"),
    ("Operations", "jira_project", "PAY"))]


def jira_issue(issue_id: str, issue_type: str, parent: dict | None = None, components: tuple[str, ...] = (),
               **custom_fields) -> dict:
    fields = {"project": {"id": "10000", "key": "PAY", "name": "Payments"}, "issuetype": ISSUE_TYPES[issue_type],
              "summary": f"issue {issue_id}", "labels": [], "components": [{"name": name} for name in components],
              "created": "2024-03-01T10:00:00.000+0000", "updated": "2024-03-01T10:00:00.000+0000",
              "resolutiondate": None, "status": {"name": "To Do", "statusCategory": {"key": "new"}},
              TEAM_FIELD: None, **custom_fields}
    if parent is not None:
        fields["parent"] = {"id": parent["id"], "key": parent["key"], "fields": {
            "summary": parent["fields"]["summary"], "issuetype": parent["fields"]["issuetype"]}}
    return {"id": issue_id, "key": f"PAY-{issue_id}", "fields": fields}


def tickets_by_key(warehouse: Warehouse) -> dict[str, tuple[str | None, str | None]]:
    """fct_tickets' team and team_source per issue key, after checking that both baselines count
    each team's tickets as the mart does."""
    tickets = {key: (team, source) for key, team, source in warehouse.conn.sql(
        "select issue_key, team, team_source from marts.fct_tickets").fetchall()}
    mart = warehouse.conn.sql("select team, count(*)::bigint as tickets from marts.fct_tickets "
                              "where team is not null group by team").df().set_index("team")["tickets"].to_dict()
    team_map = warehouse.conn.sql("select * from raw.config__team_map").df()

    def pandas_claims(source):
        return team_map.loc[team_map["source"] == source, ["identifier", "team"]]

    def polars_claims(source):
        return pl.from_pandas(pandas_claims(source)).lazy()

    for name, counts in {"pandas": pandas_baseline.ticket_counts(warehouse.conn, pandas_claims),
                         "polars": polars_baseline.ticket_counts(warehouse.conn, polars_claims).collect().to_pandas()
                         }.items():
        counted = counts.set_index(["team", "period_month"]).sum(axis=1).groupby("team").sum().to_dict()
        assert {team: int(n) for team, n in counted.items()} == mart, name
    return tickets


def test_a_subtask_takes_its_parents_team_and_a_story_under_an_epic_does_not(warehouse):
    # Jira Cloud gives a story under an epic the epic as its parent, as it gives a sub-task its
    # issue. Jira shows a sub-task its parent's Team; a story has its own, here empty: its
    # claimed component decides, not the epic's team.
    epic = jira_issue("100", "Epic", **{TEAM_FIELD: PLATFORM})
    story = jira_issue("101", "Story", parent=epic, components=("Payments",))
    owned_story = jira_issue("102", "Story", parent=epic, **{TEAM_FIELD: SQUAD})
    subtask = jira_issue("103", "Subtask", parent=owned_story, components=("Payments",))
    warehouse.raw_json("jira__issues", [epic, story, owned_story, subtask])
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.build("+fct_tickets", "--exclude", "stg_survey__responses")
    assert tickets_by_key(warehouse) == {
        "PAY-100": ("Platform", "jira_team"),
        "PAY-101": ("Payments", "component"),  # not the epic's Platform
        "PAY-102": ("Checkout", "jira_team"),
        "PAY-103": ("Checkout", "jira_team"),  # its story's team, before its own component
    }


def test_the_team_is_read_from_the_field_the_rules_name_only(warehouse):
    # A site with two fields of the Team type: the Team field the rules name (customfield_10050)
    # and a "Supporting team" field (customfield_10001). Only the named one decides; with
    # team_field ~ no team field does, whatever the stored payloads hold.
    team_field = "customfield_10050"
    both = jira_issue("200", "Story", components=("Payments",), customfield_10001=SUPPORT, **{team_field: SQUAD})
    supporting_only = jira_issue("201", "Story", components=("Payments",), customfield_10001=SUPPORT)
    warehouse.raw_json("jira__issues", [both, supporting_only])
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.kpi_rules(replace(read_kpi_rules(), ticket_team_field=team_field))
    warehouse.build("+fct_tickets", "--exclude", "stg_survey__responses")
    assert tickets_by_key(warehouse) == {"PAY-200": ("Checkout", "jira_team"), "PAY-201": ("Payments", "component")}
    warehouse.close()
    report = jira_mapping_report(WarehouseResource(database=str(warehouse.path)))
    # The supporting team is no ticket's team: nothing to map. The shared map's claims of teams
    # the named field never holds here match nothing, and are named so.
    assert report.metadata["unmapped"].value == []
    assert [claim.split(" matches ")[0] for claim in report.metadata["claims_matching_nothing"].value] == [
        "Platform: jira_teams 'Platform squad'", "Support: jira_teams 'Support rota'"]

    warehouse.kpi_rules(replace(read_kpi_rules(), ticket_team_field=None))
    warehouse.build("int_jira_team_owners", "int_jira_issue_teams", "fct_tickets")
    assert tickets_by_key(warehouse) == {"PAY-200": ("Payments", "component"), "PAY-201": ("Payments", "component")}
    assert warehouse.rows("select * from intermediate.int_jira_team_owners") == []
