"""PagerDuty's documented limits as the sync meets them on the sandbox.

- An account whose plan lacks the `teams` ability: `GET /teams` answers 402 Payment Required,
  code 2014 (14-Errors.md; the body below is a real account's, as captured in
  webdevops/pagerduty-exporter#1 and tidbyt/community#810). Its services, incidents and log
  entries list no team. The teams sync loads none and warns; the nightly run builds everything,
  attributing incidents by the team map's service claims.
- More records in a window than offset paging reaches (offset + limit <= 10,000,
  09-Pagination.md): the window is narrowed down to one second (since/until take whole seconds),
  and a single second still over the cap fails saying so. The storm is the sandbox's `total`
  (what `?total=true` reports), as no synthetic organisation holds 10,000 entries in a minute.
- `until` served inclusive (undocumented either way: PagerDuty/developer-docs#74): a window's
  last page may hold only records created at exactly `until`.
"""

import json
import logging
from bisect import bisect_left
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb
import pytest
from conftest import expected_log_entries

from assets.landing.team_map import write_team_map
from assets.pagerduty.assets import pagerduty_log_entries, pagerduty_teams
from assets.pagerduty.resource import MAX_WINDOW, OFFSET_CAP, PagerDutyResource
from assets.warehouse.partitions import every_month_tags
from assets.warehouse.resource import WarehouseResource
from pipelines.definitions import defs
from pipelines.demo import SANDBOX_PAGERDUTY_TOKEN, history_run_config, sandbox_resources, start_sandbox
from pipelines.sandbox import json_response
from pipelines.sandbox.pagerduty import PagerDutyApi, parse_time
from pipelines.synthetic.org import OrgSpec, generate, write_landing
from pipelines.synthetic.tickets import SHARED_PROJECT

FAST_RETRIES = {"timeout_seconds": 5, "max_attempts": 2, "base_delay_seconds": 0.01, "max_delay_seconds": 5}
# A real account's answer to GET /teams without the teams ability.
NO_TEAMS_ABILITY = {"error": {"message": "Required abilities are unavailable", "code": 2014,
                              "errors": ["The teams account ability is required to access teams"],
                              "missing_abilities": "teams"}}
# Every endpoint a nightly sync reads records with teams from.
TEAM_LISTING_PATHS = ("/services", "/incidents", "/incidents/{id}", "/log_entries", "/log_entries/{id}")


@pytest.fixture(scope="module")
def org():
    return generate(OrgSpec(seed=5, n_teams=3, n_months=6, incidents_per_head_month=2))


def pagerduty(sandbox) -> PagerDutyResource:
    return PagerDutyResource(api_token=SANDBOX_PAGERDUTY_TOKEN, base_url=sandbox.pagerduty_url,
                             ca_bundle_path=sandbox.ca_bundle_path, **FAST_RETRIES)


def materialize(asset, sandbox, warehouse, org, instance=None) -> dg.ExecuteInProcessResult:
    config = {"config": {"history_start": org.spec.start.isoformat()}} if asset is pagerduty_log_entries else {}
    return dg.materialize([asset], instance=instance, raise_on_error=False,
                          resources={"pagerduty": pagerduty(sandbox), "duckdb": WarehouseResource(database=str(warehouse))},
                          run_config={"ops": {asset.op.name: config}} if config else None)


def failure(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(str(event.event_specific_data.error) for event in result.all_events
                     if event.event_type_value == "STEP_FAILURE")


def warnings(instance: dg.DagsterInstance, result: dg.ExecuteInProcessResult) -> list[str]:
    return [record.user_message for record in instance.all_logs(result.run_id) if record.level == logging.WARNING]


def query(warehouse, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql(sql).fetchall()


def mark(warehouse) -> datetime:
    [(moment,)] = query(warehouse, "select high_water_mark from raw._sync_state where stream = 'pagerduty__log_entries'")
    return moment.astimezone(UTC)


# -- an account without the teams ability ----------------------------------------------------


@pytest.fixture
def teams_refused(monkeypatch):
    """The sandbox's /teams answers ``answer`` (status, body) from now on."""

    def refuse(status: int, body: dict) -> None:
        monkeypatch.setattr(PagerDutyApi, "_list_teams", lambda self, request, args: json_response(body, status))

    return refuse


def list_no_teams(sandbox) -> None:
    """Services, incidents and log entries name no team, as on an account without Teams."""

    def strip(body):
        for key in ("service", "services", "incident", "incidents", "log_entry", "log_entries"):
            records = body.get(key) if isinstance(body, dict) else None
            for record in records if isinstance(records, list) else [records] if isinstance(records, dict) else []:
                if "teams" in record:
                    record["teams"] = []
        return body

    for path in TEAM_LISTING_PATHS:
        sandbox.inject_fault("pagerduty", "rewrite", path=path, rewrite=strip, times=None)


def test_an_account_without_teams_syncs_no_teams_and_warns_what_that_means(org, tmp_path, teams_refused):
    teams_refused(402, NO_TEAMS_ABILITY)
    instance = dg.DagsterInstance.ephemeral()
    with start_sandbox(org) as sandbox:
        result = materialize(pagerduty_teams, sandbox, tmp_path / "warehouse.duckdb", org, instance)
        requests = sandbox.request_counts["pagerduty GET /teams"]
    assert result.success, failure(result)
    assert requests == 1  # a plan does not change on a retry
    assert query(tmp_path / "warehouse.duckdb", "select count(*) from raw.pagerduty__teams") == [(0,)]
    [materialization] = result.get_asset_materialization_events()
    assert materialization.materialization.metadata["available"].value is False
    [warning] = [w for w in warnings(instance, result) if "teams" in w]
    assert "HTTP 402" in warning and "The teams account ability is required to access teams" in warning
    assert "lacks the `teams` ability" in warning
    assert "pagerduty_services" in warning and "pagerduty_teams claims match nothing" in warning


def test_a_token_refused_the_teams_listing_fails_naming_the_token(org, tmp_path, teams_refused):
    # 403: the account has teams, which this token may not read; an empty listing would hide them.
    teams_refused(403, {"error": {"message": "Access Denied", "code": 2010}})
    with start_sandbox(org) as sandbox:
        result = materialize(pagerduty_teams, sandbox, tmp_path / "warehouse.duckdb", org)
    assert not result.success
    assert "HTTP 403" in failure(result) and "PAGERDUTY_API_TOKEN" in failure(result)


@pytest.mark.slow
def test_the_nightly_run_of_an_account_without_teams_builds_marts_models_and_report(tmp_path, teams_refused):
    org = generate(OrgSpec(seed=11, n_teams=6, n_months=9))
    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse.duckdb"
    write_landing(org, landing)
    # Mapped as such an account must be: by service id. One team still claims its PagerDuty team.
    owner = {service.pagerduty_id: service.team_at(org.as_of) for service in org.services}
    names = {team.key: team.name for team in org.teams}
    stale = org.teams[0].name
    write_team_map(landing / "team_map.yml", [
        {"team": team.name, "pagerduty_services": sorted(s for s, key in owner.items() if key == team.key),
         **({"pagerduty_teams": [stale]} if team.name == stale else {}),
         "jira_projects": [team.jira_project], "jira_components": [f"{SHARED_PROJECT}/{team.name}"],
         "hr_org_units": [team.hr_org_unit], "survey_groups": [team.name]}
        for team in org.teams])
    teams_refused(402, NO_TEAMS_ABILITY)
    instance = dg.DagsterInstance.ephemeral()
    with start_sandbox(org) as sandbox:
        list_no_teams(sandbox)
        result = defs().resolve_job_def("nightly").execute_in_process(
            run_config=history_run_config(org), resources=sandbox_resources(sandbox, warehouse, landing),
            tags=every_month_tags(), raise_on_error=False, instance=instance)
    assert result.success, failure(result)
    materialized = {event.asset_key.to_user_string() for event in result.get_asset_materialization_events()}
    assert {"raw/pagerduty__teams", "marts/fct_incidents", "marts/mart_team_month", "models/kpi_safety_effects",
            "models/kpi_correlations", "report/cio_report"} <= materialized
    assert query(warehouse, "select count(*) from raw.pagerduty__teams") == [(0,)]
    assert query(warehouse, "select count(*) from raw.pagerduty__incidents where json_array_length(payload -> 'teams') > 0") == [(0,)]
    # Every incident counts for the team claiming its service.
    incidents = query(warehouse, "select service_id, team, team_source from marts.fct_incidents")
    test_services = {service.pagerduty_id for service in org.services if service.is_test}
    assert len(incidents) == sum(i.merged_into is None and i.service_id not in test_services for i in org.incidents)
    assert {(service, team) for service, team, _ in incidents} <= {(s, names[key]) for s, key in owner.items()}
    assert all(team is not None for _, team, _ in incidents)
    assert query(warehouse, "select count(*) from models.kpi_safety_effects") != [(0,)]
    assert any("lacks the `teams` ability" in w for w in warnings(instance, result))
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    mapped = checks[("marts/fct_incidents", "pagerduty_entities_are_mapped")]
    assert mapped.metadata["unmapped"].value == []
    assert [claim for claim in mapped.metadata["claims_matching_nothing"].value if stale in str(claim)], \
        mapped.metadata["claims_matching_nothing"].value
    listing = checks[("raw/pagerduty__teams", "great_expectations")]
    assert "`teams` ability" in listing.description, listing.description


# -- windows over the offset cap -------------------------------------------------------------


@pytest.fixture
def storm(monkeypatch):
    """The sandbox's /log_entries?total=true reports ``per_second`` more entries for each second
    of ``seconds`` from ``start`` that the window asked for holds (an alert storm)."""

    def arm(start: datetime, seconds: int, per_second: int) -> None:
        page = PagerDutyApi._page

        def reporting_the_storm(self, request, collection, records):
            response = page(self, request, collection, records)
            since, until = request.args.get("since"), request.args.get("until")
            if collection == "log_entries" and request.args.get("total") == "true" and since and until:
                overlap = min(parse_time(until), start + timedelta(seconds=seconds)) - max(parse_time(since), start)
                if overlap > timedelta(0):
                    body = json.loads(response.get_data())
                    body["total"] += per_second * int(overlap.total_seconds())
                    response.set_data(json.dumps(body))
            return response

        monkeypatch.setattr(PagerDutyApi, "_page", reporting_the_storm)

    return arm


def storm_start(org) -> datetime:
    return sorted(incident.created_at for incident in org.incidents)[len(org.incidents) // 2].replace(
        second=0, microsecond=0)


def test_a_minute_over_the_cap_is_synced_whole_in_windows_of_seconds(org, tmp_path, storm):
    start = storm_start(org)
    storm(start, seconds=2, per_second=6_000)  # 12,000 entries in one minute, 6,000 a second
    instance = dg.DagsterInstance.ephemeral()
    with start_sandbox(org, rate_limit_per_minute=100_000) as sandbox:
        result = materialize(pagerduty_log_entries, sandbox, tmp_path / "warehouse.duckdb", org, instance)
        before = sandbox.request_counts["pagerduty GET /log_entries"]
        next_night = materialize(pagerduty_log_entries, sandbox, tmp_path / "warehouse.duckdb", org)
        requests = sandbox.request_counts["pagerduty GET /log_entries"] - before
    assert result.success and next_night.success, failure(result) + failure(next_night)
    served = sum(expected_log_entries(incident) for incident in org.incidents)
    assert query(tmp_path / "warehouse.duckdb", "select count(*) from raw.pagerduty__log_entries") == [(served,)]
    assert mark(tmp_path / "warehouse.duckdb") > start + timedelta(minutes=1)
    assert any("over the 10000 cap; narrowing" in w for w in warnings(instance, result))
    assert requests == 1  # past the storm, a quiet night costs one request again


def test_a_second_over_the_cap_stops_the_sync_there_saying_what_happened(org, tmp_path, storm):
    start = storm_start(org) + timedelta(seconds=17)
    storm(start, seconds=1, per_second=12_000)
    warehouse = tmp_path / "warehouse.duckdb"
    with start_sandbox(org, rate_limit_per_minute=100_000) as sandbox:
        result = materialize(pagerduty_log_entries, sandbox, warehouse, org)
    assert not result.success
    message = failure(result)
    second = start.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert f"12000 log_entries created in the one second from {second}" in message, message
    assert f"offset + limit <= {OFFSET_CAP}" in message and "whole seconds" in message
    assert "stops at this second on every run" in message
    # What came before that second is loaded, and the mark stands at it.
    assert mark(warehouse) == start
    [(before,)] = query(warehouse, "select count(*) from raw.pagerduty__log_entries")
    assert before == sum(1 for incident in org.incidents for moment in timeline(incident) if moment < start)


def timeline(incident) -> list[datetime]:
    """The times of the log entries the sandbox serves for ``incident`` (expected_log_entries)."""
    moments = [incident.created_at, incident.acknowledged_at, incident.resolved_at, incident.impact_recorded_at]
    if incident.reopened_at is not None:
        moments += [incident.first_resolved_at, incident.reopened_at]
    return [moment for moment in moments if moment is not None]


# -- until served inclusive ------------------------------------------------------------------


@pytest.fixture
def inclusive_until(monkeypatch):
    """The sandbox's windows also hold the records created in the second of ``until``."""
    in_window = PagerDutyApi._in_window

    def including_until(self, request, records, times, *, default_window):
        found = in_window(self, request, records, times, default_window=default_window)
        if request.args.get("until") is None or request.args.get("date_range") == "all":
            return found
        until = parse_time(request.args["until"])
        return found + records[bisect_left(times, until) : bisect_left(times, until + timedelta(seconds=1))]

    monkeypatch.setattr(PagerDutyApi, "_in_window", including_until)


def test_a_last_page_holding_only_records_at_until_is_taken_and_nothing_is_lost(org, inclusive_until):
    with start_sandbox(org, rate_limit_per_minute=100_000) as sandbox:
        api = sandbox._running_apps()["pagerduty"]
        times = [moment.replace(microsecond=0) for moment in api._log_entry_times]
        # A window of 180 days ending at a second that holds one entry, the 101st of the window
        # (so its second page holds that entry alone).
        end = next(moment for moment in times if times.count(moment) == 1
                   and bisect_left(times, moment) - bisect_left(times, moment - MAX_WINDOW) == 100)
        resource = pagerduty(sandbox)
        records = [record for page in resource.iter_window(resource.get_client(), "log_entries", end - MAX_WINDOW)
                   for record in page.records]
    expected = {entry.id for entry in api._log_entries if entry.created_at >= end - MAX_WINDOW}
    assert {record["id"] for record in records} == expected
