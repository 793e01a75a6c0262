"""Incremental staging models (dbt, delete+insert): a build derives only the records loaded
since the last build, drops the rows whose records are gone, and equals a full rebuild."""

import shutil

import pytest
from conftest import Warehouse, rows_unlike_a_full_rebuild

from assets.warehouse.dbt import SQL_DIR, DbtFailed, InProcessDbt

INCIDENTS = "stg_pagerduty__incidents"


def incident(incident_id: str, status: str = "triggered", **extra) -> dict:
    return {"id": incident_id, "incident_number": int(incident_id[2:]), "service": {"id": "PS1"},
            "teams": [{"id": "PT1"}], "created_at": "2024-02-01T10:00:00Z", "updated_at": "2024-02-01T10:00:00Z",
            "status": status, "urgency": "high", **extra}


def build(warehouse: Warehouse, model: str = INCIDENTS) -> None:
    """An incremental build, as the nightly run makes it."""
    warehouse.run("run", "--select", model)


def statuses(warehouse: Warehouse) -> dict[str, str]:
    return dict(warehouse.conn.execute(f"select incident_id, status from staging.{INCIDENTS}").fetchall())


def test_the_big_staging_models_are_incremental_on_one_raw_table_each(dbt):
    incremental = {node.name: (node.config.unique_key, node.depends_on.nodes)
                   for node in dbt.manifest.nodes.values()
                   if node.resource_type == "model" and node.config.materialized == "incremental"
                   and node.config.incremental_strategy == "delete+insert"}
    # Each row derives from one raw record alone: a row that also read another table (a lookup,
    # the rules file) would keep what that table said when its own record was loaded.
    assert incremental == {
        "stg_jira__issues": ("issue_id", ["source.psafe.raw.jira__issues"]),
        "stg_pagerduty__incidents": ("incident_id", ["source.psafe.raw.pagerduty__incidents"]),
        "stg_pagerduty__log_entries": ("log_entry_id", ["source.psafe.raw.pagerduty__log_entries"]),
        "stg_pagerduty__incident_reviews": ("review_id", ["source.psafe.raw.pagerduty__incident_reviews"]),
        "stg_pagerduty__review_action_items": ("action_item_id", ["source.psafe.raw.pagerduty__review_action_items"]),
    }


def test_a_build_derives_only_records_loaded_since_the_last_one(warehouse):
    warehouse.raw_json("pagerduty__incidents", [incident("PI1"), incident("PI2"), incident("PI3")])
    build(warehouse)
    # A row the next build would make differently if it derived it again: it must not.
    warehouse.conn.execute(f"update staging.{INCIDENTS} set status = 'untouched' where incident_id = 'PI3'")

    # The night's sync: PI2 was resolved by merging it into PI1, PI4 is new.
    merge = {"type": "merge_resolve_reason", "incident": {"id": "PI1"}}
    warehouse.raw_json("pagerduty__incidents", [incident("PI2", "resolved", resolve_reason=merge), incident("PI4")])
    build(warehouse)

    rows = {r["incident_id"]: r for r in warehouse.rows(f"select * from staging.{INCIDENTS}")}
    assert sorted(rows) == ["PI1", "PI2", "PI3", "PI4"]
    assert (rows["PI2"]["status"], rows["PI2"]["merged_into_incident_id"]) == ("resolved", "PI1")
    assert rows["PI3"]["status"] == "untouched"
    warehouse.conn.execute(f"update staging.{INCIDENTS} set status = 'triggered' where incident_id = 'PI3'")
    assert rows_unlike_a_full_rebuild(warehouse, INCIDENTS) == 0


def test_a_table_built_from_no_records_takes_the_first_ones(warehouse):
    warehouse.raw_json("pagerduty__incidents", [])
    build(warehouse)
    assert statuses(warehouse) == {}
    warehouse.raw_json("pagerduty__incidents", [incident("PI1")])
    build(warehouse)
    assert statuses(warehouse) == {"PI1": "triggered"}


def test_rows_whose_raw_records_are_gone_are_removed(warehouse):
    warehouse.raw_json("pagerduty__incidents", [incident("PI1"), incident("PI2")])
    build(warehouse)
    # As many raw records as before, but PI1 is gone and PI3 is new, in the same night.
    warehouse.conn.execute("delete from raw.pagerduty__incidents where id = 'PI1'")
    warehouse.raw_json("pagerduty__incidents", [incident("PI3")])
    build(warehouse)

    assert sorted(statuses(warehouse)) == ["PI2", "PI3"]
    assert rows_unlike_a_full_rebuild(warehouse, INCIDENTS) == 0


def test_a_record_stamped_before_the_last_build_is_not_lost(warehouse):
    warehouse.raw_json("pagerduty__incidents", [incident("PI1")])
    build(warehouse)
    # A clock set back, or raw rows restored from a backup: PI2 arrives with an old load time.
    warehouse.conn.execute(
        "insert into raw.pagerduty__incidents by name select * replace ('PI2' as id, "
        "replace(payload::varchar, 'PI1', 'PI2')::json as payload, loaded_at - interval 1 hour as loaded_at) "
        "from raw.pagerduty__incidents")
    build(warehouse)

    assert sorted(statuses(warehouse)) == ["PI1", "PI2"]
    assert rows_unlike_a_full_rebuild(warehouse, INCIDENTS) == 0


@pytest.fixture
def project_copy(tmp_path):
    """A copy of sql/ that a test may edit, with its own parse."""
    copy = tmp_path / "sql"
    shutil.copytree(SQL_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    return copy


@pytest.mark.slow
def test_a_changed_model_sql_rebuilds_the_whole_table(tmp_path, project_copy):
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", InProcessDbt(tmp_path / "target", project_copy))
    warehouse.raw_json("pagerduty__incidents", [incident("PI1"), incident("PI2")])
    build(warehouse)
    model = project_copy / "models" / "staging" / f"{INCIDENTS}.sql"
    model.write_text(model.read_text().replace("    status,\n", "    upper(status) as status,\n"))
    warehouse.dbt = InProcessDbt(tmp_path / "target", project_copy)

    build(warehouse)
    assert set(statuses(warehouse).values()) == {"TRIGGERED"}  # PI1 and PI2 derived again, by the new SQL
    warehouse.raw_json("pagerduty__incidents", [incident("PI3")])
    build(warehouse)
    assert statuses(warehouse) == {"PI1": "TRIGGERED", "PI2": "TRIGGERED", "PI3": "TRIGGERED"}
    assert rows_unlike_a_full_rebuild(warehouse, INCIDENTS) == 0


@pytest.mark.parametrize("fault, message", [
    # The new rows cannot be derived (the increment's SELECT fails before anything is deleted).
    ("    status,\n", "    case when id = 'PI2' then error('cannot derive PI2') else status end as status,\n"),
    # The build fails after the delete+insert and the gone-record cleanup, before COMMIT.
    ('"{{ record_sql_fingerprint() }}",\n', '"{{ record_sql_fingerprint() }}",\n        "select error(\'disk full\') '
                                             'where exists (select 1 from {{ this }} where incident_id = \'PI2\')",\n'),
], ids=["select fails", "fails after the delete+insert"])
def test_a_failed_build_leaves_the_table_as_it_was(tmp_path, project_copy, fault, message):
    model = project_copy / "models" / "staging" / f"{INCIDENTS}.sql"
    model.write_text(model.read_text().replace(fault, message))
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", InProcessDbt(tmp_path / "target", project_copy))
    warehouse.raw_json("pagerduty__incidents", [incident("PI1")])
    build(warehouse)
    merge = {"type": "merge_resolve_reason", "incident": {"id": "PI3"}}
    warehouse.raw_json("pagerduty__incidents", [incident("PI1", "resolved", resolve_reason=merge), incident("PI2")])
    warehouse.conn.execute("delete from raw.pagerduty__incidents where id = 'PI1'")
    before = warehouse.rows(f"select * from staging.{INCIDENTS}")

    with pytest.raises(DbtFailed, match="cannot derive PI2|disk full"):
        build(warehouse)
    assert warehouse.rows(f"select * from staging.{INCIDENTS}") == before


def test_an_edited_rules_file_reaches_tickets_that_staging_does_not_derive_again(warehouse, tmp_path):
    warehouse.raw_rows("config__team_map", [{"team": "Payments", "source": "jira_project", "identifier": "PAY"}])
    warehouse.raw_json("jira__issues", [{"id": "1", "key": "PAY-1", "fields": {
        "project": {"key": "PAY"}, "issuetype": {"name": "Bug"}, "labels": [], "components": [],
        "created": "2024-03-01T12:00:00.000+0000", "updated": "2024-03-01T12:00:00.000+0000",
        "resolutiondate": None, "status": {"name": "To Do"}}}])
    warehouse.classification_rules()
    warehouse.build("+int_jira_issue_teams", "fct_tickets")
    assert warehouse.rows("select ticket_class from marts.fct_tickets") == [{"ticket_class": "unclassified"}]
    loaded = warehouse.rows("select issue_id, loaded_at from staging.stg_jira__issues")

    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  - class: reactive\n    issue_types: [bug]\n")
    warehouse.classification_rules(rules)
    warehouse.run("run", "--select", "stg_jira__issues", "fct_tickets")
    assert warehouse.rows("select issue_id, loaded_at from staging.stg_jira__issues") == loaded
    assert warehouse.rows("select ticket_class from marts.fct_tickets") == [{"ticket_class": "reactive"}]
