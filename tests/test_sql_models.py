"""SQL models on tiny fixture rows in an in-memory DuckDB."""

import re
from datetime import date

import pandas as pd
import polars as pl
import pytest

from assets.jira.classification import ClassificationRulesError, read_rules
from assets.warehouse.resource import WarehouseResource
from assets.warehouse.team_map_checks import pagerduty_mapping_report
from benchmarks import pandas_baseline, polars_baseline

TEAM_MAP = [
    {"team": team, "source": source, "identifier": identifier}
    for team, claims in {
        "Payments": {"pagerduty_team": "Payments", "jira_project": "PAY", "hr_org_unit": "OU-1",
                     "survey_group": "Payments"},
        # Search names its PagerDuty team by id rather than by name.
        "Search": {"pagerduty_team": "PT2", "jira_project": "SRCH", "hr_org_unit": "OU-2", "survey_group": "Search"},
    }.items()
    for source, identifier in claims.items()
]


def _entry(entry_id, incident, entry_type, at, agent_type="user_reference", channel="web_trigger"):
    return {
        "id": entry_id,
        "type": entry_type,
        "created_at": at,
        "incident": {"id": incident, "type": "incident_reference"},
        "agent": {"id": "PUSER01", "type": agent_type},
        "channel": {"type": channel},
    }


@pytest.fixture
def pagerduty_fixture(warehouse):
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.raw_json("pagerduty__teams", [{"id": "PT1", "name": "Payments"}, {"id": "PT2", "name": "Search"}])
    warehouse.raw_json("pagerduty__services", [
        {"id": "PS1", "name": "checkout", "teams": [{"id": "PT1", "type": "team_reference"}]},
        {"id": "PS2", "name": "query", "teams": [{"id": "PT2", "type": "team_reference"}]},
    ])
    warehouse.raw_json("pagerduty__incidents", [
        {"id": "PI1", "incident_number": 1, "service": {"id": "PS1"}, "status": "resolved",
         "created_at": "2024-01-31T23:30:00Z", "urgency": "high"},
        {"id": "PI2", "incident_number": 2, "service": {"id": "PS2"}, "status": "resolved",
         "created_at": "2024-02-01T10:00:00Z", "urgency": "low"},
        {"id": "PI3", "incident_number": 3, "service": {"id": "PS2"}, "status": "acknowledged",
         "created_at": "2024-02-02T10:00:00Z", "urgency": "high"},
    ])
    warehouse.raw_json("pagerduty__log_entries", [
        # PI1: acknowledged by a person after 10 min, resolved, re-triggered, resolved again.
        _entry("L1", "PI1", "trigger_log_entry", "2024-01-31T23:30:00Z", "service_reference"),
        _entry("L2", "PI1", "acknowledge_log_entry", "2024-01-31T23:40:00Z"),
        _entry("L3", "PI1", "resolve_log_entry", "2024-02-01T00:30:00Z"),
        _entry("L4", "PI1", "trigger_log_entry", "2024-02-01T01:00:00Z", "service_reference"),
        _entry("L5", "PI1", "resolve_log_entry", "2024-02-01T01:30:00Z"),
        # PI2: never acknowledged, auto-resolved by timeout after 30 s.
        _entry("L6", "PI2", "trigger_log_entry", "2024-02-01T10:00:00Z", "service_reference"),
        _entry("L7", "PI2", "resolve_log_entry", "2024-02-01T10:00:30Z", "service_reference", "timeout"),
        # PI3: still open at the cut-off.
        _entry("L8", "PI3", "trigger_log_entry", "2024-02-02T10:00:00Z", "service_reference"),
        _entry("L9", "PI3", "acknowledge_log_entry", "2024-02-02T11:05:00+01:00"),
    ])
    warehouse.build(
        "stg_config__team_map", "stg_pagerduty__teams", "stg_pagerduty__services",
        "stg_pagerduty__incidents", "stg_pagerduty__log_entries", "stg_jira__issues", "int_team_owners",
        "int_pagerduty_team_owners", "int_jira_team_owners", "int_pagerduty_incident_teams", "dim_teams",
        "fct_incidents",
    )
    return warehouse


def test_fct_incidents_rebuilds_durations_from_log_entries(pagerduty_fixture):
    rows = {r["incident_id"]: r for r in pagerduty_fixture.rows("select * from marts.fct_incidents")}
    reopened = rows["PI1"]
    assert reopened["team"] == "Payments"
    assert reopened["period_month"] == date(2024, 1, 1)  # month of the trigger, in UTC
    assert reopened["tta_seconds"] == 600
    assert reopened["ttr_seconds"] == 2 * 3600  # to the last resolve
    assert reopened["reopen_count"] == 1
    assert not reopened["is_auto_resolved"] and not reopened["is_open"]

    auto = rows["PI2"]
    assert auto["tta_seconds"] is None
    assert auto["ttr_seconds"] == 30
    assert auto["is_auto_resolved"] and auto["is_under_a_minute"]

    still_open = rows["PI3"]
    assert still_open["is_open"] and still_open["ttr_seconds"] is None
    assert still_open["tta_seconds"] == 300  # the +01:00 offset is normalised to UTC


def test_dim_teams_collects_each_teams_identifiers(pagerduty_fixture):
    teams = {r["team"]: r for r in pagerduty_fixture.rows("select * from marts.dim_teams")}
    assert teams["Payments"]["pagerduty_team_ids"] == ["PT1"]  # matched by name
    assert teams["Search"]["pagerduty_team_ids"] == ["PT2"]  # matched by id
    assert teams["Search"]["jira_projects"] == ["SRCH"] and teams["Search"]["jira_components"] == []


def test_a_service_claimed_by_id_overrides_its_pagerduty_team(warehouse, pagerduty_fixture):
    pagerduty_fixture.raw_rows("config__team_map", [
        *TEAM_MAP, {"team": "Payments", "source": "pagerduty_service", "identifier": "PS2"},
    ])
    pagerduty_fixture.build("stg_config__team_map", "int_team_owners", "int_pagerduty_team_owners",
                            "int_pagerduty_incident_teams", "fct_incidents")
    teams = {r["incident_id"]: r["team"] for r in pagerduty_fixture.rows("select * from marts.fct_incidents")}
    assert teams == {"PI1": "Payments", "PI2": "Payments", "PI3": "Payments"}


def test_unmapped_pagerduty_team_keeps_its_incidents(warehouse, pagerduty_fixture):
    pagerduty_fixture.raw_json("pagerduty__services", [{"id": "PS2", "name": "query", "teams": [{"id": "PT9"}]}])
    pagerduty_fixture.build("stg_pagerduty__services", "int_pagerduty_incident_teams", "fct_incidents")
    rows = {r["incident_id"]: r for r in pagerduty_fixture.rows("select * from marts.fct_incidents")}
    assert len(rows) == 3
    assert rows["PI2"]["team"] is None


def test_jira_issues_are_classified_by_type_and_label(warehouse):
    def issue(issue_id, issue_type, labels=()):
        return {
            "id": issue_id, "key": f"PAY-{issue_id}",
            "fields": {
                "project": {"key": "PAY"}, "issuetype": {"name": issue_type}, "labels": list(labels),
                "created": "2024-03-01T12:00:00.000+0200", "updated": "2024-03-02T12:00:00.000+0000",
                "resolutiondate": None, "status": {"name": "To Do"},
            },
        }

    warehouse.raw_json("jira__issues", [
        issue("1", "Near miss"), issue("2", "Task", ["near-miss"]), issue("3", "Incident"),
        issue("4", "Story"), issue("5", "tech debt"),
    ])
    warehouse.classification_rules()  # the shipped default, config/ticket_classification.yml
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.build("+int_jira_issue_teams", "fct_tickets")
    classes = {r["issue_id"]: r["ticket_class"] for r in warehouse.rows("select * from marts.fct_tickets")}
    assert classes == {"1": "proactive", "2": "proactive", "3": "reactive", "4": "unclassified", "5": "proactive"}
    created = warehouse.rows("select created_at from staging.stg_jira__issues where issue_id = '1'")[0]["created_at"]
    assert created.hour == 10  # +0200 normalised to UTC


def test_team_month_uses_the_previous_quarters_wave_and_suppresses_small_cells(warehouse):
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.raw_json("pagerduty__teams", [{"id": "PT1", "name": "Payments"}])
    # Payments: wave Q1 reportable with mean 5; wave Q2 suppressed (built by the survey asset).
    warehouse.survey_cells([
        {"team": "Payments", "wave_quarter": date(2024, 1, 1), "n_respondents": 5, "score_mean": 5.0},
        {"team": "Payments", "wave_quarter": date(2024, 4, 1), "score_mean": None},
    ])
    warehouse.raw_rows("hr__headcount", [
        {"snapshot_date": f"2024-{m:02d}-01", "employee_id": f"E{e}", "org_unit": "OU-1",
         "role": "engineer", "critical_role": str(e == 0).lower()}
        for m in range(1, 10) for e in range(4)
    ])
    warehouse.raw_rows("hr__terminations", [
        {"employee_id": "E0", "org_unit": "OU-1", "role": "engineer", "critical_role": "true",
         "termination_date": "2024-04-15", "voluntary": "true"},
    ])
    warehouse.build_team_month()
    months = {r["period_month"].month: r for r in warehouse.rows("select * from marts.mart_team_month")}
    assert months[3]["safety_lagged"] is None  # no wave before Q1
    assert months[4]["safety_lagged"] == 5.0  # Q1 wave describes Q2
    assert months[8]["safety_lagged"] == 5.0  # Q2 wave suppressed: Q1 carried forward
    # E0 leaves in April but stays in the fixture's snapshots: average headcount 4, critical 1.
    assert months[4]["voluntary_leavers"] == 1 and months[4]["voluntary_attrition_rate"] == 0.25
    assert months[4]["critical_attrition_rate"] == 1.0
    assert set(months) == set(range(1, 10))


def test_incidents_take_the_team_of_trigger_time_onset_and_exclusions(warehouse):
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.raw_json("pagerduty__teams", [{"id": "PT1", "name": "Payments"}, {"id": "PT2", "name": "Search"}])
    warehouse.raw_json("pagerduty__services", [
        # PS1 moved from Payments to Search after its first incidents; PS9 is a test service.
        {"id": "PS1", "name": "checkout", "teams": [{"id": "PT2"}]},
        {"id": "PS9", "name": "Synthetic checks (test)", "teams": [{"id": "PT1"}]},
    ])

    def incident(incident_id, service, **extra):
        return {"id": incident_id, "incident_number": 1, "service": {"id": service}, "status": "resolved",
                "created_at": "2024-03-01T10:00:00Z", "urgency": "high", "teams": [{"id": "PT1"}], **extra}

    warehouse.raw_json("pagerduty__incidents", [
        incident("PI1", "PS1"), incident("PI2", "PS9"),
        incident("PI3", "PS1", resolve_reason={"type": "merge_resolve_reason", "incident": {"id": "PI1"}}),
    ])

    def entry(entry_id, incident_id, entry_type, at, **extra):
        return {**_entry(entry_id, incident_id, entry_type, at), "teams": [{"id": "PT1", "summary": "Payments"}],
                **extra}

    impact = {"changeset": {"customer_fields": [{"name": "impact_started", "value": ["2024-03-01T09:50:00Z"]}]}}
    alert = {"type": "api", "cef_details": {"creation_time": "2024-03-01T09:55:00Z"}}
    warehouse.raw_json("pagerduty__log_entries", [
        entry("L1", "PI1", "trigger_log_entry", "2024-03-01T10:00:00Z", channel=alert),
        entry("L2", "PI1", "custom_field_value_change_log_entry", "2024-03-01T10:20:00Z",
              channel={"type": "website", **impact}),
        entry("L3", "PI1", "resolve_log_entry", "2024-03-01T11:00:00Z"),
        entry("L4", "PI2", "trigger_log_entry", "2024-03-01T10:00:00Z"),
        entry("L5", "PI2", "resolve_log_entry", "2024-03-01T10:05:00Z"),
        entry("L6", "PI3", "trigger_log_entry", "2024-03-01T10:00:00Z"),
        entry("L7", "PI3", "resolve_log_entry", "2024-03-01T10:03:00Z"),
    ])
    warehouse.build(
        "stg_config__team_map", "stg_pagerduty__teams", "stg_pagerduty__services",
        "stg_pagerduty__incidents", "stg_pagerduty__log_entries", "int_team_owners", "int_pagerduty_team_owners",
        "int_pagerduty_incident_teams", "fct_incidents",
    )
    [row] = warehouse.rows("select * from marts.fct_incidents")  # merged PI3 and test-service PI2 left out
    assert row["incident_id"] == "PI1"
    assert (row["team"], row["team_source"]) == ("Payments", "trigger_team")  # not PS1's current Search
    assert row["onset_source"] == "custom_field_and_alert"
    assert row["ttd_seconds"] == 600  # the earlier of 09:50 (custom field) and 09:55 (alert)
    assert row["ttr_from_onset_seconds"] == 70 * 60 and row["ttr_seconds"] == 3600


def test_an_onset_after_the_trigger_is_no_onset_in_the_mart_and_both_baselines(warehouse):
    # docs/metrics.md: TTD = t_trigger - t_onset, the onset preceding detection. A monitoring
    # tool whose clock is ahead stamps its alert after the incident's creation: that onset is
    # unknown, not a negative TTD counted in n_ttd, onset_known_share and the TTD median.
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.raw_json("pagerduty__teams", [{"id": "PT1", "name": "Payments"}])
    warehouse.raw_json("pagerduty__services", [{"id": "PS1", "name": "checkout", "teams": [{"id": "PT1"}]}])
    incidents = ["AHEAD", "FIELD_BEFORE", "FIELD_AFTER", "AT_TRIGGER"]
    warehouse.raw_json("pagerduty__incidents", [
        {"id": incident_id, "incident_number": number, "service": {"id": "PS1"}, "status": "resolved",
         "created_at": "2024-03-01T10:00:00Z", "urgency": "high", "teams": [{"id": "PT1"}]}
        for number, incident_id in enumerate(incidents, 1)
    ])

    def alerted_at(at):
        return {"type": "api", "cef_details": {"creation_time": at}}

    def impact_started(at):
        return {"type": "website", "changeset": {"customer_fields": [{"name": "impact_started", "value": [at]}]}}

    entries = {
        "AHEAD": [alerted_at("2024-03-01T10:01:30Z")],  # the tool's clock 90 s ahead
        "FIELD_BEFORE": [alerted_at("2024-03-01T10:01:30Z"), impact_started("2024-03-01T09:50:00Z")],
        "FIELD_AFTER": [alerted_at("2024-03-01T09:58:00Z"), impact_started("2024-03-01T10:30:00Z")],
        "AT_TRIGGER": [alerted_at("2024-03-01T10:00:00Z")],
    }
    rows = []
    for incident_id, (alert, *impact) in entries.items():
        rows.append({**_entry(f"{incident_id}-T", incident_id, "trigger_log_entry", "2024-03-01T10:00:00Z"),
                     "channel": alert})
        rows += [{**_entry(f"{incident_id}-F", incident_id, "custom_field_value_change_log_entry",
                           "2024-03-01T10:20:00Z"), "channel": channel} for channel in impact]
        rows.append(_entry(f"{incident_id}-R", incident_id, "resolve_log_entry", "2024-03-01T11:00:00Z"))
    warehouse.raw_json("pagerduty__log_entries", rows)
    warehouse.build(
        "stg_config__team_map", "stg_pagerduty__teams", "stg_pagerduty__services",
        "stg_pagerduty__incidents", "stg_pagerduty__log_entries", "int_team_owners", "int_pagerduty_team_owners",
        "int_pagerduty_incident_teams", "fct_incidents",
    )
    mart = {r["incident_id"]: r for r in warehouse.rows("select * from marts.fct_incidents")}
    assert {k: (r["onset_source"], r["ttd_seconds"], r["ttr_from_onset_seconds"]) for k, r in mart.items()} == {
        "AHEAD": (None, None, None),
        "FIELD_BEFORE": ("custom_field", 600, 70 * 60),  # the alert after the trigger is no onset
        "FIELD_AFTER": ("alert", 120, 62 * 60),  # nor is an impact said to start after it
        "AT_TRIGGER": ("alert", 0, 3600),  # detected the moment it began
    }
    assert mart["AHEAD"]["onset_at"] is None

    # The benchmarks' baselines compute the same columns (compared with the mart column by column).
    team_map = warehouse.conn.sql("select * from raw.config__team_map").df()

    def pandas_claims(source):
        return team_map.loc[team_map["source"] == source, ["identifier", "team"]]

    def polars_claims(source):
        return pl.from_pandas(pandas_claims(source)).lazy()

    by_pandas = pandas_baseline.incident_facts(warehouse.conn, pandas_claims).set_index("incident_id")
    by_polars = polars_baseline.incident_facts(warehouse.conn, polars_claims).collect().to_pandas().set_index(
        "incident_id")
    for name, facts in (("pandas", by_pandas), ("polars", by_polars)):
        assert {k: (None if pd.isna(facts.at[k, "ttd_seconds"]) else facts.at[k, "ttd_seconds"]) for k in mart} == {
            k: r["ttd_seconds"] for k, r in mart.items()}, name
        assert facts["onset_at"].isna().to_dict() == {k: r["onset_at"] is None for k, r in mart.items()}, name


def _facts_by_baselines(warehouse) -> dict[str, pd.DataFrame]:
    """fct_incidents as the benchmarks' pandas and polars baselines compute it, by incident id."""
    team_map = warehouse.conn.sql("select * from raw.config__team_map").df()

    def pandas_claims(source):
        return team_map.loc[team_map["source"] == source, ["identifier", "team"]]

    def polars_claims(source):
        return pl.from_pandas(pandas_claims(source)).lazy()

    return {"pandas": pandas_baseline.incident_facts(warehouse.conn, pandas_claims).set_index("incident_id"),
            "polars": polars_baseline.incident_facts(warehouse.conn, polars_claims).collect().to_pandas()
            .set_index("incident_id")}


def _load_incidents_listing_a_shared_team(warehouse) -> None:
    """PagerDuty lists every team of a service's escalation policy on the service, its incidents
    and their log entries, in no documented order: here a shared on-call team no team claims
    ("Platform SRE", no survey team) first. Two incidents list two claimed teams; two are on
    services gone from the directory (deleted), one a test service."""
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.raw_json("pagerduty__teams", [
        {"id": "PT1", "name": "Payments"}, {"id": "PT2", "name": "Search"}, {"id": "PSHARED", "name": "Platform SRE"}])
    shared, payments, search = ({"id": team_id, "summary": name, "type": "team_reference"} for team_id, name in
                                (("PSHARED", "Platform SRE"), ("PT1", "Payments"), ("PT2", "Search")))
    warehouse.raw_json("pagerduty__services", [
        {"id": "PS1", "name": "checkout", "teams": [shared, payments]},
        {"id": "PS2", "name": "query", "teams": [shared, search]},
    ])

    def incident(incident_id, number, service, service_name, teams):
        return {"id": incident_id, "incident_number": number, "status": "resolved", "urgency": "high",
                "service": {"id": service, "summary": service_name, "type": "service_reference"},
                "created_at": "2024-03-01T10:00:00Z", "teams": teams}

    warehouse.raw_json("pagerduty__incidents", [
        incident("SHARED_FIRST", 1, "PS1", "checkout", [shared, payments]),
        incident("BY_INCIDENT", 2, "PS2", "query", [shared, search]),
        incident("BOTH_CLAIMED", 3, "PS1", "checkout", [search, shared, payments]),
        incident("ON_DELETED_TEST", 4, "PSGONE1", "Payments synthetic checks (test)", [payments]),
        incident("ON_DELETED", 5, "PSGONE2", "legacy checkout", [shared, payments]),
    ])
    warehouse.raw_json("pagerduty__log_entries", [
        {**_entry("L1", "SHARED_FIRST", "trigger_log_entry", "2024-03-01T10:00:00Z"), "teams": [shared, payments]},
        {**_entry("L2", "BY_INCIDENT", "trigger_log_entry", "2024-03-01T10:00:00Z"), "teams": [shared]},
        {**_entry("L3", "BOTH_CLAIMED", "trigger_log_entry", "2024-03-01T10:00:00Z"),
         "teams": [shared, search, payments]},
        {**_entry("L4", "ON_DELETED_TEST", "trigger_log_entry", "2024-03-01T10:00:00Z"), "teams": [payments]},
        {**_entry("L5", "ON_DELETED", "trigger_log_entry", "2024-03-01T10:00:00Z"), "teams": [shared, payments]},
    ])
    warehouse.build(
        "stg_config__team_map", "stg_pagerduty__teams", "stg_pagerduty__services",
        "stg_pagerduty__incidents", "stg_pagerduty__log_entries", "int_team_owners", "int_pagerduty_team_owners",
        "int_pagerduty_incident_teams", "fct_incidents",
    )


def test_an_incident_goes_to_the_first_claimed_team_listed_and_a_deleted_test_service_is_still_a_test(warehouse):
    # The shared team listed first must not cost the owning team its incident: the first
    # *claimed* team listed counts (trigger entry, then incident, then service). A test service
    # deleted before the first sync is missing from /services, but its incidents' service
    # reference still carries its name.
    _load_incidents_listing_a_shared_team(warehouse)
    mart = {r["incident_id"]: (r["team"], r["team_source"]) for r in warehouse.rows("select * from marts.fct_incidents")}
    assert mart == {
        "SHARED_FIRST": ("Payments", "trigger_team"),
        "BY_INCIDENT": ("Search", "incident_team"),  # the trigger lists only the shared team
        "BOTH_CLAIMED": ("Search", "trigger_team"),  # two teams claimed: the first listed
        "ON_DELETED": ("Payments", "trigger_team"),  # a deleted service that was no test service counts
    }
    claims = dict(warehouse.conn.execute(
        "select incident_id, claiming_teams from intermediate.int_pagerduty_incident_teams").fetchall())
    assert claims["BOTH_CLAIMED"] == 2 and claims["SHARED_FIRST"] == 1

    for name, facts in _facts_by_baselines(warehouse).items():
        assert facts["team"].to_dict() == {incident_id: team for incident_id, (team, _) in mart.items()}, name


def test_the_mapping_check_names_a_shared_team_as_left_unclaimed_not_as_one_to_map(warehouse):
    # Every counted incident listing the shared team counts for a team it also lists: mapping
    # the shared team to one team would take every incident it is listed on, from every
    # service, so the check must not ask for that. Incidents listing teams of two teams are
    # named by service, which the map can claim to choose.
    _load_incidents_listing_a_shared_team(warehouse)
    warehouse.close()
    result = pagerduty_mapping_report(WarehouseResource(database=str(warehouse.path)))
    assert result.metadata["unmapped"].value == []
    assert result.metadata["unclaimed_shared_teams"].value == [
        "pagerduty_team PSHARED (Platform SRE) (listed on 4 records, each beside a claimed team)"]
    assert result.metadata["several_claiming_teams"].value == ["pagerduty_service PS1 (1 records)"]
    assert not result.passed and "add them to team_map.yml" not in result.description
    assert "nothing to map" in result.description and "claim the service" in result.description

    # With the owning team unclaimed too, the shared team leaves an incident without a team: map it.
    warehouse.raw_rows("config__team_map", [row for row in TEAM_MAP if row["identifier"] != "PT2"])
    warehouse.build("stg_config__team_map", "int_team_owners", "int_pagerduty_team_owners",
                    "int_pagerduty_incident_teams", "fct_incidents")
    warehouse.close()
    result = pagerduty_mapping_report(WarehouseResource(database=str(warehouse.path)))
    assert result.metadata["unmapped"].value == [
        "pagerduty_team PSHARED (Platform SRE) (1 records)", "pagerduty_team PT2 (Search) (1 records)",
        "pagerduty_service PS2 (1 records)"]
    assert "add them to team_map.yml" in result.description


def test_the_mapping_check_asks_to_map_a_team_listed_alone_on_incidents_its_claimed_service_decides(warehouse):
    # Payments claims its fraud service by id; the service's incidents list only its own
    # PagerDuty team ("Fraud", unclaimed). They count for Payments by the service, but that team
    # is no shared team listed beside a claimed one: the next service it owns would count for no
    # team, so the check asks to map it.
    _load_incidents_listing_a_shared_team(warehouse)
    fraud = {"id": "PFRAUD", "summary": "Fraud", "type": "team_reference"}
    warehouse.raw_rows("config__team_map", [
        *TEAM_MAP, {"team": "Payments", "source": "pagerduty_service", "identifier": "PS3"}])
    warehouse.raw_json("pagerduty__teams", [{"id": "PFRAUD", "name": "Fraud"}])
    warehouse.raw_json("pagerduty__services", [{"id": "PS3", "name": "fraud-scoring", "teams": [fraud]}])
    warehouse.raw_json("pagerduty__incidents", [
        {"id": "FRAUD", "incident_number": 6, "status": "resolved", "urgency": "high",
         "service": {"id": "PS3", "summary": "fraud-scoring", "type": "service_reference"},
         "created_at": "2024-03-01T10:00:00Z", "teams": [fraud]}])
    warehouse.raw_json("pagerduty__log_entries", [
        {**_entry("L6", "FRAUD", "trigger_log_entry", "2024-03-01T10:00:00Z"), "teams": [fraud]}])
    warehouse.build(
        "stg_config__team_map", "stg_pagerduty__teams", "stg_pagerduty__services",
        "stg_pagerduty__incidents", "stg_pagerduty__log_entries", "int_team_owners", "int_pagerduty_team_owners",
        "int_pagerduty_incident_teams", "fct_incidents",
    )
    assert warehouse.rows("select team, team_source from marts.fct_incidents where incident_id = 'FRAUD'") == [
        {"team": "Payments", "team_source": "service"}]
    warehouse.close()
    result = pagerduty_mapping_report(WarehouseResource(database=str(warehouse.path)))
    assert result.metadata["unmapped"].value == [
        "pagerduty_team PFRAUD (Fraud) (1 records, 1 counted for their service's team or another list's)"]
    assert result.metadata["unclaimed_shared_teams"].value == [
        "pagerduty_team PSHARED (Platform SRE) (listed on 4 records, each beside a claimed team)"]
    assert "add them to team_map.yml" in result.description


def test_tickets_go_to_the_team_of_their_component_then_project_under_user_rules(warehouse, tmp_path):
    warehouse.raw_rows("config__team_map", [
        *TEAM_MAP, {"team": "Search", "source": "jira_component", "identifier": "OPS/Search"},
    ])

    def issue(issue_id, project, issue_type, labels=(), components=()):
        return {"id": issue_id, "key": f"{project}-{issue_id}", "fields": {
            "project": {"key": project}, "issuetype": {"name": issue_type}, "labels": list(labels),
            "components": [{"name": c} for c in components],
            "created": "2024-03-01T12:00:00.000+0000", "updated": "2024-03-01T12:00:00.000+0000",
            "resolutiondate": None, "status": {"name": "To Do"}}}

    warehouse.raw_json("jira__issues", [
        issue("1", "OPS", "Bug", components=["Search"]), issue("2", "PAY", "Bug", ["customer-found"]),
        issue("3", "OPS", "Bug", components=["Shared tooling"]), issue("4", "SRCH", "Story"),
        issue("5", "PAY", "Bug"),
    ])
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "rules:\n"
        "  - class: reactive\n    issue_types: [bug]\n    labels: [Customer-Found]\n"
        "  - class: proactive\n    issue_types: [Bug]\n    projects: [ops]\n"
    )
    warehouse.classification_rules(rules)
    warehouse.build("+int_jira_issue_teams", "fct_tickets")
    rows = {r["issue_id"]: r for r in warehouse.rows("select * from marts.fct_tickets")}
    assert {k: (r["team"], r["team_source"]) for k, r in rows.items()} == {
        "1": ("Search", "component"), "2": ("Payments", "project"), "3": (None, None),
        "4": ("Search", "project"), "5": ("Payments", "project"),
    }
    assert {k: (r["ticket_class"], r["matched_rule"]) for k, r in rows.items()} == {
        "1": ("proactive", 2), "2": ("reactive", 1), "3": ("proactive", 2), "4": ("unclassified", None),
        "5": ("unclassified", None),
    }


@pytest.mark.parametrize("text, message", [
    ("rules: []", "non-empty 'rules'"),
    ("rules:\n  - class: maybe\n    labels: [x]", "class must be one of"),
    ("rules:\n  - class: proactive", "needs at least one of"),
    ("rules:\n  - class: proactive\n    label: [x]", "unknown keys ['label']"),
    ("rules:\n  - class: proactive\n    labels: x", "must be a list"),
])
def test_malformed_rules_files_are_refused_with_the_reason(tmp_path, text, message):
    path = tmp_path / "rules.yml"
    path.write_text(text)
    with pytest.raises(ClassificationRulesError, match=re.escape(message)):
        read_rules(path)
