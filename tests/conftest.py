import os
from pathlib import Path

import duckdb
import polars as pl
import pytest

from assets.jira.classification import read_rules, rules_frame
from assets.jira.resource import DEFAULT_CLASSIFICATION_RULES
from assets.kpi_rules import KpiRules, read_kpi_rules
from assets.kpi_rules import rules_frame as kpi_rules_frame
from assets.landing.item_sets import PSYCHOLOGICAL_SAFETY
from assets.models.assets import CELL_SCHEMA
from assets.warehouse.dbt import InProcessDbt, relation_name
from assets.warehouse.raw_tables import RAW_FIELDS, replace_table, upsert_json_records
from assets.warehouse.resource import attach_restricted, open_warehouse
from assets.warehouse.restricted import RESTRICTED_VARIABLE, default_restricted_path
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


TEAM_MONTH_MODELS = (
    "stg_config__team_map", "stg_config__identity_map", "stg_pagerduty__teams", "stg_pagerduty__services",
    "stg_pagerduty__incidents", "stg_pagerduty__log_entries", "stg_pagerduty__incident_reviews",
    "stg_pagerduty__review_action_items", "stg_jira__issues", "stg_hr__headcount", "stg_hr__terminations",
    "int_team_owners", "int_hr_org_unit_teams", "int_pagerduty_team_owners", "int_pagerduty_incident_teams",
    "int_jira_team_owners",
    "int_jira_issue_teams",
    "int_post_incident_reviews",
    "int_review_incidents", "int_review_action_items", "int_ticket_reporters", "int_team_month_headcount",
    "dim_teams", "fct_incidents", "fct_tickets", "fct_incident_reviews", "fct_review_action_items",
    "fct_incident_repeats", "int_team_survey_waves", "fct_team_month_survey_scores", "mart_team_month",
)
# Export tables as the landing assets write them (text columns), for tests that leave them empty.
EXPORT_COLUMNS = {
    ("raw", "config__team_map"): ("team", "source", "identifier"),
    ("raw", "config__identity_map"): ("identity_kind", "identity", "employee_id"),
    ("raw", "hr__headcount"): ("snapshot_date", "employee_id", "org_unit", "role", "critical_role"),
    ("raw", "hr__terminations"): ("employee_id", "org_unit", "role", "critical_role", "termination_date",
                                  "voluntary"),
}


def rows_unlike_a_full_rebuild(warehouse: "Warehouse", model: str) -> int:
    """Rows in the model's table that a full rebuild would not make now, plus the reverse."""
    select, table = warehouse.full_rebuild_sql(model), warehouse.relation(model)
    return warehouse.conn.execute(
        f"select (select count(*) from (select * from {table} except all select * from ({select}))) "
        f"+ (select count(*) from (select * from ({select}) except all select * from {table}))"
    ).fetchone()[0]


@pytest.fixture(scope="session", autouse=True)
def no_restricted_file_from_the_environment():
    """Every warehouse a test makes has its restricted file beside it (the default), never the
    one PSAFE_RESTRICTED_WAREHOUSE may name on this machine: a real file of real answers."""
    with pytest.MonkeyPatch.context() as env:
        env.delenv(RESTRICTED_VARIABLE, raising=False)
        yield


@pytest.fixture(scope="session")
def dbt(tmp_path_factory) -> InProcessDbt:
    """dbt on the project in sql/, parsed once for the session."""
    return InProcessDbt(tmp_path_factory.mktemp("dbt-target"))


class Warehouse:
    """A DuckDB file with helpers to load fixture rows and build the dbt models on it."""

    def __init__(self, path: Path, dbt: InProcessDbt) -> None:
        self.path, self.dbt = path, dbt
        self._conn: duckdb.DuckDBPyConnection | None = None

    @property
    def conn(self) -> duckdb.DuckDBPyConnection:
        """The warehouse with its restricted file attached as ``restricted``, as the pipeline opens them."""
        if self._conn is None:
            self._conn = open_warehouse(str(self.path))
            attach_restricted(self._conn, str(self.path), default_restricted_path(str(self.path)))
        return self._conn

    def close(self) -> None:
        """Release the file (dbt opens it from its own connection)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def raw_json(self, table: str, records: list[dict]) -> None:
        upsert_json_records(self.conn, table, records)

    def raw_rows(self, table: str, rows: list[dict]) -> None:
        replace_table(self.conn, "raw", table, pl.DataFrame(rows, infer_schema_length=None).cast(pl.String))

    def survey_cells(self, cells: list[dict]) -> None:
        """marts.fct_team_survey_waves as the survey asset writes it, from ``cells``: team,
        wave_quarter and score_mean (None: suppressed), optionally scale (default
        psychological safety), n_respondents (default 6) and score_sd."""
        rows = [{"scale": PSYCHOLOGICAL_SAFETY.key, "is_suppressed": c.get("score_mean") is None,
                 "n_respondents": None if c.get("score_mean") is None else 6, **c} for c in cells]
        replace_table(self.conn, "marts", "fct_team_survey_waves", pl.DataFrame(rows, schema=CELL_SCHEMA))

    def classification_rules(self, path=DEFAULT_CLASSIFICATION_RULES) -> None:
        replace_table(self.conn, "raw", "config__ticket_classification", rules_frame(read_rules(path)))

    def kpi_rules(self, rules: KpiRules | None = None) -> None:
        """The KPI rules table: ``rules``, else the shipped default."""
        replace_table(self.conn, "raw", "config__kpi_rules", kpi_rules_frame(rules or read_kpi_rules()))

    def run(self, *args: str, **runtime_vars: str):
        self.close()
        return self.dbt(self.path, *args, **runtime_vars)

    def build(self, *models: str) -> None:
        """Build ``models`` (dbt names) from scratch, in dependency order; sources the test
        did not load are empty (``create_missing_sources``)."""
        self.create_missing_sources()
        self.run("run", "--full-refresh", "--select", *models)

    def build_team_month(self) -> None:
        """Build every model up to ``marts.mart_team_month`` from the rows the test loaded:
        sources it left alone are empty and the rules are the shipped default unless it
        loaded its own. ``marts.fct_team_survey_waves`` (a Python asset) is the test's to load."""
        self.build(*TEAM_MONTH_MODELS)

    def create_missing_sources(self) -> None:
        """Empty API, export and survey tables for the sources the test did not load, and the
        default rules."""
        for table in RAW_FIELDS:
            self.raw_json(table, [])
        for (schema, table), columns in EXPORT_COLUMNS.items():
            self.conn.execute(f"create schema if not exists {schema}")
            self.conn.execute(f"create table if not exists {schema}.{table} ({', '.join(f'{c} varchar' for c in columns)})")
        loaded = {name for (name,) in self.conn.execute("select table_name from duckdb_tables()").fetchall()}
        if "config__ticket_classification" not in loaded:
            self.classification_rules()
        if "config__kpi_rules" not in loaded:
            self.kpi_rules()
        if "fct_team_survey_waves" not in loaded:
            self.survey_cells([])

    def relation(self, model: str) -> str:
        node = next(n for n in self.dbt.manifest.nodes.values() if n.resource_type == "model" and n.name == model)
        return ".".join(relation_name(node.to_dict()))

    def full_rebuild_sql(self, model: str) -> str:
        """The model's SELECT as a full rebuild runs it (no incremental filter)."""
        compiled = self.run("compile", "--full-refresh", "--select", model).result.results[0].node.compiled_code
        return compiled

    def rows(self, sql: str) -> list[dict]:
        return self.conn.sql(sql).pl().to_dicts()


@pytest.fixture
def warehouse(tmp_path, dbt):
    wh = Warehouse(tmp_path / "warehouse.duckdb", dbt)
    yield wh
    wh.close()


@pytest.fixture(scope="module")
def sandbox_environment(tmp_path_factory):
    """The definitions' environment variables pointing at a sandbox and a fresh landing folder."""
    org = generate(OrgSpec(seed=11, n_teams=6, n_months=6))
    landing = tmp_path_factory.mktemp("landing")
    write_landing(org, landing)
    for path in landing.iterdir():  # finished copies: older than the landing resource's settle time
        os.utime(path, (path.stat().st_mtime - 3600, path.stat().st_mtime - 3600))
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


def landing_beside_warehouse(tmp_path: Path, team_map: dict[str, list[str]]) -> tuple[Path, Path]:
    """An empty landing folder and a warehouse holding only the team map ``team_map`` (columns
    team, source, identifier), as the landing assets find them."""
    landing = tmp_path / "landing"
    landing.mkdir()
    warehouse = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        replace_table(conn, "raw", "config__team_map", pl.DataFrame(team_map))
    return landing, warehouse
