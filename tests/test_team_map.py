"""The team map file: flattened to (team, source, identifier), refused clearly when ambiguous."""

import pytest

from assets.landing.team_map import TeamMapError, read_team_map, write_team_map


def write(tmp_path, text: str):
    path = tmp_path / "team_map.yml"
    path.write_text(text)
    return path


def test_round_trip_flattens_every_claim(tmp_path):
    path = tmp_path / "team_map.yml"
    write_team_map(path, [
        {"team": "Payments", "pagerduty_teams": ["Payments"], "pagerduty_services": ["PSVC1"],
         "jira_projects": ["pay"], "jira_components": ["ops/Payments"],
         "jira_teams": ["Payments squad", "36885b3c-1bf0-4f85-a357-c5b858c31de4"], "hr_org_units": ["OU-1"],
         "survey_groups": ["Payments"]},
        {"team": "Search", "jira_projects": ["SRCH"]},
    ])
    assert read_team_map(path) == [
        {"team": "Payments", "source": "pagerduty_team", "identifier": "Payments"},
        {"team": "Payments", "source": "pagerduty_service", "identifier": "PSVC1"},
        {"team": "Payments", "source": "jira_project", "identifier": "PAY"},
        {"team": "Payments", "source": "jira_component", "identifier": "OPS/Payments"},
        # Atlassian teams (Jira's Team field) by name or id, as written.
        {"team": "Payments", "source": "jira_team", "identifier": "Payments squad"},
        {"team": "Payments", "source": "jira_team", "identifier": "36885b3c-1bf0-4f85-a357-c5b858c31de4"},
        {"team": "Payments", "source": "hr_org_unit", "identifier": "OU-1"},
        {"team": "Payments", "source": "survey_group", "identifier": "Payments"},
        {"team": "Search", "source": "jira_project", "identifier": "SRCH"},
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("teams: [", "not valid YAML"),
        ("- team: A", "'teams' list"),
        ("teams:\n  - jira_projects: [A]", "non-empty 'team'"),
        ("teams:\n  - team: A\n  - team: A", "listed twice"),
        ("teams:\n  - team: A\n    jira_project: [A]", "unknown keys ['jira_project']"),
        ("teams:\n  - team: A\n    jira_projects: A", "must be a list"),
        ("teams:\n  - team: A\n    jira_projects: [ops]\n  - team: B\n    jira_projects: [OPS]",
         "'OPS' is mapped to both 'A' and 'B'"),
        ("teams:\n  - team: A\n    hr_org_units: [Zürich Ops]\n  - team: B\n    hr_org_units: ['zürich  ops']",
         "'zürich  ops' is mapped to both 'A' and 'B'"),
        ("teams:\n  - team: A\n    jira_components: [Payments]", "PROJECT/Component"),
        ("teams:\n  - team: A\n    jira_teams: [Core]\n  - team: B\n    jira_teams: [Core]",
         "jira_teams 'Core' is mapped to both 'A' and 'B'"),
        ("teams:\n  - team: A", "maps no identifiers"),
    ],
)
def test_malformed_or_ambiguous_maps_are_refused_with_the_reason(tmp_path, text, message):
    with pytest.raises(TeamMapError, match=message.replace("[", r"\[").replace("]", r"\]")):
        read_team_map(write(tmp_path, text))


def test_values_read_as_written_while_nulls_and_merge_keys_still_work(tmp_path):
    # The anchor is held by the first entry: a top-level key beside teams is refused (C2).
    rows = read_team_map(write(tmp_path, "teams:\n  - &defaults\n    team: Yes\n    survey_groups: ~\n"
                                         "  - <<: *defaults\n    team: No\n    hr_org_units: [00123, 1e3, 2024-01]\n"))
    assert rows == [{"team": "No", "source": "hr_org_unit", "identifier": identifier}
                    for identifier in ("00123", "1e3", "2024-01")]


def test_a_claim_its_team_lists_twice_is_one_claim(tmp_path):
    # int_team_owners would hold it twice, and every join through it count its rows twice
    # (review of the eighth trial's fixes): alike by the matching rule, the first as written.
    path = write(tmp_path, "teams:\n  - team: Ops\n    hr_org_units: [OU-1, OU-1, ou-1]\n"
                           "    jira_projects: [PAY, pay]\n    pagerduty_services: [PSVC1, PSVC1]\n")
    assert read_team_map(path) == [
        {"team": "Ops", "source": "pagerduty_service", "identifier": "PSVC1"},
        {"team": "Ops", "source": "jira_project", "identifier": "PAY"},
        {"team": "Ops", "source": "hr_org_unit", "identifier": "OU-1"}]
