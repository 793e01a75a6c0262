"""Settings a deployment makes through environment variables, and what a wrong one says: the
rules files (PSAFE_TICKET_CLASSIFICATION_RULES, PSAFE_KPI_RULES), the API URLs (PAGERDUTY_URL,
JIRA_URL: https:// only, failing at once) and the landing folder (PSAFE_LANDING_DIR)."""

import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.jira import assets as jira_assets
from assets.jira.classification import ClassificationRulesError
from assets.jira.resource import DEFAULT_CLASSIFICATION_RULES, JiraResource
from assets.kpi_rules import DEFAULT_KPI_RULES, KpiRulesError
from assets.landing import assets as landing_assets
from assets.landing import identity as identity_assets
from assets.landing.resource import LandingFolderResource
from assets.landing.sensors import landing_files_sensor
from assets.pagerduty import assets as pagerduty_assets
from assets.pagerduty.resource import PagerDutyResource
from assets.warehouse.resource import WarehouseResource
from pipelines.definitions import defs

REPO = Path(__file__).resolve().parents[1]
RULES = "rules:\n  - class: proactive\n    labels: [mine]\n  - class: reactive\n    issue_types: [Bug]\n"
KPI_RULES = "repeat_incidents:\n  window_days: 3\ntickets:\n  team_field: ~\n"  # a site without Atlassian Teams
RULE_VARIABLES = ("PSAFE_TICKET_CLASSIFICATION_RULES", "PSAFE_KPI_RULES")


def jira(**settings) -> JiraResource:
    return JiraResource(**{"server_url": "https://jira.invalid", "email": "e", "api_token": "t", **settings})


def rules_files(folder: Path) -> tuple[Path, Path]:
    (folder / "rules.yml").write_text(RULES)
    (folder / "kpi.yml").write_text(KPI_RULES)
    return folder / "rules.yml", folder / "kpi.yml"


def test_rules_files_come_from_the_resource_then_the_environment_then_defaults(monkeypatch, tmp_path):
    for variable in RULE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    classification, kpi = rules_files(tmp_path)
    unset = jira()
    assert (unset.classification_rules_file(), unset.kpi_rules_file()) == (DEFAULT_CLASSIFICATION_RULES,
                                                                         DEFAULT_KPI_RULES)
    monkeypatch.setenv("PSAFE_TICKET_CLASSIFICATION_RULES", str(classification))
    monkeypatch.setenv("PSAFE_KPI_RULES", str(kpi))
    assert (unset.classification_rules_file(), unset.kpi_rules_file()) == (classification, kpi)
    assert "customfield" not in " ".join(unset.issue_fields())  # the sync asks for what these rules read
    configured = jira(classification_rules_path=str(DEFAULT_CLASSIFICATION_RULES), kpi_rules_path=str(DEFAULT_KPI_RULES))
    assert (configured.classification_rules_file(), configured.kpi_rules_file()) == (DEFAULT_CLASSIFICATION_RULES,
                                                                                     DEFAULT_KPI_RULES)
    # A file that is not there names the setting to fix.
    monkeypatch.setenv("PSAFE_TICKET_CLASSIFICATION_RULES", str(tmp_path / "gone.yml"))
    monkeypatch.setenv("PSAFE_KPI_RULES", str(tmp_path / "gone.yml"))
    with pytest.raises(ClassificationRulesError, match=r"gone.yml: no such classification rules file \(PSAFE_TICKET_"):
        unset.classification_rules_file()
    with pytest.raises(KpiRulesError, match=r"gone.yml: no such KPI rules file \(PSAFE_KPI_RULES\)"):
        unset.kpi_rules_file()
    with pytest.raises(KpiRulesError, match=r"no such KPI rules file \(the jira resource's kpi_rules_path\)"):
        jira(kpi_rules_path=str(tmp_path / "gone.yml")).kpi_rules_file()


def test_a_deployed_run_without_run_config_reads_the_rules_files_the_variables_name(monkeypatch, tmp_path):
    """As the schedule runs it: the resources wired in pipelines/definitions.py, no run config."""
    classification, kpi = rules_files(tmp_path)
    for name, value in {"JIRA_URL": "https://jira.invalid", "JIRA_EMAIL": "e", "JIRA_API_TOKEN": "t",
                        "PSAFE_HR_ID_SALT": "salt", "PSAFE_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
                        "PSAFE_TICKET_CLASSIFICATION_RULES": str(classification),
                        "PSAFE_KPI_RULES": str(kpi)}.items():
        monkeypatch.setenv(name, value)
    resources = defs().resources
    result = dg.materialize([jira_assets.ticket_classification_rules, jira_assets.kpi_rules],
                            resources={"jira": resources["jira"], "duckdb": resources["duckdb"]})
    paths = {event.asset_key.to_user_string(): event.materialization.metadata["path"].value
             for event in result.get_asset_materialization_events()}
    assert paths == {"raw/config__ticket_classification": str(classification), "raw/config__kpi_rules": str(kpi)}
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as conn:
        assert conn.execute("select count(*) from raw.config__ticket_classification").fetchone()[0] == 2
        assert conn.execute("select repeat_window_days from raw.config__kpi_rules").fetchone()[0] == 3


@pytest.mark.parametrize("url", ["http://127.0.0.1:8443", "https://", "api.example.com", "https://[::1"])
@pytest.mark.parametrize("variable", ["PAGERDUTY_URL", "JIRA_URL"])
def test_an_api_url_that_is_not_https_fails_at_once_naming_its_variable(variable, url):
    resource = (PagerDutyResource(api_token="t", base_url=url) if variable == "PAGERDUTY_URL"
                else jira(server_url=url))
    with pytest.raises(dg.Failure) as raised:
        resource.get_client()
    assert raised.value.allow_retries is False
    assert f"{variable} must be an https:// URL with a host" in raised.value.description
    assert repr(url) in raised.value.description
    # while an https:// one gives a client, without a request
    assert (PagerDutyResource(api_token="t", base_url="https://api.pagerduty.com") if variable == "PAGERDUTY_URL"
            else jira(server_url="HTTPS://example.atlassian.net")).get_client()


@pytest.mark.parametrize("variable", ["PAGERDUTY_URL", "JIRA_URL"])
def test_a_sync_with_an_http_url_fails_its_step_once_without_retries(variable, tmp_path):
    """The step, not only the client: RetryPolicy would otherwise repeat it for minutes."""
    url = "http://127.0.0.1:9"  # discard: nothing answers, and nothing must be asked
    if variable == "PAGERDUTY_URL":
        selected, resource = [pagerduty_assets.pagerduty_teams], PagerDutyResource(api_token="t", base_url=url)
    else:
        selected, resource = [jira_assets.jira_issues], jira(server_url=url, max_attempts=2, base_delay_seconds=0.01)
    started = time.monotonic()
    result = dg.materialize(selected, resources={variable.split("_")[0].lower(): resource,
                                                 "duckdb": WarehouseResource(database=str(tmp_path / "w.duckdb"))},
                            raise_on_error=False)
    assert time.monotonic() - started < 25
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert f"{variable} must be an https:// URL" in failure.step_failure_data.user_failure_data.description


def missing_folder_message(path: Path) -> str:
    return f"The landing folder {path} (PSAFE_LANDING_DIR) does not exist"


def test_a_missing_landing_folder_fails_every_landing_step_at_once_naming_the_variable(tmp_path):
    missing = tmp_path / "nope"
    landing = LandingFolderResource(path=str(missing), hr_id_salt="salt")
    resources = {"landing": landing, "duckdb": WarehouseResource(database=str(tmp_path / "w.duckdb"))}
    # One step a run: the exports' steps would otherwise wait on the team map's.
    for step in (landing_assets.survey_responses, landing_assets.hr_exports, landing_assets.team_map,
                 identity_assets.identity_map):
        result = dg.materialize([step], resources=resources, raise_on_error=False)
        events = {e.event_type: e for e in result.all_events}
        assert dg.DagsterEventType.STEP_UP_FOR_RETRY not in events, step
        failure = events[dg.DagsterEventType.STEP_FAILURE].step_failure_data.user_failure_data
        assert failure is not None and missing_folder_message(missing) in failure.description, step


def test_the_sensor_skips_a_missing_landing_folder_naming_the_variable(tmp_path):
    missing = tmp_path / "nope"
    context = dg.build_sensor_context(
        resources={"landing": LandingFolderResource(path=str(missing), hr_id_salt="salt")})
    skipped = landing_files_sensor(context)
    assert isinstance(skipped, dg.SkipReason) and missing_folder_message(missing) in skipped.skip_message
    afile = tmp_path / "afile"
    afile.write_text("")
    assert "(PSAFE_LANDING_DIR) is not a folder" in LandingFolderResource(path=str(afile), hr_id_salt="s").missing_folder()


def test_an_empty_hr_id_salt_fails_the_steps_that_hash_people_before_anything_is_read(monkeypatch, tmp_path):
    """PSAFE_HR_ID_SALT exported but empty: the pseudonyms would be plain hashes of the ids."""
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "hr_snapshots.csv").write_text("snapshot_date,employee_id,org_unit,role,critical_role\n"
                                              "2025-01-01,1001,OU-1,sre,false\n")
    for name, value in {"JIRA_URL": "https://jira.invalid", "JIRA_EMAIL": "e", "JIRA_API_TOKEN": "t",
                        "PSAFE_HR_ID_SALT": "", "PSAFE_LANDING_DIR": str(landing),
                        "PSAFE_WAREHOUSE": str(tmp_path / "warehouse.duckdb")}.items():
        monkeypatch.setenv(name, value)
    resources = defs().resources
    for step, resource in ((landing_assets.hr_exports, "landing"), (jira_assets.jira_issues, "jira")):
        result = dg.materialize([step], raise_on_error=False,
                                resources={resource: resources[resource], "duckdb": resources["duckdb"]})
        events = {e.event_type: e for e in result.all_events}
        assert not result.success and dg.DagsterEventType.STEP_UP_FOR_RETRY not in events, step
        assert "PSAFE_HR_ID_SALT is set but empty" in str(result.all_events), step
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_a_short_hr_id_salt_warns(tmp_path, capfd):
    (tmp_path / "team_map.yml").write_text("teams:\n  - team: Payments\n    hr_org_units: [OU-1]\n")
    landing = LandingFolderResource(path=str(tmp_path), hr_id_salt="acme")
    assert dg.materialize([landing_assets.team_map], resources={
        "landing": landing, "duckdb": WarehouseResource(database=str(tmp_path / "w.duckdb"))}).success
    assert "PSAFE_HR_ID_SALT has 4 characters: a short salt can be guessed offline" in capfd.readouterr().err


@pytest.mark.slow
def test_the_sandbox_prints_the_kpi_rules_export_its_site_needs():
    command = ("from pipelines.sandbox.__main__ import main\n"
               "main(['--teams', '2', '--months', '6', '--pagerduty-port', '0', '--jira-port', '0'])\n")
    process = subprocess.Popen([sys.executable, "-c", command], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        printed = []
        for line in process.stdout:
            if line.startswith("Serving until Ctrl-C"):
                break
            printed.append(line.rstrip("\n"))
        exports = dict(line.removeprefix("export ").split("=", 1) for line in printed if line.startswith("export "))
        assert "PSAFE_KPI_RULES" in exports, printed
        assert Path(exports["PSAFE_KPI_RULES"]).is_file()
        assert exports["PSAFE_KPI_RULES"] != str(DEFAULT_KPI_RULES)
    finally:
        process.kill()
        process.wait()
