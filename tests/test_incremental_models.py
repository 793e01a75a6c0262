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
    assert build(warehouse).endswith("1 row derived from source rows loaded since the last build, "
                                        "0 removed with their source rows; 1 row")


def test_rows_whose_raw_records_are_gone_are_removed(warehouse):
    warehouse.raw_json("pagerduty__incidents", [incident("PI1"), incident("PI2")])
    build(warehouse)
    # As many raw records as before, but PI1 is gone and PI3 is new.
    warehouse.conn.execute("delete from raw.pagerduty__incidents where id = 'PI1'")
    warehouse.raw_json("pagerduty__incidents", [incident("PI3")])

    assert build(warehouse).endswith("1 row derived from source rows loaded since the last build, "
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
    warehouse.raw_json("pagerduty__incidents", [incident("PI2")])
    assert build(warehouse).startswith("staging.stg_pagerduty__incidents: 1 row derived")


def test_a_record_stamped_before_the_last_build_is_not_lost(warehouse):
    warehouse.raw_json("pagerduty__incidents", [incident("PI1")])
    build(warehouse)
    # A clock set back, or raw rows restored from a backup: PI2 arrives with an old load time.
    warehouse.conn.execute(
        "insert into raw.pagerduty__incidents select 'PI2', replace(payload::varchar, 'PI1', 'PI2'), "
        "loaded_at - interval 1 hour from raw.pagerduty__incidents")

    assert build(warehouse) == ("staging.stg_pagerduty__incidents: rebuilt (its source held rows loaded before "
                                "the last build that the table lacked), 2 rows")
    assert rows_unlike_a_full_rebuild(warehouse.conn, INCIDENTS) == 0


def test_an_edited_rules_file_reaches_tickets_that_staging_does_not_derive_again(warehouse, tmp_path):
    warehouse.raw_rows("config__team_map", [{"team": "Payments", "source": "jira_project", "identifier": "PAY"}])
    warehouse.raw_json("jira__issues", [{"id": "1", "key": "PAY-1", "fields": {
        "project": {"key": "PAY"}, "issuetype": {"name": "Bug"}, "labels": [], "components": [],
        "created": "2024-03-01T12:00:00.000+0000", "updated": "2024-03-01T12:00:00.000+0000",
        "resolutiondate": None, "status": {"name": "To Do"}}}])
    warehouse.classification_rules()
    warehouse.build("staging.stg_config__team_map", "staging.stg_jira__issues", "marts.fct_tickets")
    assert warehouse.rows("select ticket_class from marts.fct_tickets") == [{"ticket_class": "unclassified"}]

    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  - class: reactive\n    issue_types: [bug]\n")
    warehouse.classification_rules(rules)
    issues = read_model(SQL_DIR / "staging" / "stg_jira__issues.sql")
    assert build(warehouse, issues).startswith("staging.stg_jira__issues: 0 rows derived")
    warehouse.build("marts.fct_tickets")
    assert warehouse.rows("select ticket_class from marts.fct_tickets") == [{"ticket_class": "reactive"}]


def model_file(tmp_path, header: str, select: str):
    path = tmp_path / "staging" / "stg_things.sql"
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"-- stg_things: one row per thing.\n{header}\n{select}")
    return path


def test_a_model_cannot_be_both_partitioned_and_incremental(tmp_path):
    path = model_file(tmp_path, "-- Partitioned by month on period_month.\n-- Incremental on loaded_at, keyed by id.",
                      "select id, loaded_at from raw.things")
    with pytest.raises(ValueError, match="either partitioned by month or incremental"):
        read_model(path)


@pytest.mark.parametrize("select", [
    "select things.id, things.loaded_at, kinds.name from raw.things join raw.kinds using (kind_id)",
    "select id, max(loaded_at) as loaded_at from raw.things group by id",
    "select id, loaded_at from staging.stg_other",
])
def test_an_incremental_model_derives_each_row_from_one_raw_row(tmp_path, select):
    path = model_file(tmp_path, "-- Incremental on loaded_at, keyed by id.", select)
    with pytest.raises(ValueError, match="must derive from one row of one raw table alone"):
        read_model(path)
    assert read_model(model_file(tmp_path, "-- Grain: id.", select)).incremental_column is None
