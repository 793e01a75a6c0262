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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr, field_validator

from assets.warehouse.restricted import (
    RESTRICTED_CATALOG,
    RESTRICTED_VARIABLE,
    attach_statement,
    create_private,
    default_restricted_path,
    holds_legacy_schema,
    loose_permissions,
    move_legacy_schema,
    resolve_restricted_path,
    rewrite_from_live_objects,
    spill_folder,
)

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
# Every time the warehouse reads or computes is in UTC. DuckDB's session zone defaults to the
# host's, and it decides what a time written without an offset means (an alert's
# `payload.timestamp`, an "impact started" value): the same payload must give the same TTD on
# any worker. Set after opening: DuckDB refuses it as a connect option (ICU loads later).
WAREHOUSE_TIME_ZONE = "UTC"


@dataclass(frozen=True)
class WarehouseFile:
    """One of the pipeline's two DuckDB files: the warehouse (``PSAFE_WAREHOUSE``) or the
    restricted file of respondent-level data (``PSAFE_RESTRICTED_WAREHOUSE``), as messages name it."""

    path: str
    restricted: bool = False

    @property
    def kind(self) -> str:
        return "restricted warehouse file" if self.restricted else "warehouse file"

    @property
    def name(self) -> str:
        return f"The {self.kind} {self.path}"

    @property
    def variable(self) -> str:
        return RESTRICTED_VARIABLE if self.restricted else "PSAFE_WAREHOUSE"

    @property
    def rebuild(self) -> str:
        source = ("the survey exports in the landing folder" if self.restricted
                  else "the APIs (from history_start) and the landing folder")
        return (f"restore it from a backup, or move it aside (e.g. `mv {self.path} {self.path}.damaged`) and run "
                f"the nightly job again: it rebuilds the file from {source}")

    def mentioned_in(self, message: str) -> bool:
        return self.path != ":memory:" and os.path.abspath(self.path) in message


def _damaged(file: WarehouseFile, detail: str) -> dg.Failure:
    return dg.Failure(
        description=f"{file.name} is damaged ({detail}). The run stops here; {file.rebuild}.",
        metadata={"warehouse": file.path},
        allow_retries=False,
    )


# DuckDB's words when a commit was written and only the checkpoint after it failed.
COMMITTED_SIGN = "COMMIT succeeded and is durable"


def _unwritable(file: WarehouseFile, detail: str) -> dg.Failure:
    folder = Path(file.path).parent
    kept = ("The write was kept (DuckDB committed it; only the checkpoint after it failed), so "
            "the step's data and sync state are in the file up to that statement."
            if COMMITTED_SIGN in detail else "The statement that hit it was rolled back.")
    return dg.Failure(
        description=f"{file.name} cannot be written ({detail}). {kept} Free space on the disk holding "
                    f"{folder} (`df -h {folder}`) or fix its permissions, then run the job again.",
        metadata={"warehouse": file.path},
        allow_retries=False,
    )


def unusable_warehouse(files: Sequence[WarehouseFile], error: BaseException) -> dg.Failure | None:
    """The failure to raise for DuckDB's ``error`` on the open ``files`` when retrying cannot
    help (a damaged or unwritable file), naming the file the error names (else the first). The
    errors it was raised from or while handling count too: a rollback after a failed commit
    fails with "no transaction is active", the disk-full error being the one it was handling."""
    while error is not None:
        message = str(error)
        # The longest path DuckDB names: the restricted file's may extend the warehouse's.
        file = max((f for f in files if f.mentioned_in(message)), key=lambda f: len(f.path), default=files[0])
        if any(sign in message for sign in UNWRITABLE_SIGNS):
            return _unwritable(file, message)
        if any(sign in message for sign in DAMAGE_SIGNS):
            return _damaged(file, message)
        error = error.__cause__ or error.__context__
    return None


def _missing_blocks(conn: duckdb.DuckDBPyConnection, file: WarehouseFile, database: str) -> str | None:
    """Why ``file``, open on ``conn`` as ``database``, lacks blocks its catalog points to, if it
    does. DuckDB opens a file cut short as long as its catalog is whole, and fails only when a
    step reads a table whose rows were cut off; a healthy file may end before its last, free block."""
    [(block_size,)] = conn.execute(
        "select block_size from pragma_database_size() where database_name = ?", [database]).fetchall()
    tables = conn.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = ?", [database]).fetchall()
    highest = max(
        [conn.execute("select coalesce(max(block_id), -1) from pragma_metadata_info(?)", [database]).fetchone()[0]]
        + [conn.execute("select coalesce(max(block_id), -1) from pragma_storage_info(?) where persistent",
                        [f'"{database}"."{schema}"."{table}"']).fetchone()[0] for schema, table in tables]
    )
    in_file = (os.path.getsize(file.path) - HEADER_BYTES) // block_size
    if highest >= in_file:
        return (f"it holds {in_file} blocks of {block_size:,} bytes and its tables use block {highest}: "
                "the file was cut short")
    return None


Opened = TypeVar("Opened")


def waiting_for_locks(file: WarehouseFile, opening: Callable[[], Opened]) -> Opened:
    """``opening()`` (a connection to ``file``, or a dbt command, which opens one), again while
    another process holds ``file`` (about 100 s); a damaged or unwritable file fails at once."""
    for wait in [*LOCK_WAITS_SECONDS, None]:
        try:
            return opening()
        except duckdb.Error as error:
            failure = unusable_warehouse([file], error)
            if failure is not None:
                raise failure from error
            if LOCK_CONFLICT not in str(error):
                raise
            if wait is None:
                raise dg.Failure(
                    description=f"{file.name} stayed locked by another process for "
                                f"{sum(LOCK_WAITS_SECONDS):.0f} s ({error}). Close notebooks or "
                                "programs holding it; every Dagster step that opens it waits its "
                                "turn in the duckdb_warehouse pool.",
                    metadata={"warehouse": file.path},
                ) from error
            time.sleep(wait)
    raise AssertionError("unreachable")


def _folder_missing(file: WarehouseFile) -> dg.Failure:
    folder = Path(file.path).parent
    return dg.Failure(
        description=f"The {file.kind}'s folder {folder} does not exist: create it"
                    + (" (mode 700, owned by the pipeline's account)" if file.restricted else "")
                    + f", or set {file.variable} to a file in an existing folder (now {file.path}).",
        metadata={"warehouse": file.path},
        allow_retries=False,
    )


def open_warehouse(path: str, config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse at ``path`` for writing, waiting about 100 s for a lock another process
    holds. Raise ``dg.Failure(allow_retries=False)`` at once, naming the file and what to do, if
    its folder is missing, it is not a DuckDB database, or it cannot be written."""
    file = WarehouseFile(path)
    if path != ":memory:" and not Path(path).parent.is_dir():
        raise _folder_missing(file)
    conn = waiting_for_locks(file, lambda: duckdb.connect(path, read_only=False, config=config or {}))
    conn.execute(f"set TimeZone = '{WAREHOUSE_TIME_ZONE}'")
    return conn


def ensure_restricted_file(warehouse: str, path: str) -> None:
    """Create the restricted file at ``path`` private (mode 0600; its default folder 0700) when
    it does not exist. Fail at once if it is the warehouse file ``warehouse`` or would share its
    catalog name, or if an explicitly set file's folder is missing."""
    if path == ":memory:":
        return
    file = WarehouseFile(path, restricted=True)
    if Path(path).resolve() == Path(warehouse).resolve() or Path(warehouse).stem == RESTRICTED_CATALOG:
        raise dg.Failure(
            description=f"{file.name} cannot be the warehouse file {warehouse}, nor can the warehouse file be "
                        f"named {RESTRICTED_CATALOG}.*, the catalog the restricted file is attached as: set "
                        f"{RESTRICTED_VARIABLE} to another file, or rename the warehouse file.",
            allow_retries=False)
    if not os.path.exists(path):
        default = path == default_restricted_path(warehouse)
        if not default and not Path(path).parent.is_dir():
            raise _folder_missing(file)
        create_private(Path(path), make_folder=default)
        dg.get_dagster_logger().info(f"Created the {file.kind} {path} (mode 600) for respondent-level survey data")


def attach_restricted(conn: duckdb.DuckDBPyConnection, warehouse: str, path: str) -> None:
    """Attach the restricted file at ``path`` to ``conn`` (the warehouse ``warehouse``) as the
    catalog ``restricted``, creating it private when it does not exist, waiting for a lock like
    the warehouse, failing at once on a damaged file."""
    ensure_restricted_file(warehouse, path)
    waiting_for_locks(WarehouseFile(path, restricted=True),
                      lambda: conn.execute(attach_statement(path, RESTRICTED_CATALOG)))


def check_whole(conn: duckdb.DuckDBPyConnection, file: WarehouseFile, database: str) -> None:
    """Raise ``dg.Failure(allow_retries=False)`` if ``file``, open on ``conn`` as the catalog
    ``database``, lacks blocks its tables use (a file cut short), or cannot be read to find out."""
    if file.path == ":memory:":
        return
    try:
        missing = _missing_blocks(conn, file, database)
    except duckdb.Error as error:
        raise (unusable_warehouse([file], error) or error) from error
    if missing is not None:
        raise _damaged(file, missing)


class WarehouseResource(DuckDBResource):
    """The DuckDB warehouse file (``database``) and, attached to every connection as the catalog
    ``restricted``, the restricted file of respondent-level survey data (``restricted_database``,
    else PSAFE_RESTRICTED_WAREHOUSE, else ``restricted/<name>.restricted.duckdb`` beside the
    warehouse; created with mode 0600). ``get_connection(restricted=False)`` leaves it out (the
    report reads the warehouse alone). A step waits about 100 s for a lock another process holds
    on either file, as DuckDBResource does; a file that is not a whole DuckDB database, or that
    cannot be written (disk full, read-only), fails the step at once, without retries, with a
    message naming the file and what to do. The first connection of a run checks that each file
    holds every block its tables use; a warehouse written before the split has its schema
    ``restricted`` moved into the restricted file. Rows a query spills to disk go beside the
    restricted file (``<file>.tmp``), in its private folder."""

    restricted_database: str | None = None

    _checked_whole: set[str] = PrivateAttr(default_factory=set)

    @field_validator("database")
    @classmethod
    def _home_expanded(cls, database: str) -> str:
        """``~`` expanded, here where the resource reads the path, so every use of ``database``
        (the folder check, the restricted file beside it, dbt) means the file DuckDB opens:
        DuckDB expands ``~`` itself, Python's paths do not, and a systemd EnvironmentFile or a
        docker --env-file passes ``PSAFE_WAREHOUSE=~/...`` unexpanded."""
        return os.path.expanduser(database)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._checked_whole = set()

    @property
    def restricted_path(self) -> str:
        """The restricted file this resource attaches."""
        return resolve_restricted_path(self.database, self.restricted_database)

    def _files(self, restricted: bool) -> list[WarehouseFile]:
        return [WarehouseFile(self.database), *([WarehouseFile(self.restricted_path, True)] if restricted else [])]

    def _check_once(self, conn: duckdb.DuckDBPyConnection, file: WarehouseFile, database: str) -> None:
        if file.path in self._checked_whole:
            return
        check_whole(conn, file, database)
        if file.restricted and (loose := loose_permissions(file.path)):
            dg.get_dagster_logger().warning(f"{file.name} can be read by others than the pipeline's account: "
                                            f"{loose}")
        self._checked_whole.add(file.path)

    def _open(self, restricted: bool) -> duckdb.DuckDBPyConnection:
        """A connection to the warehouse, with the restricted file attached if ``restricted``
        (or if the warehouse's schema ``restricted`` is still to be moved there), both checked."""
        warehouse, restricted_file = self._files(restricted=True)
        conn = open_warehouse(self.database, {**spill_folder(restricted_file.path), **(self.connection_config or {})})
        try:
            self._check_once(conn, warehouse, conn.execute("select current_database()").fetchone()[0])
            legacy = holds_legacy_schema(conn)
            if not (restricted or legacy):
                return conn
            attach_restricted(conn, self.database, restricted_file.path)
            self._check_once(conn, restricted_file, RESTRICTED_CATALOG)
            if legacy:
                self._move_legacy_schema(conn)
                return self._open(restricted)
            return conn
        except BaseException as error:
            conn.close()
            failure = unusable_warehouse(self._files(restricted=True), error) if isinstance(
                error, duckdb.Error) else None
            if failure is None:
                raise
            raise failure from error

    def _move_legacy_schema(self, conn: duckdb.DuckDBPyConnection) -> None:
        """Move the warehouse's schema ``restricted`` into the restricted file, then rewrite the
        warehouse file without the dropped tables' blocks; ``conn`` is closed."""
        logger = dg.get_dagster_logger()
        copied, superseded = move_legacy_schema(conn)
        conn.close()
        if copied or superseded:
            logger.warning(
                f"Moved the warehouse's schema restricted into the restricted file {self.restricted_path}: copied "
                f"{copied or 'no table'}" + (f", dropped {superseded} (the restricted file holds them already)"
                                             if superseded else "")
                + ". Copies of the warehouse file made before now (backups) hold respondent-level rows: keep them "
                  "as private as the restricted file, or delete them.")
        logger.info(f"Rewriting the warehouse file {self.database} from its live tables, so no block of the "
                    "dropped respondent-level tables is left in it")
        if not rewrite_from_live_objects(self.database):
            logger.warning(f"The warehouse file {self.database} was rewritten owned by this account, not its "
                           "previous owner: give analysts read access again if they had it through its owner")

    @contextmanager
    def get_connection(self, restricted: bool = True) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection to the warehouse with the restricted file attached as ``restricted``;
        ``restricted=False``: the warehouse alone."""
        conn = self._open(restricted)
        try:
            yield conn
        except duckdb.Error as error:
            failure = unusable_warehouse(self._files(restricted), error)
            if failure is None:
                raise
            raise failure from error
        finally:
            conn.close()

    def check(self) -> None:
        """Open both files, check them whole and close them, failing as :meth:`get_connection`
        does. A step that hands the files to another program (dbt-duckdb opens them itself) calls
        this first, holding the warehouse pool's slot."""
        self._checked_whole = set()
        self._open(restricted=True).close()
