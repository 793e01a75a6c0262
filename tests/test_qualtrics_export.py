"""The Qualtrics response-export asset over real HTTPS against the local sandbox: start, poll,
download and unzip, incremental by startDate, through 429s and failed exports; the files it
writes load through the landing reader's Qualtrics preset.

The API's shapes follow Qualtrics' documentation (api.qualtrics.com "Start Response Export",
"Get Response Export Progress", "Get Response Export File"; the X-API-TOKEN header; error
bodies under meta.error) and the flow of ropensci/qualtRics R/fetch_survey.R.
"""

from datetime import UTC, datetime

import dagster as dg
import pytest

from assets.landing.resource import LandingFolderResource
from assets.landing.survey import read_survey_exports
from assets.qualtrics.assets import qualtrics_responses
from assets.qualtrics.resource import QualtricsResource
from pipelines.demo import start_sandbox
from pipelines.sandbox.qualtrics import SURVEY_ID
from pipelines.synthetic.model import add_months
from pipelines.synthetic.org import OrgSpec, generate

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def org():
    return generate(OrgSpec(seed=11, n_teams=3, n_months=6))


def resources(sandbox, landing, token=None) -> dict:
    return {
        "qualtrics": QualtricsResource(base_url=sandbox.qualtrics_url, api_token=token or sandbox.qualtrics_token,
                                       survey_ids=SURVEY_ID, ca_bundle_path=sandbox.ca_bundle_path, poll_seconds=0.01,
                                       base_delay_seconds=0.01, max_attempts=4),
        "landing": LandingFolderResource(path=str(landing), hr_id_salt="salt", settle_seconds=0),
    }


def run(sandbox, landing, **options):
    return dg.materialize([qualtrics_responses], resources=resources(sandbox, landing, **options),
                          run_config={"ops": {"landing__qualtrics__responses": {"config": {
                              "history_start": "2024-01-01"}}}}, raise_on_error=False)


def test_exports_incrementally_and_the_files_load_as_qualtrics(org, tmp_path):
    middle = add_months(org.spec.start, 3)  # between the first wave (January) and the second (April)
    groups = {t.name for t in org.teams}
    with start_sandbox(org, as_of=middle) as sandbox:
        assert run(sandbox, tmp_path).success
        [first] = sorted(tmp_path.glob("qualtrics_*.csv"))
        sandbox.set_as_of(org.as_of)
        assert run(sandbox, tmp_path).success
        assert sandbox.request_counts["qualtrics POST /API/v3/surveys/{surveyId}/export-responses"] == 2
    files = sorted(tmp_path.glob("qualtrics_*.csv"))
    assert len(files) == 2 and first in files
    # The second export starts where the first ended (the server's clock at its start).
    assert files[1].name.split("_")[3] == first.name.split("_")[4].removesuffix(".csv")
    load = read_survey_exports(files, groups, datetime.now(UTC))
    assert all(f.preset == "qualtrics" for f in load.files)
    assert sum(f.dropped["preview, test or spam"] for f in load.files) == 2  # one editor's preview per export
    assert load.responses == len(org.survey_rows) and not load.checked.quarantined
    before = {r["response_id"] for r in load.checked.accepted if r["source_file"] == first.name}
    assert before == {f"R_{row['response_id']}" for row in org.survey_rows if row["submitted_at"] < str(middle)}


def test_rate_limits_and_a_failed_export_are_retried(org, tmp_path):
    with start_sandbox(org) as sandbox:
        sandbox.inject_fault("qualtrics", "rate_limit", times=2)
        sandbox.inject_fault("qualtrics", "server_error", status=503, path=
                             "/API/v3/surveys/{surveyId}/export-responses/{exportProgressId}")
        sandbox.qualtrics.fail_exports(1)
        result = run(sandbox, tmp_path)
        starts = sandbox.request_counts["qualtrics POST /API/v3/surveys/{surveyId}/export-responses"]
    assert result.success and len(list(tmp_path.glob("qualtrics_*.csv"))) == 1
    assert starts == 2 + 2  # two refused with 429, the failed export, the one that completed


def test_a_refused_token_fails_at_once_naming_the_variable(org, tmp_path):
    with start_sandbox(org) as sandbox:
        result = run(sandbox, tmp_path, token="wrong")
        counts = dict(sandbox.request_counts)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "QUALTRICS_API_TOKEN" in failure and "wrong" not in failure
    assert sum(counts.values()) == 1 and not list(tmp_path.glob("qualtrics_*"))


def test_nothing_new_writes_no_file(org, tmp_path):
    with start_sandbox(org) as sandbox:
        assert run(sandbox, tmp_path).success
        assert run(sandbox, tmp_path).success
    assert len(list(tmp_path.glob("qualtrics_*.csv"))) == 1
    assert not list(tmp_path.glob(".*part"))


def test_an_error_body_repeating_the_headers_fails_without_the_token(org, tmp_path):
    with start_sandbox(org) as sandbox:
        echo = sandbox.inject_fault("qualtrics", "echoed_headers", status=400)
        result = run(sandbox, tmp_path)
        token = sandbox.qualtrics_token
    assert echo.fired and not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "HTTP 400" in failure and "Request headers" in failure and "[redacted]" in failure
    assert token not in failure
    assert all(token not in str(event) for event in result.all_events)


def test_a_qualtrics_url_that_is_not_https_fails_before_any_request(org, tmp_path):
    with start_sandbox(org) as sandbox:
        result = dg.materialize([qualtrics_responses], raise_on_error=False, resources={
            **resources(sandbox, tmp_path),
            "qualtrics": QualtricsResource(base_url=sandbox.qualtrics_url.replace("https://", "http://"),
                                           api_token=sandbox.qualtrics_token, survey_ids=SURVEY_ID,
                                           base_delay_seconds=0.01, max_attempts=2)})
        counts = dict(sandbox.request_counts)
    assert not result.success and sum(counts.values()) == 0
    failure = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "QUALTRICS_URL must be an https:// URL" in failure and "Nothing was requested" in failure
