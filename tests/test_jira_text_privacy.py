"""The texts a stored Jira issue keeps name no one in clear (assets/identity.py): an @mention in a
description edit, as the changelog writes it in wiki markup, keeps the pseudonym the person has
as reporter; typed email addresses become pseudonyms; the incident ids a review's text names
stay readable to the KPI rules' patterns."""

import json

import duckdb
import pytest

from assets.identity import account_pseudonym, email_pseudonym, pseudonymise_people
from assets.kpi_rules import read_kpi_rules
from assets.warehouse.raw_tables import upsert_json_records

SALT = "a-salt-of-at-least-16-chars"
ACCOUNT = "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077"
LEGACY_ACCOUNT = "5b10ac8d82e05b22cc7d4ef5"
EMAIL = "jane.doe@example.com"
OTHER_EMAIL = "Raj.Patel+oncall@example.co.uk"
USERNAME = "rpatel"
IN_CLEAR = (ACCOUNT, LEGACY_ACCOUNT, EMAIL, OTHER_EMAIL, OTHER_EMAIL.lower(), f"[~{USERNAME}]", "Jane Doe")
# What a review's text names that the KPI rules read, and hex ids that are no one's.
INCIDENT_URL = "https://acme.pagerduty.com/incidents/Q1W2E3R4T5Y6U7"
COMMIT = "9fceb02d0ae598e95dc970b74767f19372d61af8"


def paragraph(*content: dict) -> dict:
    return {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": list(content)}]}


def review() -> dict:
    """A post-incident review as /rest/api/3/search/jql returns it with its changelog: the
    description in ADF (a mention node, a typed and auto-linked address); a description edit, a
    summary edit and an environment edit in the changelog, whose old and new texts Jira gives in
    wiki markup, mentions written [~accountid:<id>] (a migrated one [~username])."""
    new_description = (f"Follow-up of {INCIDENT_URL} (incident #4711), spotted by [~accountid:{ACCOUNT}] "
                       f"([{EMAIL}|mailto:{EMAIL}]); see [~accountid:{LEGACY_ACCOUNT}] and commit {COMMIT}")
    return {"id": "424242", "key": "OPS-9", "fields": {
        "summary": f"PIR: disk almost full (incident #4711), ask {OTHER_EMAIL}",
        "issuetype": {"name": "Post-incident review", "subtask": False}, "project": {"key": "OPS"},
        "created": "2026-10-01T10:00:00.000+0000", "updated": "2026-10-02T10:00:00.000+0000",
        "status": {"id": "1", "name": "To Do", "statusCategory": {"key": "new"}}, "labels": ["pir"], "components": [],
        "reporter": {"accountId": ACCOUNT, "displayName": "Jane Doe", "emailAddress": EMAIL,
                     "accountType": "atlassian"},
        "description": paragraph(
            {"type": "text", "text": f"Follow-up of {INCIDENT_URL} (incident #4711), spotted by "},
            {"type": "mention", "attrs": {"id": ACCOUNT, "text": "@Jane Doe", "accessLevel": ""}},
            {"type": "text", "text": f" ({EMAIL}); profile https://acme.atlassian.net/jira/people/{ACCOUNT}"},
            {"type": "text", "text": OTHER_EMAIL,
             "marks": [{"type": "link", "attrs": {"href": f"mailto:{OTHER_EMAIL}"}}]})},
        "changelog": {"startAt": 0, "maxResults": 1, "total": 1, "histories": [{
            "id": "1", "created": "2026-10-02T10:00:00.000+0000",
            "author": {"accountId": ACCOUNT, "displayName": "Jane Doe", "accountType": "atlassian"},
            "items": [
                {"field": "description", "fieldtype": "jira", "fieldId": "description", "from": None,
                 "fromString": f"Disk at 91%, ask [~{USERNAME}]", "to": None, "toString": new_description},
                {"field": "summary", "fieldtype": "jira", "fieldId": "summary", "from": None,
                 "fromString": "Disk almost full", "to": None, "toString": f"PIR: disk almost full, ask {OTHER_EMAIL}"},
                {"field": "environment", "fieldtype": "jira", "fieldId": "environment", "from": None,
                 "fromString": None, "to": None, "toString": f"prod-eu, owner [~accountid:{ACCOUNT}]"}]}]}}


def stored(issue: dict, salt: str | None) -> tuple[str, dict]:
    """The issue as raw.jira__issues keeps it, pseudonymised as JiraResource.received does and
    written by the sync's raw writer: its payload's text and the payload."""
    conn = duckdb.connect()
    upsert_json_records(conn, "jira__issues", [pseudonymise_people(issue, salt)])
    [(text,)] = conn.execute("select payload::varchar from raw.jira__issues where id = '424242'").fetchall()
    return text, json.loads(text)


def test_mentions_and_addresses_in_texts_are_stored_as_the_pseudonyms_people_have_elsewhere():
    text, payload = stored(review(), SALT)
    assert [clear for clear in IN_CLEAR if clear.lower() in text.lower()] == []
    jane, raj_email = account_pseudonym(SALT, ACCOUNT), email_pseudonym(SALT, OTHER_EMAIL)
    # The mention in the description edit names the reporter by the reporter's pseudonym.
    reporter = payload["fields"]["reporter"]
    description, summary, environment = payload["changelog"]["histories"][0]["items"]
    assert reporter["accountId"] == jane and reporter["emailAddress"] == email_pseudonym(SALT, EMAIL)
    assert description["toString"] == (
        f"Follow-up of {INCIDENT_URL} (incident #4711), spotted by [~accountid:{jane}] "
        f"([email:{reporter['emailAddress']}|mailto:email:{reporter['emailAddress']}]); "
        f"see [~accountid:{account_pseudonym(SALT, LEGACY_ACCOUNT)}] and commit {COMMIT}")
    assert description["fromString"] == f"Disk at 91%, ask [~accountid:{account_pseudonym(SALT, USERNAME)}]"
    assert summary["toString"] == f"PIR: disk almost full, ask email:{raj_email}"
    assert environment["toString"] == f"prod-eu, owner [~accountid:{jane}]"
    # The current texts: an address typed or linked, a profile link.
    assert payload["fields"]["summary"] == f"PIR: disk almost full (incident #4711), ask email:{raj_email}"
    first, mention, typed, linked = payload["fields"]["description"]["content"][0]["content"]
    assert mention["attrs"]["id"] == jane
    assert typed["text"] == (f" (email:{reporter['emailAddress']}); "
                             f"profile https://acme.atlassian.net/jira/people/{jane}")
    assert (linked["text"], linked["marks"][0]["attrs"]["href"]) == (f"email:{raj_email}", f"mailto:email:{raj_email}")
    assert first == review()["fields"]["description"]["content"][0]["content"][0]


def test_the_incidents_a_review_names_stay_readable_to_the_kpi_rules():
    # int_review_incidents reads the stored summary and description with the rules' patterns.
    rules = read_kpi_rules()
    conn = duckdb.connect()
    upsert_json_records(conn, "jira__issues", [pseudonymise_people(review(), SALT)])
    found = {ref for pattern in (*rules.incident_id_patterns, *rules.incident_number_patterns)
             for (refs,) in conn.execute("select regexp_extract_all(summary || ' ' || description::varchar, ?, 1) "
                                         "from raw.jira__issues", [pattern]).fetchall() for ref in refs}
    assert found == {"Q1W2E3R4T5Y6U7", "4711"}


@pytest.mark.parametrize("salt", [SALT, None])
def test_texts_rewritten_once_are_left_as_they_are_and_without_a_salt_no_one_stays(salt):
    once = pseudonymise_people(review(), salt)
    assert pseudonymise_people(once, salt) == once
    text = json.dumps(once)
    assert [clear for clear in IN_CLEAR if clear.lower() in text.lower()] == []
    if salt is None:
        [description, *_] = once["changelog"]["histories"][0]["items"]
        assert description["fromString"] == "Disk at 91%, ask @"
        assert "[~" not in text and "email:," not in text
