"""A warehouse file that is not a whole DuckDB database, or that cannot be written, fails the
step at once with a message naming the file and what to do, and RetryPolicy does not repeat it;
a lock held by another process is still waited for. The same holds for the restricted file of
respondent-level data, attached to the pipeline's connections.

Damage is made the ways it happens: an empty file (a copy that never started), a file cut short
in its header or in its last tables' blocks (a copy or disk that stopped part-way; DuckDB opens
the latter and fails only when a step reads those tables), and random bytes. A full disk is a
real one: a 1 MiB tmpfs mounted under the test's folder (root only, as in CI; skipped otherwise).
"""

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.warehouse.partitions import every_month_tags
from assets.warehouse.resource import WarehouseFile, WarehouseResource, unusable_warehouse
from pipelines.definitions import defs

# dagster_duckdb's DuckDBResource took ~103 s to give up on each of these; RetryPolicy then
# repeated the step for minutes.
FAILS_WITHIN_SECONDS = 5
ROWS = 200_000  # enough rows for a table to span several of DuckDB's 256 KiB blocks


def two_table_warehouse(path: Path) -> None:
    """A warehouse written in two sessions, so the second table's blocks end the file."""
    for table in ("first_table", "second_table"):
        with duckdb.connect(str(path)) as conn:
            conn.execute(f"create table {table} as select range as id, md5(range::varchar) as v from range({ROWS})")


def cut_short(path: Path) -> None:
    """Drop the file's last 256 KiB block: its catalog still opens, the second table does not read."""
    two_table_warehouse(path)
    with path.open("r+b") as file:
        file.truncate(path.stat().st_size - 256 * 1024)
    with duckdb.connect(str(path)) as conn:  # what DuckDB alone makes of it
        assert conn.sql("select count(*) from first_table").fetchone() == (ROWS,)
        with pytest.raises(duckdb.IOException, match="Could not read enough bytes"):
            conn.sql("select max(v) from second_table").fetchall()


def header_only(path: Path) -> None:
    two_table_warehouse(path)
    with path.open("r+b") as file:
        file.truncate(100)


DAMAGE = {
    "an empty file": lambda path: path.write_bytes(b""),
    "a file cut short in its header": header_only,
    "a file cut short in its last table": cut_short,
    "random bytes": lambda path: path.write_bytes(os.urandom(300_000)),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_warehouse_fails_at_once_naming_the_file_without_retries(tmp_path, damage):
    path = tmp_path / "warehouse.duckdb"
    DAMAGE[damage](path)
    before = path.read_bytes()

    started = time.monotonic()
    with pytest.raises(dg.Failure) as failure:
        with WarehouseResource(database=str(path)).get_connection():
            pass
    assert time.monotonic() - started < FAILS_WITHIN_SECONDS
    assert not failure.value.allow_retries
    assert f"The warehouse file {path} is damaged" in failure.value.description
    assert f"mv {path} {path}.damaged" in failure.value.description
    assert path.read_bytes() == before, "nothing is written to a damaged file"


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_restricted_file_fails_at_once_naming_it_without_retries(tmp_path, damage):
    warehouse, restricted = tmp_path / "warehouse.duckdb", tmp_path / "private" / "restricted.duckdb"
    two_table_warehouse(warehouse)
    restricted.parent.mkdir(mode=0o700)
    DAMAGE[damage](restricted)
    before = restricted.read_bytes()
    resource = WarehouseResource(database=str(warehouse), restricted_database=str(restricted))

    started = time.monotonic()
    with pytest.raises(dg.Failure) as failure:
        with resource.get_connection():
            pass
    assert time.monotonic() - started < FAILS_WITHIN_SECONDS
    assert not failure.value.allow_retries
    assert f"The restricted warehouse file {restricted} is damaged" in failure.value.description
    assert f"mv {restricted} {restricted}.damaged" in failure.value.description
    assert "the survey exports in the landing folder" in failure.value.description
    assert restricted.read_bytes() == before, "nothing is written to a damaged file"
    # A step that reads the warehouse alone (the report) is not held up by it.
    with resource.get_connection(restricted=False) as conn:
        assert conn.sql("select count(*) from first_table").fetchone() == (ROWS,)


def test_a_whole_warehouse_passes_the_check_even_when_its_last_blocks_are_free(tmp_path):
    # A healthy file may end before blocks DuckDB counts but has freed: dropping the table at
    # the end of the file leaves it shorter than its header's block count.
    path = tmp_path / "warehouse.duckdb"
    two_table_warehouse(path)
    with duckdb.connect(str(path)) as conn:
        conn.execute("drop table second_table")
    with duckdb.connect(str(path)) as conn:
        [(block_size, total_blocks)] = conn.execute("select block_size, total_blocks from pragma_database_size()").fetchall()
    assert path.stat().st_size < 3 * 4096 + total_blocks * block_size

    resource = WarehouseResource(database=str(path))
    resource.check()
    with resource.get_connection() as conn:
        assert conn.sql("select count(*) from first_table").fetchone() == (ROWS,)


def test_a_missing_folder_fails_at_once_naming_the_variable(tmp_path):
    path = tmp_path / "no-such-folder" / "warehouse.duckdb"
    with pytest.raises(dg.Failure, match="PSAFE_WAREHOUSE") as failure:
        WarehouseResource(database=str(path)).check()
    assert not failure.value.allow_retries
    assert str(path.parent) in failure.value.description


@pytest.mark.slow
@pytest.mark.parametrize("restricted", [False, True], ids=["the warehouse file", "the restricted file"])
def test_a_lock_held_by_another_process_is_waited_for(tmp_path, restricted):
    path = tmp_path / "warehouse.duckdb"
    two_table_warehouse(path)
    resource = WarehouseResource(database=str(path))
    with resource.get_connection() as conn:
        conn.execute("create table restricted.answers as select 5 as answer")
    held = resource.restricted_path if restricted else str(path)
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import duckdb, sys, time; c = duckdb.connect({held!r}); print('held', flush=True); "
                               "time.sleep(2)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        with resource.get_connection() as conn:
            waited = time.monotonic() - started
            assert conn.sql("select count(*) from first_table").fetchone() == (ROWS,)
            assert conn.sql("select answer from restricted.answers").fetchall() == [(5,)]
    finally:
        holder.kill()
        holder.wait()
    assert holder.returncode is not None and waited > 1, f"opened while another process held {held}"


@contextlib.contextmanager
def tiny_disk(folder: Path, size: str = "1m"):
    """A tmpfs of ``size`` mounted at ``folder``: a disk that fills up. Needs root."""
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a disk that fills up) needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("restricted", [False, True], ids=["the warehouse file", "the restricted file"])
def test_a_full_disk_fails_the_write_at_once_naming_the_file(tmp_path, restricted):
    with tiny_disk(tmp_path / "disk") as disk:
        if restricted:  # the warehouse elsewhere, the restricted file on the full disk
            path = disk / "restricted.duckdb"
            resource = WarehouseResource(database=str(tmp_path / "warehouse.duckdb"), restricted_database=str(path))
        else:
            path = disk / "warehouse.duckdb"
            resource = WarehouseResource(database=str(path))
        started = time.monotonic()
        with pytest.raises(dg.Failure) as failure, resource.get_connection() as conn:
            conn.execute(f"create table {'restricted.' if restricted else ''}big as "
                         f"select range as id, md5(range::varchar) as v from range({ROWS})")
        assert time.monotonic() - started < FAILS_WITHIN_SECONDS
        assert not failure.value.allow_retries
        kind = "restricted warehouse file" if restricted else "warehouse file"
        assert f"The {kind} {path} cannot be written" in failure.value.description
        assert os.strerror(28) in failure.value.description  # ENOSPC: No space left on device
        assert f"df -h {disk}" in failure.value.description
        assert "The statement that hit it was rolled back." in failure.value.description


def test_a_full_disk_after_a_durable_commit_says_the_write_was_kept(tmp_path):
    # DuckDB's words when the commit reached the file and only the checkpoint after it failed:
    # the step's rows and its sync state are in the file, not rolled back.
    path = tmp_path / "warehouse.duckdb"
    error = duckdb.Error(f'FATAL Error: Transaction COMMIT succeeded and is durable, but the autocheckpoint '
                         f'failed: Could not write file "{path}": No space left on device')
    failure = unusable_warehouse([WarehouseFile(str(path))], error)
    assert failure is not None and not failure.allow_retries
    assert "The write was kept (DuckDB committed it; only the checkpoint after it failed)" in failure.description
    assert "rolled back" not in failure.description


def failed_steps(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    return {event.step_key: event.event_specific_data.error.message
            for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_FAILURE}


@pytest.mark.slow
@pytest.mark.parametrize("fault", ["an empty file", "a full disk", "an empty restricted file"])
def test_the_nightly_run_on_a_damaged_or_full_warehouse_fails_within_a_minute_without_retries(
    sandbox_environment, tmp_path, fault
):
    _, env = sandbox_environment
    with contextlib.ExitStack() as stack:
        if fault == "a full disk":  # both files on it: a step fails on the one it writes
            warehouse = stack.enter_context(tiny_disk(tmp_path / "disk")) / "warehouse.duckdb"
            says = (f"The warehouse file {warehouse} cannot be written",
                    f"The restricted warehouse file {warehouse.parent}/restricted/warehouse.restricted.duckdb "
                    "cannot be written")
        elif fault == "an empty restricted file":
            warehouse = tmp_path / "warehouse.duckdb"
            restricted = tmp_path / "restricted" / "warehouse.restricted.duckdb"
            restricted.parent.mkdir(mode=0o700)
            restricted.write_bytes(b"")
            says = (f"The restricted warehouse file {restricted} is damaged",)
        else:
            warehouse = tmp_path / "warehouse.duckdb"
            warehouse.write_bytes(b"")
            says = (f"The warehouse file {warehouse} is damaged",)
        env.setenv("PSAFE_WAREHOUSE", str(warehouse))
        env.setenv("PSAFE_REPORT_DIR", str(tmp_path / "report"))
        started = time.monotonic()
        result = defs().resolve_job_def("nightly").execute_in_process(tags=every_month_tags(), raise_on_error=False)
        took = time.monotonic() - started

    assert not result.success
    assert took < 60, f"the run took {took:.0f} s to fail"
    failures = failed_steps(result)
    # The API syncs carry a RetryPolicy; none of the failed steps is repeated.
    assert {"raw__jira__issues", "raw__pagerduty__log_entries"} & set(failures)
    assert not [event for event in result.all_events if event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert all(any(message in error for message in says) for error in failures.values()), failures
    print(f"{fault}: the nightly run failed in {took:.1f} s, {len(failures)} steps naming the file")
