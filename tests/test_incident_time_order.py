"""Log entries stamped in an order no incident can have (an acknowledgement or a resolve before
the trigger: clock skew, entries out of order). PagerDuty's log cannot be edited, so such an
incident must not fail the blocking check on marts.fct_incidents (which would stop the models
every night): its impossible time is left out, and the warning check incidents_in_time_order
names it."""

import dagster as dg

from assets.quality.checks import validate
from assets.quality.suites import SUITES

TEAM_MAP = [{"team": "Payments", "source": "pagerduty_team", "identifier": "Payments"}]


def entry(entry_id: str, incident: str, entry_type: str, at: str) -> dict:
    return {"id": entry_id, "type": entry_type, "created_at": at,
            "incident": {"id": incident, "type": "incident_reference"},
            "agent": {"id": "PUSER01", "type": "user_reference"}, "channel": {"type": "web_trigger"}}


def checks_on(warehouse, table: str) -> dict[str, dg.AssetCheckResult]:
    results = {}
    for suite in (s for s in SUITES if s.table == table):
        frame = warehouse.conn.sql(f"select {', '.join(suite.columns)} from {suite.table}").df()
        results[suite.name] = validate(suite, frame)
    return results


def test_times_before_the_trigger_are_left_out_and_named_not_blocking(warehouse):
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.raw_json("pagerduty__teams", [{"id": "PT1", "name": "Payments"}])
    warehouse.raw_json("pagerduty__services", [
        {"id": "PS1", "name": "checkout", "teams": [{"id": "PT1", "type": "team_reference"}]}])
    incidents = [{"id": incident, "incident_number": n, "service": {"id": "PS1"}, "status": "resolved",
                  "created_at": at, "urgency": "high"}
                 for n, (incident, at) in enumerate([("PI1", "2024-03-11T10:00:00Z"), ("PI9", "2024-03-31T23:59:50Z")])]
    warehouse.raw_json("pagerduty__incidents", incidents)
    warehouse.raw_json("pagerduty__log_entries", [
        entry("L1a", "PI1", "trigger_log_entry", "2024-03-11T10:00:00Z"),
        entry("L1b", "PI1", "acknowledge_log_entry", "2024-03-11T10:05:00Z"),
        entry("L1c", "PI1", "resolve_log_entry", "2024-03-11T11:00:00Z"),
        # PI9's acknowledge and resolve carry stamps before its trigger.
        entry("L9a", "PI9", "trigger_log_entry", "2024-03-31T23:59:50Z"),
        entry("L9b", "PI9", "acknowledge_log_entry", "2024-03-31T23:59:41Z"),
        entry("L9c", "PI9", "resolve_log_entry", "2024-03-31T23:59:45Z"),
    ])
    warehouse.build_team_month()

    incidents = {row["incident_id"]: row for row in warehouse.rows(
        "select incident_id, tta_seconds, ttr_seconds, is_open, is_under_a_minute, timeline_conflict "
        "from marts.fct_incidents")}
    assert incidents["PI1"] == {"incident_id": "PI1", "tta_seconds": 300.0, "ttr_seconds": 3600.0, "is_open": False,
                                "is_under_a_minute": False, "timeline_conflict": None}
    # Still counted, as resolved, with neither time.
    assert incidents["PI9"] == {"incident_id": "PI9", "tta_seconds": None, "ttr_seconds": None, "is_open": False,
                                "is_under_a_minute": False, "timeline_conflict": "resolved_and_acknowledged_before_trigger"}

    checks = checks_on(warehouse, "marts.fct_incidents")
    assert checks["great_expectations"].passed, checks["great_expectations"].description
    named = checks["incidents_in_time_order"]
    assert not named.passed and named.severity == dg.AssetCheckSeverity.WARN
    [failure] = named.metadata["failures_json"].data
    assert failure["unexpected_rows"] == [{"incident_id": "PI9", "timeline_conflict": "resolved_and_acknowledged_before_trigger"}]
