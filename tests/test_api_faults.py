"""Every fault the sandbox injects, on every endpoint a nightly sync calls: the run recovers to
raw tables identical to those of a clean run, or fails with a message naming what to fix and a
re-run recovers them; no credential reaches the run's log. The README's Reliability figures
come from these tests.

Two nights: the first (clean, but with one log entry and one Jira issue sent unreadable, so
both are quarantined) is synced once into a template warehouse; each case copies it and syncs
the second night with the fault armed. The second night calls every endpoint: the listings,
`GET /incidents/{id}` for incidents whose timelines changed, `GET /log_entries/{id}` and
`GET /issue/{id}` for the quarantined records, `/issue/{id}/changelog` for issues whose
changelog grew (the sandbox embeds none: the changelog_not_embedded variation).
"""

import base64
import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.jira.assets import jira_issues
from assets.pagerduty.assets import pagerduty_incidents, pagerduty_log_entries, pagerduty_services, pagerduty_teams
from pipelines.demo import start_sandbox
from pipelines.sandbox.server import Sandbox
from pipelines.synthetic.org import OrgSpec, generate, write_landing
from test_ingestion import failures, quarantined, secrets, sync

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
REPO = Path(__file__).resolve().parents[1]
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


def unreadable_first_entry(body: dict) -> dict:
    body["log_entries"][0]["created_at"] = None
    return body


def unreadable_first_issue(body: dict) -> dict:
    body["issues"][0]["fields"]["updated"] = "yesterday"
    return body


@pytest.fixture(scope="module")
def nights(tmp_path_factory):
    org = generate(OrgSpec(seed=5, n_teams=3, n_months=6, incidents_per_head_month=2))
    folder = tmp_path_factory.mktemp("faults")
    template = folder / "first_night.duckdb"
    with start_sandbox(org, as_of=org.as_of - timedelta(days=8), variations={"changelog_not_embedded"}) as sandbox:
        sandbox.inject_fault("pagerduty", "rewrite", path="/log_entries", rewrite=unreadable_first_entry)
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/search/jql", rewrite=unreadable_first_issue)
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
