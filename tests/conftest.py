import duckdb
import polars as pl
import pytest

from assets.jira.classification import read_rules, rules_frame
from assets.jira.resource import DEFAULT_CLASSIFICATION_RULES
from assets.warehouse.raw_tables import replace_table, upsert_json_records
from assets.warehouse.sql_models import SQL_DIR, build_model, read_model
from pipelines.demo import (
    SANDBOX_HR_SALT,
    SANDBOX_JIRA_EMAIL,
    SANDBOX_JIRA_TOKEN,
    SANDBOX_PAGERDUTY_TOKEN,
    start_sandbox,
)
from pipelines.synthetic.org import OrgSpec, generate, write_landing


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


@pytest.fixture(scope="module")
def sandbox_environment(tmp_path_factory):
    """The definitions' environment variables pointing at a sandbox and a fresh landing folder."""
    org = generate(OrgSpec(seed=11, n_teams=6, n_months=6))
    landing = tmp_path_factory.mktemp("landing")
    write_landing(org, landing)
    with start_sandbox(org) as sandbox, pytest.MonkeyPatch.context() as env:
        for name, value in {
            "PAGERDUTY_API_TOKEN": SANDBOX_PAGERDUTY_TOKEN,
            "PAGERDUTY_URL": sandbox.pagerduty_url,
            "JIRA_URL": sandbox.jira_url,
            "JIRA_EMAIL": SANDBOX_JIRA_EMAIL,
            "JIRA_API_TOKEN": SANDBOX_JIRA_TOKEN,
            "SSL_CERT_FILE": sandbox.ca_bundle_path,
            "REQUESTS_CA_BUNDLE": sandbox.ca_bundle_path,
            "PSAFE_LANDING_DIR": str(landing),
            "PSAFE_HR_ID_SALT": SANDBOX_HR_SALT,
        }.items():
            env.setenv(name, value)
        yield org, env
