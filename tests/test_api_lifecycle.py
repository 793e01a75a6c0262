"""PagerDuty and Jira records as they change over their life, against the sandbox: a sync whose
``history_start`` would leave the marts' first months empty, and an action item closed through a
workflow that sets no resolution and edited long after (the fourth API trial's A4-1 and A4-4;
its A4-2, an incident resolved between the night's two PagerDuty syncs, is a dbt unit test of
fct_incidents). And a warehouse pointed at another PagerDuty account or Jira site (the fourth
operations trial's D3): the syncs stop instead of mixing the two."""

from dataclasses import replace
from datetime import timedelta
from types import SimpleNamespace

import dagster as dg
import duckdb
import pytest
from conftest import Warehouse

import assets.jira.assets as jira_assets
import assets.pagerduty.assets as pagerduty_assets
from assets.jira.assets import jira_issues
from assets.jira.resource import JiraResource
from assets.pagerduty.assets import pagerduty_incidents, pagerduty_log_entries, pagerduty_services, pagerduty_teams
from assets.pagerduty.resource import PagerDutyResource
from assets.warehouse.partitions import HISTORY_START
from assets.warehouse.resource import WarehouseResource
from pipelines.demo import (
    SANDBOX_HR_SALT,
    SANDBOX_JIRA_EMAIL,
    SANDBOX_JIRA_TOKEN,
    SANDBOX_PAGERDUTY_TOKEN,
    start_sandbox,
)
from pipelines.synthetic.learning import AUTOMATION_ACCOUNT
from pipelines.synthetic.model import ChangelogEntry
from pipelines.synthetic.org import OrgSpec, generate

SYNCS = {"raw/pagerduty__log_entries": pagerduty_log_entries, "raw/pagerduty__incidents": pagerduty_incidents,
         "raw/jira__issues": jira_issues}
FAST_RETRIES = {"timeout_seconds": 5, "max_attempts": 4, "base_delay_seconds": 0.01, "max_delay_seconds": 5}


def sync(sandbox, warehouse, history_start: str, assets: list, **config) -> dg.ExecuteInProcessResult:
    """``assets`` (of the windowed syncs) with ``history_start`` and ``config`` as their run
    config, in one run."""
    definitions = dg.Definitions(
        assets=list(assets),
        asset_checks=[*pagerduty_assets.quarantine_checks, *jira_assets.quarantine_checks],
        resources={
            "pagerduty": PagerDutyResource(api_token=SANDBOX_PAGERDUTY_TOKEN, base_url=sandbox.pagerduty_url,
                                           ca_bundle_path=sandbox.ca_bundle_path, **FAST_RETRIES),
            "jira": JiraResource(server_url=sandbox.jira_url, email=SANDBOX_JIRA_EMAIL, api_token=SANDBOX_JIRA_TOKEN,
                                 ca_bundle_path=sandbox.ca_bundle_path, identity_salt=SANDBOX_HR_SALT, **FAST_RETRIES),
            "duckdb": WarehouseResource(database=str(warehouse)),
        },
        jobs=[dg.define_asset_job("sync", selection=list(assets))])
    return definitions.resolve_job_def("sync").execute_in_process(
        run_config={"ops": {asset.op.name: {"config": {"history_start": history_start, **config}}
                            for asset in assets}},
        raise_on_error=False)


def step_failures(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Each failed step's error message, by the asset it materialises."""
    by_op = {asset.op.name: name for name, asset in SYNCS.items()}
    return {by_op[event.step_key]: event.event_specific_data.error.message for event in result.all_events
            if event.event_type_value == "STEP_FAILURE"}


@pytest.fixture(scope="module")
def org():
    return generate(OrgSpec(seed=3, n_teams=2, n_months=6))


# -- A4-1: a sync starting after the marts' first month ----------------------------------


@pytest.mark.parametrize("asset", list(SYNCS))
def test_a_sync_starting_after_the_marts_first_month_fails_before_any_request(org, tmp_path, asset):
    """With history_start 2024-07-01 the marts' months from 2024-01 would count no incidents and
    only the tickets updated since, and the models would fit them as zeros: each of the three
    syncs fails at once, naming its config, both dates, why and what to do, and asks nothing."""
    with start_sandbox(org) as sandbox:
        result = sync(sandbox, tmp_path / "warehouse.duckdb", "2024-07-01", assets=[SYNCS[asset]])
        requests = dict(sandbox.request_counts)
    assert not result.success
    message = step_failures(result)[asset]
    assert (f"{asset}: run config history_start 2024-07-01 is later than the marts' first month {HISTORY_START} "
            "(HISTORY_START in assets/warehouse/partitions.py)") in message, message
    assert "would count no incidents and no tickets" in message and "months of zeros" in message, message
    assert f"set history_start to {HISTORY_START} or earlier" in message, message
    assert "set HISTORY_START to 2024-07-01" in message, message
    assert requests == {}, requests


def test_a_sync_starting_mid_month_is_told_the_first_whole_month_to_start_the_marts_at(org, tmp_path):
    with start_sandbox(org) as sandbox:
        result = sync(sandbox, tmp_path / "warehouse.duckdb", "2024-07-15", assets=[pagerduty_incidents])
    assert "set HISTORY_START to 2024-08-01" in step_failures(result)["raw/pagerduty__incidents"]


def test_a_sync_starting_before_the_marts_first_month_runs(org, tmp_path):
    """An earlier start only syncs more than the marts show."""
    with start_sandbox(org) as sandbox:
        result = sync(sandbox, tmp_path / "warehouse.duckdb", "2023-10-01", assets=[pagerduty_log_entries])
        assert sandbox.request_counts["pagerduty GET /log_entries"] > 0
    assert result.success, step_failures(result)


# -- A4-4: an action item done without a resolution, edited long after ------------------


LABELLED_AFTER = timedelta(days=75)


def closed_without_a_resolution_and_labelled_later(org) -> dict[str, str]:
    """Action items (sub-tasks of reviews) closed in time, as a workflow that sets no resolution
    closes them (status Done, no resolution date), each given a label 75 days after it was done
    (before the cut-off): the label is the issue's last update and the changelog's last entry.
    Their keys, each with its Done transition's time."""
    chosen = {}
    for n, ticket in enumerate(org.tickets):
        if (ticket.parent_key is None or ticket.status != "Done" or ticket.resolved is None
                or ticket.resolved - ticket.created > timedelta(days=20)
                or ticket.resolved + LABELLED_AFTER >= org.as_of or len(chosen) == 3):
            continue
        labelled = ticket.resolved + LABELLED_AFTER
        chosen[ticket.key] = ticket.resolved.replace(tzinfo=None).isoformat(sep=" ")
        org.tickets[n] = replace(
            ticket, resolved=None, updated=labelled, labels=[*ticket.labels, "audit-2024"],
            changelog=[*ticket.changelog, ChangelogEntry(f"{ticket.id}9999", labelled, AUTOMATION_ACCOUNT, "labels",
                                                         "", "audit-2024")])
    assert len(chosen) == 3, "the organisation has too few action items closed early enough"
    return chosen


def test_an_action_item_done_without_a_resolution_closes_when_it_moved_to_done_not_at_a_later_edit(tmp_path, dbt):
    """The trial's case: closed in 4 to 20 days, labelled 75 days later; it stays closed when it
    moved to Done, in time (not 75 days late, the label's time)."""
    org = generate(OrgSpec(seed=3, n_teams=2, n_months=6))
    items = closed_without_a_resolution_and_labelled_later(org)
    warehouse_file = tmp_path / "warehouse.duckdb"
    with start_sandbox(org) as sandbox:
        result = sync(sandbox, warehouse_file, HISTORY_START, assets=[jira_issues])
    assert result.success, step_failures(result)
    warehouse = Warehouse(warehouse_file, dbt)
    warehouse.raw_rows("config__team_map", [{"team": team.name, "source": "jira_project", "identifier": team.jira_project}
                                            for team in org.teams])
    warehouse.build("+fct_review_action_items", "--exclude", "stg_survey__responses")
    stored = {key: (resolved, updated, labels) for key, resolved, updated, labels in warehouse.conn.execute(
        "select issue_key, resolved_at, updated_at, labels from staging.stg_jira__issues "
        "where issue_key in (select unnest(?))", [list(items)]).fetchall()}
    judged = {key: (str(closed_at), in_time) for key, closed_at, in_time in warehouse.conn.execute(
        "select issues.issue_key, items.closed_at, items.is_closed_in_time from marts.fct_review_action_items as items "
        "inner join staging.stg_jira__issues as issues on items.action_item_id = 'jira:' || issues.issue_id "
        "where issues.issue_key in (select unnest(?))", [list(items)]).fetchall()}
    warehouse.close()
    # As served: no resolution date, the label the last update.
    assert all(resolved is None and "audit-2024" in labels for resolved, _, labels in stored.values()), stored
    assert judged == {key: (done, True) for key, done in items.items()}


# -- D3: a warehouse pointed at another account or site ------------------------------------


def raw_counts(warehouse) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return {table: conn.execute(f"select count(*) from raw.{table}").fetchone()[0]
                for (table,) in conn.execute("select table_name from duckdb_tables() where schema_name = 'raw' "
                                             "and not starts_with(table_name, '_')").fetchall()}


def test_syncs_pointed_at_another_site_stop_naming_the_variable_instead_of_mixing_the_two(org, tmp_path):
    """Night 1 from one sandbox at 127.0.0.1, night 2 from another organisation's at
    localhost (another host, as another site or region is): each windowed sync stops, naming its
    variable, both addresses and what to do, and writes nothing; full_refresh (the same site at
    a new address) runs. A new port alone is the same site (the sandbox's change every run)."""
    warehouse = tmp_path / "warehouse.duckdb"
    with start_sandbox(org) as first:
        assert sync(first, warehouse, HISTORY_START, assets=list(SYNCS.values())).success
    with start_sandbox(org) as again:  # the same organisation on new ports: the demo's second run
        assert sync(again, warehouse, HISTORY_START, assets=list(SYNCS.values())).success
    before = raw_counts(warehouse)
    with start_sandbox(generate(OrgSpec(seed=11, n_teams=2, n_months=6))) as other:
        elsewhere = SimpleNamespace(ca_bundle_path=other.ca_bundle_path,
                                    **{name: getattr(other, name).replace("127.0.0.1", "localhost")
                                       for name in ("pagerduty_url", "jira_url")})
        result = sync(elsewhere, warehouse, HISTORY_START, assets=list(SYNCS.values()))
        failures = step_failures(result)
        message = failures["raw/jira__issues"]
        assert "JIRA_URL is https://localhost, but this warehouse's Jira issues came from https://127.0.0.1" in message
        assert "point PSAFE_WAREHOUSE at a new warehouse file" in message and "full_refresh: true" in message
        assert "PAGERDUTY_URL is https://localhost" in failures["raw/pagerduty__log_entries"]
        assert not result.success and raw_counts(warehouse) == before
        assert sync(elsewhere, warehouse, HISTORY_START, assets=[jira_issues], full_refresh=True).success


def test_a_listing_that_shares_no_id_with_the_stored_one_is_another_account(org, tmp_path):
    """A token for another account at the same PAGERDUTY_URL: the teams and services it lists
    share no id with those held, so the listing stops instead of adding the other account's."""
    warehouse = tmp_path / "warehouse.duckdb"

    def listed(sandbox):
        return dg.materialize([pagerduty_teams, pagerduty_services], raise_on_error=False, resources={
            "pagerduty": PagerDutyResource(api_token=SANDBOX_PAGERDUTY_TOKEN, base_url=sandbox.pagerduty_url,
                                           ca_bundle_path=sandbox.ca_bundle_path, **FAST_RETRIES),
            "duckdb": WarehouseResource(database=str(warehouse))})

    with start_sandbox(org) as first:
        assert listed(first).success
    before = raw_counts(warehouse)
    with start_sandbox(generate(OrgSpec(seed=11, n_teams=2, n_months=6))) as other:
        result = listed(other)
    messages = [e.event_specific_data.error.message for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert len(messages) == 2 and all("reaches another account" in m for m in messages), messages
    assert "PagerDuty lists none of the 2 teams this warehouse holds" in " ".join(messages)
    assert raw_counts(warehouse) == before
