"""The DuckDB warehouse as a Dagster resource that fails fast on a file it cannot use.

dagster_duckdb's DuckDBResource retries every error opening the file for about 100 s, and the
assets' RetryPolicy then retries the step: right for a lock held by another process (a notebook,
a run outside the pool), which goes away, but a file that is not a DuckDB database, is cut
short, or sits on a full disk fails the same way every time, and such a run used to retry for
over 15 minutes. Here only a held lock is waited for (as long as DuckDBResource waits); every
other failure to open, read or write the file fails the step at once with ``dg.Failure(
allow_retries=False)``, naming the file and what to do.
"""

import errno
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

# DuckDB's message when another process holds the file.
LOCK_CONFLICT = "Could not set lock on file"
# Waits between attempts while the file is locked: 0.1 s doubling, about 100 s in all, as
# dagster_duckdb's DuckDBResource waits.
LOCK_WAITS_SECONDS = [0.1 * 2**attempt for attempt in range(10)]
# DuckDB's messages when a block it needs is missing or damaged.
DAMAGE_SIGNS = ("not a valid DuckDB database file", "Could not read enough bytes", "Corrupt database file",
                "checksum")
# The operating system's messages (DuckDB repeats them) for a file that cannot be written.
UNWRITABLE_SIGNS = tuple(os.strerror(code) for code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS,
                                                        errno.EACCES))
# A database file starts with a 4 KiB file header and two 4 KiB database headers.
HEADER_BYTES = 3 * 4096

REBUILD = ("restore it from a backup, or move it aside (e.g. `mv {path} {path}.damaged`) and run the "
           "nightly job again: it rebuilds the warehouse from the APIs (from history_start) and the "
           "landing folder")


def _damaged(path: str, detail: str) -> dg.Failure:
    return dg.Failure(
        description=f"The warehouse file {path} is damaged ({detail}). The run stops here; "
                    + REBUILD.format(path=path) + ".",
        metadata={"warehouse": path},
        allow_retries=False,
    )


def _unwritable(path: str, detail: str) -> dg.Failure:
    folder = Path(path).parent
    return dg.Failure(
        description=f"The warehouse file {path} cannot be written ({detail}). The statement that "
                    f"hit it was rolled back. Free space on the disk holding {folder} (`df -h {folder}`) or "
                    "fix its permissions, then run the job again.",
        metadata={"warehouse": path},
        allow_retries=False,
    )


def unusable_warehouse(path: str, error: BaseException) -> dg.Failure | None:
    """The failure to raise for DuckDB's ``error`` on the warehouse at ``path`` when retrying
    cannot help (a damaged or unwritable file), else None. The errors it was raised from or
    while handling count too: a rollback after a failed commit fails with "no transaction is
    active", the disk-full error being the one it was handling."""
    while error is not None:
        message = str(error)
        if any(sign in message for sign in UNWRITABLE_SIGNS):
            return _unwritable(path, message)
        if any(sign in message for sign in DAMAGE_SIGNS):
            return _damaged(path, message)
        error = error.__cause__ or error.__context__
    return None


def _missing_blocks(conn: duckdb.DuckDBPyConnection, path: str) -> str | None:
    """Why the file at ``path`` lacks blocks its catalog points to, if it does. DuckDB opens a
    file cut short as long as its catalog is whole, and fails only when a step reads a table
    whose rows were cut off; a healthy file may end before its last, free block."""
    [(block_size,)] = conn.execute(
        "select block_size from pragma_database_size() where database_name = current_database()"
    ).fetchall()
    tables = conn.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = current_database()"
    ).fetchall()
    highest = max(
        [conn.execute("select coalesce(max(block_id), -1) from pragma_metadata_info()").fetchone()[0]]
        + [conn.execute("select coalesce(max(block_id), -1) from pragma_storage_info(?) where persistent",
                        [f'"{schema}"."{table}"']).fetchone()[0] for schema, table in tables]
    )
    in_file = (os.path.getsize(path) - HEADER_BYTES) // block_size
    if highest >= in_file:
        return (f"it holds {in_file} blocks of {block_size:,} bytes and its tables use block {highest}: "
                "the file was cut short")
    return None


def open_warehouse(path: str, config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse at ``path`` for writing, waiting about 100 s for a lock another process
    holds. Raise ``dg.Failure(allow_retries=False)`` at once, naming the file and what to do, if
    its folder is missing, it is not a DuckDB database, or it cannot be written."""
    if path != ":memory:" and not Path(path).parent.is_dir():
        raise dg.Failure(
            description=f"The warehouse's folder {Path(path).parent} does not exist: create it, or set "
                        f"PSAFE_WAREHOUSE to a file in an existing folder (now {path}).",
            metadata={"warehouse": path},
            allow_retries=False,
        )
    for wait in [*LOCK_WAITS_SECONDS, None]:
        try:
            conn = duckdb.connect(path, read_only=False, config=config or {})
            break
        except duckdb.Error as error:
            failure = unusable_warehouse(path, error)
            if failure is not None:
                raise failure from error
            if LOCK_CONFLICT not in str(error):
                raise
            if wait is None:
                raise dg.Failure(
                    description=f"The warehouse file {path} stayed locked by another process for "
                                f"{sum(LOCK_WAITS_SECONDS):.0f} s ({error}). Close notebooks or "
                                "programs holding it; every Dagster step that opens it waits its "
                                "turn in the duckdb_warehouse pool.",
                    metadata={"warehouse": path},
                ) from error
            time.sleep(wait)
    return conn


def check_whole(conn: duckdb.DuckDBPyConnection, path: str) -> None:
    """Raise ``dg.Failure(allow_retries=False)`` if the warehouse at ``path``, open on ``conn``,
    lacks blocks its tables use (a file cut short), or cannot be read to find out."""
    if path == ":memory:":
        return
    try:
        missing = _missing_blocks(conn, path)
    except duckdb.Error as error:
        raise (unusable_warehouse(path, error) or error) from error
    if missing is not None:
        raise _damaged(path, missing)


class WarehouseResource(DuckDBResource):
    """The DuckDB warehouse file (``database``). A step waits about 100 s for a lock another
    process holds on it, as DuckDBResource does; a file that is not a whole DuckDB database, or
    that cannot be written (disk full, read-only), fails the step at once, without retries,
    with a message naming the file and what to do. The first connection of a run checks that
    the file holds every block its tables use."""

    _checked_whole: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._checked_whole = False

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        conn = open_warehouse(self.database, self.connection_config)
        try:
            if not self._checked_whole:
                check_whole(conn, self.database)
                self._checked_whole = True
            yield conn
        except duckdb.Error as error:
            failure = unusable_warehouse(self.database, error)
            if failure is None:
                raise
            raise failure from error
        finally:
            conn.close()

    def check(self) -> None:
        """Open the warehouse, check it whole and close it, failing as :meth:`get_connection`
        does. A step that hands the file to another program (dbt-duckdb opens it itself) calls
        this first, holding the warehouse pool's slot."""
        conn = open_warehouse(self.database, self.connection_config)
        try:
            check_whole(conn, self.database)
        finally:
            conn.close()
