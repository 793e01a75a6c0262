"""Team map claims on the tools' names in either Unicode form (names angle of the eighth trial,
N2). A map typed on macOS or pasted from a file name may write José in NFD (e and a combining
accent) where PagerDuty and Jira send NFC, or the reverse: canonically equivalent texts are the
same text, so the claim counts, as survey groups and HR org units of the same file do. A claim
that differs from a seen name in spacing, an invisible character or its quotes still matches
nothing (the tools' names match as written), and the mapping checks say what it reads like."""

import unicodedata
from dataclasses import replace

import pytest
from test_claims_matching_nothing import team_map, two_incidents
from test_jira_teams import TEAM_FIELD, atlassian_team, jira_issue

from assets.kpi_rules import read_kpi_rules
from assets.warehouse.resource import WarehouseResource
from assets.warehouse.team_map_checks import jira_mapping_report, pagerduty_mapping_report

# dbt builds through the team-month models in every test: left to make test.
pytestmark = pytest.mark.slow

JOSE = "Jos\u00e9"  # NFC: é is one character
JOSE_NFD = unicodedata.normalize("NFD", JOSE)  # e and U+0301, as macOS may write it


def pagerduty(warehouse, rows: list[dict[str, str]], team_name: str) -> None:
    """PagerDuty team PJOSE01 named ``team_name`` owns service PSVC001 and its two incidents."""
    team = {"id": "PJOSE01", "summary": team_name, "type": "team_reference"}
    warehouse.raw_rows("config__team_map", rows)
    warehouse.raw_json("pagerduty__teams", [{"id": "PJOSE01", "name": team_name}])
    warehouse.raw_json("pagerduty__services", [{"id": "PSVC001", "name": "ops-api", "teams": [team]}])
    two_incidents(warehouse, "PSVC001", team)


def jira(warehouse, rows: list[dict[str, str]], name: str) -> None:
    """Project PAY: issue 1 in the component ``name`` Ops, issue 2 naming the Atlassian team
    ``name`` squad in its Team field."""
    warehouse.raw_json("jira__issues", [
        jira_issue("1", "Story", components=(f"{name} Ops",)),
        jira_issue("2", "Story", **{TEAM_FIELD: atlassian_team("ATL-9", f"{name} squad")})])
    warehouse.raw_rows("config__team_map", rows)
    warehouse.kpi_rules(replace(read_kpi_rules(), ticket_team_field=TEAM_FIELD))
    warehouse.build("+fct_tickets", "--exclude", "stg_survey__responses")


MAP = """teams:
  - team: Ops
    pagerduty_teams: ['{name} Ops']
    jira_components: ['PAY/{name} Ops']
  - team: Squad
    jira_teams: ['{name} squad']
"""


def teams_of(warehouse, mart: str, key: str) -> list[tuple]:
    return warehouse.conn.sql(f"select {key}, team from marts.{mart} order by {key}").fetchall()


@pytest.mark.parametrize(("claimed", "named"), [(JOSE_NFD, JOSE), (JOSE, JOSE_NFD)],
                         ids=["claims in NFD, names in NFC", "claims in NFC, names in NFD"])
def test_claims_match_pagerduty_and_jira_names_in_the_other_unicode_form(warehouse, tmp_path, claimed, named):
    assert claimed != named
    rows = team_map(tmp_path, MAP.format(name=claimed))
    pagerduty(warehouse, rows, f"{named} Ops")
    jira(warehouse, rows, named)
    assert teams_of(warehouse, "fct_incidents", "incident_id") == [("I1", "Ops"), ("I2", "Ops")]
    assert teams_of(warehouse, "fct_tickets", "issue_key") == [("PAY-1", "Ops"), ("PAY-2", "Squad")]
    warehouse.close()
    database = WarehouseResource(database=str(warehouse.path))
    for report in (pagerduty_mapping_report(database), jira_mapping_report(database)):
        assert report.metadata["claims_matching_nothing"].value == []
        assert report.passed, report.description


def test_a_claim_differing_in_spacing_or_an_invisible_character_is_named_with_the_name_it_reads_as(
        warehouse, tmp_path):
    # Two spaces in the PagerDuty team's name; a no-break space in the component (a web page
    # copied); a zero-width space pasted into the Atlassian team's name, in lower case.
    rows = team_map(tmp_path, """teams:
  - team: Ops
    pagerduty_teams: ['José  Ops']
    jira_components: ['PAY/José\u00a0Ops']
  - team: Squad
    jira_teams: ['josé\u200bsquad']
""".replace("José", JOSE_NFD).replace("josé", JOSE_NFD.lower()).replace("\u200bsquad", " \u200bsquad"))
    pagerduty(warehouse, rows, f"{JOSE} Ops")
    jira(warehouse, rows, JOSE)
    # The claims count for nothing: the tools' names match as written but for their Unicode form.
    assert teams_of(warehouse, "fct_incidents", "incident_id") == [("I1", None), ("I2", None)]
    assert teams_of(warehouse, "fct_tickets", "issue_key") == [("PAY-1", None), ("PAY-2", None)]
    warehouse.close()
    database = WarehouseResource(database=str(warehouse.path))
    hint = "ignoring case, spacing, invisible characters and quotes it matches"
    written_as = "(identifiers match as the tool writes them, case, spaces and quotes included)"
    assert pagerduty_mapping_report(database).metadata["claims_matching_nothing"].value == [
        (f"Ops: pagerduty_teams 'José  Ops' matches no PagerDuty team (id or name) seen in the PagerDuty data; "
         f"{hint} 'José Ops' {written_as}")]
    assert jira_mapping_report(database).metadata["claims_matching_nothing"].value == [
        (f"Ops: jira_components 'PAY/José\\xa0Ops' matches no PROJECT/Component of a stored Jira issue; "
         f"{hint} 'PAY/José Ops' {written_as}"),
        (f"Squad: jira_teams 'josé \\u200bsquad' matches no Atlassian team (id or name) a stored issue's Team "
         f"field names; {hint} 'José squad' {written_as}")]
