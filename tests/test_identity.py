"""People in Jira issues are pseudonymised as the issues are received (assets/identity.py):
changelog items of user fields, custom user pickers and Service Management's participant
lists included, keep only pseudonyms of account ids, never names."""

import json

import dagster as dg
import duckdb

from assets.identity import account_pseudonym, pseudonymise_people
from assets.jira.assets import jira_issues, quarantine_checks
from assets.api_quarantine import ApiRequest
from assets.jira.resource import JiraResource
from assets.warehouse.resource import WarehouseResource
from pipelines.demo import SANDBOX_HR_SALT, SANDBOX_JIRA_EMAIL, SANDBOX_JIRA_TOKEN, start_sandbox
from pipelines.synthetic.org import OrgSpec, generate

SALT = "salt"
LEGACY_ID = "5b10ac8d82e05b22cc7d4ef5"
UUID_ID = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"
NAMES = ("Jane Doe", "Raj Patel")


def changed(*items: dict) -> dict:
    """An issue with one history changing ``items``."""
    return {"id": "1", "key": "OPS-1", "changelog": {"histories": [
        {"id": "10001", "created": "2024-05-03T10:00:00.000+0000", "items": list(items)}]}}


def items_of(issue: dict) -> list[dict]:
    return issue["changelog"]["histories"][0]["items"]


# Changes of fields that name no one, some of them lists like multi-user pickers' ones.
NAMING_NO_ONE = [
    {"field": "status", "fieldtype": "jira", "fieldId": "status", "from": "10000", "fromString": "To Do",
     "to": "10001", "toString": "In Progress"},
    {"field": "Sprint", "fieldtype": "custom", "fieldId": "customfield_10020", "from": "", "fromString": "",
     "to": "12, 13", "toString": "Sprint 12, Sprint 13"},
    {"field": "Component", "fieldtype": "jira", "fieldId": "components", "from": None, "fromString": None,
     "to": "[10100]", "toString": "Checkout"},
]


def test_changes_of_custom_user_fields_keep_only_the_pseudonyms_of_their_account_ids():
    issue = changed(
        {"field": "assignee", "fieldtype": "jira", "fieldId": "assignee", "from": None, "fromString": None,
         "to": LEGACY_ID, "toString": "Jane Doe"},
        {"field": "Incident commander", "fieldtype": "custom", "fieldId": "customfield_10050", "from": UUID_ID,
         "fromString": "Raj Patel", "to": LEGACY_ID, "toString": "Jane Doe"},
        {"field": "Request participants", "fieldtype": "custom", "fieldId": "customfield_10027", "from": "[]",
         "fromString": "", "to": f"[{LEGACY_ID}, {UUID_ID}]", "toString": "Jane Doe, Raj Patel"},
        {"field": "Approvers", "fieldtype": "custom", "fieldId": "customfield_10003", "from": f"[{UUID_ID}]",
         "fromString": "Raj Patel", "to": "[]", "toString": ""},
        *NAMING_NO_ONE,
    )
    assignee, commander, participants, approvers, *others = items_of(pseudonymise_people(issue, SALT))
    jane, raj = account_pseudonym(SALT, LEGACY_ID), account_pseudonym(SALT, UUID_ID)
    # The same person has the same pseudonym in a custom field as in the assignee.
    assert (assignee["to"], commander["from"], commander["to"]) == (jane, raj, jane)
    assert (participants["from"], participants["to"]) == ("[]", f"[{jane}, {raj}]")
    assert (approvers["from"], approvers["to"]) == (f"[{raj}]", "[]")
    for item in (commander, participants, approvers):
        assert (item["fromString"], item["toString"]) == (None, None)
        assert item["field"] and item["fieldId"].startswith("customfield_")
    # Other fields keep their values; a custom one's display strings go (a username, a typed name
    # cannot be told from an option's label), marked done.
    status, sprint, component = others
    assert (status, component) == (NAMING_NO_ONE[0], NAMING_NO_ONE[2])
    assert sprint == {**NAMING_NO_ONE[1], "fromString": None, "toString": None, "pseudonymised": True}
    stored = json.dumps(pseudonymise_people(issue, SALT))
    assert not [clear for clear in (LEGACY_ID, UUID_ID, *NAMES) if clear in stored]


def test_a_change_pseudonymised_once_is_left_as_it_is_and_without_a_salt_no_one_stays():
    issue = changed({"field": "Request participants", "fieldtype": "custom", "fieldId": "customfield_10027",
                     "from": None, "fromString": None, "to": f"[{LEGACY_ID}]", "toString": "Jane Doe"})
    once = pseudonymise_people(issue, SALT)
    assert pseudonymise_people(once, SALT) == once
    [dropped] = items_of(pseudonymise_people(issue, None))
    assert (dropped["to"], dropped["toString"]) == ("[]", None)


def sync_issues(org, sandbox, warehouse, salt: str, **config) -> dg.ExecuteInProcessResult:
    """raw/jira__issues from the sandbox, its people pseudonymised with ``salt``."""
    jira = JiraResource(server_url=sandbox.jira_url, email=SANDBOX_JIRA_EMAIL, api_token=SANDBOX_JIRA_TOKEN,
                        ca_bundle_path=sandbox.ca_bundle_path, kpi_rules_path=sandbox.kpi_rules_path,
                        identity_salt=salt, timeout_seconds=5, max_attempts=4, base_delay_seconds=0.01,
                        max_delay_seconds=5)
    definitions = dg.Definitions(assets=[jira_issues], asset_checks=quarantine_checks,
                                 resources={"jira": jira, "duckdb": WarehouseResource(database=str(warehouse))},
                                 jobs=[dg.define_asset_job("sync")])
    return definitions.resolve_job_def("sync").execute_in_process(
        run_config={"ops": {"raw__jira__issues": {"config": {"history_start": org.spec.start.isoformat(), **config}}}},
        raise_on_error=False)


def test_a_changed_salt_stops_the_sync_until_a_full_refresh_pseudonymises_every_issue_again(tmp_path):
    # Issues keep the pseudonyms they were received with; the HR exports and the identity map
    # are hashed again every run. A new salt would leave no reporter matching anyone, silently.
    org = generate(OrgSpec(seed=3, n_teams=2, n_months=6))
    warehouse = tmp_path / "warehouse.duckdb"

    def reporters() -> set[str]:
        with duckdb.connect(str(warehouse), read_only=True) as conn:
            return {r for (r,) in conn.execute("select reporter_account_id from raw.jira__issues").fetchall() if r}

    expected = {account_pseudonym("new salt", t.reporter_account_id) for t in org.tickets if t.reporter_account_id}
    with start_sandbox(org) as sandbox:
        assert sync_issues(org, sandbox, warehouse, "old salt").success
        before = reporters()
        refused = sync_issues(org, sandbox, warehouse, "new salt")
        assert not refused.success and reporters() == before
        message = refused.get_step_failure_events()[0].event_specific_data.user_failure_data.description
        assert "PSAFE_HR_ID_SALT" in message and "full_refresh: true" in message
        assert sync_issues(org, sandbox, warehouse, "new salt", full_refresh=True).success
        assert sync_issues(org, sandbox, warehouse, "new salt").success
    assert reporters() == expected and not before & expected


def test_a_synced_issue_stores_no_name_or_account_id_of_a_custom_user_field(tmp_path):
    """Through the sandbox and the real sync: a history changing a user-picker custom field,
    as Jira Cloud embeds it in the search, reaches raw.jira__issues as pseudonyms."""
    org = generate(OrgSpec(seed=3, n_teams=2, n_months=6))
    warehouse = tmp_path / "warehouse.duckdb"
    changed_issue = {}

    def add_a_commander(body: dict) -> dict:
        issue = next(issue for issue in body["issues"]
                     if issue["changelog"]["total"] == len(issue["changelog"]["histories"]))
        histories = issue["changelog"]["histories"]
        histories.insert(0, {"id": "999001", "author": histories[0]["author"], "created": histories[0]["created"],
                             "items": [{"field": "Incident commander", "fieldtype": "custom",
                                        "fieldId": "customfield_10050", "from": None, "fromString": None,
                                        "to": LEGACY_ID, "toString": "Jane Doe"}]})
        issue["changelog"].update(total=len(histories), maxResults=len(histories))
        changed_issue["id"] = issue["id"]
        return body

    with start_sandbox(org) as sandbox:
        sandbox.inject_fault("jira", "rewrite", path="/rest/api/3/search/jql", rewrite=add_a_commander)
        result = sync_issues(org, sandbox, warehouse, SANDBOX_HR_SALT)
    assert result.success
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        [(payload,)] = conn.execute("select payload::varchar from raw.jira__issues where id = ?",
                                    [changed_issue["id"]]).fetchall()
    [history] = [h for h in json.loads(payload)["changelog"]["histories"] if h["id"] == "999001"]
    [item] = history["items"]
    assert (item["to"], item["toString"]) == (account_pseudonym(SANDBOX_HR_SALT, LEGACY_ID), None)
    assert LEGACY_ID not in payload and "Jane Doe" not in payload


def test_histories_an_older_sync_stored_in_clear_are_pseudonymised_when_they_complete_a_changelog():
    # A warehouse synced before custom user fields were recognised holds their names; an issue
    # re-fetched later completes its changelog from those stored histories.
    commander = {"field": "Incident commander", "fieldtype": "custom", "fieldId": "customfield_10050",
                 "from": None, "fromString": None, "to": LEGACY_ID, "toString": "Jane Doe"}
    stored = changed(commander)["changelog"]["histories"]
    newest = {"id": "10002", "created": "2024-05-04T10:00:00.000+0000", "items": [NAMING_NO_ONE[0]]}
    at = "2024-05-04T10:00:00.000+0000"
    issue = {"id": "1", "key": "OPS-1", "fields": {"created": at, "updated": at},
             "changelog": {"startAt": 0, "maxResults": 1, "total": 2, "histories": [newest]}}
    jira = JiraResource(server_url="https://jira.invalid", email="e", api_token="t", identity_salt=SALT)
    completed = jira.completed(None, issue, ApiRequest("GET", "/rest/api/3/search/jql"),
                               stored_histories=lambda issue_id: stored)
    assert [h["id"] for h in completed["changelog"]["histories"]] == ["10001", "10002"]
    assert LEGACY_ID not in json.dumps(completed) and "Jane Doe" not in json.dumps(completed)


def test_custom_fields_naming_people_otherwise_keep_no_name():
    # A site migrated from Jira Server: a picker's change names a user key; a text field holds a
    # name typed in; a picker cleared, its old user only in the strings.
    issue = changed(
        {"field": "Incident commander", "fieldtype": "custom", "fieldId": "customfield_10050", "from": None,
         "fromString": None, "to": "JIRAUSER10100", "toString": "Jane Doe"},
        {"field": "Reported by (text)", "fieldtype": "custom", "fieldId": "customfield_10060", "from": None,
         "fromString": None, "to": None, "toString": "Raj Patel"},
        {"field": "Incident commander", "fieldtype": "custom", "fieldId": "customfield_10050", "from": "",
         "fromString": "Jane Doe", "to": "", "toString": ""},
    )
    picker, text, cleared = items_of(pseudonymise_people(issue, SALT))
    assert picker["to"] == account_pseudonym(SALT, "JIRAUSER10100")
    assert not [clear for clear in ("JIRAUSER10100", *NAMES) if clear in json.dumps([picker, text, cleared])]
