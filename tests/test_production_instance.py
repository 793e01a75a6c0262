"""deploy/dagster.yaml against a real PostgreSQL server: a run of two landing assets through
that instance (multiprocess executor, warehouse pool) is stored in PostgreSQL, events and all;
and with dagster-daemon running, a nightly run whose worker is killed mid-step is marked failed
and gives the warehouse pool's slot back, so the queued next run starts within a minute.

`make test` installs Debian's postgresql when it is missing and we are root (as in CI); the
server is created here in a temporary folder, on a free loopback port, as the `postgres` user
when we are root (PostgreSQL refuses to run as root)."""

import contextlib
import glob
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import dagster as dg
import psutil
import psycopg2
import pytest
from cli_launcher import FORKSERVER, Launcher

from assets.warehouse.partitions import every_month_tags
from pipelines.definitions import defs
from pipelines.synthetic.org import OrgSpec, generate, write_landing

# Runs a real PostgreSQL server and Dagster daemon: the full tier only (`make test`, not `make test-fast`).
pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "psafe-test-password"
LANDING_ASSETS = ["raw/config__team_map", "staging/stg_config__team_map", "restricted/survey__responses"]


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server with a `dagster` database; yields its connection settings."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        if os.geteuid() == 0:
            pytest.fail("PostgreSQL is not installed: run `make test`, which installs Debian's postgresql")
        pytest.skip("PostgreSQL is not installed and installing it needs root")
    as_server_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="psafe-postgres-"))
    if os.geteuid() == 0:
        server_user = pwd.getpwnam("postgres")
        as_server_user = ["runuser", "-u", "postgres", "--"]
        os.chown(root, server_user.pw_uid, server_user.pw_gid)

    def run(*args) -> None:
        subprocess.run([*as_server_user, *map(str, args)], check=True, capture_output=True, text=True)

    port = free_port()
    try:
        run("sh", "-c", f"printf %s {PASSWORD} > {root}/password")
        run(bin_dir / "initdb", "-D", root / "data", "-U", "dagster", "--auth=scram-sha-256",
            f"--pwfile={root}/password")
        run(bin_dir / "pg_ctl", "-D", root / "data", "-l", root / "server.log", "-w", "start",
            "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1")
        settings = {"host": "127.0.0.1", "port": port, "user": "dagster", "password": PASSWORD}
        conn = psycopg2.connect(dbname="postgres", **settings)
        conn.autocommit = True  # CREATE DATABASE refuses to run in a transaction
        conn.cursor().execute("create database dagster")
        conn.close()
        yield {**settings, "dbname": "dagster"}
    finally:
        subprocess.run([*as_server_user, str(bin_dir / "pg_ctl"), "-D", str(root / "data"), "-m", "fast", "stop"],
                       capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_production_instance_stores_runs_and_events_in_postgres(postgres, tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    landing = tmp_path / "landing"
    write_landing(generate(OrgSpec(seed=5, n_teams=3, n_months=6)), landing)
    for path in landing.iterdir():  # finished copies: older than the landing resource's settle time
        os.utime(path, (path.stat().st_mtime - 3600, path.stat().st_mtime - 3600))
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": postgres["host"],
        "DAGSTER_PG_PORT": str(postgres["port"]),
        "DAGSTER_PG_USER": postgres["user"],
        "DAGSTER_PG_PASSWORD": postgres["password"],
        "DAGSTER_PG_DB": postgres["dbname"],
        "PSAFE_LANDING_DIR": str(landing),
        "PSAFE_HR_ID_SALT": "salt",
        "PSAFE_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "pipelines.definitions",
         "-a", "defs", "--select", ",".join(LANDING_ASSETS),
         "--config-json", json.dumps(FORKSERVER)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    with psycopg2.connect(**postgres) as conn, conn.cursor() as cursor:
        cursor.execute("select run_id, status from runs")
        [(run_id, status)] = cursor.fetchall()
        assert status == "SUCCESS"
        cursor.execute(
            "select asset_key from event_logs where run_id = %s and dagster_event_type = 'ASSET_MATERIALIZATION'",
            (run_id,),
        )
        stored_keys = sorted("/".join(json.loads(key)) for (key,) in cursor.fetchall())
        assert stored_keys == sorted(LANDING_ASSETS)
        cursor.execute("select step_key, dagster_event_type from event_logs where run_id = %s "
                       "and dagster_event_type in ('STEP_SUCCESS', 'STEP_FAILURE')", (run_id,))
        steps = cursor.fetchall()
        # The Python assets' steps and the dbt step that builds the team map's model all succeeded.
        assert {step for step, _ in steps} >= {"raw__config__team_map", "warehouse_models",
                                                "restricted__survey__responses"}
        assert {kind for _, kind in steps} == {"STEP_SUCCESS"}
        # Every check on the selected assets was evaluated and stored: the data-quality suites'
        # own steps and the dbt tests run inside the dbt step.
        selected = {dg.AssetKey(key.split("/")) for key in LANDING_ASSETS}
        checks = defs().resolve_asset_graph().get_check_keys_for_assets(selected)
        cursor.execute("select count(*) from event_logs where run_id = %s "
                       "and dagster_event_type = 'ASSET_CHECK_EVALUATION'", (run_id,))
        assert cursor.fetchone()[0] == len(checks)
        # The steps claimed the warehouse pool's slot in PostgreSQL's concurrency tables.
        cursor.execute("select concurrency_key, count(*) from concurrency_slots group by concurrency_key")
        assert cursor.fetchall() == [("duckdb_warehouse", 1)]


def stop_with_its_processes(daemon: subprocess.Popen) -> None:
    """Stop dagster-daemon, then whatever it started that outlived it (its code server waits
    for the runs it launched, which a failed test may leave running)."""
    started = psutil.Process(daemon.pid).children(recursive=True)
    daemon.send_signal(signal.SIGTERM)
    try:
        daemon.wait(timeout=30)
    except subprocess.TimeoutExpired:
        daemon.kill()
        daemon.wait()
    for process in started:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.kill()


def fresh_database(postgres: dict, name: str) -> dict:
    """Connection settings of a new, empty database ``name`` on the test server."""
    conn = psycopg2.connect(**postgres)
    conn.autocommit = True
    conn.cursor().execute(f"create database {name}")
    conn.close()
    return {**postgres, "dbname": name}


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The run worker's process id, from the executor's "Executing steps in process (pid: N)"."""
    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records:
        found = re.match(r"Executing steps in process \(pid: (\d+)\)", record.event_log_entry.message)
        if found:
            return int(found.group(1))
    return None


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def step_starts(instance: dg.DagsterInstance, run_id: str) -> list:
    return [record.event_log_entry
            for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_START).records]


def started_steps(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [entry.step_key for entry in step_starts(instance, run_id)]


def step_start_times(instance: dg.DagsterInstance, run_id: str) -> list[float]:
    return [entry.timestamp for entry in step_starts(instance, run_id)]


# The step to kill the first run's worker in: the dbt models' build, holding the warehouse's slot.
KILL_DURING = "warehouse_models"


@pytest.mark.serial
def test_a_killed_nightly_run_gives_its_slot_back_and_the_queued_next_run_starts_within_a_minute(
    postgres, sandbox_environment, tmp_path
):
    _, env = sandbox_environment
    database = fresh_database(postgres, "dagster_killed_run")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    for name, value in {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": database["host"],
        "DAGSTER_PG_PORT": str(database["port"]),
        "DAGSTER_PG_USER": database["user"],
        "DAGSTER_PG_PASSWORD": database["password"],
        "DAGSTER_PG_DB": database["dbname"],
        "PSAFE_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "PSAFE_REPORT_DIR": str(tmp_path / "report"),
    }.items():
        env.setenv(name, value)
    instance = dg.DagsterInstance.from_config(str(home))
    launcher = Launcher(dict(os.environ))
    daemon_log = tmp_path / "daemon.log"
    daemon = None
    first, second = str(uuid.uuid4()), str(uuid.uuid4())

    def launch(run_id: str) -> None:
        # As the schedule does: the run goes to the queue, and the daemon launches it.
        launcher.start(["job", "launch", "-w", "workspace.yaml", "-j", "nightly", "--run-id", run_id,
                        "--tags", json.dumps(every_month_tags())], tmp_path / f"launch_{run_id}.log")

    try:
        # The landing sensor would start a run of its own on the fresh landing folder.
        launcher.run(["sensor", "stop", "-w", "workspace.yaml", "landing_files_sensor"], tmp_path / "sensor_stop.log")
        with daemon_log.open("w") as output:
            daemon = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w",
                                       "workspace.yaml"], cwd=REPO, env=dict(os.environ), stdout=output,
                                      stderr=subprocess.STDOUT)
        # The next nightly run waits in the queue behind the first (the queue launches no run
        # whose first steps' pool is full), as when a run overruns into the next schedule tick.
        launch(first)
        launch(second)
        wait_for(lambda: KILL_DURING in started_steps(instance, first), 300, f"the first run reaches {KILL_DURING}")
        os.kill(wait_for(lambda: worker_pid(instance, first), 10, "the worker's pid is logged"), signal.SIGKILL)
        killed_at = time.time()

        failed = wait_for(lambda: instance.get_run_by_id(first).status == dg.DagsterRunStatus.FAILURE
                          and time.time() - killed_at, 60, "the killed run is marked failed")
        started_after = wait_for(lambda: [start - killed_at for start in step_start_times(instance, second)
                                          if start > killed_at][:1], 60, "the next run starts a step after the kill")[0]
        last = wait_for(lambda: (run := instance.get_run_by_id(second)).is_finished and run, 300, "the next run ends")
    finally:
        launcher.close()
        if daemon is not None:
            stop_with_its_processes(daemon)
    assert last.status == dg.DagsterRunStatus.SUCCESS
    # Which of the three ways gave the slot back (run monitoring logs nothing when it frees one).
    freed_by = [line for line in daemon_log.read_text().splitlines() if f"slot of run {first}" in line] or [
        "run monitoring"]
    info = instance.event_log_storage.get_concurrency_info("duckdb_warehouse")
    assert info.claimed_slots == [] and info.pending_steps == []
    print(f"killed during {KILL_DURING}: marked failed {failed:.1f} s and the queued next run started a step "
          f"{started_after:.1f} s after the kill; freed by: {freed_by}")
