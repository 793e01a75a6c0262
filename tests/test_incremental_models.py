"""Incremental staging models: a build derives only the rows whose raw records were loaded
since the last build, drops the rows whose records are gone, and equals a full rebuild."""

import dataclasses

import pytest
from conftest import rows_unlike_a_full_rebuild

from assets.warehouse.sql_models import SQL_DIR, build_model, read_model

INCIDENTS = read_model(SQL_DIR / "staging" / "stg_pagerduty__incidents.sql")


def incident(incident_id: str, status: str = "triggered", **extra) -> dict:
    return {"id": incident_id, "incident_number": int(incident_id[2:]), "service": {"id": "PS1"},
            "teams": [{"id": "PT1"}], "created_at": "2024-02-01T10:00:00Z", "updated_at": "2024-02-01T10:00:00Z",
            "status": status, "urgency": "high", **extra}


def build(warehouse, model=INCIDENTS) -> str:
    """Build the model; what the asset would log about it."""
    return build_model(warehouse.conn, model).describe(model.table)


def test_the_big_staging_models_are_incremental_on_their_raw_load_time():
    incremental = {model.name: model.unique_key for model in map(read_model, sorted(SQL_DIR.glob("*/*.sql")))
                   if model.incremental_column == "loaded_at"}
    assert incremental == {"stg_jira__issues": "issue_id", "stg_pagerduty__incidents": "incident_id",
                           "stg_pagerduty__log_entries": "log_entry_id"}


def test_a_build_derives_only_rows_loaded_since_the_last_one(warehouse):
    warehouse.raw_json("pagerduty__incidents", [incident("PI1"), incident("PI2"), incident("PI3")])
    assert build(warehouse) == "staging.stg_pagerduty__incidents: rebuilt, 3 rows"

    # The night's sync: PI2 was resolved by merging it into PI1, PI4 is new.
    merge = {"type": "merge_resolve_reason", "incident": {"id": "PI1"}}
    warehouse.raw_json("pagerduty__incidents", [incident("PI2", "resolved", resolve_reason=merge), incident("PI4")])

    assert build(warehouse) == ("staging.stg_pagerduty__incidents: 2 rows derived from source rows loaded "
                                "since the last build, 0 removed with their source rows; 4 rows")
    rows = {r["incident_id"]: r for r in warehouse.rows("select * from staging.stg_pagerduty__incidents")}
    assert sorted(rows) == ["PI1", "PI2", "PI3", "PI4"]
    assert (rows["PI2"]["status"], rows["PI2"]["merged_into_incident_id"]) == ("resolved", "PI1")
    assert rows_unlike_a_full_rebuild(warehouse.conn, INCIDENTS) == 0


def test_a_table_built_from_no_records_takes_the_first_ones(warehouse):
    warehouse.raw_json("pagerduty__incidents", [])
    assert build(warehouse) == "staging.stg_pagerduty__incidents: rebuilt, 0 rows"
    warehouse.raw_json("pagerduty__incidents", [incident("PI1")])
    assert build(warehouse).endswith("1 rows derived from source rows loaded since the last build, "
                                        "0 removed with their source rows; 1 rows")


def test_rows_whose_raw_records_are_gone_are_removed(warehouse):
    warehouse.raw_json("pagerduty__incidents", [incident("PI1"), incident("PI2")])
    build(warehouse)
    # As many raw records as before, but PI1 is gone and PI3 is new.
    warehouse.conn.execute("delete from raw.pagerduty__incidents where id = 'PI1'")
    warehouse.raw_json("pagerduty__incidents", [incident("PI3")])

    assert build(warehouse).endswith("1 rows derived from source rows loaded since the last build, "
                                     "1 removed with their source rows; 2 rows")
    assert sorted(r["incident_id"] for r in warehouse.rows("select * from staging.stg_pagerduty__incidents")) == [
        "PI2", "PI3"]
    assert rows_unlike_a_full_rebuild(warehouse.conn, INCIDENTS) == 0


def test_a_changed_select_rebuilds_the_whole_table(warehouse):
    warehouse.raw_json("pagerduty__incidents", [incident("PI1"), incident("PI2")])
    build(warehouse)
    upper_status = dataclasses.replace(INCIDENTS, select_sql=INCIDENTS.select_sql.replace(
        "field[6] as status", "upper(field[6]) as status"))

    assert build(warehouse, upper_status) == "staging.stg_pagerduty__incidents: rebuilt, 2 rows"
    assert {r["status"] for r in warehouse.rows("select * from staging.stg_pagerduty__incidents")} == {"TRIGGERED"}
    assert build(warehouse, upper_status).startswith("staging.stg_pagerduty__incidents: 0 rows derived")


def test_a_failed_build_leaves_the_table_as_it_was(warehouse):
    warehouse.raw_json("pagerduty__incidents", [incident("PI1")])
    build(warehouse)
    warehouse.raw_json("pagerduty__incidents", [incident("PI2", incident_number="two")])
    before = warehouse.rows("select * from staging.stg_pagerduty__incidents")

    with pytest.raises(Exception, match="Could not convert string 'two'"):
        build(warehouse)
    assert warehouse.rows("select * from staging.stg_pagerduty__incidents") == before


def test_a_model_cannot_be_both_partitioned_and_incremental(tmp_path):
    path = tmp_path / "marts" / "fct_things.sql"
    path.parent.mkdir()
    path.write_text("-- fct_things: one row per thing.\n-- Partitioned by month on period_month.\n"
                    "-- Incremental on loaded_at, keyed by thing_id.\nselect 1")
    with pytest.raises(ValueError, match="either partitioned by month or incremental"):
        read_model(path)
