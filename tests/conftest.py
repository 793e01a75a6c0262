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


API_TABLES = ("pagerduty__teams", "pagerduty__services", "pagerduty__incidents", "pagerduty__log_entries",
              "jira__issues")
TEAM_MONTH_MODELS = (
    "staging.stg_config__team_map", "staging.stg_pagerduty__teams", "staging.stg_pagerduty__services",
    "staging.stg_pagerduty__incidents", "staging.stg_pagerduty__log_entries", "staging.stg_jira__issues",
    "staging.stg_hr__headcount", "staging.stg_hr__terminations",
    "marts.dim_teams", "marts.fct_incidents", "marts.fct_tickets", "marts.mart_team_month",
)


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

    def build_team_month(self) -> None:
        """Build every SQL model up to ``marts.mart_team_month`` from the rows the test loaded:
        API tables it left alone are empty and the rules are the shipped default unless it
        loaded its own. ``marts.fct_team_survey_waves`` (a Python asset) is the test's to load."""
        for table in API_TABLES:
            self.raw_json(table, [])
        loaded = {name for (name,) in self.conn.execute("select table_name from duckdb_tables()").fetchall()}
        if "config__ticket_classification" not in loaded:
            self.classification_rules()
        self.build(*TEAM_MONTH_MODELS)

    def rows(self, sql: str) -> list[dict]:
        frame = self.conn.sql(sql).pl()
        return frame.to_dicts()


@pytest.fixture
def warehouse():
    wh = Warehouse()
    yield wh
    wh.conn.close()
