"""Ingestion against the sandbox: incremental syncs through time, the API's limits, injected
faults (every fault on every endpoint a nightly sync calls: the figures of the README's
Reliability section), a run killed half-way and re-run, poison records in quarantine, real
payload shapes, the vendors' documented variations, the requests a sync costs, and secrets kept
out of logs, storage and files."""

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pagerduty
import pytest
from conftest import Warehouse, expected_log_entries

import assets.jira.assets as jira_assets
import assets.jira.resource as jira_resource
import assets.pagerduty.assets as pagerduty_assets
import assets.pagerduty.resource as pagerduty_resource
import pipelines.sandbox.pagerduty as pagerduty_sandbox
from assets.api_quarantine import ApiRequest, PoisonShare, Quarantined, without_quarantined, write_typable
from assets.api_retry import ApiError
from assets.jira.assets import jira_issues
from assets.jira.resource import JiraResource
from assets.landing.team_map import read_team_map
from assets.pagerduty.assets import pagerduty_incidents, pagerduty_log_entries, pagerduty_services, pagerduty_teams
from assets.pagerduty.resource import PagerDutyResource
from assets.pagerduty.reviews import pagerduty_incident_reviews
from assets.warehouse.resource import WarehouseResource
from benchmarks.ingestion import rate_limit_floor
from pipelines.demo import SANDBOX_JIRA_EMAIL, SANDBOX_JIRA_TOKEN, SANDBOX_PAGERDUTY_TOKEN, start_sandbox
from pipelines.sandbox.jira import JiraApi
from pipelines.sandbox.server import Sandbox
from pipelines.synthetic.org import OrgSpec, generate, write_landing

RAW_ASSETS = [pagerduty_teams, pagerduty_services, pagerduty_log_entries, pagerduty_incidents, jira_issues]
QUARANTINE_CHECKS = [*pagerduty_assets.quarantine_checks, *jira_assets.quarantine_checks]
SYNCED_OPS = ("raw__pagerduty__incidents", "raw__pagerduty__log_entries", "raw__jira__issues")
REPO = Path(__file__).resolve().parents[1]
FAST_RETRIES = {"timeout_seconds": 0.5, "max_attempts": 4, "base_delay_seconds": 0.01, "max_delay_seconds": 5}


@pytest.fixture(scope="module")
def org():
    # Busier than the default so a few incidents are open at any moment.
    return generate(OrgSpec(seed=5, n_teams=4, n_months=6, incidents_per_head_month=4))


def resources(sandbox, warehouse, **options) -> dict:
    return {
        "pagerduty": PagerDutyResource(api_token=SANDBOX_PAGERDUTY_TOKEN, base_url=sandbox.pagerduty_url,
                                       ca_bundle_path=sandbox.ca_bundle_path, **{**FAST_RETRIES, **options}),
        "jira": JiraResource(server_url=sandbox.jira_url, email=SANDBOX_JIRA_EMAIL, api_token=SANDBOX_JIRA_TOKEN,
                             ca_bundle_path=sandbox.ca_bundle_path, **{**FAST_RETRIES, **options}),
        "duckdb": WarehouseResource(database=str(warehouse)),
    }


def sync(org, sandbox, warehouse, instance=None, history_start=None, selection=None, config=None,
         **options) -> dg.ExecuteInProcessResult:
    """The raw API assets (``selection``: some of their definitions) and their quarantine checks,
    in one run; ``config``: more of the synced assets' config."""
    start = {"config": {"history_start": history_start or org.spec.start.isoformat(), **(config or {})}}
    definitions = dg.Definitions(assets=RAW_ASSETS, asset_checks=QUARANTINE_CHECKS,
                                 resources=resources(sandbox, warehouse, **options),
                                 jobs=[dg.define_asset_job("sync", selection=selection)])
    return definitions.resolve_job_def("sync").execute_in_process(
        run_config={"ops": {op: start for op in SYNCED_OPS
                            if selection is None or op in {asset.op.name for asset in selection}}},
        instance=instance, raise_on_error=False)


def failures(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(str(event.event_specific_data.error) for event in result.all_events
                     if event.event_type_value == "STEP_FAILURE")


def quarantine_checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {evaluation.asset_key.path[-1]: evaluation for evaluation in result.get_asset_check_evaluations()}


def quarantined(warehouse, stream: str) -> dict[str, dict]:
    rows = query(warehouse, "select record_id, reason, request, payload, attempts from quarantine.api_records "
                            f"where stream = '{stream}'")
    return {record_id: {"reason": reason, "request": json.loads(request),
                        "payload": json.loads(payload) if payload else None, "attempts": attempts}
            for record_id, reason, request, payload, attempts in rows}


def query(warehouse, sql):
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return conn.sql(sql).fetchall()


def served_state(org, moment):
    """What the sandbox shows at ``moment``: incident id -> status, and the log-entry count."""
    statuses, entries = {}, 0
    for incident in org.incidents:
        if incident.created_at >= moment:
            continue
        steps = [(incident.created_at, "triggered"), (incident.acknowledged_at, "acknowledged"),
                 (incident.first_resolved_at, "resolved"), (incident.reopened_at, "triggered"),
                 (incident.resolved_at, "resolved"), (incident.impact_recorded_at, None)]
        happened = sorted((at, status) for at, status in steps if at is not None and at < moment)
        statuses[incident.pagerduty_id] = [status for _, status in happened if status][-1]
        entries += len(happened)
    return statuses, entries


# -- incremental sync through time -------------------------------------------------------


def changed_before_relisting(org, first_night) -> set[str]:
    """Incidents whose status moved between ``first_night`` and the cut-off and that were
    created before the stretch a sync after ``first_night`` lists again (the hour before the
    newest incident it had seen)."""
    before, after = served_state(org, first_night)[0], served_state(org, org.as_of)[0]
    relisted_from = max(i.created_at for i in org.incidents if i.created_at < first_night) - timedelta(hours=1)
    return {i.pagerduty_id for i in org.incidents
            if i.pagerduty_id in before and before[i.pagerduty_id] != after[i.pagerduty_id]
            and i.created_at < relisted_from}


@pytest.fixture(scope="module")
def two_nights(org, tmp_path_factory):
    """A full sync with the sandbox some six weeks before the cut-off, then an incremental one
    at it. The first night falls half-way through a long incident that is older than the
    stretch the incremental sync lists again, so only its timeline can reveal the change."""
    warehouse = tmp_path_factory.mktemp("incremental") / "warehouse.duckdb"
    first_night = next(night for night in (
        (i.created_at + (i.resolved_at - i.created_at) / 2).replace(microsecond=0)
        for i in sorted(org.incidents, key=lambda i: (i.resolved_at or org.as_of) - i.created_at, reverse=True)
        if i.resolved_at and org.as_of - timedelta(days=60) <= i.created_at < org.as_of - timedelta(days=30)
    ) if changed_before_relisting(org, night))
    with start_sandbox(org, as_of=first_night) as sandbox:
        full = sync(org, sandbox, warehouse)
        after_full = {
            "incidents": dict(query(warehouse, "select id, payload ->> 'status' from raw.pagerduty__incidents")),
            "log_entries": query(warehouse, "select count(*) from raw.pagerduty__log_entries")[0][0],
            "issues": query(warehouse, "select count(*) from raw.jira__issues")[0][0],
        }
        full_requests = Counter(sandbox.request_counts)
        sandbox.set_as_of(org.as_of)
        incremental = sync(org, sandbox, warehouse)
        incremental_requests = Counter(sandbox.request_counts) - full_requests
    return warehouse, first_night, full, after_full, full_requests, incremental, incremental_requests


def test_full_sync_holds_what_the_api_showed_that_night(org, two_nights):
    warehouse, first_night, full, after_full, *_ = two_nights
    assert full.success
    statuses, entries = served_state(org, first_night)
    assert after_full["incidents"] == statuses
    assert after_full["log_entries"] == entries
    assert after_full["issues"] == sum(t.created < first_night for t in org.tickets)


def test_incremental_sync_picks_up_new_incidents_and_changes_to_old_ones(org, two_nights):
    warehouse, first_night, full, after_full, full_requests, incremental, incremental_requests = two_nights
    assert incremental.success
    statuses, entries = served_state(org, org.as_of)
    assert dict(query(warehouse, "select id, payload ->> 'status' from raw.pagerduty__incidents")) == statuses
    assert query(warehouse, "select count(*), count(distinct id) from raw.pagerduty__log_entries")[0] == (
        entries, entries)
    assert entries == sum(expected_log_entries(i) for i in org.incidents)
    # Old incidents whose status moved since the first night were fetched one by one.
    assert incremental_requests["pagerduty GET /incidents/{id}"] >= len(changed_before_relisting(org, first_night)) > 0
    # The second night asks only for the last six weeks, not the whole history again.
    assert incremental_requests["pagerduty GET /incidents"] < full_requests["pagerduty GET /incidents"] / 2
    marks = dict(query(warehouse, "select stream, high_water_mark from raw._sync_state"))
    assert set(marks) == {"pagerduty__incidents", "pagerduty__log_entries", "jira__issues"}
    metadata = incremental.asset_materializations_for_node("raw__jira__issues")[0].metadata
    assert metadata["mode"].value == "incremental"


def test_incremental_jira_sync_sees_new_tickets_and_their_later_transitions(org, two_nights):
    warehouse, first_night, *_ = two_nights
    served = dict(query(warehouse, "select payload ->> 'key', payload -> 'fields' -> 'status' ->> 'name' "
                                   "from raw.jira__issues"))
    assert served == {t.key: t.status for t in org.tickets}
    moved_on = [t for t in org.tickets if t.created < first_night and any(c.created >= first_night for c in t.changelog)]
    long_moved_on = [t for t in moved_on if len(t.changelog) > 40]
    assert moved_on and long_moved_on, "the fixture should have tickets (some with long changelogs) that moved on"
    # Every changelog is complete, long ones too (stored part + newest embedded page, or refetched).
    stored = dict(query(warehouse, "select id, list_transform(cast(payload -> 'changelog' -> 'histories' as json[]), "
                                   "lambda h: h ->> 'id') from raw.jira__issues"))
    assert stored == {t.id: [c.id for c in t.changelog] for t in org.tickets}


# -- the API's limits ----------------------------------------------------------------------


def test_full_windows_are_split_under_the_offset_cap_where_a_naive_client_fails(org, monkeypatch):
    # The 10,000 cap and 100-record pages, scaled down so a small organisation overflows
    # month-long windows.
    monkeypatch.setattr(pagerduty_sandbox, "OFFSET_CAP", 60)
    monkeypatch.setattr(pagerduty_resource, "OFFSET_CAP", 60)
    monkeypatch.setattr(pagerduty_resource, "PAGE_SIZE", 20)
    with start_sandbox(org) as sandbox:
        naive = pagerduty.RestApiV2Client(SANDBOX_PAGERDUTY_TOKEN, base_url=sandbox.pagerduty_url,
                                          verify=sandbox.ca_bundle_path)
        with pytest.raises(pagerduty.Error, match="400"):
            list(naive.iter_all("incidents", params={"date_range": "all"}))
        resource = resources(sandbox, "unused")["pagerduty"]
        start = datetime(org.spec.start.year, org.spec.start.month, 1, tzinfo=UTC)
        pages = list(resource.iter_window(resource.get_client(), "incidents", start))
    ids = [i["id"] for page in pages for i in page.records]
    assert sorted(ids) == sorted(i.pagerduty_id for i in org.incidents) and len(set(ids)) == len(ids)
    done = [page.window_done for page in pages if page.window_done]
    assert len(done) > 6, "month windows over the cap were split"
    assert done == sorted(done) and done[-1] == org.as_of


def test_windows_whose_total_is_null_are_split_at_the_offset_cap_never_asking_past_it(org, monkeypatch):
    # "The `total` field is `null` by default" (tests/specs/pagerduty/09-Pagination.md): a window
    # holding more than the cap is then seen only when its pages reach the cap with `more` still
    # true. It was read as a total of 0 and paged on to offset + limit > 10,000 (limit 0, sent
    # anyway): a 400, not retried, that stopped the sync every night. It is split instead.
    monkeypatch.setattr(pagerduty_sandbox, "OFFSET_CAP", 60)
    monkeypatch.setattr(pagerduty_resource, "OFFSET_CAP", 60)
    monkeypatch.setattr(pagerduty_resource, "PAGE_SIZE", 20)

    def total_unknown(body: dict) -> dict:
        body["total"] = None
        return body

    with start_sandbox(org) as sandbox:
        sandbox.inject_fault("pagerduty", "rewrite", path="/incidents", rewrite=total_unknown, times=None)
        resource = resources(sandbox, "unused")["pagerduty"]
        start = datetime(org.spec.start.year, org.spec.start.month, 1, tzinfo=UTC)
        pages = list(resource.iter_window(resource.get_client(), "incidents", start))
    ids = [i["id"] for page in pages for i in page.records]
    assert sorted(ids) == sorted(i.pagerduty_id for i in org.incidents) and len(set(ids)) == len(ids)
    assert all(1 <= page.request.params["limit"] and page.request.params["offset"] + page.request.params["limit"] <= 60
               for page in pages)
    done = [page.window_done for page in pages if page.window_done]
    assert len(done) > 6, "windows over the cap were split"
    assert done == sorted(done) and done[-1] == org.as_of


def test_windows_are_asked_for_checked_and_marked_in_the_whole_seconds_the_request_sends(org, sandbox_without_faults,
                                                                                          monkeypatch):
    # A resized window (a float times a timedelta) ended at a fraction of a second: the request
    # sent since/until truncated to the second, the page check held the records to the exact
    # bounds and refused a page of records from that second as another window's (until the run
    # failed), and the mark claimed [trunc(end), end), which no request had covered.
    monkeypatch.setattr(pagerduty_sandbox, "OFFSET_CAP", 60)
    monkeypatch.setattr(pagerduty_resource, "OFFSET_CAP", 60)
    monkeypatch.setattr(pagerduty_resource, "PAGE_SIZE", 20)
    resource = resources(sandbox_without_faults, "unused")["pagerduty"]
    start = datetime(org.spec.start.year, org.spec.start.month, 1, tzinfo=UTC)
    pages = list(resource.iter_window(resource.get_client(), "incidents", start))
    done = [page for page in pages if page.window_done]
    assert len(done) > 6, "windows over the cap were resized"
    for page in done:
        assert page.window_done == min(datetime.fromisoformat(page.request.params["until"]), org.as_of)
    # A window starting within a second (a mark stored before) asks from that whole second, and
    # takes a page whose records were all created in it.
    monkeypatch.setattr(pagerduty_resource, "PAGE_SIZE", 1)
    incident = sorted(org.incidents, key=lambda i: i.created_at)[-5]
    since = incident.created_at.replace(microsecond=0) + timedelta(milliseconds=500)
    pages = list(resource.iter_window(resource.get_client(), "incidents", since))
    assert pages[0].records[0]["id"] == incident.pagerduty_id
    assert pages[0].request.params["since"] == incident.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert pages[-1].window_done == org.as_of


@pytest.mark.parametrize("skew", [timedelta(days=-200), timedelta(hours=-2), timedelta(days=400)])
def test_windows_end_at_the_apis_clock_whatever_the_workers_says(org, sandbox_without_faults, monkeypatch, skew):
    class SkewedClock(datetime):
        @classmethod
        def now(cls, tz=None):
            return org.as_of + skew

    monkeypatch.setattr(pagerduty_resource, "datetime", SkewedClock)
    resource = resources(sandbox_without_faults, "unused")["pagerduty"]
    start = datetime(org.spec.start.year, org.spec.start.month, 1, tzinfo=UTC)
    pages = list(resource.iter_window(resource.get_client(), "incidents", start))
    ids = [incident["id"] for page in pages for incident in page.records]
    assert sorted(ids) == sorted(i.pagerduty_id for i in org.incidents) and len(set(ids)) == len(ids)
    assert [page.window_done for page in pages if page.window_done][-1] == org.as_of

def test_six_month_spans_are_refused(org):
    with start_sandbox(org) as sandbox:
        resource = resources(sandbox, "unused")["pagerduty"]
        with pytest.raises(ApiError, match="6 months"):
            resource.get_json(resource.get_client(), "incidents",
                              {"since": "2024-01-01T00:00:00Z", "until": "2024-07-15T00:00:00Z"})


# -- faults ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faulty_sandbox(org):
    with start_sandbox(org) as sandbox:
        yield sandbox


@pytest.fixture
def sandbox_without_faults(faulty_sandbox):
    faulty_sandbox.clear_faults()
    yield faulty_sandbox
    faulty_sandbox.clear_faults()


TRANSIENT_FAULTS = [
    ("rate_limit", {"wait_seconds": 0}),
    ("rate_limit_without_headers", {}),
    ("server_error", {"status": 502}),
    ("timeout", {"delay_seconds": 1.0}),
    ("truncated_page", {}),
    ("replayed_page", {"after": 1}),
]


@pytest.mark.parametrize("kind, options", TRANSIENT_FAULTS, ids=[k for k, _ in TRANSIENT_FAULTS])
def test_pagerduty_recovers_from_transient_faults(org, sandbox_without_faults, kind, options):
    sandbox = sandbox_without_faults
    resource = resources(sandbox, "unused")["pagerduty"]
    client = resource.get_client()
    before = sandbox.request_counts["pagerduty GET /incidents"]
    sandbox.inject_fault("pagerduty", kind, path="/incidents", times=2, **options)
    window = list(resource.iter_window(client, "incidents", org.as_of - timedelta(days=60)))
    served = [i["id"] for page in window for i in page.records]
    expected = [i.pagerduty_id for i in sorted(org.incidents, key=lambda i: (i.created_at, i.number))
                if org.as_of - timedelta(days=60) <= i.created_at]
    assert served == expected
    assert sandbox.request_counts["pagerduty GET /incidents"] - before >= 3  # the two faulted ones were retried


@pytest.mark.parametrize("kind, options", TRANSIENT_FAULTS, ids=[k for k, _ in TRANSIENT_FAULTS])
def test_jira_recovers_from_transient_faults(org, sandbox_without_faults, kind, options):
    sandbox = sandbox_without_faults
    resource = resources(sandbox, "unused")["jira"]
    client = resource.get_client()
    since = org.as_of - timedelta(days=60)
    sandbox.inject_fault("jira", kind, path="/rest/api/3/search/jql", times=2, **options)
    pages = list(resource.iter_issues(client, since))
    keys = [issue["key"] for page in pages for issue in page.issues]
    assert sorted(keys) == sorted(t.key for t in org.tickets if t.updated >= since)
    assert len(set(keys)) == len(keys) and not any(page.poison for page in pages)


def test_rate_limit_headers_are_honoured(sandbox_without_faults):
    sandbox = sandbox_without_faults
    resource = resources(sandbox, "unused")["pagerduty"]
    sandbox.inject_fault("pagerduty", "rate_limit", path="/teams", wait_seconds=1)
    started = time.monotonic()
    assert len(list(resource.iter_all(resource.get_client(), "teams"))) == 4
    assert time.monotonic() - started >= 1.0  # ratelimit-reset: 1, not the 0.01 s backoff


@pytest.mark.parametrize("service, path", [("pagerduty", "/teams"), ("jira", "/rest/api/3/search/jql")])
def test_a_429_storm_fails_after_bounded_retries(org, sandbox_without_faults, service, path):
    sandbox = sandbox_without_faults
    sandbox.inject_fault(service, "rate_limit_without_headers", path=path, times=None)
    key = f"{service} GET {path}"
    before = sandbox.request_counts[key]
    resource = resources(sandbox, "unused")[service]
    with pytest.raises(ApiError, match="still failing after 4 attempts \\(HTTP 429\\)") as raised:
        if service == "pagerduty":
            list(resource.iter_all(resource.get_client(), "teams"))
        else:
            list(resource.iter_issues(resource.get_client(), org.as_of - timedelta(days=30)))
    assert raised.value.retryable
    assert sandbox.request_counts[key] - before == 4


def test_a_server_asking_for_too_long_a_wait_fails_at_once(sandbox_without_faults):
    sandbox = sandbox_without_faults
    sandbox.inject_fault("pagerduty", "rate_limit", path="/teams", wait_seconds=3600)
    resource = resources(sandbox, "unused")["pagerduty"]
    with pytest.raises(ApiError, match="asks to wait 3600 s"):
        list(resource.iter_all(resource.get_client(), "teams"))


@pytest.mark.parametrize("service", ["pagerduty", "jira"])
def test_an_expired_token_fails_clearly_without_showing_it(org, sandbox_without_faults, service):
    sandbox = sandbox_without_faults
    sandbox.inject_fault(service, "expired_token", times=None)
    resource = resources(sandbox, "unused")[service]
    with pytest.raises(ApiError, match="401") as raised:
        if service == "pagerduty":
            list(resource.iter_all(resource.get_client(), "teams"))
        else:
            resource.site_time(resource.get_client())
    message = str(raised.value)
    assert "expired" in message and not raised.value.retryable
    for secret in secrets():
        assert secret not in message


def secrets() -> list[str]:
    basic = base64.b64encode(f"{SANDBOX_JIRA_EMAIL}:{SANDBOX_JIRA_TOKEN}".encode()).decode()
    return [SANDBOX_PAGERDUTY_TOKEN, SANDBOX_JIRA_TOKEN, basic]


# -- a run killed half-way, then re-run ------------------------------------------------------


def test_a_run_failing_half_way_then_rerun_leaves_every_row_once(org, tmp_path, monkeypatch):
    # Smaller batches than the 5,000 rows a write may hold, so some rows commit before the failure:
    # 300 log entries, and each page of 100 issues.
    monkeypatch.setattr(pagerduty_assets, "WRITE_BATCH_ROWS", 300)
    monkeypatch.setattr(jira_assets, "WRITE_BATCH_ROWS", 100)
    warehouse = tmp_path / "warehouse.duckdb"
    instance = dg.DagsterInstance.ephemeral()
    with start_sandbox(org) as sandbox:
        # Both tokens expire mid-sync: after some log-entry pages and some issue pages.
        sandbox.inject_fault("pagerduty", "expired_token", path="/log_entries", after=15, times=None)
        sandbox.inject_fault("jira", "expired_token", path="/rest/api/3/search/jql", after=1, times=None)
        failed = sync(org, sandbox, warehouse, instance=instance)
        partial = {
            "log_entries": query(warehouse, "select count(*) from raw.pagerduty__log_entries")[0][0],
            "issues": query(warehouse, "select count(*) from raw.jira__issues")[0][0],
        }
        sandbox.clear_faults()
        rerun = sync(org, sandbox, warehouse, instance=instance)
    assert not failed.success and rerun.success
    entries = sum(expected_log_entries(i) for i in org.incidents)
    assert 0 < partial["log_entries"] < entries and 0 < partial["issues"] < len(org.tickets)
    assert query(warehouse, "select count(*), count(distinct id) from raw.pagerduty__log_entries")[0] == (
        entries, entries)
    assert query(warehouse, "select count(*), count(distinct id) from raw.jira__issues")[0] == (
        len(org.tickets), len(org.tickets))
    assert query(warehouse, "select count(*) from raw.pagerduty__incidents")[0][0] == len(org.incidents)

    failure = next(e for e in failed.all_events if e.event_type_value == "STEP_FAILURE")
    assert "PAGERDUTY_API_TOKEN" in str(failure.event_specific_data.error) or "JIRA_API_TOKEN" in str(
        failure.event_specific_data.error)
    # Nothing the run recorded (logs, errors, metadata) holds a credential.
    recorded = "\n".join(str(record) for run in (failed, rerun) for record in instance.all_logs(run.run_id))
    assert "401" in recorded
    for secret in secrets():
        assert secret not in recorded


KILLABLE_SYNC = """
import sys
import dagster as dg
sys.path.insert(0, "tests")
import assets.pagerduty.assets
from test_ingestion import RAW_ASSETS, resources
assets.pagerduty.assets.WRITE_BATCH_ROWS = 300  # rows commit before the kill
from types import SimpleNamespace
pagerduty_url, jira_url, ca, warehouse, history_start = sys.argv[1:]
sandbox = SimpleNamespace(pagerduty_url=pagerduty_url, jira_url=jira_url, ca_bundle_path=ca)
start = {"config": {"history_start": history_start}}
dg.materialize(RAW_ASSETS, resources=resources(sandbox, warehouse), run_config={"ops": {
    op: start for op in ("raw__pagerduty__incidents", "raw__pagerduty__log_entries", "raw__jira__issues")}})
"""


@pytest.mark.slow
def test_a_process_killed_mid_sync_then_rerun_leaves_every_row_once(org, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with start_sandbox(org) as sandbox:
        # Slow pages so the kill lands half-way through the log entries.
        sandbox.inject_fault("pagerduty", "timeout", path="/log_entries", delay_seconds=0.05, times=None)
        worker = subprocess.Popen(
            [sys.executable, "-c", KILLABLE_SYNC, sandbox.pagerduty_url, sandbox.jira_url, sandbox.ca_bundle_path,
             str(warehouse), org.spec.start.isoformat()],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while sandbox.request_counts["pagerduty GET /log_entries"] < 15 and time.monotonic() < deadline:
            assert worker.poll() is None, "the sync ended before it could be killed"
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        sandbox.clear_faults()
        partial = query(warehouse, "select count(*) from raw.pagerduty__log_entries")[0][0]
        rerun = sync(org, sandbox, warehouse)
    entries = sum(expected_log_entries(i) for i in org.incidents)
    assert rerun.success and 0 < partial < entries
    assert query(warehouse, "select count(*), count(distinct id) from raw.pagerduty__log_entries")[0] == (
        entries, entries)
    assert query(warehouse, "select count(*), count(distinct id) from raw.pagerduty__incidents")[0] == (
        len(org.incidents), len(org.incidents))
    assert query(warehouse, "select count(*) from raw.jira__issues")[0][0] == len(org.tickets)


def test_api_assets_carry_an_exponential_retry_policy():
    for asset in RAW_ASSETS:
        policy = asset.op.retry_policy
        assert (policy.max_retries, policy.backoff) == (3, dg.Backoff.EXPONENTIAL), asset.key
        assert [policy.calculate_delay(n) for n in (1, 2, 3)] == [30, 90, 210]


# -- poison records: quarantined, retried, never fatal ---------------------------------------


def first_of(body: dict, entity: str, count: int) -> list[dict]:
    return body[entity][:count]


def test_log_entries_that_cannot_be_parsed_are_quarantined_and_retried_until_they_load(org, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    spoiled: dict[str, str] = {}

    def spoil(body: dict) -> dict:
        # "Unless otherwise noted, any field in the PagerDuty API can contain the value null"
        # (tests/specs/pagerduty/06-Types.md): an entry without its time, one without its incident.
        undated, orphan = first_of(body, "log_entries", 2)
        undated["created_at"], orphan["incident"] = None, None
        spoiled.update({undated["id"]: "created_at", orphan["id"]: "incident.id"})
        return body

    with start_sandbox(org) as sandbox:
        sandbox.inject_fault("pagerduty", "rewrite", path="/log_entries", rewrite=spoil)
        first = sync(org, sandbox, warehouse)
        held_then = {row[0] for row in query(warehouse, "select id from raw.pagerduty__log_entries")}
        in_quarantine = quarantined(warehouse, "pagerduty__log_entries")
        later = sync(org, sandbox, warehouse)
        refetches = sandbox.request_counts["pagerduty GET /log_entries/{id}"]
    entries = sum(expected_log_entries(i) for i in org.incidents)
    assert first.success and len(held_then) == entries - 2 and not held_then & set(spoiled)
    assert set(in_quarantine) == set(spoiled)
    for entry_id, field in spoiled.items():
        record = in_quarantine[entry_id]
        assert record["reason"].startswith("unparseable:") and field in record["reason"]
        assert record["payload"]["id"] == entry_id
        assert record["request"]["method"] == "GET" and record["request"]["path"] == "/log_entries"
        assert record["request"]["params"]["offset"] == 0 and "since" in record["request"]["params"]
    check = quarantine_checks(first)["pagerduty__log_entries"]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["quarantined"].value == 2 and set(check.metadata["ids"].value) == set(spoiled)
    # The next run asks for them by id; the API now sends them whole, so they load and leave.
    assert later.success and refetches == 2
    assert query(warehouse, "select count(*), count(distinct id) from raw.pagerduty__log_entries")[0] == (
        entries, entries)
    assert quarantined(warehouse, "pagerduty__log_entries") == {}
    assert quarantine_checks(later)["pagerduty__log_entries"].passed


def test_too_many_records_that_cannot_load_fail_the_sync_as_a_systematic_problem(org, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"

    def undate(body: dict) -> dict:  # a format change: every entry's time unreadable
        for entry in body["log_entries"]:
            entry["created_at"] = entry["created_at"].replace("T", " at ")
        return body

    with start_sandbox(org) as sandbox:
        sandbox.inject_fault("pagerduty", "rewrite", path="/log_entries", rewrite=undate, times=None)
        result = sync(org, sandbox, warehouse)
    message = failures(result)
    assert not result.success
    assert "raw.pagerduty__log_entries: 100 of the 100 records received could not be loaded" in message
    assert "systematic problem" in message and "max_quarantined_share" in message
    # Nothing was loaded past them and the mark did not move: the next run starts over.
    assert query(warehouse, "select count(*) from raw._sync_state where stream = 'pagerduty__log_entries'") == [(0,)]
    assert len(quarantined(warehouse, "pagerduty__log_entries")) == 100


def test_the_share_of_poison_a_sync_tolerates():
    request = ApiRequest("GET", "/log_entries")
    poison = [Quarantined(f"R{n}", "unparseable: created_at None", request) for n in range(6)]
    share = PoisonShare("pagerduty__log_entries", 0.05)
    share.add(3, poison[:1])
    share.check()  # one bad record in a quiet night's three: poison, not a pattern
    share.add(97, poison[1:5])
    share.check()  # 5 of 100: at the share
    share.add(0, poison[5:])
    with pytest.raises(ApiError, match=r"6 of the 100 records received could not be loaded \(6%; by reason: "
                                       r"unparseable \(6\)\)") as raised:
        share.check()
    assert "R0, R1, R2, R3, R4" in str(raised.value) and not raised.value.retryable

def test_a_jira_issue_whose_changelog_cannot_be_completed_is_quarantined_not_fatal(org, tmp_path):
    # The shape a real site sent (issue 14's report): the search embeds "total": 2 and no
    # histories, and /issue/{key}/changelog lists none. Before, the whole sync failed on it.
    warehouse = tmp_path / "warehouse.duckdb"
    victim = next(t for t in sorted(org.tickets, key=lambda t: (t.updated, t.key)) if len(t.changelog) >= 2)

    def embed_two_unreadable(body: dict) -> dict:
        for issue in body["issues"]:
            if issue["key"] == victim.key:
                issue["changelog"] = {"startAt": 0, "maxResults": 0, "total": 2, "histories": []}
        return body

    def list_none(body: dict) -> dict:
        if f"/issue/{victim.key}/changelog" in body["self"]:
            body.update(values=[], total=0, isLast=True)
        return body

    with start_sandbox(org) as sandbox:
        # Every search response of the first night (times=None): a page asked for again after a
        # client timeout (a loaded CI machine) must carry the same broken changelog.
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/search/jql", rewrite=embed_two_unreadable,
                             times=None)
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/issue/{issueIdOrKey}/changelog", rewrite=list_none,
                             times=None)
        first = sync(org, sandbox, warehouse)
        held_then = {row[0] for row in query(warehouse, "select payload ->> 'key' from raw.jira__issues")}
        in_quarantine = quarantined(warehouse, "jira__issues")
        sandbox.clear_faults()
        later = sync(org, sandbox, warehouse)
        fetched_alone = sandbox.request_counts["jira GET /rest/api/3/issue/{issueIdOrKey}"]
    assert first.success, failures(first)
    assert held_then == {t.key for t in org.tickets} - {victim.key}
    [(issue_id, record)] = in_quarantine.items()
    assert issue_id == victim.id and record["payload"]["key"] == victim.key
    assert record["reason"].startswith(f"changelog_incomplete: {victim.key}'s changelog says 2 entries")
    assert record["request"]["path"] == f"/rest/api/3/issue/{victim.id}/changelog"
    assert quarantine_checks(first)["jira__issues"].metadata["ids"].value == [victim.id]
    # Retried by id on the next run; whole again, it loads with its complete changelog.
    assert later.success and fetched_alone == 1 and quarantined(warehouse, "jira__issues") == {}
    [(histories,)] = query(warehouse, "select list_transform(cast(payload -> 'changelog' -> 'histories' as json[]), "
                                      f"lambda h: h ->> 'id') from raw.jira__issues where id = '{victim.id}'")
    assert histories == [c.id for c in victim.changelog]


def removed_issues(result: dg.ExecuteInProcessResult) -> int:
    [materialization] = [m for m in result.asset_materializations_for_node("raw__jira__issues")]
    return materialization.metadata["removed"].value


def test_issues_deleted_in_jira_leave_the_warehouse_at_the_next_sync(org, tmp_path):
    # Jira Cloud reports no deletions: an issue deleted there (or moved out of the token's
    # sight) is simply no longer listed. Before, it counted in the marts for ever.
    warehouse = tmp_path / "warehouse.duckdb"
    referenced = {key for t in org.tickets for key in [t.parent_key, *(other for _, other in t.links)] if key}
    deleted = [t for t in org.tickets if t.key not in referenced][:2]
    with start_sandbox(org) as sandbox:
        assert sync(org, sandbox, warehouse, selection=[jira_issues]).success
    held = {row[0] for row in query(warehouse, "select id from raw.jira__issues")}
    assert held == {t.id for t in org.tickets}
    remaining = replace(org, tickets=[t for t in org.tickets if t not in deleted])
    with start_sandbox(remaining) as sandbox:
        result = sync(remaining, sandbox, warehouse, selection=[jira_issues])
        # One id listing: 5,000 ids a page.
        listings = sandbox.request_counts["jira GET /rest/api/3/search/jql"]
    assert result.success, failures(result)
    assert {row[0] for row in query(warehouse, "select id from raw.jira__issues")} == held - {t.id for t in deleted}
    assert removed_issues(result) == 2 and listings == 2  # the night's search and the listing
    # Listed again (the token sees their project again): fetched by id, though older than the mark.
    with start_sandbox(org) as sandbox:
        restored = sync(org, sandbox, warehouse, selection=[jira_issues])
    assert restored.success and {row[0] for row in query(warehouse, "select id from raw.jira__issues")} == held
    [materialization] = restored.asset_materializations_for_node("raw__jira__issues")
    assert materialization.metadata["fetched_unheld"].value == 2


def test_an_id_listing_page_may_carry_empty_fields_but_not_the_searchs_fields():
    # Whether Jira sends an id-only issue as {"id": ...} or with "fields": {}, it is listed;
    # a page of the issues' own search, or one listed before, is another answer.
    check = jira_resource._id_page(None, set())
    assert check({"issues": [{"id": "10001"}, {"id": "10002", "fields": {}}]}) is None
    assert "another search's page" in check({"issues": [{"id": "10001", "fields": {"summary": "Disk full"}}]})
    assert "earlier page" in jira_resource._id_page("token", {"10001"})({"issues": [{"id": "10001"}]})
    assert "no nextPageToken" in check({"issues": [{"id": "10001"}], "isLast": False})


def test_a_stale_id_listing_removes_nothing(org, tmp_path):
    # A cache answering the listing with an older one: it lacks the issue this very run received,
    # and a quarantined issue, which must still be asked for again rather than dropped.
    warehouse = tmp_path / "warehouse.duckdb"
    newest = max(org.tickets, key=lambda t: t.updated)
    referenced = {key for t in org.tickets for key in [t.parent_key, *(other for _, other in t.links)] if key}
    gone, poisoned = [t for t in org.tickets if t.key not in referenced and t is not newest][:2]

    def poison(body: dict) -> dict:
        for issue in body["issues"]:
            if issue["id"] == poisoned.id and issue.get("fields"):
                issue["fields"]["updated"] = "yesterday"
        return body

    def poison_alone(body: dict) -> dict:  # still unreadable when asked for by id
        if body.get("id") == poisoned.id:
            body["fields"]["updated"] = "yesterday"
        return body

    def without_newest_and_poisoned(body: dict) -> dict:
        if body["issues"] and not body["issues"][0].get("fields"):
            body["issues"] = [issue for issue in body["issues"] if issue["id"] not in (newest.id, poisoned.id)]
        return body

    with start_sandbox(org, as_of=newest.updated - timedelta(days=2)) as sandbox:
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/search/jql", rewrite=poison, times=None)
        assert sync(org, sandbox, warehouse, selection=[jira_issues]).success
    assert set(quarantined(warehouse, "jira__issues")) == {poisoned.id}
    shown = replace(org, tickets=[t for t in org.tickets if t is not gone])
    with start_sandbox(shown) as sandbox:
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/search/jql", rewrite=without_newest_and_poisoned,
                             times=None)
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/issue/{issueIdOrKey}", rewrite=poison_alone,
                             times=None)
        result = sync(shown, sandbox, warehouse, selection=[jira_issues])
    assert result.success and removed_issues(result) == 0
    assert query(warehouse, f"select count(*) from raw.jira__issues where id in {(gone.id, newest.id)}") == [(2,)]
    assert set(quarantined(warehouse, "jira__issues")) == {poisoned.id}


def test_most_issues_missing_at_once_are_kept_unless_accepted(org, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    with start_sandbox(org) as sandbox:
        assert sync(org, sandbox, warehouse, selection=[jira_issues]).success
    kept = replace(org, tickets=[t for t in org.tickets if t.project_key == org.tickets[0].project_key][:3])
    instance = dg.DagsterInstance.ephemeral()
    with start_sandbox(kept) as sandbox:
        cautious = sync(kept, sandbox, warehouse, instance, selection=[jira_issues])
        assert cautious.success and removed_issues(cautious) == 0
        assert query(warehouse, "select count(*) from raw.jira__issues")[0][0] == len(org.tickets)
        assert "run the sync once with config accept_mass_removal: true" in "\n".join(
            str(record) for record in instance.all_logs(cautious.run_id))
        accepted = sync(kept, sandbox, warehouse, selection=[jira_issues], config={"accept_mass_removal": True})
    assert accepted.success and removed_issues(accepted) == len(org.tickets) - 3


def issue_updated_at(ticket, moment: datetime) -> datetime:
    """When ``ticket`` was last updated as the sandbox serves the organisation at ``moment``."""
    return max([entry.created for entry in ticket.changelog if entry.created < moment], default=ticket.created)


def stored_updates(warehouse) -> dict[str, str]:
    return dict(query(warehouse, "select id, payload -> 'fields' ->> 'updated' from raw.jira__issues"))


def nights_with_an_edit_mid_search(org, page: int) -> tuple[datetime, datetime, datetime]:
    """A night and the one before it, and a moment after it, such that the night's search (``page``
    issues a page) holds on its first page an issue edited before that moment, and right after that
    page an issue updated since the night before and not edited again: pushed past the page
    boundary when the edit lands while the search pages."""
    for days in range(2, 90):
        night = org.as_of - timedelta(days=days)
        before, after = night - timedelta(days=1), night + timedelta(days=1)
        window = sorted((t for t in org.tickets
                         if t.created < night and issue_updated_at(t, night) >= before - timedelta(hours=1)),
                        key=lambda t: issue_updated_at(t, night))
        if (len(window) > page and any(issue_updated_at(t, after) > night for t in window[:page])
                and before < issue_updated_at(window[page], night) == issue_updated_at(window[page], after)):
            return before, night, after
    raise AssertionError("no night with an edit that moves an issue of the search's first page")


def edits_after_the_first_page(sandbox, after, edited: list[str]):
    """A rewrite of the search's answers that, once it has served a page of issues, moves the site
    to ``after``: people edit issues, some of them on the page just read (their keys in ``edited``)."""
    def rewrite(body: dict) -> dict:
        if body["issues"] and body["issues"][0].get("fields") and not edited:
            edited.append(body["issues"][0]["key"])
            sandbox.set_as_of(after)
        return body

    return rewrite


def test_an_issue_an_edit_pushes_past_a_search_page_is_received_that_night(org, tmp_path, monkeypatch):
    # The search pages `updated >= mark` in `updated` order: an issue of a page already read that is
    # edited meanwhile moves to the end, every later issue moves back a place, and the first of the
    # next page was never received. The mark then passed it: stale for good. An issue received
    # twice in a pass is the sign; the search is read again from there.
    monkeypatch.setattr(jira_resource, "SEARCH_PAGE_SIZE", 5)
    before, night, after = nights_with_an_edit_mid_search(org, 5)
    warehouse, truth = tmp_path / "warehouse.duckdb", tmp_path / "truth.duckdb"
    edited: list[str] = []
    with start_sandbox(org, as_of=before) as sandbox:
        assert sync(org, sandbox, warehouse, selection=[jira_issues]).success
        sandbox.set_as_of(night)
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/search/jql",
                             rewrite=edits_after_the_first_page(sandbox, after, edited), times=None)
        # Time to render the edits before the first page is answered (else it is asked for again, after them).
        result = sync(org, sandbox, warehouse, selection=[jira_issues], timeout_seconds=30)
        sandbox.clear_faults()
        assert sync(org, sandbox, truth, selection=[jira_issues]).success  # a full sync of the site as it is now
    assert result.success, failures(result)
    assert edited and stored_updates(warehouse) == stored_updates(truth)
    [materialization] = result.asset_materializations_for_node("raw__jira__issues")
    assert materialization.metadata["search_passes"].value == 2  # read again once, from the moved issue's place


@pytest.mark.slow
def test_a_sync_stopped_after_an_edit_pushed_an_issue_past_a_page_resumes_before_it(org, tmp_path, monkeypatch):
    # A long sync commits its mark with each batch, before the end of the pass would show the moved
    # issue twice: a run stopped there must not leave a mark past the issue the move skipped.
    monkeypatch.setattr(jira_resource, "SEARCH_PAGE_SIZE", 2)
    monkeypatch.setattr(jira_assets, "WRITE_BATCH_ROWS", 2)
    before, night, after = nights_with_an_edit_mid_search(org, 2)
    warehouse, truth = tmp_path / "warehouse.duckdb", tmp_path / "truth.duckdb"
    edited: list[str] = []
    with start_sandbox(org, as_of=before) as sandbox:
        assert sync(org, sandbox, warehouse, selection=[jira_issues]).success
        sandbox.set_as_of(night)
        sandbox.inject_fault("jira", "expired_token", path="/rest/api/3/search/jql", after=2, times=None)
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/search/jql",
                             rewrite=edits_after_the_first_page(sandbox, after, edited), times=None)
        stopped = sync(org, sandbox, warehouse, selection=[jira_issues], timeout_seconds=30)
        sandbox.clear_faults()
        resumed = sync(org, sandbox, warehouse, selection=[jira_issues])
        assert sync(org, sandbox, truth, selection=[jira_issues]).success
    assert edited and not stopped.success and resumed.success, failures(resumed)
    assert stored_updates(warehouse) == stored_updates(truth)


def test_a_search_that_keeps_receiving_an_issue_twice_leaves_the_mark_where_it_was(org, tmp_path, monkeypatch):
    # Edits that keep moving issues while the search pages (or a search that keeps answering an issue
    # twice): after a few passes the sync stops reading again, but the mark does not move past what
    # the passes may have skipped, so the next night reads the window again.
    monkeypatch.setattr(jira_resource, "SEARCH_PAGE_SIZE", 5)
    before, night, _ = nights_with_an_edit_mid_search(org, 5)
    warehouse = tmp_path / "warehouse.duckdb"
    first: list[dict] = []

    def first_issue_again_at_the_end(body: dict) -> dict:
        if body["issues"] and body["issues"][0].get("fields"):
            first[:] = first or [json.loads(json.dumps(body["issues"][0]))]
            if not body.get("nextPageToken"):
                body["issues"].append(first[0])
        return body

    instance = dg.DagsterInstance.ephemeral()
    with start_sandbox(org, as_of=before) as sandbox:
        assert sync(org, sandbox, warehouse, selection=[jira_issues]).success
        [(old_mark,)] = query(warehouse, "select high_water_mark from raw._sync_state where stream = 'jira__issues'")
        sandbox.set_as_of(night)
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/search/jql", rewrite=first_issue_again_at_the_end,
                             times=None)
        result = sync(org, sandbox, warehouse, instance, selection=[jira_issues])
    assert result.success, failures(result)
    [(mark,)] = query(warehouse, "select high_water_mark from raw._sync_state where stream = 'jira__issues'")
    assert mark == max(old_mark, jira_resource.parse_jira_time(first[0]["fields"]["updated"])) < night
    assert "the next run reads them again" in "\n".join(str(record) for record in instance.all_logs(result.run_id))


def test_a_live_issue_the_id_listing_misses_while_it_pages_is_kept(org, tmp_path, monkeypatch):
    # An issue deleted while the listing pages (in key order) moves every later issue back a place:
    # the first of the next page is never listed. Before, that live issue was removed as deleted.
    # Only an issue Jira no longer serves by id leaves the warehouse.
    monkeypatch.setattr(jira_resource, "ID_SEARCH_PAGE_SIZE", 5)
    warehouse = tmp_path / "warehouse.duckdb"
    referenced = {key for t in org.tickets for key in [t.parent_key, *(other for _, other in t.links)] if key}
    recent = {t.id for t in org.tickets if t.updated >= org.as_of - timedelta(hours=2)}  # the night's search has them
    deleted = next(t for t in org.tickets if t.key not in referenced and t.id not in recent)
    missed: list[str] = []
    firsts: list[str] = []

    def skip_the_first_of_a_later_page(body: dict) -> dict:
        issues = body["issues"]
        if not issues or issues[0].get("fields"):
            return body
        if not missed and firsts and issues[0]["id"] not in recent:
            missed.append(issues[0]["id"])
        firsts.append(issues[0]["id"])
        if missed and issues[0]["id"] == missed[0]:
            body["issues"] = issues[1:]
        return body

    with start_sandbox(org) as sandbox:
        assert sync(org, sandbox, warehouse, selection=[jira_issues]).success
    remaining = replace(org, tickets=[t for t in org.tickets if t is not deleted])
    with start_sandbox(remaining) as sandbox:
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/search/jql", rewrite=skip_the_first_of_a_later_page,
                             times=None)
        result = sync(remaining, sandbox, warehouse, selection=[jira_issues])
    assert result.success, failures(result)
    assert missed and missed[0] != deleted.id
    assert {row[0] for row in query(warehouse, "select id from raw.jira__issues")} == {t.id for t in remaining.tickets}
    assert removed_issues(result) == 1


def test_an_issue_created_while_the_id_listing_pages_is_drift_not_a_replayed_page(org, tmp_path, monkeypatch):
    # An issue created with a key before the listing's cursor moves every later issue on a place:
    # each later page starts with the previous page's last issue. Before, that failed the step as a
    # replayed page after four attempts; an issue listed twice is counted once.
    monkeypatch.setattr(jira_resource, "ID_SEARCH_PAGE_SIZE", 5)
    originals: list[list[dict]] = []

    def shifted_by_a_creation(body: dict) -> dict:
        issues = body["issues"]
        if not issues or issues[0].get("fields"):
            return body
        firsts = [page[0]["id"] for page in originals]
        if issues[0]["id"] not in firsts:
            originals.append(list(issues))
        index = [page[0]["id"] for page in originals].index(issues[0]["id"])
        if index:
            body["issues"] = [originals[index - 1][-1], *(issues[:-1] if body.get("nextPageToken") else issues)]
        return body

    logged: list[str] = []
    with start_sandbox(org) as sandbox:
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/search/jql", rewrite=shifted_by_a_creation,
                             times=None)
        jira = resources(sandbox, tmp_path / "warehouse.duckdb")["jira"]
        listed = jira.issue_ids(jira.get_client(), datetime.combine(org.spec.start, datetime.min.time(), UTC),
                                logged.append)
    assert len(originals) > 2 and listed == {t.id for t in org.tickets}
    assert not any("again" in message or "replay" in message for message in logged), logged
    # A page every id of which an earlier page listed is still another answer (a replay).
    check = jira_resource._id_page("token", {"10001", "10002"})
    assert check({"issues": [{"id": "10002"}, {"id": "10003"}]}) is None
    assert "earlier page again" in check({"issues": [{"id": "10001"}, {"id": "10002"}]})


def test_an_issue_a_typed_raw_column_cannot_hold_is_quarantined_not_fatal(org, tmp_path):
    # The raw table keeps component names as a list of text (assets/warehouse/raw_tables.py):
    # an issue whose components arrive as one string cannot be written there. It is set aside
    # with the field named, and every other issue of its page loads.
    warehouse = tmp_path / "warehouse.duckdb"
    victim = sorted(org.tickets, key=lambda t: (t.updated, t.key))[0]

    def components_as_text(body: dict) -> dict:
        for issue in body["issues"]:
            if issue["key"] == victim.key and "fields" in issue:  # not the id listing's
                issue["fields"]["components"] = "Payments"
        return body

    with start_sandbox(org) as sandbox:
        # Every answer that carries the issue carries it so (the first search answer need not).
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/search/jql", rewrite=components_as_text,
                             times=None)
        result = sync(org, sandbox, warehouse)
    assert result.success, failures(result)
    held = {row[0] for row in query(warehouse, "select payload ->> 'key' from raw.jira__issues")}
    assert held == {t.key for t in org.tickets} - {victim.key}
    [(issue_id, record)] = quarantined(warehouse, "jira__issues").items()
    assert issue_id == victim.id and record["payload"]["fields"]["components"] == "Payments"
    assert record["reason"] == "unparseable: $.fields.components 'Payments' is not a valid varchar[]"
    assert record["request"]["path"] == "/rest/api/3/search/jql"
    # The issue came on the first page, written in one batch with the pages after it: the
    # request named is its page's (no page token), not the batch's last.
    assert len(org.tickets) > 100 and "nextPageToken" not in record["request"]["params"]


def incident_at(incident_id: str, resolved_at: str, number: int | str = 1) -> dict:
    return resolved_incident(incident_id, number, "2024-05-01T09:00:00Z", resolved_at)


def write_pages(warehouse: Path, pages: list) -> tuple[list[str], list[Quarantined], dict[str, str]]:
    """write_typable on a fresh warehouse: the ids it wrote, what it set aside, and the stored
    resolve time of each incident."""
    set_aside: list[Quarantined] = []
    with duckdb.connect(str(warehouse)) as conn:
        written = write_typable(conn, "pagerduty__incidents", pages, set_aside.extend)
        held = dict(conn.execute("select id, payload ->> 'resolved_at' from raw.pagerduty__incidents").fetchall())
    return [record["id"] for record in written], set_aside, held


def test_a_batch_of_pages_sets_aside_an_untypable_record_with_its_own_pages_request(tmp_path):
    # The syncs write several pages at once; a record the typed columns cannot hold is named
    # with the request of the page that returned it, and the rest of the batch loads.
    first, second = (ApiRequest("GET", "/incidents", {"offset": offset}) for offset in (0, 100))
    pages = [([incident_at("P1", "2024-05-01T09:30:00Z", number="two"), incident_at("P2", "2024-05-01T10:00:00Z")], first),
             ([incident_at("P3", "2024-05-01T12:10:00Z")], second)]
    written, set_aside, held = write_pages(tmp_path / "warehouse.duckdb", pages)
    assert written == sorted(held) == ["P2", "P3"]
    assert [(record.record_id, record.request) for record in set_aside] == [("P1", first)]
    assert set_aside[0].reason == "unparseable: $.incident_number 'two' is not a valid integer"


def test_a_record_on_two_pages_of_a_batch_is_written_or_set_aside_as_its_last_page_has_it(tmp_path):
    # An API serves a record edited while it is paged through again on a later page: the
    # later copy is the newer one, and stands whether it loads or not.
    first, second = (ApiRequest("GET", "/incidents", {"offset": offset}) for offset in (0, 100))
    edited = [([incident_at("P1", "2024-05-01T09:30:00Z")], first), ([incident_at("P1", "2024-05-01T11:00:00Z")], second)]
    written, set_aside, held = write_pages(tmp_path / "edited.duckdb", edited)
    assert written == ["P1"] and not set_aside and held == {"P1": "2024-05-01T11:00:00Z"}
    spoiled = [([incident_at("P1", "2024-05-01T09:30:00Z"), incident_at("P2", "2024-05-01T10:00:00Z")], first),
               ([incident_at("P1", "2024-05-01T11:00:00Z", number="one")], second)]
    written, set_aside, held = write_pages(tmp_path / "spoiled.duckdb", spoiled)
    # The older copy is not written: written, it would take the newer one out of quarantine.
    assert written == ["P2"] and list(held) == ["P2"]
    assert [(record.record_id, record.request) for record in set_aside] == [("P1", second)]


def test_records_quarantined_from_a_page_are_dropped_from_the_earlier_pages_waiting_to_be_written():
    first, second = (ApiRequest("GET", "/incidents", {"offset": offset}) for offset in (0, 100))
    pending = [([incident_at("P1", "2024-05-01T09:30:00Z"), incident_at("P2", "2024-05-01T10:00:00Z")], first)]
    poison = [Quarantined("P1", "unparseable: created_at None", second)]
    assert [[record["id"] for record in records] for records, _ in without_quarantined(pending, poison)] == [["P2"]]


def sync_reviews(sandbox, warehouse, history_start: str) -> dg.ExecuteInProcessResult:
    """PagerDuty's incidents, then their reviews, in one run."""
    definitions = dg.Definitions(
        assets=[pagerduty_teams, pagerduty_services, pagerduty_incidents, pagerduty_incident_reviews],
        resources=resources(sandbox, warehouse), jobs=[dg.define_asset_job("sync")])
    return definitions.resolve_job_def("sync").execute_in_process(
        run_config={"ops": {"raw__pagerduty__incidents": {"config": {"history_start": history_start}}}},
        raise_on_error=False)


def test_pagerduty_reviews_load_with_their_action_items_and_a_poison_review_waits_in_quarantine(org, tmp_path):
    # The generator writes reviews in PagerDuty for incidents resolved in its last 45 days, the
    # sync's default window; the other incidents' /review answers 404 (no review), no error.
    warehouse = tmp_path / "warehouse.duckdb"
    served = [review for review in org.incident_reviews if review.created_at < org.as_of]
    assert len(served) > 2, "the organisation should have reviews in PagerDuty"
    victim = served[0]

    def created_yesterday(body: dict) -> dict:
        if body["incident_review"]["id"] == victim.id:
            body["incident_review"]["created_at"] = "yesterday"
        return body

    with start_sandbox(org) as sandbox:
        sandbox.inject_fault("pagerduty", "rewrite", path="/incidents/{id}/review", rewrite=created_yesterday,
                             times=None)
        first = sync_reviews(sandbox, warehouse, org.spec.start.isoformat())
        assert first.success, failures(first)
        held = {row[0] for row in query(warehouse, "select id from raw.pagerduty__incident_reviews")}
        assert held == {review.id for review in served} - {victim.id}
        [(record_id, record)] = quarantined(warehouse, "pagerduty__incident_reviews").items()
        assert record_id == victim.id and record["request"]["path"] == f"/incidents/{victim.incident_id}/review"
        assert record["reason"] == ("unparseable: created_at 'yesterday' is not an ISO 8601 date-time with seconds "
                                    "and an offset")
        items = {row[0] for row in query(warehouse, "select id from raw.pagerduty__review_action_items")}
        assert items == {item.id for review in served for item in review.action_items if item.created_at < org.as_of}

        sandbox.clear_faults()
        second = sync_reviews(sandbox, warehouse, org.spec.start.isoformat())
    assert second.success, failures(second)
    held = {row[0] for row in query(warehouse, "select id from raw.pagerduty__incident_reviews")}
    assert held == {review.id for review in served} and not quarantined(warehouse, "pagerduty__incident_reviews")


@pytest.mark.slow
def test_an_incident_the_api_refuses_is_quarantined_then_loads_when_served_again(org, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    night = next(org.as_of - timedelta(days=days) for days in range(1, 60)
                 if changed_before_relisting(org, org.as_of - timedelta(days=days)))
    with start_sandbox(org, as_of=night) as sandbox:
        assert sync(org, sandbox, warehouse).success
        sandbox.set_as_of(org.as_of)
        # The first incident fetched again (its timeline changed) is answered 404 by a proxy.
        sandbox.inject_fault("pagerduty", "server_error", path="/incidents/{id}", status=404)
        second = sync(org, sandbox, warehouse)
        [(refused, record)] = quarantined(warehouse, "pagerduty__incidents").items()
        sandbox.clear_faults()
        third = sync(org, sandbox, warehouse)
    assert second.success and third.success
    assert record["reason"].startswith(f"refused: GET /incidents/{refused}: HTTP 404")
    assert record["request"] == {"method": "GET", "path": f"/incidents/{refused}", "params": {}}
    assert quarantined(warehouse, "pagerduty__incidents") == {}
    statuses = dict(query(warehouse, "select id, payload ->> 'status' from raw.pagerduty__incidents"))
    assert statuses == served_state(org, org.as_of)[0]


# -- real payload shapes -------------------------------------------------------------------

# Part of a captured `GET /incidents/P31FVLZ/log_entries` answer (an account from 2013, as a Go
# client's test fixture carries it; found through the code search index): its acknowledge entry
# names the acknowledging user without a `type`, as old accounts' entries do. Kept as captured
# (the trigger agent's odd service_reference to a user id included); the notify, assign and
# escalate entries between them are left out, as no metric reads them.
CAPTURED_2013_TIMELINE = [
    {"id": "PVPXJJC", "type": "trigger_log_entry", "summary": "Triggered through the website",
     "created_at": "2013-03-06T20:28:46Z",
     "agent": {"id": "PT23IWX", "type": "service_reference", "summary": "Tim Wright",
               "self": "https://api.pagerduty.com/services/PT23IWX",
               "html_url": "https://effect-tech.pagerduty.com/services/PT23IWX"},
     "channel": {"summary": "Martian's are attacking", "type": "web"},
     "service": {"id": "P4672E4", "type": "service_reference", "summary": "Test Service"},
     "incident": {"id": "P31FVLZ", "type": "incident_reference",
                  "summary": "[#12] GO009: Create from go program updated"},
     "teams": [], "contexts": [], "event_details": {"description": "Test incident"}},
    {"id": "PKU5VMR", "type": "acknowledge_log_entry", "summary": "Acknowledged by Tim Wright",
     "self": "https://api.pagerduty.com/log_entries/PKU5VMR", "html_url": None,
     "created_at": "2013-03-06T20:29:30Z",
     "agent": {"id": "PT23IWX", "summary": "Tim Wright", "self": "https://api.pagerduty.com/users/PT23IWX",
               "html_url": "https://effect-tech.pagerduty.com/users/PT23IWX"},
     "channel": {"type": "phone"},
     "service": {"id": "P4672E4", "type": "service_reference", "summary": "Test Service"},
     "incident": {"id": "P31FVLZ", "type": "incident_reference"}, "teams": [], "contexts": [], "event_details": {}},
    {"id": "P36T0K8", "type": "unacknowledge_log_entry", "summary": "Unacknowledged by timeout",
     "created_at": "2013-03-06T20:59:30Z",
     "agent": {"id": "P4672E4", "type": "service_reference", "summary": "Test Service",
               "self": "https://api.pagerduty.com/services/P4672E4"},
     "channel": {"type": "timeout"},
     "incident": {"id": "P31FVLZ", "type": "incident_reference"}, "teams": [], "contexts": []},
    {"id": "PPV5KG7", "type": "resolve_log_entry", "summary": "Resolved by Tim Wright", "note": "Fixed",
     "created_at": "2013-03-06T21:33:15Z",
     "agent": {"id": "PT23IWX", "type": "user_reference", "summary": "Tim Wright",
               "self": "https://api.pagerduty.com/users/PT23IWX"},
     "channel": {"type": "website"},
     "incident": {"id": "P31FVLZ", "type": "incident_reference"}, "teams": [], "contexts": [], "event_details": {}},
]


def resolved_incident(incident_id: str, number: int, created_at: str, resolved_at: str) -> dict:
    return {"id": incident_id, "incident_number": number, "status": "resolved", "urgency": "high",
            "created_at": created_at, "updated_at": resolved_at, "resolved_at": resolved_at,
            "service": {"id": "P4672E4", "type": "service_reference"}}


def integration_resolve(entry_id: str, incident_id: str, at: str, agent_type: str) -> dict:
    """A resolve through the Events API: the agent is the service's integration, typed as the
    spec's AgentReference ('integration_reference') or as the integration itself
    (IntegrationReference, e.g. 'generic_events_api_inbound_integration_reference'), with its
    API link under the service (the spec's examples: /services/PIJ90N7/integrations/PQ12345)."""
    return {"id": entry_id, "type": "resolve_log_entry", "created_at": at, "summary": "Resolved through the API",
            "agent": {"id": "PQ12345", "type": agent_type, "summary": "Events API v2",
                      "self": "https://api.pagerduty.com/services/P4672E4/integrations/PQ12345"},
            "channel": {"type": "api"}, "incident": {"id": incident_id, "type": "incident_reference"}, "teams": []}


def trigger(entry_id: str, incident_id: str, at: str) -> dict:
    return {"id": entry_id, "type": "trigger_log_entry", "created_at": at,
            "agent": {"id": "P4672E4", "type": "service_reference"}, "channel": {"type": "api"},
            "incident": {"id": incident_id, "type": "incident_reference"}, "teams": []}


def test_a_person_acknowledging_without_an_agent_type_and_integrations_resolving_are_read_as_such(warehouse):
    warehouse.raw_json("pagerduty__incidents", [
        resolved_incident("P31FVLZ", 12, "2013-03-06T20:28:46Z", "2013-03-06T21:33:15Z"),
        resolved_incident("PINTEG1", 13, "2024-05-01T10:00:00Z", "2024-05-01T10:20:00Z"),
        resolved_incident("PINTEG2", 14, "2024-05-02T10:00:00Z", "2024-05-02T10:05:00Z"),
    ])
    warehouse.raw_json("pagerduty__log_entries", [
        *CAPTURED_2013_TIMELINE,
        trigger("R1", "PINTEG1", "2024-05-01T10:00:00Z"),
        integration_resolve("R2", "PINTEG1", "2024-05-01T10:20:00Z", "integration_reference"),
        trigger("R3", "PINTEG2", "2024-05-02T10:00:00Z"),
        integration_resolve("R4", "PINTEG2", "2024-05-02T10:05:00Z", "generic_events_api_inbound_integration_reference"),
    ])
    warehouse.raw_rows("config__team_map", [{"team": "Ops", "source": "pagerduty_service", "identifier": "P4672E4"}])
    warehouse.raw_json("pagerduty__services", [{"id": "P4672E4", "name": "Checkout", "teams": []}])
    warehouse.raw_json("pagerduty__teams", [])
    warehouse.build("stg_config__team_map", "stg_pagerduty__teams", "stg_pagerduty__services",
                    "stg_pagerduty__incidents", "stg_pagerduty__log_entries", "int_team_owners",
                    "int_pagerduty_team_owners", "int_pagerduty_incident_teams", "fct_incidents")
    entries = dict(warehouse.conn.execute(
        "select log_entry_id, agent_type from staging.stg_pagerduty__log_entries").fetchall())
    assert entries["PKU5VMR"] == "user_reference"  # typed by its link, /users/PT23IWX
    assert entries["R2"] == entries["R4"] == "integration_reference"
    incidents = {row["incident_id"]: row for row in warehouse.rows("select * from marts.fct_incidents")}
    captured = incidents["P31FVLZ"]
    assert captured["tta_seconds"] == 44 and captured["ttr_seconds"] == 3869  # 20:28:46 -> 20:29:30 -> 21:33:15
    assert not captured["is_auto_resolved"]
    assert incidents["PINTEG1"]["is_auto_resolved"] and incidents["PINTEG2"]["is_auto_resolved"]
    assert incidents["PINTEG1"]["tta_seconds"] is None


@pytest.mark.slow
def test_a_note_added_after_an_incident_was_last_updated_does_not_refetch_it_every_night(org, tmp_path):
    # On the live API a note (annotate_log_entry) does not move the incident's updated_at. A
    # sync that compared entry times with updated_at fetched every noted incident again, every
    # night, forever.
    warehouse = tmp_path / "warehouse.duckdb"
    # The first night falls between an old incident's last status change and its note.
    first_night = next(
        last_change + pagerduty_sandbox.NOTE_DELAY / 2
        for incident in sorted(org.incidents, key=lambda i: i.resolved_at or org.as_of, reverse=True)
        if incident.number % pagerduty_sandbox.NOTED_EVERY == 0 and incident.resolved_at
        for last_change in [max(at for at in (incident.resolved_at, incident.impact_recorded_at) if at)]
        if last_change + pagerduty_sandbox.NOTE_DELAY < org.as_of and incident.created_at < last_change - timedelta(hours=2)
    )
    with start_sandbox(org, as_of=first_night, variations={"notes"}) as sandbox:
        assert sync(org, sandbox, warehouse).success
        noted = query(warehouse, "select count(*) from raw.pagerduty__log_entries as notes "
                                 "join raw.pagerduty__incidents as incidents on incidents.id = (notes.payload "
                                 "-> 'incident' ->> 'id') where notes.payload ->> 'type' = 'annotate_log_entry' and "
                                 "(notes.payload ->> 'created_at')::timestamptz > "
                                 "(incidents.payload ->> 'updated_at')::timestamptz")[0][0]
        nights = []
        for moment in (org.as_of, org.as_of):  # a night with news, then a quiet one
            sandbox.set_as_of(moment)
            before = Counter(sandbox.request_counts)
            assert sync(org, sandbox, warehouse).success
            nights.append(Counter(sandbox.request_counts) - before)
    assert noted > 10, "the fixture should hold incidents noted after their last update"
    # Incidents noted (or otherwise changed) since the first night are fetched once...
    assert 0 < nights[0]["pagerduty GET /incidents/{id}"]
    # ... and not again: a quiet night costs one request per stream, whatever notes exist (and
    # Jira's id listing, which finds deleted issues: a second /search/jql).
    assert nights[1] == Counter({f"{service} GET {path}": 1 for service, path in (
        ("pagerduty", "/teams"), ("pagerduty", "/services"), ("pagerduty", "/log_entries"),
        ("pagerduty", "/incidents"), ("jira", "/rest/api/3/serverInfo"))}) + Counter(
        {"jira GET /rest/api/3/search/jql": 2})
    statuses = dict(query(warehouse, "select id, payload ->> 'status' from raw.pagerduty__incidents"))
    assert statuses == served_state(org, org.as_of)[0]


# -- what a sync costs -----------------------------------------------------------------------


def test_a_quiet_account_costs_one_request_per_empty_window_then_one_per_stream_a_night(tmp_path):
    # Six months of incidents and a history that starts years before them, as an account
    # created long ago and quiet since: 164 + 164 requests every night before (one per empty
    # month, both streams), and a /teams request per stream only to read the clock.
    org = generate(OrgSpec(seed=3, n_teams=2, n_months=6))
    warehouse = tmp_path / "warehouse.duckdb"
    history_start = "2013-01-01"
    with start_sandbox(org) as sandbox:
        assert sync(org, sandbox, warehouse, history_start=history_start).success
        full = Counter(sandbox.request_counts)
        assert sync(org, sandbox, warehouse, history_start=history_start).success
        nightly = Counter(sandbox.request_counts) - full
    span = org.as_of - datetime.fromisoformat(history_start).replace(tzinfo=UTC)
    windows = -(-span // pagerduty_resource.MAX_WINDOW)
    pages = {path: -(-len(records) // pagerduty_resource.PAGE_SIZE) for path, records in (
        ("/incidents", org.incidents), ("/log_entries", range(sum(expected_log_entries(i) for i in org.incidents))))}
    for path, needed in pages.items():
        # An empty window costs one request; the windows holding records, their pages (plus the
        # first page again where a window outgrew the offset cap: none at this size).
        assert full[f"pagerduty GET {path}"] <= windows + needed, path
        assert nightly[f"pagerduty GET {path}"] == 1, path
    assert full["pagerduty GET /teams"] == full["pagerduty GET /services"] == 1
    assert full["jira GET /rest/api/3/serverInfo"] == 1 and "jira GET /rest/api/3/field" not in full
    # The first sync's search pages, and no id listing: an empty warehouse has nothing to delete.
    assert full["jira GET /rest/api/3/search/jql"] == -(-len(org.tickets) // jira_resource.SEARCH_PAGE_SIZE)
    # Jira: the night's search, and the id listing that finds issues deleted there.
    assert nightly["jira GET /rest/api/3/search/jql"] == 2 and sum(nightly.values()) == 7, nightly


def test_the_benchmark_states_the_rate_limit_floor_in_minutes_or_seconds():
    # 960 requests a minute: 136 requests take 8.5 s at that pace, 5,136 take 5.35 minutes.
    assert rate_limit_floor(136, 960) == "8.5 s" and rate_limit_floor(5_136, 960) == "5.3 min"


def test_a_refused_listing_fails_with_what_to_fix_and_never_reads_the_clock_from_it(org, sandbox_without_faults):
    # server_time() once read the Date header of any answer to /teams, a 403 included.
    sandbox = sandbox_without_faults
    sandbox.inject_fault("pagerduty", "server_error", path="/log_entries", status=403, times=None)
    resource = resources(sandbox, "unused")["pagerduty"]
    with pytest.raises(ApiError, match="HTTP 403") as raised:
        list(resource.iter_window(resource.get_client(), "log_entries", org.as_of - timedelta(days=10)))
    assert "PAGERDUTY_API_TOKEN" in str(raised.value) and raised.value.status == 403
    assert not raised.value.retryable


# -- the vendors' documented variations ----------------------------------------------------

VARIED_MARTS = ("fct_incidents", "fct_tickets", "fct_incident_repeats", "fct_incident_reviews", "fct_review_action_items")


def marts_of(warehouse_file, team_map: list[dict], dbt) -> dict[str, list[tuple]]:
    """The incident, ticket and learning marts built by dbt from a synced warehouse and ``team_map``."""
    warehouse = Warehouse(warehouse_file, dbt)
    try:
        warehouse.raw_rows("config__team_map", team_map)
        warehouse.build(*(f"+{mart}" for mart in VARIED_MARTS), "--exclude", "stg_survey__responses")
        return {mart: warehouse.conn.sql(f"select * from marts.{mart} order by all").fetchall()
                for mart in VARIED_MARTS}
    finally:
        warehouse.close()


@pytest.mark.slow
def test_the_vendors_documented_variations_make_the_same_marts(org, tmp_path, dbt):
    """Notes, agents without a type, integrations as agents, timestamps in the account's zone,
    references without links, null fields; search pages without isLast and shorter than asked,
    changelog pages without isLast, changelogs not embedded: the same incidents and tickets
    reach the marts, with the same durations, flags, teams and classes."""
    team_map = read_team_map(write_landing(org, tmp_path / "landing")["team_map"])
    # Translated issue type names change fct_tickets.issue_type by design (the id stays):
    # test_jira_rule_matching reads them.
    jira_variations = set(JiraApi.VARIATIONS) - {"translated_issue_type_names"}
    variations = {"plain": set(), "varied": {*pagerduty_sandbox.PagerDutyApi.VARIATIONS, *jira_variations}}
    marts = {}
    for name, served in variations.items():
        warehouse = tmp_path / f"{name}.duckdb"
        with start_sandbox(org, variations=served) as sandbox:
            result = sync(org, sandbox, warehouse)
        assert result.success, failures(result)
        marts[name] = marts_of(warehouse, team_map, dbt)
    for mart in VARIED_MARTS:
        assert marts["varied"][mart] == marts["plain"][mart], mart
    incidents = {row[0] for row in marts["plain"]["fct_incidents"]}
    assert len(incidents) > 600 and len(marts["plain"]["fct_tickets"]) == len(org.tickets)


# -- every fault on every endpoint a nightly sync calls ------------------------------------
#
# The run recovers to raw tables identical to those of a clean run, or fails with a message
# naming what to fix and a re-run recovers them; no credential reaches the run's log. The
# README's Reliability figures come from these tests.
#
# Two nights: the first (clean, but with one log entry and one Jira issue sent unreadable, so
# both are quarantined) is synced once into a template warehouse; each case copies it and syncs
# the second night with the fault armed. The second night calls every endpoint: the listings,
# `GET /incidents/{id}` for incidents whose timelines changed, `GET /log_entries/{id}` and
# `GET /issue/{id}` for the quarantined records, `/issue/{id}/changelog` for issues whose
# changelog grew (the sandbox embeds none: the changelog_not_embedded variation).

PAGERDUTY = [pagerduty_teams, pagerduty_services, pagerduty_log_entries, pagerduty_incidents]
JIRA = [jira_issues]
ENDPOINTS = {
    "pagerduty": ["/teams", "/services", "/log_entries", "/incidents", "/incidents/{id}", "/log_entries/{id}"],
    "jira": ["/rest/api/3/serverInfo", "/rest/api/3/search/jql", "/rest/api/3/issue/{issueIdOrKey}/changelog",
             "/rest/api/3/issue/{issueIdOrKey}"],
}
# Each transient fault strikes twice (within the 4 attempts the tests' resources make).
TRANSIENT = {
    "429 with rate-limit headers": ("rate_limit", {"wait_seconds": 0}),
    "429 without headers": ("rate_limit_without_headers", {}),
    "502": ("server_error", {"status": 502}),
    "500 echoing the request headers": ("echoed_headers", {"status": 500}),
    "timeout": ("timeout", {"delay_seconds": 1.0}),
    "truncated body": ("truncated_page", {}),
    "another request's body (replayed page)": ("replayed_page", {}),
}
TABLES = {"pagerduty": ["pagerduty__teams", "pagerduty__services", "pagerduty__log_entries", "pagerduty__incidents"],
          "jira": ["jira__issues"]}
CASES = [(service, endpoint) for service, endpoints in ENDPOINTS.items() for endpoint in endpoints]


def snapshot(warehouse, service: str) -> dict:
    """Every raw record of ``service`` (id and payload), its marks and its quarantine."""
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        tables = {table: conn.sql(f"select id, payload from raw.{table} order by id").fetchall()
                  for table in TABLES[service]}
        marks = conn.sql(f"select stream, high_water_mark from raw._sync_state where stream like '{service}%' "
                         "order by stream").fetchall()
        held = conn.sql(f"select stream, record_id from quarantine.api_records where stream like '{service}%' "
                        "order by all").fetchall()
    return {"tables": tables, "marks": marks, "quarantine": held}


def unreadable_first(records: str, field: str, value):
    """A rewrite making the first record of the first page unreadable (``field`` set to
    ``value``), and that record again whenever a page holds it: a page the client timed out on
    and asked again (a slow machine) serves it unreadable too, as the API would."""
    poisoned: list[str] = []

    def rewrite(body: dict) -> dict:
        for record in body.get(records, []):
            poisoned[:] = poisoned or [record["id"]]
            # A Jira issue's fields (absent from an id-only listing), a log entry itself.
            target = record.get("fields") if records == "issues" else record
            if record["id"] == poisoned[0] and target is not None:
                target[field] = value
        return body
    return rewrite


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    org = generate(OrgSpec(seed=5, n_teams=3, n_months=6, incidents_per_head_month=2))
    folder = tmp_path_factory.mktemp("faults")
    template = folder / "first_night.duckdb"
    with start_sandbox(org, as_of=org.as_of - timedelta(days=8), variations={"changelog_not_embedded"}) as sandbox:
        sandbox.inject_fault("pagerduty", "rewrite", path="/log_entries", times=None,
                             rewrite=unreadable_first("log_entries", "created_at", None))
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/search/jql", times=None,
                             rewrite=unreadable_first("issues", "updated", "yesterday"))
        assert sync(org, sandbox, template).success
        assert len(quarantined(template, "pagerduty__log_entries")) == len(quarantined(template, "jira__issues")) == 1
        sandbox.clear_faults()
        sandbox.set_as_of(org.as_of)
        clean = folder / "clean.duckdb"
        shutil.copy(template, clean)
        before = dict(sandbox.request_counts)
        assert sync(org, sandbox, clean).success
        calls = {key: count - before.get(key, 0) for key, count in sandbox.request_counts.items()}
        yield org, sandbox, template, {service: snapshot(clean, service) for service in TABLES}, calls


def second_night(nights, tmp_path, service, instance=None) -> tuple[dg.ExecuteInProcessResult, object]:
    org, sandbox, template, _, _ = nights
    warehouse = tmp_path / "second_night.duckdb"
    if not warehouse.exists():
        shutil.copy(template, warehouse)
    return sync(org, sandbox, warehouse, instance=instance,
                selection=PAGERDUTY if service == "pagerduty" else JIRA), warehouse


def assert_no_secret_in(instance: dg.DagsterInstance, result) -> None:
    recorded = "\n".join(str(record) for record in instance.all_logs(result.run_id))
    for secret in secrets():
        assert secret not in recorded


def test_the_second_night_calls_every_endpoint(nights):
    *_, calls = nights
    for service, endpoint in CASES:
        assert calls.get(f"{service} GET {endpoint}", 0) > 0, endpoint
    assert sorted(key for key in calls if calls[key]) == sorted(f"{s} GET {e}" for s, e in CASES)


@pytest.mark.slow
@pytest.mark.parametrize("fault", list(TRANSIENT))
@pytest.mark.parametrize("service, endpoint", CASES, ids=[endpoint for _, endpoint in CASES])
def test_each_transient_fault_on_each_endpoint_recovers_to_the_tables_of_a_clean_run(nights, tmp_path, service,
                                                                                   endpoint, fault):
    _, sandbox, _, clean, _ = nights
    kind, options = TRANSIENT[fault]
    sandbox.clear_faults()
    armed = sandbox.inject_fault(service, kind, path=endpoint, times=2, **options)
    instance = dg.DagsterInstance.ephemeral()
    result, warehouse = second_night(nights, tmp_path, service, instance)
    sandbox.clear_faults()
    assert armed.fired > 0, "the fault never struck"
    assert result.success, failures(result)
    assert snapshot(warehouse, service) == clean[service]
    assert_no_secret_in(instance, result)


@pytest.mark.slow
@pytest.mark.parametrize("service, endpoint", CASES, ids=[endpoint for _, endpoint in CASES])
def test_a_token_revoked_mid_run_fails_naming_the_variable_and_a_rerun_recovers(nights, tmp_path, service, endpoint):
    _, sandbox, _, clean, _ = nights
    sandbox.clear_faults()
    armed = sandbox.inject_fault(service, "expired_token", path=endpoint, times=None)
    instance = dg.DagsterInstance.ephemeral()
    failed, warehouse = second_night(nights, tmp_path, service, instance)
    sandbox.clear_faults()
    assert armed.fired > 0 and not failed.success
    variable = "PAGERDUTY_API_TOKEN" if service == "pagerduty" else "JIRA_API_TOKEN"
    assert "401" in failures(failed) and variable in failures(failed)
    assert_no_secret_in(instance, failed)
    rerun, _ = second_night(nights, tmp_path, service, instance)
    assert rerun.success, failures(rerun)
    assert snapshot(warehouse, service) == clean[service]


# -- credentials echoed back by an error body ----------------------------------------------

CLI_SECRETS = {"pagerduty_token": "pd-Zq81xV3cT6", "jira_email": "reader@example.com", "jira_token": "jira-Lm27Wq0pK4"}


def credential_forms() -> list[str]:
    pair = f"{CLI_SECRETS['jira_email']}:{CLI_SECRETS['jira_token']}"
    return [CLI_SECRETS["pagerduty_token"], CLI_SECRETS["jira_token"], pair, base64.b64encode(pair.encode()).decode()]


@pytest.mark.slow
@pytest.mark.parametrize("status", [400, 401, 500])
def test_credentials_an_error_body_echoes_reach_no_log_storage_or_file(tmp_path, status):
    """A gateway answering with the request's headers in its error body: the sync started from
    the CLI, as a deployment runs it, keeps the token, the Basic credentials and the
    email:token pair out of the CLI's output, the run and event storage, the compute logs and
    the warehouse."""
    org = generate(OrgSpec(seed=3, n_teams=2, n_months=6))
    home, landing = tmp_path / "dagster_home", tmp_path / "landing"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    write_landing(org, landing)
    # A 500 is retried (twice here, then the API answers); 400 and 401 fail the step for good.
    times = 2 if status >= 500 else None
    with Sandbox(org, pagerduty_token=CLI_SECRETS["pagerduty_token"], jira_email=CLI_SECRETS["jira_email"],
                 jira_token=CLI_SECRETS["jira_token"]) as sandbox:
        echoes = [sandbox.inject_fault("pagerduty", "echoed_headers", path="/log_entries", status=status, times=times),
                  sandbox.inject_fault("jira", "echoed_headers", path="/rest/api/3/search/jql", status=status,
                                       times=times)]
        env = {**os.environ, "DAGSTER_HOME": str(home), "PAGERDUTY_API_TOKEN": CLI_SECRETS["pagerduty_token"],
               "PAGERDUTY_URL": sandbox.pagerduty_url, "JIRA_URL": sandbox.jira_url,
               "JIRA_EMAIL": CLI_SECRETS["jira_email"], "JIRA_API_TOKEN": CLI_SECRETS["jira_token"],
               "SSL_CERT_FILE": sandbox.ca_bundle_path, "REQUESTS_CA_BUNDLE": sandbox.ca_bundle_path,
               "PSAFE_WAREHOUSE": str(tmp_path / "warehouse.duckdb"), "PSAFE_LANDING_DIR": str(landing),
               "PSAFE_HR_ID_SALT": "salt", "PSAFE_REPORT_DIR": str(tmp_path / "report")}
        cli = subprocess.run(
            [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "pipelines.definitions",
             "-a", "defs", "--select", "raw/pagerduty__log_entries,raw/jira__issues",
             # In the run's process (as the nightly job runs): a process per step would only add start-ups.
             "--config-json", json.dumps({"execution": {"config": {"in_process": {}}}})],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
        )
    assert all(echo.fired for echo in echoes), "the gateway never echoed the headers"
    output = cli.stdout + cli.stderr
    if status < 500:
        assert cli.returncode != 0 and f"HTTP {status}" in output
    else:
        assert cli.returncode == 0, output[-3000:]
    written = [path for path in tmp_path.rglob("*") if path.is_file() and path.suffix != ".csv"]
    assert any(path.suffix == ".db" for path in written) and any(path.suffix in (".out", ".err") for path in written)
    for secret in credential_forms():
        assert secret not in output, "the CLI's output holds a credential"
        for path in written:
            assert secret.encode() not in path.read_bytes(), f"{path.relative_to(tmp_path)} holds a credential"
