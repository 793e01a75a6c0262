"""The restricted file: respondent-level survey data in a DuckDB file of its own.

DuckDB has no users, roles or GRANT: whoever can open a database file can read all of it, and
``ATTACH`` reaches any file the account can read. So the respondent-level tables (the survey
responses as loaded, their staging, the survey quarantine) live in a second file that only the
pipeline opens, and the warehouse file the analysts' notebooks and the report read holds none of
them. The pipeline's connections (the ``duckdb`` resource, dbt through sql/profiles.yml) attach
it under the catalog name ``restricted``, where DuckDB resolves ``restricted.<table>`` to its
schema ``main``: every query names those tables as before.

- Where: ``PSAFE_RESTRICTED_WAREHOUSE``, else ``restricted/<name>.restricted.duckdb`` in the
  warehouse file's folder (``default_restricted_path``), so a deployment that never set the
  variable keeps working.
- Private from the start: the default folder is made with mode 0700, and the file is created
  with mode 0600 in a private folder before it is linked into place, so it is never readable by
  others at its path, however the account's umask is set. DuckDB creates the file's write-ahead
  log (``<file>.wal``) itself, with the umask's mode: keep the file in a folder only the
  pipeline's account can enter (as the default one) and the log is covered too.
- A warehouse written before the split holds the schema ``restricted``. The first connection
  that finds it copies its tables into the restricted file (those the file does not hold yet),
  drops the schema and rewrites the warehouse file from its live objects (``COPY FROM
  DATABASE``): DuckDB leaves a dropped table's blocks in the file, bytes and all, until they are
  reused. A marker table, written in the transaction that drops the schema, makes a rewrite cut
  short by a killed run happen again on the next connection.
"""

import os
import shutil
import tempfile
from pathlib import Path

import duckdb

RESTRICTED_CATALOG = "restricted"
RESTRICTED_VARIABLE = "PSAFE_RESTRICTED_WAREHOUSE"
# Left in the warehouse file by the transaction that drops its schema `restricted`, removed by
# the rewrite that follows: while it is there, the file still holds the dropped rows' blocks.
REWRITE_MARKER = "_restricted_schema_dropped"


def default_restricted_path(warehouse: str) -> str:
    """The restricted file of the warehouse file ``warehouse`` when PSAFE_RESTRICTED_WAREHOUSE is
    not set: ``<folder>/restricted/<stem>.restricted<suffix>`` (an in-memory warehouse has an
    in-memory restricted database)."""
    if warehouse == ":memory:":
        return warehouse
    path = Path(warehouse)
    return str(path.parent / RESTRICTED_CATALOG / f"{path.stem}.{RESTRICTED_CATALOG}{path.suffix}")


def resolve_restricted_path(warehouse: str, configured: str | None = None) -> str:
    """The restricted file: ``configured``, else PSAFE_RESTRICTED_WAREHOUSE, else the default,
    with ``~`` expanded as DuckDB expands it (the folder checks and the private creation use
    Python's paths, which do not), as the ``duckdb`` resource expands the warehouse's."""
    return os.path.expanduser(configured or os.environ.get(RESTRICTED_VARIABLE) or default_restricted_path(warehouse))


def spill_folder(path: str) -> dict[str, str]:
    """The DuckDB setting that puts a connection's spilled intermediate rows (a query over the
    respondent-level tables larger than memory) beside the restricted file at ``path``, in its
    private folder, not beside the warehouse file where DuckDB puts them by default."""
    return {} if path == ":memory:" else {"temp_directory": f"{path}.tmp"}


def create_private(path: Path, make_folder: bool) -> None:
    """An empty DuckDB database at ``path`` with mode 0600 (and its folder, if ``make_folder``,
    with mode 0700). It is made in a private folder beside ``path`` and linked into place, so
    ``path`` never names a file others can read; a file another process linked first is kept."""
    if make_folder:
        path.parent.mkdir(mode=0o700, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".creating-", dir=path.parent))
    try:
        fresh = staging / path.name
        duckdb.connect(str(fresh)).close()
        os.chmod(fresh, 0o600)
        try:
            os.link(fresh, path)
        except FileExistsError:
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def loose_permissions(path: str) -> str | None:
    """What lets others read the restricted file at ``path`` (its mode or its folder's), if
    anything, with the command that fixes it."""
    if path == ":memory:":
        return None
    loose = [(name, mode, fix) for name, mode, fix in (
        (path, os.stat(path).st_mode, "600"), (str(Path(path).parent), os.stat(Path(path).parent).st_mode, "700"))
        if mode & 0o077]
    if not loose:
        return None
    return "; ".join(f"{name} has mode {mode & 0o777:o} (`chmod {fix} {name}`)" for name, mode, fix in loose)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def attach_statement(path: str, alias: str, *options: str) -> str:
    """``ATTACH`` of the file at ``path`` as ``alias`` (ATTACH takes no parameters)."""
    return f"attach '{path.replace(chr(39), chr(39) * 2)}' as {_quoted(alias)}" + (
        f" ({', '.join(options)})" if options else "")


def leave_rewrite_marker(conn: duckdb.DuckDBPyConnection) -> None:
    """Leave REWRITE_MARKER in the warehouse open on ``conn``, inside the caller's transaction that
    drops, deletes or changes rows analysts must not read: DuckDB keeps their bytes in the file
    until the block is reused, and the next connection rewrites the file from its live objects."""
    [(warehouse,)] = conn.execute("select current_database()").fetchall()
    conn.execute(f"create table if not exists {_quoted(warehouse)}.main.{REWRITE_MARKER} (dropped_at timestamptz)")
    conn.execute(f"insert into {_quoted(warehouse)}.main.{REWRITE_MARKER} values (now())")


def holds_legacy_schema(conn: duckdb.DuckDBPyConnection) -> bool:
    """Whether the warehouse open on ``conn`` has a schema ``restricted`` (written before the
    split) or a rewrite left to finish."""
    return bool(conn.execute(
        "select (select count(*) from duckdb_schemas() where database_name = current_database() and schema_name = ?)"
        " + (select count(*) from duckdb_tables() where database_name = current_database() and schema_name = 'main'"
        " and table_name = ?)", [RESTRICTED_CATALOG, REWRITE_MARKER]).fetchone()[0])


def move_legacy_schema(conn: duckdb.DuckDBPyConnection) -> tuple[list[str], list[str]]:
    """Move the schema ``restricted`` of the warehouse open on ``conn`` into the attached
    restricted file: copy the tables the file lacks, then drop the schema and leave the rewrite
    marker, each in its own transaction (DuckDB writes one database per transaction). The
    warehouse file is to be rewritten next (``rewrite_from_live_objects``). Return the tables
    copied and those dropped because the restricted file already held them."""
    [(warehouse,)] = conn.execute("select current_database()").fetchall()
    legacy = [name for (name,) in conn.execute(
        "select table_name from duckdb_tables() where database_name = ? and schema_name = ?",
        [warehouse, RESTRICTED_CATALOG]).fetchall()]
    if not legacy and not conn.execute("select count(*) from duckdb_schemas() where database_name = ? "
                                       "and schema_name = ?", [warehouse, RESTRICTED_CATALOG]).fetchone()[0]:
        return [], []  # only the rewrite is left to do
    held = {name for (name,) in conn.execute(
        "select table_name from duckdb_tables() where database_name = ? and schema_name = 'main'",
        [RESTRICTED_CATALOG]).fetchall()}
    copied = [name for name in legacy if name not in held]
    conn.execute("begin transaction")
    for name in copied:
        conn.execute(f"create table {RESTRICTED_CATALOG}.main.{_quoted(name)} as "
                     f"select * from {_quoted(warehouse)}.{RESTRICTED_CATALOG}.{_quoted(name)}")
    conn.execute("commit")
    conn.execute("begin transaction")
    conn.execute(f"drop schema {_quoted(warehouse)}.{RESTRICTED_CATALOG} cascade")
    leave_rewrite_marker(conn)
    conn.execute("commit")
    return copied, sorted(set(legacy) - set(copied))


def rewrite_from_live_objects(path: str) -> bool:
    """Rewrite the warehouse file at ``path`` (closed by every connection) from its live objects,
    so no block of a dropped table is left in it, and drop the rewrite marker. The new file
    replaces the old one in one rename, with its mode and (when this account may give it) its
    owner; return whether the owner was kept."""
    target = Path(path)
    fresh = target.with_name(target.name + ".rewrite")
    for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):  # from a rewrite cut short
        leftover.unlink(missing_ok=True)
    with duckdb.connect(":memory:") as conn:
        conn.execute(attach_statement(str(target), "previous", "read_only"))
        conn.execute(attach_statement(str(fresh), "rewritten"))
        conn.execute("copy from database previous to rewritten")
        conn.execute(f"drop table rewritten.main.{REWRITE_MARKER}")
    before = target.stat()
    os.chmod(fresh, before.st_mode & 0o7777)
    try:
        os.chown(fresh, before.st_uid, before.st_gid)
        kept_owner = True
    except PermissionError:
        kept_owner = False
    os.replace(fresh, target)
    return kept_owner


def read_only_connection(warehouse: str, restricted: str | None = None) -> duckdb.DuckDBPyConnection:
    """The warehouse at ``warehouse`` read-only with its restricted file (``restricted``, else
    found as the ``duckdb`` resource finds it) attached read-only as ``restricted``: what the
    pipeline's account reads, for benchmarks and tests. Analysts open the warehouse alone."""
    conn = duckdb.connect(warehouse, read_only=True)
    conn.execute(attach_statement(resolve_restricted_path(warehouse, restricted), RESTRICTED_CATALOG, "read_only"))
    return conn
