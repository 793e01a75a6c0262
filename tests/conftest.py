import duckdb
import polars as pl
import pytest

from assets.warehouse.raw_tables import replace_table, upsert_json_records
from assets.warehouse.sql_models import SQL_DIR, build_model, read_model


class Warehouse:
    """An in-memory DuckDB with helpers to load fixture rows and build SQL models."""

    def __init__(self) -> None:
        self.conn = duckdb.connect(":memory:")

    def raw_json(self, table: str, records: list[dict]) -> None:
        upsert_json_records(self.conn, table, records)

    def raw_rows(self, table: str, rows: list[dict]) -> None:
        replace_table(self.conn, "raw", table, pl.DataFrame(rows, infer_schema_length=None).cast(pl.String))

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
