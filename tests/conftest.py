import duckdb
import polars as pl
import pytest

from assets.jira.classification import read_rules, rules_frame
from assets.jira.resource import DEFAULT_CLASSIFICATION_RULES
from assets.warehouse.raw_tables import replace_table, upsert_json_records
from assets.warehouse.sql_models import SQL_DIR, build_model, read_model


def expected_log_entries(incident) -> int:
    """Log entries the sandbox serves for a generated incident at the organisation's cut-off:
    trigger, acknowledge, the impact-started field being filled in, resolve; a reopen adds
    a resolve and a second trigger."""
    return (1 + (incident.acknowledged_at is not None) + (incident.resolved_at is not None)
            + (incident.impact_recorded_at is not None) + 2 * (incident.reopened_at is not None))


def rows_unlike_a_full_rebuild(conn: duckdb.DuckDBPyConnection, model) -> int:
    """Rows in the model's table that its SELECT would not make now, plus the reverse."""
    table, select = model.table, model.select_sql
    return conn.execute(
        f"select (select count(*) from (select * from {table} except all select * from ({select}))) "
        f"+ (select count(*) from (select * from ({select}) except all select * from {table}))"
    ).fetchone()[0]


class Warehouse:
    """An in-memory DuckDB with helpers to load fixture rows and build SQL models."""

    def __init__(self) -> None:
        self.conn = duckdb.connect(":memory:")

    def raw_json(self, table: str, records: list[dict]) -> None:
        upsert_json_records(self.conn, table, records)

    def raw_rows(self, table: str, rows: list[dict]) -> None:
        replace_table(self.conn, "raw", table, pl.DataFrame(rows, infer_schema_length=None).cast(pl.String))

    def classification_rules(self, path=DEFAULT_CLASSIFICATION_RULES) -> None:
        replace_table(self.conn, "raw", "config__ticket_classification", rules_frame(read_rules(path)))

    def build(self, *models: str) -> None:
        for model in models:
            schema, name = model.split(".")
            build_model(self.conn, read_model(SQL_DIR / schema / f"{name}.sql"))

    def rows(self, sql: str) -> list[dict]:
        frame = self.conn.sql(sql).pl()
        return frame.to_dicts()


@pytest.fixture
def warehouse():
    wh = Warehouse()
    yield wh
    wh.conn.close()
