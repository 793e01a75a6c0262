"""Monthly partitioned marts (dbt's replace_months strategy through dagster-dbt): a run over
some months rewrites exactly those months, in one transaction; a run over every month
rebuilds the table whole."""

import json
import shutil
from datetime import date

import dagster as dg
import pytest
from conftest import Warehouse

from assets.warehouse.dbt import (
    SQL_DIR,
    DbtFailed,
    InProcessDbt,
    monthly_marts,
    survey_attribution,
    warehouse_models,
)
from assets.warehouse.dbt import main as dbt_main
from assets.warehouse.partitions import every_month_tags, monthly_partitions
from assets.warehouse.resource import WarehouseResource

TEAM_MAP = [{"team": "Payments", "source": "pagerduty_service", "identifier": "PS1"}]
FEBRUARY = {"partition_start": "2024-02-01", "partition_end": "2024-03-01"}


def incident(incident_id: str, month: int, urgency: str = "high") -> dict:
    return {"id": incident_id, "incident_number": int(incident_id[2:]), "service": {"id": "PS1"},
            "created_at": f"2024-{month:02d}-10T10:00:00Z", "status": "triggered", "urgency": urgency}


def load(warehouse: Warehouse, incidents: list[dict]) -> None:
    warehouse.raw_rows("config__team_map", TEAM_MAP)
    warehouse.raw_json("pagerduty__incidents", incidents)


def urgencies(warehouse: Warehouse) -> dict[str, tuple[date, str]]:
    return {incident_id: (month, urgency) for incident_id, month, urgency in warehouse.conn.execute(
        "select incident_id, period_month, urgency from marts.fct_incidents").fetchall()}


UPSTREAM = ("+int_team_owners", "+int_pagerduty_team_owners", "+int_pagerduty_incident_teams", "stg_pagerduty__incidents",
            "stg_pagerduty__services")


@pytest.fixture
def three_months(warehouse):
    load(warehouse, [incident("PI1", 1), incident("PI2", 2), incident("PI3", 3)])
    warehouse.build(*UPSTREAM, "fct_incidents")
    return warehouse


def test_a_run_over_some_months_rewrites_only_those(three_months):
    warehouse = three_months
    # The source changes in January and February; only February is refreshed.
    load(warehouse, [incident("PI1", 1, "low"), incident("PI2", 2, "low"), incident("PI4", 2)])
    warehouse.run("run", "--select", "stg_pagerduty__incidents")
    warehouse.run("run", "--select", "fct_incidents", **FEBRUARY)
    assert urgencies(warehouse) == {
        "PI1": (date(2024, 1, 1), "high"), "PI2": (date(2024, 2, 1), "low"), "PI3": (date(2024, 3, 1), "high"),
        "PI4": (date(2024, 2, 1), "high"),
    }
    # A month whose rows are all gone from the source is emptied, not kept.
    warehouse.conn.execute("delete from raw.pagerduty__incidents where id in ('PI2', 'PI4')")
    warehouse.run("run", "--select", "stg_pagerduty__incidents")
    warehouse.run("run", "--select", "fct_incidents", **FEBRUARY)
    assert sorted(urgencies(warehouse)) == ["PI1", "PI3"]


def test_a_run_over_some_months_needs_the_months(three_months):
    with pytest.raises(DbtFailed, match="is partitioned by month: pass the months"):
        three_months.run("run", "--select", "fct_incidents")


@pytest.fixture
def project_copy(tmp_path):
    copy = tmp_path / "sql"
    shutil.copytree(SQL_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    return copy


def edited_warehouse(tmp_path, project_copy, old: str, new: str) -> Warehouse:
    """A warehouse with fct_incidents built for three months by the shipped SQL, and dbt on a
    copy of the project where ``old`` is replaced by ``new`` in the model."""
    warehouse = Warehouse(tmp_path / "warehouse.duckdb", InProcessDbt(tmp_path / "shipped", project_copy))
    load(warehouse, [incident("PI1", 1), incident("PI2", 2), incident("PI3", 3)])
    warehouse.build(*UPSTREAM, "fct_incidents")
    model = project_copy / "models" / "marts" / "fct_incidents.sql"
    assert old in model.read_text()
    model.write_text(model.read_text().replace(old, new))
    warehouse.dbt = InProcessDbt(tmp_path / "edited", project_copy)
    return warehouse


@pytest.mark.slow
def test_a_failed_run_leaves_the_months_as_they_were(tmp_path, project_copy):
    # The run fails after deleting and re-inserting February, before COMMIT.
    warehouse = edited_warehouse(tmp_path, project_copy, "    partition_column='period_month',\n",
                                 "    partition_column='period_month',\n    post_hook=\"select error('disk full')\",\n")
    before = urgencies(warehouse)
    load(warehouse, [incident("PI2", 2, "low")])
    warehouse.run("run", "--select", "stg_pagerduty__incidents")
    with pytest.raises(DbtFailed, match="disk full"):
        warehouse.run("run", "--select", "fct_incidents", **FEBRUARY)
    assert urgencies(warehouse) == before


@pytest.mark.slow
def test_changed_columns_ask_for_a_run_over_every_month_instead_of_mixing_them(tmp_path, project_copy):
    warehouse = edited_warehouse(tmp_path, project_copy, "        timeline_conflict\n",
                                 "        timeline_conflict,\n        1 as extra\n")
    with pytest.raises(DbtFailed, match="backfill of all partitions"):
        warehouse.run("run", "--select", "fct_incidents", **FEBRUARY)
    warehouse.run("run", "--full-refresh", "--select", "fct_incidents")
    assert warehouse.conn.execute("select count(*), sum(extra) from marts.fct_incidents").fetchone() == (3, 3)


def test_the_monthly_marts_are_partitioned_assets_with_a_single_run_backfill():
    for key in (dg.AssetKey(["marts", "fct_incidents"]), dg.AssetKey(["marts", "mart_team_month"])):
        assert monthly_marts.partitions_def == monthly_partitions
        assert monthly_marts.backfill_policy == dg.BackfillPolicy.single_run()
        assert key in monthly_marts.keys and key not in warehouse_models.keys


@pytest.mark.slow
def test_dagster_runs_one_month_or_every_month(warehouse):
    """Dagster: a single-month run rewrites that month; a run over every month rebuilds the table."""
    load(warehouse, [incident("PI1", 1), incident("PI2", 2)])
    warehouse.create_missing_sources()
    warehouse.conn.execute("create table restricted.survey__responses "
                           "(response_id varchar, survey_group varchar, submitted_at timestamp, item_set varchar, item_no integer, "
                           "answer integer, score integer, scale_points integer)")
    warehouse.survey_cells([])
    warehouse.close()
    resources = {"duckdb": WarehouseResource(database=str(warehouse.path))}
    assert dg.materialize([warehouse_models, survey_attribution, monthly_marts], resources=resources,
                          tags=every_month_tags()).success
    assert urgencies(warehouse) == {"PI1": (date(2024, 1, 1), "high"), "PI2": (date(2024, 2, 1), "high")}

    load(warehouse, [incident("PI1", 1, "low"), incident("PI2", 2, "low")])
    warehouse.close()
    assert dg.materialize([warehouse_models], resources=resources).success
    result = dg.materialize([monthly_marts], resources=resources, partition_key="2024-02-01",
                            selection=[dg.AssetKey(["marts", "fct_incidents"])])
    assert [e.partition for e in result.get_asset_materialization_events()] == ["2024-02-01"]
    assert urgencies(warehouse) == {"PI1": (date(2024, 1, 1), "high"), "PI2": (date(2024, 2, 1), "low")}


def test_the_vars_for_dbt_by_hand_replace_every_month_as_the_nightly_run_does(three_months, capsys):
    # README's dbt by hand: `dbt build --vars "$(python -m assets.warehouse.dbt vars)"` on a
    # warehouse the pipeline built, where the monthly marts exist and so need their months.
    assert dbt_main(["vars"]) == 0
    printed = json.loads(capsys.readouterr().out)
    keys = monthly_partitions.get_partition_keys()
    last_month = monthly_partitions.time_window_for_partition_key(keys[-1])
    assert (printed["partition_start"], printed["partition_end"]) == (keys[0], last_month.end.date().isoformat())
    warehouse = three_months
    load(warehouse, [incident("PI1", 1, "low"), incident("PI2", 2, "low")])
    warehouse.run("build", "--select", "stg_pagerduty__incidents", "fct_incidents", **printed)
    assert urgencies(warehouse) == {"PI1": (date(2024, 1, 1), "low"), "PI2": (date(2024, 2, 1), "low"),
                                    "PI3": (date(2024, 3, 1), "high")}


def test_a_mart_materialized_alone_on_a_new_warehouse_says_what_to_run_first(warehouse):
    """The UI's Materialize on one monthly mart before any nightly run: dbt's Catalog Error
    alone named a missing intermediate table, not what to do."""
    warehouse.close()
    result = dg.materialize([monthly_marts], resources={"duckdb": WarehouseResource(database=str(warehouse.path))},
                            partition_key="2024-03-01", selection=[dg.AssetKey(["marts", "mart_team_month"])],
                            raise_on_error=False)
    assert not result.success
    message = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "Not built yet in this warehouse: intermediate." in message
    assert "run the nightly job over every month" in message
