"""A nightly run killed at any stage does not block the runs after it, and the tables end as an
uninterrupted run leaves them.

Nightly runs are started as the README starts them (`dagster job execute` on a real instance with
deploy/dev/dagster.yaml), each in its own process, and killed with SIGKILL while a step of each stage
holds the warehouse pool's one slot: an API sync, a landing load, a SQL model build, a GX check,
the model fit and the report. Each kill is followed at once by the next run, which must start
a step within a minute (before the fix it waited for ever: "Step blocked by limit for pool
duckdb_warehouse"); the last one runs to the end. Its tables then equal, row count and content
hash, those of one uninterrupted run.

Each run's process is forked from a launcher that has imported the CLI and the definitions once
(tests/cli_launcher.py), which spares the suite seven interpreter start-ups of 10-20 s; the kill,
the instance and the warehouse are as in production.
"""

import json
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import dagster as dg
import pytest
from cli_launcher import Launcher, alive

from assets.warehouse.partitions import every_month_tags
from assets.warehouse.pool import WAREHOUSE_POOL
from assets.warehouse.restricted import read_only_connection
from pipelines.definitions import defs

REPO = Path(__file__).resolve().parents[1]
DEV_INSTANCE = REPO / "deploy" / "dev" / "dagster.yaml"
NIGHTLY = ["job", "execute", "-m", "pipelines.definitions", "-a", "defs", "-j", "nightly",
           "--tags", json.dumps(every_month_tags())]
# One step of each stage of the nightly run, in the order the run reaches them.
KILL_DURING = {
    "an API sync": "raw__jira__issues",
    "a landing load": "restricted__survey__responses",
    "a SQL model build": "warehouse_models",  # dbt: staging, restricted.stg_survey__responses, ...
    "a GX check": "staging__stg_pagerduty__incidents_great_expectations",
    "the model fit": "models__kpi_safety_effects",
    "the report": "report__cio_report",
}
# A run killed mid-step must not hold up the next one longer than this (CLI start-up included).
NEXT_RUN_STARTS_WITHIN_SECONDS = 60
# Columns left out of the comparison. Three say when a row was written, not what it holds: the
# load stamp of every API record, when each sync's high-water mark was committed, and when each
# survey wave was frozen (its figures and members, written once by the night that froze it). The
# models read the marts without an order, so a refit on rows stored in another order differs in
# the 15th digit (floats are compared to 9 decimals), and a NegativeBinomial fit whose
# dispersion sits at its warning threshold can gain or lose that warning.
NOT_COMPARED = {"loaded_at", "_sync_state.updated_at", "frozen_at", "kpi_safety_effects.warnings"}


def table_contents(warehouse: Path) -> dict[str, tuple[int, int]]:
    """Every table's row count and an order-free hash of its rows (floats to 9 decimals), but
    for the NOT_COMPARED columns, in the warehouse and its restricted file (``restricted.<table>``)."""
    contents = {}
    with read_only_connection(str(warehouse)) as conn:
        tables = conn.sql("select database_name, schema_name, table_name from duckdb_tables() "
                          "where database_name in (current_database(), 'restricted')").fetchall()
        for database, schema, table in tables:
            columns = [
                f'round("{name}", 9)' if kind in ("DOUBLE", "FLOAT") else f'"{name}"'
                for name, kind in conn.execute(
                    "select column_name, data_type from duckdb_columns() "
                    "where database_name = ? and schema_name = ? and table_name = ?", [database, schema, table],
                ).fetchall()
                if name not in NOT_COMPARED and f"{table}.{name}" not in NOT_COMPARED
            ]
            name = f"restricted.{table}" if database == "restricted" else f"{schema}.{table}"
            contents[name] = conn.sql(
                f'select count(*), coalesce(sum(hash({", ".join(columns)})::hugeint), 0) '
                f'from "{database}"."{schema}"."{table}"'
            ).fetchone()
    return contents


def step_events(instance: dg.DagsterInstance, run_id: str, event_type: dg.DagsterEventType) -> list:
    return [record.event_log_entry for record in instance.get_records_for_run(run_id, of_type=event_type).records]


def started_steps(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.step_key for entry in step_events(instance, run_id, dg.DagsterEventType.STEP_START)]


def slot_holders(instance: dg.DagsterInstance) -> list[tuple[str, str]]:
    """(run id, step key) of each claimed slot of the warehouse pool."""
    info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
    return [(slot.run_id, slot.step_key) for slot in info.claimed_slots]


def new_run(instance: dg.DagsterInstance, known: set[str], pid: int, deadline: float) -> str:
    """The id of the run process ``pid`` started (not in ``known``), waiting for it to appear."""
    while time.monotonic() < deadline:
        runs = [run.run_id for run in instance.get_runs() if run.run_id not in known]
        if runs:
            return runs[0]
        assert alive(pid), "the run's process exited before it started a run"
        time.sleep(0.05)
    raise AssertionError("no run started")


def wait_for_step(instance: dg.DagsterInstance, run_id: str, pid: int, step: str | None, deadline: float) -> None:
    """Wait until ``run_id`` starts ``step`` (any step if None)."""
    while time.monotonic() < deadline:
        started = started_steps(instance, run_id)
        if (step in started) if step else started:
            return
        assert alive(pid), f"the run's process exited before step {step}: {instance.get_run_by_id(run_id).status}"
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} started no step {step or ''} in time; the pool holds {slot_holders(instance)}")


def wait_until_finished(instance: dg.DagsterInstance, run_id: str, timeout: float) -> dg.DagsterRun:
    deadline = time.monotonic() + timeout
    while not instance.get_run_by_id(run_id).is_finished and time.monotonic() < deadline:
        time.sleep(0.2)
    return instance.get_run_by_id(run_id)


@pytest.fixture
def instance_home(tmp_path):
    """A folder for DAGSTER_HOME, in memory where the machine has /dev/shm: every event a run
    logs is a committed SQLite transaction, and their fsyncs on a busy disk double a run's time."""
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else tmp_path) as home:
        yield Path(home)


@pytest.mark.slow
@pytest.mark.serial
def test_a_run_killed_at_any_stage_frees_the_warehouse_for_the_next_which_rebuilds_the_same_tables(
    sandbox_environment, tmp_path, instance_home
):
    _, env = sandbox_environment
    # One uninterrupted run, for the tables to compare with.
    uninterrupted = tmp_path / "uninterrupted.duckdb"
    env.setenv("PSAFE_WAREHOUSE", str(uninterrupted))
    env.setenv("PSAFE_REPORT_DIR", str(tmp_path / "uninterrupted_report"))
    result = defs().resolve_job_def("nightly").execute_in_process(tags=every_month_tags(), raise_on_error=False)
    assert result.success
    expected = table_contents(uninterrupted)

    warehouse = tmp_path / "warehouse.duckdb"
    env.setenv("PSAFE_WAREHOUSE", str(warehouse))
    env.setenv("PSAFE_REPORT_DIR", str(tmp_path / "report"))
    home = instance_home
    shutil.copy(DEV_INSTANCE, home / "dagster.yaml")
    instance = dg.DagsterInstance.from_config(str(home))
    launcher = Launcher({**os.environ, "DAGSTER_HOME": str(home)})

    killed: list[str] = []
    waits: list[float] = []
    try:
        for stage, step in [*KILL_DURING.items(), ("nothing", None)]:
            pid = launcher.start(NIGHTLY, tmp_path / f"run_{len(killed)}.log")
            started = time.monotonic()
            run_id = new_run(instance, set(killed), pid, started + NEXT_RUN_STARTS_WITHIN_SECONDS)
            # The run after a kill starts a step within a minute: the dead run's slot was freed.
            wait_for_step(instance, run_id, pid, None, started + NEXT_RUN_STARTS_WITHIN_SECONDS)
            if killed:
                waits.append(time.monotonic() - started)
                assert instance.get_run_by_id(killed[-1]).status == dg.DagsterRunStatus.FAILURE, stage
            if step is None:
                break
            wait_for_step(instance, run_id, pid, step, time.monotonic() + 300)
            os.kill(pid, signal.SIGKILL)
            # Killed during the step, holding the warehouse's slot: what used to block every later run.
            ended = {entry.step_key for kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE)
                     for entry in step_events(instance, run_id, kind)}
            assert step not in ended, f"{step} ended before the kill ({stage})"
            assert slot_holders(instance) == [(run_id, step)], stage
            assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
            killed.append(run_id)
        last = wait_until_finished(instance, run_id, timeout=300)
    finally:
        launcher.close()
    print("seconds from each kill to the next run's first step:", ", ".join(f"{wait:.1f}" for wait in waits))
    print(f"tables compared: {len(expected)}, of which in the restricted file: "
          f"{sum(name.startswith('restricted.') for name in expected)}")

    assert last.status == dg.DagsterRunStatus.SUCCESS
    assert len(killed) == len(KILL_DURING)
    assert slot_holders(instance) == []
    assert {"restricted.survey__responses", "restricted.stg_survey__responses"} <= set(expected)
    assert table_contents(warehouse) == expected
