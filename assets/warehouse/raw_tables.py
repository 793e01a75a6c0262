"""Writing API payloads into the warehouse's ``raw`` schema.

Raw tables keep each record's full JSON payload keyed by its source id, so staging models
can be rebuilt without calling the APIs again. Writes are upserts on the id: a re-run, or a
run killed half-way and started again, leaves exactly one row per record.

Beside the payload, each API table stores the fields the marts need as typed columns
(``RAW_FIELDS``), extracted once when the record is written: staging reads them by name and
never parses a payload again. A raw table written before a field was added gets the column,
filled from its payloads, the next time it is written to (``ensure_raw_table``) or before
the dbt models run (``migrate_raw_tables``); a field whose meaning changes gets a new column
name (its old column, no longer in ``RAW_FIELDS``, is dropped then).

Incremental syncs keep their high-water marks in ``raw._sync_state``, written in the same
transaction as the rows they cover (``write_batch``): a run killed between two batches
resumes from the last batch that committed, never from a mark ahead of its rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl
from dagster_duckdb import DuckDBResource

PAYLOAD_COLUMNS = {"id": "varchar primary key", "payload": "json not null", "loaded_at": "timestamptz not null"}

_UTC = "timezone('UTC', {}::timestamptz)"
_JIRA_UTC = "timezone('UTC', strptime({}, '%Y-%m-%dT%H:%M:%S.%g%z'))"
# A JSON array as a DuckDB list of JSON values (an absent or null array: an empty list).
_JSON_LIST = "cast(coalesce({}, '[]')::json as json[])"
# A Jira issue link as seen from the issue holding it: the link type's name, the link's wording
# from this side (the outward description when the other issue is the outward one), the
# direction and the other issue.
_ISSUE_LINK = "struct(link_type varchar, relation varchar, direction varchar, issue_id varchar, issue_key varchar)"
_ISSUE_LINKS = (
    "list_transform(" + _JSON_LIST + ", lambda link: {{"
    "'link_type': json_extract_string(link, '$.type.name'), "
    "'relation': case when json_extract(link, '$.outwardIssue') is not null "
    "then json_extract_string(link, '$.type.outward') else json_extract_string(link, '$.type.inward') end, "
    "'direction': case when json_extract(link, '$.outwardIssue') is not null then 'outward' else 'inward' end, "
    "'issue_id': coalesce(json_extract_string(link, '$.outwardIssue.id'), json_extract_string(link, '$.inwardIssue.id')), "
    "'issue_key': coalesce(json_extract_string(link, '$.outwardIssue.key'), "
    "json_extract_string(link, '$.inwardIssue.key'))}})"
)
# The ids (or names: ``summary``) of the teams a PagerDuty record lists, in the listed order (the
# API gives no order: the models take the first the team map claims); no teams: an empty list.
_TEAM_REFERENCES = "list_transform(" + _JSON_LIST + ", lambda team: team ->> '{}')"
# The issue's custom fields that hold a value, each as its JSON text (which fields the KPI
# rules read is configuration: the SQL picks them from this map).
_CUSTOM_FIELDS = ("map_from_entries(list_filter(map_entries(json_transform({}, '\"MAP(VARCHAR, JSON)\"')), "
                  "lambda entry: starts_with(entry.key, 'customfield_') and entry.value is not null "
                  "and entry.value::varchar <> 'null'))")


@dataclass(frozen=True)
class RawField:
    """A payload field stored as a typed column: the JSON text at ``path`` (one
    ``json_extract_string`` per record reads every field of a table), turned into the
    column's value by ``sql`` (``{}`` stands for that text)."""

    column: str
    sql_type: str
    path: str
    sql: str = "{}"

    def expression(self, text: str) -> str:
        return f"cast({self.sql.format(text)} as {self.sql_type})"


RAW_FIELDS: dict[str, tuple[RawField, ...]] = {
    "pagerduty__teams": (
        RawField("name", "varchar", "$.name"),
    ),
    "pagerduty__services": (
        RawField("name", "varchar", "$.name"),
        RawField("description", "varchar", "$.description"),
        # The owning teams: every team PagerDuty lists on the service (its escalation policy may
        # belong to several, e.g. a shared on-call team beside the owner).
        RawField("team_ids", "varchar[]", "$.teams", _TEAM_REFERENCES.format("{}", "id")),
    ),
    "pagerduty__incidents": (
        RawField("incident_number", "integer", "$.incident_number"),
        RawField("service_id", "varchar", "$.service.id"),
        # The service's name as the incident's reference states it: what tells a test service's
        # incidents when the service is gone from the directory (deleted).
        RawField("service_name", "varchar", "$.service.summary"),
        RawField("team_ids", "varchar[]", "$.teams", _TEAM_REFERENCES.format("{}", "id")),
        RawField("created_at", "timestamp", "$.created_at", _UTC),
        RawField("updated_at", "timestamp", "$.updated_at", _UTC),
        RawField("status", "varchar", "$.status"),
        RawField("urgency", "varchar", "$.urgency"),
        RawField("resolve_reason_type", "varchar", "$.resolve_reason.type"),
        RawField("resolve_reason_incident_id", "varchar", "$.resolve_reason.incident.id"),
        # The de-duplication (alert) key and the title, which tell a repeat incident.
        RawField("incident_key", "varchar", "$.incident_key"),
        RawField("title", "varchar", "$.title"),
        # When the incident says it was resolved: which incidents' reviews to ask for (the
        # KPIs time resolves from the log entries).
        RawField("resolved_at", "timestamp", "$.resolved_at", _UTC),
    ),
    # PagerDuty's Incident Reviews (GET /incidents/{id}/review), one per review id.
    "pagerduty__incident_reviews": (
        RawField("incident_id", "varchar", "$.incident_id"),
        RawField("status", "varchar", "$.status"),
        RawField("created_at", "timestamp", "$.created_at", _UTC),
        RawField("updated_at", "timestamp", "$.updated_at", _UTC),
        RawField("completed_at", "timestamp", "$.completed_at", _UTC),
        RawField("action_item_count", "integer", "$.action_item_count"),
        RawField("completed_action_item_count", "integer", "$.completed_action_item_count"),
    ),
    # Their action items (GET /incidents/{id}/review/action_items), one per item id.
    "pagerduty__review_action_items": (
        RawField("incident_id", "varchar", "$.incident_id"),
        RawField("status", "varchar", "$.status"),
        RawField("created_at", "timestamp", "$.created_at", _UTC),
        RawField("updated_at", "timestamp", "$.updated_at", _UTC),
        RawField("completed_at", "timestamp", "$.completed_at", _UTC),
    ),
    "pagerduty__log_entries": (
        RawField("incident_id", "varchar", "$.incident.id"),
        RawField("entry_type", "varchar", "$.type"),
        RawField("created_at", "timestamp", "$.created_at", _UTC),
        RawField("agent_type", "varchar", "$.agent.type"),
        RawField("agent_id", "varchar", "$.agent.id"),
        # The agent's API and web links, which type an agent that has no type (old accounts).
        RawField("agent_self", "varchar", "$.agent.self"),
        RawField("agent_html_url", "varchar", "$.agent.html_url"),
        RawField("channel_type", "varchar", "$.channel.type"),
        # For a trigger entry, the teams at trigger time: their ids and, in the same order, their
        # names as the entry states them.
        RawField("team_ids", "varchar[]", "$.teams", _TEAM_REFERENCES.format("{}", "id")),
        RawField("team_names", "varchar[]", "$.teams", _TEAM_REFERENCES.format("{}", "summary")),
        # The "impact started" custom field value a custom field change set (a one-element
        # list or a bare value); an unreadable time is no onset rather than a failed load.
        RawField("impact_started_at", "timestamp", "$.channel.changeset.customer_fields",
                 "timezone('UTC', try_cast(list_transform(list_filter(cast({}::json as json[]), "
                 "lambda custom_field: custom_field ->> 'name' = 'impact_started'), "
                 "lambda custom_field: coalesce(custom_field -> 'value' ->> 0, custom_field ->> 'value'))[1] "
                 "as timestamptz))"),
        # The first alert's payload timestamp, which an alert's trigger entry carries.
        RawField("alert_timestamp", "timestamp", "$.channel.cef_details.creation_time",
                 "timezone('UTC', try_cast({} as timestamptz))"),
    ),
    "jira__issues": (
        RawField("issue_key", "varchar", "$.key"),
        RawField("project_key", "varchar", "$.fields.project.key"),
        RawField("issue_type", "varchar", "$.fields.issuetype.name"),
        # Jira sends the type's name in the language of the account reading it (its own types, Bug,
        # Task, Story, Epic, Sub-task, are translated); the id is the same in every language.
        RawField("issue_type_id", "varchar", "$.fields.issuetype.id"),
        RawField("labels", "varchar[]", "$.fields.labels", "{}::json"),
        RawField("components", "varchar[]", "$.fields.components",
                 "list_transform(cast(coalesce({}, '[]')::json as json[]), lambda component: component ->> 'name')"),
        RawField("created_at", "timestamp", "$.fields.created", _JIRA_UTC),
        RawField("updated_at", "timestamp", "$.fields.updated", _JIRA_UTC),
        RawField("resolved_at", "timestamp", "$.fields.resolutiondate", _JIRA_UTC),
        RawField("status", "varchar", "$.fields.status.name"),
        # new, indeterminate or done: a status of the done category closes an issue.
        RawField("status_category", "varchar", "$.fields.status.statusCategory.key"),
        RawField("summary", "varchar", "$.fields.summary"),
        RawField("issue_links", f"{_ISSUE_LINK}[]", "$.fields.issuelinks", _ISSUE_LINKS),
        RawField("subtask_ids", "varchar[]", "$.fields.subtasks",
                 "list_transform(" + _JSON_LIST + ", lambda subtask: json_extract_string(subtask, '$.id'))"),
        # Jira Cloud sets the parent of a sub-task and of an issue under an epic alike; the issue
        # type says which (a sub-task shows its parent's Team, an epic's child does not).
        RawField("parent_id", "varchar", "$.fields.parent.id"),
        RawField("is_subtask", "boolean", "$.fields.issuetype.subtask"),
        # Who raised the issue: salted pseudonyms of the account id and email address (the
        # sync pseudonymises people on receipt, assets/identity.py).
        RawField("reporter_account_id", "varchar", "$.fields.reporter.accountId"),
        RawField("reporter_email", "varchar", "$.fields.reporter.emailAddress"),
        RawField("creator_account_id", "varchar", "$.fields.creator.accountId"),
        RawField("creator_email", "varchar", "$.fields.creator.emailAddress"),
        RawField("custom_fields", "map(varchar, json)", "$.fields", _CUSTOM_FIELDS),
        # The description (Atlassian Document Format), when the KPI rules read it.
        RawField("description", "json", "$.fields.description"),
    ),
}


# The syncs write the records they receive in transactions of about this many (with the stream's
# high-water mark): one statement per API page would spend more time planning the typed insert
# than writing; a sync stopped half-way fetches at most this many again.
WRITE_BATCH_ROWS = 5_000


class RawRecordError(ValueError):
    """A record whose field cannot be stored in its typed column (e.g. a non-numeric
    incident number); the message names the table, the record and the field."""


@contextmanager
def warehouse_connection(resource: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """``resource.get_connection()``, also closed when the body raises: DuckDBResource closes
    it only on success, and a failed sync must release the file for the run that follows."""
    with resource.get_connection() as conn:
        try:
            yield conn
        except BaseException:
            conn.close()
            raise


def _fields_query(table: str, source: str) -> str:
    """``source`` (a relation or subquery with ``id`` and ``payload``) with each record's
    payload fields read in one parse, as a list ``fields`` in ``RAW_FIELDS`` order."""
    paths = ", ".join(f"'{field.path}'" for field in RAW_FIELDS.get(table, ()))
    fields = f", json_extract_string(payload, [{paths}]) as fields" if paths else ""
    return f"select id, payload::json as payload{fields} from {source}"


def _typed_columns(table: str) -> list[str]:
    return [field.expression(f"fields[{i}]") for i, field in enumerate(RAW_FIELDS.get(table, ()), start=1)]


def _columns(table: str) -> dict[str, str]:
    return {**PAYLOAD_COLUMNS, **{field.column: field.sql_type for field in RAW_FIELDS.get(table, ())}}


def insert_records(conn: duckdb.DuckDBPyConnection, table: str, source: str, *, replace: bool) -> None:
    """Write the records of ``source`` (``id`` and ``payload`` as JSON text) into ``raw.<table>``
    with their typed fields and the load time; ``replace``: upsert on the id. A field that
    cannot be typed raises ``RawRecordError`` naming the record; nothing is written then."""
    ensure_raw_table(conn, table)
    columns = ", ".join(_columns(table))
    values = ", ".join(["id", "payload", "now()", *_typed_columns(table)])
    verb = "insert or replace" if replace else "insert"
    query = f"{verb} into raw.{table} ({columns}) select {values} from ({_fields_query(table, source)})"
    try:
        conn.execute(query)
    except (duckdb.ConversionException, duckdb.InvalidInputException) as error:
        raise _untypable(conn, table, source, error) from error


def _untypable(conn: duckdb.DuckDBPyConnection, table: str, source: str, error: Exception) -> Exception:
    """The error for a failed write, naming the first records whose field cannot be typed."""
    for i, field in enumerate(RAW_FIELDS.get(table, ()), start=1):
        bad = conn.execute(
            f"select id, fields[{i}] from ({_fields_query(table, source)}) "
            f"where fields[{i}] is not null and try({field.expression(f'fields[{i}]')}) is null limit 3"
        ).fetchall()
        if bad:
            records = ", ".join(f"{record_id} ({value!r})" for record_id, value in bad)
            return RawRecordError(f"raw.{table}: {field.path} of record {records} is not a valid "
                                  f"{field.sql_type} for column {field.column}; fix the record or the "
                                  f"field's definition in assets/warehouse/raw_tables.py ({error})")
    return error


def ensure_raw_table(conn: duckdb.DuckDBPyConnection, table: str) -> None:
    """Create ``raw.<table>`` with its payload and typed columns, or add the typed columns
    it lacks (a table written before they existed) and fill them from its payloads. A typed
    column no longer in ``RAW_FIELDS`` (a field replaced by one under a new name, such as
    ``team_id`` by ``team_ids``) is dropped: the payload keeps what it held."""
    conn.execute("create schema if not exists raw")
    existing = {name for (name,) in conn.execute(
        "select column_name from duckdb_columns() where database_name = current_database() "
        "and schema_name = 'raw' and table_name = ?", [table]).fetchall()}
    if not existing:
        columns = ", ".join(f"{name} {sql_type}" for name, sql_type in _columns(table).items())
        conn.execute(f"create table if not exists raw.{table} ({columns})")
        return
    if table in RAW_FIELDS:
        for retired in sorted(existing - set(_columns(table))):
            conn.execute(f"alter table raw.{table} drop column {retired}")
    missing = [field for field in RAW_FIELDS.get(table, ()) if field.column not in existing]
    if not missing:
        return
    for field in missing:
        conn.execute(f"alter table raw.{table} add column {field.column} {field.sql_type}")
    typed = dict(zip((field.column for field in RAW_FIELDS[table]), _typed_columns(table)))
    assignments = ", ".join(f"{field.column} = {typed[field.column]}" for field in missing)
    conn.execute(f"update raw.{table} set {assignments} from ({_fields_query(table, f'raw.{table}')}) as typed "
                 f"where raw.{table}.id = typed.id")


def migrate_raw_tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Give every existing raw API table the typed columns it lacks (and drop those no longer
    typed); return the tables migrated."""
    present = {name for (name,) in conn.execute(
        "select table_name from duckdb_tables() where database_name = current_database() "
        "and schema_name = 'raw'").fetchall()}
    migrated = []
    for table in RAW_FIELDS:
        if table in present:
            before = conn.execute(f"describe raw.{table}").fetchall()
            conn.execute("begin transaction")
            try:
                ensure_raw_table(conn, table)
                conn.execute("commit")
            except BaseException:
                conn.execute("rollback")
                raise
            if conn.execute(f"describe raw.{table}").fetchall() != before:
                migrated.append(table)
    return migrated


def _records_frame(records: Iterable[dict], key: str = "id") -> pl.DataFrame:
    """``records`` as (id, payload as JSON text), one row per id, the last copy winning."""
    by_id = {str(record[key]): record for record in records}
    return pl.DataFrame(
        {"id": list(by_id), "payload": [json.dumps(record, sort_keys=True) for record in by_id.values()]},
        schema={"id": pl.String, "payload": pl.String},
    )


def untypable_records(conn: duckdb.DuckDBPyConnection, table: str, records: list[dict]) -> dict[str, str]:
    """The records of ``records`` that ``raw.<table>`` cannot store, because a field it types
    is present but not of its type, each with the reason ('unparseable: <path> <value> is not
    a valid <type>'); writing the others never fails on a field."""
    fields = RAW_FIELDS.get(table, ())
    if not fields or not records:
        return {}
    # One pass: each payload parsed once, each field's expression tried once (the first field
    # that fails names the record's reason).
    first_failure = "coalesce(" + ", ".join(
        f"case when fields[{position}] is not null and try({field.expression(f'fields[{position}]')}) is null "
        f"then {position} end" for position, field in enumerate(fields, start=1)) + ")"
    conn.register("checked_records", _records_frame(records).to_arrow())
    try:
        found = conn.execute(
            f"select id, position, fields[position] from (select id, fields, {first_failure} as position "
            f"from ({_fields_query(table, 'checked_records')})) where position is not null").fetchall()
    finally:
        conn.unregister("checked_records")
    return {record_id: f"unparseable: {fields[position - 1].path} {text!r} is not a valid {fields[position - 1].sql_type}"
            for record_id, position, text in found}


def upsert_json_records(
    conn: duckdb.DuckDBPyConnection, table: str, records: Iterable[dict], key: str = "id"
) -> int:
    """Upsert ``records`` into ``raw.<table>`` (id, payload, load time and the table's typed
    fields); return the row count. A record repeated in ``records`` (an API page that
    overlaps the previous one) is written once, its last copy winning."""
    frame = _records_frame(records, key)
    conn.register("incoming_records", frame.to_arrow())
    try:
        insert_records(conn, table, "incoming_records", replace=True)
    finally:
        conn.unregister("incoming_records")
    return frame.height


def write_batch(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    records: Iterable[dict],
    *,
    stream: str | None = None,
    high_water_mark: datetime | None = None,
) -> int:
    """Upsert ``records`` and, in the same transaction, move ``stream``'s high-water mark."""
    conn.execute("begin transaction")
    try:
        written = upsert_json_records(conn, table, records)
        if stream is not None and high_water_mark is not None:
            _ensure_sync_state(conn)
            conn.execute(
                "insert or replace into raw._sync_state values (?, ?, now())", [stream, high_water_mark]
            )
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return written


def read_high_water_mark(conn: duckdb.DuckDBPyConnection, stream: str) -> datetime | None:
    """Where ``stream`` got to in the last committed batch (None: never synced)."""
    _ensure_sync_state(conn)
    row = conn.execute("select high_water_mark from raw._sync_state where stream = ?", [stream]).fetchone()
    return row[0] if row else None


def reset_high_water_mark(conn: duckdb.DuckDBPyConnection, stream: str) -> None:
    _ensure_sync_state(conn)
    conn.execute("delete from raw._sync_state where stream = ?", [stream])


def fields_of_last_sync(conn: duckdb.DuckDBPyConnection, stream: str) -> list[str] | None:
    """The record fields ``stream`` last asked the API for (None: not recorded)."""
    _ensure_sync_state(conn)
    row = conn.execute("select fields from raw._sync_fields where stream = ?", [stream]).fetchone()
    return list(row[0]) if row else None


def restart_for_new_fields(conn: duckdb.DuckDBPyConnection, stream: str, fields: list[str]) -> list[str]:
    """Record that ``stream`` now asks for ``fields``; when that adds fields to what its stored
    records hold (or a stream synced before fields were recorded), forget its high-water mark in
    the same transaction, so the next sync fetches every record again with them. Returns the
    fields added (empty: nothing to fetch again)."""
    before = fields_of_last_sync(conn, stream)
    synced = read_high_water_mark(conn, stream) is not None
    added = sorted(set(fields) - set(before or [])) if synced else []
    conn.execute("begin transaction")
    try:
        if added:
            conn.execute("delete from raw._sync_state where stream = ?", [stream])
        conn.execute("insert or replace into raw._sync_fields values (?, ?)", [stream, sorted(fields)])
        conn.execute("commit")
    except BaseException:
        conn.execute("rollback")
        raise
    return added


def stored_salt_fingerprint(conn: duckdb.DuckDBPyConnection, stream: str) -> str | None:
    """The fingerprint of the salt ``stream``'s stored pseudonyms were made with (None: not
    recorded: a stream synced before fingerprints were kept, or never)."""
    _ensure_sync_state(conn)
    row = conn.execute("select fingerprint from raw._salt_fingerprints where stream = ?", [stream]).fetchone()
    return row[0] if row else None


def record_salt_fingerprint(conn: duckdb.DuckDBPyConnection, stream: str, fingerprint: str) -> None:
    _ensure_sync_state(conn)
    conn.execute("insert or replace into raw._salt_fingerprints values (?, ?)", [stream, fingerprint])


def stored_sync_source(conn: duckdb.DuckDBPyConnection, stream: str) -> str | None:
    """The API root (``api_root``) ``stream``'s stored records came from (None: not recorded:
    a stream synced before sources were kept, or never)."""
    _ensure_sync_state(conn)
    row = conn.execute("select source from raw._sync_sources where stream = ?", [stream]).fetchone()
    return row[0] if row else None


def record_sync_source(conn: duckdb.DuckDBPyConnection, stream: str, source: str) -> None:
    _ensure_sync_state(conn)
    conn.execute("insert or replace into raw._sync_sources values (?, ?)", [stream, source])


def _ensure_sync_state(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("create schema if not exists raw")
    conn.execute(
        "create table if not exists raw._sync_state "
        "(stream varchar primary key, high_water_mark timestamptz not null, updated_at timestamptz not null)"
    )
    conn.execute("create table if not exists raw._sync_fields (stream varchar primary key, fields varchar[] not null)")
    conn.execute("create table if not exists raw._salt_fingerprints "
                 "(stream varchar primary key, fingerprint varchar not null)")
    conn.execute("create table if not exists raw._sync_sources (stream varchar primary key, source varchar not null)")


def ensure_schema(conn: duckdb.DuckDBPyConnection, schema: str) -> None:
    """Create ``schema`` in the warehouse, unless it names an attached database: ``restricted.<table>``
    is a table of the restricted file's schema main (assets/warehouse/restricted.py), and a
    schema of that name in the warehouse would make the name ambiguous."""
    if not conn.execute("select count(*) from duckdb_databases() where database_name = ?", [schema]).fetchone()[0]:
        conn.execute(f"create schema if not exists {schema}")


def table_columns(conn: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """The columns of ``table`` (``schema.name``, resolved as a query would: ``restricted.<name>``
    in the restricted file), or [] if there is no such table."""
    try:
        return [name for name, *_ in conn.execute(f"describe {table}").fetchall()]
    except duckdb.CatalogException:
        return []


def append_table(conn: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pl.DataFrame) -> int:
    """Add ``frame``'s rows to ``schema.table`` (matched by column name), creating the table
    with the frame's columns if it does not exist (for tables written once per row, never
    replaced)."""
    ensure_schema(conn, schema)
    conn.register("incoming_frame", frame.to_arrow())
    try:
        conn.execute(f"create table if not exists {schema}.{table} as select * from incoming_frame where false")
        conn.execute(f"insert into {schema}.{table} by name select * from incoming_frame")
    finally:
        conn.unregister("incoming_frame")
    return frame.height


def replace_table(conn: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pl.DataFrame) -> int:
    """Replace ``schema.table`` with ``frame`` (for whole-file exports that are re-sent in full)."""
    ensure_schema(conn, schema)
    conn.register("incoming_frame", frame.to_arrow())
    try:
        conn.execute(f"create or replace table {schema}.{table} as select * from incoming_frame")
    finally:
        conn.unregister("incoming_frame")
    return frame.height
