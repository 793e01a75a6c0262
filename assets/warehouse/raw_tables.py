"""Writing API payloads into the warehouse's ``raw`` schema.

Raw tables keep each record's full JSON payload keyed by its source id, so staging models
can be rebuilt without calling the APIs again. Writes are upserts on the id: a re-run, or a
run killed half-way and started again, leaves exactly one row per record.

Incremental syncs keep their high-water marks in ``raw._sync_state``, written in the same
transaction as the rows they cover (``write_batch``): a run killed between two batches
resumes from the last batch that committed, never from a mark ahead of its rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

import duckdb
import polars as pl
from dagster_duckdb import DuckDBResource


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


def upsert_json_records(
    conn: duckdb.DuckDBPyConnection, table: str, records: Iterable[dict], key: str = "id"
) -> int:
    """Upsert ``records`` into ``raw.<table>(id, payload, loaded_at)``; return the row count.
    A record repeated in ``records`` (an API page that overlaps the previous one) is written
    once, its last copy winning."""
    by_id = {str(record[key]): record for record in records}
    frame = pl.DataFrame(
        {
            "id": list(by_id),
            "payload": [json.dumps(record, sort_keys=True) for record in by_id.values()],
        },
        schema={"id": pl.String, "payload": pl.String},
    )
    conn.execute("create schema if not exists raw")
    conn.execute(
        f"create table if not exists raw.{table} "
        "(id varchar primary key, payload json not null, loaded_at timestamptz not null)"
    )
    conn.register("incoming_records", frame.to_arrow())
    try:
        conn.execute(
            f"insert or replace into raw.{table} "
            "select id, payload::json, now() from incoming_records"
        )
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


def _ensure_sync_state(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("create schema if not exists raw")
    conn.execute(
        "create table if not exists raw._sync_state "
        "(stream varchar primary key, high_water_mark timestamptz not null, updated_at timestamptz not null)"
    )


def replace_table(conn: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pl.DataFrame) -> int:
    """Replace ``schema.table`` with ``frame`` (for whole-file exports that are re-sent in full)."""
    conn.execute(f"create schema if not exists {schema}")
    conn.register("incoming_frame", frame.to_arrow())
    try:
        conn.execute(f"create or replace table {schema}.{table} as select * from incoming_frame")
    finally:
        conn.unregister("incoming_frame")
    return frame.height
