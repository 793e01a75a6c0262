"""Landing-folder exports: survey responses, HR headcount and terminations, the team map."""


import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from assets.landing.resource import LandingFolderResource
from assets.landing.team_map import read_team_map
from assets.warehouse.raw_tables import replace_table


def _read_csv(landing: LandingFolderResource, name: str) -> pl.DataFrame:
    # Everything as text: typing and validation happen in staging, where bad values are visible.
    return pl.read_csv(landing.file(name), infer_schema=False)


def _load(context, duckdb: DuckDBResource, table: str, frame: pl.DataFrame) -> dg.MaterializeResult:
    with duckdb.get_connection() as conn:
        rows = replace_table(conn, "raw", table, frame)
    context.log.info(f"{table}: loaded {rows} rows")
    return dg.MaterializeResult(metadata={"rows": rows})


@dg.asset(key=["raw", "survey__responses"], group_name="landing", compute_kind="csv")
def survey_responses(
    context: dg.AssetExecutionContext, landing: LandingFolderResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Survey-tool export `survey_responses.csv`: one row per response, one column per item
    (named by item text), plus `response_id`, `submitted_at` and the `team` survey group."""
    return _load(context, duckdb, "survey__responses", _read_csv(landing, "survey_responses.csv"))


@dg.asset(key=["raw", "hr__headcount"], group_name="landing", compute_kind="csv")
def hr_headcount(
    context: dg.AssetExecutionContext, landing: LandingFolderResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """HR export `hr_headcount.csv`: monthly headcount snapshots per employee; employee ids
    are replaced by salted hashes before loading."""
    frame = _read_csv(landing, "hr_headcount.csv")
    return _load(context, duckdb, "hr__headcount", _pseudonymised(frame, landing))


@dg.asset(key=["raw", "hr__terminations"], group_name="landing", compute_kind="csv")
def hr_terminations(
    context: dg.AssetExecutionContext, landing: LandingFolderResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """HR export `hr_terminations.csv`: one row per leaver with the voluntary flag; employee
    ids are replaced by salted hashes before loading."""
    frame = _read_csv(landing, "hr_terminations.csv")
    return _load(context, duckdb, "hr__terminations", _pseudonymised(frame, landing))


@dg.asset(key=["raw", "config__team_map"], group_name="landing", compute_kind="yaml")
def team_map(
    context: dg.AssetExecutionContext, landing: LandingFolderResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Team map `team_map.yml`: one row per (team, source, identifier), joining PagerDuty
    teams and services, Jira projects and components, HR org units and survey groups."""
    rows = read_team_map(landing.file("team_map.yml"))
    frame = pl.DataFrame(rows, schema={"team": pl.String, "source": pl.String, "identifier": pl.String})
    return _load(context, duckdb, "config__team_map", frame)


def _pseudonymised(frame: pl.DataFrame, landing: LandingFolderResource) -> pl.DataFrame:
    return frame.with_columns(
        pl.col("employee_id").map_elements(landing.pseudonymise, return_dtype=pl.String)
    )
