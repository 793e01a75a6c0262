"""Settings as deployments pass them, against the local sandbox with the real clients: a URL,
token or email with the newline a secret file or a Kubernetes secret ends in works; one with
quotes (docker --env-file, systemd keep them), whitespace or a control character inside, or a
URL with a path, fails at once naming its variable, never its value, before any request; a
warehouse path with ``~`` (no shell expands it in an EnvironmentFile) means the file DuckDB
opens, for the warehouse and its restricted file alike."""

import os
import time

import dagster as dg
import duckdb
import pytest

from assets.jira.resource import JiraResource
from assets.pagerduty import assets as pagerduty_assets
from assets.pagerduty.resource import PagerDutyResource
from assets.qualtrics.resource import QualtricsResource
from assets.warehouse.resource import WarehouseResource
from pipelines.definitions import defs
from pipelines.demo import SANDBOX_JIRA_EMAIL, SANDBOX_JIRA_TOKEN, SANDBOX_PAGERDUTY_TOKEN, start_sandbox
from pipelines.sandbox.qualtrics import SURVEY_ID
from pipelines.synthetic.org import OrgSpec, generate, write_landing

pytestmark = pytest.mark.slow

# Fast retries: before the fix a stray newline was retried as a network error; the tests then
# fail in seconds rather than minutes.
QUICK = {"max_attempts": 3, "base_delay_seconds": 0.01}
NL = "\n"


@pytest.fixture(scope="module")
def org():
    return generate(OrgSpec(seed=11, n_teams=3, n_months=6))


@pytest.fixture(scope="module")
def sandbox(org):
    with start_sandbox(org) as running:
        yield running


def pagerduty(sandbox, **settings) -> PagerDutyResource:
    return PagerDutyResource(**{"api_token": SANDBOX_PAGERDUTY_TOKEN, "base_url": sandbox.pagerduty_url,
                                "ca_bundle_path": sandbox.ca_bundle_path, **QUICK, **settings})


def jira(sandbox, **settings) -> JiraResource:
    return JiraResource(**{"server_url": sandbox.jira_url, "email": SANDBOX_JIRA_EMAIL,
                           "api_token": SANDBOX_JIRA_TOKEN, "ca_bundle_path": sandbox.ca_bundle_path, **QUICK,
                           **settings})


def qualtrics(sandbox, **settings) -> QualtricsResource:
    return QualtricsResource(**{"base_url": sandbox.qualtrics_url, "api_token": sandbox.qualtrics_token,
                                "survey_ids": SURVEY_ID, "ca_bundle_path": sandbox.ca_bundle_path,
                                "poll_seconds": 0.01, **QUICK, **settings})


def teams(resource: PagerDutyResource) -> list[dict]:
    return list(resource.iter_all(resource.get_client(), "teams"))


def refused_at_once(sandbox, call) -> dg.Failure:
    """The failure ``call()`` raises, checked: at once (well under a second, no retries), not
    to be retried by RetryPolicy, and before any request reached the sandbox."""
    before = sum(sandbox.request_counts.values())
    started = time.monotonic()
    with pytest.raises(dg.Failure) as raised:
        call()
    assert time.monotonic() - started < 0.5
    assert sum(sandbox.request_counts.values()) == before
    assert raised.value.allow_retries is False
    return raised.value


@pytest.mark.parametrize("setting", ["api_token", "base_url"])
@pytest.mark.parametrize("around", [("", NL), ("", " "), ("  ", "\r\n"), ("\t", "")])
def test_pagerduty_settings_with_whitespace_around_them_work(sandbox, org, setting, around):
    value = {"api_token": SANDBOX_PAGERDUTY_TOKEN, "base_url": sandbox.pagerduty_url}[setting]
    listed = teams(pagerduty(sandbox, **{setting: around[0] + value + around[1]}))
    assert sorted(team["name"] for team in listed) == sorted(team.name for team in org.teams)


def test_jira_settings_with_a_final_newline_work(sandbox):
    resource = jira(sandbox, server_url=sandbox.jira_url + NL, email=SANDBOX_JIRA_EMAIL + NL,
                    api_token=SANDBOX_JIRA_TOKEN + NL)
    assert resource.site_time(resource.get_client()).year >= 2024


def test_qualtrics_settings_with_a_final_newline_work(sandbox, tmp_path):
    resource = qualtrics(sandbox, base_url=sandbox.qualtrics_url + NL, api_token=sandbox.qualtrics_token + NL,
                         survey_ids=f" {SURVEY_ID}\n")
    assert resource.surveys == [SURVEY_ID]
    csv, _ = resource.export_responses(SURVEY_ID, None)
    assert csv.count(b"\n") > 3


TOKEN_CASES = {
    "in double quotes": ('"{}"', "starts or ends with a quote"),
    "in single quotes": ("'{}'", "starts or ends with a quote"),
    "two lines": ("{0}\n{0}", "holds a line break (\\n) at character"),
    "a space inside": ("{0} {0}", "holds a space at character"),
    "a byte-order mark": ("\ufeff{}", "holds an invisible character U+FEFF at character 1"),
    "an escape character": ("{}\x1b", "holds an invisible character U+001B"),
    "nothing but a newline": ("\n", "is empty (only whitespace)"),
}


@pytest.mark.parametrize("case", TOKEN_CASES)
def test_a_pagerduty_token_with_quotes_or_inner_whitespace_fails_at_once_naming_it(sandbox, case):
    shape, problem = TOKEN_CASES[case]
    failure = refused_at_once(sandbox, lambda: teams(pagerduty(sandbox, api_token=shape.format(
        SANDBOX_PAGERDUTY_TOKEN))))
    assert failure.description.startswith(f"PAGERDUTY_API_TOKEN {problem}")
    assert SANDBOX_PAGERDUTY_TOKEN not in failure.description


@pytest.mark.parametrize("setting, variable, secret", [
    ("api_token", "JIRA_API_TOKEN", SANDBOX_JIRA_TOKEN), ("email", "JIRA_EMAIL", SANDBOX_JIRA_EMAIL)])
@pytest.mark.parametrize("case", ["in double quotes", "two lines"])
def test_a_jira_token_or_email_with_quotes_or_a_newline_inside_fails_at_once_naming_it(sandbox, setting, variable,
                                                                                     secret, case):
    shape, problem = TOKEN_CASES[case]
    resource = jira(sandbox, **{setting: shape.format(secret)})
    failure = refused_at_once(sandbox, lambda: resource.site_time(resource.get_client()))
    assert failure.description.startswith(f"{variable} {problem}")
    assert secret not in failure.description


def test_qualtrics_settings_with_quotes_fail_at_once_naming_them(sandbox):
    token = sandbox.qualtrics_token
    failure = refused_at_once(sandbox, lambda: qualtrics(sandbox, api_token=f'"{token}"').export_responses(
        SURVEY_ID, None))
    assert failure.description.startswith("QUALTRICS_API_TOKEN starts or ends with a quote")
    assert token not in failure.description
    failure = refused_at_once(sandbox, lambda: qualtrics(sandbox, survey_ids=f'"{SURVEY_ID}"').surveys)
    assert failure.description.startswith("QUALTRICS_SURVEY_IDS starts or ends with a quote")


@pytest.mark.parametrize("variable, path, named", [
    ("PAGERDUTY_URL", "/api/v2", "/api/v2"), ("JIRA_URL", "/jira/software/projects/", "/jira/software/projects"),
    ("QUALTRICS_URL", "/API/v3", "/API/v3"), ("JIRA_URL", "/?atlOrigin=x", "?atlOrigin=x")])
def test_an_api_url_with_a_path_fails_at_once_naming_the_variable_and_the_path(sandbox, variable, path, named):
    calls = {
        "PAGERDUTY_URL": lambda url: teams(pagerduty(sandbox, base_url=url)),
        "JIRA_URL": lambda url: (resource := jira(sandbox, server_url=url)).site_time(resource.get_client()),
        "QUALTRICS_URL": lambda url: qualtrics(sandbox, base_url=url).export_responses(SURVEY_ID, None),
    }
    root = {"PAGERDUTY_URL": sandbox.pagerduty_url, "JIRA_URL": sandbox.jira_url,
            "QUALTRICS_URL": sandbox.qualtrics_url}[variable]
    failure = refused_at_once(sandbox, lambda: calls[variable](root + path))
    assert failure.description.startswith(f"{variable} must have no path after the host")
    assert f"has {named!r}" in failure.description and f"set {variable} to {root} " in failure.description
    # while a trailing slash is only the root
    calls[variable](root + "/")


def test_a_sync_step_with_a_quoted_token_fails_once_naming_the_variable(sandbox, tmp_path):
    """The step, as a run sees it: one failure that RetryPolicy does not repeat, no 401."""
    result = dg.materialize(
        [pagerduty_assets.pagerduty_teams], raise_on_error=False,
        resources={"pagerduty": pagerduty(sandbox, api_token=f'"{SANDBOX_PAGERDUTY_TOKEN}"'),
                   "duckdb": WarehouseResource(database=str(tmp_path / "w.duckdb"))})
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith("PAGERDUTY_API_TOKEN starts or ends with a quote")
    assert SANDBOX_PAGERDUTY_TOKEN not in description


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A home folder with the warehouse's folder in it, and a working folder elsewhere: a ``~``
    taken literally would make ``<cwd>/~/...``."""
    (tmp_path / "home" / "psafe").mkdir(parents=True)
    (tmp_path / "cwd").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path / "cwd")
    return tmp_path / "home"


def test_a_warehouse_path_with_a_tilde_is_the_file_in_the_home_folder_for_both_files(home, tmp_path, org,
                                                                                      monkeypatch):
    """As a deployment runs it: the definitions' resources from the environment, where a systemd
    EnvironmentFile left ``~`` as it is."""
    landing = tmp_path / "landing"
    write_landing(org, landing)
    for path in landing.iterdir():  # finished copies: older than the landing resource's settle time
        os.utime(path, (path.stat().st_mtime - 3600, path.stat().st_mtime - 3600))
    monkeypatch.setenv("PSAFE_WAREHOUSE", "~/psafe/warehouse.duckdb")
    monkeypatch.setenv("PSAFE_LANDING_DIR", str(landing))
    monkeypatch.setenv("PSAFE_HR_ID_SALT", "a-salt-of-enough-characters")
    definitions = defs()
    keys = [dg.AssetKey(["raw", "config__team_map"]), dg.AssetKey(["restricted", "survey__responses"])]
    result = dg.materialize([definitions.get_assets_def(key) for key in keys], resources=definitions.resources,
                            selection=keys, raise_on_error=False)
    failures = [e.step_failure_data.error.message for e in result.all_events
                if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert result.success, failures
    warehouse, restricted = home / "psafe" / "warehouse.duckdb", home / "psafe" / "restricted" / \
        "warehouse.restricted.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.execute("select count(*) from raw.config__team_map").fetchone()[0] > 0
    with duckdb.connect(str(restricted), read_only=True) as conn:
        assert conn.execute("select count(*) from main.survey__responses").fetchone()[0] > 0
    assert oct(restricted.stat().st_mode & 0o777) == oct(0o600)
    assert not list((tmp_path / "cwd").rglob("*")), "nothing is made under a folder literally named ~"


def test_a_restricted_path_with_a_tilde_is_the_file_in_the_home_folder(home, tmp_path, monkeypatch):
    (home / "private").mkdir(mode=0o700)
    monkeypatch.setenv("PSAFE_RESTRICTED_WAREHOUSE", "~/private/answers.duckdb")
    resource = WarehouseResource(database="~/psafe/warehouse.duckdb")
    with resource.get_connection() as conn:
        conn.execute("create table restricted.main.answers as select 1 as x")
    assert resource.database == str(home / "psafe" / "warehouse.duckdb")
    assert resource.restricted_path == str(home / "private" / "answers.duckdb")
    with duckdb.connect(str(home / "private" / "answers.duckdb"), read_only=True) as conn:
        assert conn.execute("select x from answers").fetchall() == [(1,)]
    assert not list((tmp_path / "cwd").rglob("*"))
