"""Archived Jira issues (Jira Cloud Premium and Enterprise) keep their rows in the warehouse.

Jira Cloud documents an archived issue as left out of every search ("its issues won't appear in
basic or advanced search results"), so out of `/rest/api/3/search/jql`, and still open to read
("You can still access these issues through direct links, but you won't be able to edit them"):
`GET /rest/api/3/issue/{id}` answers 404 only when "the issue is not found or the user does not
have permission to view it", and its IssueBean carries no archived flag. The sync's id listing
lacks an archived issue like a deleted one; its by-id check tells them apart, so the archived
issue is kept as it was and only the deleted one leaves. The sandbox archives an issue here as
documented: every /search/jql answer leaves it out, /issue/{id} still serves it.
"""

import re
from dataclasses import replace

import dagster as dg
import pytest
from test_ingestion import failures, query, removed_issues, sync

from assets.jira.assets import jira_issues
from pipelines.demo import start_sandbox
from pipelines.synthetic.org import OrgSpec, generate

SEARCH = "/rest/api/3/search/jql"
ISSUE_BY_ID = "jira GET /rest/api/3/issue/{issueIdOrKey}"


@pytest.fixture(scope="module")
def org():
    return generate(OrgSpec(seed=5, n_teams=2, n_months=6))


def archive(sandbox, issue_ids: set[str]) -> None:
    """Archive ``issue_ids`` on the sandbox's site: no search lists them any more (the night's
    search with fields, nor the id listing); `/issue/{id}` still serves them."""

    def left_out_of_search(body: dict) -> dict:
        body["issues"] = [issue for issue in body["issues"] if issue["id"] not in issue_ids]
        return body

    sandbox.inject_fault("jira", "rewrite", path=SEARCH, rewrite=left_out_of_search, times=None)


def stored(warehouse) -> dict[str, str]:
    """Each stored issue's payload, its links without the sandbox's address (a new port each start)."""
    return {issue_id: re.sub(r"https://[^/\"]+", "", payload)
            for issue_id, payload in query(warehouse, "select id, cast(payload as varchar) from raw.jira__issues")}


def standalone(org) -> list:
    """Issues no other issue links to or parents: deleting one leaves no dangling reference."""
    referenced = {key for t in org.tickets for key in [t.parent_key, *(other for _, other in t.links)] if key}
    return [t for t in org.tickets if t.key not in referenced and t.parent_key is None]


def test_an_archived_issue_keeps_its_row_and_a_deleted_one_leaves(org, tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    *archived, deleted = standalone(org)[:3]
    with start_sandbox(org) as sandbox:
        assert sync(org, sandbox, warehouse, selection=[jira_issues]).success
    before = stored(warehouse)
    assert set(before) == {t.id for t in org.tickets}

    remaining = replace(org, tickets=[t for t in org.tickets if t is not deleted])
    for night in range(2):
        with start_sandbox(remaining) as sandbox:
            archive(sandbox, {t.id for t in archived})
            instance = dg.DagsterInstance.ephemeral()
            result = sync(remaining, sandbox, warehouse, instance=instance, selection=[jira_issues])
            asked_by_id = sandbox.request_counts[ISSUE_BY_ID]
        assert result.success, failures(result)
        # The log names archiving as a cause of an issue served by id but not listed.
        assert any(f"{len(archived)} issues Jira's id listing lacked are still served by id (archived in Jira" in
                   record.user_message for record in instance.all_logs(result.run_id)), "no word of the archived"
        after = stored(warehouse)
        # The deleted issue leaves; each archived one stays, exactly as stored before.
        assert set(after) == set(before) - {deleted.id}
        assert {t.id: after[t.id] for t in archived} == {t.id: before[t.id] for t in archived}
        [materialization] = result.asset_materializations_for_node("raw__jira__issues")
        if night == 0:
            assert removed_issues(result) == 1 and materialization.metadata["removed_ids"].value == [deleted.id]
            assert asked_by_id == len(archived) + 1
        else:  # nothing is left to remove; the archived issues are asked for by id again
            assert removed_issues(result) == 0 and asked_by_id == len(archived)


def test_archiving_most_issues_loses_none_even_when_mass_removal_is_accepted(org, tmp_path):
    # An admin archiving the old projects can hide more than half the stored issues from the
    # listing at once: the sync removes none and warns. Told to accept the mass removal, it still
    # confirms each by id, and an archived issue Jira serves stays.
    warehouse = tmp_path / "warehouse.duckdb"
    with start_sandbox(org) as sandbox:
        assert sync(org, sandbox, warehouse, selection=[jira_issues]).success
    before = stored(warehouse)
    live = sorted(org.tickets, key=lambda t: t.updated)[-10:]  # the newest ten stay live
    archived = {t.id for t in org.tickets} - {t.id for t in live}
    assert len(archived) > len(before) / 2
    for accept in (False, True):
        with start_sandbox(org) as sandbox:
            archive(sandbox, archived)
            result = sync(org, sandbox, warehouse, selection=[jira_issues],
                          config={"accept_mass_removal": accept})
        assert result.success, failures(result)
        assert removed_issues(result) == 0 and stored(warehouse).keys() == before.keys()
