"""Landing-folder exports: survey responses, HR headcount and terminations, the team map.

Every export row either loads or lands in a quarantine table with its reason and the load
time; the counts by reason are asset metadata, and an asset check warns while any remain.
Survey rows are respondent-level, so they (and their quarantine) live only in the
``restricted`` schema; HR quarantine rows carry hashed ids and live in ``quarantine``.
"""

from datetime import UTC, datetime

import dagster as dg
import polars as pl
from dagster_duckdb import DuckDBResource

from assets.landing.exports import read_export
from assets.landing.hr import HEADCOUNT_COLUMNS, TERMINATION_COLUMNS, parse_headcount, parse_terminations
from assets.landing.resource import LandingFolderResource
from assets.landing.survey import parse_survey
from assets.landing.team_map import read_team_map
from assets.landing.validation import Checked
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import replace_table

TEAM_MAP = dg.AssetKey(["staging", "stg_config__team_map"])
QUARANTINE_SCHEMA = {"source_line": pl.Int64, "reason": pl.String, "raw_row": pl.String}
SURVEY_SCHEMA = {
    "response_id": pl.String, "survey_group": pl.String, "submitted_at": pl.Datetime, "source_line": pl.Int64,
    "item_no": pl.Int64, "answer": pl.Int64, "score": pl.Int64, "scale_points": pl.Int64,
}
# Where each loader writes its quarantined rows.
QUARANTINE_TABLES = {
    "survey__responses": ("restricted", "survey__responses_quarantine"),
    "hr__headcount": ("quarantine", "hr__headcount"),
    "hr__terminations": ("quarantine", "hr__terminations"),
}


def _identifiers(duckdb: DuckDBResource, source: str) -> set[str]:
    with duckdb.get_connection() as conn:
        rows = conn.execute("select identifier from staging.stg_config__team_map where source = ?", [source])
        return {identifier for (identifier,) in rows.fetchall()}


def _write(context, duckdb: DuckDBResource, schema: str, table: str, accepted: pl.DataFrame,
           checked: Checked, extra: dict) -> dg.MaterializeResult:
    loaded_at = datetime.now(UTC)
    quarantine = pl.DataFrame(checked.quarantined, schema=QUARANTINE_SCHEMA).with_columns(
        loaded_at=pl.lit(loaded_at, dtype=pl.Datetime(time_zone="UTC"))
    )
    q_schema, q_table = QUARANTINE_TABLES[table]
    with duckdb.get_connection() as conn:
        replace_table(conn, schema, table, accepted)
        replace_table(conn, q_schema, q_table, quarantine)
    reasons = checked.reasons()
    context.log.info(f"{schema}.{table}: loaded {accepted.height} rows; quarantined {quarantine.height} "
                     f"into {q_schema}.{q_table} {reasons or ''}")
    for warning in extra.pop("warnings", []):
        context.log.warning(warning)
    return dg.MaterializeResult(metadata={
        "rows": accepted.height, "quarantined": quarantine.height,
        "quarantined_by_reason": dg.MetadataValue.json(reasons), **extra,
    })


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["restricted", "survey__responses"],
    deps=[TEAM_MAP],
    group_name="landing",
    kinds={"csv", "duckdb"},
)
def survey_responses(
    context: dg.AssetExecutionContext, landing: LandingFolderResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Survey-tool export `survey_responses.csv` in long form: one row per response and
    answered item, matched by item text, with the 1..K answer and its score (reverse-scored
    items: K + 1 - answer). Respondent-level, so restricted. Rows with out-of-range answers,
    unknown survey groups, bad or future dates, no answers, unreadable bytes, or a
    response_id seen again (the latest submission is kept) go to
    restricted.survey__responses_quarantine with their reason."""
    export = read_export(landing.file("survey_responses.csv"), landing.export_encoding)
    load = parse_survey(export, landing.survey_scale_points, _identifiers(duckdb, "survey_group"),
                        datetime.now(UTC))
    accepted = pl.DataFrame(load.checked.accepted, schema=SURVEY_SCHEMA)
    return _write(context, duckdb, "restricted", "survey__responses", accepted, load.checked, {
        "responses": load.responses, "partial_responses": load.partial_responses, "encoding": load.encoding,
        "scale_points": landing.survey_scale_points, "ignored_columns": dg.MetadataValue.json(load.ignored_columns),
        "warnings": load.warnings,
    })


@dg.asset(pool=WAREHOUSE_POOL, key=["raw", "hr__headcount"], deps=[TEAM_MAP], group_name="landing", kinds={"csv", "duckdb"})
def hr_headcount(
    context: dg.AssetExecutionContext, landing: LandingFolderResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """HR export `hr_headcount.csv`: monthly headcount snapshots per employee, employee ids
    replaced by salted hashes. Rows with unknown org units, bad or future dates, bad flags or
    a repeated (employee, snapshot date) go to quarantine.hr__headcount with their reason."""
    export = read_export(landing.file("hr_headcount.csv"), landing.export_encoding)
    checked = parse_headcount(export, _identifiers(duckdb, "hr_org_unit"), datetime.now(UTC), landing.pseudonymise)
    accepted = pl.DataFrame(checked.accepted, schema={c: pl.String for c in HEADCOUNT_COLUMNS})
    return _write(context, duckdb, "raw", "hr__headcount", accepted, checked, {"encoding": export.encoding})


@dg.asset(
    pool=WAREHOUSE_POOL,
    key=["raw", "hr__terminations"],
    deps=[TEAM_MAP],
    group_name="landing",
    kinds={"csv", "duckdb"},
)
def hr_terminations(
    context: dg.AssetExecutionContext, landing: LandingFolderResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """HR export `hr_terminations.csv`: one row per leaver with the voluntary and
    critical-role flags, employee ids replaced by salted hashes. Rows with unknown org units,
    bad or future dates, bad flags or a repeated (employee, date) go to
    quarantine.hr__terminations with their reason."""
    export = read_export(landing.file("hr_terminations.csv"), landing.export_encoding)
    checked = parse_terminations(export, _identifiers(duckdb, "hr_org_unit"), datetime.now(UTC), landing.pseudonymise)
    accepted = pl.DataFrame(checked.accepted, schema={c: pl.String for c in TERMINATION_COLUMNS})
    return _write(context, duckdb, "raw", "hr__terminations", accepted, checked, {"encoding": export.encoding})


def _quarantine_check(asset: dg.AssetsDefinition, table: str) -> dg.AssetChecksDefinition:
    q_schema, q_table = QUARANTINE_TABLES[table]

    @dg.asset_check(pool=WAREHOUSE_POOL, asset=asset, name="quarantine_is_empty", blocking=False,
                    description=f"Warns while {q_schema}.{q_table} holds rows the export could not load.")
    def _check(duckdb: DuckDBResource) -> dg.AssetCheckResult:
        with duckdb.get_connection() as conn:
            counts = dict(conn.execute(
                f"select split_part(reason, ':', 1), count(*) from {q_schema}.{q_table} group by 1 order by 1"
            ).fetchall())
        return dg.AssetCheckResult(
            passed=not counts, severity=dg.AssetCheckSeverity.WARN,
            metadata={"quarantined": sum(counts.values()), "by_reason": dg.MetadataValue.json(counts),
                      "table": f"{q_schema}.{q_table}"},
        )

    return _check


quarantine_checks = [
    _quarantine_check(survey_responses, "survey__responses"),
    _quarantine_check(hr_headcount, "hr__headcount"),
    _quarantine_check(hr_terminations, "hr__terminations"),
]


@dg.asset(pool=WAREHOUSE_POOL, key=["raw", "config__team_map"], group_name="landing", kinds={"yaml", "duckdb"})
def team_map(
    context: dg.AssetExecutionContext, landing: LandingFolderResource, duckdb: DuckDBResource
) -> dg.MaterializeResult:
    """Team map `team_map.yml`: one row per (team, source, identifier), joining PagerDuty
    teams and services, Jira projects and components, HR org units and survey groups."""
    rows = read_team_map(landing.file("team_map.yml"))
    frame = pl.DataFrame(rows, schema={"team": pl.String, "source": pl.String, "identifier": pl.String})
    with duckdb.get_connection() as conn:
        count = replace_table(conn, "raw", "config__team_map", frame)
    context.log.info(f"config__team_map: loaded {count} rows")
    return dg.MaterializeResult(metadata={"rows": count})
