"""One process at a time in the DuckDB warehouse: two overlapping runs under the default
multiprocess executor, through a real Dagster instance, take turns step by step with the
warehouse pool limited to one slot as in deploy/dagster.yaml; without that limit their steps
hold the warehouse side by side. The whole nightly job and a backfill of the monthly marts,
started together as the CLI starts them, take turns the same way and both succeed."""

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from cli_launcher import FORKSERVER

from assets.warehouse.dbt import monthly_marts
from assets.warehouse.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG, every_month_tags
from assets.warehouse.pool import WAREHOUSE_POOL
from pipelines.definitions import defs

REPO = Path(__file__).resolve().parents[1]
PRODUCTION_INSTANCE = REPO / "deploy" / "dagster.yaml"
# Two roots of the graph, so the multiprocess executor starts them side by side, and each keeps
# the warehouse open for the seconds its API sync takes. (The whole graph, one process per step,
# takes minutes per run on a CI machine: too slow for the suite.)
API_ASSETS = ["raw/pagerduty__incidents", "raw/jira__issues"]


def assert_took_turns(intervals: list[tuple[float, float, str]]) -> None:
    """No two of the steps' (start, end, step) ``intervals`` overlap."""
    for (_, end, step), (start, _, next_step) in itertools.pairwise(sorted(intervals)):
        assert end <= start, f"{step} and {next_step} held the warehouse at the same time"


def test_every_asset_and_check_that_opens_the_warehouse_is_in_its_pool():
    definitions = defs()
    graph = definitions.resolve_asset_graph()
    nodes = [graph.assets_def_for_key(key) for key in graph.get_all_asset_keys()] + list(definitions.asset_checks)
    assert len(definitions.asset_checks) > 20
    dbt_models = [node for node in nodes if "dagster_dbt/select" in node.op.tags]
    # The dbt models (and their dbt tests, run in the same steps) open the warehouse through dbt,
    # on the file the duckdb resource names.
    assert {key.path[0] for node in dbt_models for key in node.keys} == {"staging", "restricted", "intermediate",
                                                                         "marts"}
    assert any(node.check_keys for node in dbt_models)
    # The Qualtrics export writes files into the landing folder and never opens the warehouse.
    outside_the_warehouse = {"landing__qualtrics__responses"}
    for node in nodes:
        if node.op.name in outside_the_warehouse:
            assert "duckdb" not in node.required_resource_keys
            continue
        assert "duckdb" in node.required_resource_keys, node.op.name
        assert node.op.pool == WAREHOUSE_POOL, node.op.name


def test_the_production_and_dev_instances_limit_every_pool_to_one_slot_per_step():
    for instance in (PRODUCTION_INSTANCE, REPO / "deploy" / "dev" / "dagster.yaml"):
        pools = yaml.safe_load(instance.read_text())["concurrency"]["pools"]
        assert pools == {"default_limit": 1, "granularity": "op"}, instance


def instance_at(home: Path, concurrency: dict | None) -> dg.DagsterInstance:
    """A real instance (SQLite storage in ``home``) with the given ``concurrency`` settings."""
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump({"concurrency": concurrency} if concurrency else {}))
    return dg.DagsterInstance.from_config(str(home))


def start_dagster(home: Path, *commands: list[str]) -> list[subprocess.Popen]:
    """Start each of ``commands`` (arguments of the `dagster` CLI) in its own process, on the
    instance in ``home``."""
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return [
        subprocess.Popen([str(Path(sys.executable).parent / "dagster"), *command], cwd=REPO, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for command in commands
    ]


def wait_for(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.wait(timeout=300)


def overlapping_runs(instance: dg.DagsterInstance, home: Path, count: int = 2) -> list[dg.DagsterRun]:
    """Start ``count`` runs of the API assets at once with `dagster asset materialize`, each in
    its own process and with the definitions' default multiprocess executor, on the instance
    in ``home``."""
    command = ["asset", "materialize", "-m", "pipelines.definitions", "-a", "defs",
               "--select", ",".join(API_ASSETS), "--config-json", json.dumps(FORKSERVER)]
    wait_for(start_dagster(home, *[command] * count))
    return list(instance.get_runs())


def step_failures(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[str]:
    return [
        str(record.dagster_event.event_specific_data.error)
        for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    ]


def step_intervals(instance: dg.DagsterInstance, run: dg.DagsterRun) -> list[tuple[float, float, str]]:
    started: dict[str, float] = {}
    intervals = []
    for record in instance.all_logs(run.run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            started[event.step_key] = record.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            intervals.append((started[event.step_key], record.timestamp, f"{run.run_id[:8]} {event.step_key}"))
    return intervals


@pytest.mark.slow
def test_overlapping_multiprocess_runs_take_turns_in_the_warehouse(sandbox_environment, tmp_path):
    org, env = sandbox_environment
    warehouse = tmp_path / "warehouse.duckdb"
    env.setenv("PSAFE_WAREHOUSE", str(warehouse))
    production = yaml.safe_load(PRODUCTION_INSTANCE.read_text())["concurrency"]
    home = tmp_path / "dagster_home"
    instance = instance_at(home, {"pools": production["pools"]})

    runs = overlapping_runs(instance, home)

    assert [run.status for run in runs] == [dg.DagsterRunStatus.SUCCESS] * 2, [
        step_failures(instance, run) for run in runs
    ]
    intervals = [interval for run in runs for interval in step_intervals(instance, run)]
    # Each run: a step per asset and one per data-quality check on it, every one in the pool.
    checks = defs().resolve_asset_graph().get_check_keys_for_assets({dg.AssetKey(k.split("/")) for k in API_ASSETS})
    assert len(intervals) == 2 * (len(API_ASSETS) + len(checks))
    assert_took_turns(intervals)
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.sql("select count(*) from raw.pagerduty__incidents").fetchone()[0] == len(org.incidents)
        assert conn.sql("select count(*) from raw.jira__issues").fetchone()[0] == len(org.tickets)


@pytest.mark.slow
def test_without_the_pool_limit_steps_open_the_warehouse_side_by_side(sandbox_environment, tmp_path):
    # DuckDBResource retries a locked database for about 100 s before "Could not set lock"
    # fails the step, so the failure needs a writer holding the file longer than that (a long
    # sync, a notebook left open): too slow to stage here. What the pool prevents is visible
    # all the same: without a limit, the steps hold the warehouse at the same time.
    _, env = sandbox_environment
    env.setenv("PSAFE_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    home = tmp_path / "dagster_home"
    instance = instance_at(home, None)

    [run] = overlapping_runs(instance, home, count=1)

    asset_steps = {key.replace("/", "__") for key in API_ASSETS}
    (_, first_end, _), (second_start, _, _) = sorted(
        interval for interval in step_intervals(instance, run) if interval[2].split(" ")[1] in asset_steps
    )
    assert second_start < first_end, "without a pool limit both asset steps run at once"


# The whole graph as the nightly schedule runs it: every month, the in-process executor.
NIGHTLY = ["job", "execute", "-m", "pipelines.definitions", "-a", "defs", "-j", "nightly",
           "--tags", json.dumps(every_month_tags())]
BACKFILL_MARTS = ["marts/fct_incidents", "marts/mart_team_month"]
BACKFILL_MONTHS = ("2024-03-01", "2024-05-01")
# A backfill of two monthly marts over three months: one run (the marts' single-run policy). In
# process like the nightly run: the tests above show the multiprocess executor taking turns, and
# its process per step holds the slot through seconds of start-up, which would make this test
# take minutes.
BACKFILL = ["asset", "materialize", "-m", "pipelines.definitions", "-a", "defs",
            "--select", ",".join(BACKFILL_MARTS), "--partition-range", "...".join(BACKFILL_MONTHS),
            "--config-json", json.dumps({"execution": {"config": {"in_process": {}}}})]


def blocked_by_the_pool(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """Whether a step of ``run`` has waited for the warehouse pool (the event the executor logs)."""
    return any(
        record.dagster_event.message.startswith(f"Step blocked by limit for pool {WAREHOUSE_POOL}")
        for record in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    )


def mart_row_counts(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        return {mart: conn.sql(f"select count(*) from {mart.replace('/', '.')}").fetchone()[0]
                for mart in BACKFILL_MARTS}


@pytest.mark.slow
def test_the_whole_nightly_job_and_a_backfill_started_together_take_turns(sandbox_environment, tmp_path):
    _, env = sandbox_environment
    warehouse = tmp_path / "warehouse.duckdb"
    env.setenv("PSAFE_WAREHOUSE", str(warehouse))
    env.setenv("PSAFE_REPORT_DIR", str(tmp_path / "report"))
    production = yaml.safe_load(PRODUCTION_INSTANCE.read_text())["concurrency"]
    home = tmp_path / "dagster_home"
    instance = instance_at(home, {"pools": production["pools"]})
    # A first nightly run alone builds the staging tables the backfill reads: started on an
    # empty warehouse, the backfill would fail or not depending on which run got the pool first.
    wait_for(start_dagster(home, NIGHTLY))
    [first] = instance.get_runs()
    assert first.status == dg.DagsterRunStatus.SUCCESS, step_failures(instance, first)
    rows = mart_row_counts(warehouse)

    # The pool's one slot is held (as by a third run's step) until both runs wait for it, so
    # both are provably running when it frees up and contend for every step from then on;
    # otherwise one CLI's start-up could let the other finish first and nothing be shown.
    holder = ("held-by-the-test", "holder")
    instance.event_log_storage.initialize_concurrency_limit_to_default(WAREHOUSE_POOL)
    assert instance.event_log_storage.claim_concurrency_slot(WAREHOUSE_POOL, *holder).is_claimed
    processes = start_dagster(home, NIGHTLY, BACKFILL)
    try:
        waiting, deadline = False, time.monotonic() + 120
        while not waiting and time.monotonic() < deadline and all(process.poll() is None for process in processes):
            time.sleep(0.2)
            runs = [run for run in instance.get_runs() if run.run_id != first.run_id]
            waiting = len(runs) == 2 and all(blocked_by_the_pool(instance, run) for run in runs)
    finally:
        instance.event_log_storage.free_concurrency_slot_for_step(*holder)
    try:
        wait_for(processes)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert waiting, "both runs wait for the warehouse pool while its slot is held"

    runs = [run for run in instance.get_runs() if run.run_id != first.run_id]
    [nightly] = [run for run in runs if run.job_name == "nightly"]
    [backfill] = [run for run in runs if run.job_name != "nightly"]
    assert (backfill.tags[PARTITION_RANGE_START_TAG], backfill.tags[PARTITION_RANGE_END_TAG]) == BACKFILL_MONTHS
    for run in (nightly, backfill):
        assert (run.status, step_failures(instance, run)) == (dg.DagsterRunStatus.SUCCESS, [])
    # Every step of the graph ran in the nightly run; in the backfill, the monthly marts' dbt step
    # (their dbt tests run inside it) and one step for each other check on them.
    nightly_steps, backfill_steps = step_intervals(instance, nightly), step_intervals(instance, backfill)
    assert len(nightly_steps) == len(defs().resolve_job_def("nightly").nodes)
    marts = {dg.AssetKey(mart.split("/")) for mart in BACKFILL_MARTS}
    other_checks = defs().resolve_asset_graph().get_check_keys_for_assets(marts) - set(monthly_marts.check_keys)
    assert len(backfill_steps) == 1 + len(other_checks)
    assert_took_turns(nightly_steps + backfill_steps)
    # The backfill's months re-inserted between the nightly run's rebuilds: nothing lost or doubled.
    assert mart_row_counts(warehouse) == rows
    assert all(rows.values())
