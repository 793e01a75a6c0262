"""The PagerDuty / Jira sandbox, driven over HTTPS through the official client libraries and
checked against the published OpenAPI descriptions and the generator's records."""

import base64
import copy
import ctypes
import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import jsonschema
import pagerduty
import pytest
import werkzeug.test
from conftest import expected_log_entries
from jira import JIRA, JIRAError

from openapi_contract import JIRA_SPEC, PAGERDUTY_SPEC, PATCHES, validate
from pipelines.sandbox.__main__ import main as sandbox_main
from pipelines.sandbox.faults import Fault
from pipelines.sandbox.jira import JiraApi
from pipelines.sandbox.pagerduty import PagerDutyApi
from pipelines.sandbox.server import Sandbox
from pipelines.synthetic.org import OrgSpec, generate

PD_TOKEN = "sandbox-pd-token"
REPO = Path(__file__).resolve().parents[1]
JIRA_EMAIL = "sandbox@example.com"
JIRA_TOKEN = "sandbox-jira-token"
SEARCH_FIELDS = ["summary", "issuetype", "project", "labels", "created", "updated", "resolutiondate",
                 "status", "components"]


@pytest.fixture(scope="module")
def org():
    return generate(OrgSpec(seed=3, n_teams=4, n_months=6))


@pytest.fixture(scope="module")
def sandbox(org):
    with Sandbox(org, pagerduty_token=PD_TOKEN, jira_email=JIRA_EMAIL, jira_token=JIRA_TOKEN,
                 host="127.0.0.1", pagerduty_port=0, jira_port=0, rate_limit_per_minute=960) as sb:
        yield sb


@pytest.fixture(scope="module")
def pd(sandbox):
    client = pagerduty.RestApiV2Client(PD_TOKEN, base_url=sandbox.pagerduty_url, verify=sandbox.ca_bundle_path)
    client.sleep_timer = 0.01
    return client


@pytest.fixture(scope="module")
def jira(sandbox):
    return JIRA(server=sandbox.jira_url, basic_auth=(JIRA_EMAIL, JIRA_TOKEN),
                options={"rest_api_version": "3", "verify": sandbox.ca_bundle_path}, max_retries=0)


def pd_get(client, url, params=None, status=200):
    """GET through the pagerduty client, asserting the status; returns the JSON body."""
    response = client.get(url, params=params or {})
    assert response.status_code == status, response.text
    return response.json()


def windows(start: datetime, end: datetime, length: timedelta):
    while start < end:
        yield start, min(start + length, end)
        start += length


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def history_bounds(org):
    return datetime(org.spec.start.year, org.spec.start.month, 1, tzinfo=UTC), org.as_of


log_entry_count = expected_log_entries


# -- PagerDuty --------------------------------------------------------------------------


def test_directory_endpoints_serve_the_organisation_in_the_spec_shape(pd, org):
    for path in ("/teams", "/services", "/users"):
        validate(PAGERDUTY_SPEC, path, "get", 200, pd_get(pd, path, {"limit": 2, "total": "true"}))
    assert {t["id"] for t in pd.iter_all("teams")} == {t.pagerduty_id for t in org.teams}
    assert len(list(pd.iter_all("users"))) == len(org.users)
    team_ids = {t.key: t.pagerduty_id for t in org.teams}
    services = {s["id"]: s for s in pd.iter_all("services")}
    for service in org.services:
        served = services[service.pagerduty_id]
        assert [t["id"] for t in served["teams"]] == [team_ids[service.team_key]]
        policy = served["escalation_policy"]
        assert (policy["id"], policy["type"]) == (service.escalation_policy_id, "escalation_policy_reference")
    first_team = org.teams[0]
    own = pd_get(pd, "/services", {"team_ids[]": [first_team.pagerduty_id]})["services"]
    assert {s["id"] for s in own} == {s.pagerduty_id for s in org.services if s.team_key == first_team.key}


def test_windowed_incidents_serve_every_incident_exactly_once(pd, org):
    start, end = history_bounds(org)
    seen: Counter = Counter()
    for since, until in windows(start, end, timedelta(days=31)):
        offset, more = 0, True
        while more:
            page = pd_get(pd, "/incidents", {"since": iso(since), "until": iso(until), "limit": 7,
                                             "offset": offset, "total": "true"})
            validate(PAGERDUTY_SPEC, "/incidents", "get", 200, page)
            assert page["total"] == sum(since <= i.created_at < until for i in org.incidents)
            seen.update(i["id"] for i in page["incidents"])
            assert all(since <= datetime.fromisoformat(i["created_at"]) < until for i in page["incidents"])
            offset, more = offset + len(page["incidents"]), page["more"]
    assert set(seen) == {i.pagerduty_id for i in org.incidents}
    assert set(seen.values()) == {1}
    assert len(list(pd.iter_all("incidents", params={"date_range": "all"}))) == len(org.incidents)


def test_incident_filters_and_sorting(pd, org):
    team = org.teams[1]
    params = {"date_range": "all", "team_ids[]": [team.pagerduty_id], "statuses[]": ["resolved"],
              "sort_by": "created_at:desc"}
    served = list(pd.iter_all("incidents", params=params))
    expected = [i for i in org.incidents if i.team_key == team.key and i.resolved_at is not None]
    assert [i["id"] for i in served] == [i.pagerduty_id for i in reversed(expected)]
    assert pd_get(pd, "/incidents", {"sort_by": "title"}, status=400)["error"]["code"] == 2001


def test_default_window_is_the_thirty_days_before_now(pd, org):
    served = {i["id"] for i in pd.iter_all("incidents")}
    recent = {i.pagerduty_id for i in org.incidents if org.as_of - timedelta(days=30) <= i.created_at < org.as_of}
    assert served == recent and recent


def test_incident_detail_timeline_and_custom_fields(pd, org):
    acknowledged = next(i for i in org.incidents if i.acknowledged_at and i.resolved_at and i.impact_started_at
                        and i.alert_timestamp is None and not i.reopened_at and not i.merged_into)
    auto_resolved = next(i for i in org.incidents if i.auto_resolved and i.resolved_at)
    no_onset = next(i for i in org.incidents if i.impact_started_at is None)

    body = pd_get(pd, f"/incidents/{acknowledged.pagerduty_id}")
    validate(PAGERDUTY_SPEC, "/incidents/{id}", "get", 200, body)
    incident = body["incident"]
    assert incident["status"] == "resolved" and incident["acknowledgements"] == []
    assert incident["resolved_at"] == iso(acknowledged.resolved_at)
    assert incident["summary"] == f"[#{acknowledged.number}] {acknowledged.title}"

    page = pd_get(pd, f"/incidents/{acknowledged.pagerduty_id}/log_entries")
    validate(PAGERDUTY_SPEC, "/incidents/{id}/log_entries", "get", 200, page)
    timeline = [(e["type"], e["created_at"], e["agent"]["type"]) for e in page["log_entries"]]
    assert sorted(timeline, key=lambda step: step[1]) == sorted([
        ("trigger_log_entry", iso(acknowledged.created_at), "service_reference"),
        ("acknowledge_log_entry", iso(acknowledged.acknowledged_at), "user_reference"),
        ("custom_field_value_change_log_entry", iso(acknowledged.impact_recorded_at), "user_reference"),
        ("resolve_log_entry", iso(acknowledged.resolved_at), "user_reference"),
    ], key=lambda step: step[1])
    assert timeline == sorted(timeline, key=lambda step: step[1])
    ack = next(e for e in page["log_entries"] if e["type"] == "acknowledge_log_entry")
    assert ack["agent"]["id"] == acknowledged.acknowledged_by
    change = next(e for e in page["log_entries"] if e["type"] == "custom_field_value_change_log_entry")
    assert change["channel"]["changeset"]["customer_fields"][0]["value"] == [iso(acknowledged.onset_at)]
    assert incident["first_trigger_log_entry"]["id"] == page["log_entries"][0]["id"]

    resolve = pd_get(pd, f"/incidents/{auto_resolved.pagerduty_id}/log_entries")["log_entries"][-1]
    assert (resolve["type"], resolve["agent"]["type"], resolve["channel"]["type"]) == (
        "resolve_log_entry", "service_reference", "timeout")

    for incident, value in ((acknowledged, iso(acknowledged.onset_at)), (no_onset, None)):
        body = pd_get(pd, f"/incidents/{incident.pagerduty_id}/custom_fields/values")
        validate(PAGERDUTY_SPEC, "/incidents/{id}/custom_fields/values", "get", 200, body)
        [field] = body["custom_fields"]
        assert (field["name"], field["data_type"], field["value"]) == ("impact_started", "datetime", value)
    assert pd.rget(f"/incidents/{no_onset.pagerduty_id}/custom_fields/values")[0]["value"] is None


def test_open_incidents_show_their_current_status(org):
    # Every incident of the fixture organisation is resolved by its cut-off; reopen two.
    reopened = copy.deepcopy(org)
    acknowledged, triggered = [i for i in reopened.incidents if i.acknowledged_at][-2:]
    acknowledged.resolved_at = None
    triggered.resolved_at = triggered.acknowledged_at = None
    api = PagerDutyApi(reopened, token=PD_TOKEN, base_url="https://pd.test", rate_limit_per_minute=960,
                       count_request=lambda key: None)
    client = werkzeug.test.Client(api)
    headers = {"Authorization": f"Token token={PD_TOKEN}"}
    for incident, status in ((acknowledged, "acknowledged"), (triggered, "triggered")):
        body = client.get(f"/incidents/{incident.pagerduty_id}", headers=headers).json
        validate(PAGERDUTY_SPEC, "/incidents/{id}", "get", 200, body)
        served = body["incident"]
        assert served["status"] == status and "resolved_at" not in served
        assert served["assignments"][0]["assignee"]["id"] == incident.acknowledged_by
        assert len(served["acknowledgements"]) == (status == "acknowledged")
        entries = client.get(f"/incidents/{incident.pagerduty_id}/log_entries", headers=headers).json
        assert len(entries["log_entries"]) == log_entry_count(incident)


def test_log_entries_cover_every_status_change_in_time_order(pd, org):
    start, end = history_bounds(org)
    entries = []
    for since, until in windows(start, end, timedelta(days=90)):
        params = {"since": iso(since), "until": iso(until), "is_overview": "true"}
        entries.extend(pd.iter_all("log_entries", params=params))
    assert len(entries) == sum(log_entry_count(i) for i in org.incidents)
    assert len({e["id"] for e in entries}) == len(entries)
    assert [e["created_at"] for e in entries] == sorted(e["created_at"] for e in entries)
    kinds = Counter(e["type"] for e in entries)
    assert kinds["trigger_log_entry"] == len(org.incidents)
    assert kinds["acknowledge_log_entry"] == sum(i.acknowledged_at is not None for i in org.incidents)
    assert kinds["resolve_log_entry"] == sum(i.resolved_at is not None for i in org.incidents)

    page = pd_get(pd, "/log_entries", {"since": iso(start), "until": iso(start + timedelta(days=60)), "limit": 100})
    validate(PAGERDUTY_SPEC, "/log_entries", "get", 200, page)
    included = pd_get(pd, "/log_entries", {"since": iso(start), "until": iso(start + timedelta(days=60)),
                                           "include[]": ["incidents", "teams"], "limit": 3})
    for entry in included["log_entries"]:
        assert entry["incident"]["type"] == "incident" and entry["teams"][0]["type"] == "team"


def test_offset_plus_limit_beyond_ten_thousand_is_refused(pd):
    body = pd_get(pd, "/teams", {"limit": 100, "offset": 9950}, status=400)
    validate(PAGERDUTY_SPEC, "/teams", "get", 400, body)
    assert body["error"]["code"] == 2001 and "10000" in body["error"]["errors"][0]
    assert pd_get(pd, "/teams", {"limit": 100, "offset": 9900})["teams"] == []
    assert pd_get(pd, "/teams", {"limit": 1000})["limit"] == 100  # clamped, like the API


@pytest.mark.parametrize("path", ["/incidents", "/log_entries"])
def test_since_until_rules(pd, path):
    too_long = pd_get(pd, path, {"since": "2024-01-01T00:00:00Z", "until": "2024-07-15T00:00:00Z"}, status=400)
    validate(PAGERDUTY_SPEC, path, "get", 400, too_long)
    assert too_long["error"]["code"] == 2005
    unparseable = pd_get(pd, path, {"since": "last tuesday", "until": "2024-02-01T00:00:00Z"}, status=400)
    assert unparseable["error"]["code"] == 2004
    offsets = pd_get(pd, path, {"since": "2024-01-01T00:00:00+0000", "until": "2024-06-30T00:00:00+00:00"})
    assert offsets["more"] in (True, False)


def test_bad_token_and_unknown_resources(sandbox, pd):
    intruder = pagerduty.RestApiV2Client("not-the-token", base_url=sandbox.pagerduty_url,
                                         verify=sandbox.ca_bundle_path)
    with pytest.raises(pagerduty.HttpError) as raised:
        intruder.get("/teams")
    assert raised.value.response.status_code == 401
    assert raised.value.response.json() == {"error": {"message": "Unauthorized", "code": 2006}}
    assert pd_get(pd, "/escalation_policies", status=404)["error"]["code"] == 2100
    assert pd_get(pd, "/incidents/PNOSUCH", status=404)["error"]["code"] == 5001


def test_rate_limit_answers_429_with_headers_and_the_client_backs_off(org):
    with Sandbox(org, pagerduty_token=PD_TOKEN, rate_limit_per_minute=5) as limited:
        with httpx.Client(base_url=limited.pagerduty_url, verify=limited.ca_bundle_path,
                          headers={"Authorization": f"Token token={PD_TOKEN}"}) as raw:
            remaining = [int(raw.get("/teams").headers["ratelimit-remaining"]) for _ in range(5)]
            assert remaining == [4, 3, 2, 1, 0]
            refused = raw.get("/teams")
        assert refused.status_code == 429
        assert refused.json() == {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
        assert refused.headers["ratelimit-limit"] == "5" and refused.headers["ratelimit-remaining"] == "0"
        assert 0 < int(refused.headers["ratelimit-reset"]) <= 60

        client = pagerduty.RestApiV2Client(PD_TOKEN, base_url=limited.pagerduty_url, verify=limited.ca_bundle_path)
        client.sleep_timer = 0.01
        client.retry[429] = 1  # the client retries 429 forever by default
        assert client.get("/teams").status_code == 429
        assert limited.request_counts["pagerduty GET /teams"] == 8
        ca_bundle = Path(limited.ca_bundle_path)
        assert ca_bundle.is_file()
    assert not ca_bundle.exists()


def test_request_counts_name_the_endpoints(sandbox, pd, org):
    before = Counter(sandbox.request_counts)
    pd.rget(f"/incidents/{org.incidents[0].pagerduty_id}")
    after = sandbox.request_counts
    assert after["pagerduty GET /incidents/{id}"] == before["pagerduty GET /incidents/{id}"] + 1


def pagerduty_connection(sandbox) -> http.client.HTTPSConnection:
    """One HTTPS connection to the sandbox's PagerDuty API, trusting its CA."""
    address = urlsplit(sandbox.pagerduty_url)
    return http.client.HTTPSConnection(address.hostname, address.port, timeout=10,
                                       context=ssl.create_default_context(cafile=sandbox.ca_bundle_path))


def test_a_connection_stays_open_between_requests_as_the_real_services_keep_theirs(sandbox):
    """Each request on a connection closed after every response would pay a TLS handshake."""
    connection = pagerduty_connection(sandbox)
    try:
        sockets = []
        for _ in range(3):
            connection.request("GET", "/teams", headers={"Authorization": f"Token token={PD_TOKEN}"})
            response = connection.getresponse()
            assert response.status == 200 and json.loads(response.read())["teams"]
            sockets.append(connection.sock)
        assert sockets[0] is not None and all(sock is sockets[0] for sock in sockets)
    finally:
        connection.close()


def test_a_chunked_body_left_unread_does_not_spoil_the_connections_next_request(sandbox):
    """A 404 never reads its request's body; the next request on the connection starts after it."""
    connection = pagerduty_connection(sandbox)
    headers = {"Authorization": f"Token token={PD_TOKEN}"}
    try:
        connection.request("POST", "/no-such-path", body=iter([b'{"a": ', b'"b"}']), headers=headers,
                           encode_chunked=True)
        response = connection.getresponse()
        assert response.status == 404
        response.read()
        connection.request("GET", "/teams", headers=headers)
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["teams"]
    finally:
        connection.close()


def test_stopping_the_sandbox_answers_a_request_a_timeout_fault_holds(org):
    with Sandbox(org, pagerduty_token=PD_TOKEN) as sandbox:
        sandbox.inject_fault("pagerduty", "timeout", delay_seconds=60)
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{sandbox.pagerduty_url}/teams", headers={"Authorization": f"Token token={PD_TOKEN}"},
                      verify=sandbox.ca_bundle_path, timeout=0.5)
        started = time.monotonic()
        sandbox.stop()
        assert time.monotonic() - started < 5


@pytest.mark.slow
def test_a_sandbox_left_running_does_not_keep_its_process_alive(tmp_path):
    """Its server threads are daemon threads: a notebook or script that never stops it still exits
    (leaving its temporary folder, here in ``tmp_path``)."""
    code = ("from pipelines.sandbox.server import Sandbox\n"
            "from pipelines.synthetic.org import OrgSpec, generate\n"
            "Sandbox(generate(OrgSpec(seed=3, n_teams=2, n_months=6))).start()\n"
            "print('started')\n")
    run = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, check=False,
                         text=True, timeout=60, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert run.returncode == 0 and "started" in run.stdout, run.stderr


# -- Jira -------------------------------------------------------------------------------


def jira_json(jira, path, params=None):
    return jira._get_json(path, params=params)


def test_client_sees_a_cloud_site_and_metadata_matches_the_spec(jira, sandbox):
    assert jira._is_cloud and jira._version == (1001, 0, 0)
    info = jira.server_info()
    validate(JIRA_SPEC, "/rest/api/3/serverInfo", "get", 200, info)
    assert info["deploymentType"] == "Cloud" and info["baseUrl"] == sandbox.jira_url
    validate(JIRA_SPEC, "/rest/api/3/field", "get", 200, jira.fields())
    myself = jira.myself()
    validate(JIRA_SPEC, "/rest/api/3/myself", "get", 200, myself)
    assert myself["emailAddress"] == JIRA_EMAIL


def search_all(jira, jql, page_size, **kwargs):
    """Every page of a search; asserts the enhanced-search paging contract on the way."""
    pages, token = [], None
    while True:
        page = jira.enhanced_search_issues(jql, nextPageToken=token, maxResults=page_size, json_result=True, **kwargs)
        validate(JIRA_SPEC, "/rest/api/3/search/jql", "get", 200, page)
        assert "total" not in page
        pages.append(page)
        if page["isLast"]:
            assert "nextPageToken" not in page
            return pages
        token = page["nextPageToken"]


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def key_order(ticket) -> tuple[str, int]:
    project, number = ticket.key.rsplit("-", 1)
    return project, int(number)


@pytest.mark.parametrize(
    "jql, matches, order",
    [
        ("updated >= {start_ms} ORDER BY updated ASC",
         lambda t, start: t.updated >= start, lambda t: (t.updated, key_order(t))),
        ('project in (PAY, SEA) AND created >= "2024-03-01 00:00" order by key',
         lambda t, start: t.project_key in ("PAY", "SEA") and t.created >= datetime(2024, 3, 1, tzinfo=UTC),
         key_order),
        ("PROJECT = pay ORDER BY updated DESC",
         lambda t, start: t.project_key == "PAY", lambda t: (-t.updated.timestamp(), key_order(t))),
    ],
)
def test_next_page_tokens_return_every_matching_ticket_once_in_order(jira, org, jql, matches, order):
    start = datetime(2024, 2, 10, 12, tzinfo=UTC)
    pages = search_all(jira, jql.format(start_ms=epoch_ms(start)), 37, fields=list(SEARCH_FIELDS))
    served = [issue["key"] for page in pages for issue in page["issues"]]
    expected = sorted((t for t in org.tickets if matches(t, start)), key=order)
    assert served == [t.key for t in expected] and len(pages) > 1
    first = pages[0]["issues"][0]
    assert set(first["fields"]) == set(SEARCH_FIELDS)
    ticket = next(t for t in org.tickets if t.key == first["key"])
    assert first["fields"]["issuetype"]["name"] == ticket.issue_type
    assert first["fields"]["updated"] == ticket.updated.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def test_post_search_and_field_selection(jira, org):
    jql = "project = PAY ORDER BY key"
    by_get = jira.enhanced_search_issues(jql, maxResults=10, fields="summary,labels", json_result=True)
    by_post = jira.enhanced_search_issues(jql, maxResults=10, fields="summary,labels", json_result=True, use_post=True)
    assert by_get == by_post
    assert all(set(issue["fields"]) == {"summary", "labels"} for issue in by_get["issues"])
    ids_only = jira.enhanced_search_issues(jql, maxResults=500, fields=[], json_result=True)
    assert "fields" not in ids_only["issues"][0]
    assert len(ids_only["issues"]) == min(500, sum(t.project_key == "PAY" for t in org.tickets))
    capped = jira.enhanced_search_issues(jql, maxResults=500, fields=["*all", "-labels"], json_result=True)
    assert len(capped["issues"]) == 100 and "labels" not in capped["issues"][0]["fields"]


def test_changelog_beyond_the_embedded_page_is_reachable_and_complete(jira, org):
    long = max(org.tickets, key=lambda t: len(t.changelog))
    assert len(long.changelog) > 40, "the fixture organisation needs a ticket with a multi-page changelog"
    [issue] = jira.enhanced_search_issues(
        f"project = {long.project_key} AND created >= {epoch_ms(long.created)} AND created <= "
        f"{epoch_ms(long.created)}", fields=["status"], expand="changelog", json_result=True,
    )["issues"]
    embedded = issue["changelog"]
    assert embedded["total"] == len(long.changelog) and embedded["startAt"] == 0
    assert [h["id"] for h in embedded["histories"]] == [c.id for c in reversed(long.changelog)][:40]

    histories, start_at = [], 0
    while True:
        page = jira_json(jira, f"issue/{long.key}/changelog", {"startAt": start_at, "maxResults": 50})
        validate(JIRA_SPEC, "/rest/api/3/issue/{issueIdOrKey}/changelog", "get", 200, page)
        assert page["total"] == len(long.changelog)
        histories.extend(page["values"])
        start_at += len(page["values"])
        if page["isLast"]:
            assert "nextPage" not in page
            break
        assert page["nextPage"].endswith(f"startAt={start_at}&maxResults=50")
    assert [h["id"] for h in histories] == [c.id for c in long.changelog]
    assert [h["items"][0]["toString"] for h in histories] == [c.to_string for c in long.changelog]
    assert jira_json(jira, f"issue/{long.id}/changelog")["maxResults"] == 100


def jira_status(call) -> tuple[int, str]:
    with pytest.raises(JIRAError) as raised:
        call()
    return raised.value.status_code, raised.value.text


def test_jira_errors(jira, sandbox):
    assert jira_status(lambda: jira._get_json("search", params={"jql": "project = PAY"}))[0] == 410
    assert jira_status(lambda: jira._get_json("search", params={"jql": "project = PAY"}, use_post=True))[0] == 410
    for jql in ("order by key", "project = PAY OR project = SEA", "summary ~ disk", "project = NOPE",
                "updated >= yesterday", "project = PAY AND"):
        status, text = jira_status(lambda jql=jql: jira.enhanced_search_issues(jql, json_result=True))
        assert status == 400, jql
    first = jira.enhanced_search_issues("project = PAY", maxResults=5, json_result=True)
    foreign = lambda: jira.enhanced_search_issues(  # noqa: E731
        "project = SEA", nextPageToken=first["nextPageToken"], maxResults=5, json_result=True)
    assert jira_status(foreign)[0] == 400
    assert jira_status(lambda: jira._get_json("issue/NOPE-1/changelog"))[0] == 404
    with pytest.raises(JIRAError) as raised:
        JIRA(server=sandbox.jira_url, basic_auth=(JIRA_EMAIL, "wrong"),
             options={"rest_api_version": "3", "verify": sandbox.ca_bundle_path}, max_retries=0)
    assert raised.value.status_code == 401


# -- the spec patches and the command line ------------------------------------------------


@pytest.fixture(scope="module")
def sampled_responses(pd, jira, org):
    """(spec, path, status, body) of one response per endpoint the sandbox serves."""
    incident = next(i for i in org.incidents if i.acknowledged_at and i.impact_recorded_at)
    return [
        (PAGERDUTY_SPEC, "/incidents/{id}/log_entries", 200,
         pd_get(pd, f"/incidents/{incident.pagerduty_id}/log_entries")),
        (PAGERDUTY_SPEC, "/incidents/{id}/custom_fields/values", 200,
         pd_get(pd, f"/incidents/{incident.pagerduty_id}/custom_fields/values")),
        (PAGERDUTY_SPEC, "/incidents", 200, pd_get(pd, "/incidents", {"date_range": "all"})),
        (PAGERDUTY_SPEC, "/log_entries", 200, pd_get(pd, "/log_entries", {"since": iso(incident.created_at),
                                                                         "until": iso(org.as_of), "limit": 100})),
        (JIRA_SPEC, "/rest/api/3/serverInfo", 200, jira.server_info()),
        (JIRA_SPEC, "/rest/api/3/search/jql", 200,
         jira.enhanced_search_issues("project = PAY", fields="*all", expand="changelog", json_result=True)),
        (JIRA_SPEC, "/rest/api/3/issue/{issueIdOrKey}/changelog", 200, jira_json(jira, "issue/PAY-1/changelog")),
    ]


@pytest.mark.parametrize("patch", [p for patches in PATCHES.values() for p in patches], ids=lambda p: p.name)
def test_every_spec_patch_is_needed(sampled_responses, patch):
    spec_path = next(path for path, patches in PATCHES.items() if patch in patches)
    without = tuple(p for p in PATCHES[spec_path] if p != patch)
    failures = 0
    for spec, path, status, body in sampled_responses:
        if spec != spec_path:
            continue
        validate(spec, path, "get", status, body)
        try:
            validate(spec, path, "get", status, body, patches=without)
        except jsonschema.ValidationError:
            failures += 1
    assert failures, f"patch {patch.name!r} is no longer needed: every sample validates without it"


def test_command_line_reports_clear_errors(capsys):
    with pytest.raises(SystemExit) as exited:
        sandbox_main(["--teams", "1"])
    assert exited.value.code == 2 and "at least 2 teams" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sandbox_main(["--teams", "2", "--months", "6", "--as-of", "2031-01-01"])
    assert "after the organisation's cut-off 2024-07-01" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        sandbox_main(["--as-of", "last tuesday"])
    assert "not an ISO date" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert sandbox_main(["--teams", "2", "--months", "6", "--pagerduty-port", str(port), "--jira-port", "0"]) == 1
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


@pytest.mark.slow
def test_ctrl_c_stops_the_command_line_sandbox():
    """"Serving until Ctrl-C": the signal can reach one of the servers' threads rather than the
    main thread, and the sandbox still stops, at once and cleanly."""
    # The command's own main(), with SIGINT handled as a terminal's Ctrl-C finds it, even when
    # this test runs where SIGINT is ignored (a background job inherits that).
    command = ("import signal, sys\n"
               "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
               "from pipelines.sandbox.__main__ import main\n"
               "sys.exit(main(['--teams', '2', '--months', '6', '--pagerduty-port', '0', '--jira-port', '0']))\n")
    process = subprocess.Popen([sys.executable, "-c", command], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stdout:
            if line.startswith("Serving until Ctrl-C"):
                break
        # To one of its other threads: where the kernel may deliver a terminal's Ctrl-C, and
        # where the endless wait this guards against never saw it.
        other_thread = min(int(task) for task in os.listdir(f"/proc/{process.pid}/task") if int(task) != process.pid)
        assert ctypes.CDLL(None, use_errno=True).tgkill(process.pid, other_thread, signal.SIGINT) == 0
        assert process.wait(timeout=10) == 0, process.stderr.read()
    finally:
        process.kill()
        process.wait()


# -- single records, faults and variations ------------------------------------------------


def test_single_records_are_served_by_id(pd, jira, org):
    entry = pd_get(pd, "/log_entries", {"since": iso(org.incidents[0].created_at), "until": iso(org.as_of),
                                        "limit": 1})["log_entries"][0]
    single = pd_get(pd, f"/log_entries/{entry['id']}")
    validate(PAGERDUTY_SPEC, "/log_entries/{id}", "get", 200, single)
    assert single["log_entry"] == entry
    assert pd_get(pd, "/log_entries/RNOSUCH", status=404)["error"]["code"] == 2100

    long = max(org.tickets, key=lambda t: len(t.changelog))
    issue = jira_json(jira, f"issue/{long.id}", {"fields": ",".join(SEARCH_FIELDS), "expand": "changelog"})
    validate(JIRA_SPEC, "/rest/api/3/issue/{issueIdOrKey}", "get", 200, issue)
    assert (issue["id"], issue["key"], set(issue["fields"])) == (long.id, long.key, set(SEARCH_FIELDS))
    assert issue["changelog"]["total"] == len(long.changelog)
    assert [h["id"] for h in issue["changelog"]["histories"]] == [c.id for c in reversed(long.changelog)][:40]
    assert jira_status(lambda: jira_json(jira, "issue/NOPE-1"))[0] == 404


def test_reviews_links_sub_tasks_and_reporters_are_served_in_the_vendors_shapes(pd, jira, org):
    review = next(r for r in org.incident_reviews if r.action_items)
    body = pd_get(pd, f"/incidents/{review.incident_id}/review")["incident_review"]
    assert (body["id"], body["incident_id"], body["action_item_count"]) == (
        review.id, review.incident_id, len(review.action_items))
    assert body["status"] in ("started", "in_review", "completed")
    assert (body["completed_at"] is not None) == (body["status"] == "completed")
    items = pd_get(pd, f"/incidents/{review.incident_id}/review/action_items")["action_items"]
    assert [item["id"] for item in items] == [item.id for item in review.action_items]
    assert all((item["status"] == "completed") == (item["completed_at"] is not None) for item in items)
    unreviewed = next(i for i in org.incidents if i.pagerduty_id not in {r.incident_id for r in org.incident_reviews})
    assert pd_get(pd, f"/incidents/{unreviewed.pagerduty_id}/review", status=404)["error"]["code"] == 2100

    fields = "parent,subtasks,issuelinks,reporter,creator,issuetype"
    sub_task = next(t for t in org.tickets if t.parent_key)
    served = jira_json(jira, f"issue/{sub_task.key}", {"fields": fields})["fields"]
    assert served["parent"]["key"] == sub_task.parent_key and served["issuetype"]["subtask"]
    parent = jira_json(jira, f"issue/{sub_task.parent_key}", {"fields": fields})["fields"]
    assert sub_task.key in [child["key"] for child in parent["subtasks"]] and "parent" not in parent
    linking = next(t for t in org.tickets if t.links)
    link_type, other = linking.links[0]
    outward = jira_json(jira, f"issue/{linking.key}", {"fields": fields})["fields"]["issuelinks"]
    inward = jira_json(jira, f"issue/{other}", {"fields": fields})["fields"]["issuelinks"]
    assert any(link["type"]["name"] == link_type and link["outwardIssue"]["key"] == other for link in outward)
    assert any(link["type"]["name"] == link_type and link["inwardIssue"]["key"] == linking.key for link in inward)
    people = {p.account_id: p for p in org.people}
    for ticket in [t for t in org.tickets if t.reporter_account_id in people][:20]:
        person = people[ticket.reporter_account_id]
        reporter = jira_json(jira, f"issue/{ticket.key}", {"fields": fields})["fields"]["reporter"]
        assert reporter["accountId"] == person.account_id and reporter.get("emailAddress") == (
            person.email if person.email_visible else None)


def test_a_replayed_page_answers_with_another_requests_body(org):
    first, second = org.incidents[:2]
    long, other = sorted(org.tickets, key=lambda t: len(t.changelog), reverse=True)[:2]
    with Sandbox(org, pagerduty_token=PD_TOKEN, jira_email=JIRA_EMAIL, jira_token=JIRA_TOKEN) as sandbox:
        pd_client = pagerduty.RestApiV2Client(PD_TOKEN, base_url=sandbox.pagerduty_url, verify=sandbox.ca_bundle_path)
        jira_client = JIRA(server=sandbox.jira_url, basic_auth=(JIRA_EMAIL, JIRA_TOKEN), max_retries=0,
                           options={"rest_api_version": "3", "verify": sandbox.ca_bundle_path}, get_server_info=False)
        # Nothing to replay yet: the first request goes through and the fault waits.
        fault = sandbox.inject_fault("pagerduty", "replayed_page", path="/incidents/{id}")
        assert pd_get(pd_client, f"/incidents/{first.pagerduty_id}")["incident"]["id"] == first.pagerduty_id
        assert fault.fired == 0
        # Then another incident's body answers the request for this one.
        assert pd_get(pd_client, f"/incidents/{second.pagerduty_id}")["incident"]["id"] == first.pagerduty_id
        assert pd_get(pd_client, f"/incidents/{second.pagerduty_id}")["incident"]["id"] == second.pagerduty_id
        # The same for an issue's changelog: another issue's.
        assert jira_json(jira_client, f"issue/{long.key}/changelog")["total"] == len(long.changelog)
        sandbox.inject_fault("jira", "replayed_page", path="/rest/api/3/issue/{issueIdOrKey}/changelog")
        replayed = jira_json(jira_client, f"issue/{other.key}/changelog")
        assert replayed["total"] == len(long.changelog) and f"/issue/{long.key}/changelog" in replayed["self"]


@pytest.mark.parametrize("status", [400, 401, 500])
def test_echoed_headers_put_the_credentials_in_an_error_body_of_the_apis_shape(org, status):
    with Sandbox(org, pagerduty_token=PD_TOKEN, jira_email=JIRA_EMAIL, jira_token=JIRA_TOKEN) as sandbox:
        sandbox.inject_fault("pagerduty", "echoed_headers", status=status)
        sandbox.inject_fault("jira", "echoed_headers", status=status)
        with httpx.Client(verify=sandbox.ca_bundle_path) as raw:
            answer = raw.get(f"{sandbox.pagerduty_url}/teams", headers={"Authorization": f"Token token={PD_TOKEN}"})
            assert answer.status_code == status and f"Token token={PD_TOKEN}" in answer.json()["error"]["message"]
            answer = raw.get(f"{sandbox.jira_url}/rest/api/3/serverInfo", auth=(JIRA_EMAIL, JIRA_TOKEN))
            basic = base64.b64encode(f"{JIRA_EMAIL}:{JIRA_TOKEN}".encode()).decode()
            assert answer.status_code == status and f"Basic {basic}" in answer.json()["errorMessages"][0]


def test_a_rewrite_serves_the_record_shape_a_test_chooses(org):
    with Sandbox(org, pagerduty_token=PD_TOKEN) as sandbox:
        sandbox.inject_fault("pagerduty", "rewrite", path="/teams", rewrite=lambda body: {**body, "teams": []})
        client = pagerduty.RestApiV2Client(PD_TOKEN, base_url=sandbox.pagerduty_url, verify=sandbox.ca_bundle_path)
        assert pd_get(client, "/teams")["teams"] == []
        assert len(pd_get(client, "/teams")["teams"]) == len(org.teams)  # once, unless times says otherwise
    with pytest.raises(ValueError, match="rewrite"):
        Fault("rewrite")
    with pytest.raises(ValueError, match="unknown variations"):
        Sandbox(org, variations={"notes", "teapot"})


# Variations outside the published schemas, and the documents that say the API sends them.
BEYOND_THE_SCHEMAS = {
    # Reference requires a type; a captured 2013 answer's acknowledge entry has none (see
    # tests/test_ingestion.py, CAPTURED_2013_TIMELINE).
    "untyped_agents": {"/log_entries"},
    # The schemas do not mark these nullable, but tests/specs/pagerduty/06-Types.md: "Unless otherwise
    # noted, any field in the PagerDuty API can contain the value null", and AcknowledgeLogEntry's
    # own description: acknowledgement_timeout "may also be null".
    "null_fields": {"/log_entries", "/incidents", "/incidents/{id}", "/services"},
}


@pytest.fixture(scope="module")
def varied(org):
    every = {*PagerDutyApi.VARIATIONS, *JiraApi.VARIATIONS}
    with Sandbox(org, pagerduty_token=PD_TOKEN, jira_email=JIRA_EMAIL, jira_token=JIRA_TOKEN,
                 variations=every) as sandbox:
        pd_client = pagerduty.RestApiV2Client(PD_TOKEN, base_url=sandbox.pagerduty_url, verify=sandbox.ca_bundle_path)
        jira_client = JIRA(server=sandbox.jira_url, basic_auth=(JIRA_EMAIL, JIRA_TOKEN), max_retries=0,
                           options={"rest_api_version": "3", "verify": sandbox.ca_bundle_path}, get_server_info=False)
        yield pd_client, jira_client


def test_pagerduty_variations_serve_the_documented_shapes(varied, org):
    pd_client, _ = varied
    start, end = history_bounds(org)
    entries = [e for since, until in windows(start, end, timedelta(days=90))
               for e in pd_client.iter_all("log_entries", params={"since": iso(since), "until": iso(until)})]
    incidents = {i["id"]: i for i in pd_client.iter_all("incidents", params={"date_range": "all"})}
    notes = [e for e in entries if e["type"] == "annotate_log_entry"]
    assert notes and all(e["channel"]["type"] == "note" for e in notes)
    for note in notes:  # a note moves neither updated_at nor last_status_change_at
        incident = incidents[note["incident"]["id"]]
        assert datetime.fromisoformat(note["created_at"]) > datetime.fromisoformat(incident["updated_at"])
    acks = [e for e in entries if e["type"] == "acknowledge_log_entry"]
    assert acks and all("type" not in e["agent"] and "/users/" in e["agent"]["self"] for e in acks)
    assert all(e["acknowledgement_timeout"] is None and e["html_url"] is None for e in acks)
    by_api = [e for e in entries if e["type"] == "resolve_log_entry" and e["channel"]["type"] == "api"]
    assert by_api and all(e["agent"]["type"] == "integration_reference" for e in by_api)
    assert all(e["created_at"].endswith("-05:00") for e in entries)
    assert all(e["service"]["self"] is None and e["teams"][0]["html_url"] is None for e in entries)
    assert all("resolve_reason" in i for i in incidents.values())
    assert {s["description"] for s in pd_client.iter_all("services")} == {None}


def test_jira_variations_serve_the_documented_shapes(varied, org):
    _, jira_client = varied
    jql, pages, token = "project = PAY ORDER BY key", [], None
    while True:
        page = jira_json(jira_client, "search/jql", {"jql": jql, "maxResults": 40, "expand": "changelog",
                                                      "nextPageToken": token})
        pages.append(page)
        token = page["nextPageToken"]
        if token is None:
            break
    assert all("isLast" not in page for page in pages) and len(pages) > 1
    assert {len(page["issues"]) for page in pages[:-1]} == {15}  # fewer than the 40 asked for
    assert sum(len(page["issues"]) for page in pages) == sum(t.project_key == "PAY" for t in org.tickets)
    embedded = [issue["changelog"] for page in pages for issue in page["issues"]]
    assert all(changelog["histories"] == [] for changelog in embedded) and any(c["total"] for c in embedded)
    long = max(org.tickets, key=lambda t: len(t.changelog))
    listed = jira_json(jira_client, f"issue/{long.key}/changelog", {"maxResults": 10})
    assert "isLast" not in listed and "nextPage" not in listed and listed["total"] == len(long.changelog)


@pytest.mark.slow
def test_variations_stay_within_the_published_contracts_but_where_the_vendor_says_otherwise(org):
    checked = 0
    for variation in (*PagerDutyApi.VARIATIONS, *JiraApi.VARIATIONS):
        with Sandbox(org, pagerduty_token=PD_TOKEN, jira_email=JIRA_EMAIL, jira_token=JIRA_TOKEN,
                     variations={variation}) as sandbox:
            pd_client = pagerduty.RestApiV2Client(PD_TOKEN, base_url=sandbox.pagerduty_url,
                                                  verify=sandbox.ca_bundle_path)
            jira_client = JIRA(server=sandbox.jira_url, basic_auth=(JIRA_EMAIL, JIRA_TOKEN), max_retries=0,
                               options={"rest_api_version": "3", "verify": sandbox.ca_bundle_path},
                               get_server_info=False)
            incident = next(i for i in org.incidents if i.resolved_at and i.number % 3 == 0)
            long = max(org.tickets, key=lambda t: len(t.changelog))
            samples = [
                (PAGERDUTY_SPEC, "/log_entries", pd_get(pd_client, "/log_entries", {
                    "since": iso(incident.created_at), "until": iso(incident.created_at + timedelta(days=7)),
                    "limit": 100})),
                (PAGERDUTY_SPEC, "/incidents", pd_get(pd_client, "/incidents", {"date_range": "all", "limit": 100})),
                (PAGERDUTY_SPEC, "/incidents/{id}", pd_get(pd_client, f"/incidents/{incident.pagerduty_id}")),
                (PAGERDUTY_SPEC, "/services", pd_get(pd_client, "/services")),
                (JIRA_SPEC, "/rest/api/3/search/jql", jira_json(jira_client, "search/jql", {
                    "jql": "project = PAY", "fields": ",".join(SEARCH_FIELDS), "expand": "changelog"})),
                (JIRA_SPEC, "/rest/api/3/issue/{issueIdOrKey}/changelog",
                 jira_json(jira_client, f"issue/{long.key}/changelog")),
            ]
        beyond = BEYOND_THE_SCHEMAS.get(variation, set())
        for spec, path, body in samples:
            if path in beyond:
                with pytest.raises(jsonschema.ValidationError):
                    validate(spec, path, "get", 200, body)
            else:
                validate(spec, path, "get", 200, body)
                checked += 1
    assert checked > 50
