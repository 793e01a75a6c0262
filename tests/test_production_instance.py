"""deploy/dagster.yaml against a real PostgreSQL server: a run of two landing assets through
that instance (multiprocess executor, warehouse pool) is stored in PostgreSQL, events and all.

`make test` installs Debian's postgresql when it is missing and we are root (as in CI); the
server is created here in a temporary folder, on a free loopback port, as the `postgres` user
when we are root (PostgreSQL refuses to run as root)."""

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import dagster as dg
import psycopg2
import pytest

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
         "-a", "defs", "--select", ",".join(LANDING_ASSETS)],
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
        cursor.execute("select count(*) from event_logs where run_id = %s and dagster_event_type = 'STEP_SUCCESS'",
                       (run_id,))
        # One step per asset and one per asset check on it (the data-quality suites).
        selected = {dg.AssetKey(key.split("/")) for key in LANDING_ASSETS}
        checks = defs().resolve_asset_graph().get_check_keys_for_assets(selected)
        assert cursor.fetchone()[0] == len(LANDING_ASSETS) + len(checks)
        # The steps claimed the warehouse pool's slot in PostgreSQL's concurrency tables.
        cursor.execute("select concurrency_key, count(*) from concurrency_slots group by concurrency_key")
        assert cursor.fetchall() == [("duckdb_warehouse", 1)]
