"""Monthly partitioned marts: a run rewrites exactly its months, in one transaction."""

from datetime import date

import dagster as dg
import duckdb
import polars as pl
import pytest
from dagster_duckdb import DuckDBResource

from assets.warehouse.partitions import every_month_tags, monthly_partitions
from assets.warehouse.raw_tables import replace_table
from assets.warehouse.sql_models import SchemaChangedError, SqlModel, refresh_months, sql_model_assets

EVENTS = SqlModel(
    schema="marts",
    name="fct_events",
    description="fct_events: one row per event.\nGrain: event_id.\nPartitioned by month on period_month.",
    select_sql="select event_id, period_month::date as period_month, value::integer as value from raw.events",
    partition_column="period_month",
)


def load_events(conn, rows):
    replace_table(conn, "raw", "events", pl.DataFrame(rows, schema=["event_id", "period_month", "value"], orient="row"))


def table(conn, name="marts.fct_events"):
    return sorted(conn.execute(f"select * from {name}").fetchall())


def test_refresh_rewrites_only_the_runs_months():
    conn = duckdb.connect()
    load_events(conn, [("a", "2024-01-01", 1), ("b", "2024-02-01", 2), ("c", "2024-03-01", 3)])
    assert refresh_months(conn, EVENTS, date(2024, 1, 1), date(2024, 4, 1)) == 3
    # The source changes in January and February; only February is refreshed.
    load_events(conn, [("a", "2024-01-01", 10), ("b", "2024-02-01", 20), ("d", "2024-02-01", 30)])
    assert refresh_months(conn, EVENTS, date(2024, 2, 1), date(2024, 3, 1)) == 2
    assert table(conn) == [
        ("a", date(2024, 1, 1), 1), ("b", date(2024, 2, 1), 20), ("c", date(2024, 3, 1), 3), ("d", date(2024, 2, 1), 30),
    ]


def test_a_failed_refresh_leaves_the_months_as_they_were():
    conn = duckdb.connect()
    load_events(conn, [("a", "2024-01-01", 1)])
    refresh_months(conn, EVENTS, date(2024, 1, 1), date(2024, 2, 1))
    load_events(conn, [("a", "2024-01-01", "not a number")])
    with pytest.raises(duckdb.ConversionException):
        refresh_months(conn, EVENTS, date(2024, 1, 1), date(2024, 2, 1))
    assert table(conn) == [("a", date(2024, 1, 1), 1)]


def test_a_changed_select_asks_for_a_full_rebuild_instead_of_mixing_columns():
    conn = duckdb.connect()
    load_events(conn, [("a", "2024-01-01", 1)])
    refresh_months(conn, EVENTS, date(2024, 1, 1), date(2024, 2, 1))
    widened = SqlModel(**{**EVENTS.__dict__, "select_sql": EVENTS.select_sql.replace(" from", ", 1 as extra from")})
    with pytest.raises(SchemaChangedError, match="backfill of all partitions"):
        refresh_months(conn, widened, date(2024, 1, 1), date(2024, 2, 1))


def test_partitioned_model_assets_run_one_month_or_every_month(tmp_path):
    """Dagster: a single-month run rewrites that month; a run over every month rebuilds the table."""
    sql_dir = tmp_path / "sql"
    (sql_dir / "marts").mkdir(parents=True)
    (sql_dir / "marts" / "fct_events.sql").write_text(
        "\n".join(f"-- {line}" for line in EVENTS.description.splitlines()) + "\n" + EVENTS.select_sql + "\n"
    )
    [fct_events] = sql_model_assets(sql_dir)
    assert fct_events.partitions_def == monthly_partitions
    assert fct_events.dependency_keys == {dg.AssetKey(["raw", "events"])}
    warehouse = str(tmp_path / "warehouse.duckdb")
    resources = {"duckdb": DuckDBResource(database=warehouse)}

    def load(rows):
        with duckdb.connect(warehouse) as conn:
            load_events(conn, rows)

    def events():
        with duckdb.connect(warehouse, read_only=True) as conn:
            return table(conn)

    load([("a", "2024-01-01", 1), ("b", "2024-02-01", 2)])
    assert dg.materialize([fct_events], resources=resources, tags=every_month_tags()).success
    assert events() == [("a", date(2024, 1, 1), 1), ("b", date(2024, 2, 1), 2)]

    load([("a", "2024-01-01", 10), ("b", "2024-02-01", 20)])
    result = dg.materialize([fct_events], resources=resources, partition_key="2024-02-01")
    assert [e.partition for e in result.get_asset_materialization_events()] == ["2024-02-01"]
    assert events() == [("a", date(2024, 1, 1), 1), ("b", date(2024, 2, 1), 20)]
