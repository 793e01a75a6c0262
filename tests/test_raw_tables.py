"""Raw API tables keep each payload with the fields the marts need as typed columns, read
once when the record is written; a warehouse written before a field existed is migrated."""

import json
from datetime import UTC, datetime

import duckdb
import pytest
from werkzeug.test import Client

from assets.warehouse.raw_tables import (
    RAW_FIELDS,
    RawRecordError,
    migrate_raw_tables,
    untypable_records,
    upsert_json_records,
)
from pipelines.sandbox.pagerduty import PagerDutyApi
from pipelines.synthetic.org import OrgSpec, generate


def _teams(payload: dict, key: str = "id") -> list:
    return [(team or {}).get(key) for team in payload.get("teams") or []]


def _impact(entry: dict):
    fields = ((entry.get("channel") or {}).get("changeset") or {}).get("customer_fields") or []
    values = [f.get("value") for f in fields if f.get("name") == "impact_started"]
    return (values[0][0] if isinstance(values[0], list) else values[0]) if values else None


# The fields as a plain Python reading of each payload gives them (timestamps as the text the
# API sent): an implementation independent of the SQL in RAW_FIELDS.
PYTHON_READING = {
    "pagerduty__incidents": lambda p: {
        "incident_number": p["incident_number"], "service_id": p["service"]["id"],
        "service_name": p["service"].get("summary"), "team_ids": _teams(p),
        "status": p["status"], "urgency": p.get("urgency"),
        "resolve_reason_type": (p.get("resolve_reason") or {}).get("type"),
        "resolve_reason_incident_id": ((p.get("resolve_reason") or {}).get("incident") or {}).get("id")},
    "pagerduty__log_entries": lambda p: {
        "incident_id": p["incident"]["id"], "entry_type": p["type"], "agent_type": (p.get("agent") or {}).get("type"),
        "agent_id": (p.get("agent") or {}).get("id"), "channel_type": (p.get("channel") or {}).get("type"),
        "team_ids": _teams(p), "team_names": _teams(p, "summary")},
}


@pytest.fixture(scope="module")
def served():
    """What the sandbox serves for a generated organisation."""
    org = generate(OrgSpec(seed=5, n_teams=3, n_months=6))
    api = Client(PagerDutyApi(org, token="t", base_url="https://pd.example", rate_limit_per_minute=10**6,
                              count_request=lambda key: None))
    get = lambda path: api.get(path, query_string={"date_range": "all", "limit": 100},  # noqa: E731
                               headers={"Authorization": "Token token=t"}).get_json()
    return {"pagerduty__incidents": get("/incidents")["incidents"],
            "pagerduty__log_entries": get("/log_entries")["log_entries"]}


@pytest.mark.parametrize("table", sorted(PYTHON_READING))
def test_typed_columns_hold_what_the_payload_says(served, table):
    conn = duckdb.connect()
    upsert_json_records(conn, table, served[table])
    columns = list(PYTHON_READING[table](served[table][0]))
    stored = {row[0]: dict(zip(columns, row[1:])) for row in
              conn.execute(f"select id, {', '.join(columns)} from raw.{table}").fetchall()}
    assert len(stored) == len(served[table]) > 10
    for payload in served[table]:
        assert stored[payload["id"]] == PYTHON_READING[table](payload), payload["id"]


def test_timestamps_are_utc_and_the_impact_started_field_is_found(served):
    conn = duckdb.connect()
    entries = served["pagerduty__log_entries"]
    upsert_json_records(conn, "pagerduty__log_entries", entries)
    impacts = {e["id"]: _impact(e) for e in entries if _impact(e)}
    assert impacts
    stored = dict(conn.execute("select id, strftime(impact_started_at, '%Y-%m-%dT%H:%M:%SZ') "
                               "from raw.pagerduty__log_entries where impact_started_at is not null").fetchall())
    assert stored == {key: value.replace("+00:00", "Z") for key, value in impacts.items()}
    upsert_json_records(conn, "pagerduty__incidents", [{"id": "PI1", "incident_number": 1, "service": {"id": "S"},
                                                        "created_at": "2024-03-01T12:00:00+02:00", "status": "resolved"}])
    assert str(conn.execute("select created_at from raw.pagerduty__incidents").fetchone()[0]) == "2024-03-01 10:00:00"


def test_a_record_whose_field_cannot_be_typed_is_refused_naming_it():
    conn = duckdb.connect()
    upsert_json_records(conn, "pagerduty__incidents", [{"id": "PI1", "incident_number": 1, "service": {"id": "S"},
                                                        "created_at": "2024-03-01T12:00:00Z", "status": "resolved"}])
    with pytest.raises(RawRecordError, match=r"\$.incident_number of record PI2 \('two'\) is not a valid integer"):
        upsert_json_records(conn, "pagerduty__incidents", [{"id": "PI2", "incident_number": "two", "service": {"id": "S"},
                                                            "created_at": "2024-03-01T12:00:00Z", "status": "resolved"}])
    assert conn.execute("select id from raw.pagerduty__incidents").fetchall() == [("PI1",)]


def test_a_warehouse_written_before_the_typed_columns_is_migrated_once(tmp_path, served):
    path = tmp_path / "warehouse.duckdb"
    entries = served["pagerduty__log_entries"]
    with duckdb.connect(str(path)) as conn:
        # As the raw writers made the table before: id, payload and load time only.
        conn.execute("create schema raw; create table raw.pagerduty__log_entries "
                     "(id varchar primary key, payload json not null, loaded_at timestamptz not null)")
        conn.executemany("insert into raw.pagerduty__log_entries values (?, ?, '2024-06-01 00:00:00+00')",
                         [(e["id"], json.dumps(e)) for e in entries])
    with duckdb.connect(str(path)) as conn:
        assert migrate_raw_tables(conn) == ["pagerduty__log_entries"]
        assert migrate_raw_tables(conn) == []
        migrated = conn.execute("select * exclude (payload) from raw.pagerduty__log_entries order by id").fetchall()
        # The same instant, in whatever zone this connection renders it (the host's).
        assert {t for (t,) in conn.execute("select distinct loaded_at from raw.pagerduty__log_entries").fetchall()} \
            == {datetime(2024, 6, 1, tzinfo=UTC)}
    fresh = duckdb.connect()
    upsert_json_records(fresh, "pagerduty__log_entries", entries)
    written = fresh.execute("select * exclude (payload, loaded_at) from raw.pagerduty__log_entries order by id").fetchall()
    assert [row[:1] + row[2:] for row in migrated] == written
    assert len(written[0]) == 1 + len(RAW_FIELDS["pagerduty__log_entries"])


def test_a_migration_on_the_next_write_keeps_every_record(tmp_path):
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    conn.execute("create schema raw; create table raw.pagerduty__teams "
                 "(id varchar primary key, payload json not null, loaded_at timestamptz not null)")
    conn.execute("""insert into raw.pagerduty__teams values ('PT1', '{"id": "PT1", "name": "Payments"}', now())""")
    upsert_json_records(conn, "pagerduty__teams", [{"id": "PT2", "name": "Search"}])
    assert conn.execute("select id, name from raw.pagerduty__teams order by id").fetchall() == [
        ("PT1", "Payments"), ("PT2", "Search")]


def test_a_warehouse_typed_by_the_first_team_only_is_migrated_to_every_team(tmp_path):
    # Raw tables as written before the typed columns held every team a record lists (the first
    # team's id and name only): the upgrade drops those columns and fills the new ones from the
    # payloads; the tables then hold what a fresh write holds, and take new writes.
    entry = {"id": "L1", "type": "trigger_log_entry", "created_at": "2024-03-01T10:00:00Z", "incident": {"id": "PI1"},
             "teams": [{"id": "PSHARED", "summary": "Platform SRE"}, {"id": "PT1", "summary": "Payments"}]}
    incident = {"id": "PI1", "incident_number": 1, "status": "resolved", "created_at": "2024-03-01T10:00:00Z",
                "service": {"id": "PS1", "summary": "checkout"}, "teams": entry["teams"]}
    service = {"id": "PS1", "name": "checkout", "teams": entry["teams"]}
    # Each table with one of its current typed columns and the retired first-team ones, as written.
    old_columns = {"pagerduty__log_entries": (entry, {"incident_id": "PI1", "team_id": "PSHARED",
                                                      "team_name": "Platform SRE"}),
                   "pagerduty__incidents": (incident, {"service_id": "PS1", "team_id": "PSHARED"}),
                   "pagerduty__services": (service, {"name": "checkout", "team_id": "PSHARED"})}
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    conn.execute("create schema raw")
    for table, (payload, typed) in old_columns.items():
        conn.execute(f"create table raw.{table} (id varchar primary key, payload json not null, "
                     f"loaded_at timestamptz not null, {', '.join(f'{column} varchar' for column in typed)})")
        conn.execute(f"insert into raw.{table} (id, payload, loaded_at, {', '.join(typed)}) "
                     f"values (?, ?, now(), {', '.join('?' for _ in typed)})",
                     [payload["id"], json.dumps(payload), *typed.values()])
    assert migrate_raw_tables(conn) == sorted(old_columns, key=list(RAW_FIELDS).index)
    assert migrate_raw_tables(conn) == []
    fresh = duckdb.connect()
    for table, (payload, _) in old_columns.items():
        upsert_json_records(fresh, table, [payload])
        columns = [name for name, *_ in fresh.execute(f"describe raw.{table}").fetchall()]
        assert sorted(name for name, *_ in conn.execute(f"describe raw.{table}").fetchall()) == sorted(columns)
        query = f"select {', '.join(c for c in columns if c not in ('payload', 'loaded_at'))} from raw.{table}"
        assert conn.execute(query).fetchall() == fresh.execute(query).fetchall(), table
    assert conn.execute("select team_ids, service_name from raw.pagerduty__incidents").fetchall() == [
        (["PSHARED", "PT1"], "checkout")]
    assert conn.execute("select team_ids, team_names from raw.pagerduty__log_entries").fetchall() == [
        (["PSHARED", "PT1"], ["Platform SRE", "Payments"])]
    upsert_json_records(conn, "pagerduty__incidents", [{**incident, "id": "PI2", "incident_number": 2}])
    assert conn.execute("select count(*) from raw.pagerduty__incidents where len(team_ids) = 2").fetchone() == (2,)


# Issues as Jira Cloud's search gives them: an epic, a story under it and a sub-task of the story
# (the parent field is set for both; the issue type's subtask flag tells them apart), the epic's
# Team field (developer.atlassian.com, "Team field in Jira REST API") among its custom fields.
ATLASSIAN_TEAM = {"id": "36885b3c-1bf0-4f85-a357-c5b858c31de4", "name": "Payments squad", "title": "Payments squad",
                  "isVisible": True, "isVerified": False, "isShared": True,
                  "avatarUrl": "https://avatar-management.example/team.png"}


def _jira_issue(issue_id: str, issue_type: str, subtask: bool, parent_id: str | None = None, **custom_fields) -> dict:
    fields = {"project": {"id": "10000", "key": "OPS", "name": "Operations"}, "summary": "s", "components": [],
              "issuetype": {"id": f"1000{issue_id}", "name": issue_type, "subtask": subtask},
              "created": "2024-03-01T10:00:00.000+0000", "updated": "2024-03-01T10:00:00.000+0000", **custom_fields}
    if parent_id is not None:
        fields["parent"] = {"id": parent_id, "key": f"OPS-{parent_id}"}
    return {"id": issue_id, "key": f"OPS-{issue_id}", "fields": fields}


def test_a_warehouse_with_the_team_column_is_migrated_to_the_subtask_flag(tmp_path):
    # The Team is read from the custom field the KPI rules name (the models, from custom_fields),
    # so the typed team column written before is dropped; the subtask flag, which says which
    # parent's team an issue takes, is filled from the stored payloads.
    issues = [_jira_issue("1", "Epic", False, customfield_10001=ATLASSIAN_TEAM),
              _jira_issue("2", "Story", False, parent_id="1"), _jira_issue("3", "Subtask", True, parent_id="2")]
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as old:
        upsert_json_records(old, "jira__issues", issues)
        old.execute("alter table raw.jira__issues drop column is_subtask")
        old.execute("alter table raw.jira__issues add column jira_team struct(id varchar, name varchar)")
        old.execute("update raw.jira__issues set jira_team = {'id': payload -> '$.fields.customfield_10001' ->> 'id', "
                    "'name': payload -> '$.fields.customfield_10001' ->> 'name'}")
    with duckdb.connect(str(path)) as upgraded:
        assert migrate_raw_tables(upgraded) == ["jira__issues"]
        columns = [name for name, *_ in upgraded.execute("describe raw.jira__issues").fetchall()]
        assert "jira_team" not in columns
        assert upgraded.execute("select id, parent_id, is_subtask, custom_fields['customfield_10001'] ->> 'id' "
                                "from raw.jira__issues order by id").fetchall() == [
            ("1", None, False, ATLASSIAN_TEAM["id"]), ("2", "1", False, None), ("3", "2", True, None)]
    assert untypable_records(duckdb.connect(), "jira__issues", issues) == {}
