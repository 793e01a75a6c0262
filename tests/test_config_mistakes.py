"""Configuration mistakes a data engineer makes in the YAML settings files and the landing
settings: a repeated key or a key at the wrong level stops the load naming it, export_mapping.yml
keeps what the user wrote as text, a files: entry that matches no export is reported, a mapped
column header the export lacks is named as mapped, and a wrong scale setting names the variable."""

import csv
import os
from datetime import UTC, date, datetime

import dagster as dg
import pytest
from conftest import landing_beside_warehouse

from assets.jira.classification import ClassificationRulesError, read_rules
from assets.kpi_rules import KpiRulesError, read_kpi_rules
from assets.landing.assets import survey_responses
from assets.landing.hr import HrExportError, _roles
from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.landing.mapping import MappingError, Settings, read_mapping
from assets.landing.resource import LandingFolderResource
from assets.landing.survey import read_survey_exports
from assets.landing.team_map import TeamMapError, read_team_map
from assets.warehouse.resource import WarehouseResource

ITEMS = [item.text for item in PSYCHOLOGICAL_SAFETY.items]

TEAMS_TWICE = """teams:
  - team: Payments
    jira_projects: [PAY]
# added later for the new team
teams:
  - team: Platform
    jira_projects: [PLAT]
"""
KEY_TWICE_IN_ENTRY = """teams:
  - team: Payments
    jira_projects: [PAY]
    pagerduty_teams: [Payments]
    jira_projects: [PAYOPS]
"""
HR_TWICE = """hr:
  voluntary_reasons: [Resignation]
survey:
  time_zone: Europe/Berlin
hr:
  critical_roles: [Staff SRE]
"""
RULES_TWICE = """rules:
  - class: proactive
    issue_types: [Risk]
rules:
  - class: reactive
    issue_types: [Incident]
"""
KPI_SECTION_TWICE = """repeat_incidents:
  window_days: 7
speaking_up:
  junior_roles: [Junior Engineer]
repeat_incidents:
  window_days: 14
"""


def _team_map(path):
    return read_team_map(path / "team_map.yml")


def _mapping(path):
    return read_mapping(path)


def _rules(path):
    return read_rules(path / "rules.yml")


def _kpi(path):
    return read_kpi_rules(path / "kpi_rules.yml")


@pytest.mark.parametrize("file_name, text, read, error, key, lines", [
    ("team_map.yml", TEAMS_TWICE, _team_map, TeamMapError, "teams", (1, 5)),
    ("team_map.yml", KEY_TWICE_IN_ENTRY, _team_map, TeamMapError, "jira_projects", (3, 5)),
    ("export_mapping.yml", HR_TWICE, _mapping, MappingError, "hr", (1, 5)),
    ("rules.yml", RULES_TWICE, _rules, ClassificationRulesError, "rules", (1, 4)),
    ("kpi_rules.yml", KPI_SECTION_TWICE, _kpi, KpiRulesError, "repeat_incidents", (1, 5)),
])
def test_a_repeated_key_stops_the_load_naming_the_file_the_key_and_both_lines(tmp_path, file_name, text, read,
                                                                              error, key, lines):
    (tmp_path / file_name).write_text(text)
    with pytest.raises(error) as raised:
        read(tmp_path)
    message = str(raised.value)
    assert str(tmp_path / file_name) in message
    assert f"key '{key}' is given twice, on lines {lines[0]} and {lines[1]}" in message


def test_a_merge_key_overridden_is_not_a_repeated_key(tmp_path):
    # A guard, not a fix: overriding what `<<: *anchor` brings in is what merge keys are for.
    (tmp_path / "team_map.yml").write_text("""teams:
  - &payments {team: Payments, hr_org_units: [OU-1]}
  - <<: *payments
    team: Search
    hr_org_units: [OU-2]
""")
    assert {(r["team"], r["identifier"]) for r in _team_map(tmp_path)} == {("Payments", "OU-1"), ("Search", "OU-2")}


@pytest.mark.parametrize("file_name, text, read, error, key, known", [
    ("team_map.yml", "teams:\n  - team: Payments\n    pagerduty_teams: [Payments]\njira_projects: [SRCH]\n",
     _team_map, TeamMapError, "jira_projects", "teams"),
    ("rules.yml", ("rules:\n  - class: proactive\n    issue_types: [Risk]\nrule:\n  - class: reactive\n"
                   "    issue_types: [Incident]\n"), _rules, ClassificationRulesError, "rule", "rules"),
])
def test_an_unknown_top_level_key_stops_the_load_naming_it_and_the_known_one(tmp_path, file_name, text, read,
                                                                             error, key, known):
    (tmp_path / file_name).write_text(text)
    with pytest.raises(error, match=rf"unknown top-level keys \['{key}'\]; the only one is '{known}'"):
        read(tmp_path)


def test_export_mapping_keeps_words_and_headers_as_written_and_still_reads_numbers_and_dates(tmp_path):
    (tmp_path / "export_mapping.yml").write_text("""true_words: [on, ja, yes]
false_words: [off, nein]
hr:
  columns: {org_unit: 0100, employee_id: 1_000}
  snapshots_from: 2024-01-01
survey:
  scale_points: 5
  submitted_at_value: 2024-03-15
  answer_labels: {"Stimme zu": 4, "-98": null, 0100: 1}
  item_sets:
    psychological_safety:
      aliases: {1: ["Fehler werden vorgehalten"]}
      already_reversed: [1, 3]
""")
    mapping = read_mapping(tmp_path)
    assert mapping.common["true_words"] == ("on", "ja", "yes")
    assert mapping.common["false_words"] == ("off", "nein")
    assert mapping.hr["columns"] == {"org_unit": "0100", "employee_id": "1_000"}
    settings = mapping.settings("s.csv", "survey")
    assert settings.scale_points == 5
    assert settings.submitted_at_value == date(2024, 3, 15)
    assert settings.answer_labels == {"stimme zu": 4, "-98": None, "0100": 1}
    assert settings.aliases["psychological_safety"] == {1: ("Fehler werden vorgehalten",)}
    assert settings.already_reversed["psychological_safety"] == (1, 3)
    assert mapping.settings("h.csv", "hr").snapshots_from == date(2024, 1, 1)


@pytest.mark.parametrize("line, message", [
    ("survey: {scale_points: six}", "scale_points must be 5 or 7, not 'six'"),
    ("survey: {submitted_at_value: 15.03.2024}", "submitted_at_value must be a date like 2024-03-15"),
    ("survey: {answer_labels: {Agree: a lot}}", "answer_labels must map answer texts to numbers"),
])
def test_export_mapping_settings_that_are_numbers_or_dates_still_refuse_other_text(tmp_path, line, message):
    (tmp_path / "export_mapping.yml").write_text(line + "\n")
    with pytest.raises(MappingError, match=message):
        read_mapping(tmp_path)


@pytest.fixture
def folders(tmp_path):
    return landing_beside_warehouse(tmp_path, {"team": ["Payments"], "source": ["survey_group"],
                                               "identifier": ["Payments"]})


def test_a_files_entry_matching_no_export_warns_naming_its_pattern_and_the_file_differing_in_case(folders):
    landing, warehouse = folders
    header = ["response_id", "submitted_at", "team", *ITEMS]
    for name in ("survey.csv", "Pilot_Survey.csv"):
        with open(landing / name, "w", newline="") as fh:
            csv.writer(fh).writerows([header, *[[f"{name[0]}{i}", "2025-02-10 09:00:00", "Payments", *[4] * 7]
                                                for i in range(6)]])
        os.utime(landing / name, (0, 0))
    (landing / "export_mapping.yml").write_text('files:\n  - match: "pilot_*.csv"\n    kind: ignore\n'
                                                '  - match: "survey.csv"\n    kind: survey\n')
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([survey_responses], instance=instance,
                            resources={"landing": LandingFolderResource(path=str(landing), hr_id_salt="x" * 20),
                                       "duckdb": WarehouseResource(database=str(warehouse))})
    assert result.success
    logs = [entry.user_message for entry in instance.all_logs(result.run_id) if not entry.is_dagster_event]
    unmatched = [m for m in logs if "matches no file" in m]
    assert len(unmatched) == 1, logs
    assert "files entry 1 (match: 'pilot_*.csv')" in unmatched[0]
    assert "Pilot_Survey.csv would match it but for upper and lower case" in unmatched[0]


def test_a_mapped_hr_column_the_header_lacks_is_named_as_mapped():
    header = ["snapshot_date", "employee_id", "org_unit", "role"]
    with pytest.raises(HrExportError) as raised:
        _roles(header, "snapshots", Settings(columns={"org_unit": "Org Unit"}), "hr_headcount.csv")
    assert "hr.columns.org_unit is 'Org Unit', which the header does not have" in str(raised.value)
    assert "columns not found" not in str(raised.value)


def test_a_mapped_survey_team_column_the_header_lacks_is_named_as_mapped(tmp_path):
    path = tmp_path / "s.csv"
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([["response_id", "submitted_at", "team", *ITEMS],
                                  ["R1", "2025-02-10 09:00:00", "Payments", *[4] * 7]])
    with pytest.raises(ValueError) as raised:
        read_survey_exports([path], {"Payments"}, datetime(2025, 6, 30, tzinfo=UTC),
                            settings=Settings(columns={"team": "Your team"}))
    assert "survey.columns.team is 'Your team', which the header does not have" in str(raised.value)
    assert "no team column" not in str(raised.value)


@pytest.mark.parametrize("value", ["10", "6", "seven"])
def test_a_scale_points_variable_other_than_5_or_7_fails_naming_it(monkeypatch, tmp_path, value):
    monkeypatch.setenv("PSAFE_SURVEY_SCALE_POINTS", value)
    resource = LandingFolderResource(path=str(tmp_path), hr_id_salt="x" * 20)
    with pytest.raises(ValueError, match=rf"PSAFE_SURVEY_SCALE_POINTS must be 5 or 7, not '{value}'"):
        _ = resource.scale_points
