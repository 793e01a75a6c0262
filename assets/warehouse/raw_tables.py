"""Writing API payloads into the warehouse's ``raw`` schema.

Raw tables keep each record's full JSON payload keyed by its source id, so staging models
can be rebuilt without calling the APIs again. Writes are upserts on the id: a re-run, or a
run killed half-way and started again, leaves exactly one row per record.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import duckdb
import polars as pl


def upsert_json_records(
    conn: duckdb.DuckDBPyConnection, table: str, records: Iterable[dict], key: str = "id"
) -> int:
    """Upsert ``records`` into ``raw.<table>(id, payload, loaded_at)``; return the row count."""
    records = list(records)
    frame = pl.DataFrame(
        {
            "id": [str(record[key]) for record in records],
            "payload": [json.dumps(record, sort_keys=True) for record in records],
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


def replace_table(conn: duckdb.DuckDBPyConnection, schema: str, table: str, frame: pl.DataFrame) -> int:
    """Replace ``schema.table`` with ``frame`` (for whole-file exports that are re-sent in full)."""
    conn.execute(f"create schema if not exists {schema}")
    conn.register("incoming_frame", frame.to_arrow())
    try:
        conn.execute(f"create or replace table {schema}.{table} as select * from incoming_frame")
    finally:
        conn.unregister("incoming_frame")
    return frame.height
