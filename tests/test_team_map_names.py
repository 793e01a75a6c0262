"""Names in the team map (fifth trial, names): a name YAML reads as null is refused, not read as
'None'; team names alike by the rule exports are matched by are one team; typographic quotes
match straight ones in Python and in the SQL twin, also against keys frozen by the old rule;
case is matched letter by letter (str.lower), as the README says; a PagerDuty or Atlassian
team whose names several teams claim goes to the claim on its latest name and is named by the
mapping check."""

import dagster as dg
import duckdb
import numpy as np
import pytest
from survey_exports import survey_file
from test_jira_teams import TEAM_FIELD, atlassian_team, jira_issue
from test_sql_models import _entry

from assets.landing.assets import survey_responses
from assets.landing.resource import LandingFolderResource
from assets.landing.team_map import TeamMapError, identifier_key, read_team_map
from assets.warehouse.resource import WarehouseResource
from assets.warehouse.team_map_checks import jira_mapping_report, pagerduty_mapping_report


def write(tmp_path, text: str):
    path = tmp_path / "team_map.yml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("written", ["NULL", "Null", "null", "~", "''"])
def test_a_name_yaml_reads_as_null_is_refused_naming_the_entry_not_read_as_none(tmp_path, written):
    path = write(tmp_path, f"teams:\n  - team: Payments\n    survey_groups: [Payments]\n"
                           f"  - team: Null Pointers\n    hr_org_units: [OU-2, {written}]\n")
    with pytest.raises(TeamMapError, match=r"teams entry 2 \(Null Pointers\): an empty value in hr_org_units "
                                           r"\(YAML reads an unquoted ~, null, Null or NULL as no value: quote"):
        read_team_map(path)


def test_a_quoted_null_word_is_a_name_and_a_missing_list_still_means_none(tmp_path):
    rows = read_team_map(write(tmp_path, "teams:\n  - team: 'Null'\n    survey_groups: ['NULL', \"~\"]\n"
                                         "    hr_org_units: ~\n"))
    assert rows == [{"team": "Null", "source": "survey_group", "identifier": "NULL"},
                    {"team": "Null", "source": "survey_group", "identifier": "~"}]


@pytest.mark.parametrize("written", ["NULL", "~", ""])
def test_a_team_yaml_reads_as_null_is_refused_as_an_empty_team(tmp_path, written):
    with pytest.raises(TeamMapError, match="teams entry 1: every entry needs a non-empty 'team' \\(YAML reads"):
        read_team_map(write(tmp_path, f"teams:\n  - team: {written}\n    survey_groups: [A]\n"))


@pytest.mark.parametrize("first, second", [
    ("Payments", "payments"), ("Caf\u00e9 Ops", "Cafe\u0301 Ops"), ("Payments  Risk", "Payments\u00a0Risk"),
    ("O'Brien's Team", "O\u2019Brien\u2019s Team")])
def test_two_teams_named_alike_are_one_team_listed_twice(tmp_path, first, second):
    path = write(tmp_path, f'teams:\n  - team: "{first}"\n    survey_groups: [A]\n'
                           f'  - team: "{second}"\n    survey_groups: [B]\n')
    with pytest.raises(TeamMapError, match="teams entry 2: team .* is listed twice \\(entry 1: .*\\); team names "
                                           "alike whatever their case"):
        read_team_map(path)


def test_typographic_quotes_match_straight_ones_and_case_is_matched_letter_by_letter():
    assert identifier_key("O\u2019Brien\u2019s \u201cCore\u201d") == identifier_key("O'Brien's \"Core\"")
    # README: case letter by letter (str.lower): the capitals of Straßenbau are another name.
    assert identifier_key("STRASSENBAU") != identifier_key("Stra\u00dfenbau") == identifier_key("STRAßENBAU")


def test_a_survey_group_typed_with_typographic_quotes_loads_for_the_maps_team(tmp_path, dbt):
    from conftest import Warehouse

    landing = tmp_path / "landing"
    landing.mkdir()
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", dbt)
    warehouse.raw_rows("config__team_map", [{"team": "O'Brien's Team", "source": "survey_group",
                                             "identifier": "O'Brien's Team"}])
    survey_file(landing / "survey.csv", [(f"R{i}", "o\u2019brien\u2019s team", "2025-02-12 10:00:00")
                                         for i in range(6)], np.random.default_rng(1))
    warehouse.close()
    resources = {"landing": LandingFolderResource(path=str(landing), hr_id_salt="salt", settle_seconds=0),
                 "duckdb": WarehouseResource(database=str(warehouse.path))}
    assert dg.materialize([survey_responses], resources=resources).success
    assert warehouse.rows("select distinct survey_group from restricted.survey__responses") == [
        {"survey_group": "O'Brien's Team"}]
    assert warehouse.rows("select * from restricted.survey__responses_quarantine") == []


def test_the_sql_survey_group_key_straightens_quotes_also_in_keys_frozen_before(tmp_path, dbt):
    from conftest import Warehouse

    compiled = Warehouse(tmp_path / "warehouse.duckdb", dbt).run(
        "compile", "--inline", "select {{ survey_group_key('name') }} as key from names").result.results[0].node.compiled_code
    conn = duckdb.connect()
    # A map's names; then the key a cell frozen by the rule before quotes were straightened
    # stored for the map's O’Brien’s Team (lower case only).
    names = ["O'Brien's Team", "O\u2019Brien\u2019s Team", "\u2018Core\u2019 \u201cOps\u201d", "'core' \"ops\"",
             "STRASSENBAU", "Stra\u00dfenbau", "o\u2019brien\u2019s team"]
    conn.execute("create table names (name varchar)")
    conn.executemany("insert into names values (?)", [[name] for name in names])
    keys = [key for (key,) in conn.sql(compiled).fetchall()]
    assert keys[:6] == [identifier_key(name) for name in names[:6]]
    assert keys[6] == keys[0] == keys[1]


def pagerduty_team_renamed(warehouse, team_map: list[tuple[str, str]]) -> None:
    """PagerDuty team PQBFS8Q was Payments (its older log entries say so) and is Commerce now (the
    directory and its later entries); a new team PNEWPAY took the name Payments. ``team_map``:
    (team, pagerduty_teams claim) pairs."""
    renamed = [{"id": "PQBFS8Q", "summary": name, "type": "team_reference"} for name in ("Payments", "Commerce")]
    new = {"id": "PNEWPAY", "summary": "Payments", "type": "team_reference"}
    warehouse.raw_rows("config__team_map", [{"team": team, "source": "pagerduty_team", "identifier": claim}
                                            for team, claim in team_map])
    warehouse.raw_json("pagerduty__teams", [{"id": "PQBFS8Q", "name": "Commerce"}, {"id": "PNEWPAY", "name": "Payments"}])
    warehouse.raw_json("pagerduty__services", [{"id": "PS1", "name": "checkout", "teams": [renamed[1]]},
                                               {"id": "PS2", "name": "wallet", "teams": [new]}])
    incidents = (("BEFORE", "PS1", renamed[0], "2024-01-10T10:00:00Z"), ("AFTER", "PS1", renamed[1], "2024-03-10T10:00:00Z"),
                 ("NEW", "PS2", new, "2024-03-11T10:00:00Z"))
    warehouse.raw_json("pagerduty__incidents", [
        {"id": incident_id, "incident_number": number, "status": "resolved", "urgency": "high",
         "service": {"id": service, "type": "service_reference"}, "created_at": at, "teams": [team]}
        for number, (incident_id, service, team, at) in enumerate(incidents, start=1)])
    warehouse.raw_json("pagerduty__log_entries", [
        {**_entry(f"L{number}", incident_id, "trigger_log_entry", at), "teams": [team]}
        for number, (incident_id, _, team, at) in enumerate(incidents, start=1)])
    warehouse.build("stg_config__team_map", "stg_pagerduty__teams", "stg_pagerduty__services",
                    "stg_pagerduty__incidents", "stg_pagerduty__log_entries", "stg_jira__issues", "int_team_owners",
                    "int_pagerduty_team_owners", "int_pagerduty_incident_teams", "fct_incidents")


def test_a_renamed_pagerduty_team_goes_to_the_claim_on_its_current_name_and_the_check_names_both(warehouse):
    # Commerce sorts before Payments: the old max() over every name gave the renamed team's
    # incidents, those raised under Commerce included, to Payments.
    pagerduty_team_renamed(warehouse, [("Payments", "Payments"), ("Commerce", "Commerce")])
    assert dict(warehouse.conn.sql("select incident_id, team from marts.fct_incidents").fetchall()) == {
        "BEFORE": "Commerce", "AFTER": "Commerce", "NEW": "Payments"}
    warehouse.close()
    report = pagerduty_mapping_report(WarehouseResource(database=str(warehouse.path)))
    assert not report.passed
    assert report.metadata["claimed_by_several_teams"].value == [
        ("pagerduty_team PQBFS8Q (Commerce): claimed by Commerce (as 'Commerce', its latest name) and by Payments "
         "(as 'Payments', a former name); counted for Commerce")]
    assert "claim each by id in team_map.yml (pagerduty_teams: [its id])" in report.description


def test_a_claim_by_id_settles_a_renamed_pagerduty_team_and_the_check_passes(warehouse):
    pagerduty_team_renamed(warehouse, [("Payments", "Payments"), ("Payments", "PQBFS8Q"), ("Commerce", "Commerce")])
    assert dict(warehouse.conn.sql("select incident_id, team from marts.fct_incidents").fetchall()) == {
        "BEFORE": "Payments", "AFTER": "Payments", "NEW": "Payments"}
    warehouse.close()
    report = pagerduty_mapping_report(WarehouseResource(database=str(warehouse.path)))
    assert report.metadata["claimed_by_several_teams"].value == []
    assert report.passed


def test_a_renamed_atlassian_team_goes_to_the_claim_on_its_latest_name_and_the_check_names_both(warehouse):
    # ATL-1 was Checkout squad (an issue updated before the rename shows it) and is Payments
    # squad now; ATL-2 took the name Checkout squad. "Checkout" sorts before "Payments".
    renamed_then = atlassian_team("ATL-1", "Checkout squad")
    renamed_now = atlassian_team("ATL-1", "Payments squad")
    new = atlassian_team("ATL-2", "Checkout squad")
    issues = [jira_issue("1", "Story", **{TEAM_FIELD: renamed_then}), jira_issue("2", "Story", **{TEAM_FIELD: renamed_now}),
              jira_issue("3", "Story", **{TEAM_FIELD: new})]
    issues[1]["fields"]["updated"] = issues[2]["fields"]["updated"] = "2024-04-01T10:00:00.000+0000"
    warehouse.raw_json("jira__issues", issues)
    warehouse.raw_rows("config__team_map", [
        {"team": "Zeta", "source": "jira_team", "identifier": "Checkout squad"},
        {"team": "Alpha", "source": "jira_team", "identifier": "Payments squad"}])
    warehouse.build("+fct_tickets", "--exclude", "stg_survey__responses")
    assert dict(warehouse.conn.sql("select issue_key, team from marts.fct_tickets").fetchall()) == {
        "PAY-1": "Alpha", "PAY-2": "Alpha", "PAY-3": "Zeta"}
    warehouse.close()
    report = jira_mapping_report(WarehouseResource(database=str(warehouse.path)))
    assert not report.passed
    assert report.metadata["claimed_by_several_teams"].value == [
        ("jira_team ATL-1 (Payments squad): claimed by Alpha (as 'Payments squad', its latest name) and by Zeta "
         "(as 'Checkout squad', a former name); counted for Alpha")]
    assert "claim each by id in team_map.yml (jira_teams: [its id])" in report.description
