"""Each expectation suite as a Dagster asset check, validated by Great Expectations 1.x.

The check reads the columns its suite names from DuckDB into pandas and validates them in an
ephemeral GX context (GX's SQL data source does not work on DuckDB; dagster-ge needs GX < 1).
Its result carries, per failed expectation, the column, the unexpected count and share and a
few unexpected values, so the Dagster UI shows what failed without opening the warehouse.
"""

import copy
import json
import math
from datetime import date, datetime

import dagster as dg
import great_expectations as gx
import numpy as np
import pandas as pd
from dagster_duckdb import DuckDBResource
from great_expectations.core.expectation_validation_result import ExpectationValidationResult
from great_expectations.data_context.types.base import (
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

from assets.quality.suites import COLUMN_ARGUMENTS, SUITES, Suite, target_columns
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.raw_tables import table_columns

SAMPLE_SIZE = 5
_NOT_ARGUMENTS = {"batch_id", "row_condition", *COLUMN_ARGUMENTS}


def gx_asset_checks(suites: list[Suite] = SUITES) -> list[dg.AssetChecksDefinition]:
    """One asset check per suite; blocking suites stop downstream assets when they fail."""
    return [_asset_check(suite) for suite in suites]


def _asset_check(suite: Suite) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        pool=WAREHOUSE_POOL,
        asset=suite.asset_key,
        name=suite.name,
        description=describe(suite),
        blocking=suite.blocking,
        compute_kind="great_expectations",
    )
    def _check(context: dg.AssetCheckExecutionContext, duckdb: DuckDBResource) -> dg.AssetCheckResult:
        result = _run_suite(suite, duckdb)
        log = context.log.info if result.passed else context.log.warning
        log(f"{suite.table} {suite.name}: {result.description}")
        return result

    return _check


def _run_suite(suite: Suite, duckdb: DuckDBResource) -> dg.AssetCheckResult:
    """Read the columns the suite names and validate them; a missing column fails the check."""
    with duckdb.get_connection() as conn:
        present = set(table_columns(conn, suite.table))
        missing = [column for column in suite.columns if column not in present]
        if not present or missing:
            return _unreadable(suite, present, missing)
        selected = ", ".join(_quoted(column) for column in suite.columns) or "*"
        frame = conn.sql(f"select {selected} from {suite.table}").df()
    return validate(suite, frame)


def validate(suite: Suite, frame: pd.DataFrame) -> dg.AssetCheckResult:
    """Validate ``frame`` against ``suite``; the result's metadata lists every failure."""
    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        ),
    )
    batch = (
        context.data_sources.add_pandas(suite.table)
        .add_dataframe_asset(suite.name)
        .add_batch_definition_whole_dataframe("whole table")
        .get_batch(batch_parameters={"dataframe": frame})
    )
    # GX binds an expectation to the suite it joins, so each validation gets its own copies.
    expectation_suite = gx.ExpectationSuite(
        name=f"{suite.table}.{suite.name}", expectations=[copy.copy(e) for e in suite.expectations]
    )
    result_format = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
    if suite.row_id_columns and not suite.respondent_level:
        result_format["unexpected_index_column_names"] = suite.row_id_columns
    validation = batch.validate(expectation_suite, result_format=result_format)
    failures = [_failure(result, suite.respondent_level) for result in validation.results if not result.success]
    metadata: dict[str, dg.RawMetadataValue] = {
        "table": suite.table,
        "rows": len(frame),
        "expectations": len(validation.results),
        "failed_expectations": len(failures),
    }
    if failures:
        metadata["failures"] = dg.MetadataValue.md(_markdown(failures))
        metadata["failures_json"] = dg.MetadataValue.json(failures)
    summary = (
        f"{len(failures)} of {len(validation.results)} expectations failed on {suite.table}: "
        + "; ".join(f["expectation"] for f in failures)
        + (f". {suite.when_empty}" if frame.empty and suite.when_empty else "")
        if failures
        else f"all {len(validation.results)} expectations met on {suite.table} ({len(frame)} rows)"
    )
    return dg.AssetCheckResult(
        passed=bool(validation.success), severity=suite.severity, description=summary, metadata=metadata
    )


def describe(suite: Suite) -> str:
    """The check's description in the UI: its purpose, whether it blocks, its expectations."""
    effect = (
        "Blocking: a failure stops the assets downstream in the same run."
        if suite.blocking
        else "Warns: a failure shows here and the run goes on."
    )
    lines = [f"- {_expectation_text(e.configuration)}" for e in suite.expectations]
    return "\n".join([f"{suite.purpose} {effect}", "", f"Great Expectations suite on `{suite.table}`:", *lines])


def _unreadable(suite: Suite, present: set[str], missing: list[str]) -> dg.AssetCheckResult:
    metadata: dict[str, dg.RawMetadataValue] = {"table": suite.table}
    if not present:
        problem = f"table {suite.table} does not exist; materialize it first"
    else:
        problem = (
            f"{suite.table} has no column(s) {', '.join(missing)}; if a model renamed them, "
            "update the suite in assets/quality/suites.py"
        )
        metadata["missing_columns"] = missing
    return dg.AssetCheckResult(
        passed=False, severity=suite.severity, description=problem, metadata={**metadata, "problem": problem}
    )


def _failure(result: ExpectationValidationResult, counts_only: bool) -> dict:
    config = result.expectation_config
    outcome = result.result or {}
    sample = [] if counts_only else outcome.get("partial_unexpected_list", [])
    # With row-id columns GX reports each failing row as {row id..., value}.
    rows = [] if counts_only else [r for r in outcome.get("partial_unexpected_index_list", []) if isinstance(r, dict)]
    failure = {
        "expectation": _expectation_text(config),
        "columns": ", ".join(target_columns(config.kwargs)),
        "unexpected_count": outcome.get("unexpected_count"),
        "unexpected_percent": _rounded(outcome.get("unexpected_percent")),
        "unexpected_sample": _distinct(_plain(v) for v in sample),
        "unexpected_rows": _distinct(_plain(r) for r in rows),
    }
    if "observed_value" in outcome:
        failure["observed_value"] = _plain(outcome["observed_value"])
    errors = _exception_messages(result.exception_info or {})
    if errors:
        failure["error"] = "; ".join(errors)
    return failure


def _exception_messages(info: dict) -> list[str]:
    # GX reports an exception either directly or keyed by the metric that raised it.
    reports = [info] if "raised_exception" in info else [v for v in info.values() if isinstance(v, dict)]
    return list(dict.fromkeys(r["exception_message"] for r in reports if r.get("raised_exception")))


def _markdown(failures: list[dict]) -> str:
    header = "| expectation | columns | unexpected | unexpected % | sample of unexpected rows (or values) / observed |"
    rows = [header, "| --- | --- | --- | --- | --- |"]
    for f in failures:
        sample = f.get("error") or "; ".join(_value_text(v) for v in f["unexpected_rows"] or f["unexpected_sample"])
        if "observed_value" in f:
            sample = f"observed {f['observed_value']}"
        cells = [f["expectation"], f["columns"], f["unexpected_count"], f["unexpected_percent"], sample]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


def _expectation_text(config: ExpectationConfiguration) -> str:
    columns = ", ".join(target_columns(config.kwargs))
    arguments = [f"{k}={v}" for k, v in config.kwargs.items() if k not in _NOT_ARGUMENTS and v is not None]
    condition = config.kwargs.get("row_condition")
    if condition:
        arguments.append(f"where {config.to_domain_obj().row_condition!r}")
    return f"{config.type}({', '.join(filter(None, [columns, *arguments]))})"


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _plain(value):
    """A JSON-friendly version of a value GX reports (numpy scalars, timestamps, pairs, NaN)."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    elif isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (datetime, pd.Timestamp)) and value.tzinfo is None and value == value.replace(
        hour=0, minute=0, second=0, microsecond=0
    ):
        return value.date().isoformat()  # a DATE column that pandas widened to a timestamp
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _distinct(values) -> list:
    """Unexpected values without repeats (GX lists a duplicated key once per row)."""
    seen = {}
    for value in values:
        seen.setdefault(json.dumps(value, sort_keys=True), value)
    return list(seen.values())


def _value_text(value) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_value_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "(" + ", ".join(_value_text(v) for v in value) + ")"
    return "null" if value is None else str(value)


def _cell(value) -> str:
    return "" if value is None else str(value).replace("|", "\\|").replace("\n", " ")
