"""The restricted file of respondent-level data: where it is, that it is created private, that
``restricted.<table>`` names its tables on the pipeline's connections and nowhere else, and
that a warehouse written before the split has its schema ``restricted`` moved there, leaving
no byte of it in the warehouse file (a killed migration finishes on the next connection), and that
a step killed while writing it leaves it whole for the next."""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from assets.warehouse.dbt import SQL_DIR, InProcessDbt
from assets.warehouse.resource import WarehouseResource
from assets.warehouse.restricted import REWRITE_MARKER, attach_statement, move_legacy_schema

# A text DuckDB stores as it is (the legacy tables are written uncompressed), so finding it in
# the file's bytes means the rows are still there.
ANSWER = "RESPONDENT-ANSWER-"


def restricted_of(warehouse: Path) -> Path:
    return warehouse.parent / "restricted" / f"{warehouse.stem}.restricted.duckdb"


def tables_alone(path: Path) -> set[str]:
    """The tables of the file at ``path`` as a separate process opening it alone sees them."""
    script = ("import duckdb, sys; print('\\n'.join(f'{s}.{t}' for s, t in duckdb.connect(sys.argv[1], read_only=True)"
              ".sql('select schema_name, table_name from duckdb_tables()').fetchall()))")
    output = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, check=True)
    return set(output.stdout.split())


@pytest.fixture
def umask_022():
    """The usual umask, under which files are created readable by everyone."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_restricted_tables_go_to_a_private_file_beside_the_warehouse(tmp_path, umask_022):
    warehouse = tmp_path / "warehouse.duckdb"
    resource = WarehouseResource(database=str(warehouse))
    with resource.get_connection() as conn:
        conn.execute("create table restricted.answers as select 'R1' as response_id, 5 as answer")
        conn.execute("create schema marts; create table marts.cells as select 'A' as team, 4.5 as mean")
        assert conn.sql("select * from restricted.answers").fetchall() == [("R1", 5)]
        # Rows a query spills to disk go to the restricted file's private folder too.
        assert conn.sql("select current_setting('temp_directory')").fetchone() == (f"{restricted_of(warehouse)}.tmp",)
    restricted = restricted_of(warehouse)
    assert resource.restricted_path == str(restricted)
    assert restricted.stat().st_mode & 0o777 == 0o600
    assert restricted.parent.stat().st_mode & 0o777 == 0o700
    assert tables_alone(restricted) == {"main.answers"}
    assert tables_alone(warehouse) == {"marts.cells"}
    assert os.listdir(restricted.parent) == [restricted.name], "no leftover of the private creation"


def test_dbt_attaches_the_restricted_file_and_spills_beside_it(tmp_path, umask_022, dbt):
    warehouse = tmp_path / "warehouse.duckdb"
    shown = dbt(warehouse, "show", "--inline",
                "select (select path from duckdb_databases() where database_name = 'restricted') as restricted, "
                "current_setting('temp_directory') as spill").result.results[0].agate_table.rows[0]
    restricted = restricted_of(warehouse)
    assert tuple(shown) == (str(restricted), f"{restricted}.tmp")
    # dbt-duckdb would have made it with the umask's mode: it was created private first.
    assert restricted.stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_a_dbt_model_runs_after_one_that_spilled(tmp_path, umask_022):
    """The project's profile on a two-model project whose first model spills to disk under a
    small memory limit: the second builds too. DuckDB refuses to set the spill folder again once
    it was used, so a profile that set it on every cursor (dbt-duckdb's `settings`) failed the
    next model: "Cannot switch temporary directory after the current one has been used" (seen
    in the benchmark at 100x). DuckDB removes its spill files when the sort is done."""
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    shutil.copyfile(SQL_DIR / "profiles.yml", project / "profiles.yml")
    (project / "dbt_project.yml").write_text(
        "name: spill\nversion: '1.0.0'\nconfig-version: 2\nprofile: psafe\n"
        "flags: {send_anonymous_usage_stats: false, version_check: false}\n"
        "on-run-start: \"set memory_limit = '40MB'; set preserve_insertion_order = false\"\n"
        "models: {spill: {+materialized: table}}\n")
    # Sorting 10M random numbers needs far more than 40 MB: the sort spills.
    (project / "models" / "sorted.sql").write_text("select random() as value from range(10000000) order by value")
    (project / "models" / "after.sql").write_text("select count(*) as n from {{ ref('sorted') }}")
    warehouse = tmp_path / "warehouse.duckdb"

    result = InProcessDbt(tmp_path / "target", project)(warehouse, "run")

    assert {r.node.name: r.status for r in result.result.results if r.node.resource_type == "model"} == {
        "sorted": "success", "after": "success"}
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        assert conn.sql("select n from main.after").fetchone() == (10_000_000,)


def test_the_variable_or_the_setting_names_the_restricted_file(tmp_path, monkeypatch):
    warehouse, elsewhere = tmp_path / "warehouse.duckdb", tmp_path / "private"
    elsewhere.mkdir(mode=0o700)
    monkeypatch.setenv("PSAFE_RESTRICTED_WAREHOUSE", str(elsewhere / "from-variable.duckdb"))
    assert WarehouseResource(database=str(warehouse)).restricted_path == str(elsewhere / "from-variable.duckdb")
    configured = WarehouseResource(database=str(warehouse), restricted_database=str(elsewhere / "set.duckdb"))
    with configured.get_connection() as conn:
        conn.execute("create table restricted.answers as select 1 as answer")
    assert tables_alone(elsewhere / "set.duckdb") == {"main.answers"}
    assert not (tmp_path / "restricted").exists()


def test_a_missing_folder_of_a_set_restricted_file_fails_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("PSAFE_RESTRICTED_WAREHOUSE", str(tmp_path / "no-such-folder" / "restricted.duckdb"))
    with pytest.raises(dg.Failure, match="PSAFE_RESTRICTED_WAREHOUSE") as failure:
        WarehouseResource(database=str(tmp_path / "warehouse.duckdb")).check()
    assert not failure.value.allow_retries
    assert f"restricted warehouse file's folder {tmp_path / 'no-such-folder'} does not exist" in failure.value.description


def test_a_warehouse_named_like_the_restricted_catalog_is_refused(tmp_path):
    with pytest.raises(dg.Failure, match="rename the warehouse file"):
        WarehouseResource(database=str(tmp_path / "restricted.duckdb")).check()


def test_without_restricted_the_connection_never_opens_the_restricted_file(tmp_path, monkeypatch):
    warehouse = tmp_path / "warehouse.duckdb"
    damaged = tmp_path / "damaged.duckdb"
    damaged.write_bytes(b"not a database")
    resource = WarehouseResource(database=str(warehouse), restricted_database=str(damaged))
    with resource.get_connection(restricted=False) as conn:
        assert [name for (name,) in conn.sql("select database_name from duckdb_databases() "
                                             "where not internal").fetchall()] == ["warehouse"]
        with pytest.raises(duckdb.CatalogException):
            conn.sql("select * from restricted.survey__responses")
    with pytest.raises(dg.Failure, match=f"The restricted warehouse file {damaged} is damaged"), \
            resource.get_connection():
        pass


def legacy_warehouse(path: Path) -> None:
    """A warehouse as written before the split: respondent rows in its schema ``restricted``,
    between tables written before and after them (so their blocks are not at the file's end),
    and what a migration must keep: a primary key, table and column comments, a view."""
    with duckdb.connect(str(path)) as conn:
        conn.execute("pragma force_compression = 'uncompressed'")
        conn.execute("create schema raw; create schema marts; create schema restricted")
        conn.execute("create table raw.records (id varchar primary key, payload json not null)")
        conn.execute("insert into raw.records select 'P' || range, '{}' from range(1000)")
        conn.execute("comment on table raw.records is 'built from model checksum abc'")
        conn.execute("checkpoint")
        conn.execute(f"create table restricted.survey__responses as select 'R' || range as response_id, "
                     f"'{ANSWER}' || range as answer from range(20000)")
        conn.execute("create table restricted.survey__responses_quarantine as select 'R-bad' as response_id, "
                     f"'{ANSWER}bad' as raw_row")
        conn.execute("checkpoint")
        conn.execute("create table marts.cells as select 'A' as team, range as wave from range(20000)")
        conn.execute("comment on column marts.cells.team is 'the team'")
        conn.execute("create view marts.published as select * from marts.cells where wave < 10")
    os.chmod(path, 0o640)


def test_a_warehouse_written_before_the_split_moves_its_restricted_schema_and_keeps_no_byte_of_it(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    legacy_warehouse(warehouse)
    assert ANSWER.encode() in warehouse.read_bytes()

    with WarehouseResource(database=str(warehouse)).get_connection() as conn:
        assert conn.sql("select count(*), count(distinct answer) from restricted.survey__responses").fetchone() == (
            20000, 20000)
        assert conn.sql("select raw_row from restricted.survey__responses_quarantine").fetchall() == [
            (f"{ANSWER}bad",)]

    assert tables_alone(warehouse) == {"raw.records", "marts.cells"}
    assert tables_alone(restricted_of(warehouse)) == {"main.survey__responses", "main.survey__responses_quarantine"}
    assert ANSWER.encode() not in warehouse.read_bytes(), "the dropped rows' blocks are gone from the file"
    assert warehouse.stat().st_mode & 0o777 == 0o640, "the file keeps its mode"
    assert not list(tmp_path.glob("*.rewrite*"))
    with duckdb.connect(str(warehouse)) as conn:
        assert conn.sql("select comment from duckdb_tables() where table_name = 'records'").fetchone() == (
            "built from model checksum abc",)
        assert conn.sql("select comment from duckdb_columns() where column_name = 'team'").fetchone() == ("the team",)
        assert conn.sql("select count(*) from marts.published").fetchone() == (10,)
        with pytest.raises(duckdb.ConstraintException):  # the primary key still holds
            conn.execute("insert into raw.records values ('P1', '{}')")


def test_a_migration_killed_before_the_rewrite_finishes_on_the_next_connection(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    legacy_warehouse(warehouse)
    restricted = restricted_of(warehouse)
    restricted.parent.mkdir(mode=0o700)
    # The restricted file already holds a newer quarantine (loaded after an earlier, killed move).
    with duckdb.connect(str(restricted)) as conn:
        conn.execute("create table survey__responses_quarantine as select 'R-new' as response_id, 'newer' as raw_row")
    # The move's two transactions commit, then the run dies before the rewrite.
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute(attach_statement(str(restricted), "restricted"))
        copied, superseded = move_legacy_schema(conn)
    assert (copied, superseded) == (["survey__responses"], ["survey__responses_quarantine"])
    assert tables_alone(warehouse) == {"raw.records", "marts.cells", f"main.{REWRITE_MARKER}"}
    assert ANSWER.encode() in warehouse.read_bytes(), "dropped, but its blocks are still in the file"

    with WarehouseResource(database=str(warehouse)).get_connection(restricted=False) as conn:
        assert conn.sql("select count(*) from marts.cells").fetchone() == (20000,)
    assert tables_alone(warehouse) == {"raw.records", "marts.cells"}
    assert ANSWER.encode() not in warehouse.read_bytes()
    with WarehouseResource(database=str(warehouse)).get_connection() as conn:
        assert conn.sql("select raw_row from restricted.survey__responses_quarantine").fetchall() == [("newer",)]
        assert conn.sql("select count(*) from restricted.survey__responses").fetchone() == (20000,)


# A step of the pipeline writing to the restricted file: one committed table left in the file's
# write-ahead log (no checkpoint yet), then a large insert in a transaction, killed part-way.
WRITER_KILLED_MID_WRITE = """
import sys
import time
from assets.warehouse.resource import WarehouseResource

resource = WarehouseResource(database=sys.argv[1], connection_config={"checkpoint_threshold": "1GB"})
with resource.get_connection() as conn:
    conn.execute("create table restricted.kept as select 'R' || range as response_id, range % 7 + 1 as answer "
                 "from range(1000)")
    conn.execute("begin transaction")
    conn.execute("create table restricted.cut as select 'R' || range as response_id from range(100000)")
    print("writing", flush=True)
    while True:
        conn.execute("insert into restricted.cut select 'R' || range from range(100000)")
"""


def test_a_step_killed_while_writing_the_restricted_file_leaves_it_whole(tmp_path):
    warehouse = tmp_path / "warehouse.duckdb"
    writer = subprocess.Popen([sys.executable, "-c", WRITER_KILLED_MID_WRITE, str(warehouse)],
                              cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline() == "writing\n"
        time.sleep(0.5)
    finally:
        writer.kill()
        writer.wait()
    restricted = restricted_of(warehouse)
    assert Path(f"{restricted}.wal").exists(), "killed with the committed table in the write-ahead log"

    # The next step's connection replays the log, checks the file whole and writes on.
    resource = WarehouseResource(database=str(warehouse))
    resource.check()
    with resource.get_connection() as conn:
        assert conn.sql("select count(*), max(answer) from restricted.kept").fetchone() == (1000, 7)
        with pytest.raises(duckdb.CatalogException):
            conn.sql("select * from restricted.cut")
        conn.execute("create table restricted.cut as select 1 as answer")
    assert tables_alone(restricted) == {"main.kept", "main.cut"}
    assert restricted.stat().st_mode & 0o777 == 0o600
